import Foundation
import PGSnapCore

/// A restored database is ready to serve: every table that has no planner statistics after the
/// load is analyzed in the scratch database, before the swap.
///
/// A snapshot from PostgreSQL 18 carries its statistics (`pg_dump --statistics`) and the load
/// restored them, so usually nothing is left to do; older snapshots get ANALYZE here, in `jobs`
/// sessions at once. Only tables without statistics are analyzed (pg_stats, which any user may
/// read, unlike pg_statistic), so a table whose statistics came with the dump keeps exactly those.
extension RestoreService {
    /// Tables the planner would have to guess about: ordinary, partitioned and populated
    /// materialized views in user schemas with no statistics yet, or with an extended statistics
    /// object without data (18's `pg_dump --statistics` carries pg_statistic, not those), biggest
    /// first. Not a partitioned table with a foreign partition: sampling it would connect to the
    /// foreign server (and plain ANALYZE of the database skips foreign tables too).
    static let tablesWithoutStatistics = """
        SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm') AND (c.relkind <> 'm' OR c.relispopulated)
          AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
          AND (NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)
               OR EXISTS (SELECT 1 FROM pg_statistic_ext x JOIN pg_namespace xn ON xn.oid = x.stxnamespace WHERE x.stxrelid = c.oid
                          AND NOT EXISTS (SELECT 1 FROM pg_stats_ext e WHERE e.statistics_schemaname = xn.nspname
                                          AND e.statistics_name = x.stxname)))
          AND NOT (c.relkind = 'p' AND EXISTS (SELECT 1 FROM pg_partition_tree(c.oid) t JOIN pg_class f ON f.oid = t.relid
                                               WHERE f.relkind = 'f'))
        ORDER BY pg_relation_size(c.oid) DESC, 1
        """

    /// - Returns: how many tables were analyzed.
    /// - Throws: only on interruption; a table that cannot be analyzed is a warning (the data is
    ///   complete, and the planner falls back to estimates as it would without pgsnap).
    func analyze(scratch: String, jobs: Int) throws -> Int {
        let tables = try session.connect(database: scratch).query(Self.tablesWithoutStatistics).compactMap { $0[0] }
        guard !tables.isEmpty else { return 0 }
        let sessions = max(1, min(jobs, tables.count))
        session.reporter.detail("pgsnap: analyzing \(tables.count) table(s) in \(sessions) session(s)")
        let lock = NSLock()
        var next = 0
        var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: sessions) { _ in
            let db: LibPQConnection
            do {
                db = try session.connect(database: scratch)
                // The database's own settings (statement_timeout ...) are applied after this step,
                // but a server-wide one may still be set.
                try db.query("SET statement_timeout = 0")
            } catch {
                lock.withLock { failures.append("\(error)") }
                return
            }
            while SignalTrap.received == nil {
                let table: String? = lock.withLock {
                    defer { next += 1 }
                    return next < tables.count ? tables[next] : nil
                }
                guard let table else { return }
                do { try db.query("ANALYZE \(table)") } catch { lock.withLock { failures.append("\(table): \(error)") } }
            }
        }
        if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; the target was not changed") }
        if let first = failures.first {
            session.reporter.warn("could not analyze \(failures.count) table(s) (first: \(session.redact(oneLine(first)))); the data is complete, run ANALYZE on them later")
        }
        return tables.count
    }
}
