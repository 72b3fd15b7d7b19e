import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove snapshots are whole: size, SHA-256, full decompression, dump trailer, row counts.",
        discussion: """
            One streaming pass per snapshot. With --restore-test it also restores into a scratch \
            database, compares row counts with the manifest, drops it and records the result. \
            An encrypted snapshot is decrypted with --identity; without one, only its size, \
            SHA-256 and age header are checked, and the output says the contents were not.

            Examples: pgsnap verify latest
                      pgsnap verify --all

            \(exitStatusHelp)
            """)

    @Argument(help: "Snapshot id, or 'latest'.")
    var snapshot: String?
    @Flag(help: "Verify every snapshot in the directory.")
    var all = false
    @Flag(help: "Also restore into a scratch database and compare row counts (needs a connection).")
    var restoreTest = false
    @Option(help: "With 'latest': the newest snapshot of this database (default: the -d/--dbname database, as for drill); with --all: only this database's.")
    var database: String?
    @OptionGroup(title: "Encryption") var identity: IdentityOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup(title: "Notifications") var notify: NotifyOptions

    func validate() throws {
        if all && snapshot != nil { throw ValidationError("give a snapshot or --all, not both") }
        if restoreTest && remote.wanted {
            throw ValidationError("--restore-test restores from the backup directory: run 'pgsnap pull' first, then verify --restore-test there")
        }
    }

    func run() throws {
        try notify.around("verify", database: all ? database : (try? named()) ?? nil, wholeDirectory: true) { _ in try verify() }
    }

    /// Whose 'latest': --database, else the database -d names (`verify latest --restore-test -d
    /// app` verified the newest snapshot of any database, in a whole-server run's directory
    /// someone else's). With --all, -d is only the connection (a maintenance database, say).
    func named() throws -> String? {
        if let database { return try snapshotDatabase(database) }
        // A connection string without a dbname ("host=db2 port=5433") names no database: any.
        return try? snapshotDatabase(connection.dbname)
    }

    func verify() throws {
        // Bad input is a usage error (64) before any file is looked at.
        let latest = snapshot == nil || snapshot == "latest"
        let selector = all ? nil : try parseSelector(snapshot, label: nil, before: nil, database: latest ? try named() : nil)
        let session = try makeSession(connection, directory, output)
        session.ageIdentity = try identity.load(session.environment)
        let storage = try remote.snapshotStorage(session, create: false)
        let catalog = try storage.catalog()
        let entries: [CatalogEntry]
        if let selector {
            entries = [try selector.select(from: catalog, directory: storage.location)]
        } else {
            // Leftovers of a backup still running or killed are not snapshots: reported, never failed
            // (a cron verify --all during the nightly backup must not page anyone; check reports a missing backup).
            let scope = catalog.filter { database == nil || $0.database == database }
            for e in scope where !e.isCommitted {
                session.reporter.info("incomplete  \(e.id): \(e.problem ?? e.status.rawValue) (not a snapshot, not verified)")
            }
            entries = scope.filter(\.isCommitted)
        }
        var results: [VerifyResult] = []
        for e in entries {
            var r = VerifyService(session: session).verify(e, in: storage)
            // A signal stops the reading part-way (age and the readers are ended): what failed then
            // says nothing of the snapshot, which must not be called damaged.
            if SignalTrap.received != nil {
                throw PGSnapError(.interrupted, "verify interrupted while checking \(e.id): no verdict on it", next: "Run verify again")
            }
            if r.ok && restoreTest {
                r = try RestoreService(session: session).restoreTest(e, in: try session.directory(create: false))
            }
            results.append(r)
            if !output.json {
                if r.ok, r.contentsChecked == false {
                    session.reporter.info("ok      \(r.id)  (encrypted: size, SHA-256 and \(r.detail ?? "age header") checked; contents NOT checked: pass --identity to check them)")
                } else if r.ok {
                    session.reporter.info("ok      \(r.id)  (\(r.tables ?? 0) tables, \(r.rows ?? 0) rows\(restoreTest ? ", restore-tested" : ""))")
                } else if !r.keyProblem {
                    printError("FAILED  \(r.id): \(r.failedCheck ?? "?") check failed: \(r.detail ?? "")")
                }
            }
            if SignalTrap.received != nil { break }
        }
        if output.json { try printJSON(results) }
        let bad = results.filter { !$0.ok }
        // A wrong or missing key, or no age: the operation failed (1), the snapshots may be fine.
        if let keyProblem = bad.first(where: \.keyProblem) {
            throw PGSnapError(keyProblem.detail ?? "cannot decrypt \(keyProblem.id)")
        }
        if !bad.isEmpty {
            throw PGSnapError.verification("\(bad.count) of \(results.count) snapshot(s) in \(storage.location) failed verification",
                                           next: "Do not restore from them; take a new backup (or, for a bucket's copy, replace it: pgsnap push ID --force)")
        }
        if results.isEmpty && !output.json { session.reporter.info("pgsnap: nothing to verify in \(storage.location)") }
    }
}

extension VerifyResult {
    /// The key or the age tool failed, not the snapshot: reported as the one error line.
    var keyProblem: Bool { failedCheck == "identity" || failedCheck == "age" }
}
