import Foundation
import XCTest

/// `backup --remote` without `--push`: pg_dump streams through compression (and age) straight
/// into the bucket, the manifest last; nothing touches the local disk, and a killed or failed
/// upload leaves nothing that lists or restores as a snapshot.
final class RemoteBackupTests: XCTestCase {
    var databases: [String] = []
    var paths: [String] = []
    var proxies: [FaultProxy] = []

    override func tearDown() {
        for p in proxies { p.stop() }
        for d in databases { Harness.dropDatabase(d) }
        for p in paths { try? FileManager.default.removeItem(atPath: p) }
        super.tearDown()
    }

    /// rows = 600,000 dumps to about 11 MB: three parts of 5 MiB.
    func database(_ prefix: String, rows: Int = 2000) throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        try Harness.psql(db, """
            CREATE TABLE t (g int PRIMARY KEY, h text, j jsonb);
            INSERT INTO t SELECT g, md5(g::text), jsonb_build_object('g', g, 'n', repeat('x', g % 50)) FROM generate_series(1, \(rows)) g;
            CREATE INDEX t_h ON t (h);
            CREATE TABLE small (id serial PRIMARY KEY, note text);
            INSERT INTO small (note) VALUES ('a'), (NULL), ('tab\there');
            """)
        return db
    }

    /// A backup directory path that does not exist: a direct backup must not create it.
    func absentDir() -> String {
        let path = NSTemporaryDirectory() + "pgsnap-absent-" + UUID().uuidString.prefix(8)
        paths.append(path)
        return path
    }

    func proxy(_ rule: @escaping (String, Int) -> FaultProxy.Action) throws -> FaultProxy {
        let p = try FaultProxy(upstream: S3Harness.endpoint, rule: rule)
        proxies.append(p)
        return p
    }

    func listRemote(_ env: [String: String?]) throws -> [[String: Any]] {
        let list = try Harness.pgsnap(["list", "--remote", "--json"], dir: absentDir(), env: env)
        XCTAssertEqual(list.status, 0, list.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]], list.stdout)
    }

    func testBackupRemoteWritesOnlyToTheBucketAndRestoresExactly() throws {
        let db = try database("rb", rows: 600_000)
        let before = try Harness.fingerprint(db)
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        let dir = absentDir()

        let r = try Harness.pgsnap(["backup", "-d", db, "--remote", "--label", "pre_000045", "--globals"], dir: dir, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let id = Harness.snapshotID(r)
        XCTAssertTrue(r.stderr.contains("\(remote)/\(id).sql.gz"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "a direct backup wrote to the local disk")
        XCTAssertEqual(Set(try S3Harness.objects(prefix).keys),
                       [prefix + "/" + id + ".sql.gz", prefix + "/" + id + ".manifest.json", prefix + "/" + id + ".globals.sql"])
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
        // Several parts, so the streamed multipart path (not one PUT) was taken.
        XCTAssertGreaterThan(try S3Harness.objects(prefix)[prefix + "/" + id + ".sql.gz"] ?? 0, 10 << 20)

        let rows = try listRemote(env)
        XCTAssertEqual(rows.map { $0["id"] as? String }, [id])
        XCTAssertEqual(rows.first?["status"] as? String, "good")
        XCTAssertEqual(rows.first?["label"] as? String, "pre_000045")
        let verify = try Harness.pgsnap(["verify", "--remote", id], dir: dir, env: env)
        XCTAssertEqual(verify.status, 0, verify.stderr)

        // The manifest's checksum is the stored object's, taken by an independent reader.
        let pulledDir = try Harness.tempDir()
        paths.append(pulledDir)
        XCTAssertEqual(try Harness.pgsnap(["pull", id, "--quiet"], dir: pulledDir, env: env).status, 0)
        let manifest = try Harness.manifest(dir: pulledDir, id: id)
        XCTAssertEqual(manifest["sha256"] as? String, try Harness.sha256sum(Harness.dumpPath(dir: pulledDir, id: id)))
        XCTAssertEqual((manifest["table_rows"] as? [String: Any])?["public.t"] as? Int, 600_000)

        let target = db + "_back"
        databases.append(target)
        let restore = try Harness.pgsnap(["restore", "--remote", id, "--target", target, "--quiet"], dir: try Harness.tempDir(), env: env)
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertEqual(try Harness.fingerprint(target), before)
    }

    /// restore --remote picks the snapshot `list --remote` shows: a label is matched whole
    /// ("migration_45" is not "pre_migration_45"), and a snapshot whose label reads as a time
    /// (made before backup refused such labels) is not filed under another database, which made
    /// `latest` silently restore the one before it.
    func testRemoteSelectionByLabelAndLatestIsExact() throws {
        let db = try database("rsel")
        let (remote, _) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        let dir = try Harness.tempDir()
        paths.append(dir)
        func backup(_ label: String) throws -> String {
            let r = try Harness.pgsnap(["backup", "-d", db, "--label", label], dir: dir, env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            return Harness.snapshotID(r)
        }
        let exact = try backup("migration_45")
        try Harness.psql(db, "INSERT INTO t SELECT -1")
        let longer = try backup("pre_migration_45")
        XCTAssertEqual(try Harness.pgsnap(["backup", "-d", db, "--label", "20261206T050000Z"], dir: dir, env: env).status, 64)

        // An old-style snapshot, newest of all, whose label reads as a time: the newest one
        // renamed as such (same dump, its manifest's id, label and file to match).
        try Harness.psql(db, "INSERT INTO t SELECT -2")
        let seed = try backup("seed")
        let parsed = try XCTUnwrap(seed.range(of: "_seed").map { String(seed[..<$0.lowerBound]) })
        let odd = parsed + "_20261206T050000Z"
        var m = try Harness.manifest(dir: dir, id: seed)
        m["id"] = odd
        m["label"] = "20261206T050000Z"
        m["file"] = odd + ".sql.gz"
        try FileManager.default.moveItem(atPath: Harness.dumpPath(dir: dir, id: seed), toPath: Harness.dumpPath(dir: dir, id: odd))
        try Harness.writeJSON(m, to: Harness.manifestPath(dir: dir, id: odd))
        try FileManager.default.removeItem(atPath: Harness.manifestPath(dir: dir, id: seed))
        let push = try Harness.pgsnap(["push", "--all"], dir: dir, env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        XCTAssertEqual(try listRemote(env).first?["id"] as? String, odd, "list --remote shows it newest")

        let rows = { (target: String) in try Harness.psql(target, "SELECT count(*) FROM t") }
        let expected = ["migration_45": "2000", "pre_migration_45": "2001", "latest": "2002"]
        for (what, args) in [("migration_45", ["--label", "migration_45"]), ("pre_migration_45", ["--label", "pre_migration_45"]), ("latest", ["latest"])] {
            let target = db + "_" + what.replacingOccurrences(of: "pre_", with: "p")
            databases.append(target)
            let r = try Harness.pgsnap(["restore", "--remote"] + args + ["-d", db, "--target", target, "--quiet"], dir: try Harness.tempDir(), env: env)
            XCTAssertEqual(r.status, 0, "\(what): \(r.stderr)")
            XCTAssertEqual(try rows(target), expected[what], what)
        }
        _ = (exact, longer)
    }

    func testEncryptedBackupRemoteVerifiesWithTheIdentityAndNeverStoresPlaintext() throws {
        let db = try database("rbenc")
        let keys = try Harness.tempDir()
        paths.append(keys)
        let gen = try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", keys + "/key.txt"])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let pub = try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", keys + "/key.txt"])
        let recipient = pub.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)

        let r = try Harness.pgsnap(["backup", "-d", db, "--remote", remote, "--encrypt-to", recipient, "--compress", "zstd"], dir: absentDir(), env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let id = Harness.snapshotID(r)
        let key = prefix + "/" + id + ".sql.zst.age"
        let objects = try S3Harness.objects(prefix)
        XCTAssertNotNil(objects[key], "\(objects)")
        let head = try S3Harness.boto(["head", S3Harness.bucket, key, "22"]) as? String
        XCTAssertEqual(head, "age-encryption.org/v1\n", "the object is not age-encrypted")

        let verify = try Harness.pgsnap(["verify", "--remote", id, "--identity", keys + "/key.txt", "--json"], dir: absentDir(), env: env)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        let results = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(results.first?["ok"] as? Bool, true, verify.stdout)
        // Decrypted and read to the end: every row counted against the manifest.
        XCTAssertEqual(results.first?["rows"] as? Int, 2003, verify.stdout)
        XCTAssertEqual(results.first?["tables"] as? Int, 2, verify.stdout)
    }

    /// SIGKILL while part 2 is held: no object, nothing listed, restore refuses; the next
    /// direct backup a day later aborts the orphaned upload.
    func testKilledDirectBackupLeavesNothingThatListsOrRestores() throws {
        let db = try database("rbkill", rows: 600_000)
        let (remote, prefix) = S3Harness.newRemote()
        let hold = try proxy { line, _ in line.contains("partNumber=2&") ? .stall : .forward }
        let killed = try Harness.pgsnap(["backup", "-d", db, "--remote"], dir: absentDir(),
                                        env: S3Harness.env(remote: remote, endpoint: hold.endpoint)) { pid in
            XCTAssertEqual(hold.stalled.wait(timeout: .now() + 120), .success, "part 2 never arrived: \(hold.requests)")
            kill(pid, SIGKILL)
        }
        XCTAssertEqual(killed.status, SIGKILL, "pgsnap was killed, it did not finish: \(killed.stderr)")
        let env = S3Harness.env(remote: remote)
        XCTAssertEqual(try S3Harness.objects(prefix), [:])
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix).count, 1)
        XCTAssertEqual(try listRemote(env).count, 0)
        let restore = try Harness.pgsnap(["restore", "--remote", "latest", "-d", db, "--yes", "--quiet"], dir: try Harness.tempDir(), env: env)
        XCTAssertEqual(restore.status, 1, restore.stderr)
        XCTAssertTrue(restore.stderr.contains("No snapshot matches 'latest'") && restore.stderr.contains("pgsnap list --remote \(remote)"), restore.stderr)

        // The same night: the upload may be a backup still running, so it is left alone.
        let sameNight = try Harness.pgsnap(["backup", "-d", db, "--remote", "--quiet"], dir: absentDir(), env: env)
        XCTAssertEqual(sameNight.status, 0, sameNight.stderr)
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix).count, 1)
        var nextDay = env
        nextDay["PGSNAP_NOW"] = ISO8601DateFormatter().string(from: Date().addingTimeInterval(25 * 3600))
        let next = try Harness.pgsnap(["backup", "-d", db, "--remote"], dir: absentDir(), env: nextDay)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("aborted 1 unfinished upload"), next.stderr)
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
        XCTAssertEqual(try listRemote(env).map { $0["status"] as? String }, ["good", "good"])
    }

    /// Another writer stores the same id while this backup's upload runs (two hosts' cron jobs
    /// in one second): the completion is conditional, so that object is kept as it was, this
    /// backup fails with one line, and its upload is aborted (the second one used to replace the
    /// first, or the first removed the second's dump as "a short object" and left its manifest).
    func testASameSecondWriterOfTheSameIDKeepsItsObjectAndThisBackupFails() throws {
        let db = try database("rbrace")
        let (remote, prefix) = S3Harness.newRemote()
        var other: String?
        let racing = try proxy { line, _ in
            // The completion of the dump's upload: the other writer's object lands just before it.
            guard line.hasPrefix("POST "), line.contains("uploadId="), let key = line.split(separator: " ")[1].split(separator: "?").first
            else { return .forward }
            let path = String(key).removingPercentEncoding ?? String(key)
            let stored = String(path.dropFirst(S3Harness.bucket.count + 2))
            return .after {
                other = stored
                _ = try? S3Harness.boto(["put", S3Harness.bucket, stored, "the other writer's dump"])
            }
        }
        let r = try Harness.pgsnap(["backup", "-d", db, "--remote", "--label", "race", "--quiet"], dir: absentDir(),
                                   env: S3Harness.env(remote: remote, endpoint: racing.endpoint))
        Harness.assertOneErrorLine(r, status: 1, "another writer")
        XCTAssertTrue(r.stderr.contains("its object was kept, this one was not") && r.stderr.contains("Run the command again"), r.stderr)
        let key = try XCTUnwrap(other, "no completion went through the proxy: \(racing.requests)")
        XCTAssertEqual(try S3Harness.objects(prefix), [key: "the other writer's dump".utf8.count], "only the other writer's object, unchanged")
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
    }

    /// A part the bucket keeps refusing: exit 1 with one line naming the bucket, the upload
    /// aborted at once, nothing stored; SIGTERM mid-upload: exit 130, the upload aborted too.
    func testFailedOrInterruptedUploadIsAbortedAndNothingIsStored() throws {
        let db = try database("rbfail", rows: 600_000)
        let (remote, prefix) = S3Harness.newRemote()
        let refusing = try proxy { line, _ in line.contains("partNumber=2&") ? .unavailable : .forward }
        var env = S3Harness.env(remote: remote, endpoint: refusing.endpoint)
        env["PGSNAP_S3_ATTEMPTS"] = "2"
        let failed = try Harness.pgsnap(["backup", "-d", db, "--remote", "--quiet"], dir: absentDir(), env: env)
        Harness.assertOneErrorLine(failed, status: 1, "part refused")
        XCTAssertTrue(failed.stderr.contains("503"), failed.stderr)
        XCTAssertEqual(try S3Harness.objects(prefix), [:])
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])

        let hold = try proxy { line, _ in line.contains("partNumber=2&") ? .stall : .forward }
        let stopped = try Harness.pgsnap(["backup", "-d", db, "--remote"], dir: absentDir(),
                                         env: S3Harness.env(remote: remote, endpoint: hold.endpoint)) { pid in
            XCTAssertEqual(hold.stalled.wait(timeout: .now() + 120), .success, "part 2 never arrived: \(hold.requests)")
            kill(pid, SIGTERM)
        }
        XCTAssertEqual(stopped.status, 130, stopped.stderr)
        XCTAssertEqual(try S3Harness.objects(prefix), [:])
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
    }

    /// The manifest's PUT is carried out but its answer never arrives (every try): the backup
    /// fails, and removes the manifest before the dump, so nothing is left. The manifest stayed,
    /// without its dump: the database's newest entry, which `restore latest` refuses.
    func testAManifestStoredWhoseAnswerIsLostIsRemovedWithTheDump() throws {
        let db = try database("rblost")
        let (remote, prefix) = S3Harness.newRemote()
        let lossy = try proxy { line, _ in line.hasPrefix("PUT ") && line.contains(".manifest.json") ? .answerLost : .forward }
        var env = S3Harness.env(remote: remote, endpoint: lossy.endpoint)
        env["PGSNAP_S3_ATTEMPTS"] = "2"
        let r = try Harness.pgsnap(["backup", "-d", db, "--remote", "--quiet"], dir: absentDir(), env: env)
        Harness.assertOneErrorLine(r, status: 1, "manifest answer lost")
        XCTAssertTrue(lossy.requests.contains { $0.hasPrefix("PUT ") && $0.contains(".manifest.json") }, "\(lossy.requests)")
        XCTAssertEqual(try S3Harness.objects(prefix), [:])
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
        XCTAssertEqual(try listRemote(S3Harness.env(remote: remote)).count, 0)
    }

    func testDirectBackupBadInputIsAUsageErrorAndTouchesNothing() throws {
        let db = try database("rbbad")
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        for (args, word) in [(["--format", "directory"], "--format directory"), (["--all-databases"], "--all-databases")] {
            let r = try Harness.pgsnap(["backup", "--remote"] + args + (args == ["--all-databases"] ? [] : ["-d", db]), dir: absentDir(), env: env)
            Harness.assertOneErrorLine(r, status: 64, word)
            XCTAssertTrue(r.stderr.contains(word) && r.stderr.contains("--push"), r.stderr)
        }
        var noRemote = env
        noRemote["PGSNAP_REMOTE"] = nil
        let none = try Harness.pgsnap(["backup", "-d", db, "--remote"], dir: absentDir(), env: noRemote)
        Harness.assertOneErrorLine(none, status: 64, "no remote")
        let missing = try Harness.pgsnap(["backup", "-d", db, "--remote", "s3://pgsnap-no-such-bucket/x"], dir: absentDir(), env: env)
        Harness.assertOneErrorLine(missing, status: 1, "missing bucket")
        XCTAssertTrue(missing.stderr.contains("NoSuchBucket"), missing.stderr)
        let noDB = try Harness.pgsnap(["backup", "-d", db + "_missing", "--remote"], dir: absentDir(), env: env)
        Harness.assertOneErrorLine(noDB, status: 1, "missing database")
        XCTAssertEqual(try S3Harness.objects(prefix), [:])
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [])
    }

    /// `--prune` with a direct backup verifies the new snapshot in the bucket, then prunes the bucket.
    func testDirectBackupWithPruneVerifiesThenPrunesTheBucket() throws {
        let db = try database("rbprune")
        let (remote, _) = S3Harness.newRemote()
        var env = S3Harness.env(remote: remote)
        env["PGSNAP_NOW"] = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-40 * 86400))
        let old = try Harness.pgsnap(["backup", "-d", db, "--remote", "--quiet"], dir: absentDir(), env: env)
        XCTAssertEqual(old.status, 0, old.stderr)
        env["PGSNAP_NOW"] = nil
        let r = try Harness.pgsnap(["backup", "-d", db, "--remote", "--prune", "--keep-days", "30"], dir: absentDir(), env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let id = Harness.snapshotID(r)
        XCTAssertEqual(try listRemote(env).map { $0["id"] as? String }, [id])
    }

    /// The nightly job on a small-disk server: a direct backup notifies like a local one, and a
    /// failed upload sends the fail ping naming the bucket's error.
    func testDirectBackupNotifiesSuccessAndFailure() throws {
        let db = try database("rbntf")
        let (remote, _) = S3Harness.newRemote()
        let rx = try NotifyReceiver(answers: ["200"], tls: nil)
        defer { rx.stop() }
        let ok = try Harness.pgsnap(["backup", "-d", db, "--remote", "--notify", "json+\(rx.base)/hook/t0ken"], dir: absentDir(),
                                    env: S3Harness.env(remote: remote))
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let doc = try XCTUnwrap(rx.requests.first { $0.path == "/hook/t0ken" }?.json)
        XCTAssertEqual(doc["snapshot"] as? String, Harness.snapshotID(ok))
        XCTAssertEqual(doc["status"] as? String, "success")

        let dead = try Harness.pgsnap(["backup", "-d", db, "--remote", "--quiet", "--notify", "\(rx.base)/ping/t0ken"], dir: absentDir(),
                                      env: S3Harness.env(remote: remote, endpoint: S3Harness.deadEndpoint()).merging(["PGSNAP_S3_ATTEMPTS": "1"]) { $1 })
        XCTAssertEqual(dead.status, 1, dead.stderr)
        let fail = try XCTUnwrap(rx.requests.first { $0.path == "/ping/t0ken/fail" }, "\(rx.requests.map(\.path))")
        XCTAssertTrue(fail.body.contains("connection refused") || fail.body.contains("S3"), fail.body)
    }

    /// The weekly drill of a server that keeps nothing locally: the bucket's newest snapshot is
    /// restored into a throwaway database, its proof goes back into the bucket's manifest, and
    /// no copy, scratch database or temporary directory is left; a damaged object fails it (exit 2).
    func testDrillRemoteRestoresTheBucketsNewestAndLeavesNothing() throws {
        let db = try database("rbdrill", rows: 20_000)
        let (remote, prefix) = S3Harness.newRemote()
        var env = S3Harness.env(remote: remote)
        let tmp = try Harness.tempDir()
        paths.append(tmp)
        env["TMPDIR"] = tmp
        let b = try Harness.pgsnap(["backup", "-d", db, "--remote"], dir: absentDir(), env: env)
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = Harness.snapshotID(b)
        let prom = tmp + "/drill.prom"
        let dir = absentDir()
        // What a drill killed with -9 leaves: its copy, under its pid (a process that is gone),
        // with a folder (a directory snapshot's); a live process's copy is left alone.
        let gone = try Harness.run("/bin/true", []).pid
        let host = Harness.hostTag
        let orphan = tmp + "/pgsnap-drill-\(host)-\(gone)-AbC123"
        // Another host's (a container sharing TMPDIR): its pid says nothing here, left alone.
        let foreign = tmp + "/pgsnap-drill-0badf00d-\(gone)-DeF456"
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: orphan + "/app_20261101T000000Z.dir", withIntermediateDirectories: true)
        try Data("dump".utf8).write(to: URL(fileURLWithPath: orphan + "/app_20261101T000000Z.dir/toc.dat"))
        let alive = tmp + "/pgsnap-drill-\(host)-\(getpid())-XyZ789"
        try FileManager.default.createDirectory(atPath: alive, withIntermediateDirectories: true)
        let r = try Harness.pgsnap(["drill", "-d", db, "--remote", "--metrics-file", prom], dir: dir, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("ok  drill \(id)"), r.stderr)
        XCTAssertTrue(try String(contentsOfFile: prom, encoding: .utf8).contains("pgsnap_restore_drill_success{database=\"\(db)\"} 1"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).sorted(),
                       ["drill.prom", "pgsnap-drill-0badf00d-\(gone)-DeF456", "pgsnap-drill-\(host)-\(getpid())-XyZ789"],
                       "the drill's copy, or a killed drill's, was left behind")
        try FileManager.default.removeItem(atPath: alive)
        try FileManager.default.removeItem(atPath: foreign)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir))
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        let pulled = try Harness.tempDir()
        paths.append(pulled)
        XCTAssertEqual(try Harness.pgsnap(["pull", id, "--quiet"], dir: pulled, env: S3Harness.env(remote: remote)).status, 0)
        let proof = try XCTUnwrap(try Harness.manifest(dir: pulled, id: id)["restore_test"] as? [String: Any])
        XCTAssertEqual(proof["ok"] as? Bool, true)
        XCTAssertEqual(proof["rows"] as? Int, 20_003)

        _ = try S3Harness.boto(["flip", S3Harness.bucket, prefix + "/" + id + ".sql.gz", "1000"])
        let bad = try Harness.pgsnap(["drill", "-d", db, "--remote", "--metrics-file", prom, "--quiet"], dir: dir, env: env)
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(try String(contentsOfFile: prom, encoding: .utf8).contains("pgsnap_restore_drill_success{database=\"\(db)\"} 0"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).sorted(), ["drill.prom"])
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }
}
