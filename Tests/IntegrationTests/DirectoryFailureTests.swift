import Foundation
import XCTest

/// Failure paths of the directory format that the round trips do not reach: bad options, the
/// wrong age identity, and a directory snapshot damaged in the bucket.
final class DirectoryFailureTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws { fixture = try RestoreFixture() }
    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    /// A small database with rows and a primary key.
    func sourceDatabase(_ prefix: String) throws -> String {
        let db = try fixture.database(prefix)
        try Harness.psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g")
        return db
    }

    func assertOneLine(_ r: Harness.Result, status: Int32, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, status, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("Usage:") && !$0.hasPrefix("  See") }
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "expected '\(text)' in: \(r.stderr)", file: file, line: line)
    }

    /// The plaintext a restore killed with -9 decrypted (`.pgsnap-decrypted-<pid>-<id>/`, and its
    /// use-lists) is removed by the next command that opens the directory, a `list` as well as a
    /// restore; a live run's copy is left alone.
    func testDecryptedFilesOfAKilledRunGoAtTheNextCommand() throws {
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let dead = gone.processIdentifier
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [])
        try FileManager.default.createDirectory(atPath: fixture.dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let orphan = fixture.dir + "/.pgsnap-decrypted-\(dead)-app_20261122T031500Z"
        let live = fixture.dir + "/.pgsnap-decrypted-\(getpid())-app_20261122T031500Z"
        for d in [orphan, live] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            try Data("COPY public.secrets (v) FROM stdin;\n".utf8).write(to: URL(fileURLWithPath: d + "/4001.dat"))
        }
        // A folder inside (the copy of a directory snapshot): the whole tree goes.
        try FileManager.default.createDirectory(atPath: orphan + "/app.dir", withIntermediateDirectories: false)
        try Data("x".utf8).write(to: URL(fileURLWithPath: orphan + "/app.dir/toc.dat"))
        let useList = fixture.dir + "/.pgsnap-use-list-\(dead)-late"
        try Data("4001;\n".utf8).write(to: URL(fileURLWithPath: useList))
        let r = try fixture.pgsnap(["list"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("decrypted files left by an interrupted restore (pid \(dead))"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: orphan))
        XCTAssertFalse(FileManager.default.fileExists(atPath: useList))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live + "/4001.dat"), "a running process's copy was removed")
        try FileManager.default.removeItem(atPath: live)
    }

    func testBadOptionsAreUsageErrorsAndWriteNothing() throws {
        let db = try sourceDatabase("fdbad")
        assertOneLine(try fixture.pgsnap(["backup", "-d", db, "--format", "directory", "--compress", "zstd"]), status: 64, contains: "--format directory")
        assertOneLine(try fixture.pgsnap(["backup", "-d", db, "--format", "tar"]), status: 64, contains: "tar")
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "a usage error writes nothing")
        let id = Harness.snapshotID(try fixture.pgsnap(["backup", "-d", db, "--format", "directory"]))
        assertOneLine(try fixture.pgsnap(["restore", id, "--target", "\(db)_x", "--jobs", "0"]), status: 64, contains: "--jobs")
        XCTAssertEqual(try Harness.databases(like: "\(db)\\_x"), [])
    }

    func testWrongIdentityIsRefusedBeforeAnythingIsTouched() throws {
        let db = try sourceDatabase("fdkey")
        var keys: [(identity: String, recipient: String)] = []
        for name in ["right", "wrong"] {
            let path = fixture.dir + "-\(name).txt"
            XCTAssertEqual(try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", path]).status, 0)
            chmod(path, 0o600)
            keys.append((path, try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        defer { for k in keys { unlink(k.identity) } }
        let id = Harness.snapshotID(try fixture.pgsnap(["backup", "-d", db, "--format", "directory", "--encrypt-to", keys[0].recipient]))
        let before = try Harness.psql(db, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t")
        try Harness.psql(db, "DELETE FROM t WHERE id > 250")

        let verify = try fixture.pgsnap(["verify", id, "--identity", keys[1].identity])
        XCTAssertEqual(verify.status, 1, "the wrong key is the operator's problem, not the snapshot's: \(verify.stderr)")
        XCTAssertTrue(verify.stderr.contains("identity"), verify.stderr)
        let restore = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--identity", keys[1].identity])
        assertOneLine(restore, status: 1, contains: keys[1].identity)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t"), "250", "the target was not touched")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        XCTAssertEqual(Harness.entries(fixture.dir).filter { $0.hasPrefix(".pgsnap-decrypted") }, [])

        let right = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--identity", keys[0].identity])
        XCTAssertEqual(right.status, 0, "the right key restores: \(right.stderr)")
        XCTAssertEqual(try Harness.psql(db, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t"), before)
    }

    func testDamageInTheBucketIsFoundAndNeverPulled() throws {
        let db = try sourceDatabase("fdrdmg")
        let id = Harness.snapshotID(try fixture.pgsnap(["backup", "-d", db, "--format", "directory"]))
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        XCTAssertEqual(try fixture.pgsnap(["push", id], env: env).status, 0)
        let files = try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]] ?? []
        let data = try XCTUnwrap(files.first { $0["table"] as? String == "public.t" })
        let name = try XCTUnwrap(data["name"] as? String)
        let key = "\(prefix)/\(id).dir/\(name)"
        _ = try S3Harness.boto(["flip", S3Harness.bucket, key, "20"])

        let verify = try fixture.pgsnap(["verify", "--remote", remote, id], env: env)
        XCTAssertEqual(verify.status, 2, verify.stderr)
        XCTAssertTrue(verify.stderr.contains("\(id).dir/\(name)"), "verify names the object: \(verify.stderr)")

        let empty = fixture.dir + "-pull"
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let pull = try Harness.pgsnap(["pull", id, "--remote", remote], dir: empty, env: env)
        XCTAssertEqual(pull.status, 2, pull.stderr)
        XCTAssertTrue(pull.stderr.contains(name), "pull names the file: \(pull.stderr)")
        XCTAssertEqual(Harness.entries(empty).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".partial") }, [],
                       "nothing that looks like a snapshot is left (files already checked wait in \(id).dir.partial for the next pull)")
        let list = try Harness.pgsnap(["list", "--json"], dir: empty)
        XCTAssertFalse(list.stdout.contains("\"good\""), list.stdout)
    }

    /// A data file whose gzip CRC is wrong but whose size and SHA-256 match the manifest (damaged
    /// before it was hashed): verify names the decompression check and the file; restore with
    /// several jobs says the snapshot is damaged with pg_restore's own words about the file, not
    /// "a worker process died", exit 2 (a damaged snapshot), target untouched. A second table
    /// gives the other job something to do.
    func testADataFileWithABadCRCIsNamedByVerifyAndRestore() throws {
        let db = try sourceDatabase("fdcrc")
        try Harness.psql(db, "CREATE TABLE u (i int); INSERT INTO u SELECT generate_series(1, 2000)")
        let id = Harness.snapshotID(try fixture.pgsnap(["backup", "-d", db, "--format", "directory"]))
        let files = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]])
        let name = try XCTUnwrap(files.first { $0["table"] as? String == "public.t" }?["name"] as? String)
        let path = fixture.dir + "/" + id + ".dir/" + name
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 8] ^= 0xff  // the gzip trailer's CRC-32
        try bytes.write(to: URL(fileURLWithPath: path))
        try Harness.resealDirectorySnapshot(dir: fixture.dir, id: id)

        let verify = try fixture.pgsnap(["verify", id])
        XCTAssertEqual(verify.status, 2, verify.stderr)
        XCTAssertTrue(verify.stderr.contains("decompression check failed: \(id).dir/\(name) does not decompress"), verify.stderr)

        try Harness.psql(db, "DELETE FROM t WHERE id > 250")
        let restore = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2", "--quiet"])
        assertOneLine(restore, status: 2, contains: "snapshot \(id) is damaged or unreadable: pg_restore: error: could not read from input file")
        XCTAssertTrue(restore.stderr.contains(name) && !restore.stderr.contains("worker process died"), restore.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM t"), "250", "the target was not touched")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }
}
