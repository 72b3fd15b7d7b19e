import Foundation
import PGSnapCore

/// One line of the pre-migration checklist.
public struct PreflightCheck: Codable, Sendable {
    public var name: String
    public var ok: Bool
    public var value: String
    public var detail: String?

    /// The lock check, when another run holding it is the only failure: exit 3 (as for every
    /// command) rather than 2, for preflight and guard alike.
    public static func onlyLockHeld(_ checks: [PreflightCheck]) -> PreflightCheck? {
        let failed = checks.filter { !$0.ok }
        return failed.count == 1 && failed[0].name == "lock" && failed[0].value == "held" ? failed[0] : nil
    }
}

public struct PreflightOptions {
    public var requireMigration: Int64?
    public var allowDirty: Bool
    public var maxConnections: Int
    /// Prove the session's age identity on the database's newest snapshot (when it is encrypted) first.
    public var proveIdentity = false
    public init(requireMigration: Int64?, allowDirty: Bool, maxConnections: Int) {
        self.requireMigration = requireMigration
        self.allowDirty = allowDirty
        self.maxConnections = maxConnections
    }
}

/// The runbook's checklist before a migration, every item measured and reported.
public struct PreflightService {
    let session: Session
    public init(session: Session) { self.session = session }

    /// - Throws: only with `proveIdentity`, when the key does not open the newest snapshot (exit 1,
    ///   before anything else is looked at); every other problem is a failed check in the list.
    public func run(_ options: PreflightOptions) throws -> (checks: [PreflightCheck], database: String?, migration: Manifest.MigrationState?) {
        var checks: [PreflightCheck] = []
        func add(_ name: String, _ ok: Bool, _ value: String, _ detail: String? = nil) {
            checks.append(PreflightCheck(name: name, ok: ok, value: value, detail: detail))
        }
        let identityCheck = options.proveIdentity ? try proveIdentityOnNewest() : nil
        let db: LibPQConnection
        do {
            db = try session.connect()
        } catch {
            add("connection", false, session.redact(session.spec.redacted), "\(error)")
            return (checks, nil, nil)
        }
        let database = (try? db.scalar("SELECT current_database()")) ?? nil ?? "?"
        let serverMajor = db.serverMajor
        add("connection", true, "database \"\(database)\", server \(((try? db.scalar("SHOW server_version")) ?? nil) ?? "?")")

        let tools = session.tools
        for tool in ["pg_dump", "psql", "pg_restore"] {
            do {
                let t = try tools.locate(tool, serverMajor: serverMajor)
                add(tool, true, "\(t.version) at \(t.path) (\(t.reason))")
            } catch {
                add(tool, false, "not usable", "\(error)")
            }
        }

        var migration: Manifest.MigrationState?
        do {
            migration = try DatabaseFacts.migrationState(db)
            if let m = migration {
                var ok = true
                var detail: [String] = []
                if m.dirty && !options.allowDirty {
                    ok = false
                    detail.append("schema_migrations is dirty at \(m.version): a migration failed half-way, or one is running now; if none is running, fix it (migrate force) or pass --allow-dirty")
                }
                if let req = options.requireMigration, m.version < req {
                    ok = false
                    detail.append("version \(m.version) is older than the required \(req): apply the earlier migrations first")
                }
                add("schema_migrations", ok, "version \(m.version)\(m.dirty ? " (dirty)" : "")", detail.isEmpty ? nil : detail.joined(separator: "; "))
            } else if case let tables = try DatabaseFacts.ambiguousMigrationTables(db), !tables.isEmpty {
                // Not "no migration table": one of them may be dirty, and guard would run on.
                add("schema_migrations", false, "\(tables.count) tables, none on the search path",
                    "\(tables.joined(separator: ", ")): which one the migration tool uses is not known; set the search path to its schema (PGOPTIONS='-c search_path=SCHEMA') and run again")
            } else if let req = options.requireMigration {
                add("schema_migrations", false, "no migration version", "--require-migration \(req) needs a schema_migrations table with a version in it")
            } else {
                add("schema_migrations", true, "no migration table")
            }
        } catch {
            add("schema_migrations", false, "unreadable", "\(error)")
        }

        do {
            let sessions = try DatabaseFacts.otherSessions(db, database: database)
            add("connections", sessions.count <= options.maxConnections, "\(sessions.count) other session(s), max \(options.maxConnections)",
                sessions.count <= options.maxConnections ? nil : "stop these clients first: " + sessions.joined(separator: "; "))
        } catch {
            add("connections", false, "unknown", "\(error)")
        }

        let dirPath = session.directoryPath
        let existing = nearestExisting(dirPath)
        let parent = SnapshotDirectory.parent(of: dirPath)
        var refused: PGSnapError?
        if existing == dirPath {
            do { _ = try SnapshotDirectory(path: dirPath, create: false) } catch let e as PGSnapError { refused = e }
        }
        if existing != dirPath && existing != parent {
            // backup makes the directory, not its parents (a mistyped --dir makes no tree).
            add("backup_directory", false, "\(dirPath) cannot be created", "its parent \(parent) does not exist: create it or choose another --dir")
        } else if let refused {
            // What every command would refuse (another user may write there, not a directory).
            add("backup_directory", false, "\(dirPath) refused", refused.what + (refused.next.map { ": " + $0 } ?? ""))
        } else if access(existing, W_OK | X_OK) == 0 {
            add("backup_directory", true, "\(dirPath) writable")
        } else {
            add("backup_directory", false, "\(dirPath) not writable", "fix the permissions of \(existing) or choose another --dir")
        }
        do {
            let size = Int64(try db.scalar("SELECT pg_database_size(current_database())") ?? "") ?? 0
            let expected = expectedSnapshotBytes(database: database, currentSize: size)
            let free = freeBytes(existing)
            let needed = expected.bytes + expected.bytes / 2
            add("disk_space", free >= needed, "\(formatBytes(free)) free, \(formatBytes(needed)) needed (1.5 x expected \(formatBytes(expected.bytes)), \(expected.basis))",
                free >= needed ? nil : "free space in \(existing) or run 'pgsnap prune'")
        } catch {
            add("disk_space", false, "unknown", "\(error)")
        }
        if let dir = try? SnapshotDirectory(path: dirPath, create: false) {
            do {
                _ = try DirectoryLock(directory: dir, mode: .shared, command: "preflight", wait: nil)
                add("lock", true, "free")
            } catch let e as PGSnapError where e.status == .locked {
                add("lock", false, "held", e.what)
            } catch {
                // Not another run: the lock file cannot be opened (a read-only directory).
                add("lock", false, "cannot be taken", (error as? PGSnapError)?.what ?? "\(error)")
            }
        } else if refused == nil {
            add("lock", true, "free (directory not created yet)")
        }
        if let identityCheck { checks.append(identityCheck) }
        return (checks, database, migration)
    }

