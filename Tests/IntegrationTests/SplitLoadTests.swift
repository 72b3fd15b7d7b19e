import Foundation
import XCTest

/// The plain restore's split load: a big table's rows dealt out to several COPY sessions. A
/// session that fails leaves the target as it was and no scratch database behind, exactly like
/// a failure of the one psql session; a bad size override is a usage error.
final class SplitLoadTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws { fixture = try RestoreFixture() }
    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    /// A database with one big table (`rows` rows, primary key) and one small one (2 rows).
    func bigAndSmall(_ prefix: String, rows: Int) throws -> String {
        let db = try fixture.database(prefix)
        try Harness.psql(db, """
            CREATE TABLE big (id int PRIMARY KEY, payload text NOT NULL);
            INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, \(rows)) g;
            CREATE TABLE small (id int PRIMARY KEY);
            INSERT INTO small VALUES (1), (2);
            """)
        return db
    }

    /// A directory snapshot of `db`; its id.
    func directorySnapshot(_ db: String) throws -> String {
        let b = try fixture.pgsnap(["backup", "-d", db, "--format", "directory"])
        XCTAssertEqual(b.status, 0, b.stderr)
        return b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The size of `table`'s data file in a manifest's `files`.
    func dataFileBytes(_ files: [[String: Any]], table: String) throws -> Int {
        try XCTUnwrap(files.first { $0["table"] as? String == table }?["bytes"] as? Int, "no data file for \(table)")
    }

    /// A snapshot whose big table holds one row the server refuses (an extra column in the middle
    /// of the rows), with a manifest that matches the file: every check before the load passes.
    func snapshotWithARefusedRow() throws -> (db: String, id: String) {
        let db = try bigAndSmall("split", rows: 200000)
        let id = try fixture.backup(db)
        let path = try fixture.dumpPath(id)
        let dump = try Harness.gunzip(path)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let broken = dump.stdout.replacingOccurrences(of: "\n100000\t\(md5(100000))\n", with: "\n100000\t\(md5(100000))\textra\n")
        XCTAssertNotEqual(broken, dump.stdout, "the row to break was not found")
        let tmp = fixture.dir + "/broken.sql"
        try Data(broken.utf8).write(to: URL(fileURLWithPath: tmp))
        XCTAssertEqual(try Harness.run("/bin/gzip", ["-f", tmp]).status, 0)
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: tmp + ".gz", toPath: path)
        chmod(path, 0o600)
        var m = try Harness.manifest(dir: fixture.dir, id: id)
        m["compressed_bytes"] = try Harness.fileSize(path)
        m["uncompressed_bytes"] = broken.utf8.count
        m["sha256"] = try Harness.sha256sum(path)
        try Harness.writeJSON(m, to: Harness.manifestPath(dir: fixture.dir, id: id))
        XCTAssertEqual(try fixture.pgsnap(["verify", id]).status, 0, "the doctored snapshot must pass verify: the server refuses it, not pgsnap")
        return (db, id)
    }

    func md5(_ n: Int) -> String {
        (try? Harness.psql("postgres", "SELECT md5('\(n)')")) ?? "?"
    }

    func testAFailedSplitSessionLeavesANewTargetUncreated() throws {
        let (db, id) = try snapshotWithARefusedRow()
        let target = db + "_copy"
        fixture.track(database: target)
        let r = try fixture.pgsnap(["restore", id, "--target", target, "--jobs", "2", "--quiet"], env: ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1000"])
        Harness.assertOneErrorLine(r, status: 1, "split load of a refused row")
        XCTAssertTrue(r.stderr.contains("loading public.big failed: COPY failed:"), r.stderr)
        XCTAssertTrue(r.stderr.contains("extra data after last expected column"), r.stderr)
        XCTAssertFalse(try RestoreFixture.exists(target), "a failed restore must not create the target")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    func testAFailedSplitSessionLeavesAnExistingTargetUntouched() throws {
        let (db, id) = try snapshotWithARefusedRow()
        try Harness.psql(db, "DELETE FROM big WHERE id > 10; INSERT INTO small VALUES (3)")
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2", "--quiet"], env: ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1000"])
        Harness.assertOneErrorLine(r, status: 1, "split load over an existing database")
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed although the restore failed")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        // The same snapshot through one psql session fails the same way.
        let one = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "1", "--quiet"])
        Harness.assertOneErrorLine(one, status: 1, "one session")
        XCTAssertTrue(one.stderr.contains("extra data after last expected column"), one.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before)
    }

    /// On a server that logs hint bits (the test server runs with `wal_log_hints=on`, as one
    /// with data checksums would), the sessions commit every PGSNAP_COPY_COMMIT_BYTES and the
    /// pages loaded so far are read behind the load: a table with a name that needs quoting
    /// restores exactly from plain and directory snapshots, its rows counted over every commit.
    func testSplitLoadCommittedInRoundsRestoresExactly() throws {
        XCTAssertEqual(try Harness.psql("postgres", "SELECT current_setting('wal_log_hints')"), "on", "scripts/test starts the server with wal_log_hints=on")
        let db = try fixture.database("splitrounds")
        try Harness.psql(db, """
            CREATE TABLE "Big Rounds" (id bigint PRIMARY KEY, doc jsonb, note text);
            INSERT INTO "Big Rounds" SELECT g, jsonb_build_object('g', g, 'tab', E'a\\tb'), md5(g::text) FROM generate_series(1, 60000) g;
            CREATE TABLE small (id int PRIMARY KEY);
            INSERT INTO small VALUES (1), (2);
            """)
        let before = try Harness.fingerprint(db)
        let plain = try fixture.backup(db)
        let directory = try directorySnapshot(db)
        for (id, env) in [(plain, ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1000"]), (directory, ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])] {
            let copy = db + "_copy_" + (id == plain ? "plain" : "dir")
            fixture.track(database: copy)
            var e = env
            e["PGSNAP_COPY_COMMIT_BYTES"] = "1"
            let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2", "--verbose"], env: e)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains(#"public."Big Rounds": loaded in "#) && r.stderr.contains("commits a session, its pages read behind the load in "), r.stderr)
            XCTAssertFalse(r.stderr.contains("commits a session, its pages read behind the load in 0 pass(es)"), r.stderr)
            XCTAssertFalse(r.stderr.contains(" failed (first: "), r.stderr)
            XCTAssertEqual(try Harness.fingerprint(copy), before, id)
            XCTAssertEqual(try Harness.psql(copy, #"SELECT count(*) FROM "Big Rounds""#), "60000")
        }
    }

    /// A row the server refuses after several commits of the split load: the restore fails as
    /// before, the rows committed in the scratch database go with it, the target is untouched.
    func testARefusedRowAfterSeveralCommitsLeavesTheTargetUntouched() throws {
        let (db, id) = try snapshotWithARefusedRow()
        try Harness.psql(db, "DELETE FROM big WHERE id > 10; INSERT INTO small VALUES (3)")
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2", "--verbose"],
                                   env: ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1000", "PGSNAP_COPY_COMMIT_BYTES": "1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertNotNil(r.stderr.range(of: #"public\.big: the load stopped after [1-9][0-9]* round\(s\) of commits"#, options: .regularExpression), r.stderr)
        XCTAssertTrue(r.stderr.contains("loading public.big failed: COPY failed:"), r.stderr)
        XCTAssertTrue(r.stderr.contains("extra data after last expected column"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed although the restore failed")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// A big table split across sessions restores exactly, rows counted from the sessions.
    func testSplitLoadRestoresExactly() throws {
        let db = try fixture.database("splitok")
        try Harness.psql(db, """
            CREATE TABLE big (id bigint PRIMARY KEY, doc jsonb, note text);
            INSERT INTO big SELECT g, jsonb_build_object('g', g, 'tab', E'a\\tb', 'nl', E'x\\ny', 'bs', E'\\\\.'), CASE WHEN g % 3 = 0 THEN NULL ELSE E'\\\\.' END
                FROM generate_series(1, 150000) g;
            """)
        let before = try Harness.fingerprint(db)
        let id = try fixture.backup(db)
        let copy = db + "_copy"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "3", "--verbose"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("1 big table(s) loaded through 3 COPY sessions each"), r.stderr)
        XCTAssertFalse(r.stderr.contains("counting rows instead"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(copy), before)
    }

    /// Rows longer than the splitter's 256 KiB block (up to 3 MB), of about a block's length, and
    /// short ones between them, in plain and directory snapshots split across sessions: exact.
    /// A long row goes to one session piece by piece (it was buffered whole and searched again for
    /// its end on every piece: a 160 MB value took minutes and its size in memory).
    func testRowsLongerThanABlockRestoreExactly() throws {
        let db = try fixture.database("splitlong")
        try Harness.psql(db, """
            CREATE TABLE big (id int PRIMARY KEY, v text NOT NULL);
            INSERT INTO big SELECT g, CASE
                WHEN g % 50 = 0 THEN repeat(md5(g::text), (g / 50) * 20000)
                WHEN g % 50 = 1 THEN repeat('x', 262144 - 8 + g / 50)
                ELSE md5(g::text) END
            FROM generate_series(1, 1000) g;
            """)
        XCTAssertEqual(try Harness.psql(db, "SELECT max(length(v)) > 3000000 FROM big"), "t")
        let before = try Harness.fingerprint(db)
        let plain = try fixture.backup(db)
        let directory = try directorySnapshot(db)
        // Commits between every block (the server logs hint bits, see scripts/test): never inside a long row.
        for (id, env) in [(plain, ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1", "PGSNAP_COPY_COMMIT_BYTES": "1"]),
                          (directory, ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0", "PGSNAP_COPY_COMMIT_BYTES": "1"])] {
            let copy = db + "_copy_" + (id == plain ? "plain" : "dir")
            fixture.track(database: copy)
            let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2", "--verbose"], env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("big table(s) loaded through 2 COPY sessions each"), r.stderr)
            XCTAssertEqual(try Harness.fingerprint(copy), before, id)
        }
    }

    /// A directory snapshot's split tables are not scanned with count(*) after the load: the
    /// server's own COPY counts are checked against the manifest instead. A manifest promising one
    /// row more than the file holds still fails the restore (exit 2), before the target is touched.
    func testSplitTablesRowsAreCheckedFromTheCopyCounts() throws {
        let db = try bigAndSmall("splitcount", rows: 50000)
        let id = try directorySnapshot(db)
        let env = ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"]

        let copy = db + "_copy"
        fixture.track(database: copy)
        let ok = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2"], env: env)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("loaded through 2 COPY sessions each"), "the split load did not run: \(ok.stderr)")
        XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM big"), "50000")

        try Harness.promiseRows(["public.big": 50001], dir: fixture.dir, id: id)
        try Harness.psql(db, "INSERT INTO small VALUES (3)")
        let r = try fixture.pgsnap(["restore", id, "--yes", "--jobs", "2"], env: env)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("the load stored 50000 rows in public.big (the server's COPY count), the snapshot has 50001"), r.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM small"), "3", "the target was not touched")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// A directory snapshot's files are gzip, which the split load inflates itself: no
    /// uncompressed directory snapshot is made (pg_dump -Fd -Z0 writes files nothing here reads).
    func testADirectoryBackupWithoutCompressionIsAUsageError() throws {
        let db = try bigAndSmall("splitlevel", rows: 10)
        let r = try fixture.pgsnap(["backup", "-d", db, "--format", "directory", "--level", "0"])
        Harness.assertOneErrorLine(r, status: 64, "directory backup at level 0")
        XCTAssertTrue(r.stderr.contains("--level 0 (no compression) is for plain snapshots"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: fixture.dir).filter { !$0.hasPrefix(".") }, [], "nothing was kept")
    }

    /// A big table that is a partition: a sibling's ATTACH PARTITION or an index on its parent
    /// would reach into it while it loads, so the whole schema is made first and nothing is built
    /// early (no `schema_during_load`, no `indexes_during_load`); the result is exact.
    func testABigPartitionKeepsEveryIndexForAfterTheLoad() throws {
        let db = try fixture.database("splitpart")
        try Harness.psql(db, """
            CREATE TABLE events (id int, at date NOT NULL, note text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
            CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
            CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
            INSERT INTO events SELECT g, date '2026-01-01' + (g % 300), md5(g::text) FROM generate_series(1, 40000) g;
            INSERT INTO events VALUES (1, '2025-03-01', 'old');
            CREATE INDEX events_note ON events (note);
            CREATE TABLE small (id int PRIMARY KEY, n text UNIQUE);
            INSERT INTO small VALUES (1, 'a'), (2, 'b');
            """)
        let before = try Harness.fingerprint(db)
        let id = try directorySnapshot(db)
        let files = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]])
        let big = try dataFileBytes(files, table: "public.events_2026")
        let copy = db + "_copy"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2", "--verbose"], env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": String(big)])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("1 big table(s) loaded through 2 COPY sessions each"), r.stderr)
        XCTAssertTrue(r.stderr.contains("restore phases: ") && !r.stderr.contains("indexes_during_load") && !r.stderr.contains("schema_during_load"),
                      "nothing of a big partition's family is made beside its load: \(r.stderr)")
        XCTAssertEqual(try Harness.fingerprint(copy), before)
    }

    /// A big hash partition on an enum key: pg_dump writes its rows as a COPY into the partition
    /// root (the hash of an enum differs between databases), so they may land in its sibling. The
    /// split load leaves that table to pg_restore and says so; the row check takes the tree as a
    /// whole and says the split differs; schema and rows are exact. (Before, every restore of a
    /// directory snapshot holding such a table failed its row check.)
    func testABigTableLoadedThroughItsPartitionRootGoesThroughPgRestore() throws {
        let db = try fixture.database("splitroot")
        try Harness.psql(db, """
            CREATE TYPE mood AS ENUM ('m01', 'm02', 'm03', 'm04', 'm05', 'm06', 'm07', 'm08', 'm09', 'm10', 'm11', 'm12', 'm13', 'm14', 'm15', 'm16');
            CREATE TABLE tasks (m mood NOT NULL, id int NOT NULL, note text, PRIMARY KEY (m, id)) PARTITION BY HASH (m);
            CREATE TABLE tasks_0 PARTITION OF tasks FOR VALUES WITH (MODULUS 2, REMAINDER 0);
            CREATE TABLE tasks_1 PARTITION OF tasks FOR VALUES WITH (MODULUS 2, REMAINDER 1);
            INSERT INTO tasks SELECT (enum_range(NULL::mood))[1 + g % 16], g, md5(g::text) FROM generate_series(1, 30000) g;
            """)
        // Rows and partitions as a whole: which partition holds a row depends on the enum's OIDs.
        let tree = """
            SELECT (SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM tasks x) || ' ' ||
                   (SELECT string_agg(c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid), ', ' ORDER BY c.relname)
                    FROM pg_class c WHERE c.relispartition)
            """
        let before = try Harness.psql(db, tree)
        let id = try directorySnapshot(db)
        let copy = db + "_copy"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2", "--verbose"], env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("public.tasks_0's rows load through its partition root: pg_restore loads them in one session")
                      && r.stderr.contains("public.tasks_1's rows load through its partition root"), r.stderr)
        XCTAssertEqual(try Harness.psql(copy, tree), before)
        XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM tasks"), "30000")
        // Sixteen labels hashed anew: the chance that none changes partition is 2^-16.
        let split = "SELECT string_agg(tableoid::regclass || ' ' || m, ',' ORDER BY m) FROM (SELECT DISTINCT tableoid, m FROM tasks) x"
        XCTAssertNotEqual(try Harness.psql(copy, split), try Harness.psql(db, split), "no row changed partition: the check was not exercised")
        // Every label has as many rows: labels swapped both ways can leave each partition's count
        // as it was, and then there is no difference to report.
        let counts = "SELECT string_agg(n::text, ',' ORDER BY t) FROM (SELECT tableoid::regclass::text t, count(*) n FROM tasks GROUP BY 1) x"
        let moved = try Harness.psql(copy, counts) != (try Harness.psql(db, counts))
        XCTAssertEqual(r.stderr.contains("public.tasks is hash-partitioned on an enum key: PostgreSQL routed its rows anew"), moved, r.stderr)
    }

    /// Partitions loaded into themselves (a range tree; a tree hash-partitioned on an int key, as
    /// only an enum key's hash differs between databases): a row can only go back where it was, so
    /// partitions whose counts differ from the snapshot's in opposite directions fail the restore
    /// (exit 2), although their tree's total matches.
    func testPartitionsLoadedIntoThemselvesAreCheckedOneByOne() throws {
        let trees = [
            ("splitrange", "RANGE (k)", ["FROM (0) TO (50)", "FROM (50) TO (101)"]),
            ("splitinthash", "HASH (k)", ["WITH (MODULUS 2, REMAINDER 0)", "WITH (MODULUS 2, REMAINDER 1)"]),
        ]
        for (prefix, strategy, bounds) in trees {
            let db = try fixture.database(prefix)
            try Harness.psql(db, """
                CREATE TABLE ev (k int NOT NULL) PARTITION BY \(strategy);
                CREATE TABLE ev_0 PARTITION OF ev FOR VALUES \(bounds[0]);
                CREATE TABLE ev_1 PARTITION OF ev FOR VALUES \(bounds[1]);
                INSERT INTO ev SELECT generate_series(1, 100);
                """)
            let id = try directorySnapshot(db)
            let counts = try Harness.psql(db, "SELECT (SELECT count(*) FROM ev_0) || ' ' || (SELECT count(*) FROM ev_1)").split(separator: " ").map { Int($0)! }
            try Harness.promiseRows(["public.ev_0": counts[0] - 1, "public.ev_1": counts[1] + 1], dir: fixture.dir, id: id)
            let copy = db + "_copy"
            fixture.track(database: copy)
            let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2", "--quiet"])
            Harness.assertOneErrorLine(r, status: 2, "\(strategy) partitions with other counts")
            XCTAssertTrue(r.stderr.contains("restored table public.ev_0 has \(counts[0]) rows, the snapshot has \(counts[0] - 1)"), r.stderr)
            XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        }
    }

    /// Replaces `table`'s data file in directory snapshot `id` with gzip of `content` and makes the
    /// manifest match (file size and SHA-256, the listing's SHA-256, compressed bytes), as a
    /// hand-edited snapshot would: only the load can tell.
    func rewriteDataFile(_ id: String, table: String, expecting old: String, with content: String) throws {
        let files = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]])
        let name = try XCTUnwrap(files.first { $0["table"] as? String == table }?["name"] as? String)
        let path = fixture.dir + "/" + id + ".dir/" + name
        XCTAssertEqual(try Harness.run("/bin/zcat", [path]).stdout, old)
        let plain = path.replacingOccurrences(of: ".gz", with: "")
        try Data(content.utf8).write(to: URL(fileURLWithPath: plain))
        unlink(path)
        XCTAssertEqual(try Harness.run("/bin/gzip", [plain]).status, 0)
        chmod(path, 0o600)
        try Harness.resealDirectorySnapshot(dir: fixture.dir, id: id)
    }

    /// A big table's data file without pg_dump's `\.` end line (cut short after a whole row, with a
    /// manifest that matches its bytes): the split load refuses it (exit 2) before any session
    /// commits, and the target is untouched.
    func testABigTableFileWithoutItsEndLineFailsTheRestore() throws {
        let db = try fixture.database("splitend")
        try Harness.psql(db, "CREATE TABLE big (id int PRIMARY KEY); INSERT INTO big VALUES (1), (2), (3)")
        let id = try directorySnapshot(db)
        try rewriteDataFile(id, table: "public.big", expecting: "1\n2\n3\n\\.\n\n\n", with: "1\n2\n3\n")
        try Harness.psql(db, "INSERT INTO big VALUES (4)")
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2", "--quiet"], env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])
        Harness.assertOneErrorLine(r, status: 2, "a big table's file without its end line")
        XCTAssertTrue(r.stderr.contains("ends before the end of its rows (no \\. line)"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed although the restore failed")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// The other tables' keys are built during the big load; one of them cannot be (a hand-edited
    /// snapshot whose small table holds one key twice, with a manifest that matches its files):
    /// the restore fails with the server's words, exit 1, and the target is untouched.
    func testAnEarlyKeyThatFailsFailsTheRestoreAndLeavesTheTarget() throws {
        let db = try bigAndSmall("splitearly", rows: 30000)
        let id = try directorySnapshot(db)
        let big = try dataFileBytes(try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]]), table: "public.big")
        try rewriteDataFile(id, table: "public.small", expecting: "1\n2\n\\.\n\n\n", with: "1\n1\n\\.\n\n\n")
        XCTAssertEqual(try fixture.pgsnap(["verify", id]).status, 0, "the doctored snapshot must pass verify: the server refuses it, not pgsnap")

        try Harness.psql(db, "INSERT INTO small VALUES (3)")
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2", "--quiet"], env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": String(big)])
        Harness.assertOneErrorLine(r, status: 1, "an early key over a duplicated row")
        XCTAssertTrue(r.stderr.contains("pg_restore failed while restoring \(id) (the other tables' indexes and keys, built during the big tables' load)")
                      && r.stderr.contains("small_pkey"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed although the restore failed")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// The rest of the schema is made beside the big load; one of its tables cannot be (its owner
    /// role was dropped since the backup): the restore fails naming that step and the server's
    /// words, exit 1, the target is untouched and no scratch database is left.
    func testTheRestOfTheSchemaFailingBesideTheLoadFailsTheRestore() throws {
        let db = try bigAndSmall("splitrest", rows: 30000)
        let role = "split_gone_\(UUID().uuidString.prefix(8).lowercased())"
        try Harness.psql(db, "CREATE ROLE \(role); ALTER TABLE small OWNER TO \(role)")
        let id = try directorySnapshot(db)
        try Harness.psql(db, "REASSIGN OWNED BY \(role) TO CURRENT_USER; DROP OWNED BY \(role); DROP ROLE \(role)")
        let big = try dataFileBytes(try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]]), table: "public.big")

        try Harness.psql(db, "INSERT INTO small VALUES (3)")
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2", "--quiet"], env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": String(big)])
        Harness.assertOneErrorLine(r, status: 1, "the rest of the schema over a dropped owner")
        XCTAssertTrue(r.stderr.contains("pg_restore failed while restoring \(id) (the rest of the schema, during the big tables' load)")
                      && r.stderr.contains(role), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "the target changed although the restore failed")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    func testInvalidMaintenanceWorkMemIsAUsageError() throws {
        for bad in ["lots", "0", "-5MB", "12XB", "99999999GB"] {
            let r = try fixture.pgsnap(["restore", "latest", "-d", "nothing_here", "--maintenance-work-mem", bad])
            Harness.assertOneErrorLine(r, status: 64, "--maintenance-work-mem \(bad)")
            XCTAssertTrue(r.stderr.contains("--maintenance-work-mem"), r.stderr)
        }
    }
}
