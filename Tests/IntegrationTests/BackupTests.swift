import Foundation
import XCTest

/// `pgsnap backup` end to end: what lands on disk, what the manifest claims, and that the dump
/// restores with plain `zcat | psql` into an identical database.
final class BackupTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    func makeDatabase(_ prefix: String) throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        return db
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    /// Content that trips naive dumpers and naive row counters.
    static let awkwardSchema = #"""
        CREATE TABLE "Mixed Case" ("Mixed Col" text, id int PRIMARY KEY);
        INSERT INTO "Mixed Case" VALUES ('upper AND lower', 1), (NULL, 2);
        CREATE TABLE "données_ünïcode" (id int PRIMARY KEY, "名前" text, note text);
        INSERT INTO "données_ünïcode" VALUES (1, '日本語 🐘 émoji', NULL), (2, 'Ærøskøbing', 'ß'), (3, NULL, NULL);
        CREATE TABLE blobs (id int PRIMARY KEY, b bytea);
        INSERT INTO blobs SELECT 1, decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') FROM generate_series(0, 255) i;
        INSERT INTO blobs VALUES (2, ''::bytea), (3, NULL);
        CREATE TABLE docs (id int PRIMARY KEY, j jsonb);
        INSERT INTO docs VALUES (1, '{"a": [1, "x", null, 2.5], "ü": {"k": "v\"q\\n"}, "empty": {}}'), (2, 'null'), (3, NULL);
        CREATE TABLE empty_table (id int, t text);
        CREATE SEQUENCE counter;
        SELECT setval('counter', 42);
        CREATE TABLE weird_text (id int PRIMARY KEY, t text);
        INSERT INTO weird_text VALUES
          (1, E'tab\there'), (2, E'line1\nline2\r\nline3'), (3, E'back\\slash \\N'), (4, '\.'),
          (5, E'\\.\n\\.'), (6, ''), (7, NULL), (8, E'ends with backslash \\');
        """#

    func testAwkwardContentRestoresWithZcatAndPsqlIntoANewDatabase() throws {
        let db = try makeDatabase("awk")
        try Harness.psql(db, Self.awkwardSchema)
        let before = try Harness.fingerprint(db)
        let dir = try makeDir()

        let backup = try Harness.pgsnap(["backup", "-d", db, "--label", "awkward"], dir: dir)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = Harness.snapshotID(backup)

        let dump = try Harness.gunzip(Harness.dumpPath(dir: dir, id: id))
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let restored = try makeDatabase("awk_restored")
        let load = try Harness.psqlStdin(restored, Data(dump.stdout.utf8))
        XCTAssertEqual(load.status, 0, "psql of the dump failed: \(load.stderr)")

        XCTAssertEqual(try Harness.fingerprint(restored), before)
        XCTAssertEqual(try Harness.psql(restored, "SELECT length(b), md5(b) FROM blobs WHERE id = 1"),
                       try Harness.psql(db, "SELECT length(b), md5(b) FROM blobs WHERE id = 1"))
        XCTAssertEqual(try Harness.psql(restored, "SELECT length(b) FROM blobs WHERE id = 1"), "256")
        XCTAssertEqual(try Harness.psql(restored, #"SELECT t = '\.' FROM weird_text WHERE id = 4"#), "t")
        XCTAssertEqual(try Harness.psql(restored, #"SELECT count(*) FROM "Mixed Case" WHERE "Mixed Col" IS NULL"#), "1")
        XCTAssertEqual(try Harness.psql(restored, "SELECT count(*) FROM empty_table"), "0")
        XCTAssertEqual(try Harness.psql(restored, "SELECT nextval('counter')"), "43")
    }

    func testManifestRecordsRowCountsChecksumSizeAndMigration() throws {
        let db = try makeDatabase("mani")
        try Harness.psql(db, Self.awkwardSchema)
        try Harness.psql(db, """
            CREATE SCHEMA "Other Schema";
            CREATE TABLE "Other Schema".items AS SELECT i FROM generate_series(1, 1234) i;
            CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
            INSERT INTO schema_migrations VALUES (44, false);
            """)
        let dir = try makeDir()

        let backup = try Harness.pgsnap(["backup", "-d", db, "--label", "pre_migration_45", "--json"], dir: dir)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let printed = try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any]
        let id = try XCTUnwrap(printed?["id"] as? String, "backup --json must print the manifest: \(backup.stdout)")
        let m = try Harness.manifest(dir: dir, id: id)
        XCTAssertEqual(m["id"] as? String, id)
        XCTAssertEqual(m["sha256"] as? String, printed?["sha256"] as? String, "--json output and manifest file disagree")

        XCTAssertEqual(m["database"] as? String, db)
        XCTAssertEqual(m["label"] as? String, "pre_migration_45")
        let dump = Harness.dumpPath(dir: dir, id: id)
        XCTAssertEqual(m["file"] as? String, id + ".sql.gz")
        XCTAssertEqual(m["sha256"] as? String, try Harness.sha256sum(dump))
        XCTAssertEqual((m["compressed_bytes"] as? NSNumber)?.int64Value, try Harness.fileSize(dump))
        let unzipped = try Harness.gunzip(dump)
        XCTAssertEqual((m["uncompressed_bytes"] as? NSNumber)?.intValue, unzipped.stdout.utf8.count)

        let expected = try Harness.rowCounts(db)
        XCTAssertEqual(expected.count, 8, "the fixture's tables: \(expected)")
        XCTAssertEqual(expected["public.empty_table"], 0)
        XCTAssertEqual(expected[#"public."Mixed Case""#], 2)
        XCTAssertEqual(expected[#""Other Schema".items"#], 1234)
        let rows = try XCTUnwrap(m["table_rows"] as? [String: Int], "table_rows: \(String(describing: m["table_rows"]))")
        XCTAssertEqual(rows, expected)

        let migration = try XCTUnwrap(m["migration"] as? [String: Any], "migration missing: \(m)")
        XCTAssertEqual((migration["version"] as? NSNumber)?.intValue, 44)
        XCTAssertEqual(migration["dirty"] as? Bool, false)

        // Without schema_migrations there is no migration state to record.
        let plain = try makeDatabase("mani_plain")
        try Harness.psql(plain, "CREATE TABLE t AS SELECT 1 AS x")
        let b2 = try Harness.pgsnap(["backup", "-d", plain], dir: dir)
        XCTAssertEqual(b2.status, 0, b2.stderr)
        let m2 = try Harness.manifest(dir: dir, id: Harness.snapshotID(b2))
        XCTAssertNil(m2["migration"].flatMap { $0 is NSNull ? nil : $0 }, "no schema_migrations, yet: \(String(describing: m2["migration"]))")
        XCTAssertNil(m2["label"].flatMap { $0 is NSNull ? nil : $0 })
        XCTAssertEqual(m2["table_rows"] as? [String: Int], ["public.t": 1])
    }

    func testBackupCreatesAPrivateDirectoryAndPrivateFilesAndNoPartials() throws {
        let parent = try makeDir()
        let dir = parent + "/snapshots"
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir))
        let db = try makeDatabase("perm")
        try Harness.psql(db, "CREATE TABLE t AS SELECT i, md5(i::text) FROM generate_series(1, 5000) i")

        let first = try Harness.pgsnap(["backup", "-d", db], dir: dir)
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try Harness.pgsnap(["backup", "-d", db, "--label", "again"], dir: dir)
        XCTAssertEqual(second.status, 0, second.stderr)

        XCTAssertEqual(Harness.entries(parent), ["snapshots"], "backup wrote outside its directory")
        XCTAssertEqual(Harness.permissions(dir), 0o700)
        let files = Harness.entries(dir)
        for id in [Harness.snapshotID(first), Harness.snapshotID(second)] {
            XCTAssertTrue(files.contains(id + ".sql.gz"), "\(files)")
            XCTAssertTrue(files.contains(id + ".manifest.json"), "\(files)")
        }
        for f in files {
            XCTAssertEqual(Harness.permissions(dir + "/" + f), 0o600, "\(f) is not 0600")
            XCTAssertFalse(f.hasSuffix(".partial"), "left behind after success: \(f)")
        }
    }

    func testDumpIsZcatReadableCompleteAndIndependentOfJobs() throws {
        let db = try makeDatabase("jobs")
        // Several MiB of dump, so four compression jobs really write several gzip members.
        try Harness.psql(db, "CREATE TABLE t AS SELECT i, md5(i::text) AS a, md5((-i)::text) AS b FROM generate_series(1, 60000) i")
        try Harness.psql(db, Self.awkwardSchema)
        let dir = try makeDir()

        let one = try Harness.pgsnap(["backup", "-d", db, "--jobs", "1"], dir: dir)
        XCTAssertEqual(one.status, 0, one.stderr)
        let four = try Harness.pgsnap(["backup", "-d", db, "--jobs", "4"], dir: dir)
        XCTAssertEqual(four.status, 0, four.stderr)
        XCTAssertNotEqual(Harness.snapshotID(one), Harness.snapshotID(four))

        var texts: [String] = []
        for id in [Harness.snapshotID(one), Harness.snapshotID(four)] {
            let z = try Harness.gunzip(Harness.dumpPath(dir: dir, id: id))
            XCTAssertEqual(z.status, 0, "gzip -dc \(id): \(z.stderr)")
            XCTAssertGreaterThan(z.stdout.utf8.count, 4 << 20)
            let text = Harness.withoutRestrictKeys(z.stdout)
            XCTAssertTrue(text.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(Harness.dumpTrailer + "\n--"),
                          "\(id) does not end with the trailer: …\(text.suffix(200))")
            XCTAssertEqual(z.stdout.components(separatedBy: "\\restrict ").count - 1, 1, "one \\restrict line expected")
            texts.append(text)
        }
        XCTAssertEqual(texts[0], texts[1], "--jobs 1 and --jobs 4 decompress to different dumps")
        XCTAssertEqual(try Harness.manifest(dir: dir, id: Harness.snapshotID(four))["table_rows"] as? [String: Int],
                       try Harness.rowCounts(db))
    }

    func testTwoBackupsStartedInTheSameSecondGetDifferentIds() throws {
        let db = try makeDatabase("same")
        try Harness.psql(db, "CREATE TABLE t AS SELECT i, md5(i::text) FROM generate_series(1, 20000) i")
        let dir = try makeDir()
        // PGSNAP_NOW pins the start time, so both runs want the very same name.
        let env: [String: String?] = ["PGSNAP_NOW": "2026-11-20T03:15:00Z"]
        var results: [Harness.Result?] = [nil, nil]
        var errors: [Error?] = [nil, nil]
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            do {
                let r = try Harness.pgsnap(["backup", "-d", db, "--label", "twin"], dir: dir, env: env)
                lock.lock(); results[i] = r; lock.unlock()
            } catch {
                lock.lock(); errors[i] = error; lock.unlock()
            }
        }
        XCTAssertNil(errors[0] ?? errors[1])
        let a = try XCTUnwrap(results[0]), b = try XCTUnwrap(results[1])
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertEqual(b.status, 0, b.stderr)
        guard a.status == 0, b.status == 0 else { return }
        let ids = Set([Harness.snapshotID(a), Harness.snapshotID(b)])
        XCTAssertEqual(ids.count, 2, "same id twice: \(ids)")
        for id in ids {
            XCTAssertTrue(id.hasPrefix(db + "_20261120T031500Z"), id)
            XCTAssertTrue(id.hasSuffix("_twin"), id)
            let m = try Harness.manifest(dir: dir, id: id)
            XCTAssertEqual(m["sha256"] as? String, try Harness.sha256sum(Harness.dumpPath(dir: dir, id: id)))
        }
        XCTAssertEqual(Harness.snapshotFiles(dir).count, 4, "\(Harness.entries(dir))")
        let verify = try Harness.pgsnap(["verify", "--all"], dir: dir)
        XCTAssertEqual(verify.status, 0, verify.stderr)
    }

    func testListAndShowOfferOnlyGoodSnapshots() throws {
        let db = try makeDatabase("list")
        try Harness.psql(db, "CREATE TABLE t AS SELECT i FROM generate_series(1, 100) i")
        let dir = try makeDir()
        let backup = try Harness.pgsnap(["backup", "-d", db, "--label", "real"], dir: dir)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let good = Harness.snapshotID(backup)

        let list = try Harness.pgsnap(["list"], dir: dir)
        XCTAssertEqual(list.status, 0, list.stderr)
        let row = list.stdout.split(separator: "\n").first { $0.hasPrefix(good + " ") }
        XCTAssertNotNil(row, list.stdout)
        XCTAssertEqual(row?.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first, "good", list.stdout)

        // Leftovers dated after the good snapshot: tempting for a naive 'latest'.
        let partialID = db + "_20991231T235958Z"
        let orphanID = db + "_20991231T235959Z"
        try Data("half a dump".utf8).write(to: URL(fileURLWithPath: dir + "/" + partialID + ".sql.gz.partial"))
        try FileManager.default.copyItem(atPath: Harness.dumpPath(dir: dir, id: good), toPath: Harness.dumpPath(dir: dir, id: orphanID))

        let json = try Harness.pgsnap(["list", "--json"], dir: dir)
        XCTAssertEqual(json.status, 0, json.stderr)
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]], json.stdout)
        var status: [String: String] = [:]
        for e in entries {
            let id = try XCTUnwrap(e["id"] as? String)
            status[id] = try XCTUnwrap(e["status"] as? String, "entry without status: \(e)")
        }
        XCTAssertEqual(status, [good: "good", partialID: "partial", orphanID: "dump_without_manifest"])

        let text = try Harness.pgsnap(["list"], dir: dir)
        XCTAssertEqual(text.status, 0, text.stderr)
        for id in [partialID, orphanID] {
            let line = text.stdout.split(separator: "\n").first { $0.hasPrefix(id + " ") }
            XCTAssertNotNil(line, text.stdout)
            XCTAssertFalse(line?.contains("good") ?? true, "leftover listed as good: \(String(describing: line))")
        }

        let show = try Harness.pgsnap(["show", "latest"], dir: dir)
        XCTAssertEqual(show.status, 0, show.stderr)
        let idLine = show.stdout.split(separator: "\n").first { $0.hasPrefix("id ") }
        XCTAssertEqual(idLine?.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init), good, show.stdout)

        let verify = try Harness.pgsnap(["verify", "latest", "--json"], dir: dir)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertEqual(Harness.verifyResults(verify).map { $0["id"] as? String }, [good])
    }
}
