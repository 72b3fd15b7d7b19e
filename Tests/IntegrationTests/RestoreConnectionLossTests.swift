import CProcess
import Foundation
import XCTest

/// pgsnap's own connection to the server lost during a restore (a restart, a session ended by an
/// administrator, a network blip): what it says must be what the catalogue shows, and its
/// scratch database must not outlive the run.
final class RestoreConnectionLossTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
    }

    override func tearDown() {
        Self.setSynchronousStandbyNames(nil)
        fixture.cleanUp()
        super.tearDown()
    }

    /// ALTER SYSTEM runs alone (not in psql -c's one transaction), then the reload.
    static func setSynchronousStandbyNames(_ value: String?) {
        _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c",
                                                       value.map { "ALTER SYSTEM SET synchronous_standby_names = '\($0)'" } ?? "ALTER SYSTEM RESET synchronous_standby_names"])
        _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "SELECT pg_reload_conf()"])
    }

    /// A database with a snapshot, then a marker row the restore would remove.
    func restorable(_ prefix: String, rows: Int = 1000) throws -> (db: String, id: String, before: String) {
        let db = try fixture.database(prefix)
        try Harness.psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, \(rows)) g")
        let id = try fixture.backup(db)
        try Harness.psql(db, "INSERT INTO t VALUES (0, 'marker')")
        return (db, id, try Harness.fingerprint(db))
    }

    /// pgsnap's swap session, once its first RENAME waits for the pg_database row `held` locks.
    func swapBackend(_ db: String) -> String? {
        var pid: String?
        let found = Harness.poll(timeout: 60) {
            pid = try? Harness.psql("postgres", """
                SELECT pid FROM pg_stat_activity WHERE application_name = 'pgsnap' AND query LIKE 'ALTER DATABASE "\(db)" RENAME%'
                  AND wait_event_type = 'Lock'
                """)
            return !(pid ?? "").isEmpty
        }
        return found ? pid : nil
    }

    func holdRow(of db: String) throws -> HeldSession {
        let held = try HeldSession(database: "postgres", applicationName: "swap_hold",
                                   sql: "BEGIN; SELECT 1 FROM pg_database WHERE datname = '\(db)' FOR UPDATE;")
        XCTAssertTrue(Harness.poll(timeout: 30) {
            (try? Harness.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'swap_hold' AND state = 'idle in transaction'")) == "1"
        }, "the row lock was never taken")
        return held
    }

    /// A Ctrl-C that lands between the swap's statements, where the cancel it sends reaches no
    /// statement: pgsnap is stopped while its first RENAME waits for the row `held` locks, the
    /// lock is let go so that RENAME finishes (its session idle in the transaction), and the
    /// signal goes to pgsnap's main thread before it runs on. The swap rolls back: exit 130, the
    /// target untouched, no previous database, the scratch database dropped. It committed, and
    /// said "signal 2 arrived after the swap: the restore is complete".
    func testASignalBetweenTheSwapsStatementsRollsItBack() throws {
        let (db, id, before) = try restorable("sigswap")
        let held = try holdRow(of: db)
        defer { held.close() }
        var signalled = false
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--quiet"]) { pid in
            guard let backend = self.swapBackend(db) else { return XCTFail("the swap never waited") }
            guard kill(pid, SIGSTOP) == 0 else { return XCTFail("could not stop pgsnap") }
            defer { kill(pid, SIGCONT) }
            held.close()
            guard Harness.poll(timeout: 60, {
                (try? Harness.psql("postgres", "SELECT state FROM pg_stat_activity WHERE pid = \(backend)")) == "idle in transaction"
            }) else { return XCTFail("the first RENAME never finished") }
            // To the main thread (the one waiting for the RENAME's answer): it runs the handler
            // as it resumes, before its next statement.
            signalled = pgsnap_tgkill(pid, pid, SIGINT) == 0
        }
        XCTAssertTrue(signalled)
        Harness.assertOneErrorLine(r, status: 130, "a signal between the swap's statements")
        XCTAssertTrue(r.stderr.contains("before it committed") && r.stderr.contains("\(db) was not changed"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "the scratch database outlived the run")
    }

    /// The connection ends while the swap's RENAME waits: nothing committed, and it says so;
    /// the scratch database is dropped over a new connection (it was left for the next run).
    func testAConnectionLostBeforeTheSwapCommitsSaysNothingChanged() throws {
        let (db, id, before) = try restorable("lostswap")
        let held = try holdRow(of: db)
        defer { held.close() }
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--quiet"]) { _ in
            guard let pid = self.swapBackend(db) else { return XCTFail("the swap never waited") }
            _ = try? Harness.psql("postgres", "SELECT pg_terminate_backend(\(pid))")
            held.close()
        }
        Harness.assertOneErrorLine(r, status: 1, "lost before commit")
        XCTAssertTrue(r.stderr.contains("lost the connection to the server during the swap") && r.stderr.contains("it did not commit")
                      && r.stderr.contains("\(db) was not changed"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "the scratch database outlived the run")
    }

    /// The connection ends while COMMIT waits for a synchronous standby that never answers:
    /// the transaction has committed locally, so the restore is in place, and it says so (it
    /// said "was not changed", exit 1, with the restored database live and the old one aside).
    func testAConnectionLostAfterTheSwapCommittedSaysItIsInPlace() throws {
        let (db, id, _) = try restorable("syncswap")
        let held = try holdRow(of: db)
        defer { held.close() }
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes"]) { _ in
            guard self.swapBackend(db) != nil else { return XCTFail("the swap never waited") }
            Self.setSynchronousStandbyNames("ghost")
            // New sessions see the setting once the postmaster has reloaded and told the others.
            XCTAssertTrue(Harness.poll(timeout: 30) { (try? Harness.psql("postgres", "SHOW synchronous_standby_names")) == "ghost" })
            held.close()
            var pid: String?
            XCTAssertTrue(Harness.poll(timeout: 60) {
                pid = try? Harness.psql("postgres", "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgsnap' AND wait_event = 'SyncRep'")
                return !(pid ?? "").isEmpty
            }, "the swap's COMMIT never waited for the standby")
            // Ended while it waits (resetting the setting first would let the COMMIT return).
            if let pid { _ = try? Harness.psql("postgres", "SELECT pg_terminate_backend(\(pid))") }
            Self.setSynchronousStandbyNames(nil)
        }
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("the connection was lost at the swap's COMMIT") && r.stderr.contains("\(db) is the restored database"), r.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t WHERE id = 0"), "0", "the marker row is still there: not the restored database")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db).count, 1)
        XCTAssertEqual(try Harness.psql("postgres", "SELECT coalesce(shobj_description(oid, 'pg_database'), '-') FROM pg_database WHERE datname = '\(db)'"), "-",
                       "the live database kept the scratch comment")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// pgsnap's own session ended during the load: one line naming the restore, the lost
    /// connection and what to do (it was a bare "query failed: server closed the connection
    /// unexpectedly"), the target untouched and the scratch database dropped.
    func testItsSessionEndedDuringTheLoadIsNamedAndTheScratchIsDropped() throws {
        let (db, id, before) = try restorable("lostload", rows: 400_000)
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--quiet"]) { _ in
            XCTAssertTrue(Harness.poll(timeout: 60) {
                (try? Harness.psql("postgres", "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname LIKE 'pgsnap\\_scratch\\_%' AND query LIKE 'COPY%'")) == "t"
            }, "the load was never seen")
            _ = try? Harness.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgsnap' AND datname = 'postgres'")
        }
        Harness.assertOneErrorLine(r, status: 1, "lost during the load")
        XCTAssertTrue(r.stderr.contains("restore into a scratch database failed (lost the connection to the server")
                      && r.stderr.contains("\(db) was not changed; check the server and restore again"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "the scratch database outlived the run")
    }
}
