import Foundation
import PGSnapCore

public struct RestoreOptions {
    public var target: String?
    public var wait: Double?
    public var terminateConnections: Bool
    public var dropPrevious: Bool
    /// Skip the dump's ownership statements; objects end up owned by the restoring user.
    public var noOwner: Bool = false
    /// Asked before replacing an existing database; returns false to stop. nil: no one to ask.
    public var confirm: ((String) -> Bool)?
    public var assumeYes: Bool
    /// pg_restore's jobs for a directory snapshot (default: the number of cores).
    public var jobs: Int?
    /// Only these tables (directory snapshots), into a new database: `restore --table`.
    public var tables: [String] = []
    /// ANALYZE tables that have no statistics after the load, before the swap (`--no-analyze`: off).
    public var analyze = true
    /// `maintenance_work_mem` of the load sessions (index and constraint builds), as PostgreSQL spells it.
    public var maintenanceWorkMem = LoadSettings.defaultMaintenanceWorkMem
    /// The database `-d` named, when given: with an explicit snapshot id and no --target, it must
    /// be the snapshot's own (the one replaced), not silently another.
    public var namedDatabase: String?

    public init(target: String?, wait: Double? = nil, terminateConnections: Bool, dropPrevious: Bool, assumeYes: Bool,
                noOwner: Bool = false, jobs: Int? = nil, tables: [String] = [], confirm: ((String) -> Bool)?) {
        self.jobs = jobs
        self.tables = tables
        self.noOwner = noOwner
        self.target = target
        self.wait = wait
        self.terminateConnections = terminateConnections
        self.dropPrevious = dropPrevious
        self.assumeYes = assumeYes
        self.confirm = confirm
    }
}

public struct RestoreResult: Encodable, Sendable {
    public var snapshot: String
    public var target: String
    public var previousDatabase: String?
    public var tablesChecked: Int
    public var rowsChecked: Int64
    public var durationSeconds: Double
    /// Seconds per step: integrity, create_scratch, load_data, indexes_constraints, row_counts, statistics, properties, swap.
    public var phases: PhaseTimes?
}

/// Restores a snapshot so the database ends up exactly as it was, or, on any failure, exactly as before.
///
/// The dump goes into a fresh scratch database (never into the target), its row counts are
/// checked against the manifest, and only then is the target renamed aside and the scratch
/// database renamed into its place, both renames in one transaction.
public struct RestoreService {
    let session: Session
    static let scratchPrefix = "pgsnap_scratch_"

    public init(session: Session) { self.session = session }

    /// The database `latest` means: the connection's database, else --target.
    public func defaultDatabase(target: String?) -> String? {
        session.spec["dbname"] ?? session.environment["PGDATABASE"] ?? target
    }

    /// `pgsnap_scratch_<host hash>_<pid>_<unix time>`: whose it is can be read from the name alone,
    /// so a run killed right after CREATE DATABASE still leaves a recognisable orphan.
    static func scratchName() -> String {
        "\(scratchPrefix)\(SnapshotDirectory.hostTag)_\(getpid())_\(Int(Date().timeIntervalSince1970))"
    }


    /// - Throws: `PGSnapError`: exit 2 for a snapshot that fails its checks, 1 for restore failures; the target is untouched.
    public func restore(_ selector: SnapshotSelector, options: RestoreOptions) throws -> RestoreResult {
        let start = DispatchTime.now()
        let dir = try session.directory(create: false)
        let lock = try DirectoryLock(directory: dir, mode: .exclusive, command: "restore", wait: options.wait)
        defer { withExtendedLifetime(lock) {} }
        let catalog = try dir.catalog()
        let entry = try selector.select(from: catalog, directory: dir.path)
        if let line = selector.passedOverLine(entry, among: catalog) { session.reporter.warn(line) }
        let target = options.target ?? entry.database
        if case .id = selector.kind, options.target == nil, let named = options.namedDatabase, named != entry.database {
            throw PGSnapError.usage("snapshot \(entry.id) is of database \"\(entry.database)\", and -d names \"\(named)\": an explicit snapshot replaces its own database unless --target says otherwise",
                                    next: "Add --target \(shellQuote(named)) to restore it into \(named), or leave out -d to restore \(entry.database); nothing was changed")
        }
        // The server this run was told of, as it was told (never a password): pasted into another
        // shell, the command must not go to the default server of a machine with two clusters.
        let server = [("-h", session.spec["host"]), ("-p", session.spec["port"]), ("-U", session.spec["user"])]
            .flatMap { flag, value in value.map { [flag, $0] } ?? [] }
        let command = { (id: String) in
            (["pgsnap", "restore", id, "--dir", dir.path] + server + (options.target == nil ? ["-d", target] : ["--target", target]))
                .map(shellQuote).joined(separator: " ")
        }
        guard entry.isGood, let manifest = entry.manifest else {
            // A damaged directory snapshot: name the file, not only the directory's total size.
            if entry.status == .damaged, let m = entry.manifest, m.format == .directory, let problem = try directoryIntegrityProblem(m, dir: dir) {
                throw selector.refusal(entry, check: problem.check, detail: problem.detail, among: catalog, command: command)
            }
            throw selector.refusal(entry, check: RestoreService.failedCheck(entry.status), detail: entry.problem ?? entry.status.rawValue,
                                   among: catalog, command: command)
        }
        let selection = try tableSelection(manifest, options: options, dir: dir)
        let decryption = try session.requireAgeDecryption(for: manifest)
        let phases = PhaseTimes()
        // Read beside the server's preparation; a damaged snapshot is still refused before the
        // first row is loaded, before the question, and before any other failure is said.
        let integrity = Pending { try phases.measure("integrity") { try self.integrityProblem(manifest, dir: dir) } }
        func requireIntact() throws {
            if let problem = try integrity.value() {
                throw selector.refusal(entry, check: problem.check, detail: problem.detail, among: catalog, command: command)
            }
        }
        var admin: LibPQConnection
        let targetExists: Bool
        var targetWasTemplate = false
        let jobs: Int
        do {
            // An encrypted snapshot: the identity opens it, before a scratch database is created.
            try phases.measure("integrity") { try session.proveIdentity(for: manifest, in: dir) }
            admin = try connectMaintenance(excluding: target)
            if let refusal = admin.catalogue.refusalToRestore(snapshotServerVersion: manifest.serverVersion, snapshot: manifest.id) { throw refusal }
            if try admin.scalar("SELECT pg_is_in_recovery()::text") == "true" {
                throw PGSnapError("the server is a standby (in recovery): it cannot take a restore",
                                  next: "Restore onto the primary (or promote this server first); nothing was changed")
            }
            try dropOrphanedScratchDatabases(admin)
            if selection != nil, try DatabaseFacts.exists(admin, database: target) {
                throw PGSnapError.usage("restore --table writes a new database, and \"\(target)\" exists", next: "Choose a --target that does not exist; nothing was changed")
            }
            targetExists = try DatabaseFacts.exists(admin, database: target)
            if targetExists {
                targetWasTemplate = try admin.scalar("SELECT datistemplate::text FROM pg_database WHERE datname = $1", [target]) == "true"
                // No one is asked about a damaged snapshot.
                if !options.assumeYes { try requireIntact() }
                try confirmReplace(target: target, snapshot: manifest.id, admin: admin, options: options)
            }
            jobs = try jobsThatFit(options.jobs ?? Self.defaultJobs, format: manifest.format, admin: admin)
        } catch {
            try requireIntact()
            throw error
        }
        let scratch = RestoreService.scratchName()
        var swapped = false
        defer {
            // The connection may be what failed (a server restart, a session ended by an admin):
            // the scratch database is dropped over a new one, not left for the next run.
            // A connection that died (noticed or not: the load ran in other sessions) fails the
            // first drop; the second goes over a new one.
            if !swapped, (try? dropDatabase(scratch, admin: admin)) == nil, let fresh = try? connectMaintenance(excluding: target) {
                try? dropDatabase(scratch, admin: fresh)
            }
        }
        let (tables, rows): (Int, Int64)
        do {
            (tables, rows) = try load(manifest, dir: dir, into: scratch, admin: admin, noOwner: options.noOwner, decryption: decryption,
                                      jobs: jobs, only: selection, phases: phases, maintenanceWorkMem: options.maintenanceWorkMem,
                                      intact: requireIntact)
            if options.analyze {
                _ = try phases.measure("statistics") { try analyze(scratch: scratch, jobs: jobs) }
            }
            try phases.measure("properties") { try applyDatabaseProperties(manifest, to: scratch, admin: admin, noOwner: options.noOwner) }
            // The load ran in other sessions: this one may have been ended meanwhile, unnoticed
            // until its next query, which must not be the swap's first.
            try admin.query("SELECT 1")
        } catch let e as PGSnapError where (e.next?.isEmpty ?? true) && e.status != .interrupted {
            // A bare "query failed: server closed the connection unexpectedly" said neither what
            // failed nor what to do.
            let lost = !admin.isAlive ? " (lost the connection to the server: restarted, or the session was ended)" : ""
            throw PGSnapError(e.status, "restore into a scratch database failed\(lost): \(e.what)",
                              next: "\(target) was not changed; \(lost.isEmpty ? "fix the cause" : "check the server") and restore again")
        }
        if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; \(target) was not changed") }

        var previous: String?
        try phases.measure("swap") {
            if targetExists {
                previous = try swap(target: target, scratch: scratch, admin: admin, options: options)
            } else {
                do {
                    try admin.query("ALTER DATABASE \(try admin.quoteIdentifier(scratch)) RENAME TO \(try admin.quoteIdentifier(target))")
                } catch let e as PGSnapError where e.status != .interrupted && admin.isAlive {
                    // Another session took the name while the load ran: theirs stays as it is.
                    if (try? DatabaseFacts.exists(admin, database: target)) == true {
                        throw PGSnapError("database \"\(target)\" was created by another session while the restore loaded; it was not changed and the restored copy is dropped",
                                          next: "Restore again with another --target, or with -d \(target) --yes to replace it")
                    }
                    throw PGSnapError("cannot rename the restored database to \(target): \(e.what)", next: "Nothing was created; fix the cause and restore again")
                }
            }
        }
        swapped = true
        // The restore is done: what follows only tidies, and says so when it cannot.
        if !admin.isAlive, let fresh = try? connectMaintenance(excluding: target) { admin = fresh }
        // Its scratch comment off the live database; once more if a signal cancelled it.
        do {
            let comment = "COMMENT ON DATABASE \(try admin.quoteIdentifier(target)) IS \(try manifest.databaseProperties?.comment.map { try admin.quoteLiteral($0) } ?? "NULL")"
            if (try? admin.query(comment)) == nil { try admin.query(comment) }
        } catch {
            session.reporter.warn("restored, but the scratch comment on \(target) could not be reset (\(session.redact(oneLine("\(error)")))): run COMMENT ON DATABASE by hand")
        }
        settleTemplateFlags(manifest, target: target, previous: previous, targetWasTemplate: targetWasTemplate, admin: admin)
        if let p = previous, options.dropPrevious {
            // The restore is done; a previous database that stays is said, not a failure.
            do {
                try dropDatabase(p, admin: admin)
                previous = nil
            } catch {
                session.reporter.warn("restored, but the previous database \(p) could not be dropped (\(session.redact(oneLine("\(error)")))); drop it by hand")
            }
        }
        if let signal = SignalTrap.received {
            // After the swap the restore is done: exit 0 with this line, not 130 ("interrupted"),
            // which scripts read as "nothing changed".
            session.reporter.warn("signal \(signal) arrived after the swap: the restore is complete")
            SignalTrap.reset()
        }
        session.reporter.detail("pgsnap: restore phases: \(phases.summary)")
        return RestoreResult(snapshot: manifest.id, target: target, previousDatabase: previous, tablesChecked: tables,
                             rowsChecked: rows, durationSeconds: seconds(since: start), phases: phases)
    }

