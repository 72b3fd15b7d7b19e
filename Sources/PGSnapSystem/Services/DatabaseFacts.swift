import Foundation
import PGSnapCore

/// Queries pgsnap asks of a database, in one place.
public enum DatabaseFacts {
    public static func migrationState(_ db: LibPQConnection) throws -> Manifest.MigrationState? {
        // golang-migrate keeps one row in schema_migrations(version bigint, dirty boolean); Rails and
        // dbmate one row per applied migration (version varchar, no dirty column): the newest counts.
        // The one on the search path, as the tool finds it; else the only one in any schema (a
        // tool run with its own search_path, or migrate's x-migrations-table in a schema).
        let table: String
        if let found = try migrationTablesOffSearchPath(db) {
            guard found.count == 1 else { return nil }
            table = found[0]
        } else {
            table = "schema_migrations"
        }
        let cols = try db.query("""
            SELECT count(*) FILTER (WHERE attname = 'version'), count(*) FILTER (WHERE attname = 'dirty')
            FROM pg_attribute WHERE attrelid = $1::regclass AND NOT attisdropped
            """, [table])
        guard cols.first?[0] == "1" else { return nil }
        let query = cols.first?[1] == "1"
            ? "SELECT version::bigint, dirty::boolean FROM \(table) ORDER BY version DESC LIMIT 1"
            : "SELECT max(version::text::numeric)::bigint, false FROM \(table) WHERE version::text ~ '^[0-9]{1,18}$'"
        let rows = try db.query(query)
        guard let row = rows.first, let v = row[0].flatMap({ Int64($0) }) else { return nil }
        return Manifest.MigrationState(version: v, dirty: row[1] == "t")
    }

    /// The schema_migrations tables of a database whose search path holds none, when there is
    /// more than one (`migrationState` then cannot tell which the tool uses, and reads none).
    public static func ambiguousMigrationTables(_ db: LibPQConnection) throws -> [String] {
        guard let found = try migrationTablesOffSearchPath(db), found.count > 1 else { return [] }
        return found
    }

    /// nil when the search path holds a schema_migrations; else those of every user schema.
    static func migrationTablesOffSearchPath(_ db: LibPQConnection) throws -> [String]? {
        guard try db.scalar("SELECT to_regclass('schema_migrations') IS NULL") == "t" else { return nil }
        return try db.query("""
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = 'schema_migrations' AND c.relkind IN ('r', 'p')
              AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1
            """).compactMap { $0[0] }
    }

    public static func properties(_ db: LibPQConnection, database: String) throws -> DatabaseProperties {
        let rows = try db.query(db.catalogue.databasePropertiesQuery, [database])
        guard let r = rows.first else { throw PGSnapError("database \"\(database)\" does not exist") }
        let settings = try db.query("""
            SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
            WHERE d.datname = $1 AND s.setrole = 0
            """, [database]).compactMap { $0[0] }
        var roleSettings: [String: [String]] = [:]
        for row in try db.query("""
            SELECT r.rolname, unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
            JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = $1 AND s.setrole <> 0 ORDER BY 1
            """, [database]) {
            guard let role = row[0], let setting = row[1] else { continue }
            roleSettings[role, default: []].append(setting)
        }
        let locale = ServerCatalogue.localeFields(provider: r[7], locale: r[8])
        return DatabaseProperties(owner: r[0] ?? "", encoding: r[1] ?? "UTF8", collate: r[2] ?? "C", ctype: r[3] ?? "C",
                                  acl: r[4], settings: settings, comment: r[6], connectionLimit: r[5].flatMap { Int($0) },
                                  roleSettings: roleSettings.isEmpty ? nil : roleSettings, localeProvider: locale.provider,
                                  iculocale: locale.icu, icuRules: r[9], builtinLocale: locale.builtin, tablespace: r[10],
                                  isTemplate: r[11] == "true")
    }

