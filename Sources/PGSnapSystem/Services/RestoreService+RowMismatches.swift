import Foundation
import PGSnapCore

/// A table whose restored row count differs from the snapshot's.
struct RowMismatch {
    let table: String
    let got: Int64
    let expected: Int64
}

/// Restored row counts that differ from the snapshot's for a reason of PostgreSQL's own, not
/// because rows are missing; every other difference fails the restore.
///
/// - An extension's configuration table (`pg_extension_config_dump`) with a filter: pg_dump
///   dumps only the rows the filter selects (the user's), and `CREATE EXTENSION` puts the
///   extension's own rows back (PostGIS' `spatial_ref_sys`). The rows the filter selects are
///   checked, as pg_dump selected them.
/// - pg_dump writes the rows of every partition of a tree hash-partitioned on an enum key as a
///   COPY into the tree's root (`--load-via-partition-root`, forced: an enum's hash depends on its
///   OIDs, which differ between databases), so the server routes each row anew and it may land in
///   a sibling partition. Such partitions are checked together: the rows their tree holds against
///   the rows the snapshot has for them. Only trees with a hash-partitioned level; in a range or
///   list tree a row can only go where it was, so a different count there is always an error. (A
///   plain snapshot counts such rows under the root, as its COPY names it.)
extension RestoreService {
    /// - Returns: the mismatches nothing above explains, by table name; the first is the error to report.
    func unexplainedMismatches(_ mismatches: [RowMismatch], scratch: String) throws -> [RowMismatch] {
        guard !mismatches.isEmpty else { return [] }
        let db = try session.connect(database: scratch)
        var byRoot: [String: [RowMismatch]] = [:]
        var unexplained: [RowMismatch] = []
        for wrong in mismatches.sorted(by: { $0.table < $1.table }) {
            guard let name = QualifiedName.parse(wrong.table) else { unexplained.append(wrong); continue }
            let regclass = "\(try db.quoteLiteral(name))::regclass"
            // The extension's own SQL, as pg_dump used it ("WHERE NOT standard_entry").
            if let filter = try db.scalar("""
                SELECT e.extcondition[array_position(e.extconfig, c.oid)] FROM pg_extension e JOIN pg_class c ON c.oid = ANY (e.extconfig)
                WHERE c.oid = \(regclass)
                """), !filter.isEmpty {
                let selected = Int64(try db.scalar("SELECT count(*) FROM ONLY \(name) \(filter)") ?? "")
                if selected == wrong.expected {
                    session.reporter.detail("pgsnap: \(wrong.table) is a configuration table of an extension: \(selected!) rows \(filter), as in the snapshot; the other \(wrong.got - selected!) came with CREATE EXTENSION")
                } else {
                    unexplained.append(wrong)
                }
                continue
            }
            // A plain snapshot names the root itself (its COPY target), which holds no rows of its
            // own: its rows are its whole tree's.
            if try db.scalar("SELECT relkind FROM pg_class WHERE oid = \(regclass)") == "p" {
                if Int64(try db.scalar("SELECT count(*) FROM \(name)") ?? "") != wrong.expected { unexplained.append(wrong) }
                continue
            }
            let root = try db.scalar("""
                SELECT quote_ident(n.nspname) || '.' || quote_ident(r.relname) FROM pg_class c
                JOIN pg_class r ON r.oid = pg_partition_root(c.oid) JOIN pg_namespace n ON n.oid = r.relnamespace
                WHERE c.oid = \(regclass) AND c.relispartition
                  AND EXISTS (SELECT 1 FROM pg_partition_tree(r.oid) t JOIN pg_partitioned_table p ON p.partrelid = t.relid
                              WHERE p.partstrat = 'h')
                """)
            if let root, !root.isEmpty { byRoot[root, default: []].append(wrong) } else { unexplained.append(wrong) }
        }
        for (root, leaves) in byRoot.sorted(by: { $0.key < $1.key }) {
            let got = leaves.reduce(Int64(0)) { $0 + $1.got }, expected = leaves.reduce(Int64(0)) { $0 + $1.expected }
            guard got == expected else {
                unexplained += leaves
                continue
            }
            session.reporter.info("pgsnap: \(root) is hash-partitioned on an enum key: PostgreSQL routed its rows anew, so \(leaves.map(\.table).joined(separator: ", ")) hold a different split of them than in the snapshot (\(expected) rows together, as there)")
        }
        return unexplained.sorted { $0.table < $1.table }
    }
}
