import Foundation
import XCTest

/// SIGTERM during `verify --restore-test` (and so `drill`): nothing was learnt about the snapshot,
/// so nothing is written into its manifest. A stopped load can read as a failed one (a COPY
/// session's query cancelled by the signal handler is a plain "COPY failed"), and a good snapshot
/// was then marked "RESTORE TEST FAILED"; the service now asks whether a signal came, whatever the
/// error. Here the psql path, held deterministically (the split sessions' path cannot be held
/// from outside without a race).
final class InterruptedRestoreTestTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws { fixture = try RestoreFixture() }
    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    func testSIGTERMDuringARestoreTestRecordsNothing() throws {
        let db = try fixture.database("irt")
        try Harness.psql(db, "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 300000) g")
        let id = try fixture.backup(db)
        let before = try Data(contentsOf: URL(fileURLWithPath: Harness.manifestPath(dir: fixture.dir, id: id)))

        var held: Int32?
        // No split load (the minimum raised): one psql loads the table. The test stops that psql (SIGSTOP) as soon as /proc
        // shows it, sends pgsnap SIGTERM, then lets psql go: the load is under way, whatever the speed.
        let r = try fixture.pgsnap(["verify", id, "--restore-test"], env: ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "100000000"], whileRunning: { pid in
            held = Procfs.stopLoadingPsql(of: pid)
            kill(pid, SIGTERM)
            if let held { kill(held, SIGCONT) }
        })
        XCTAssertNotNil(held, "never saw psql loading the scratch database: \(r.stderr)")
        XCTAssertEqual(r.status, 130, r.stderr)
        XCTAssertFalse(r.stderr.contains("FAILED"), r.stderr)
        XCTAssertFalse(r.stderr.contains("Do not restore from them"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: Harness.manifestPath(dir: fixture.dir, id: id))), before,
                       "the manifest changed: a restore test that was stopped was recorded")
        XCTAssertNil(try Harness.manifest(dir: fixture.dir, id: id)["restore_test"] as? [String: Any])
    }
}
