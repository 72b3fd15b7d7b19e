import Foundation
import XCTest

/// The server's idle and transaction timeouts (ALTER ROLE ... SET, PGOPTIONS) reach pgsnap's
/// sessions, which wait while others work: the restore's admin session through the whole load,
/// psql while COPY sessions load a big table, a directory backup's snapshot holder through the
/// whole dump. They ended those halfway ("server closed the connection unexpectedly", and a
/// scratch database left behind); pg_dump, pg_restore and psql by hand survive the same settings.
final class ServerTimeoutTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws { fixture = try RestoreFixture() }
    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    static let timeouts = "-c idle_session_timeout=100ms -c idle_in_transaction_session_timeout=100ms"

    func testShortIdleTimeoutsEndNoBackupOrRestore() throws {
        let db = try fixture.database("idle")
        try Harness.psql(db, """
            CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h, repeat('x', 200) AS pad FROM generate_series(1, 300000) g;
            ALTER TABLE big ADD PRIMARY KEY (id);
            """)
        let before = try Harness.fingerprint(db)
        for format in ["plain", "directory"] {
            let b = try fixture.pgsnap(["backup", "-d", db, "--format", format, "--jobs", "2"], env: ["PGOPTIONS": Self.timeouts])
            XCTAssertEqual(b.status, 0, "\(format) backup: \(b.stderr)")
            let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--drop-previous", "--jobs", "2"],
                                       env: ["PGOPTIONS": Self.timeouts, "PGSNAP_PARALLEL_COPY_MIN_ROWS": "1000", "PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])
            XCTAssertEqual(r.status, 0, "\(format) restore: \(r.stderr)")
            XCTAssertEqual(try Harness.fingerprint(db), before, format)
            XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], format)
        }
    }
}
