import Foundation
import XCTest

/// Offsite copies when things go wrong: bad credentials, a missing bucket, a dead or flaky
/// endpoint (through FaultProxy), pgsnap killed mid-upload, and objects damaged in the bucket.
final class RemoteFaultTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []
    var proxies: [FaultProxy] = []

    override func tearDown() {
        for p in proxies { p.stop() }
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    /// A database and a local backup of it; rows = 600,000 gives a dump of about 11 MB: three parts of 5 MiB.
    func backedUp(_ prefix: String, rows: Int = 2000) throws -> (db: String, dir: String, id: String) {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        try Harness.psql(db, "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, \(rows)) g")
        let dir = try Harness.tempDir()
        dirs.append(dir)
        let r = try Harness.pgsnap(["backup", "-d", db], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        return (db, dir, Harness.snapshotID(r))
    }

    func proxy(_ rule: @escaping (String, Int) -> FaultProxy.Action) throws -> FaultProxy {
        let p = try FaultProxy(upstream: S3Harness.endpoint, rule: rule)
        proxies.append(p)
        return p
    }

    func testWrongSecretWrongKeyAndMissingBucketAreOneLineExitOneWithTheS3Code() throws {
        let (_, dir, _) = try backedUp("auth")
        let (remote, prefix) = S3Harness.newRemote()
        let wrongSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET"
        let bad = try Harness.pgsnap(["push", "--quiet"], dir: dir, env: S3Harness.env(remote: remote, secret: wrongSecret))
        Harness.assertOneErrorLine(bad, status: 1, "wrong secret")
        XCTAssertTrue(bad.stderr.contains("SignatureDoesNotMatch"), bad.stderr)
        XCTAssertTrue(bad.stderr.contains("AWS_SECRET_ACCESS_KEY"), bad.stderr)
        XCTAssertFalse(bad.stderr.contains(wrongSecret) || bad.stderr.contains(S3Harness.secret), bad.stderr)
        XCTAssertEqual(try S3Harness.objects(prefix), [:])

        var env = S3Harness.env(remote: remote)
        env["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000"
        let unknown = try Harness.pgsnap(["list", "--remote"], dir: dir, env: env)
        Harness.assertOneErrorLine(unknown, status: 1, "unknown key")
        XCTAssertTrue(unknown.stderr.contains("InvalidAccessKeyId"), unknown.stderr)

        let missing = try Harness.pgsnap(["push", "--quiet", "--remote", "s3://pgsnap-no-such-bucket/x"], dir: dir, env: S3Harness.env(remote: remote))
        Harness.assertOneErrorLine(missing, status: 1, "missing bucket")
        XCTAssertTrue(missing.stderr.contains("NoSuchBucket") && missing.stderr.contains("pgsnap-no-such-bucket"), missing.stderr)

        // Auth errors are not retried: one request each, counted at a proxy.
        let counting = try proxy { _, _ in .forward }
        let once = try Harness.pgsnap(["list", "--remote"], dir: dir, env: S3Harness.env(remote: remote, endpoint: counting.endpoint, secret: wrongSecret))
        XCTAssertEqual(once.status, 1, once.stderr)
        XCTAssertEqual(counting.requests.count, 1, "\(counting.requests)")
    }

    /// An endpoint that answers a byte every 0.2 s: each read gets something, so only a floor
    /// on the whole exchange's rate ends it (list and push hung for good, holding the lock).
    /// Run under timeout(1), so a hang fails the test (124) instead of holding up the suite.
    func testATricklingEndpointIsGivenUp() throws {
        let (_, dir, _) = try backedUp("trickle")
        let (remote, _) = S3Harness.newRemote()
        let slow = try proxy { _, _ in .trickle }
        var env = S3Harness.env(remote: remote, endpoint: slow.endpoint)
        env["PGSNAP_S3_TIMEOUT"] = "1"
        env["PGSNAP_S3_ATTEMPTS"] = "1"
        env["PGSNAP_DIR"] = dir
        for args in [["list", "--remote"], ["push", "--quiet"]] {
            let r = try Harness.run("/usr/bin/timeout", ["120", Harness.binary] + args, env: env)
            Harness.assertOneErrorLine(r, status: 1, "\(args)")
            XCTAssertTrue(r.stderr.contains("timed out") && r.stderr.contains("under 1 KiB/s"), "\(args): \(r.stderr)")
        }
    }

    func testBackupPushWithTheRemoteDownKeepsTheGoodLocalSnapshotAndExitsSix() throws {
        let db = try Harness.createDatabase("down")
        databases.append(db)
        try Harness.psql(db, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
        let dir = try Harness.tempDir()
        dirs.append(dir)
        let (remote, _) = S3Harness.newRemote()
        let dead = S3Harness.deadEndpoint()
        var env = S3Harness.env(remote: remote, endpoint: dead)
        env["PGSNAP_S3_ATTEMPTS"] = "3"
        let r = try Harness.pgsnap(["backup", "-d", db, "--push", "--quiet"], dir: dir, env: env)
        Harness.assertOneErrorLine(r, status: 6, "remote down")
        XCTAssertTrue(r.stderr.contains(dead) && r.stderr.contains("connection refused"), r.stderr)
        XCTAssertTrue(r.stderr.contains("pgsnap push "), r.stderr)
        let list = try Harness.pgsnap(["list", "--json"], dir: dir)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["status"] as? String }, ["good"])
        let verify = try Harness.pgsnap(["verify", "latest", "--database", db], dir: dir)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        // And once the remote is back, the push the message names completes the job.
        let id = try XCTUnwrap(rows.first?["id"] as? String)
        let push = try Harness.pgsnap(["push", id], dir: dir, env: S3Harness.env(remote: remote))
        XCTAssertEqual(push.status, 0, push.stderr)
    }

    func testResetsAnd503sAreRetriedAndAPersistent503IsBoundedAndNamed() throws {
        let (_, dir, id) = try backedUp("flaky", rows: 600_000)
        let (remote, prefix) = S3Harness.newRemote()
        let failedOnce = Box(Set<String>())
        // Every request of each kind fails once: the listing is reset, the first try of each part gets 503.
        let flaky = try proxy { line, _ in
            let kind = line.contains("list-type=2") ? "list" : line.contains("partNumber=") ? String(line.split(separator: "&")[0]) : "other"
            guard kind != "other" else { return .forward }
            var first = false
            failedOnce.update { first = $0.insert(kind).inserted }
            return first ? (kind == "list" ? .reset : .unavailable) : .forward
        }
        let push = try Harness.pgsnap(["push"], dir: dir, env: S3Harness.env(remote: remote, endpoint: flaky.endpoint))
        XCTAssertEqual(push.status, 0, push.stderr)
        XCTAssertGreaterThanOrEqual(failedOnce.get.count, 3, "a listing and at least two parts failed once: \(flaky.requests)")
        XCTAssertEqual(try S3Harness.metadata(prefix + "/" + id + ".sql.gz")["sha256"], try Harness.manifest(dir: dir, id: id)["sha256"] as? String)
        let fresh = try Harness.tempDir()
        dirs.append(fresh)
        let pull = try Harness.pgsnap(["pull", id], dir: fresh, env: S3Harness.env(remote: remote))
        XCTAssertEqual(pull.status, 0, pull.stderr)
        XCTAssertEqual(try Harness.sha256sum(Harness.dumpPath(dir: fresh, id: id)), try Harness.sha256sum(Harness.dumpPath(dir: dir, id: id)))

        let down = try proxy { _, _ in .unavailable }
        var env = S3Harness.env(remote: remote, endpoint: down.endpoint)
        env["PGSNAP_S3_ATTEMPTS"] = "3"
        let r = try Harness.pgsnap(["list", "--remote"], dir: dir, env: env)
        Harness.assertOneErrorLine(r, status: 1, "persistent 503")
        XCTAssertTrue(r.stderr.contains(down.endpoint) && r.stderr.contains("503"), r.stderr)
        XCTAssertEqual(down.requests.count, 3, "bounded retries: \(down.requests)")
    }

    /// SIGKILL while a part is in flight (held by the proxy): the remote shows nothing good,
    /// and the next push completes the snapshot and aborts the orphaned multipart upload.
    func testPushKilledMidUploadIsNotGoodAndTheNextPushCompletesIt() throws {
        let (_, dir, id) = try backedUp("kill", rows: 600_000)
        let (remote, prefix) = S3Harness.newRemote()
        let hold = try proxy { line, _ in line.contains("partNumber=2&") ? .stall : .forward }
        let killed = try Harness.pgsnap(["push"], dir: dir, env: S3Harness.env(remote: remote, endpoint: hold.endpoint)) { pid in
            XCTAssertEqual(self.waitForStall(hold), .success, "part 2 never arrived: \(hold.requests)")
            kill(pid, SIGKILL)
        }
        XCTAssertEqual(killed.status, SIGKILL, "pgsnap was killed, it did not finish: \(killed.stderr)")
        XCTAssertTrue(hold.requests.contains { $0.contains("partNumber=2&") })
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [prefix + "/" + id + ".sql.gz"])

        let env = S3Harness.env(remote: remote)
        let list = try Harness.pgsnap(["list", "--remote", "--json"], dir: dir, env: env)
        XCTAssertEqual(list.status, 0, list.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertFalse(rows.contains { $0["status"] as? String == "good" }, list.stdout)
        let pullNothing = try Harness.pgsnap(["pull", "latest", "--quiet"], dir: try Harness.tempDir(), env: env)
        XCTAssertEqual(pullNothing.status, 1, pullNothing.stderr)

        let push = try Harness.pgsnap(["push"], dir: dir, env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        XCTAssertTrue(push.stderr.contains("aborted 1 unfinished upload"), push.stderr)
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
        let after = try Harness.pgsnap(["list", "--remote", "--json"], dir: dir, env: env)
        let good = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(good.map { $0["status"] as? String }, ["good"])
    }

    /// Killed after the dump was complete but before the manifest: listed as incomplete; the
    /// next push sees the whole dump (size and SHA-256 metadata) and only writes the manifest.
    func testPushKilledBeforeTheManifestIsIncompleteAndCompletedWithoutReupload() throws {
        let (_, dir, id) = try backedUp("killm")
        let (remote, prefix) = S3Harness.newRemote()
        let hold = try proxy { line, _ in line.hasPrefix("PUT ") && line.contains(".manifest.json") ? .stall : .forward }
        _ = try Harness.pgsnap(["push"], dir: dir, env: S3Harness.env(remote: remote, endpoint: hold.endpoint)) { pid in
            XCTAssertEqual(self.waitForStall(hold), .success, "the manifest never arrived: \(hold.requests)")
            kill(pid, SIGKILL)
        }
        let env = S3Harness.env(remote: remote)
        let list = try Harness.pgsnap(["list", "--remote", "--json"], dir: dir, env: env)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        // The local list's words (one shape for list --json and list --remote --json).
        XCTAssertEqual(rows.map { $0["status"] as? String }, ["dump_without_manifest"])

        let counting = try proxy { _, _ in .forward }
        let push = try Harness.pgsnap(["push"], dir: dir, env: S3Harness.env(remote: remote, endpoint: counting.endpoint))
        XCTAssertEqual(push.status, 0, push.stderr)
        XCTAssertFalse(counting.requests.contains { $0.contains("partNumber=") }, "the dump was uploaded again: \(counting.requests)")
        XCTAssertTrue(try S3Harness.objects(prefix).keys.contains(prefix + "/" + id + ".manifest.json"))
    }

    /// An object truncated, or changed at the same size, in the bucket: pull and restore --remote
    /// refuse with exit 2, keep nothing, and the target database is untouched.
    func testDamagedObjectsAreRefusedWithExitTwoAndTheTargetIsUntouched() throws {
        let (db, dir, id) = try backedUp("dmg", rows: 20_000)
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        XCTAssertEqual(try Harness.pgsnap(["push", "-q"], dir: dir, env: env).status, 0)
        try Harness.psql(db, "INSERT INTO t VALUES (-1, 'after the backup')")
        let targetBefore = try Harness.fingerprint(db)
        let key = prefix + "/" + id + ".sql.gz"
        let size = try Harness.fileSize(Harness.dumpPath(dir: dir, id: id))

        let verified = try Harness.pgsnap(["verify", "--remote", id], dir: dir, env: env)
        XCTAssertEqual(verified.status, 0, verified.stderr)
        for (damage, word, check) in [(["flip", S3Harness.bucket, key, String(size / 2)], "SHA-256", "checksum"),
                                      (["truncate", S3Harness.bucket, key, String(size / 2)], "damaged", "size")] {
            _ = try S3Harness.boto(damage)
            let verify = try Harness.pgsnap(["verify", "--remote", "--json"], dir: dir, env: env)
            XCTAssertEqual(verify.status, 2, verify.stderr)
            let results = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [[String: Any]])
            XCTAssertEqual(results.map { $0["failed_check"] as? String }, [check], verify.stdout)

            let fresh = try Harness.tempDir()
            dirs.append(fresh)
            let pull = try Harness.pgsnap(["pull", id, "--quiet"], dir: fresh, env: env)
            Harness.assertOneErrorLine(pull, status: 2, "pull after \(damage[0])")
            XCTAssertTrue(pull.stderr.contains(word) && pull.stderr.contains(id), pull.stderr)
            XCTAssertEqual(Harness.snapshotFiles(fresh).filter { !$0.hasPrefix(".") }, [], "nothing kept after \(damage[0])")

            let restore = try Harness.pgsnap(["restore", "--remote", id, "-d", db, "--yes", "--quiet"], dir: fresh, env: env)
            Harness.assertOneErrorLine(restore, status: 2, "restore --remote after \(damage[0])")
            XCTAssertEqual(try Harness.fingerprint(db), targetBefore, "target changed after \(damage[0])")
        }
    }

    /// A copy damaged in the bucket keeps its size, so push skips it as whole; `push --force`
    /// replaces it (manifest removed first, written last) and it verifies again.
    func testPushForceReplacesACopyDamagedInTheBucket() throws {
        let (_, dir, id) = try backedUp("force", rows: 20_000)
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        XCTAssertEqual(try Harness.pgsnap(["push", "-q"], dir: dir, env: env).status, 0)
        let size = try Harness.fileSize(Harness.dumpPath(dir: dir, id: id))
        _ = try S3Harness.boto(["flip", S3Harness.bucket, prefix + "/" + id + ".sql.gz", String(size / 2)])
        XCTAssertEqual(try Harness.pgsnap(["verify", "--remote", id, "-q"], dir: dir, env: env).status, 2)

        let again = try Harness.pgsnap(["push", id], dir: dir, env: env)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout, "\(id) skipped\n", "without --force a copy of the right size is taken as whole")
        XCTAssertEqual(try Harness.pgsnap(["verify", "--remote", id, "-q"], dir: dir, env: env).status, 2)

        let forced = try Harness.pgsnap(["push", id, "--force"], dir: dir, env: env)
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(forced.stdout, "\(id) uploaded\n")
        let verify = try Harness.pgsnap(["verify", "--remote", id], dir: dir, env: env)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        let fresh = try Harness.tempDir()
        dirs.append(fresh)
        XCTAssertEqual(try Harness.pgsnap(["pull", id, "-q"], dir: fresh, env: env).status, 0)
        XCTAssertEqual(try Harness.sha256sum(Harness.dumpPath(dir: fresh, id: id)), try Harness.sha256sum(Harness.dumpPath(dir: dir, id: id)))
    }

    func waitForStall(_ p: FaultProxy) -> DispatchTimeoutResult {
        // A generous bound only for a broken run; the test proceeds the moment the request is held.
        p.stalled.wait(timeout: .now() + 120)
    }
}