    /// Restores into a scratch database, compares row counts, drops it, and records the result in the manifest.
    public func restoreTest(_ entry: CatalogEntry, in dir: SnapshotDirectory) throws -> VerifyResult {
        guard let manifest = entry.manifest else { throw PGSnapError.verification("snapshot \(entry.id) has no manifest") }
        let start = DispatchTime.now()
        let decryption = try session.requireAgeDecryption(for: manifest)
        try session.proveIdentity(for: manifest, in: dir)
        let lock = try DirectoryLock(directory: dir, mode: .shared, command: "verify --restore-test", wait: nil)
        defer { withExtendedLifetime(lock) {} }
        let admin = try connectMaintenance(excluding: manifest.database)
        if let refusal = admin.catalogue.refusalToRestore(snapshotServerVersion: manifest.serverVersion, snapshot: manifest.id) { throw refusal }
        try dropOrphanedScratchDatabases(admin)
        let scratch = RestoreService.scratchName()
        defer { try? dropDatabase(scratch, admin: admin) }
        var result = VerifyResult(id: entry.id, ok: false)
        do {
            let (tables, rows) = try load(manifest, dir: dir, into: scratch, admin: admin, decryption: decryption)
            result.ok = true
            result.tables = tables
            result.rows = rows
        } catch let e as PGSnapError {
            // Stopped by a signal (a cancelled query or a killed psql reads as a plain failure):
            // nothing was learnt about the snapshot, and nothing is recorded in its manifest.
            if e.status == .interrupted || SignalTrap.received != nil {
                throw PGSnapError(.interrupted, "restore test of \(entry.id) interrupted; nothing was recorded")
            }
            result.failedCheck = "restore_test"
            result.detail = e.description
        }
        result.seconds = seconds(since: start)
        var updated = manifest
        updated.restoreTest = .init(at: session.now(), ok: result.ok, seconds: result.seconds ?? 0, detail: result.detail, rows: result.rows)
        try dir.writeAtomically(try updated.encoded(), to: manifest.id + SnapshotName.manifestSuffix)
        return result
    }

    /// `jobs`, or fewer when the server has not the connections for them: a directory restore
    /// with big tables runs `jobs` COPY sessions beside `pg_restore -j jobs` (and its leader),
    /// a plain one psql beside `jobs` COPY sessions, plus pgsnap's own. pg_restore reports the
    /// server's "too many clients" as a broken pipe between its workers, so it is avoided, said.
    func jobsThatFit(_ jobs: Int, format: DumpFormat, admin: LibPQConnection) throws -> Int {
        let free = Int(try admin.scalar("""
            SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
                   - (SELECT count(*) FROM pg_stat_activity WHERE \(DatabaseFacts.clientBackend))
            """) ?? "") ?? Int.max
        let perJob = format == .directory ? 2 : 1, fixed = 3
        guard jobs * perJob + fixed > free else { return jobs }
        let fitting = max(1, (free - fixed) / perJob)
        guard fitting < jobs else { return jobs }
        session.reporter.info("pgsnap: \(fitting) job(s) instead of \(jobs): the server has \(max(0, free)) free connection(s) (max_connections)")
        return fitting
    }

    /// The session that creates, renames and drops databases: on `postgres`, or on `template1`
    /// when this role may not connect to `postgres` (a DBA revoked CONNECT from PUBLIC there).
    func connectMaintenance(excluding target: String) throws -> LibPQConnection {
        let first = maintenanceDatabase(excluding: target)
        do {
            return try session.connect(database: first)
        } catch let e as PGSnapError where first == "postgres" && "\(e)".contains("permission denied for database") {
            guard let fallback = try? session.connect(database: "template1") else { throw e }
            return fallback
        }
    }