    /// How the backup's tables were locked against a TRUNCATE slipping in before pg_dump locks them.
    public struct TableLocking: Sendable {
        public var snapshotID: String
        /// Tables pg_dump will lock (ordinary and partitioned).
        public var tables: Int
        /// False when locking them twice (ours, then pg_dump's) would not fit the server's lock table.
        public var beforeSnapshot: Bool
        /// Lock slots the whole server has: max_locks_per_transaction x (backends + prepared transactions).
        public var lockSlots: Int
    }

    /// Locks every table (ACCESS SHARE, as pg_dump does) and only then takes and exports the
    /// snapshot pg_dump will use; the transaction stays open until the dump is done.
    ///
    /// Why: TRUNCATE and table rewrites are not MVCC-safe. One that commits after the snapshot but
    /// before pg_dump has locked the table would leave the snapshot seeing the table empty, a state
    /// the database was never in. Locked first, such a statement either committed before the
    /// snapshot (its result is dumped) or waits until the dump is done.
    ///
    /// Only what pg_dump locks is locked: ordinary and partitioned tables (LOCK refuses views,
    /// materialized views and foreign tables). Our locks and pg_dump's are held at once, so this
    /// needs two lock slots per table; when that would not fit the server's shared lock table the
    /// snapshot is exported without them and pg_dump's own locking is all there is, exactly as
    /// with plain pg_dump (`beforeSnapshot` false: the caller warns and notes it in the manifest).
    ///
    /// - Throws: `PGSnapError` when a table stays locked by another session for `lockTimeoutMs`, or cannot be locked.
    public static func lockTablesAndExportSnapshot(_ db: LibPQConnection, lockTimeoutMs: Int?) throws -> TableLocking {
        let dropped = "42P01", lockTimeout = "55P03"
        let slots = try lockSlots(db)
        for attempt in 1...5 {
            // Listed outside the transaction: in REPEATABLE READ the first query fixes the
            // snapshot, and LOCK must come before it.
            let tables = try db.query("""
                SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema'
                  AND n.nspname NOT LIKE 'pg\\_%'
                ORDER BY c.oid
                """).compactMap { $0[0] }
            let inUse = Int(try db.scalar("SELECT count(*) FROM pg_locks") ?? "") ?? 0
            // Ours and pg_dump's, plus a tenth of the table for everyone else.
            let fits = 2 * tables.count + inUse <= slots - slots / 10
            try db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if let lockTimeoutMs { try db.query("SET LOCAL lock_timeout = \(lockTimeoutMs)") }
            do {
                if fits && !tables.isEmpty {
                    try db.query("LOCK TABLE \(tables.joined(separator: ", ")) IN ACCESS SHARE MODE")
                }
                let id = try db.scalar("SELECT pg_export_snapshot()") ?? ""
                return TableLocking(snapshotID: id, tables: tables.count, beforeSnapshot: fits, lockSlots: slots)
            } catch {
                let state = db.lastSQLState
                let message = db.lastErrorMessage
                _ = try? db.query("ROLLBACK")
                if state == dropped && attempt < 5 { continue }  // a table was dropped meanwhile: list again
                if state == lockTimeout {
                    let limit = lockTimeoutMs.map(formatSeconds) ?? (try? db.scalar("SHOW lock_timeout")).flatMap { $0 } ?? "lock_timeout"
                    throw PGSnapError(
                        "could not lock every table (lock timeout after \(limit)): another session holds an exclusive lock (a running migration, VACUUM FULL or ALTER TABLE?)",
                        next: "Nothing was written; wait for it to finish, or raise --lock-wait-timeout")
                }
                if state == outOfSharedMemory {
                    throw outOfLocks(tool: "locking the tables", tables: tables.count, slots: slots)
                }
                throw PGSnapError("could not lock table(s) before the snapshot: \(oneLine(message ?? "\(error)"))",
                                  next: "Nothing was written; pg_dump needs the same locks: fix the cause (privileges?) and run the backup again")
            }
        }
        throw PGSnapError("tables kept being dropped while the backup started", next: "Nothing was written; run the backup again")
    }

    static let outOfSharedMemory = "53200"

