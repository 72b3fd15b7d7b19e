import Foundation
import XCTest

/// The nightly backup behind a table another session holds (a stuck migration): it waits a bounded
/// time by default and stops at once on SIGTERM, both while that session still holds the lock.
/// Before, with no --lock-wait-timeout and no lock_timeout in the session, it waited for ever and
/// took SIGTERM only when the lock was released.
final class BackupLockWaitTests: XCTestCase {
    var fixture: RestoreFixture!
    var held: [HeldSession] = []

    override func setUpWithError() throws { fixture = try RestoreFixture() }
    override func tearDown() {
        for h in held { h.close() }
        fixture?.cleanUp()
        fixture = nil
    }

    /// A database whose table `t` a held session locks exclusively (its transaction open).
    func lockedDatabase() throws -> (db: String, blocker: HeldSession) {
        let db = try fixture.database("lockwait")
        try Harness.psql(db, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        let blocker = try HeldSession(database: db, applicationName: "lockwait_blocker",
                                      sql: "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT 1;")
        held.append(blocker)
        XCTAssertTrue(Harness.poll(timeout: 30) { self.lockHeld(db) }, "the blocking session never took its lock")
        return (db, blocker)
    }

    func lockHeld(_ db: String) -> Bool {
        (try? Harness.psql("postgres", """
            SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE a.datname = '\(db)' AND a.application_name = 'lockwait_blocker' AND l.mode = 'AccessExclusiveLock' AND l.granted
            """)) == "1"
    }

    func testSIGTERMStopsABackupWaitingForALockAtOnce() throws {
        let (db, _) = try lockedDatabase()
        var sawWait = false
        let r = try fixture.pgsnap(["backup", "-d", db], env: ["PGOPTIONS": nil], whileRunning: { pid in
            sawWait = Harness.poll(timeout: 60) {
                (try? Harness.psql("postgres", """
                    SELECT count(*) FROM pg_stat_activity WHERE datname = '\(db)' AND application_name = 'pgsnap' AND wait_event_type = 'Lock'
                    """)) == "1" || !Procfs.isAlive(pid)
            } && Procfs.isAlive(pid)
            kill(pid, SIGTERM)
        })
        XCTAssertTrue(sawWait, "pgsnap never waited for the lock: \(r.status) \(r.stderr)")
        XCTAssertEqual(r.status, 130, r.stderr)
        Harness.assertOneErrorLine(r, status: 130, "SIGTERM while waiting for a lock")
        XCTAssertTrue(r.stderr.contains("interrupted (signal 15): the query pgsnap was waiting on was cancelled"), r.stderr)
        // It ended while the lock was still held: it did not wait for the holder.
        XCTAssertTrue(lockHeld(db), "the blocking session lost its lock; pgsnap may have waited for it")
        XCTAssertEqual(Harness.entries(fixture.dir).filter { !$0.hasPrefix(".") }, [], "an interrupted backup left files")
    }

    /// No --lock-wait-timeout, no lock_timeout in the session: 60 s, then exit 1 naming the lock.
    func testWithoutAnyTimeoutABackupWaitsSixtySecondsThenFails() throws {
        let (db, _) = try lockedDatabase()
        let r = try fixture.pgsnap(["backup", "-d", db], env: ["PGOPTIONS": nil])
        Harness.assertOneErrorLine(r, status: 1, "a lock held for longer than the default wait")
        XCTAssertTrue(r.stderr.contains("lock timeout after 60 s"), "the default wait is 60 s: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("--lock-wait-timeout"), r.stderr)
        XCTAssertTrue(lockHeld(db), "the blocking session lost its lock: the backup did not time out on its own")
        XCTAssertEqual(Harness.entries(fixture.dir).filter { !$0.hasPrefix(".") }, [], "a failed backup left files")
    }
}
