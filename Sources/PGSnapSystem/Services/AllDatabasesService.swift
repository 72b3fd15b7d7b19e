import Foundation
import PGSnapCore

/// `backup --all-databases`: one ordinary snapshot per database on the server, one after another.
///
/// Each database is backed up exactly as `pgsnap backup -d NAME` would back it up (its own lock,
/// manifest and checks); one failing does not stop the others. Roles and tablespaces
/// (`--globals`) are dumped once, before the first database, into the run's own
/// `<run>.globals.sql` (see `RunGlobals`), which every snapshot of the run refers to.
public struct AllDatabasesService {
    let session: Session

    public init(session: Session) { self.session = session }

    /// - Parameters:
    ///   - after: what follows a successful backup of one database (prune, push), with that database's session;
    ///     an error there is that database's outcome, the snapshot's id is kept in it.
    ///   - report: called once per database as soon as it is done, in the order they are backed up.
    /// - Returns: one outcome per database, in name order; fewer when interrupted.
    /// - Throws: `PGSnapError` only when the run cannot start: the list or the globals cannot be read.
    public func run(_ options: BackupOptions, globals: Bool, wait: Double?,
                    after: (Manifest, Session) throws -> Void = { _, _ in },
                    report: (DatabaseOutcome) -> Void = { _ in }) throws -> [DatabaseOutcome] {
        let listing = try session.listServerDatabases()
        guard !listing.databases.isEmpty else {
            throw PGSnapError("the server lists no database that accepts connections (read from \(listing.listedFrom))",
                              next: "Check that pgsnap connects to the server you mean")
        }
        var options = options
        if globals {
            let backup = BackupService(session: session)
            let sql = try backup.captureGlobals(database: listing.listedFrom, serverMajor: listing.serverMajor)
            options.runGlobals = try writeRunGlobals(Data(try backup.encryptedIfAsked([UInt8](sql), options: options)),
                                                     encrypted: !options.encryptTo.isEmpty, wait: wait)
        }
        session.reporter.info("pgsnap: backing up \(listing.databases.count) database(s): \(listing.databases.joined(separator: ", "))")
        var outcomes: [DatabaseOutcome] = []
        for database in listing.databases {
            let outcome = backUp(database, options: options, wait: wait, after: after)
            outcomes.append(outcome)
            report(outcome)
            if SignalTrap.received != nil { break }
        }
        return outcomes
    }

    /// The run's globals and record, written under a shared lock (as a backup's files are), before any database.
    func writeRunGlobals(_ sql: Data, encrypted: Bool, wait: Double?) throws -> RunGlobals {
        let dir = try session.directory(create: true)
        let lock = try DirectoryLock(directory: dir, mode: .shared, command: "backup --all-databases", wait: wait)
        defer { withExtendedLifetime(lock) {} }
        let run = try RunGlobals.create(sql: sql, in: dir, at: session.now(), encrypted: encrypted)
        session.reporter.info("pgsnap: roles and tablespaces of this run saved once as \(dir.file(run.globalsFile))")
        return run
    }

    /// One database, start to finish; never throws: what went wrong is the outcome.
    func backUp(_ database: String, options: BackupOptions, wait: Double?, after: (Manifest, Session) throws -> Void) -> DatabaseOutcome {
        var id: String?
        do {
            let one = try session.forDatabase(database)
            let manifest = try BackupService(session: one).run(options, wait: wait)
            id = manifest.id
            try after(manifest, one)
            return DatabaseOutcome(database: database, id: id)
        } catch let e as PGSnapError {
            return DatabaseOutcome(database: database, id: id, error: "database \"\(database)\": \(session.redact(e.description))",
                                   exitStatus: SignalTrap.received != nil ? .interrupted : e.status)
        } catch {
            return DatabaseOutcome(database: database, id: id, error: "database \"\(database)\": \(session.redact("\(error)"))",
                                   exitStatus: SignalTrap.received != nil ? .interrupted : .failure)
        }
    }
}

extension BackupService {
    /// `pg_dumpall --globals-only` once, connected to `database`: the roles and tablespaces as SQL text.
    ///
    /// - Throws: `PGSnapError` with pg_dumpall's last error line; roles need a superuser to dump.
    public func captureGlobals(database: String, serverMajor: Int) throws -> Data {
        Data(try globalsSQL(database: database, serverMajor: serverMajor, failing: "; nothing was backed up"))
    }
}

extension CheckService {
    /// `check --all-databases`: the health rules for every database on the server, by name.
    ///
    /// A database without any snapshot is a problem like a stale one. Snapshots of databases no
    /// longer on the server are not looked at (they are prune's business).
    public func runAllDatabases(_ databases: [String], in storage: SnapshotStorage, maxAge: TimeInterval, minSize: Int64, metricsFile: String?,
                                metricsPrefix: String = "pgsnap") throws -> HealthReport {
        let report = evaluateAll(try storage.catalog(summaries: true), databases: databases, location: storage.location, maxAge: maxAge, minSize: minSize)
        return metricsFile.map { writingMetrics(report, to: $0, prefix: metricsPrefix) } ?? report
    }

    /// `evaluate` for each of `databases` in turn, merged into one report.
    public func evaluateAll(_ entries: [CatalogEntry], databases: [String], location: String, maxAge: TimeInterval, minSize: Int64) -> HealthReport {
        var report = HealthReport(ok: true, databases: [], problems: [])
        if databases.isEmpty {
            report.problems.append(HealthProblem(database: nil, problem: "the server lists no database that accepts connections"))
        }
        for name in databases {
            let one = evaluate(entries.filter { $0.database == name }, location: location, maxAge: maxAge, minSize: minSize, database: name)
            report.databases += one.databases
            report.problems += one.problems
        }
        report.ok = report.problems.isEmpty
        return report
    }
}