    func maintenanceDatabase(excluding target: String) -> String {
        target == "postgres" ? "template1" : "postgres"
    }

    /// The check a catalog status stands for, as verify names it.
    static func failedCheck(_ status: CatalogEntry.Status) -> String {
        switch status {
        case .damaged: return "size"
        case .invalidManifest: return "manifest"
        default: return "files"
        }
    }

    /// Size and SHA-256 before anything is touched: the failed check and what was found, or nil.
    func integrityProblem(_ m: Manifest, dir: SnapshotDirectory) throws -> (check: String, detail: String)? {
        if m.format == .directory { return try directoryIntegrityProblem(m, dir: dir) }
        let stream = try DumpStream.open(path: dir.file(m.file), compression: .none)
        let outcome = stream.readAll(sink: { _ in }, shouldStop: { SignalTrap.received != nil })
        if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted before anything was changed") }
        if let e = outcome.readError { throw e }
        if outcome.compressedBytes != m.compressedBytes {
            return ("size", "file is \(outcome.compressedBytes) bytes, manifest says \(m.compressedBytes)")
        }
        if outcome.sha256 != m.sha256 {
            return ("checksum", "SHA-256 differs from the manifest")
        }
        return nil
    }


    /// Everything the swap needs of the target, checked before the load (which can take hours):
    /// the right to rename it, no prepared transactions, its sessions stopped or ours to end.
    func confirmReplace(target: String, snapshot: String, admin: LibPQConnection, options: RestoreOptions) throws {
        let (mayRename, owner) = try DatabaseFacts.mayRename(admin, database: target)
        guard mayRename else {
            throw PGSnapError("cannot replace database \"\(target)\": it belongs to \(owner), and only its owner or a superuser may rename it aside",
                              next: "Restore as \(owner) or a superuser, or into a new database with --target NEW; nothing was changed")
        }
        let prepared = try DatabaseFacts.preparedTransactions(admin, database: target)
        if !prepared.isEmpty {
            throw PGSnapError("database \"\(target)\" has \(prepared.count) prepared transaction(s) (\(prepared.prefix(5).joined(separator: ", "))), which keep it in use",
                              next: "COMMIT PREPARED or ROLLBACK PREPARED them (see pg_prepared_xacts), then restore again; nothing was changed")
        }
        let sessions = try DatabaseFacts.otherSessions(admin, database: target)
        if !sessions.isEmpty && !options.terminateConnections {
            throw PGSnapError("database \"\(target)\" has \(sessions.count) other session(s): \(sessions.joined(separator: "; "))",
                              next: "Stop those clients, or pass --terminate-connections")
        }
        try refuseSessionsBeyondReach(target: target, admin: admin)
        if options.assumeYes { return }
        guard let confirm = options.confirm else {
            throw PGSnapError.usage("restore would replace the existing database \"\(target)\" and there is no terminal to confirm",
                                    next: "Pass --yes to confirm")
        }
        let question = "Replace database \"\(target)\" with snapshot \(snapshot)? The current database is kept as \(previousName(for: target)) unless --drop-previous. [y/N] "
        guard confirm(question) else {
            if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted at the question; nothing was changed") }
            throw PGSnapError("restore cancelled; nothing was changed")
        }
    }

    /// Creates the scratch database, loads the dump (psql, or pg_restore -j for a directory
    /// snapshot) and checks row counts. Returns (tables, rows).
    ///
    /// - Parameters:
    ///   - only: `restore --table`: the tables to load (directory snapshots only).
    ///   - intact: throws for a damaged snapshot (its check runs beside this); called before any
    ///     row is loaded, and first when making the scratch database failed.
    func load(_ m: Manifest, dir: SnapshotDirectory, into scratch: String, admin: LibPQConnection, noOwner: Bool = false,
              decryption: AgeDecryption? = nil, jobs: Int? = nil, only: [TableSelection.Table]? = nil,
              phases: PhaseTimes = PhaseTimes(), maintenanceWorkMem: String = LoadSettings.defaultMaintenanceWorkMem,
              intact: () throws -> Void = {}) throws -> (Int, Int64) {
        let environment = Self.loadEnvironment(session.childEnvironment, maintenanceWorkMem: maintenanceWorkMem)
        // The table of contents a split directory load reads, read while the scratch database is made.
        let serverMajor = admin.serverMajor, path = dir.file(m.file)
        let listings = m.format == .directory && decryption == nil && only == nil
            && !ParallelTableLoad.candidates(m, jobs: jobs ?? Self.defaultJobs, environment: session.environment).isEmpty
            ? Pending { try self.splitListings(path, serverMajor: serverMajor) } : nil
        do {
            do {
                if m.format != .directory { try refuseUnreadablePlainDump(m, serverMajor: admin.serverMajor) }
                try phases.measure("create_scratch") { try createScratch(m, dir: dir, scratch: scratch, admin: admin, noOwner: noOwner) }
            } catch {
                try intact()
                throw error
            }
            try intact()
            return try loadIntact(m, dir: dir, into: scratch, admin: admin, noOwner: noOwner, decryption: decryption, jobs: jobs, only: only,
                                  phases: phases, maintenanceWorkMem: maintenanceWorkMem, environment: environment, listings: listings)
        } catch {
            // The listings' pg_restore children end before this run does (they read the snapshot).
            _ = try? listings?.value()
            throw error
        }
    }

    /// `load` once the scratch database exists and the snapshot is known intact.
    private func loadIntact(_ m: Manifest, dir: SnapshotDirectory, into scratch: String, admin: LibPQConnection, noOwner: Bool,
                            decryption: AgeDecryption?, jobs: Int?, only: [TableSelection.Table]?, phases: PhaseTimes,
                            maintenanceWorkMem: String, environment: [String: String], listings: Pending<[String]>?) throws -> (Int, Int64) {
        if m.format == .directory {
            let copied = try loadDirectory(m, dir: dir, into: scratch, admin: admin, noOwner: noOwner, jobs: jobs, only: only, decryption: decryption,
                                           listings: listings, phases: phases, environment: environment, settings: Self.loadSettings(maintenanceWorkMem: maintenanceWorkMem))
            return try phases.measure("row_counts") {
                try checkRowCounts(m, scratch: scratch, only: only.map { Set($0.map(\.qualified)) }, counted: copied, jobs: jobs ?? Self.defaultJobs)
            }
        }
        let copied = try loadPlain(m, dir: dir, into: scratch, admin: admin, noOwner: noOwner, decryption: decryption, jobs: jobs,
                                   phases: phases, environment: environment, settings: Self.loadSettings(maintenanceWorkMem: maintenanceWorkMem))
        return try phases.measure("row_counts") {
            if let copied { return try checkCopiedRows(m, copied: copied) }
            return try checkRowCounts(m, scratch: scratch, only: nil, jobs: jobs ?? Self.defaultJobs)
        }
    }

    static var defaultJobs: Int { min(ProcessInfo.processInfo.activeProcessorCount, 64) }

    /// The rows each COPY stored, as the server counted them (psql's command tags), against the manifest.
    func checkCopiedRows(_ m: Manifest, copied: [String: Int64]) throws -> (Int, Int64) {
        for (table, expected) in m.tableRows.sorted(by: { $0.key < $1.key }) where copied[table] != expected {
            throw PGSnapError.verification("restored table \(table) has \(copied[table] ?? 0) rows, the snapshot has \(expected)",
                                           next: "The target was not changed; run 'pgsnap verify \(m.id)'")
        }
        if let extra = copied.keys.sorted().first(where: { m.tableRows[$0] == nil }) {
            throw PGSnapError.verification("the dump loaded rows into \(extra), which the snapshot's manifest does not list",
                                           next: "The target was not changed; run 'pgsnap verify \(m.id)'")
        }
        return (m.tableRows.count, m.tableRows.values.reduce(0, +))
    }

