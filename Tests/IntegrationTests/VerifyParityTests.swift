import Foundation
import XCTest

/// `verify` and `verify --remote` are one ladder over two storages: each damage the local
/// verify tests make, put byte for byte into the bucket, gets the same verdict from both
/// (exit status and the name of the failed check), with and without the age identity.
final class VerifyParityTests: XCTestCase {
    var fixture: RestoreFixture!
    var scratch: [String] = []

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
    }

    override func tearDown() {
        fixture.cleanUp()
        for d in scratch { try? FileManager.default.removeItem(atPath: d) }
    }

    struct Key {
        var identity: String
        var recipient: String
    }

    func makeKey(_ name: String) throws -> Key {
        let dir = try Harness.tempDir()
        scratch.append(dir)
        chmod(dir, 0o700)
        let path = dir + "/" + name + ".txt"
        XCTAssertEqual(try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", path]).status, 0)
        chmod(path, 0o600)
        let pub = try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", path])
        return Key(identity: path, recipient: pub.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func database(_ prefix: String) throws -> String {
        let db = try fixture.database(prefix)
        try Harness.psql(db, """
            CREATE TABLE t AS SELECT i, md5(i::text) AS a FROM generate_series(1, 5000) i;
            CREATE TABLE "Small Table" ("Col" text);
            INSERT INTO "Small Table" VALUES ('x'), (NULL);
            """)
        return db
    }

    func backup(_ db: String, _ extra: [String] = []) throws -> String {
        let r = try fixture.pgsnap(["backup", "-d", db] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return Harness.snapshotID(r)
    }

    /// A copy of snapshot `id` (all its files) in a directory of its own, for one kind of damage.
    func copy(_ id: String) throws -> String {
        let dir = try Harness.tempDir()
        scratch.append(dir)
        for name in Harness.entries(fixture.dir) where name.hasPrefix(id) {
            try FileManager.default.copyItem(atPath: fixture.dir + "/" + name, toPath: dir + "/" + name)
        }
        return dir
    }

    /// Every file of `dir` (and one level down, a directory snapshot's) put into a fresh prefix.
    func upload(_ dir: String) throws -> String {
        let (remote, prefix) = S3Harness.newRemote()
        for name in Harness.entries(dir) {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir + "/" + name, isDirectory: &isDir)
            let inner = isDir.boolValue ? Harness.entries(dir + "/" + name).map { name + "/" + $0 } : [name]
            for file in inner { _ = try S3Harness.boto(["upload", S3Harness.bucket, prefix + "/" + file, dir + "/" + file]) }
        }
        return remote
    }

    /// The verdict of `verify ID --json` on the directory and on the bucket: exit status and failed check.
    func verdicts(_ id: String, dir: String, identity: Key?) throws -> (local: String, remote: String) {
        let remote = try upload(dir)
        let key = identity.map { ["--identity", $0.identity] } ?? []
        func verdict(_ r: Harness.Result) -> String {
            let check = Harness.verifyResults(r).first?["failed_check"] as? String
            return "\(r.status) \(check ?? "-")"
        }
        let local = try Harness.pgsnap(["verify", id, "--json"] + key, dir: dir)
        let bucket = try Harness.pgsnap(["verify", id, "--json", "--remote", remote] + key, dir: dir, env: S3Harness.env(remote: remote))
        return (verdict(local), verdict(bucket))
    }

    func assertSameVerdict(_ what: String, _ id: String, dir: String, identity: Key? = nil, expected: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let (local, remote) = try verdicts(id, dir: dir, identity: identity)
        XCTAssertEqual(local, expected, "\(what): local verify", file: file, line: line)
        XCTAssertEqual(remote, local, "\(what): verify --remote must say what verify says", file: file, line: line)
    }

    func editManifest(_ dir: String, _ id: String, _ change: (inout [String: Any]) throws -> Void) throws {
        var m = try Harness.manifest(dir: dir, id: id)
        try change(&m)
        try Harness.writeJSON(m, to: Harness.manifestPath(dir: dir, id: id))
    }

    /// The manifest says public.t has one row less than the dump holds.
    func oneRowLess(_ dir: String, _ id: String) throws {
        try editManifest(dir, id) { m in
            var counts = m["table_rows"] as? [String: Int] ?? [:]
            counts["public.t"] = 4999
            m["table_rows"] = counts
        }
    }

    /// Changes a stored file and makes the manifest describe its new bytes (size and SHA-256), so
    /// only the checks after those can find the damage.
    func replaceKeepingChecksums(_ dir: String, _ id: String, file name: String, with bytes: Data) throws {
        let path = dir + "/" + name
        let before = try Harness.fileSize(path)
        try bytes.write(to: URL(fileURLWithPath: path))
        let sha = try Harness.sha256sum(path)
        try editManifest(dir, id) { m in
            let delta = Int64(bytes.count) - before
            m["compressed_bytes"] = ((m["compressed_bytes"] as? NSNumber)?.int64Value ?? 0) + delta
            if var files = m["files"] as? [[String: Any]], let slash = name.firstIndex(of: "/") {
                let inner = String(name[name.index(after: slash)...])
                for i in files.indices where files[i]["name"] as? String == inner {
                    files[i]["bytes"] = bytes.count
                    files[i]["sha256"] = sha
                }
                m["files"] = files
            } else {
                m["sha256"] = sha
            }
        }
    }

    func testPlainDamageGetsTheSameVerdictFromTheDirectoryAndTheBucket() throws {
        let db = try database("parity")
        let id = try backup(db)
        let dump = id + ".sql.gz"

        try assertSameVerdict("undamaged", id, dir: try copy(id), expected: "0 -")

        let truncated = try copy(id)
        let bytes = try Harness.bytes(truncated + "/" + dump)
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated + "/" + dump))
        try assertSameVerdict("truncated", id, dir: truncated, expected: "2 size")

        let flipped = try copy(id)
        var changed = bytes
        changed[changed.count / 2] ^= 0xFF
        try changed.write(to: URL(fileURLWithPath: flipped + "/" + dump))
        try assertSameVerdict("a flipped byte", id, dir: flipped, expected: "2 checksum")

        let wrongSize = try copy(id)
        try editManifest(wrongSize, id) { $0["compressed_bytes"] = bytes.count + 1 }
        try assertSameVerdict("wrong manifest size", id, dir: wrongSize, expected: "2 size")

        let rows = try copy(id)
        try oneRowLess(rows, id)
        try assertSameVerdict("edited row count", id, dir: rows, expected: "2 row_counts")

        let noManifest = try copy(id)
        try FileManager.default.removeItem(atPath: Harness.manifestPath(dir: noManifest, id: id))
        let (local, remote) = try verdicts(id, dir: noManifest, identity: nil)
        XCTAssertTrue(local.hasPrefix("2 "), "a dump without its manifest fails: \(local)")
        XCTAssertEqual(remote, local, "no manifest: verify --remote must say what verify says")
    }

    /// The checks the old remote verify skipped: the age header without the identity, and with
    /// the identity the decrypted contents (and a wrong key is exit 1 on both).
    func testEncryptedDamageGetsTheSameVerdictWithAndWithoutTheIdentity() throws {
        let (alice, mallory) = (try makeKey("alice"), try makeKey("mallory"))
        let db = try database("parityenc")
        let id = try backup(db, ["--encrypt-to", alice.recipient])
        let plain = try backup(db)
        let dump = id + ".sql.gz.age"

        try assertSameVerdict("undamaged, no identity", id, dir: try copy(id), expected: "0 -")
        try assertSameVerdict("undamaged, identity", id, dir: try copy(id), identity: alice, expected: "0 -")
        try assertSameVerdict("the wrong identity", id, dir: try copy(id), identity: mallory, expected: "1 identity")

        // A manifest that lists two recipients for a file encrypted to one: size and SHA-256 match, the header does not.
        let twoKeys = try copy(id)
        try editManifest(twoKeys, id) { $0["encryption"] = ["tool": "age", "recipients": [alice.recipient, mallory.recipient]] }
        try assertSameVerdict("a header for other keys", id, dir: twoKeys, expected: "2 header")

        // Not age at all: a plain dump under the encrypted name, size and SHA-256 made to match.
        let notAge = try copy(id)
        try replaceKeepingChecksums(notAge, id, file: dump, with: try Harness.bytes(fixture.dir + "/" + plain + ".sql.gz"))
        try assertSameVerdict("no age header", id, dir: notAge, expected: "2 header")

        let rows = try copy(id)
        try oneRowLess(rows, id)
        try assertSameVerdict("edited row count, identity", id, dir: rows, identity: alice, expected: "2 row_counts")

        let flipped = try copy(id)
        var bytes = try Harness.bytes(flipped + "/" + dump)
        bytes[bytes.count - 100] ^= 0xFF
        try replaceKeepingChecksums(flipped, id, file: dump, with: bytes)
        try assertSameVerdict("changed ciphertext, identity", id, dir: flipped, identity: alice, expected: "2 decryption")
    }

    func testDirectoryDamageGetsTheSameVerdictIncludingTheTableOfContents() throws {
        let db = try database("paritydir")
        let id = try backup(db, ["--format", "directory"])
        let folder = id + ".dir"
        let files = try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]] ?? []
        let data = try XCTUnwrap(files.first { $0["table"] as? String == "public.t" }?["name"] as? String)

        try assertSameVerdict("undamaged", id, dir: try copy(id), expected: "0 -")

        let missing = try copy(id)
        try FileManager.default.removeItem(atPath: missing + "/" + folder + "/" + data)
        try assertSameVerdict("a missing file", id, dir: missing, expected: "2 files")

        let flipped = try copy(id)
        var bytes = try Harness.bytes(flipped + "/" + folder + "/" + data)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: flipped + "/" + folder + "/" + data))
        try assertSameVerdict("a flipped byte", id, dir: flipped, expected: "2 checksum")

        // A table of contents cut short, with the manifest describing the cut bytes: only pg_restore can tell.
        let toc = try copy(id)
        let tocBytes = try Harness.bytes(toc + "/" + folder + "/toc.dat")
        try replaceKeepingChecksums(toc, id, file: folder + "/toc.dat", with: tocBytes.prefix(tocBytes.count / 2))
        try assertSameVerdict("a corrupted table of contents", id, dir: toc, expected: "2 toc")
    }

    /// A restore test restores from the backup directory: with --remote it is refused before
    /// anything is read (it used to be ignored silently).
    func testRestoreTestWithRemoteIsAUsageErrorNamingPull() throws {
        let r = try Harness.pgsnap(["verify", "latest", "--restore-test", "--remote", "s3://pgsnap-no-such-bucket/x"], dir: fixture.dir)
        Harness.assertOneErrorLine(r, status: 64, "verify --restore-test --remote")
        XCTAssertTrue(r.stderr.contains("pgsnap pull"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }
}
