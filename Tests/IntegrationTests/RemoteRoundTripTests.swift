import Foundation
import XCTest

/// Offsite copies against a real S3 API server (moto with signatures checked): push, list
/// --remote, pull and restore --remote on an empty directory, as on a brand-new machine.
final class RemoteRoundTripTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    func makeDatabase(_ prefix: String, rows: Int = 2000) throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        try Harness.psql(db, """
            CREATE TABLE items (id int PRIMARY KEY, note text, payload bytea);
            INSERT INTO items SELECT g, 'note ' || g || E' \\t ünï', decode(md5(g::text), 'hex') FROM generate_series(1, \(rows)) g;
            CREATE TABLE "Mixed Case" (k text);
            INSERT INTO "Mixed Case" VALUES ('a'), (NULL);
            """)
        return db
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    func testPushListPullAndRestoreRemoteOnAnEmptyDirectory() throws {
        let db = try makeDatabase("rt", rows: 400_000)  // about 14 MB of dump: three parts of 5 MiB
        let before = try Harness.fingerprint(db)
        let dir = try makeDir()
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)

        let backup = try Harness.pgsnap(["backup", "-d", db, "--label", "pre_mig"], dir: dir)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = Harness.snapshotID(backup)
        let manifest = try Harness.manifest(dir: dir, id: id)

        let push = try Harness.pgsnap(["push"], dir: dir, env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        XCTAssertEqual(push.stdout.trimmingCharacters(in: .newlines), "\(id) uploaded")
        XCTAssertFalse(push.stderr.contains(S3Harness.secret))

        // What is in the bucket, seen by boto3: the dump whole, SHA-256 in its metadata, the manifest as on disk.
        let objects = try S3Harness.objects(prefix)
        let dumpKey = prefix + "/" + id + ".sql.gz", manifestKey = prefix + "/" + id + ".manifest.json"
        XCTAssertEqual(Set(objects.keys), [dumpKey, manifestKey])
        XCTAssertEqual(Int64(objects[dumpKey] ?? -1), try Harness.fileSize(Harness.dumpPath(dir: dir, id: id)))
        XCTAssertEqual(Int64(objects[manifestKey] ?? -1), try Harness.fileSize(Harness.manifestPath(dir: dir, id: id)))
        XCTAssertEqual(try S3Harness.metadata(dumpKey)["sha256"], manifest["sha256"] as? String)
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])

        // Idempotent: a second push sends nothing.
        let again = try Harness.pgsnap(["push", id], dir: dir, env: env)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout.trimmingCharacters(in: .newlines), "\(id) skipped")

        let list = try Harness.pgsnap(["list", "--remote", "--json"], dir: dir, env: env)
        XCTAssertEqual(list.status, 0, list.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?["id"] as? String, id)
        XCTAssertEqual(rows.first?["status"] as? String, "good")
        XCTAssertEqual(rows.first?["label"] as? String, "pre_mig")
        XCTAssertEqual(rows.first?["database"] as? String, db)

        // A brand-new machine: nothing but pgsnap, the bucket's credentials and an empty --dir.
        let fresh = NSTemporaryDirectory() + "pgsnap-it-dr-" + UUID().uuidString.prefix(8)
        dirs.append(fresh)
        let target = db + "_dr"
        databases.append(target)
        let restore = try Harness.pgsnap(["restore", "--remote", remote, "--label", "pre_mig", "-d", db, "--target", target, "--yes"],
                                         dir: fresh, env: env.merging(["PGSNAP_REMOTE": nil]) { $1 })
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertEqual(try Harness.fingerprint(target), before)
        XCTAssertEqual(try Harness.sha256sum(Harness.dumpPath(dir: fresh, id: id)), manifest["sha256"] as? String)
        XCTAssertEqual(try Harness.bytes(Harness.manifestPath(dir: fresh, id: id)), try Harness.bytes(Harness.manifestPath(dir: dir, id: id)))
        XCTAssertEqual(Harness.permissions(Harness.dumpPath(dir: fresh, id: id)), 0o600)
        XCTAssertFalse(Harness.snapshotFiles(fresh).contains { $0.hasSuffix(".partial") })
        // The secret is nowhere on disk: not in a manifest, not in the lock file, in neither directory.
        for d in [dir, fresh] {
            for name in Harness.entries(d) {
                XCTAssertFalse(try Harness.bytes(d + "/" + name).range(of: Data(S3Harness.secret.utf8)) != nil, "secret in \(d)/\(name)")
            }
        }

        // Pulling what is already whole downloads nothing.
        let pull = try Harness.pgsnap(["pull", id, "--json"], dir: fresh, env: env)
        XCTAssertEqual(pull.status, 0, pull.stderr)
        let pulled = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(pull.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(pulled["action"] as? String, "skipped")
        let verify = try Harness.pgsnap(["verify", id], dir: fresh)
        XCTAssertEqual(verify.status, 0, verify.stderr)
    }

    /// A local copy damaged in place (same size) is not "already whole": restore --remote reads
    /// and hashes it, fetches it again from the bucket and restores (it failed the checksum
    /// check and advised another snapshot).
    func testRestoreRemoteReplacesALocalCopyDamagedInPlace() throws {
        let db = try makeDatabase("rtdmg")
        let before = try Harness.fingerprint(db)
        let dir = try makeDir()
        let (remote, _) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        let backup = try Harness.pgsnap(["backup", "-d", db, "--push"], dir: dir, env: env)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = Harness.snapshotID(backup)
        let path = Harness.dumpPath(dir: dir, id: id)
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 100)
        let byte = try XCTUnwrap(try handle.read(upToCount: 1)).first!
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: Data([byte ^ 0xFF]))
        try handle.close()
        XCTAssertEqual(try Harness.pgsnap(["restore", id, "--target", db + "_x"], dir: dir).status, 2, "fixture: the local copy is damaged")

        let target = db + "_back"
        databases.append(target)
        let r = try Harness.pgsnap(["restore", "--remote", id, "--target", target], dir: dir, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("does not match its checksum: pulling it again"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(target), before)
        XCTAssertEqual(try Harness.sha256sum(path), try Harness.manifest(dir: dir, id: id)["sha256"] as? String, "the local copy is whole again")
    }

    func testPushAllAndDefaultSelection() throws {
        let a = try makeDatabase("pa"), b = try makeDatabase("pb")
        let dir = try makeDir()
        var ids: [String] = []
        for db in [a, a, b] {
            let r = try Harness.pgsnap(["backup", "-d", db], dir: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            ids.append(Harness.snapshotID(r))
        }
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        // No argument: the newest good snapshot of each database.
        let push = try Harness.pgsnap(["push", "--quiet"], dir: dir, env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        XCTAssertEqual(Set(try S3Harness.objects(prefix).keys.filter { $0.hasSuffix(".manifest.json") }),
                       Set([ids[1], ids[2]].map { prefix + "/" + $0 + ".manifest.json" }))
        let all = try Harness.pgsnap(["push", "--all"], dir: dir, env: env)
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertEqual(Set(all.stdout.split(separator: "\n").map(String.init)), ["\(ids[0]) uploaded", "\(ids[1]) skipped", "\(ids[2]) skipped"])
        let list = try Harness.pgsnap(["list", "--remote", remote, "--database", a], dir: dir, env: env.merging(["PGSNAP_REMOTE": nil]) { $1 })
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains(ids[0]) && list.stdout.contains(ids[1]) && !list.stdout.contains(ids[2]), list.stdout)
    }

    func testCredentialsFromTheSharedFileFollowHOMEAndAWSPROFILE() throws {
        let db = try makeDatabase("cf")
        let dir = try makeDir()
        XCTAssertEqual(try Harness.pgsnap(["backup", "-d", db, "-q"], dir: dir).status, 0)
        let home = try makeDir()
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try Data("""
            [default]
            aws_access_key_id = AKIANOTTHISONE
            aws_secret_access_key = nope

            [backups]
            aws_access_key_id = \(S3Harness.keyID)
            aws_secret_access_key = \(S3Harness.secret)
            """.utf8).write(to: URL(fileURLWithPath: home + "/.aws/credentials"))
        let (remote, _) = S3Harness.newRemote()
        var env = S3Harness.env(remote: remote)
        env["AWS_ACCESS_KEY_ID"] = .some(nil)
        env["AWS_SECRET_ACCESS_KEY"] = .some(nil)
        env["AWS_SHARED_CREDENTIALS_FILE"] = .some(nil)
        env["HOME"] = home
        let wrongProfile = try Harness.pgsnap(["push", "--quiet"], dir: dir, env: env)
        Harness.assertOneErrorLine(wrongProfile, status: 1, "default profile")
        XCTAssertTrue(wrongProfile.stderr.contains("InvalidAccessKeyId"), wrongProfile.stderr)
        env["AWS_PROFILE"] = "backups"
        let push = try Harness.pgsnap(["push", "--quiet"], dir: dir, env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        XCTAssertFalse(push.stderr.contains(S3Harness.secret))
    }

    /// https endpoints go through URLSession (plain http through pgsnap's own socket client):
    /// the same push and pull, checked byte for byte, with URLSession forced on the test server.
    func testURLSessionTransportPushesAndPullsTheSameBytes() throws {
        let db = try makeDatabase("us", rows: 200_000)
        let dir = try makeDir()
        let backup = try Harness.pgsnap(["backup", "-d", db], dir: dir)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = Harness.snapshotID(backup)
        let (remote, _) = S3Harness.newRemote()
        var env = S3Harness.env(remote: remote)
        env["PGSNAP_S3_TRANSPORT"] = "urlsession"
        let push = try Harness.pgsnap(["push"], dir: dir, env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        let fresh = try makeDir()
        let pull = try Harness.pgsnap(["pull", id], dir: fresh, env: env)
        XCTAssertEqual(pull.status, 0, pull.stderr)
        XCTAssertEqual(try Harness.sha256sum(Harness.dumpPath(dir: fresh, id: id)), try Harness.sha256sum(Harness.dumpPath(dir: dir, id: id)))
        var wrong = env
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let bad = try Harness.pgsnap(["list", "--remote"], dir: dir, env: wrong)
        Harness.assertOneErrorLine(bad, status: 1, "urlsession wrong secret")
        XCTAssertTrue(bad.stderr.contains("SignatureDoesNotMatch"), bad.stderr)
    }
}