    func createScratch(_ m: Manifest, dir: SnapshotDirectory, scratch: String, admin: LibPQConnection, noOwner: Bool) throws {
        let props = try m.databaseProperties ?? DatabaseFacts.properties(admin, database: maintenanceDatabase(excluding: m.database))
        var owner = props.owner
        if noOwner {
            owner = try admin.scalar("SELECT current_user") ?? owner
        } else if try admin.scalar("SELECT 1 FROM pg_roles WHERE rolname = $1", [owner]) != "1" {
            throw PGSnapError("the snapshot's database owner role \"\(owner)\" does not exist on this server",
                              next: (savedRoles(m, dir: dir).map { "Apply the saved roles (psql -X -f \($0) postgres)" } ?? "Create the role (CREATE ROLE \(owner))") + " or restore with --no-owner")
        } else if try admin.scalar("SELECT pg_has_role($1, 'USAGE')::text", [owner]) != "true" {
            // A member without the owner's privileges (INHERIT FALSE) may create a database for it,
            // then not comment on, rename or drop it: the scratch database would be left behind.
            throw PGSnapError("the snapshot's database belongs to \(owner), whose privileges this role does not have",
                              next: "Restore as \(owner) or a superuser, or with --no-owner; nothing was changed")
        }
        if let acl = props.acl {
            // Its grants are applied after the load; a role they name that does not exist here
            // would fail the restore only then.
            let missing = try rolesMissing(fromACL: acl, admin: admin, except: noOwner ? props.owner : nil)
            if !missing.isEmpty {
                throw PGSnapError("the snapshot's database grants name \(missing.count) role(s) that do not exist on this server: \(missing.joined(separator: ", "))",
                                  next: (savedRoles(m, dir: dir).map { "Apply the saved roles (psql -X -f \($0) postgres)" } ?? "Create them (CREATE ROLE ...)")
                                    + " and restore again; nothing was changed")
            }
        }
        var fixedAtCreation = try admin.catalogue.localeClause(props) { try admin.quoteLiteral($0) }
        if let tablespace = props.tablespace {
            guard try admin.scalar("SELECT 1 FROM pg_tablespace WHERE spcname = $1", [tablespace]) == "1" else {
                throw PGSnapError("the snapshot's database lives in tablespace \"\(tablespace)\", which does not exist on this server",
                                  next: "Create it (CREATE TABLESPACE \(tablespace) LOCATION '...') and restore again; nothing was changed")
            }
            fixedAtCreation += " TABLESPACE \(try admin.quoteIdentifier(tablespace))"
        }
        do {
            try admin.query("""
                CREATE DATABASE \(try admin.quoteIdentifier(scratch)) TEMPLATE template0 ENCODING \(try admin.quoteLiteral(props.encoding)) \
                LC_COLLATE \(try admin.quoteLiteral(props.collate)) LC_CTYPE \(try admin.quoteLiteral(props.ctype))\(fixedAtCreation) OWNER \(try admin.quoteIdentifier(owner))
                """)
        } catch {
            // The snapshot's database as it was (owner, encoding, locale) cannot be made here.
            let reason = admin.lastErrorMessage ?? "\(error)"
            var next = "Nothing was changed; fix the cause and restore again"
            if reason.contains("SET ROLE") || reason.contains("must be member of role") {
                next = "Nothing was changed; restore as a superuser or a member of \(owner), or with --no-owner"
            } else if reason.contains("ICU") || reason.contains("locale") || reason.contains("collation") || reason.contains("encoding") {
                next = "Nothing was changed; this server cannot make a database with the snapshot's encoding and locale (\(props.encoding), \(props.collate)): restore on a server that has them"
            }
            throw PGSnapError("cannot create the scratch database for the restore: \(oneLine(reason))", next: next)
        }
        try admin.query("COMMENT ON DATABASE \(try admin.quoteIdentifier(scratch)) IS \(try admin.quoteLiteral("pgsnap scratch host=\(ProcessInfo.processInfo.hostName) pid=\(getpid()) snapshot=\(m.id)"))")
        try trySettings(m, on: scratch, admin: admin)
    }

    /// After the swap, so that no scratch database is ever a template (each hint to drop one stays
    /// true): the restored database is a template when the snapshot's was (unknown in an older
    /// manifest: when the database it replaced was), unless it is a copy under another name; the
    /// previous database, kept aside, is made an ordinary one that DROP DATABASE can remove.
    /// A failure here is a warning: the restore is done.
    func settleTemplateFlags(_ m: Manifest, target: String, previous: String?, targetWasTemplate: Bool, admin: LibPQConnection) {
        if let p = previous, targetWasTemplate {
            do { try admin.query("ALTER DATABASE \(try admin.quoteIdentifier(p)) IS_TEMPLATE false") } catch {
                session.reporter.warn("the previous database \(p) is still a template (\(session.redact(oneLine("\(error)")))): run ALTER DATABASE \(p) IS_TEMPLATE false before dropping it")
            }
        }
        guard m.databaseProperties?.isTemplate ?? targetWasTemplate else { return }
        guard target == m.database || targetWasTemplate else {
            session.reporter.detail("pgsnap: \(m.database) is a template database; its copy \(target) is not made one")
            return
        }
        do { try admin.query("ALTER DATABASE \(try admin.quoteIdentifier(target)) IS_TEMPLATE true") } catch {
            session.reporter.warn("restored, but \(target) could not be made a template again (\(session.redact(oneLine("\(error)")))): run ALTER DATABASE \(target) IS_TEMPLATE true")
        }
    }

    /// The items of an ACL as the manifest keeps it (`{grantee=privs/grantor,...}`), read without
    /// casting to aclitem (which fails for a role this server lacks).
    func databaseACLItems(_ acl: String, admin: LibPQConnection) throws -> [DatabaseACLItem] {
        try admin.query("SELECT unnest($1::text[])", [acl]).compactMap { row in
            guard let text = row[0] else { return nil }
            guard let item = DatabaseACLItem.parse(text) else {
                throw PGSnapError.verification("the snapshot's database ACL has an item pgsnap cannot read: \(oneLine(text, limit: 80))")
            }
            return item
        }
    }

    /// The roles an ACL names that this server lacks; under --no-owner not the snapshot's owner,
    /// whose part goes to the restoring role.
    func rolesMissing(fromACL acl: String, admin: LibPQConnection, except owner: String?) throws -> [String] {
        var missing: [String] = []
        for r in try databaseACLItems(acl, admin: admin).flatMap(\.roles) where r != owner && !missing.contains(r) {
            if try admin.scalar("SELECT 1 FROM pg_roles WHERE rolname = $1", [r]) != "1" { missing.append(r) }
        }
        return missing
    }

