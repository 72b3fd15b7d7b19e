import Foundation
import XCTest

/// Round trips for each `--compress` mode through pgsnap and through the standard tools
/// (`gzip -dc`, `zstd -dc`, plain `cat`) into psql, plus the level and jobs options.
final class CompressionModeTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
    }

    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    /// A fresh database loaded with scripts/demo-data/schema.sql, dropped at tear-down.
    func demoDatabase() throws -> String {
        let db = try fixture.database("cmp")
        try Harness.psqlFile(db, Harness.repo + "/scripts/demo-data/schema.sql")
        return db
    }

    /// The dump as the standard tool for `mode` reads it; nil (after a failure) when the tool fails.
    func decompressWithStandardTool(_ mode: String, _ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> Data? {
        let r: Harness.Result
        switch mode {
        case "gzip": r = try Harness.run("/bin/gzip", ["-dc", path])
        case "zstd": r = try Harness.run("/usr/bin/zstd", ["-dc", path])
        default: r = try Harness.run("/bin/cat", [path])
        }
        XCTAssertEqual(r.status, 0, "\(mode) -dc \(path): \(r.stderr)", file: file, line: line)
        return r.status == 0 ? Data(r.stdout.utf8) : nil
    }

    /// Flips every bit of the byte in the middle of `path`, in place.
    func flipMiddleByte(_ path: String) throws {
        let size = try Harness.fileSize(path)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(size / 2))
        let byte = try handle.read(upToCount: 1) ?? Data()
        XCTAssertEqual(byte.count, 1)
        try handle.seek(toOffset: UInt64(size / 2))
        try handle.write(contentsOf: Data([byte[0] ^ 0xff]))
    }

    func roundTrip(_ mode: String, suffix: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let db = try demoDatabase()
        let expected = try Harness.fingerprint(db)

        let backup = try fixture.pgsnap(["backup", "-d", db, "--compress", mode])
        XCTAssertEqual(backup.status, 0, backup.stderr, file: file, line: line)
        let id = Harness.snapshotID(backup)
        let m = try Harness.manifest(dir: fixture.dir, id: id)
        XCTAssertEqual(m["file"] as? String, id + suffix, file: file, line: line)
        XCTAssertEqual((m["compression"] as? [String: Any])?["algorithm"] as? String, mode, file: file, line: line)
        let path = try fixture.dumpPath(id)

        let verify = try fixture.pgsnap(["verify", id])
        XCTAssertEqual(verify.status, 0, "verify: \(verify.stderr)", file: file, line: line)

        // The standard tool, then psql, without pgsnap.
        guard let dump = try decompressWithStandardTool(mode, path, file: file, line: line) else { return }
        XCTAssertTrue(String(decoding: dump, as: UTF8.self).contains(Harness.dumpTrailer), "no trailer", file: file, line: line)
        let loaded = try fixture.database("cmpload")
        let psql = try Harness.psqlStdin(loaded, dump)
        XCTAssertEqual(psql.status, 0, "psql < dump: \(psql.stderr)", file: file, line: line)
        XCTAssertEqual(try Harness.fingerprint(loaded), expected, "loaded by hand", file: file, line: line)

        // pgsnap's own restore into a new database.
        let target = db + "_copy"
        fixture.track(database: target)
        let restore = try fixture.pgsnap(["restore", id, "--target", target])
        XCTAssertEqual(restore.status, 0, "restore --target: \(restore.stderr)", file: file, line: line)
        XCTAssertEqual(try Harness.fingerprint(target), expected, "restored by pgsnap", file: file, line: line)

        // One damaged byte in the middle: verify names the checksum and exits 2.
        try flipMiddleByte(path)
        let bad = try fixture.pgsnap(["verify", id, "--json"])
        XCTAssertEqual(bad.status, 2, "verify of a damaged \(mode) snapshot: \(bad.stdout) \(bad.stderr)", file: file, line: line)
        let result = Harness.verifyResults(bad).first
        XCTAssertEqual(result?["ok"] as? Bool, false, file: file, line: line)
        XCTAssertEqual(result?["failed_check"] as? String, "checksum", "\(String(describing: result))", file: file, line: line)
    }

    func testGzipRoundTrip() throws {
        try roundTrip("gzip", suffix: ".sql.gz")
    }

    func testZstdRoundTrip() throws {
        try roundTrip("zstd", suffix: ".sql.zst")
    }

    func testNoCompressionRoundTrip() throws {
        try roundTrip("none", suffix: ".sql")
    }

    func testLevelsAreCheckedPerAlgorithm() throws {
        let db = try demoDatabase()
        let gzip10 = try fixture.pgsnap(["backup", "-d", db, "--level", "10"])
        XCTAssertEqual(gzip10.status, 64, gzip10.stderr)
        XCTAssertTrue(gzip10.stderr.contains("--level for gzip must be 0-9"), gzip10.stderr)
        let none3 = try fixture.pgsnap(["backup", "-d", db, "--compress", "none", "--level", "3"])
        XCTAssertEqual(none3.status, 64, none3.stderr)
        XCTAssertTrue(none3.stderr.contains("--level"), none3.stderr)
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "a usage error must write nothing")

        let zstd19 = try fixture.pgsnap(["backup", "-d", db, "--compress", "zstd", "--level", "19"])
        XCTAssertEqual(zstd19.status, 0, zstd19.stderr)
        let id = Harness.snapshotID(zstd19)
        let compression = try Harness.manifest(dir: fixture.dir, id: id)["compression"] as? [String: Any]
        XCTAssertEqual(compression?["algorithm"] as? String, "zstd")
        XCTAssertEqual(compression?["level"] as? Int, 19)
        XCTAssertEqual(try fixture.pgsnap(["verify", id]).status, 0)
        let dump = try decompressWithStandardTool("zstd", try fixture.dumpPath(id))
        XCTAssertTrue(String(decoding: dump ?? Data(), as: UTF8.self).contains(Harness.dumpTrailer))
    }

    func testJobsDoNotChangeTheDump() throws {
        let db = try demoDatabase()
        // Several of ParallelGzipWriter's 1 MiB blocks, so two threads really share the work.
        try Harness.psql(db, "CREATE TABLE filler AS SELECT g AS id, md5(g::text) || repeat('-', 60) AS pad FROM generate_series(1, 40000) g")
        var dumps: [String] = []
        for jobs in ["1", "2"] {
            let r = try fixture.pgsnap(["backup", "-d", db, "--jobs", jobs, "--label", "jobs" + jobs])
            XCTAssertEqual(r.status, 0, r.stderr)
            let id = Harness.snapshotID(r)
            let compression = try Harness.manifest(dir: fixture.dir, id: id)["compression"] as? [String: Any]
            XCTAssertEqual(compression?["jobs"] as? Int, Int(jobs))
            let out = try Harness.gunzip(try fixture.dumpPath(id))
            XCTAssertEqual(out.status, 0, out.stderr)
            dumps.append(Harness.withoutRestrictKeys(out.stdout))
        }
        XCTAssertTrue(dumps[0].contains(Harness.dumpTrailer))
        XCTAssertGreaterThan(dumps[0].utf8.count, 3 << 20, "the dump must span several compression blocks")
        XCTAssertTrue(dumps[0].contains("COPY public.generated_domains"))
        XCTAssertEqual(dumps[0], dumps[1], "--jobs 1 and --jobs 2 must decompress to the same dump")
    }
}
