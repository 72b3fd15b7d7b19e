import Foundation
import XCTest

/// Everything that makes a database the database it is, read with PostgreSQL's own tools
/// (pg_dump, psql), never with pgsnap: equal fingerprints mean the copy is the same database.
///
/// Sections, each a list of lines so a difference can be shown line by line:
/// - `schema`: `pg_dump --schema-only`, normalised (see `normalise`).
/// - `rows`: per ordinary table, partition and materialized view: row count and md5 of its rows'
///   text forms sorted (`FROM ONLY`, so a parent's hash holds only its own rows); a matview that
///   is not populated says so instead (reading it would fail).
/// - `sequences`: last_value and is_called of every sequence (log_cnt is WAL bookkeeping that a
///   dump does not and need not carry).
/// - `large objects`: oid, owner, ACL, comment and md5 of the contents (PostgreSQL 15's
///   `--schema-only` leaves large objects out entirely).
/// - `extensions`: name and version (a dump's CREATE EXTENSION names no version).
/// - `database`: what is keyed by the database itself and lives outside a plain dump: owner,
///   encoding, collation, locale provider and its locale and rules (read through to_jsonb: the
///   columns differ per major), default tablespace, connection limit,
///   allow-connections and template flags, comment, security labels, ACL (as a set: its order
///   is grant history, not meaning), `ALTER DATABASE ... SET` and every
///   `ALTER ROLE r IN DATABASE ... SET` (pg_db_role_setting, setrole = 0 and per role).
///   Never the database's name or oid: a copy legitimately differs in both.
struct DatabaseFingerprint: Equatable {
    var sections: [Section]

    struct Section: Equatable {
        var name: String
        var lines: [String]
    }

    /// Reads the fingerprint of `database`.
    static func of(_ database: String, file: StaticString = #filePath, line: UInt = #line) throws -> DatabaseFingerprint {
        let dump = try Harness.run(Harness.pgbin + "/pg_dump", ["--schema-only", "--no-password", "-d", database])
        XCTAssertEqual(dump.status, 0, "pg_dump --schema-only \(database): \(dump.stderr)", file: file, line: line)
        return DatabaseFingerprint(sections: [
            Section(name: "schema", lines: normalise(schemaDump: dump.stdout)),
            Section(name: "rows", lines: try gexec(database, rowsQuery, file: file, line: line)),
            Section(name: "sequences", lines: try gexec(database, sequencesQuery, file: file, line: line)),
            Section(name: "large objects", lines: try query(database, largeObjectsQuery, file: file, line: line)),
            Section(name: "extensions", lines: try query(database, "SELECT extname || ' ' || extversion FROM pg_extension ORDER BY 1",
                                                         file: file, line: line)),
            Section(name: "database", lines: try query("postgres", databaseQuery(database), file: file, line: line)),
        ])
    }

