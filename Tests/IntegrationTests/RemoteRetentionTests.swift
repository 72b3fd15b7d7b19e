import Foundation
import XCTest

/// `prune --remote` and `check --remote` against the bucket, and `verify --remote` of good copies.
final class RemoteRetentionTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    /// Three snapshots of one database, all pushed; returns them oldest first.
    func pushedThree() throws -> (db: String, dir: String, ids: [String], remote: String, prefix: String) {
        let db = try Harness.createDatabase("ret")
        databases.append(db)
        try Harness.psql(db, "CREATE TABLE t AS SELECT g FROM generate_series(1, 5000) g")
        let dir = try Harness.tempDir()
        dirs.append(dir)
        var ids: [String] = []
        for _ in 0..<3 {
            let r = try Harness.pgsnap(["backup", "-d", db], dir: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            ids.append(Harness.snapshotID(r))
        }
        let (remote, prefix) = S3Harness.newRemote()
        let push = try Harness.pgsnap(["push", "--all", "-q"], dir: dir, env: S3Harness.env(remote: remote))
        XCTAssertEqual(push.status, 0, push.stderr)
        return (db, dir, ids, remote, prefix)
    }

    /// The newest copy is damaged in the bucket (a listing still shows it "good"): prune must
    /// keep the newest copy that really is whole, remove the oldest, leave the damaged one for a
    /// person, and abort an unfinished upload older than 24 h.
    func testPruneRemoteNeverDeletesTheNewestConfirmedGoodCopy() throws {
        let (_, _, ids, remote, prefix) = try pushedThree()
        let newestKey = prefix + "/" + ids[2] + ".sql.gz"
        _ = try S3Harness.boto(["truncate", S3Harness.bucket, newestKey, "100"])
        _ = try S3Harness.boto(["start-upload", S3Harness.bucket, prefix + "/leftover_20261101T000000Z.sql.gz"])
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix).count, 1)

        var env = S3Harness.env(remote: remote)
        env["PGSNAP_NOW"] = "2030-01-01T00:00:00Z"  // everything is years old and past the 24 h grace
        let dry = try Harness.pgsnap(["prune", "--remote", "--dry-run", "--json"], dir: try Harness.tempDir(), env: env)
        XCTAssertEqual(dry.status, 0, dry.stderr)
        let plan = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])?["decisions"] as? [[String: Any]])
        let actions = Dictionary(uniqueKeysWithValues: plan.map { ($0["id"] as! String, $0["action"] as! String) })
        XCTAssertEqual(actions, [ids[0]: "remove", ids[1]: "keep", ids[2]: "keep"])
        XCTAssertEqual(plan.first { $0["id"] as? String == ids[2] }?["status"] as? String, "damaged")
        XCTAssertEqual(try S3Harness.objects(prefix).count, 6, "a dry run deletes nothing")

        let prune = try Harness.pgsnap(["prune", "--remote"], dir: try Harness.tempDir(), env: env)
        XCTAssertEqual(prune.status, 0, prune.stderr)
        let left = Set(try S3Harness.objects(prefix).keys)
        var expected = Set<String>()
        for id in [ids[1], ids[2]] {
            expected.insert(prefix + "/" + id + ".sql.gz")
            expected.insert(prefix + "/" + id + ".manifest.json")
        }
        XCTAssertEqual(left, expected)
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
    }

    /// A run's globals in the bucket are kept while its record names a snapshot that stays, and go
    /// with the last one; a record that cannot be read is left alone; a leftover of a killed push
    /// (globals without a record) goes after the grace period. One small GET per run, no manifest.
    func testPruneRemoteKeepsARunsGlobalsByItsRecord() throws {
        let (_, _, ids, remote, prefix) = try pushedThree()
        let runs = (kept: "run-20200102T000000Z", gone: "run-20200101T000000Z", broken: "run-20200103T000000Z", leftover: "run-20200104T000000Z")
        for run in [runs.kept, runs.gone, runs.broken, runs.leftover] {
            _ = try S3Harness.boto(["put", S3Harness.bucket, prefix + "/" + run + ".globals.sql", "CREATE ROLE x;\n"])
        }
        // ids[0] and ids[1] are old enough to go; ids[2], the newest, always stays.
        let records = [(runs.kept, [ids[0], ids[2]]), (runs.gone, [ids[0], ids[1]])]
        for (run, snapshots) in records {
            let text = String(decoding: try PruneCheckLockTests.runRecord(run, snapshots: snapshots), as: UTF8.self)
            _ = try S3Harness.boto(["put", S3Harness.bucket, prefix + "/" + run + ".run.json", text])
        }
        _ = try S3Harness.boto(["put", S3Harness.bucket, prefix + "/" + runs.broken + ".run.json", "{ not json"])

        var env = S3Harness.env(remote: remote)
        env["PGSNAP_NOW"] = "2030-01-01T00:00:00Z"
        let prune = try Harness.pgsnap(["prune", "--remote", "--json"], dir: try Harness.tempDir(), env: env)
        XCTAssertEqual(prune.status, 0, prune.stderr)
        let object = try XCTUnwrap((try? JSONSerialization.jsonObject(with: Data(prune.stdout.utf8))) as? [String: Any])
        var action: [String: String] = [:]
        for d in object["runs"] as? [[String: Any]] ?? [] { action[d["run"] as? String ?? "?"] = d["action"] as? String }
        XCTAssertEqual(action, [runs.kept: "keep", runs.gone: "remove", runs.broken: "keep", runs.leftover: "remove"], prune.stdout)
        let left = Set(try S3Harness.objects(prefix).keys.map { String($0.dropFirst(prefix.count + 1)) }.filter { $0.hasPrefix("run-") })
        XCTAssertEqual(left, [runs.kept + ".globals.sql", runs.kept + ".run.json", runs.broken + ".globals.sql", runs.broken + ".run.json"])
    }

    func testCheckRemoteFreshnessSizeAndMetrics() throws {
        let (db, dir, ids, remote, _) = try pushedThree()
        let env = S3Harness.env(remote: remote)
        let metrics = dir + "/remote.prom"
        let ok = try Harness.pgsnap(["check", "--remote", "--max-age", "1h", "--metrics-file", metrics], dir: dir, env: env)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertTrue(text.contains("pgsnap_remote_snapshots{database=\"\(db)\"} 3"), text)
        XCTAssertTrue(text.contains("pgsnap_remote_last_size_bytes{database=\"\(db)\"} \(try Harness.fileSize(Harness.dumpPath(dir: dir, id: ids[2])))"), text)

        var stale = env
        stale["PGSNAP_NOW"] = "2030-01-01T00:00:00Z"
        let old = try Harness.pgsnap(["check", "--remote", "--max-age", "26h", "--quiet"], dir: dir, env: stale)
        XCTAssertEqual(old.status, 2, old.stderr)
        XCTAssertTrue(old.stderr.contains(ids[2]) && old.stderr.contains("old (max"), old.stderr)
        let missing = try Harness.pgsnap(["check", "--remote", "--database", "nosuchdb", "--quiet"], dir: dir, env: env)
        XCTAssertEqual(missing.status, 2, missing.stderr)

        let verify = try Harness.pgsnap(["verify", "--remote", "--all"], dir: dir, env: env)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertEqual(verify.stderr.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count, 3, verify.stderr)
    }

    /// 1,010 objects: list --remote pages through them with exactly two ListObjectsV2 requests
    /// (S3 returns at most 1,000 keys each), then reads each manifest once (a GET each, several
    /// at a time) so its items are the local list's items. The fake manifests ("{}") are not
    /// manifests: every snapshot lists as invalid_manifest, as it would on disk.
    func testListRemotePagesThroughMoreThanAThousandKeysAndReadsEachManifestOnce() throws {
        let (remote, prefix) = S3Harness.newRemote()
        _ = try S3Harness.boto(["fill", S3Harness.bucket, prefix, "505"])
        let counting = try FaultProxy(upstream: S3Harness.endpoint) { _, _ in .forward }
        defer { counting.stop() }
        let dir = try Harness.tempDir()
        dirs.append(dir)
        let list = try Harness.pgsnap(["list", "--remote", "--json"], dir: dir, env: S3Harness.env(remote: remote, endpoint: counting.endpoint))
        XCTAssertEqual(list.status, 0, list.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, 505)
        XCTAssertEqual(Set(rows.map { $0["status"] as? String }), ["invalid_manifest"])
        XCTAssertEqual(rows.first?["id"] as? String, "app_20261101T082400Z", "newest first")
        let listings = counting.requests.filter { $0.hasPrefix("GET /\(S3Harness.bucket)?") && $0.contains("list-type=2") }
        XCTAssertEqual(listings.count, 2, "\(listings.map { $0.prefix(120) })")
        XCTAssertTrue(listings[1].contains("continuation-token="))
        let gets = counting.requests.filter { !$0.contains("list-type=2") }
        XCTAssertEqual(gets.count, 505, "one GET per manifest, nothing else")
        XCTAssertTrue(gets.allSatisfy { $0.hasPrefix("GET ") && $0.contains(".manifest.json") }, "\(gets.prefix(3))")
    }
}
