import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct Drill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore drill: restore the newest snapshot into a throwaway database, compare row counts, drop it, report.",
        discussion: """
            Verifies the snapshot 'restore latest' would restore, restores it into a scratch \
            database on the server the connection options name, compares every table's rows with \
            the manifest and drops the scratch database, whatever happened. The result (seconds, \
            rows, pass or fail) is recorded in the manifest ('pgsnap list' shows it), in \
            --metrics-file (pgsnap_restore_drill_success, _seconds, _rows, _timestamp_seconds) \
            and sent to --notify. The role needs CREATEDB. Exit 2 when the snapshot fails.

            Example (weekly timer): pgsnap drill --dbname app --quiet \\
                --metrics-file /var/lib/node_exporter/pgsnap_drill_app.prom

            With --remote the bucket's newest snapshot is pulled into a private temporary \
            directory (TMPDIR; room for the compressed snapshot), drilled there, its manifest \
            with the result put back in the bucket, and the copy removed.

            \(exitStatusHelp)
            """)

    @Option(help: "The newest snapshot of this database (default: the -d/--dbname database; else the newest of any).")
    var database: String?
    @Option(help: "Also write node_exporter textfile metrics here (atomically); use a file of its own, not check's.")
    var metricsFile: String?
    @OptionGroup(title: "Encryption") var identity: IdentityOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup(title: "Notifications") var notify: NotifyOptions
    @OptionGroup var remote: RemoteOptions

    func validate() throws {
        if let metricsFile, metricsFile.isEmpty || metricsFile.contains("\0") { throw ValidationError("--metrics-file must be a file path") }
    }

    func run() throws {
        let named = try snapshotDatabase(database ?? connection.dbname)
        try notify.around("drill", database: named) { report in
            let session = try makeSession(connection, directory, output)
            session.ageIdentity = try identity.load(session.environment)
            let r: DrillResult
            do {
                let service = RestoreService(session: session)
                r = try remote.drill(service, database: named, session: session)
            } catch {
                if let metricsFile { try? RestoreService(session: session).writeFailedDrillMetrics(database: named ?? "", to: metricsFile) }
                throw error
            }
            report.database = r.database
            report.snapshot = r.snapshot
            report.compressedBytes = r.compressedBytes
            report.uncompressedBytes = r.uncompressedBytes
            report.rows = r.rows
            if let metricsFile { try RestoreService(session: session).writeDrillMetrics(r, to: metricsFile) }
            if output.json { try printJSON(r) }
            guard r.ok else {
                throw PGSnapError.verification("restore drill of \(r.snapshot) failed: \(r.failedCheck ?? "?") check: \(oneLine(r.detail ?? "", limit: 300))",
                                               next: "Do not rely on this snapshot; run 'pgsnap verify \(r.snapshot)' and take a new backup")
            }
            if !output.json {
                session.reporter.info("ok  drill \(r.snapshot): restored \(r.tables ?? 0) tables, \(r.rows ?? 0) rows in \(String(format: "%.1f", r.seconds)) s; scratch database dropped")
            }
        }
    }
}
