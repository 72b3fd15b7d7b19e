import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct MigrationCheckOptions: ParsableArguments {
    @Option(help: "Fail unless schema_migrations is at least at this version.")
    var requireMigration: Int64?
    @Flag(help: "Do not fail when schema_migrations is dirty.")
    var allowDirty = false
    @Option(help: "Most other sessions allowed on the database.")
    var maxConnections = 0

    var options: PreflightOptions {
        PreflightOptions(requireMigration: requireMigration, allowDirty: allowDirty, maxConnections: maxConnections)
    }
}

struct Preflight: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The pre-migration checklist: connection, tool versions, schema_migrations, sessions, disk, lock.",
        discussion: "Example: pgsnap preflight -d app --require-migration 44\n\n\(exitStatusHelp)")

    @OptionGroup var checks: MigrationCheckOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let session = try makeSession(connection, directory, output)
        let result = PreflightService(session: session).run(checks.options)
        if output.json { try printJSON(result.checks) }
        for c in result.checks where !output.json {
            let line = "\(c.ok ? "ok  " : "FAIL") \(c.name.padding(toLength: 17, withPad: " ", startingAt: 0)) \(c.value)\(c.detail.map { "  (\($0))" } ?? "")"
            if c.ok { session.reporter.info(line) } else { printError(line) }
        }
        let failed = result.checks.filter { !$0.ok }
        if !failed.isEmpty {
            throw PGSnapError.verification("preflight failed: \(failed.map(\.name).joined(separator: ", "))", next: "Fix these before migrating")
        }
    }
}

struct Guard: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Preflight, back up and verify, run the migration command, restore if it fails.",
        discussion: """
            The command runs without a shell, with pgsnap's stdin/stdout/stderr. The snapshot \
            is labelled pre_migration_<next version> (pre_guard without schema_migrations) \
            unless --label is given.

            What guard's exit status says about the migration:
              0  the command succeeded; the manifest records the new migration version
              4  the command failed; the database was restored from the new snapshot
              5  the command failed; the database was NOT restored: see the printed command

            Example:
              pgsnap guard -d app --auto-restore -- \\
                migrate -path ./migrations -database "$DATABASE_URL" up

            \(exitStatusHelp)
            """)

    @OptionGroup var checks: MigrationCheckOptions
    @Flag(help: "Restore the snapshot automatically when the command fails or leaves schema_migrations dirty.")
    var autoRestore = false
    /// --label defaults to pre_migration_<next version>, or pre_guard without schema_migrations.
    @OptionGroup var snapshot: SnapshotOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @Argument(parsing: .postTerminator, help: "The migration command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the migration command after --, e.g. pgsnap guard -- migrate up") }
    }

    func run() throws {
        let session = try makeSession(connection, directory, output)
        var base = ["pgsnap", "restore"]
        let env = ProcessInfo.processInfo.environment
        let result = try GuardService(session: session).run(
            command: command, preflight: checks.options,
            backup: snapshot.backupOptions(),
            autoRestore: autoRestore,
            restoreHint: { id in
                base += [id, "--dir", directory.path(env), "--yes", "--terminate-connections"]
                if let d = connection.dbname { base += ["--dbname", session.redact(d)] }
                return base.map(shellQuote).joined(separator: " ")
            })
        if output.json { try printJSON(result) }
        session.reporter.info("pgsnap: migration succeeded: \(migrationLine(result.migrationBefore, result.migrationAfter)); snapshot \(result.snapshot) kept")
    }
}

func migrationLine(_ a: Manifest.MigrationState?, _ b: Manifest.MigrationState?) -> String {
    func f(_ m: Manifest.MigrationState?) -> String { m.map { "\($0.version)\($0.dirty ? " (dirty)" : "")" } ?? "none" }
    return "\(f(a)) -> \(f(b))"
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the live database with a snapshot's manifest: tables added, dropped, row counts.",
        discussion: "Example (after a migration): pgsnap diff latest -d app\n\n\(exitStatusHelp)")

    @Argument(help: "Snapshot id, or 'latest'.")
    var snapshot: String = "latest"
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let session = try makeSession(connection, directory, output)
        let database = RestoreService(session: session).defaultDatabase(target: nil)
        let selector = try parseSelector(snapshot, label: nil, before: nil, database: snapshot == "latest" ? database : nil)
        let report = try DiffService(session: session).run(selector)
        if output.json {
            try printJSON(report)
            return
        }
        printOut("snapshot \(report.snapshot) vs live database \"\(report.database)\"")
        printOut("migration: \(migrationLine(report.migrationBefore, report.migrationNow))")
        var rows = [["TABLE", "SNAPSHOT", "NOW", "CHANGE"]]
        for t in report.tables {
            rows.append([t.table, t.snapshotRows.map(String.init) ?? "-", t.liveRows.map(String.init) ?? "-", t.change])
        }
        printOut(table(rows))
    }
}
