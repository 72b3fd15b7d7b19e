import Foundation
import XCTest

/// Defects found by trying pgsnap on real schemas (issue 11): objects the early tests never held,
/// and the contract that scripts rely on (`list --json`, `verify --all`, never rolling back further
/// than asked). Each test here failed before its fix.
final class RealSchemaContractTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
    }

    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    static let matviewSchema = """
        CREATE TABLE film (id int PRIMARY KEY, title text NOT NULL, rating int);
        INSERT INTO film SELECT g, 'film ' || g, g % 5 FROM generate_series(1, 300) g;
        CREATE MATERIALIZED VIEW nicer_but_slower_film_list AS SELECT id, upper(title) AS title FROM film WHERE rating > 1;
        CREATE MATERIALIZED VIEW not_yet_filled AS SELECT rating, count(*) AS n FROM film GROUP BY rating WITH NO DATA;
        CREATE UNIQUE INDEX ON nicer_but_slower_film_list (id);
        """

    // MARK: - Materialized views

    /// Was: "query failed: ERROR: cannot lock relation ... not supported for materialized views".
    func testBackupAndRestoreOfDatabaseWithMaterializedViews() throws {
        let db = try fixture.database("mv")
        try Harness.psql(db, Self.matviewSchema)
        let before = try Harness.fingerprint(db)
        let id = try fixture.backup(db)
        let verify = try fixture.pgsnap(["verify", id])
        XCTAssertEqual(verify.status, 0, verify.stderr)

        let copy = db + "_copy"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Harness.fingerprint(copy), before)
        XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM nicer_but_slower_film_list"), "180")
        XCTAssertEqual(try Harness.psql(copy, "SELECT relispopulated FROM pg_class WHERE relname = 'not_yet_filled'"), "f")
    }

    /// A lock that fails for a reason other than a timeout is still one line saying what to do.
    func testLockFailureThatIsNotATimeoutIsOneClearLine() throws {
        let db = try fixture.database("lockperm")
        let role = fixture.role("nolock")
        try Harness.psql("postgres", "CREATE ROLE \"\(role)\" LOGIN")
        try Harness.psql(db, "CREATE TABLE secret (id int); GRANT CONNECT ON DATABASE \"\(db)\" TO \"\(role)\"")
        let r = try fixture.pgsnap(["backup", "-d", db, "-U", role])
        Harness.assertOneErrorLine(r, status: 1, "backup without privileges")
        XCTAssertTrue(r.stderr.contains("could not lock table"), r.stderr)
        XCTAssertTrue(r.stderr.contains("secret"), r.stderr)
        XCTAssertTrue(r.stderr.contains("permission denied"), r.stderr)
        XCTAssertFalse(r.stderr.contains("query failed"), r.stderr)
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [])
    }

    // MARK: - State keyed by the database

    /// `ALTER ROLE r IN DATABASE d SET ...` lives under the database's oid; a restore swaps in a new one.
    func testPerRoleSettingsInTheDatabaseSurviveARestore() throws {
        let db = try fixture.database("rolecfg")
        let role = fixture.role("app"), owner = fixture.role("owner")
        try Harness.psql("postgres", "CREATE ROLE \"\(role)\"; CREATE ROLE \"\(owner)\"")
        try Harness.psql(db, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        // `role` makes logins act as a group role; applied locally before its ALTER ROLE, it
        // would run that ALTER as the group role. A 1 ms timeout would end the next statement.
        try Harness.psql("postgres", """
            ALTER ROLE "\(role)" IN DATABASE "\(db)" SET work_mem = '7MB';
            ALTER ROLE "\(role)" IN DATABASE "\(db)" SET search_path = 'app, "Other Schema", public';
            ALTER ROLE "\(role)" IN DATABASE "\(db)" SET role = '\(owner)';
            ALTER ROLE "\(role)" IN DATABASE "\(db)" SET idle_in_transaction_session_timeout = '1ms';
            ALTER DATABASE "\(db)" SET statement_timeout = '42s';
            ALTER DATABASE "\(db)" SET lock_timeout = '1ms';
            ALTER DATABASE "\(db)" SET "DateStyle" = 'SQL, DMY'
            """)
        let query = """
            SELECT coalesce(r.rolname, '-') || ':' || array_to_string(s.setconfig, ';') FROM pg_db_role_setting s
            JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
            WHERE d.datname = '\(db)' ORDER BY 1
            """
        let settings = try Harness.psql("postgres", query)
        XCTAssertTrue(settings.contains("work_mem=7MB") && settings.contains("role=\(owner)"), settings)
        _ = try fixture.backup(db)
        let r = try fixture.pgsnap(["restore", "latest", "-d", db, "--yes", "--drop-previous"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Harness.psql("postgres", query), settings)
    }

    /// Rails and dbmate keep one row per applied migration, `version varchar`, no dirty column.
    func testRailsShapedSchemaMigrationsRecordsTheNewestVersion() throws {
        let db = try fixture.database("rails")
        try Harness.psql(db, """
            CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY);
            INSERT INTO schema_migrations VALUES ('20240105120000'), ('9'), ('20231231235959'), ('20240105115959');
            """)
        let id = try fixture.backup(db)
        let migration = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["migration"] as? [String: Any])
        XCTAssertEqual((migration["version"] as? NSNumber)?.int64Value, 20240105120000)
        XCTAssertEqual(migration["dirty"] as? Bool, false)
    }

    // MARK: - Contract: list --json

    func testListJSONCarriesEachSnapshotsFieldsAtTheTopLevel() throws {
        let db = try fixture.database("ljson")
        try Harness.psql(db, "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (44, false)")
        let id = try fixture.backup(db, label: "pre_migration_000045")
        let r = try fixture.pgsnap(["list", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let items = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
        XCTAssertEqual(items.count, 1)
        let item = try XCTUnwrap(items.first)
        let m = try Harness.manifest(dir: fixture.dir, id: id)
        XCTAssertEqual(item["id"] as? String, id)
        XCTAssertEqual(item["label"] as? String, "pre_migration_000045")
        XCTAssertEqual(item["database"] as? String, db)
        XCTAssertEqual(item["status"] as? String, "good")
        XCTAssertEqual(item["created_at"] as? String, m["created_at"] as? String)
        XCTAssertEqual(item["compressed_bytes"] as? Int, m["compressed_bytes"] as? Int)
        XCTAssertEqual(item["uncompressed_bytes"] as? Int, m["uncompressed_bytes"] as? Int)
        XCTAssertEqual(item["sha256"] as? String, m["sha256"] as? String)
        XCTAssertEqual((item["migration"] as? [String: Any])?["version"] as? Int, 44)
        XCTAssertNotNil(item["manifest"] as? [String: Any], "the full manifest stays nested")
    }

    // MARK: - Contract: verify --all and leftovers

    /// A cron `verify --all` while the nightly backup still streams must not page anyone.
    func testVerifyAllReportsLeftoversButPassesWhenEveryCommittedSnapshotIsWhole() throws {
        let db = try fixture.database("vall")
        try Harness.psql(db, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
        let id = try fixture.backup(db)
        let partial = db + "_20991231T235958Z.sql.gz.partial"
        try Data("half a dump".utf8).write(to: URL(fileURLWithPath: fixture.dir + "/" + partial))

        let r = try fixture.pgsnap(["verify", "--all"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let incomplete = r.stderr.split(separator: "\n").filter { $0.contains(db + "_20991231T235958Z") }
        XCTAssertEqual(incomplete.count, 1, r.stderr)
        XCTAssertTrue(incomplete.first?.contains("incomplete") ?? false, r.stderr)
        XCTAssertTrue(r.stderr.contains("ok      \(id)"), r.stderr)

        let json = try fixture.pgsnap(["verify", "--all", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let results = Harness.verifyResults(json)
        XCTAssertEqual(results.compactMap { $0["id"] as? String }, [id], "leftovers are not snapshots: \(json.stdout)")

        // A committed snapshot that is damaged still fails it.
        let dump = try fixture.dumpPath(id)
        let bytes = try Harness.bytes(dump)
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dump))
        let bad = try fixture.pgsnap(["verify", "--all"])
        XCTAssertEqual(bad.status, 2, bad.stderr)
    }

    // MARK: - Contract: never roll back further than asked

    /// Two snapshots with a row written between them; the newer one is then damaged by `damage`.
    func makeTwoSnapshots(_ prefix: String, label: String? = nil) throws -> (db: String, older: String, newer: String) {
        let db = try fixture.database(prefix)
        try Harness.psql(db, "CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 2000) g")
        let older = try fixture.backup(db, label: label)
        try Harness.psql(db, "INSERT INTO t VALUES (5000, 'written between the two backups')")
        let newer = try fixture.backup(db, label: label)
        XCTAssertNotEqual(older, newer)
        return (db, older, newer)
    }

    func truncate(_ path: String) throws {
        let bytes = try Harness.bytes(path)
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: path))
    }

    func flipByte(_ path: String) throws {
        var bytes = try Harness.bytes(path)
        bytes[bytes.count / 2] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    func assertRefusedNamingBoth(_ r: Harness.Result, newer: String, older: String, check: String, db: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        Harness.assertOneErrorLine(r, status: 2, "restore of a damaged newest snapshot", file: file, line: line)
        let first = String(r.stderr.split(separator: "\n").first ?? "")
        XCTAssertTrue(first.hasPrefix("pgsnap: the newest snapshot"), first, file: file, line: line)
        XCTAssertTrue(first.contains(newer), "must name the damaged snapshot: \(first)", file: file, line: line)
        XCTAssertTrue(first.contains("\(check) check"), "must name the failed check: \(first)", file: file, line: line)
        XCTAssertTrue(first.contains("pgsnap restore \(older)"), "must give the command for the older one: \(first)", file: file, line: line)
        XCTAssertFalse(first.contains("No good snapshot"), first, file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t WHERE id = 5000"), "1", "the target was changed", file: file, line: line)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], file: file, line: line)
    }

    func testRestoreLatestRefusesWhenTheNewestSnapshotIsTruncated() throws {
        let (db, older, newer) = try makeTwoSnapshots("rtrunc")
        try truncate(try fixture.dumpPath(newer))
        let r = try fixture.pgsnap(["restore", "latest", "-d", db, "--yes"])
        try assertRefusedNamingBoth(r, newer: newer, older: older, check: "size", db: db)

        // On purpose, with the command it printed, the older one restores.
        let ok = try fixture.pgsnap(["restore", older, "-d", db, "--yes", "--drop-previous"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t WHERE id = 5000"), "0")
    }

    func testRestoreLatestRefusesWhenTheNewestSnapshotFailsItsChecksum() throws {
        let (db, older, newer) = try makeTwoSnapshots("rsum")
        try flipByte(try fixture.dumpPath(newer))
        let r = try fixture.pgsnap(["restore", "latest", "-d", db, "--yes"])
        try assertRefusedNamingBoth(r, newer: newer, older: older, check: "checksum", db: db)
    }

    /// The check runs beside the server's preparation; its verdict still comes first.
    func testAChecksumFailureIsSaidBeforeAnUnreachableServer() throws {
        let (db, older, newer) = try makeTwoSnapshots("rsumdown")
        try flipByte(try fixture.dumpPath(newer))
        let r = try fixture.pgsnap(["restore", "latest", "-d", db, "--yes"], env: ["PGHOST": "127.0.0.1", "PGPORT": "1"])
        try assertRefusedNamingBoth(r, newer: newer, older: older, check: "checksum", db: db)
    }

    /// No question about a snapshot that fails its checksum: the refusal, not "no terminal to confirm".
    func testNoOneIsAskedToReplaceADatabaseWithADamagedSnapshot() throws {
        let (db, older, newer) = try makeTwoSnapshots("rsumask")
        try flipByte(try fixture.dumpPath(newer))
        let r = try fixture.pgsnap(["restore", "latest", "-d", db])
        try assertRefusedNamingBoth(r, newer: newer, older: older, check: "checksum", db: db)
        let healthy = try fixture.pgsnap(["restore", older, "-d", db])
        XCTAssertEqual(healthy.status, 64, "an intact snapshot gets to the question: \(healthy.stderr)")
        XCTAssertTrue(healthy.stderr.contains("no terminal to confirm"), healthy.stderr)
    }

    /// An explicit snapshot id replaces its own database; -d naming another one is refused, not
    /// silently ignored (the other database would have been left as it was, this one replaced).
    func testAnExplicitIdWithAnotherDatabaseInDashDIsRefused() throws {
        let (db, older, _) = try makeTwoSnapshots("ridd")
        let other = try fixture.database("riddo")
        try Harness.psql(other, "CREATE TABLE mine (x int); INSERT INTO mine VALUES (1)")
        let beforeOwn = try Harness.psql(db, "SELECT count(*) FROM t")
        let r = try fixture.pgsnap(["restore", older, "-d", other, "--yes"])
        Harness.assertOneErrorLine(r, status: 64, "restore ID -d OTHER")
        XCTAssertTrue(r.stderr.contains("--target \(other)"), r.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t"), beforeOwn, "the snapshot's own database was replaced")
        XCTAssertEqual(try Harness.psql(other, "SELECT count(*) FROM mine"), "1")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        // As a connection string naming it, the same; naming the snapshot's own database, it restores.
        let conn = try fixture.pgsnap(["restore", older, "-d", "dbname=\(other)", "--yes"])
        XCTAssertEqual(conn.status, 64, conn.stderr)
        let own = try fixture.pgsnap(["restore", older, "-d", db, "--yes", "--drop-previous"])
        XCTAssertEqual(own.status, 0, own.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t WHERE id = 5000"), "0")
    }

    func testRestoreByLabelRefusesWhenTheNewestWithThatLabelIsDamaged() throws {
        let (db, older, newer) = try makeTwoSnapshots("rlabel", label: "nightly")
        try truncate(try fixture.dumpPath(newer))
        let r = try fixture.pgsnap(["restore", "--label", "nightly", "-d", db, "--yes"])
        try assertRefusedNamingBoth(r, newer: newer, older: older, check: "size", db: db)
    }

    func testRestoreBeforeRefusesWhenTheNewestBeforeThatTimeIsDamaged() throws {
        let (db, older, newer) = try makeTwoSnapshots("rbefore")
        try truncate(try fixture.dumpPath(newer))
        let r = try fixture.pgsnap(["restore", "latest", "--before", "2099-01-01 00:00", "-d", db, "--yes"])
        try assertRefusedNamingBoth(r, newer: newer, older: older, check: "size", db: db)
    }

    /// `latest` skips only what was never committed: a `.partial` newer than every snapshot is not "the newest".
    func testRestoreLatestSkipsAnUncommittedPartial() throws {
        let (db, _, newer) = try makeTwoSnapshots("rpartial")
        try Data("half".utf8).write(to: URL(fileURLWithPath: fixture.dir + "/" + db + "_20991231T235958Z.sql.gz.partial"))
        let r = try fixture.pgsnap(["restore", "latest", "-d", db, "--yes", "--json", "--drop-previous"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(j["snapshot"] as? String, newer)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t WHERE id = 5000"), "1")
        // Passed over, and said so: the newest backup did not finish.
        XCTAssertTrue(r.stderr.contains("warning: a newer backup did not finish or is still running (\(db)_20991231T235958Z: partial)")
                      && r.stderr.contains("using \(newer)"), r.stderr)
    }
}
