import Foundation
import XCTest

/// The fidelity corpus as a plain snapshot through the other storages: encrypted with age, and
/// through the bucket into an empty directory (the machine-lost path). Exact fingerprints.
final class FidelityStorageTests: CorpusTestCase {
    func testEncryptedPlainSnapshotReproducesCorpus() throws {
        let db = try corpusDatabase("fpage")
        let original = try DatabaseFingerprint.of(db)
        let key = fixture.dir + "-key.txt"
        defer { unlink(key) }
        XCTAssertEqual(try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", key]).status, 0)
        chmod(key, 0o600)
        let recipient = try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", key]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db, "--encrypt-to", recipient]))
        XCTAssertEqual(try Harness.manifest(dir: fixture.dir, id: id)["file"] as? String, id + ".sql.gz.age")
        try pgsnapStep(["verify", id, "--identity", key])
        let copy = "\(db)_age"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "-d", db, "--identity", key])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "encrypted plain restore")
    }

    func testPlainSnapshotThroughTheBucketReproducesCorpus() throws {
        let db = try corpusDatabase("fpremote")
        let original = try DatabaseFingerprint.of(db)
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db]))
        let (remote, _) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        let push = try fixture.pgsnap(["push", id], env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        let empty = fixture.dir + "-dr"
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let copy = "\(db)_dr"
        fixture.track(database: copy)
        let r = try Harness.pgsnap(["restore", id, "--remote", remote, "--target", copy, "-d", db, "--yes"], dir: empty, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "plain restore --remote")
    }
}
