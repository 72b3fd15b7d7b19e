import Foundation
import XCTest

/// `pgsnap restore` and `verify --restore-test` end to end: the database ends up exactly as the
/// snapshot, or, on any failure, exactly as before; no scratch database is ever left behind.
final class RestoreTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
    }

    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    // MARK: - Schemas

    /// Tables with data, view, plpgsql trigger, enum, partitions, large object, sequence, index, FK, migrations at 44.
    static let richSchema = """
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TABLE customers (
            id      serial PRIMARY KEY,
            name    text NOT NULL,
            mood    mood NOT NULL DEFAULT 'ok',
            notes   text
        );
        CREATE TABLE orders (
            id          bigserial PRIMARY KEY,
            customer_id int NOT NULL REFERENCES customers(id),
            amount      numeric(10,2) NOT NULL
        );
        CREATE INDEX orders_customer_idx ON orders (customer_id);
        CREATE TABLE audit_log (id serial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL, row_id int);
        CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO audit_log (table_name, op, row_id) VALUES (TG_TABLE_NAME, TG_OP, NEW.id);
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER customers_audit AFTER INSERT OR UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION log_change();
        INSERT INTO customers (name, mood, notes)
            SELECT 'customer ' || g, (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, repeat('n', g % 7)
            FROM generate_series(1, 200) g;
        INSERT INTO orders (customer_id, amount) SELECT 1 + g % 200, g * 1.25 FROM generate_series(1, 1000) g;
        CREATE VIEW customer_totals AS
            SELECT c.id, c.name, sum(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
        CREATE TABLE events (id int NOT NULL, happened_on date NOT NULL, payload text) PARTITION BY RANGE (happened_on);
        CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
        CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        INSERT INTO events SELECT g, DATE '2023-06-01' + (g % 400), 'event ' || g FROM generate_series(1, 500) g;
        CREATE SEQUENCE invoice_no;
        SELECT setval('invoice_no', 1000);
        CREATE TABLE documents (id int PRIMARY KEY, body oid NOT NULL);
        INSERT INTO documents VALUES (1, lo_from_bytea(0, convert_to(repeat('pgsnap large object ', 500), 'UTF8') || '\\x00ff7f80'::bytea));
        CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
        INSERT INTO schema_migrations VALUES (44, false);
        """

    /// A bad migration in golang-migrate's manner, like scripts/demo-data/000045_*.up.sql.
    static let badMigration = """
        UPDATE schema_migrations SET version = 45, dirty = true;
        BEGIN;
        DROP VIEW customer_totals;
        DROP TABLE orders;
        CREATE TABLE phases (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), name text NOT NULL);
        INSERT INTO phases (customer_id, name) VALUES (1, 'first');
        ALTER TABLE customers DROP COLUMN notes;
        UPDATE customers SET name = 'x';
        SELECT lo_unlink(body) FROM documents;
        SELECT setval('invoice_no', 5000);
        COMMIT;
        """

    static func simpleSchema(rows: Int) -> String {
        """
        CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
        INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, \(rows)) g;
        """
    }

    func assertNoScratchDatabases(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "scratch databases left behind", file: file, line: line)
    }

    // MARK: - 1. Round trip

    func testRestoreUndoesBadMigrationOfRichSchema() throws {
        let db = try fixture.database("rrich")
        try Harness.psql(db, Self.richSchema)
        let original = try Harness.fingerprint(db)
        let loBefore = try Harness.psql(db, "SELECT md5(lo_get(body)) FROM documents WHERE id = 1")
        let partitionsQuery = "SELECT (SELECT count(*) FROM events_2023) || ' ' || (SELECT count(*) FROM events_2024)"
        let partitionRows = try Harness.psql(db, partitionsQuery)
        XCTAssertFalse(partitionRows.split(separator: " ").contains("0"), "both partitions need rows: \(partitionRows)")
        XCTAssertEqual(loBefore.count, 32)
        _ = try fixture.backup(db)

        try Harness.psql(db, Self.badMigration)
        let migrated = try Harness.fingerprint(db)
        XCTAssertNotEqual(migrated, original)
        XCTAssertEqual(try Harness.psql(db, "SELECT version || ' ' || dirty FROM schema_migrations"), "45 true")

        let r = try fixture.pgsnap(["restore", "latest", "--yes", "-d", db])
        XCTAssertEqual(r.status, 0, r.stderr)

        XCTAssertEqual(try Harness.fingerprint(db), original)
        XCTAssertEqual(try Harness.psql(db, "SELECT to_regclass('public.phases') IS NULL"), "t", "the migration's new table is still there")
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM orders"), "1000")
        XCTAssertEqual(try Harness.psql(db, partitionsQuery), partitionRows)
        XCTAssertEqual(try Harness.psql(db, "SELECT md5(lo_get(body)) FROM documents WHERE id = 1"), loBefore)
        XCTAssertEqual(try Harness.psql(db, "SELECT version || ' ' || dirty FROM schema_migrations"), "44 false")
        XCTAssertEqual(try Harness.psql(db, "SELECT nextval('invoice_no')"), "1001")
        // The trigger works again after the restore (and the function it calls came back).
        let audits = try Harness.psql(db, "SELECT count(*) FROM audit_log")
        try Harness.psql(db, "INSERT INTO customers (name) VALUES ('after restore')")
        XCTAssertEqual(Int(try Harness.psql(db, "SELECT count(*) FROM audit_log")), Int(audits)! + 1)

        let previous = try RestoreFixture.previousDatabases(of: db)
        XCTAssertEqual(previous.count, 1, "expected exactly one \(db)_pre_restore_* database, got \(previous)")
        if let p = previous.first {
            XCTAssertEqual(try Harness.fingerprint(p), migrated, "the previous database does not hold the migrated state")
            XCTAssertEqual(try Harness.psql(p, "SELECT version || ' ' || dirty FROM schema_migrations"), "45 true")
        }
        try assertNoScratchDatabases()
    }

    // MARK: - 2. Corrupt snapshot

    func testCorruptSnapshotExits2AndLeavesTargetUntouched() throws {
        let db = try fixture.database("rcorrupt")
        try Harness.psql(db, Self.simpleSchema(rows: 5000))
        let id = try fixture.backup(db)
        try Harness.psql(db, "UPDATE items SET name = 'changed after backup' WHERE id <= 10")
        let before = try Harness.fingerprint(db)

        let path = try fixture.dumpPath(id)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let middle = bytes.count / 2
        bytes[middle] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))

        let r = try fixture.pgsnap(["restore", id, "--yes", "-d", db])
        XCTAssertEqual(r.status, 2, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains(id), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        try assertNoScratchDatabases()
    }

    // MARK: - 3. psql fails half-way

    func testRestoreFailingHalfWayLeavesTargetUntouched() throws {
        let db = try fixture.database("rhalf")
        let owner = fixture.role("tmp_owner")
        try Harness.psql(db, Self.simpleSchema(rows: 2000) + """

            CREATE TABLE owned_by_gone (id int PRIMARY KEY, v text);
            INSERT INTO owned_by_gone SELECT g, 'v' || g FROM generate_series(1, 100) g;
            """)
        try Harness.psql("postgres", "CREATE ROLE \(owner)")
        try Harness.psql(db, "ALTER TABLE owned_by_gone OWNER TO \(owner)")
        _ = try fixture.backup(db)
        try Harness.psql(db, "REASSIGN OWNED BY \(owner) TO postgres")
        try Harness.psql("postgres", "DROP ROLE \(owner)")
        try Harness.psql(db, "DELETE FROM items WHERE id > 1000")
        let before = try Harness.fingerprint(db)

        let r = try fixture.pgsnap(["restore", "latest", "--yes", "-d", db])
        XCTAssertEqual(r.status, 1, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains(owner), "stderr does not name the missing role: \(r.stderr)")
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        try assertNoScratchDatabases()
    }

    // MARK: - 4. SIGKILL mid-restore

    func testKilledRestoreLeavesTargetAndNextRunDropsOrphan() throws {
        let db = try fixture.database("rkill")
        try Harness.psql(db, """
            CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL);
            INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 300000) g;
            """)
        let id = try fixture.backup(db)
        try Harness.psql(db, "DELETE FROM big WHERE id % 3 = 0; CREATE TABLE after_backup (x int); INSERT INTO after_backup VALUES (1)")
        let before = try Harness.fingerprint(db)

        var held: Int32?
        // --jobs 1: one psql session streams the whole table. The test holds the load itself: it
        // stops that psql with SIGSTOP as soon as /proc shows it (pgsnap then blocks on the full
        // pipe), kills pgsnap, and lets psql go on to the end of its input. No race with how fast
        // the restore is, and no nested process launch inside the poll.
        let killed = try fixture.pgsnap(["restore", "latest", "--yes", "--jobs", "1", "-d", db], whileRunning: { pid in
            held = Procfs.stopLoadingPsql(of: pid)
            kill(pid, SIGKILL)
            if let held {
                // Wait until pgsnap is dead (a zombie or gone: its end of psql's stdin is closed).
                while Procfs.entry(pid).map({ $0.state != "Z" }) ?? false { usleep(1_000) }
                kill(held, SIGCONT)
            }
        })
        XCTAssertTrue(held != nil, "never saw psql loading the scratch database; stderr: \(killed.stderr)")
        XCTAssertEqual(killed.status, SIGKILL, "pgsnap was not killed (it finished first?): \(killed.stderr)")

        let orphans = try RestoreFixture.scratchDatabases().filter { $0.hasPrefix("pgsnap_scratch_") && $0.contains("_\(killed.pid)_") }
        XCTAssertEqual(orphans.count, 1, "the killed run's scratch database should still exist: \(orphans)")
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed although the restore was killed")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])

        let next = try fixture.pgsnap(["restore", id, "--yes", "--drop-previous", "-d", db])
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("_\(killed.pid)_"), "the next run did not report dropping the orphan: \(next.stderr)")
        try assertNoScratchDatabases()
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM big"), "300000")
        XCTAssertEqual(try Harness.psql(db, "SELECT to_regclass('public.after_backup') IS NULL"), "t")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "--drop-previous kept the previous database")
    }

    /// A scratch database whose pid now belongs to another process (a pid reused after a
    /// reboot) is dropped by the next restore: that process started after the name was given.
    /// A pid whose process started before it is a run still going: left alone.
    func testAScratchDatabaseWhosePidWasReusedIsDropped() throws {
        let db = try fixture.database("rreuse")
        try Harness.psql(db, Self.simpleSchema(rows: 10))
        let id = try fixture.backup(db)
        let copy = db + "_copy"
        fixture.track(database: copy)
        let first = try fixture.pgsnap(["restore", id, "--target", copy, "-d", db])
        XCTAssertEqual(first.status, 0, first.stderr)
        let tag = try XCTUnwrap(first.stderr.components(separatedBy: "pgsnap_scratch_").dropFirst().first?.split(separator: "_").first, first.stderr)
        let other = try HeldProcess("/bin/cat")
        defer { other.stop() }
        let now = Int(Date().timeIntervalSince1970)
        let reused = "pgsnap_scratch_\(tag)_\(other.pid)_\(now - 86400)"
        let running = "pgsnap_scratch_\(tag)_\(other.pid)_\(now + 60)"
        for name in [reused, running] {
            try Harness.psql("postgres", "CREATE DATABASE \"\(name)\"")
            fixture.track(database: name)
        }
        let next = try fixture.pgsnap(["restore", id, "--target", copy, "-d", db, "--yes", "--drop-previous"])
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("dropping scratch database \(reused) left by an interrupted run (pid \(other.pid), now another process's)"), next.stderr)
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [running], "the reused pid's database is gone, the live run's kept")
    }

    // MARK: - 5. --target

    func testRestoreUnderNewNameLeavesOriginalUntouched() throws {
        let db = try fixture.database("rtarget")
        try Harness.psql(db, Self.simpleSchema(rows: 3000))
        let atBackup = try Harness.fingerprint(db)
        let id = try fixture.backup(db)
        try Harness.psql(db, "UPDATE items SET name = upper(name) WHERE id % 2 = 0; CREATE TABLE extra (x int)")
        let originalNow = try Harness.fingerprint(db)
        XCTAssertNotEqual(originalNow, atBackup)

        let copy = "\(db)_copy"
        fixture.track(database: copy)
        // A new name: nothing is replaced, so no --yes is needed even without a terminal.
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "-d", db])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Harness.fingerprint(copy), atBackup)
        XCTAssertEqual(try Harness.fingerprint(db), originalNow)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: copy), [])
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        try assertNoScratchDatabases()
    }

    // MARK: - 6. Database-level settings, grants, comment

    func testDatabaseSettingsGrantsAndCommentSurvive() throws {
        let db = try fixture.database("rprops")
        let reader = fixture.role("reader")
        try Harness.psql(db, Self.simpleSchema(rows: 10))
        try Harness.psql("postgres", "CREATE ROLE \(reader)")
        for sql in [
            "ALTER DATABASE \(db) SET work_mem = '64MB'",
            "ALTER DATABASE \(db) SET search_path = app, public",
            "GRANT CONNECT ON DATABASE \(db) TO \(reader)",
            "REVOKE CONNECT ON DATABASE \(db) FROM PUBLIC",
            "COMMENT ON DATABASE \(db) IS 'x'",
        ] { try Harness.psql("postgres", sql) }

        func settings() throws -> String {
            try Harness.psql("postgres", """
                SELECT string_agg(c, ' | ' ORDER BY c) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase,
                       unnest(s.setconfig) c WHERE d.datname = '\(db)' AND s.setrole = 0
                """)
        }
        // datacl compared as a set: its order depends on the grant history, not its meaning.
        func grants() throws -> String {
            try Harness.psql("postgres", """
                SELECT string_agg(g, ' ' ORDER BY g) FROM (
                    SELECT format('%s:%s:%s:%s', a.grantor::regrole,
                                  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
                                  a.privilege_type, a.is_grantable) AS g
                    FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = '\(db)') grants
                """)
        }
        func comment() throws -> String {
            try Harness.psql("postgres", "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '\(db)'")
        }
        let settingsBefore = try settings(), grantsBefore = try grants(), commentBefore = try comment()
        XCTAssertEqual(settingsBefore, "search_path=app, public | work_mem=64MB")
        XCTAssertTrue(grantsBefore.contains("\(reader):CONNECT"), grantsBefore)
        XCTAssertFalse(grantsBefore.contains("PUBLIC:CONNECT"), grantsBefore)
        XCTAssertEqual(commentBefore, "x")

        _ = try fixture.backup(db)
        try Harness.psql(db, "DELETE FROM items")

        let r = try fixture.pgsnap(["restore", "latest", "--yes", "-d", db])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM items"), "10")
        XCTAssertEqual(try settings(), settingsBefore)
        XCTAssertEqual(try grants(), grantsBefore)
        XCTAssertEqual(try comment(), commentBefore)
        XCTAssertEqual(try Harness.psql(db, "SHOW search_path"), "app, public")
        XCTAssertEqual(try Harness.psql(db, "SHOW work_mem"), "64MB")
        try assertNoScratchDatabases()
    }

    // MARK: - 7. Other sessions

    func testConnectedSessionRefusesUnlessTerminateConnections() throws {
        let db = try fixture.database("rsess")
        try Harness.psql(db, Self.simpleSchema(rows: 1000))
        let atBackup = try Harness.fingerprint(db)
        _ = try fixture.backup(db)
        try Harness.psql(db, "DELETE FROM items WHERE id > 500")
        let before = try Harness.fingerprint(db)

        let held = try HeldSession(database: db, applicationName: "held_open")
        defer { held.close() }
        XCTAssertTrue(try held.waitUntilConnected(), "the held psql session never appeared")

        let refused = try fixture.pgsnap(["restore", "latest", "--yes", "-d", db])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("held_open"), "stderr does not name the session: \(refused.stderr)")
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        XCTAssertEqual(try Harness.psql("postgres", "SELECT datallowconn FROM pg_database WHERE datname = '\(db)'"), "t")
        try assertNoScratchDatabases()

        let forced = try fixture.pgsnap(["restore", "latest", "--yes", "--terminate-connections", "-d", db])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), atBackup)
        XCTAssertEqual(try Harness.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'held_open'"), "0")
        try assertNoScratchDatabases()
    }

    // MARK: - 8. No terminal, no --yes

    /// A database with a snapshot and changes since: what a restore would replace.
    func changedSinceBackup(_ prefix: String) throws -> (db: String, before: String) {
        let db = try fixture.database(prefix)
        try Harness.psql(db, Self.simpleSchema(rows: 100))
        _ = try fixture.backup(db)
        try Harness.psql(db, "DELETE FROM items WHERE id > 50")
        return (db, try Harness.fingerprint(db))
    }

    func testReplacingWithoutTerminalOrYesIsUsageError() throws {
        let (db, before) = try changedSinceBackup("rnotty")

        // Harness.run gives the child /dev/null as stdin and pipes as stdout/stderr: no terminal.
        let r = try fixture.pgsnap(["restore", "latest", "-d", db])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("--yes"), r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        try assertNoScratchDatabases()
    }

    /// At the terminal's "Replace database ...? [y/N]", Ctrl-C ends the run: exit 130, nothing
    /// changed (the read restarted after the signal: pgsnap waited for ever holding the lock,
    /// and a later "y" went on to restore). A pty from Python's pty module; the wait for the
    /// exit is bounded so that a regression fails instead of hanging the suite.
    func testCtrlCAtTheQuestionEndsTheRunAndChangesNothing() throws {
        let (db, before) = try changedSinceBackup("rprompt")
        let script = """
            import os, pty, select, signal, sys, time
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            seen = b""
            while b"[y/N]" not in seen:
                seen += os.read(fd, 4096)
            os.kill(pid, signal.SIGINT)
            deadline = time.time() + 60
            while time.time() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    print(os.waitstatus_to_exitcode(status))
                    sys.exit(0)
                if select.select([fd], [], [], 0.05)[0]:
                    try:
                        os.read(fd, 4096)
                    except OSError:
                        pass
            os.kill(pid, signal.SIGKILL)
            print("hung")
            """
        let r = try Harness.run("/usr/bin/python3", ["-c", script, Harness.binary, "restore", "latest", "-d", db], env: ["PGSNAP_DIR": fixture.dir])
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "130", r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        try assertNoScratchDatabases()
    }

    // MARK: - 9. --json, --label, --before

    func testJSONOutputAndLabelAndBeforeSelection() throws {
        let db = try fixture.database("rselect")
        try Harness.psql(db, Self.simpleSchema(rows: 100) + "\nCREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'one');")
        let first = try Harness.fingerprint(db)
        let firstID = try fixture.backup(db, label: "first")
        try Harness.psql(db, "INSERT INTO items SELECT g, 'more ' || g FROM generate_series(101, 150) g; INSERT INTO notes VALUES (2, 'two')")
        let second = try Harness.fingerprint(db)
        let secondID = try fixture.backup(db, label: "second")
        XCTAssertNotEqual(firstID, secondID)
        try Harness.psql(db, "TRUNCATE items, notes")

        // --label picks the older snapshot although a newer one exists.
        let r1 = try fixture.pgsnap(["restore", "--label", "first", "--yes", "--json", "-d", db])
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let j1 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r1.stdout.utf8)) as? [String: Any], r1.stdout)
        XCTAssertEqual(Set(j1.keys), ["snapshot", "target", "previous_database", "tables_checked", "rows_checked", "duration_seconds", "phases"])
        let phases = try XCTUnwrap(j1["phases"] as? [String: Double], "\(j1)")
        XCTAssertEqual(Set(phases.keys), ["integrity", "create_scratch", "load_data", "indexes_constraints", "row_counts", "statistics",
                                          "properties", "swap"])
        XCTAssertTrue(phases.values.allSatisfy { $0 >= 0 }, "\(phases)")
        XCTAssertEqual(j1["snapshot"] as? String, firstID)
        XCTAssertEqual(j1["target"] as? String, db)
        let previous = try XCTUnwrap(j1["previous_database"] as? String)
        XCTAssertTrue(previous.hasPrefix(db + "_pre_restore_"), previous)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [previous])
        XCTAssertEqual(j1["tables_checked"] as? Int, 2)
        XCTAssertEqual(j1["rows_checked"] as? Int, 101)
        XCTAssertNotNil(j1["duration_seconds"] as? Double)
        XCTAssertEqual(try Harness.fingerprint(db), first)
        XCTAssertEqual(try Harness.psql(previous, "SELECT count(*) FROM items"), "0", "the previous database is not the truncated one")
        // Dropped here so the next restores cannot collide with its name (see testRestoresWithinOneSecondKeepEachPreviousDatabase).
        Harness.dropDatabase(previous)

        // latest with --label second.
        let r2 = try fixture.pgsnap(["restore", "--label", "second", "--yes", "--drop-previous", "--json", "-d", db])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let j2 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r2.stdout.utf8)) as? [String: Any], r2.stdout)
        XCTAssertEqual(j2["snapshot"] as? String, secondID)
        XCTAssertEqual(j2["rows_checked"] as? Int, 152)
        XCTAssertNil(j2["previous_database"] as? String, "--drop-previous dropped it, yet JSON names one: \(r2.stdout)")
        XCTAssertEqual(try Harness.fingerprint(db), second)

        // --before the second snapshot's creation time picks the first.
        let secondCreated = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: secondID)["created_at"] as? String)
        let r3 = try fixture.pgsnap(["restore", "latest", "--before", secondCreated, "--yes", "--drop-previous", "--json", "-d", db])
        XCTAssertEqual(r3.status, 0, r3.stderr)
        let j3 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r3.stdout.utf8)) as? [String: Any], r3.stdout)
        XCTAssertEqual(j3["snapshot"] as? String, firstID)
        XCTAssertEqual(try Harness.fingerprint(db), first)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        try assertNoScratchDatabases()
    }

    // MARK: - Two restores in the same second

    /// A second restore within the same UTC second must not fail on the name of the first one's previous database.
    ///
    /// PGSNAP_NOW pins pgsnap's clock, which makes "the same second" deterministic; scripts that restore
    /// twice in a row (a guard retry, a restore of the wrong snapshot corrected at once) hit it for real.
    func testRestoresWithinOneSecondKeepEachPreviousDatabase() throws {
        let db = try fixture.database("rtwice")
        try Harness.psql(db, Self.simpleSchema(rows: 100))
        let atBackup = try Harness.fingerprint(db)
        let id = try fixture.backup(db)
        let sameSecond: [String: String?] = ["PGSNAP_NOW": "2026-11-20T14:00:00Z"]

        try Harness.psql(db, "DELETE FROM items WHERE id > 10")
        let r1 = try fixture.pgsnap(["restore", id, "--yes", "-d", db], env: sameSecond)
        XCTAssertEqual(r1.status, 0, r1.stderr)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db).count, 1)

        try Harness.psql(db, "DELETE FROM items WHERE id > 20")
        let changed = try Harness.fingerprint(db)
        let r2 = try fixture.pgsnap(["restore", id, "--yes", "-d", db], env: sameSecond)
        XCTAssertEqual(r2.status, 0, "the second restore in the same second failed: \(r2.stderr)")
        if r2.status == 0 {
            XCTAssertEqual(try Harness.fingerprint(db), atBackup)
            XCTAssertEqual(try RestoreFixture.previousDatabases(of: db).count, 2, "both previous databases should be kept")
        } else {
            XCTAssertEqual(try Harness.fingerprint(db), changed, "a failed restore must leave the target as it was")
        }
        try assertNoScratchDatabases()
    }

    // MARK: - 10. verify --restore-test

    func testVerifyRestoreTestRecordsResult() throws {
        let db = try fixture.database("rvrt")
        try Harness.psql(db, Self.richSchema)
        let before = try Harness.fingerprint(db)
        let id = try fixture.backup(db)

        let r = try fixture.pgsnap(["verify", id, "--restore-test", "-d", db])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("restore-tested"), r.stderr)
        let test = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["restore_test"] as? [String: Any])
        XCTAssertEqual(test["ok"] as? Bool, true, "\(test)")
        let list = try fixture.pgsnap(["list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let row = list.stdout.split(separator: "\n").first { $0.hasPrefix(id) }
        XCTAssertTrue(row?.contains("restore-tested") ?? false, list.stdout)
        try assertNoScratchDatabases()
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
    }
}