    /// The size of the server's shared lock table (PostgreSQL's NLOCKENTS).
    static func lockSlots(_ db: LibPQConnection) throws -> Int {
        let v = try db.scalar("""
            SELECT current_setting('max_locks_per_transaction')::int * (current_setting('max_connections')::int
                + current_setting('autovacuum_max_workers')::int + 1 + current_setting('max_worker_processes')::int
                + current_setting('max_wal_senders')::int + current_setting('max_prepared_transactions')::int)
            """)
        return Int(v ?? "") ?? 0
    }

    /// "out of shared memory" from locking, said so that the cause and the setting are named.
    public static func outOfLocks(tool: String, tables: Int, slots: Int) -> PGSnapError {
        PGSnapError("\(tool) ran out of lock slots (out of shared memory): \(tables) tables, the server's lock table holds about \(slots)",
                    next: "Raise max_locks_per_transaction on the server (it needs a restart) and run it again; nothing was kept")
    }

    static func formatSeconds(_ ms: Int) -> String {
        ms % 1000 == 0 ? "\(ms / 1000) s" : String(format: "%.1f s", Double(ms) / 1000)
    }

    public static func exists(_ db: LibPQConnection, database: String) throws -> Bool {
        try db.scalar("SELECT 1 FROM pg_database WHERE datname = $1", [database]) == "1"
    }

    /// Client sessions on `database` other than our own (autovacuum workers are not clients).
    public static func otherSessions(_ db: LibPQConnection, database: String) throws -> [String] {
        try db.query("""
            SELECT pid::text, coalesce(nullif(application_name, ''), '-'), coalesce(usename, '-'),
                   coalesce(client_addr::text, 'local'), coalesce(state, '-')
            FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND \(clientBackend)
            ORDER BY pid
            """, [database]).map { r in
            "pid \(r[0] ?? "?") application=\(r[1] ?? "-") user=\(r[2] ?? "-") client=\(r[3] ?? "-") state=\(r[4] ?? "-")"
        }
    }

    /// A client session. pg_stat_activity shows another role's sessions to a role without
    /// pg_read_all_stats with most columns NULL, backend_type among them: such a row is a client
    /// when it has a role (an autovacuum worker has none; the rename at the swap ends those itself).
    public static let clientBackend = "(backend_type = 'client backend' OR (backend_type IS NULL AND usesysid IS NOT NULL))"

    /// The other sessions on `database` that this role may not end with pg_terminate_backend
    /// (PostgreSQL's rule): a superuser's, unless it is one; another role's, unless it has that
    /// role's privileges or pg_signal_backend's.
    public static func sessionsBeyondReach(_ db: LibPQConnection, database: String) throws -> [(text: String, superuser: Bool)] {
        try db.query("""
            SELECT a.pid::text, coalesce(a.usename, '-'), (SELECT rolsuper FROM pg_roles r WHERE r.oid = a.usesysid)::text FROM pg_stat_activity a
            WHERE a.datname = $1 AND a.pid <> pg_backend_pid() AND \(clientBackend) AND a.usesysid IS NOT NULL
              AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
              AND ((SELECT rolsuper FROM pg_roles r WHERE r.oid = a.usesysid)
                   OR NOT (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_signal_backend', 'USAGE')))
            ORDER BY a.pid
            """, [database]).map { ("pid \($0[0] ?? "?") user=\($0[1] ?? "-")", $0[2] == "true") }
    }

    /// Whether this role may rename `database` (its owner's privileges, or a superuser's): a
    /// restore over it renames it aside.
    public static func mayRename(_ db: LibPQConnection, database: String) throws -> (Bool, owner: String) {
        let r = try db.query("SELECT pg_has_role(datdba, 'USAGE')::text, pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", [database]).first
        return (r?[0] == "true", r?[1] ?? "?")
    }

    /// Prepared transactions on `database` (their gids): they keep it in use until committed or
    /// rolled back, whatever happens to its sessions.
    public static func preparedTransactions(_ db: LibPQConnection, database: String) throws -> [String] {
        try db.query("SELECT gid FROM pg_prepared_xacts WHERE database = $1 ORDER BY prepared", [database]).compactMap { $0[0] }
    }
}