    /// The schema dump without what legitimately differs between two dumps of equal databases.
    ///
    /// - `\restrict KEY` / `\unrestrict KEY` (pg_dump 15.14+): a random key per run.
    /// - `-- Dumped from database version` / `-- Dumped by pg_dump version`: the tools, not the data.
    /// Nothing else: the plain dump names no database (without --create), no oids and no times,
    /// and every other comment line it writes is derived from the objects themselves.
    static func normalise(schemaDump: String) -> [String] {
        schemaDump.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            !(line.hasPrefix("\\restrict ") || line.hasPrefix("\\unrestrict ")
                || line.hasPrefix("-- Dumped from database version") || line.hasPrefix("-- Dumped by pg_dump version"))
        }.map(String.init)
    }

    /// A relation's name as a label on one output line: schema-qualified, quoted as needed, a
    /// newline inside a name written as `\\n` (psql would otherwise split the line).
    static let label = "replace(format('%I.%I', n.nspname, c.relname), E'\\n', '\\n')"

    /// Every relation that stores rows of its own: tables (partitions included) and matviews.
    static let rowsQuery = """
        SELECT CASE WHEN c.relkind = 'm' AND NOT c.relispopulated
                    THEN format('SELECT %L || '': not populated''', \(label))
                    ELSE format('SELECT %L || '': '' || count(*) || '' rows '' || md5(coalesce(string_agg(t::text, E''\\n'' ORDER BY t::text), '''')) FROM ONLY %s t',
                                \(label), format('%I.%I', n.nspname, c.relname))
               END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
        ORDER BY format('%I.%I', n.nspname, c.relname) COLLATE "C"
        """

    static let sequencesQuery = """
        SELECT format('SELECT %L || '': last_value '' || last_value || '' is_called '' || is_called FROM %s',
                      \(label), format('%I.%I', n.nspname, c.relname))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        ORDER BY format('%I.%I', n.nspname, c.relname) COLLATE "C"
        """

    static let largeObjectsQuery = """
        SELECT format('%s owner=%s acl=%s comment=%s md5=%s', m.oid, pg_get_userbyid(m.lomowner), coalesce(m.lomacl::text, '-'),
                      coalesce(quote_literal(obj_description(m.oid, 'pg_largeobject')), '-'), md5(lo_get(m.oid)))
        FROM pg_largeobject_metadata m ORDER BY m.oid
        """

    static func databaseQuery(_ database: String) -> String {
        let name = "'" + database.replacingOccurrences(of: "'", with: "''") + "'"
        return """
            WITH d AS (SELECT * FROM pg_database WHERE datname = \(name))
            SELECT format('owner=%s encoding=%s collate=%s ctype=%s provider=%s locale=%s rules=%s tablespace=%s connlimit=%s allowconn=%s template=%s',
                          pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                          coalesce(to_jsonb(d)->>'datlocprovider', 'c'),
                          coalesce(to_jsonb(d)->>'datlocale', to_jsonb(d)->>'daticulocale', '-'), coalesce(to_jsonb(d)->>'daticurules', '-'),
                          t.spcname, d.datconnlimit, d.datallowconn, d.datistemplate)
            FROM d JOIN pg_tablespace t ON t.oid = d.dattablespace
            UNION ALL
            SELECT 'comment=' || coalesce(quote_literal(shobj_description(d.oid, 'pg_database')), '-') FROM d
            UNION ALL
            (SELECT x FROM (SELECT 'security label ' || l.provider || '=' || quote_literal(l.label) AS x FROM d JOIN pg_shseclabel l
                ON l.objoid = d.oid AND l.classoid = 'pg_database'::regclass) labels ORDER BY x COLLATE "C")
            UNION ALL
            SELECT 'acl=' || coalesce((
                SELECT string_agg(g, ' ' ORDER BY g COLLATE "C") FROM (
                    SELECT format('%s>%s:%s%s', pg_get_userbyid(a.grantor),
                                  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                                  a.privilege_type, CASE WHEN a.is_grantable THEN '*' ELSE '' END) AS g
                    FROM aclexplode(d.datacl) a) grants), CASE WHEN d.datacl IS NULL THEN 'default' ELSE 'none' END) FROM d
            UNION ALL
            (SELECT x FROM (SELECT format('setting %s: %s', CASE WHEN s.setrole = 0 THEN '(all roles)' ELSE pg_get_userbyid(s.setrole) END, c) AS x
             FROM d JOIN pg_db_role_setting s ON s.setdatabase = d.oid, unnest(s.setconfig) c) settings ORDER BY x COLLATE "C")
            """
    }

    /// Runs `sql`, which writes one query per row, and each of those queries through psql's `\\gexec`.
    static func gexec(_ database: String, _ sql: String, file: StaticString, line: UInt) throws -> [String] {
        // Names are schema-qualified and the search path is empty: a database's own search_path
        // setting (part of what is compared) must not change how its tables are named.
        let script = "SET search_path = pg_catalog;\n" + sql + "\n\\gexec\n"
        let r = try Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database],
                                stdin: Data(script.utf8))
        XCTAssertEqual(r.status, 0, "psql \\gexec on \(database): \(r.stderr)", file: file, line: line)
        return r.stdout.split(separator: "\n").map(String.init)
    }

    static func query(_ database: String, _ sql: String, file: StaticString, line: UInt) throws -> [String] {
        let r = try Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql])
        XCTAssertEqual(r.status, 0, "psql on \(database): \(r.stderr)", file: file, line: line)
        return r.stdout.split(separator: "\n").map(String.init)
    }

    /// A readable account of how `other` differs from `self`: per differing section, the first
    /// few differing lines (line numbers are 1-based within the section), and lines missing or extra.
    func difference(from other: DatabaseFingerprint, limit: Int = 8) -> String {
        var out: [String] = []
        for (a, b) in zip(sections, other.sections) where a != b {
            out.append("section '\(a.name)' differs (\(a.lines.count) lines expected, \(b.lines.count) got):")
            let missing = Set(a.lines).subtracting(b.lines), extra = Set(b.lines).subtracting(a.lines)
            var shown = 0
            for (i, l) in a.lines.enumerated() where missing.contains(l) && shown < limit {
                out.append("  - expected line \(i + 1): \(l)")
                shown += 1
            }
            shown = 0
            for (i, l) in b.lines.enumerated() where extra.contains(l) && shown < limit {
                out.append("  + got line \(i + 1): \(l)")
                shown += 1
            }
            if missing.isEmpty && extra.isEmpty {
                let first = (0..<min(a.lines.count, b.lines.count)).first { a.lines[$0] != b.lines[$0] } ?? min(a.lines.count, b.lines.count)
                out.append("  same lines, different order or multiplicity; first difference at line \(first + 1)")
            }
        }
        if sections.map(\.name) != other.sections.map(\.name) { out.append("different sections") }
        return out.joined(separator: "\n")
    }

    /// Fails the test with the difference when `actual` is not `expected`.
    static func assertEqual(_ actual: DatabaseFingerprint, _ expected: DatabaseFingerprint, _ context: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        if actual != expected {
            XCTFail("\(context): fingerprints differ\n" + expected.difference(from: actual), file: file, line: line)
        }
    }
}