    /// The key a rollback would need, proven on the newest snapshot of the database the session names.
    ///
    /// - Throws: exit 1 when it does not open that snapshot (or age is missing).
    func proveIdentityOnNewest() throws -> PreflightCheck {
        let database = RestoreService(session: session).defaultDatabase(target: nil)
        guard let dir = try? session.directory(create: false),
              let newest = try dir.catalog().first(where: { $0.isGood && (database == nil || $0.database == database) }), let m = newest.manifest
        else {
            return PreflightCheck(name: "identity", ok: true, value: "no snapshot\(database.map { " of \"\($0)\"" } ?? "") to try it on")
        }
        guard m.encryption != nil else {
            return PreflightCheck(name: "identity", ok: true, value: "newest snapshot \(m.id) is not encrypted")
        }
        try session.proveIdentity(for: m, in: dir)
        return PreflightCheck(name: "identity", ok: true, value: "opens the newest snapshot \(m.id)")
    }

    /// The last snapshot's size scaled by the database's growth since; without history, size / 3.
    func expectedSnapshotBytes(database: String, currentSize: Int64) -> (bytes: Int64, basis: String) {
        if let dir = try? SnapshotDirectory(path: session.directoryPath, create: false),
           let last = (try? dir.catalog())?.first(where: { $0.isGood && $0.database == database })?.manifest {
            if let then = last.databaseBytes, then > 0 {
                return (Int64(Double(last.compressedBytes) * Double(currentSize) / Double(then)), "from snapshot \(last.id) scaled by database growth")
            }
            return (last.compressedBytes, "from snapshot \(last.id)")
        }
        return (currentSize / 3, "database size \(formatBytes(currentSize)) / 3, no earlier snapshot")
    }

    func nearestExisting(_ path: String) -> String {
        var p = path
        while !p.isEmpty && access(p, F_OK) != 0 {
            let parent = SnapshotDirectory.parent(of: p)
            if parent == p { break }
            p = parent
        }
        return p.isEmpty ? "." : p
    }

    func freeBytes(_ path: String) -> Int64 {
        // Tests inject a reading here: a real full disk cannot be conjured for every CI machine.
        if let injected = session.environment["PGSNAP_TEST_FREE_BYTES"].flatMap({ Int64($0) }) { return injected }
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }
}

