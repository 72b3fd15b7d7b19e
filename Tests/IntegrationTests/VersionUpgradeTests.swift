import Foundation
import PGSnapCore
import XCTest

/// The 3 a.m. case after a major upgrade: a snapshot taken on the older major restores onto the
/// newer server exactly; a newer snapshot is refused by an older server before anything is made.
///
/// Needs a second, older server: `scripts/test-matrix` starts one beside the 16 leg (14), the 17 leg (16) and the
/// 18 leg (15) and names it in PGSNAP_TEST_OLD_*; the suite on 15 alone does not run this class.
final class VersionUpgradeTests: XCTestCase {
    var fixture: RestoreFixture!
    var old: [String: String?] = [:]
    var oldBin = ""
    var oldMajor = 0
    var newMajor = 0
    var oldDatabases: [String] = []

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
        oldBin = Harness.require("PGSNAP_TEST_OLD_PGBIN")
        oldMajor = Int(Harness.require("PGSNAP_TEST_OLD_PG_MAJOR")) ?? 0
        old = ["PGHOST": Harness.require("PGSNAP_TEST_OLD_PGHOST"), "PGPORT": Harness.require("PGSNAP_TEST_OLD_PGPORT"),
               "PGSNAP_PG_BINDIR": oldBin]
        newMajor = (Int(try Harness.psql("postgres", "SHOW server_version_num")) ?? 0) / 10000
        XCTAssertLessThan(oldMajor, newMajor, "the old server must be an older major")
    }

    override func tearDown() {
        for db in oldDatabases { _ = try? oldPsql("postgres", "DROP DATABASE IF EXISTS \"\(db)\" WITH (FORCE)") }
        fixture?.cleanUp()
        fixture = nil
    }

    @discardableResult
    func oldPsql(_ db: String, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try Harness.run(oldBin + "/psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db], env: old, stdin: Data(sql.utf8))
        XCTAssertEqual(r.status, 0, "psql on the old server: \(r.stderr)", file: file, line: line)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Schema (pg_dump --schema-only by this leg's newer pg_dump, which reads both servers) and
    /// every table's rows, hashed: equal means the same database.
    func fingerprint(_ db: String, env: [String: String?]) throws -> [String] {
        let dump = try Harness.run(Harness.pgbin + "/pg_dump", ["--schema-only", "--no-password", "-d", db], env: env)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let rows = try Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db], env: env,
                                   stdin: Data(("SET search_path = pg_catalog;\n" + DatabaseFingerprint.rowsQuery + "\n\\gexec\n").utf8))
        XCTAssertEqual(rows.status, 0, rows.stderr)
        return DatabaseFingerprint.normalise(schemaDump: dump.stdout) + rows.stdout.split(separator: "\n").map(String.init)
    }

    /// A database on the old server with the demo schema and objects whose dump changes between
    /// majors: identity, generated and jsonb columns, an enum, a view, a function, a trigger, a
    /// sequence, a partitioned table and a materialized view.
    func oldDatabase() throws -> String {
        let db = "upg_\(UUID().uuidString.prefix(8).lowercased())"
        try oldPsql("postgres", "CREATE DATABASE \(db)")
        oldDatabases.append(db)
        let schema = try String(contentsOfFile: Harness.repo + "/scripts/demo-data/schema.sql", encoding: .utf8)
        try oldPsql(db, schema)
        try oldPsql(db, """
            CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
            CREATE TABLE things (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc jsonb NOT NULL, m mood,
                                 n numeric(12,2), doubled numeric GENERATED ALWAYS AS (n * 2) STORED);
            INSERT INTO things (doc, m, n) SELECT jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)), 'ok', g / 3.0
                FROM generate_series(1, 3000) g;
            CREATE INDEX things_doc ON things USING gin (doc);
            CREATE VIEW happy_things AS SELECT id, doc FROM things WHERE m = 'happy';
            CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.n := coalesce(NEW.n, 0); RETURN NEW; END $$;
            CREATE TRIGGER things_touch BEFORE INSERT ON things FOR EACH ROW EXECUTE FUNCTION touch();
            CREATE SEQUENCE counter START 40; SELECT nextval('counter');
            CREATE TABLE events (at date NOT NULL, v int) PARTITION BY RANGE (at);
            CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
            INSERT INTO events SELECT date '2026-01-01' + g % 300, g FROM generate_series(1, 500) g;
            CREATE MATERIALIZED VIEW things_by_mood AS SELECT m, count(*) FROM things GROUP BY m;
            ANALYZE;
            """)
        return db
    }

    /// Older major onto this server (15 -> 18, 16 -> 17): exactly the database PostgreSQL's own
    /// upgrade path makes (the old major's pg_dump into the new server's psql), with the same
    /// rows as the original, and with statistics.
    ///
    /// Schema text is compared on the new server only: each major deparses views its own way,
    /// and Debian's 15.20 keeps a `pg_attver` column option that only its own pg_dump hides.
    func testOlderMajorSnapshotRestoresOntoNewerServerExactly() throws {
        let db = try oldDatabase()
        let reference = try fixture.database("upgref")
        let dump = try Harness.run(oldBin + "/pg_dump", ["--no-password", "-d", db], env: old)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let load = try Harness.psqlStdin(reference, Data(dump.stdout.utf8))
        XCTAssertEqual(load.status, 0, "PostgreSQL's own upgrade path failed: \(load.stderr)")
        let expected = try fingerprint(reference, env: [:])
        let originalRows = try fingerprint(db, env: old).filter { $0.hasPrefix("public.") }
        XCTAssertFalse(originalRows.isEmpty)
        let backup = try fixture.pgsnap(["backup", "-d", db], env: old)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = Harness.snapshotID(backup)
        let m = try Harness.manifest(dir: fixture.dir, id: id)
        XCTAssertEqual(ServerVersion.major(m["server_version"] as? String), oldMajor, "\(m)")
        XCTAssertEqual(m["tool_directory"] as? String, oldBin)

        let copy = db + "_on\(newMajor)"
        fixture.track(database: copy)
        let restore = try fixture.pgsnap(["restore", id, "--target", copy])
        XCTAssertEqual(restore.status, 0, restore.stderr)
        let restored = try fingerprint(copy, env: [:])
        XCTAssertEqual(restored, expected, "PostgreSQL \(oldMajor) snapshot restored onto \(newMajor)")
        XCTAssertEqual(restored.filter { $0.hasPrefix("public.") }, originalRows, "rows on \(newMajor) differ from the original on \(oldMajor)")
        XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid WHERE c.relname = 'things'") == "0",
                       false, "the restored table has no planner statistics")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// The old server backed up by the newest pg_dump that reads it (Debian's 15.20 where the old
    /// major is 15 or older: it writes `\restrict` lines), restored with this leg's psql: exactly,
    /// when this psql reads such dumps (17.10, 18.6); refused in one line before any database is
    /// made when it predates them (16.2, the 14 -> 16 leg).
    func testPsqlThatCannotReadTheDumpIsRefusedBeforeAnythingIsCreated() throws {
        let db = try oldDatabase()
        let debian = "/usr/lib/postgresql/15/bin"
        var env = old
        env["PGSNAP_PG_BINDIR"] = oldMajor <= 15 ? debian : oldBin
        let backup = try fixture.pgsnap(["backup", "-d", db], env: env)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = Harness.snapshotID(backup)
        let dumpVersion = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["pg_dump_version"] as? String)
        let psql = try Harness.run(Harness.pgbin + "/psql", ["--version"])
        let psqlVersion = String(psql.stdout.split(whereSeparator: \.isWhitespace).first { $0.first?.isNumber == true } ?? "")
        let copy = db + "_psql"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy])
        if ServerCatalogue.psqlCannotRead(dumpVersion: dumpVersion, psqlVersion: psqlVersion) {
            Harness.assertOneErrorLine(r, status: 1, "pg_dump \(dumpVersion), psql \(psqlVersion)")
            XCTAssertTrue(r.stderr.contains("psql \(psqlVersion) at ") && r.stderr.contains("cannot read \(id)"), r.stderr)
            XCTAssertTrue(r.stderr.contains("nothing was changed"), r.stderr)
            XCTAssertFalse(try RestoreFixture.exists(copy))
        } else {
            XCTAssertEqual(r.status, 0, "pg_dump \(dumpVersion), psql \(psqlVersion): \(r.stderr)")
            XCTAssertEqual(try fingerprint(copy, env: [:]).filter { $0.hasPrefix("public.") },
                           try fingerprint(db, env: old).filter { $0.hasPrefix("public.") })
        }
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// This server's snapshot onto the older one: one line naming both majors, exit 1, and
    /// nothing created or changed there, neither a new target nor an existing one.
    func testNewerMajorSnapshotIsRefusedBeforeAnythingIsCreated() throws {
        let db = try fixture.database("upgnew")
        try Harness.psql(db, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g")
        let id = try fixture.backup(db)
        let existing = try oldDatabase()
        let before = try fingerprint(existing, env: old)
        let databasesBefore = try oldPsql("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
        let newBin: String? = Harness.env["PGSNAP_PG_BINDIR"] ?? Harness.pgbin
        var env = old
        env["PGSNAP_PG_BINDIR"] = newBin
        for args in [["restore", id, "--target", "upg_never_made"], ["restore", id, "--target", existing, "--yes"]] {
            let r = try fixture.pgsnap(args, env: env)
            Harness.assertOneErrorLine(r, status: 1, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains("was taken on PostgreSQL \(newMajor) and this server is PostgreSQL \(oldMajor)"), r.stderr)
            XCTAssertTrue(r.stderr.contains("nothing was changed"), r.stderr)
        }
        XCTAssertEqual(try oldPsql("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database"), databasesBefore,
                       "the older server must have no new database, scratch or renamed")
        XCTAssertEqual(try fingerprint(existing, env: old), before, "the existing target must be untouched")
    }
}
