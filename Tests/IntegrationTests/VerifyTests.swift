import Foundation
import XCTest

/// `pgsnap verify`: passes on what backup wrote, and catches each kind of damage by name.
final class VerifyTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    /// A database with a few tables and enough rows for a dump of a few hundred KiB.
    func makeDatabase(_ prefix: String = "ver", rows: Int = 20000) throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        try Harness.psql(db, """
            CREATE TABLE t AS SELECT i, md5(i::text) AS a FROM generate_series(1, \(rows)) i;
            CREATE TABLE "Small Table" ("Col" text);
            INSERT INTO "Small Table" VALUES ('x'), (NULL), (E'multi\\nline');
            CREATE TABLE empty_table (id int);
            """)
        return db
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    func backup(_ db: String, dir: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try Harness.pgsnap(["backup", "-d", db], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let id = Harness.snapshotID(r)
        XCTAssertFalse(id.isEmpty, "backup printed no id", file: file, line: line)
        return id
    }

    /// Runs `verify ARGS` twice (text and --json) and checks both agree that `check` failed for `id`.
    func assertVerifyFails(_ args: [String], dir: String, id: String, check allowed: Set<String>,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let text = try Harness.pgsnap(["verify"] + args, dir: dir)
        XCTAssertEqual(text.status, 2, "verify \(args) should fail with 2: \(text.stderr)", file: file, line: line)
        XCTAssertTrue(allowed.contains { text.stderr.contains("\($0) check failed") },
                      "stderr does not name the \(allowed.sorted()) check: \(text.stderr)", file: file, line: line)
        XCTAssertTrue(text.stderr.contains(id), "stderr does not name \(id): \(text.stderr)", file: file, line: line)
        // Errors start with "pgsnap: "; the "ok ..." lines of snapshots that passed are progress, not errors.
        for l in text.stderr.split(separator: "\n") where l.contains("FAILED") || l.contains("failed") {
            XCTAssertTrue(l.hasPrefix("pgsnap: "), "error line without the pgsnap: prefix: \(l)", file: file, line: line)
        }
        let json = try Harness.pgsnap(["verify", "--json"] + args, dir: dir)
        XCTAssertEqual(json.status, 2, json.stderr, file: file, line: line)
        let failed = Harness.verifyResults(json).filter { ($0["ok"] as? Bool) == false }
        XCTAssertEqual(failed.map { $0["id"] as? String }, [id], file: file, line: line)
        let check = failed.first?["failed_check"] as? String
        XCTAssertTrue(check.map(allowed.contains) ?? false, "failed_check \(String(describing: check)), expected \(allowed.sorted())",
                      file: file, line: line)
    }

    func testFreshSnapshotVerifiesAndVerifyChangesNothing() throws {
        let db = try makeDatabase()
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        let dump = Harness.dumpPath(dir: dir, id: id), manifest = Harness.manifestPath(dir: dir, id: id)
        let dumpBefore = try Harness.bytes(dump), manifestBefore = try Harness.bytes(manifest)

        let r = try Harness.pgsnap(["verify", id], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let latest = try Harness.pgsnap(["verify", "latest", "--json"], dir: dir)
        XCTAssertEqual(latest.status, 0, latest.stderr)
        let results = Harness.verifyResults(latest)
        XCTAssertEqual(results.count, 1)
        XCTAssertEqual(results.first?["ok"] as? Bool, true)
        XCTAssertEqual((results.first?["rows"] as? NSNumber)?.intValue, 20003)
        XCTAssertEqual((results.first?["tables"] as? NSNumber)?.intValue, 3)

        XCTAssertEqual(try Harness.bytes(dump), dumpBefore, "verify modified the dump")
        XCTAssertEqual(try Harness.bytes(manifest), manifestBefore, "verify modified the manifest")
        XCTAssertEqual(Harness.snapshotFiles(dir), [id + ".manifest.json", id + ".sql.gz"])
    }

    func testOneFlippedByteFailsTheChecksum() throws {
        let db = try makeDatabase()
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        let dump = Harness.dumpPath(dir: dir, id: id)
        var bytes = try Harness.bytes(dump)
        XCTAssertGreaterThan(bytes.count, 1000)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: dump))
        let manifestBefore = try Harness.bytes(Harness.manifestPath(dir: dir, id: id))

        try assertVerifyFails([id], dir: dir, id: id, check: ["checksum"])
        try assertVerifyFails(["latest"], dir: dir, id: id, check: ["checksum"])
        XCTAssertEqual(try Harness.bytes(dump), bytes, "verify modified the damaged dump")
        XCTAssertEqual(try Harness.bytes(Harness.manifestPath(dir: dir, id: id)), manifestBefore)
    }

    func testTruncatedFileFailsTheSizeCheck() throws {
        let db = try makeDatabase()
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        let dump = Harness.dumpPath(dir: dir, id: id)
        let bytes = try Harness.bytes(dump)
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dump))

        try assertVerifyFails([id], dir: dir, id: id, check: ["size"])
        XCTAssertEqual(try Harness.fileSize(dump), Int64(bytes.count / 2), "verify changed the truncated file")
    }

    func testDeletedManifestLeavesADumpWithoutManifestThatFailsVerification() throws {
        let db = try makeDatabase()
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        try FileManager.default.removeItem(atPath: Harness.manifestPath(dir: dir, id: id))

        let list = try Harness.pgsnap(["list", "--json"], dir: dir)
        XCTAssertEqual(list.status, 0, list.stderr)
        let entries = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
        XCTAssertEqual(entries?.count, 1)
        XCTAssertEqual(entries?.first?["id"] as? String, id)
        XCTAssertEqual(entries?.first?["status"] as? String, "dump_without_manifest")

        try assertVerifyFails([id], dir: dir, id: id, check: ["files", "manifest"])
        // It is no longer a snapshot: 'latest' must not find it.
        let latest = try Harness.pgsnap(["verify", "latest"], dir: dir)
        XCTAssertEqual(latest.status, 1, latest.stderr)
        XCTAssertTrue(latest.stderr.contains("pgsnap list"), latest.stderr)
    }

    func testEditedRowCountFailsTheRowCountCheck() throws {
        let db = try makeDatabase()
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        let path = Harness.manifestPath(dir: dir, id: id)
        var m = try Harness.manifest(dir: dir, id: id)
        var rows = try XCTUnwrap(m["table_rows"] as? [String: Int])
        XCTAssertEqual(rows["public.t"], 20000)
        rows["public.t"] = 19999
        m["table_rows"] = rows
        // Size and checksum describe the untouched dump, so only the row count is wrong.
        try Harness.writeJSON(m, to: path)
        let sizeBefore = try Harness.fileSize(Harness.dumpPath(dir: dir, id: id))
        XCTAssertEqual((m["compressed_bytes"] as? NSNumber)?.int64Value, sizeBefore)

        let list = try Harness.pgsnap(["list", "--json"], dir: dir)
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains("\"status\" : \"good\"") || list.stdout.contains("\"status\":\"good\""),
                      "the edited manifest must still parse: \(list.stdout)")
        try assertVerifyFails([id], dir: dir, id: id, check: ["row_counts"])
        let text = try Harness.pgsnap(["verify", id], dir: dir)
        XCTAssertTrue(text.stderr.contains("public.t"), "the message should name the table: \(text.stderr)")
    }

    func testDumpReplacedByAnotherSnapshotsDumpFails() throws {
        let db = try makeDatabase()
        let other = try makeDatabase("ver_other", rows: 15000)
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        let otherID = try backup(other, dir: dir)
        let dump = Harness.dumpPath(dir: dir, id: id)
        try FileManager.default.removeItem(atPath: dump)
        try FileManager.default.copyItem(atPath: Harness.dumpPath(dir: dir, id: otherID), toPath: dump)

        try assertVerifyFails([id], dir: dir, id: id, check: ["size", "checksum"])
        let fine = try Harness.pgsnap(["verify", otherID], dir: dir)
        XCTAssertEqual(fine.status, 0, fine.stderr)
    }

    /// `verify latest --restore-test -d app` (README): app's newest snapshot, not the newest of
    /// whatever database was backed up last (it restore-tested another database's and said ok).
    func testLatestWithDashDIsThatDatabasesNewest() throws {
        let app = try makeDatabase("verapp", rows: 10)
        let other = try makeDatabase("verother", rows: 10)
        let dir = try makeDir()
        let mine = try backup(app, dir: dir)
        let newer = try backup(other, dir: dir)
        for args in [["latest", "-d", app], ["latest", "-d", "dbname=\(app)"], ["latest", "--database", app, "-d", "postgres"],
                     ["latest", "--restore-test", "-d", app]] {
            let r = try Harness.pgsnap(["verify", "--json"] + args, dir: dir)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertEqual(Harness.verifyResults(r).compactMap { $0["id"] as? String }, [mine], "\(args)")
        }
        XCTAssertNil(try Harness.manifest(dir: dir, id: newer)["restore_test"] as? [String: Any], "the other database's snapshot was restore-tested")
        XCTAssertNotNil(try Harness.manifest(dir: dir, id: mine)["restore_test"] as? [String: Any])
        // -d as a connection string without a dbname names no database: the newest of any;
        // an explicit id is that snapshot whatever -d says.
        let port = try Harness.pgsnap(["verify", "--json", "latest", "-d", "port=\(Harness.env["PGPORT"] ?? "5432")"], dir: dir)
        XCTAssertEqual(port.status, 0, port.stderr)
        XCTAssertEqual(Harness.verifyResults(port).compactMap { $0["id"] as? String }, [newer])
        let byID = try Harness.pgsnap(["verify", "--json", mine, "-d", other], dir: dir)
        XCTAssertEqual(Harness.verifyResults(byID).compactMap { $0["id"] as? String }, [mine], byID.stderr)
        // --all: -d is only the connection; every snapshot is verified.
        let all = try Harness.pgsnap(["verify", "--all", "--json", "-d", app], dir: dir)
        XCTAssertEqual(Set(Harness.verifyResults(all).compactMap { $0["id"] as? String }), [mine, newer])
    }

    func testVerifyAllFailsWhenOneOfTwoIsBadAndPassesWhenBothAreGood() throws {
        let db = try makeDatabase()
        let dir = try makeDir()
        let first = try backup(db, dir: dir)
        let second = try backup(db, dir: dir)
        XCTAssertNotEqual(first, second)

        let ok = try Harness.pgsnap(["verify", "--all", "--json"], dir: dir)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(Set(Harness.verifyResults(ok).compactMap { $0["id"] as? String }), [first, second])
        XCTAssertTrue(Harness.verifyResults(ok).allSatisfy { $0["ok"] as? Bool == true })

        let dump = Harness.dumpPath(dir: dir, id: first)
        var bytes = try Harness.bytes(dump)
        bytes[bytes.count / 3] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: dump))
        let secondBytes = try Harness.bytes(Harness.dumpPath(dir: dir, id: second))

        try assertVerifyFails(["--all"], dir: dir, id: first, check: ["checksum"])
        let json = try Harness.pgsnap(["verify", "--all", "--json"], dir: dir)
        let good = Harness.verifyResults(json).filter { $0["ok"] as? Bool == true }.compactMap { $0["id"] as? String }
        XCTAssertEqual(good, [second], "the good snapshot must still verify")
        XCTAssertEqual(try Harness.bytes(dump), bytes)
        XCTAssertEqual(try Harness.bytes(Harness.dumpPath(dir: dir, id: second)), secondBytes)
    }
}