/// A live database compared with a snapshot's manifest: tables added, dropped, row counts changed.
public struct DiffReport: Codable, Sendable {
    public struct TableChange: Codable, Sendable {
        public var table: String
        public var snapshotRows: Int64?
        public var liveRows: Int64?
        public var change: String
    }
    public var snapshot: String
    public var database: String
    public var migrationBefore: Manifest.MigrationState?
    public var migrationNow: Manifest.MigrationState?
    public var tables: [TableChange]
}

public struct DiffService {
    let session: Session
    public init(session: Session) { self.session = session }

    public func run(_ selector: SnapshotSelector) throws -> DiffReport {
        let dir = try session.directory(create: false)
        let entry = try selector.select(from: try dir.catalog(), directory: dir.path)
        guard let m = entry.manifest else { throw PGSnapError.verification("snapshot \(entry.id) has no readable manifest") }
        // Only the manifest is read; a key given is still held to it, before the database is touched.
        if entry.isGood { try session.proveIdentity(for: m, in: dir) }
        let db = try session.connect(database: m.database)
        let live = try db.query("""
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
            """).compactMap { $0[0] }
        var liveRows: [String: Int64] = [:]
        // A table whose row-level security would hide rows from this role is not counted (a
        // filtered count would read as rows deleted): with row_security off, PostgreSQL refuses
        // such a query instead of filtering it. Superusers and BYPASSRLS roles count every row.
        try db.query("SET row_security = off")
        var hidden: Set<String> = []
        for t in live {
            guard let name = QualifiedName.parse(t) else { continue }
            do {
                liveRows[t] = Int64(try db.scalar("SELECT count(*) FROM ONLY \(name)") ?? "")
            } catch where "\(error)".contains("row-level security") {
                hidden.insert(t)
            }
        }
        var changes: [DiffReport.TableChange] = []
        for t in hidden.sorted() {
            changes.append(.init(table: t, snapshotRows: m.tableRows[t], liveRows: nil,
                                 change: "not counted: row-level security hides rows from this role"))
        }
        for t in Set(liveRows.keys).union(m.tableRows.keys).subtracting(hidden).sorted() {
            let before = m.tableRows[t], now = liveRows[t]
            switch (before, now) {
            case (nil, let n?): changes.append(.init(table: t, snapshotRows: nil, liveRows: n, change: "added"))
            case (let b?, nil): changes.append(.init(table: t, snapshotRows: b, liveRows: nil, change: "dropped"))
            case (let b?, let n?): changes.append(.init(table: t, snapshotRows: b, liveRows: n, change: b == n ? "unchanged" : (n > b ? "+\(n - b) rows" : "-\(b - n) rows")))
            default: break
            }
        }
        try db.query("RESET row_security")
        return DiffReport(snapshot: m.id, database: m.database, migrationBefore: m.migration,
                          migrationNow: try DatabaseFacts.migrationState(db), tables: changes.sorted { $0.table < $1.table })
    }
}
