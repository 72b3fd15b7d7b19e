import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// `backup --all-databases`: the wiring; the loop is `AllDatabasesService`.
extension Backup {
    /// - Throws: `ValidationError` when `-d` names one database while every database is meant.
    func validateAllDatabases() throws {
        guard allDatabases else { return }
        try requireConnectionStringOnly(connection.dbname)
    }

    func runAllDatabases() throws {
        let session = try makeSession(connection, directory, output)
        // A directory every database would refuse is said once, first (one that does not exist
        // yet is made by the first backup, and not at all when the server cannot be listed).
        if FileManager.default.fileExists(atPath: session.directoryPath) { _ = try session.directory(create: false) }
        var options = snapshot.backupOptions()
        options.format = format
        options.encryptTo = try encryption.recipients(session.environment)
        // As for one database: a missing bucket or credentials is found before anything is dumped.
        let storage = push ? try remote.storage(session.environment) : nil
        let wait = try lock.seconds
        let policy = self.policy.policy
        let prune = self.prune
        let quiet = output.quiet || output.json
        let outcomes = try AllDatabasesService(session: session).run(options, globals: globals, wait: wait, after: { manifest, one in
            // The offsite copy before the prune, whose failure must not cost it (see backup).
            if let storage { try pushAfterBackup(manifest, storage: storage, session: one, wait: wait) }
            if prune { try pruneAfterBackup(manifest, in: LocalStorage(try one.directory(create: false)), policy: policy, session: one, wait: wait) }
        }, report: { outcome in
            if let error = outcome.error { printError(error) }
            if let id = outcome.id, !quiet { printOut(id) }
        })
        if output.json { try printJSON(outcomes) }
        let failed = outcomes.filter { $0.error != nil }
        if !failed.isEmpty {
            // A snapshot taken whose prune or offsite copy failed is backed up: the last line, the
            // one a cron mail shows first, must not read as "nothing was backed up".
            let taken = outcomes.filter { $0.id != nil }.count
            let stepOnly = failed.filter { $0.id != nil }.count
            let what = stepOnly == failed.count
                ? "all \(outcomes.count) database(s) were backed up, but a later step (prune, offsite copy) failed for \(failed.count): \(failed.map(\.database).joined(separator: ", "))"
                : "\(failed.count) of \(outcomes.count) database(s) failed: \(failed.map(\.database).joined(separator: ", "))"
                    + (stepOnly > 0 ? " (\(stepOnly) of them backed up, a later step failed)" : "")
            throw PGSnapError(ExitStatus.worst(failed.map(\.status)), what,
                              next: "Each has its line above; \(taken) snapshot(s) were taken")
        }
        session.reporter.info("pgsnap: backed up \(outcomes.count) database(s) to \(session.directoryPath)")
    }
}

/// `backup --prune`'s step for one new snapshot: verify it, and only then let older ones go.
///
/// - Throws: `PGSnapError.verification` when the new snapshot is not whole (nothing is pruned).
func pruneAfterBackup(_ manifest: Manifest, in storage: SnapshotStorage, policy: RetentionPolicy, session: Session, wait: Double?) throws {
    let entry = try SnapshotSelector(kind: .id(manifest.id)).select(from: try storage.catalog(), directory: storage.location)
    let check = VerifyService(session: session).verify(entry, in: storage)
    guard check.ok else {
        throw PGSnapError.verification("new snapshot \(manifest.id) failed verification (\(check.failedCheck ?? "?"): \(check.detail ?? "")); nothing was pruned",
                                       next: "Investigate before trusting this backup")
    }
    let result = try PruneService(session: session).run(storage, policy: policy, database: manifest.database, dryRun: false, wait: wait ?? 600,
                                                        confirmed: [manifest.id])
    printPrune(result, json: false, reporter: session.reporter)
}

/// With `--all-databases`, `-d` may say how to reach the server, never which database.
///
/// pg_dumpall ignores the database inside `-d` and connects to `-l`'s; pgsnap keeps one option:
/// a connection string's database (if any) is only where the list is read.
func requireConnectionStringOnly(_ dbname: String?) throws {
    guard let dbname, !ConnectionSpec.isConnectionString(dbname) else { return }
    throw ValidationError("--all-databases covers every database, but -d '\(oneLine(dbname, limit: 60))' names one: drop -d, or give a connection string (\"host=db1 user=backup\", postgres://...) whose database is only used to list the others")
}