    /// Streams a plain dump through psql, checking its SHA-256 and trailer as it goes.
    ///
    /// - Returns: rows per table as the server counted them (COPY command tags), or nil when
    ///   they could not be paired with the dump's COPY statements (the caller then counts).
    func loadPlain(_ m: Manifest, dir: SnapshotDirectory, into scratch: String, admin: LibPQConnection, noOwner: Bool,
                   decryption: AgeDecryption?, jobs: Int?, phases: PhaseTimes, environment: [String: String],
                   settings: [String: String]) throws -> [String: Int64]? {
        let serverMajor = admin.serverMajor
        let psql = try session.tools.locate("psql", serverMajor: serverMajor)
        let command = ExternalCommand(
            name: "psql", executable: psql.path,
            // No --single-transaction: it holds a lock on every object created until the end, so a
            // dump that plain psql restores could run out of lock slots. The scratch database and the
            // swap are what make the restore atomic; on any failure the scratch database is dropped.
            // Not -q: psql's `COPY n` command tags are the row counts (CommandTagReader); -A -t
            // print the sync markers bare.
            arguments: ["-X", "-A", "-t", "--no-password", "-v", "ON_ERROR_STOP=1",
                        "--dbname=\(session.childConninfo(database: scratch))"],
            environment: environment)
        let jobs = jobs ?? Self.defaultJobs
        let big = Self.splitTables(m, jobs: jobs, environment: session.environment)
        session.reporter.info("pgsnap: restoring \(m.id) into scratch database \(scratch)"
            + (big.isEmpty ? "" : "; \(big.count) big table(s) loaded through \(jobs) COPY sessions each"))
        let child = try ChildProcess(command, stdin: .pipe, stdout: .pipe, stderr: .pipe)
        let tags = CommandTagReader(fd: child.stdoutFD)
        defer { child.closeStdout() }
        let loadStart = DispatchTime.now()
        var dataEnd = loadStart
        var blocksEnded = 0
        var scanner = DumpScanner()
        var filter = noOwner ? OwnershipFilter() : nil
        var router = CopyRouter { big.contains($0) }
        var splitter: CopySplitter?
        var splitRows: [Int64] = []
        var splitError: Error?
        var syncs = 0
        func toPsql(_ bytes: UnsafeRawBufferPointer) throws {
            if filter != nil {
                try filter!.process(bytes) { try child.writeStdin($0) }
            } else {
                try child.writeStdin(bytes)
            }
        }
        func route(_ event: CopyRouter.Event) throws {
            switch event {
            case .script(let bytes):
                try toPsql(bytes)
            case .startRows(let table, let statement, let header):
                // The table must exist (psql has run everything before) before other sessions load it.
                syncs += 1
                try Array(CommandTagReader.syncStatement(syncs).utf8).withUnsafeBytes { try child.writeStdin($0) }
                guard tags.waitForMarker(syncs) else { throw PGSnapError("psql stopped before \(table) could be loaded") }
                splitter = try split { try CopySplitter(session: session, database: scratch, jobs: jobs, table: table, header: header,
                                                        statement: statement, settings: settings) }
            case .rows(let bytes):
                try split { try splitter!.write(bytes) }
            case .endRows:
                splitRows.append(try split { try splitter!.finish() })
                splitter = nil
            }
        }
        /// A failure of the split sessions is the restore's error (psql is then stopped, not asked why).
        func split<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch {
                splitError = error
                throw error
            }
        }
        let progress = Progress(reporter: session.reporter, verb: "restored", total: m.compressedBytes)
        var outcome = try DumpStream.open(path: dir.file(m.file), compression: m.compression.algorithm, decryption: decryption).readAll(
            sink: { bytes in
                scanner.consume(bytes)
                if scanner.copyBlocksEnded != blocksEnded {
                    blocksEnded = scanner.copyBlocksEnded
                    dataEnd = DispatchTime.now()
                }
                try router.consume(bytes, route)
            },
            progress: { progress.update(bytesIn: $0, bytesOut: scanner.bytes) },
            shouldStop: { SignalTrap.received != nil })
        progress.done()
        splitter?.abort()
        if let splitError {
            child.terminate(grace: 5)
            child.closeStdin()
            throw splitError
        }
        if filter != nil, outcome.sinkError == nil {
            do { try filter!.finish { try child.writeStdin($0) } } catch { outcome.sinkError = error }
        }
        let streamFailed = outcome.readError != nil || outcome.decompressError != nil || SignalTrap.received != nil
            || outcome.sha256 != m.sha256 || !scanner.sawCompletionTrailer
        if streamFailed && outcome.sinkError == nil {
            // Closing psql's stdin would COMMIT what it has: kill it first, then close.
            child.terminate(grace: 5)
            child.closeStdin()
            if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; the target was not changed") }
            if let e = outcome.decompressError as? AgeIdentityMismatch { throw e.error }
            if let e = outcome.readError ?? outcome.decompressError { throw PGSnapError.verification("snapshot \(m.id) is corrupt: \(e)", next: "Nothing was changed; choose another snapshot") }
            throw PGSnapError.verification("snapshot \(m.id) changed while it was read (checksum or trailer differs)", next: "Nothing was changed; run 'pgsnap verify'")
        }
        child.closeStdin()
        let status = child.wait()
        let counts = tags.copyCounts()
        let end = DispatchTime.now()
        guard status.succeeded, outcome.sinkError == nil else {
            if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; the target was not changed") }
            let line = child.lastErrorLine.map { session.redact(oneLine($0)) } ?? "\(status)"
            throw PGSnapError("psql failed while restoring \(m.id) (\(status)): \(line)", next: loadFailureAdvice(line, m, dir: dir, noOwner: noOwner))
        }
        // The data section ends with the last COPY block; what follows is indexes and constraints.
        phases.record("load_data", seconds: Double(dataEnd.uptimeNanoseconds - loadStart.uptimeNanoseconds) / 1e9)
        phases.record("indexes_constraints", seconds: Double(end.uptimeNanoseconds - dataEnd.uptimeNanoseconds) / 1e9)
        // Pair the dump's COPY statements with what counted them: psql's tags, in order, or the
        // split sessions' sums for the big tables.
        let splitCount = router.splitTables.count
        guard counts.count + splitCount == scanner.tables.count, splitRows.count == splitCount else {
            session.reporter.detail("pgsnap: psql reported \(counts.count) COPY results for \(scanner.tables.count - splitCount) COPY statements; counting rows instead")
            return nil
        }
        var copied: [String: Int64] = [:]
        var fromPsql = counts.makeIterator(), fromSplit = splitRows.makeIterator()
        var splitNames = router.splitTables.makeIterator()
        var nextSplit = splitNames.next()
        for table in scanner.tables {
            if table.name == nextSplit {
                copied[table.name, default: 0] += fromSplit.next() ?? 0
                nextSplit = splitNames.next()
            } else {
                copied[table.name, default: 0] += fromPsql.next() ?? 0
            }
        }
        return copied
    }

    /// Tables of a plain snapshot worth loading through several sessions: at least
    /// PGSNAP_PARALLEL_COPY_MIN_ROWS rows (default 100,000; tests lower it to split every table).
    static func splitTables(_ m: Manifest, jobs: Int, environment: [String: String]) -> Set<String> {
        guard jobs >= 2 else { return [] }
        let minimum = environment["PGSNAP_PARALLEL_COPY_MIN_ROWS"].flatMap(Int64.init).map { max(0, $0) } ?? 100_000
        return Set(m.tableRows.filter { $0.value >= minimum && $0.value > 0 }.keys)
    }

    /// A plain dump with `\restrict` lines and a psql that stops at the first: refused before the
    /// scratch database exists (a 14 -> 16 upgrade with 16.2's psql and a dump of pg_dump 15.20).
    func refuseUnreadablePlainDump(_ m: Manifest, serverMajor: Int?) throws {
        let psql = try session.tools.locate("psql", serverMajor: serverMajor)
        guard ServerCatalogue.psqlCannotRead(dumpVersion: m.pgDumpVersion, psqlVersion: psql.version) else { return }
        throw PGSnapError("psql \(psql.version) at \(psql.path) cannot read \(m.id): its pg_dump \(m.pgDumpVersion) wrote \\restrict lines, which psql reads from \(ServerCatalogue.restrictReleases) on",
                          next: "Install a current psql for PostgreSQL \(psql.major) or pass --pg-bindir with one, and restore again; nothing was changed")
    }

    /// What to do after psql or pg_restore failed with `line`: the target is untouched either way.
    func loadFailureAdvice(_ line: String, _ m: Manifest, dir: SnapshotDirectory, noOwner: Bool) -> String {
        if line.contains("invalid command \\restrict") {
            // pg_dump's security releases (ServerCatalogue.restrictSince) write \restrict; older psql stops there.
            return "The target was not changed; this psql is older than the pg_dump that wrote the snapshot (\(m.pgDumpVersion)): install a current psql for this server's major and restore again"
        }
        if line.contains("out of shared memory") {
            return "The target was not changed; raise max_locks_per_transaction on the server (it needs a restart) and restore again"
        }
        if line.contains("role") && line.contains("does not exist") {
            return (savedRoles(m, dir: dir).map { path in
                path.hasSuffix(SnapshotName.encryptedGlobalsSuffix)
                    ? "Create the missing roles (age -d -i KEY \(path) | psql -X postgres) and restore again"
                    : "Create the missing roles (psql -X -f \(path) postgres) and restore again"
            }
                ?? "Create the missing roles and restore again") + (noOwner ? "" : ", or restore with --no-owner")
        }
        return "The target was not changed; fix the cause and restore again"
    }

    /// The roles saved with a snapshot (`--globals`): its own file, or its whole-server run's, which
    /// any snapshot of the run names; nil when there are none here (a pulled copy brings them along).
    func savedRoles(_ m: Manifest, dir: SnapshotDirectory) -> String? {
        guard let g = m.globalsFile, access(dir.file(g), R_OK) == 0 else { return nil }
        return dir.file(g)
    }

    /// psql's or pg_restore's exit status alone proves nothing: the row counts do.
    /// Counts every table in `jobs` sessions at once, biggest first (by the manifest's rows).
    ///
    /// - Parameter counted: rows the load's own COPY commands stored (the server's count), checked
    ///   without a scan.
    func checkRowCounts(_ m: Manifest, scratch: String, only: Set<String>?, counted: [String: Int64] = [:], jobs: Int = 1) throws -> (Int, Int64) {
        let all = m.tableRows.filter { only?.contains($0.key) ?? true }
        for (table, _) in all where QualifiedName.parse(table) == nil {
            throw PGSnapError.verification("malformed table name in manifest")
        }
        for (table, got) in counted.sorted(by: { $0.key < $1.key }) where all[table] != got {
            throw PGSnapError.verification("the load stored \(got) rows in \(table) (the server's COPY count), the snapshot has \(all[table] ?? 0)",
                                           next: "The target was not changed; run 'pgsnap verify \(m.id)'")
        }
        let tables = all.filter { counted[$0.key] == nil }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        let lock = NSLock()
        var next = 0
        var firstError: Error?
        var mismatches: [RowMismatch] = []
        DispatchQueue.concurrentPerform(iterations: max(1, min(jobs, tables.count))) { _ in
            do {
                let db = try session.connect(database: scratch)
                while true {
                    let item: (key: String, value: Int64)? = lock.withLock {
                        guard firstError == nil, next < tables.count else { return nil }
                        defer { next += 1 }
                        return tables[next]
                    }
                    guard let (table, expected) = item else { return }
                    let got: Int64
                    do {
                        got = Int64(try db.scalar("SELECT count(*) FROM ONLY \(QualifiedName.parse(table)!)") ?? "") ?? -1
                    } catch {
                        // A row-level security policy that fails for this role (it reads a setting
                        // only the application sets): counted with row security disabled instead.
                        guard let all = try? countIgnoringRowSecurity(table, db: db) else { throw error }
                        got = all
                    }
                    if got != expected { lock.withLock { mismatches.append(RowMismatch(table: table, got: got, expected: expected)) } }
                }
            } catch {
                lock.withLock { if firstError == nil { firstError = error } }
            }
        }
        if let firstError { throw firstError }
        if let wrong = try unexplainedMismatches(mismatches, all: all, scratch: scratch).first {
            // The snapshot does not hold what its manifest promises: a verification failure (2).
            throw PGSnapError.verification("restored table \(wrong.table) has \(wrong.got) rows, the snapshot has \(wrong.expected)",
                                           next: "The target was not changed; run 'pgsnap verify \(m.id)'")
        }
        return (all.count, all.values.reduce(0, +))
    }

    /// The load sessions' environment (psql, pg_restore), with settings that are safe because
    /// the scratch database is invisible until the swap and dropped on any failure:
    ///
    /// - `synchronous_commit=off`: without one transaction every statement commits, and waiting
    ///   for each commit's WAL flush made a 1,500-table schema take 20 s instead of 2 s. The swap's
    ///   own synchronous commit flushes all WAL before it; a crash before that leaves only a
    ///   scratch database that the next restore drops.
    /// - `maintenance_work_mem` (`--maintenance-work-mem`): index and constraint builds sort in
    ///   memory instead of spilling to disk.
    static func loadEnvironment(_ env: [String: String], maintenanceWorkMem: String = LoadSettings.defaultMaintenanceWorkMem) -> [String: String] {
        var e = env
        let options = loadSettings(maintenanceWorkMem: maintenanceWorkMem).sorted { $0.key < $1.key }.map { "-c \($0.key)=\($0.value)" }
        e["PGOPTIONS"] = ([env["PGOPTIONS"]].compactMap { $0 } + options).joined(separator: " ")
        return e
    }

    /// - `idle_session_timeout=0`: psql waits, idle, while the COPY sessions load a big table.
    static func loadSettings(maintenanceWorkMem: String) -> [String: String] {
        ["synchronous_commit": "off", "maintenance_work_mem": maintenanceWorkMem, "idle_session_timeout": "0"]
    }

    /// Settings, grants and connection limit that a plain dump leaves out.
    func applyDatabaseProperties(_ m: Manifest, to scratch: String, admin: LibPQConnection, noOwner: Bool) throws {
        guard let p = m.databaseProperties else { return }
        let db = try admin.quoteIdentifier(scratch)
        try applySettings(p.settings, admin: admin, to: "ALTER DATABASE \(db)")
        if let acl = p.acl { try applyDatabaseACL(acl, to: scratch, admin: admin, snapshotOwner: p.owner, noOwner: noOwner) }
        for (role, settings) in (p.roleSettings ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard try admin.scalar("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]) == "1" else {
                session.reporter.warn("role \"\(role)\" does not exist on this server: its settings in the database (\(settings.joined(separator: ", "))) were not restored; create the role and run ALTER ROLE ... IN DATABASE ... SET")
                continue
            }
            try applySettings(settings, admin: admin, to: "ALTER ROLE \(try admin.quoteIdentifier(role)) IN DATABASE \(db)")
        }
        if let limit = p.connectionLimit, limit >= 0 {
            try admin.query("ALTER DATABASE \(db) CONNECTION LIMIT \(limit)")
        }
    }

    /// The database's grants exactly as the snapshot's ACL has them, as pg_dump --create restores
    /// them: PUBLIC's and the owner's own privileges revoked first (an owner may have given up
    /// TEMP), then every item granted by its grantor (SET ROLE: a grant another role made is
    /// recorded as that role's), the owner's grants first, since others' rest on their grant options.
    /// Under --no-owner the snapshot owner's part is the new owner's. A grantor this role may not
    /// act as: the grant is made by the owner, with a warning.
    func applyDatabaseACL(_ acl: String, to scratch: String, admin: LibPQConnection, snapshotOwner: String, noOwner: Bool) throws {
        let db = try admin.quoteIdentifier(scratch)
        let owner = try admin.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", [scratch]) ?? ""
        var items = try databaseACLItems(acl, admin: admin)
        if noOwner { items = items.map { $0.renaming(snapshotOwner, to: owner) } }
        try admin.query("REVOKE ALL ON DATABASE \(db) FROM PUBLIC")
        try admin.query("REVOKE ALL ON DATABASE \(db) FROM \(try admin.quoteIdentifier(owner))")
        var byOwner: [String] = []
        let ordered = items.filter { $0.grantor == owner } + items.filter { $0.grantor != owner }
        for item in ordered {
            let grantee = try item.grantee.map { try admin.quoteIdentifier($0) } ?? "PUBLIC"
            for option in [false, true] {
                let privileges = item.privileges.filter { $0.grantOption == option }.map(\.name)
                guard !privileges.isEmpty else { continue }
                let grant = "GRANT \(privileges.joined(separator: ", ")) ON DATABASE \(db) TO \(grantee)\(option ? " WITH GRANT OPTION" : "")"
                guard item.grantor != owner else {
                    try admin.query(grant)
                    continue
                }
                do {
                    try admin.query("SET ROLE \(try admin.quoteIdentifier(item.grantor))")
                    defer { _ = try? admin.query("RESET ROLE") }
                    try admin.query(grant)
                } catch {
                    try admin.query(grant)
                    byOwner.append("\(privileges.joined(separator: ", ")) to \(item.grantee ?? "PUBLIC") (granted by \(item.grantor))")
                }
            }
        }
        if !byOwner.isEmpty {
            session.reporter.warn("database grant(s) \(byOwner.joined(separator: "; ")) were made by the owner here: this role may not act as their grantor")
        }
    }

    /// `name=value` settings as `pg_db_role_setting` holds them, re-applied as pg_dump does: a
    /// quoted literal, except the list settings, whose stored text (`"$user", public`) only
    /// set_config parses back into the list; `SET name FROM CURRENT` then stores them as set.
    /// Not set_config for all: set locally first, `role` would run the ALTER as that role and a
    /// 1 ms `lock_timeout` would end it.
    /// - Parameter trial: roll back instead of commit: whether this role may set them, asked before
    ///   the load (they are applied after it, as they would steer the load's own sessions).
    func applySettings(_ settings: [String], admin: LibPQConnection, to alter: String, trial: Bool = false) throws {
        guard !settings.isEmpty else { return }
        try admin.query("BEGIN")
        do {
            for s in settings {
                guard let eq = s.firstIndex(of: "=") else { continue }
                let name = String(s[..<eq]), value = String(s[s.index(after: eq)...])
                let setting = try admin.quoteIdentifier(name)
                if Self.listSettings.contains(name.lowercased()) {
                    try admin.query("SELECT set_config($1, $2, true)", [name, value])
                    try admin.query("\(alter) SET \(setting) FROM CURRENT")
                } else {
                    try admin.query("\(alter) SET \(setting) TO \(try admin.quoteLiteral(value))")
                }
            }
            try admin.query(trial ? "ROLLBACK" : "COMMIT")
        } catch {
            _ = try? admin.query("ROLLBACK")
            let denied = "\(error)".contains("permission denied")
            throw PGSnapError("cannot re-apply the snapshot's database settings (\(error))",
                              next: denied ? "The target was not changed; restore as a superuser (some of these settings only a superuser may set)"
                                : "The target was not changed; fix the cause and restore again")
        }
    }

    /// Settings whose stored value is a quoted list (pg_dump's `variable_is_guc_list_quote`).
    static let listSettings: Set<String> = [
        "local_preload_libraries", "search_path", "session_preload_libraries", "shared_preload_libraries", "temp_tablespaces",
        "unix_socket_directories",
    ]

    /// The database's and its roles' settings, tried on the new scratch database and rolled back.
    func trySettings(_ m: Manifest, on scratch: String, admin: LibPQConnection) throws {
        guard let p = m.databaseProperties else { return }
        let db = try admin.quoteIdentifier(scratch)
        try applySettings(p.settings, admin: admin, to: "ALTER DATABASE \(db)", trial: true)
        for (role, settings) in (p.roleSettings ?? [:]).sorted(by: { $0.key < $1.key })
        where try admin.scalar("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]) == "1" {
            try applySettings(settings, admin: admin, to: "ALTER ROLE \(try admin.quoteIdentifier(role)) IN DATABASE \(db)", trial: true)
        }
    }

    /// What belongs to the old database and cannot move with a restore: said before the swap, so
    /// nobody finds out a week later that replication stopped.
    func warnAboutStateLeftBehind(target: String, previous: String, admin: LibPQConnection) throws {
        let slots = try admin.query("""
            SELECT slot_name FROM pg_replication_slots WHERE database = $1 AND slot_type = 'logical' ORDER BY 1
            """, [target]).compactMap { $0[0] }
        if !slots.isEmpty {
            session.reporter.warn("logical replication slot(s) \(slots.joined(separator: ", ")) belong to the old database (kept as \(previous)) and do not move to the restored one; recreate them and resynchronise their subscribers")
        }
        let subscriptions = try admin.query("""
            SELECT s.subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = $1 ORDER BY 1
            """, [target]).compactMap { $0[0] }
        if !subscriptions.isEmpty {
            session.reporter.warn("subscription(s) \(subscriptions.joined(separator: ", ")) of the old database do not carry their replication state over: the restored copies are disabled and not connected (ALTER SUBSCRIPTION ... ENABLE after checking their slots)")
        }
    }

    /// Renames target aside and scratch into place in one transaction; returns the previous database's name.
    ///
    /// Nothing about the target changes before that transaction commits (no ALLOW_CONNECTIONS
    /// toggling that a kill -9 could leave behind): a client that reconnects between the
    /// termination and the rename makes the rename fail, the transaction roll back, and we retry.
    func swap(target: String, scratch: String, admin: LibPQConnection, options: RestoreOptions) throws -> String {
        let t = try admin.quoteIdentifier(target)
        var previous = previousName(for: target)
        var attempt = 1
        while attempt < 1000, try DatabaseFacts.exists(admin, database: previous) {
            attempt += 1
            previous = previousName(for: target, attempt: attempt)
        }
        try? warnAboutStateLeftBehind(target: target, previous: previous, admin: admin)
        // With --terminate-connections a second session ends the target's sessions while the
        // rename waits for them (SwapTerminator): reconnecting pools cannot win the race.
        var helper: (connection: LibPQConnection, oid: String, pid: String)?
        if options.terminateConnections, let oid = try admin.scalar("SELECT oid FROM pg_database WHERE datname = $1", [target]),
           let pid = try admin.scalar("SELECT pg_backend_pid()") {
            helper = (try connectMaintenance(excluding: target), oid, pid)
        }
        var lastError: Error?
        // Its backend may outlive the connection (a COMMIT waiting for a synchronous standby
        // does not notice a dead client): swapOutcome ends it before reading the catalogue.
        let backend = try admin.scalar("SELECT pg_backend_pid()")
        for _ in 0..<10 {
            let sessions = try DatabaseFacts.otherSessions(admin, database: target)
            if !sessions.isEmpty {
                guard options.terminateConnections else {
                    throw PGSnapError("database \"\(target)\" has \(sessions.count) other session(s): \(sessions.joined(separator: "; "))",
                                      next: "Stop those clients, or pass --terminate-connections; nothing was changed")
                }
                try refuseSessionsBeyondReach(target: target, admin: admin)
                try admin.query("""
                    SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
                    WHERE datname = $1 AND pid <> pg_backend_pid() AND \(DatabaseFacts.clientBackend)
                    """, [target])
            }
            do {
                try admin.query("BEGIN")
                let terminator = helper.map { SwapTerminator(connection: $0.connection, oid: $0.oid, except: $0.pid) }
                defer { terminator?.stop() }
                try admin.query("ALTER DATABASE \(t) RENAME TO \(try admin.quoteIdentifier(previous))")
                // Renamed under our lock: no session of it is left, none can start. Stopped before
                // the commit, after which the name is the restored database's.
                terminator?.stop()
                try admin.query("ALTER DATABASE \(try admin.quoteIdentifier(scratch)) RENAME TO \(t)")
                // The last moment a Ctrl-C or SIGTERM can keep the target: the signal's cancel
                // reaches a statement only while it runs, and one that landed between them
                // (or a cancel swallowed on the way) must not let the COMMIT through.
                if SignalTrap.received != nil { throw SwapInterrupted() }
                try admin.query("COMMIT")
                return previous
            } catch {
                // A connection lost at COMMIT (waiting for a synchronous standby, say) may have
                // committed: what the catalogue says now decides, not the error.
                if !admin.isAlive { return try swapOutcome(target: target, scratch: scratch, previous: previous, backend: backend, error: error) }
                _ = try? admin.query("ROLLBACK")
                if SignalTrap.received != nil {
                    throw PGSnapError(.interrupted, "restore interrupted at the swap, before it committed; \(target) was not changed")
                }
                lastError = error
                guard "\(error)".contains("being accessed by other users") else { break }
            }
        }
        let reason = lastError.map { "\($0)" } ?? "unknown error"
        // A transaction prepared during the load keeps the database in use whatever its sessions do.
        let prepared = (try? DatabaseFacts.preparedTransactions(admin, database: target)) ?? []
        throw PGSnapError("cannot swap the restored database into place: \(reason)",
                          next: !prepared.isEmpty
                            ? "\(target) was not changed; it has prepared transaction(s) \(prepared.prefix(5).joined(separator: ", ")): COMMIT PREPARED or ROLLBACK PREPARED them, then restore again"
                            : reason.contains("being accessed by other users")
                            ? "\(target) was not changed; stop the clients that keep reconnecting and restore again"
                            : "\(target) was not changed; fix the cause and restore again")
    }

    struct SwapInterrupted: Error {}

    /// After the connection was lost during the swap: the previous name taken and the scratch
    /// name gone means it committed (the restore is in place, said as a warning); the scratch
    /// database still there and no previous one means it did not; anything else is said as
    /// unknown, with where to look.
    func swapOutcome(target: String, scratch: String, previous: String, backend: String?, error: Error) throws -> String {
        let lost = session.redact(oneLine("\(error)"))
        // Until the old backend is gone, its transaction may still commit (ending it in a
        // synchronous-standby wait completes the local commit): only then is the catalogue final.
        let fresh = try? connectMaintenance(excluding: target)
        if let fresh, let backend, Int32(backend) != nil {
            _ = try? fresh.query("SELECT pg_terminate_backend(\(backend), 10000)")
            if (try? fresh.scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = \(backend)")) != "0" {
                throw PGSnapError("lost the connection to the server during the swap (\(lost)), and its session \(backend) is still there: whether \(target) was replaced is not known yet",
                                  next: "When session \(backend) has ended (pg_stat_activity), look at pg_database: \(previous) present and \(scratch) gone means the restore is in place; \(scratch) present means \(target) was not changed (drop \(scratch))")
            }
        }
        guard let fresh,
              let previousExists = try? DatabaseFacts.exists(fresh, database: previous),
              let scratchExists = try? DatabaseFacts.exists(fresh, database: scratch) else {
            throw PGSnapError("lost the connection to the server during the swap (\(lost)) and cannot reach it again: whether \(target) was replaced is unknown",
                              next: "When the server is back, look at pg_database: \(previous) present and \(scratch) gone means the restore is in place (\(previous) is the database as it was); \(scratch) present means \(target) was not changed (drop \(scratch))")
        }
        if previousExists && !scratchExists {
            session.reporter.warn("the connection was lost at the swap's COMMIT (\(lost)), but it had committed: \(target) is the restored database")
            return previous
        }
        if scratchExists && !previousExists {
            throw PGSnapError("lost the connection to the server during the swap (\(lost)); it did not commit",
                              next: "\(target) was not changed; check the server and restore again")
        }
        throw PGSnapError("lost the connection to the server during the swap (\(lost)); the catalogue shows \(previous) \(previousExists ? "present" : "absent") and \(scratch) \(scratchExists ? "present" : "absent")",
                          next: "Look at pg_database before anything else: \(target) may not be the database you expect")
    }

    /// --terminate-connections ends the target's sessions; a session this role may not end is
    /// named before any is ended (pg_terminate_backend would fail halfway).
    func refuseSessionsBeyondReach(target: String, admin: LibPQConnection) throws {
        let beyond = try DatabaseFacts.sessionsBeyondReach(admin, database: target)
        guard beyond.isEmpty else {
            // pg_signal_backend ends any non-superuser's session, never a superuser's.
            let superusers = beyond.contains { $0.superuser }
            throw PGSnapError("database \"\(target)\" has \(beyond.count) session(s) this role may not end: \(beyond.map(\.text).joined(separator: "; "))",
                              next: "Stop those clients, or restore as a superuser\(superusers ? "" : " or a role granted pg_signal_backend"); nothing was changed")
        }
    }

    /// `<target>_pre_restore_<UTC time>`, cut to PostgreSQL's 63-byte name limit.
    func previousName(for target: String, attempt: Int = 1) -> String {
        let suffix = "_pre_restore_" + SnapshotName.timestamp(session.now()) + (attempt > 1 ? "-\(attempt)" : "")
        var base = target
        while base.utf8.count + suffix.utf8.count > 63 { base.removeLast() }
        return base + suffix
    }

    /// DROP DATABASE ... WITH (FORCE), after detaching its subscriptions, which DROP DATABASE
    /// refuses even forced. Detached: disabled and `slot_name = NONE`, so the publisher's slot is
    /// not dropped (a restored copy of the subscription names the same slot).
    func dropDatabase(_ name: String, admin: LibPQConnection) throws {
        guard try DatabaseFacts.exists(admin, database: name) else { return }
        let subscribed = try admin.scalar("""
            SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = $1
            """, [name]) ?? "0"
        if subscribed != "0" {
            let db = try session.connect(database: name)
            for row in try db.query("SELECT quote_ident(subname) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())") {
                guard let sub = row[0] else { continue }
                try db.query("ALTER SUBSCRIPTION \(sub) DISABLE")
                try db.query("ALTER SUBSCRIPTION \(sub) SET (slot_name = NONE)")
                try db.query("DROP SUBSCRIPTION \(sub)")
            }
        }
        try admin.query("DROP DATABASE IF EXISTS \(try admin.quoteIdentifier(name)) WITH (FORCE)")
    }

    /// Drops scratch databases left by a pgsnap on this host that is no longer running (killed mid-restore).
    func dropOrphanedScratchDatabases(_ admin: LibPQConnection) throws {
        let rows = try admin.query("""
            SELECT datname FROM pg_database WHERE datname LIKE 'pgsnap\\_scratch\\_%'
            """)
        for r in rows {
            guard let name = r[0] else { continue }
            let parts = name.dropFirst(RestoreService.scratchPrefix.count).split(separator: "_")
            guard parts.count == 3, let pid = Int32(parts[1]), pid != getpid() || parts[0] != SnapshotDirectory.hostTag else { continue }
            guard parts[0] == SnapshotDirectory.hostTag else {
                // Another host's (a container, a job runner): whether its run is alive cannot be
                // told from here, so it is named, not dropped.
                let comment = (try? admin.scalar("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", [name])) ?? nil
                session.reporter.warn("scratch database \(name) was left by a restore on another host (\(comment.map { oneLine($0) } ?? "no comment")); if no restore is running there, drop it: DROP DATABASE \"\(name)\" WITH (FORCE)")
                continue
            }
            // Its pid alive but started after the database was named: another process took the
            // pid (after a reboot, say); the run that made it is gone.
            let gone = kill(pid, 0) != 0 && errno == ESRCH
            let reused = !gone && (Int(parts[2]).flatMap { named in ProcessStart.epochSeconds(pid).map { $0 > named + 2 } } ?? false)
            if gone || reused {
                session.reporter.info("pgsnap: dropping scratch database \(name) left by an interrupted run (pid \(pid)\(reused ? ", now another process's" : ""))")
                do {
                    try dropDatabase(name, admin: admin)
                } catch {
                    // Another role's (this one may not drop it): not this restore's business.
                    session.reporter.warn("could not drop \(name) (\(session.redact(oneLine("\(error)")))); its owner or a superuser can")
                }
            }
        }
    }
}
