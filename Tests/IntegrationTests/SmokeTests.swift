import XCTest

final class SmokeTests: XCTestCase {
    func testBackupVerifyRestoreRoundTrip() throws {
        let db = try Harness.createDatabase("smoke")
        defer { Harness.dropDatabase(db) }
        try Harness.psqlFile(db, Harness.repo + "/scripts/demo-data/schema.sql")
        let before = try Harness.fingerprint(db)
        let dir = try Harness.tempDir()
        let backup = try Harness.pgsnap(["backup", "-d", db, "--label", "smoke"], dir: dir)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(id.hasPrefix(db + "_"), id)
        let verify = try Harness.pgsnap(["verify", id], dir: dir)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        try Harness.psqlFile(db, Harness.repo + "/scripts/demo-data/000045_final_phase_centric_cleanup.up.sql")
        XCTAssertNotEqual(try Harness.fingerprint(db), before)
        let restore = try Harness.pgsnap(["restore", "latest", "-d", db, "--yes", "--drop-previous"], dir: dir)
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before)
    }
}
