import Foundation
import PGSnapCore

/// Queries pgsnap asks of a database, in one place.
public enum DatabaseFacts {
    public static func migrationState(_ db: LibPQConnection) throws -> Manifest.MigrationState? {
        // golang-migrate keeps one row in schema_migrations(version bigint, dirty boolean).
        guard try db.scalar("SELECT to_regclass('schema_migrations') IS NOT NULL") == "t" else { return nil }
        let cols = try db.query("""
            SELECT count(*) FILTER (WHERE attname = 'version'), count(*) FILTER (WHERE attname = 'dirty')
            FROM pg_attribute WHERE attrelid = 'schema_migrations'::regclass AND NOT attisdropped
            """)
        guard cols.first?[0] == "1", cols.first?[1] == "1" else { return nil }
        let rows = try db.query("SELECT version::bigint, dirty::boolean FROM schema_migrations ORDER BY version DESC LIMIT 1")
        guard let row = rows.first, let v = row[0].flatMap({ Int64($0) }) else { return nil }
        return Manifest.MigrationState(version: v, dirty: row[1] == "t")
    }

    public static func properties(_ db: LibPQConnection, database: String) throws -> DatabaseProperties {
        let rows = try db.query("""
            SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                   d.datacl::text, d.datconnlimit::text, shobj_description(d.oid, 'pg_database')
            FROM pg_database d WHERE d.datname = $1
            """, [database])
        guard let r = rows.first else { throw PGSnapError("database \"\(database)\" does not exist") }
        let settings = try db.query("""
            SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
            WHERE d.datname = $1 AND s.setrole = 0
            """, [database]).compactMap { $0[0] }
        return DatabaseProperties(owner: r[0] ?? "", encoding: r[1] ?? "UTF8", collate: r[2] ?? "C", ctype: r[3] ?? "C",
                                  acl: r[4], settings: settings, comment: r[6], connectionLimit: r[5].flatMap { Int($0) })
    }

    /// Locks every table (ACCESS SHARE, as pg_dump does) and only then takes and exports the
    /// snapshot pg_dump will use; the transaction stays open until the dump is done.
    ///
    /// Why: TRUNCATE and table rewrites are not MVCC-safe. One that commits after the snapshot but
    /// before pg_dump has locked the table would leave the snapshot seeing the table empty, a state
    /// the database was never in. Locked first, such a statement either committed before the
    /// snapshot (its result is dumped) or waits until the dump is done.
    ///
    /// - Throws: `PGSnapError` when a table stays locked by another session for `lockTimeoutMs`.
    public static func lockTablesAndExportSnapshot(_ db: LibPQConnection, lockTimeoutMs: Int?) throws -> String {
        let dropped = "42P01", lockTimeout = "55P03"
        for attempt in 1...5 {
            // Listed outside the transaction: in REPEATABLE READ the first query fixes the
            // snapshot, and LOCK must come before it.
            let tables = try db.query("""
                SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> 'information_schema'
                  AND n.nspname NOT LIKE 'pg\\_%'
                ORDER BY c.oid
                """).compactMap { $0[0] }
            try db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if let lockTimeoutMs { try db.query("SET LOCAL lock_timeout = \(lockTimeoutMs)") }
            do {
                if !tables.isEmpty {
                    try db.query("LOCK TABLE \(tables.joined(separator: ", ")) IN ACCESS SHARE MODE")
                }
                return try db.scalar("SELECT pg_export_snapshot()") ?? ""
            } catch {
                let state = db.lastSQLState
                try? db.query("ROLLBACK")
                if state == dropped && attempt < 5 { continue }  // a table was dropped meanwhile: list again
                if state == lockTimeout {
                    let limit = lockTimeoutMs.map(formatSeconds) ?? (try? db.scalar("SHOW lock_timeout")).flatMap { $0 } ?? "lock_timeout"
                    throw PGSnapError(
                        "could not lock every table (lock timeout after \(limit)): another session holds an exclusive lock (a running migration, VACUUM FULL or ALTER TABLE?)",
                        next: "Nothing was written; wait for it to finish, or raise --lock-wait-timeout")
                }
                throw error
            }
        }
        throw PGSnapError("tables kept being dropped while the backup started", next: "Nothing was written; run the backup again")
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
            FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
            ORDER BY pid
            """, [database]).map { r in
            "pid \(r[0] ?? "?") application=\(r[1] ?? "-") user=\(r[2] ?? "-") client=\(r[3] ?? "-") state=\(r[4] ?? "-")"
        }
    }
}
