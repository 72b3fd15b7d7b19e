import Foundation
import PGSnapCore

/// A table whose restored row count differs from the snapshot's.
struct RowMismatch {
    let table: String
    let got: Int64
    let expected: Int64
}

/// Restored row counts that differ from the snapshot's for a reason of pg_dump's and
/// PostgreSQL's own, not because rows are missing; every other difference fails the restore.
///
/// - An extension's configuration table (`pg_extension_config_dump`) with a filter: pg_dump
///   dumps only the rows the filter selects (the user's), and `CREATE EXTENSION` puts the
///   extension's own rows back (PostGIS' `spatial_ref_sys`). The rows the filter selects are
///   checked, as pg_dump selected them (with an empty search_path, read-only).
/// - A partition below a level hash-partitioned on an enum key: pg_dump writes its rows as a COPY
///   into the top root (`--load-via-partition-root`, forced: an enum's hash depends on its OIDs,
///   which differ between databases), so the server routes each row anew and it may land in a
///   sibling. Such partitions are checked together per root: the rows they hold against the rows
///   the snapshot has for them. pg_dump's own rule (a hash level with the `enum_ops` operator
///   class), nothing wider: any other partition is loaded into itself, and a different count
///   there is always an error.
/// - A plain snapshot names such a root itself (its COPY target): its whole tree's rows, less
///   those of the partitions the snapshot names on their own.
///
/// Before any of these: row-level security. `count(*)` by a role that is not a superuser and has
/// no BYPASSRLS sees only the rows the table's policies show it (the owner too, under FORCE ROW
/// LEVEL SECURITY), though the load stored them all. Such a table is counted again with its row
/// security disabled inside a transaction that is rolled back: nothing in the scratch database
/// changes, and the restoring role owns its tables (or is a member of their owner).
///
/// A question about a table that fails leaves its difference unexplained: an error, exit 2.
extension RestoreService {
    /// - Returns: the mismatches nothing above explains, by table name; the first is the error to report.
    func unexplainedMismatches(_ mismatches: [RowMismatch], all: [String: Int64], scratch: String) throws -> [RowMismatch] {
        guard !mismatches.isEmpty else { return [] }
        guard let db = try? session.connect(database: scratch) else { return mismatches.sorted { $0.table < $1.table } }
        var byRoot: [String: [RowMismatch]] = [:]
        var unexplained: [RowMismatch] = []
        for found in mismatches.sorted(by: { $0.table < $1.table }) {
            var wrong = found
            if let all = try? countIgnoringRowSecurity(wrong.table, db: db) {
                guard all != wrong.expected else { continue }
                wrong = RowMismatch(table: wrong.table, got: all, expected: wrong.expected)
            }
            do {
                switch try explanation(of: wrong, all: all, db: db) {
                case .configurationTable(let filter, let selected):
                    session.reporter.info("pgsnap: \(wrong.table) is an extension's configuration table: \(selected) rows \(oneLine(filter)), as in the snapshot; the other \(wrong.got - selected) came with CREATE EXTENSION")
                case .reroutedBelow(let root):
                    byRoot[root, default: []].append(wrong)
                case .wholeTree:
                    break
                case nil:
                    unexplained.append(wrong)
                }
            } catch {
                unexplained.append(wrong)
            }
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

    /// The table's rows, counted with its row security disabled in a rolled-back transaction;
    /// nil when row-level security is off for it (the first count saw every row).
    func countIgnoringRowSecurity(_ table: String, db: LibPQConnection) throws -> Int64? {
        guard let name = QualifiedName.parse(table) else { return nil }
        guard try db.scalar("SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = \(try db.quoteLiteral(name))::regclass") == "t" else {
            return nil
        }
        try db.query("BEGIN")
        defer { _ = try? db.query("ROLLBACK") }
        try db.query("ALTER TABLE ONLY \(name) DISABLE ROW LEVEL SECURITY")
        return Int64(try db.scalar("SELECT pg_catalog.count(*) FROM ONLY \(name)") ?? "")
    }

    enum RowExplanation {
        case configurationTable(filter: String, selected: Int64)
        /// A partition loaded through `root`: checked with its siblings.
        case reroutedBelow(root: String)
        /// A plain snapshot's root whose tree holds its rows.
        case wholeTree
    }

    func explanation(of wrong: RowMismatch, all: [String: Int64], db: LibPQConnection) throws -> RowExplanation? {
        guard let name = QualifiedName.parse(wrong.table) else { return nil }
        let regclass = "\(try db.quoteLiteral(name))::regclass"
        // The extension's own SQL, as pg_dump ran it: search_path empty, nothing written.
        if let filter = try db.scalar("""
            SELECT e.extcondition[array_position(e.extconfig, c.oid)] FROM pg_extension e JOIN pg_class c ON c.oid = ANY (e.extconfig)
            WHERE c.oid = \(regclass)
            """), !filter.isEmpty {
            try db.execute("BEGIN READ ONLY; SELECT pg_catalog.set_config('search_path', '', true)")
            defer { _ = try? db.execute("ROLLBACK") }
            let selected = Int64(try db.scalar("SELECT pg_catalog.count(*) FROM ONLY \(name) \(filter)") ?? "")
            return selected == wrong.expected ? .configurationTable(filter: filter, selected: selected!) : nil
        }
        // Below a level hash-partitioned with enum_ops, pg_dump's test for loading through the root.
        let enumHashAncestor = """
            EXISTS (SELECT 1 FROM pg_partition_ancestors(c.oid) a JOIN pg_partitioned_table p ON p.partrelid = a.relid
                    JOIN pg_opclass o ON o.oid = ANY (p.partclass::oid[]) JOIN pg_am m ON m.oid = o.opcmethod
                    WHERE p.partstrat = 'h' AND o.opcname = 'enum_ops' AND m.amname = 'hash'
                      AND o.opcnamespace = 'pg_catalog'::regnamespace)
            """
        if try db.scalar("SELECT relkind FROM pg_class WHERE oid = \(regclass)") == "p" {
            // Its tree's rows, less those of partitions loaded into themselves (named on their own).
            let named = try db.query("""
                SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_partition_tree(\(regclass)) t
                JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.relid <> \(regclass)
                """).compactMap { $0[0].flatMap(QualifiedName.parse) }
            let own = named.reduce(Int64(0)) { $0 + (all[$1] ?? 0) }
            return Int64(try db.scalar("SELECT count(*) FROM \(name)") ?? "") == wrong.expected + own ? .wholeTree : nil
        }
        let root = try db.scalar("""
            SELECT quote_ident(n.nspname) || '.' || quote_ident(r.relname) FROM pg_class c
            JOIN pg_class r ON r.oid = pg_partition_root(c.oid) JOIN pg_namespace n ON n.oid = r.relnamespace
            WHERE c.oid = \(regclass) AND c.relispartition AND \(enumHashAncestor)
            """)
        return root.flatMap { $0.isEmpty ? nil : .reroutedBelow(root: $0) }
    }
}
