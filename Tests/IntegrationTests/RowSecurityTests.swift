import Foundation
import XCTest

/// Row-level security and the row-count check: `count(*)` by a role that is not a superuser sees
/// only the rows the policies show it (the owner too, under FORCE ROW LEVEL SECURITY), though the
/// load stored them all. A good snapshot was refused as damaged (exit 2), and
/// `verify --restore-test` marked it failed in its manifest.
final class RowSecurityTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws { fixture = try RestoreFixture() }
    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    /// A database owned by a CREATEDB role, whose table hides every row from it (FORCE, a policy
    /// that matches no row); backed up by the superuser (pg_dump as the owner would refuse).
    func ownedDatabase() throws -> (db: String, owner: String) {
        let owner = fixture.role("rls_owner")
        try Harness.psql("postgres", "CREATE ROLE \(owner) LOGIN CREATEDB")
        let db = try fixture.database("rls")
        try Harness.psql("postgres", "ALTER DATABASE \(db) OWNER TO \(owner)")
        try Harness.psql(db, """
            SET ROLE \(owner);
            CREATE TABLE t (id int PRIMARY KEY, tenant text NOT NULL);
            INSERT INTO t SELECT g, 'tenant_' || (g % 7) FROM generate_series(1, 1000) g;
            CREATE TABLE open_rows (id int);
            INSERT INTO open_rows SELECT generate_series(1, 10);
            ALTER TABLE t ENABLE ROW LEVEL SECURITY;
            ALTER TABLE t FORCE ROW LEVEL SECURITY;
            CREATE POLICY only_mine ON t USING (tenant = current_user);
            """)
        return (db, owner)
    }

    func testTheOwnerRestoresATableWhoseRowsItsPoliciesHide() throws {
        let (db, owner) = try ownedDatabase()
        for format in ["plain", "directory"] {
            let b = try fixture.pgsnap(["backup", "-d", db, "--format", format])
            XCTAssertEqual(b.status, 0, b.stderr)
            let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let copy = "\(db)_\(format)"
            fixture.track(database: copy)
            let r = try fixture.pgsnap(["restore", id, "-U", owner, "-d", db, "--target", copy, "--yes", "--jobs", "2"])
            XCTAssertEqual(r.status, 0, "\(format): \(r.stderr)")
            // Every row is there (the superuser sees them all), row security as it was.
            XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM t"), "1000", format)
            XCTAssertEqual(try Harness.psql(copy, "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 't'::regclass"), "t", format)
            XCTAssertEqual(try Harness.psql(copy, "SET ROLE \(owner); SELECT count(*) FROM t"), "0", "\(format): the policy still hides the rows from the owner")
            XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])

            let v = try fixture.pgsnap(["verify", id, "--restore-test", "-U", owner, "-d", db])
            XCTAssertEqual(v.status, 0, "\(format) verify --restore-test: \(v.stderr)")
            XCTAssertFalse(v.stderr.contains("FAILED"), v.stderr)
        }
    }

    /// The common tenant policy reads a setting only the application sets: counting as the owner
    /// errors ("unrecognized configuration parameter"), which failed the restore of a directory
    /// snapshot (and marked it failed under verify --restore-test).
    func testAPolicyThatErrorsForTheRestoringRoleDoesNotFailTheCount() throws {
        let (db, owner) = try ownedDatabase()
        try Harness.psql(db, """
            SET ROLE \(owner);
            DROP POLICY only_mine ON t;
            CREATE POLICY by_setting ON t USING (tenant = current_setting('app.tenant'));
            """)
        let b = try fixture.pgsnap(["backup", "-d", db, "--format", "directory"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let copy = db + "_err"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "-U", owner, "-d", db, "--target", copy, "--jobs", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM t"), "1000")
        let v = try fixture.pgsnap(["verify", id, "--restore-test", "-U", owner, "-d", db])
        XCTAssertEqual(v.status, 0, v.stderr)
    }

    /// Rows really missing from such a table still fail the restore: the second count is not a pass.
    func testRowsMissingFromAHiddenTableStillFailTheRestore() throws {
        let (db, owner) = try ownedDatabase()
        let b = try fixture.pgsnap(["backup", "-d", db, "--format", "directory"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Harness.promiseRows(["public.t": 1001], dir: fixture.dir, id: id)
        let copy = db + "_short"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "-U", owner, "-d", db, "--target", copy, "--yes"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("restored table public.t has 1000 rows, the snapshot has 1001"), r.stderr)
        XCTAssertFalse(try RestoreFixture.exists(copy))
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }
}

extension RowSecurityTests {
    /// diff as the owner: a table whose rows its policies hide is named as not counted, not as
    /// rows deleted; the other tables are counted as usual.
    func testDiffDoesNotReportHiddenRowsAsDeleted() throws {
        let (db, owner) = try ownedDatabase()
        let id = try fixture.backup(db)
        try Harness.psql(db, "INSERT INTO open_rows VALUES (11)")
        let r = try fixture.pgsnap(["diff", id, "-U", owner, "-d", db, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let tables = try XCTUnwrap(report["tables"] as? [[String: Any]])
        let t = try XCTUnwrap(tables.first { $0["table"] as? String == "public.t" })
        XCTAssertEqual(t["change"] as? String, "not counted: row-level security hides rows from this role", "\(t)")
        XCTAssertNil(t["live_rows"] ?? nil, "\(t)")
        let open = try XCTUnwrap(tables.first { $0["table"] as? String == "public.open_rows" })
        XCTAssertEqual(open["change"] as? String, "+1 rows", "\(open)")
        // The superuser counts every row.
        let su = try fixture.pgsnap(["diff", id, "-d", db])
        XCTAssertEqual(su.status, 0, su.stderr)
        XCTAssertTrue(su.stdout.contains("unchanged"), su.stdout)
        XCTAssertFalse(su.stdout.contains("not counted"), su.stdout)
    }
}
