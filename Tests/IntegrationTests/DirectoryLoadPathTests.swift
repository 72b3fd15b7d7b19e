import Foundation
import XCTest

/// The fidelity corpus through the directory format's other load paths: every table split
/// across parallel COPY sessions (the path a big table takes), encrypted with age (each file
/// decrypted beside the snapshot for pg_restore), and through the bucket (push, then restore
/// --remote into an empty directory). Exact fingerprints each time.
final class DirectoryLoadPathTests: CorpusTestCase {
    /// PGSNAP_PARALLEL_COPY_MIN_BYTES=0 sends every table with a data file through the split
    /// load: odd names, partitions, generated and dropped columns, every type of the corpus.
    func testEveryTableThroughParallelCopySessionsReproducesCorpus() throws {
        let db = try corpusDatabase("fsplit")
        let original = try DatabaseFingerprint.of(db)
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db, "--format", "directory", "--jobs", "2"]))
        let copy = "\(db)_split"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "-d", db, "--jobs", "2"], env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("loaded through 2 COPY sessions each"), "the split load did not run: \(r.stderr)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "every table split across 2 COPY sessions")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        XCTAssertEqual(Harness.entries(fixture.dir).filter { $0.hasPrefix(".pgsnap-use-list") }, [], "use-lists are removed")
    }

    /// One big table split, the rest of the corpus's schema made while it loads
    /// (`schema_during_load`), every other table through pg_restore, their indexes, keys and
    /// foreign keys built while the big table loads (`indexes_during_load`); the rest after it:
    /// the corpus comes back exactly.
    func testOtherTablesIndexesDuringTheBigLoadReproduceCorpus() throws {
        let db = try corpusDatabase("fearly")
        try Harness.psql(db, """
            CREATE TABLE zz_big (id int PRIMARY KEY, note text NOT NULL);
            INSERT INTO zz_big SELECT g, md5(g::text) FROM generate_series(1, 40000) g;
            CREATE INDEX zz_big_note ON zz_big (note);
            CREATE TABLE zz_small (id int PRIMARY KEY, note text);
            INSERT INTO zz_small VALUES (1, 'one');
            CREATE INDEX zz_small_note ON zz_small (note);
            COMMENT ON INDEX zz_small_note IS 'built early, commented late';
            COMMENT ON CONSTRAINT zz_small_pkey ON zz_small IS 'a key built early';
            GRANT SELECT ON zz_small TO PUBLIC;
            """)
        let original = try DatabaseFingerprint.of(db)
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db, "--format", "directory", "--jobs", "2"]))
        let files = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]])
        let big = try XCTUnwrap(files.first { $0["table"] as? String == "public.zz_big" }?["bytes"] as? Int)
        XCTAssertEqual(files.filter { ($0["bytes"] as? Int ?? 0) >= big && $0["table"] is String }.count, 1, "zz_big is the one big table")
        let copy = "\(db)_early"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "-d", db, "--jobs", "2", "--verbose"],
                                   env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": String(big)])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("1 big table(s) loaded through 2 COPY sessions each"), r.stderr)
        XCTAssertTrue(r.stderr.contains("restore phases: ") && r.stderr.contains("indexes_during_load"), "no index was built during the load: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("schema_during_load"), "the schema zz_big does not need was not made during its load: \(r.stderr)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "other tables' indexes during the big load")
        // Comments on early entries have no section of their own: they must not fall out.
        XCTAssertEqual(try Harness.psql(copy, "SELECT obj_description('zz_small_note'::regclass, 'pg_class')"), "built early, commented late")
        XCTAssertEqual(try Harness.psql(copy, "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'zz_small_pkey'"), "a key built early")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        XCTAssertEqual(Harness.entries(fixture.dir).filter { $0.hasPrefix(".pgsnap-use-list") }, [], "use-lists are removed")
    }

    func testEncryptedDirectorySnapshotReproducesCorpus() throws {
        let db = try corpusDatabase("fdage")
        let original = try DatabaseFingerprint.of(db)
        let keyPath = fixture.dir + "-key.txt"
        defer { unlink(keyPath) }
        XCTAssertEqual(try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", keyPath]).status, 0)
        chmod(keyPath, 0o600)
        let recipient = try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", keyPath]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db, "--format", "directory", "--encrypt-to", recipient]))
        let m = try Harness.manifest(dir: fixture.dir, id: id)
        let names = (m["files"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        XCTAssertFalse(names.isEmpty)
        XCTAssertEqual(names.filter { !$0.hasSuffix(".age") }, [], "every stored file is age's format")
        XCTAssertEqual(Set(Harness.entries(fixture.dir + "/" + id + ".dir")), Set(names), "no plain file is left beside the encrypted ones")
        XCTAssertNotNil(m["encryption"])

        let stored = try pgsnapStep(["verify", id])
        XCTAssertTrue((stored.stdout + stored.stderr).contains("contents NOT checked"), stored.stdout + stored.stderr)
        let full = try pgsnapStep(["verify", id, "--identity", keyPath])
        XCTAssertFalse((full.stdout + full.stderr).contains("NOT checked"), full.stdout + full.stderr)
        let noKey = try fixture.pgsnap(["restore", id, "--target", "\(db)_nokey", "-d", db])
        XCTAssertEqual(noKey.status, 64, "restore without the identity is a usage error: \(noKey.stderr)")

        let copy = "\(db)_dage"
        fixture.track(database: copy)
        let r = try pgsnapStep(["restore", id, "--target", copy, "-d", db, "--identity", keyPath])
        XCTAssertTrue(r.stderr.contains("decrypting \(names.count) file(s)"), "restore says what it decrypts and where: \(r.stderr)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "encrypted directory restore")
        XCTAssertEqual(Harness.entries(fixture.dir).filter { $0.hasPrefix(".pgsnap-decrypted") }, [], "the decrypted copy is removed")
        // Every table through the split load: its data file read from the decrypted copy.
        let split = "\(db)_dage_split"
        fixture.track(database: split)
        let s = try fixture.pgsnap(["restore", id, "--target", split, "-d", db, "--identity", keyPath, "--jobs", "2"],
                                   env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertTrue(s.stderr.contains("loaded through 2 COPY sessions each"), "the split load did not run: \(s.stderr)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(split), original, "encrypted directory restore, every table split")

        // A flipped byte in one encrypted data file: refused before anything is touched.
        let data = try XCTUnwrap(names.first { $0.hasSuffix(".dat.gz.age") })
        let path = fixture.dir + "/" + id + ".dir/" + data
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        bytes[bytes.count - 5] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        let bad = try fixture.pgsnap(["verify", id, "--identity", keyPath])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains(data), "verify names the file: \(bad.stderr)")
        let refused = try fixture.pgsnap(["restore", id, "--target", "\(db)_bad", "-d", db, "--identity", keyPath])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertEqual(try Harness.databases(like: "\(db)\\_bad"), [])
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    func testDirectorySnapshotThroughTheBucketReproducesCorpus() throws {
        let db = try corpusDatabase("fdremote")
        let original = try DatabaseFingerprint.of(db)
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db, "--format", "directory"]))
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        let push = try fixture.pgsnap(["push", id, "--remote", remote], env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        let again = try fixture.pgsnap(["push", id, "--remote", remote, "--json"], env: env)
        XCTAssertTrue(again.stdout.contains("skipped"), "a second push sends nothing: \(again.stdout)")
        let verify = try fixture.pgsnap(["verify", "--remote", remote, id], env: env)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        let keys = Array(try S3Harness.objects(prefix).keys)
        XCTAssertTrue(keys.contains("\(prefix)/\(id).dir/toc.dat"), "\(keys)")
        XCTAssertTrue(keys.contains("\(prefix)/\(id).manifest.json"), "\(keys)")

        // The machine is gone: an empty directory, restore --remote.
        let empty = fixture.dir + "-dr"
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let copy = "\(db)_dr"
        fixture.track(database: copy)
        let r = try Harness.pgsnap(["restore", id, "--remote", remote, "--target", copy, "-d", db, "--yes"], dir: empty, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "restore --remote of a directory snapshot")
        XCTAssertEqual(Harness.entries(empty).filter { $0.hasSuffix(".partial") }, [])
    }

    /// A killed directory backup leaves `<id>.dir.partial/`, perhaps with plain files of an
    /// encrypted backup in it: the next directory backup removes it, unless a running backup
    /// holds it (its flock) or it changed within the last minute.
    func testNextBackupRemovesAnAbandonedPartialDirectoryOnly() throws {
        let db = try fixture.database("fdpart")
        try Harness.psql(db, "CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
        func partial(_ stamp: String) throws -> String {
            let path = fixture.dir + "/\(db)_\(stamp).dir.partial"
            XCTAssertEqual(mkdir(path, 0o700), 0)
            try Data("plain rows of an encrypted backup".utf8).write(to: URL(fileURLWithPath: path + "/3001.dat.gz"))
            return path
        }
        let old = Date().addingTimeInterval(-300).timeIntervalSince1970
        let times = [timeval(tv_sec: Int(old), tv_usec: 0), timeval(tv_sec: Int(old), tv_usec: 0)]
        let abandoned = try partial("20260101T000000Z")
        let held = try partial("20260101T000001Z")
        let fresh = try partial("20260101T000002Z")
        for p in [abandoned, held] { XCTAssertEqual(utimes(p, times), 0) }
        let lock = open(held, O_RDONLY | O_DIRECTORY)
        XCTAssertEqual(flock(lock, LOCK_EX | LOCK_NB), 0, "the test holds \(held) as a running backup would")
        defer { close(lock) }

        let r = try pgsnapStep(["backup", "-d", db, "--format", "directory"])
        XCTAssertTrue(r.stderr.contains("removing \(abandoned), left by an interrupted backup"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: abandoned), "the abandoned partial directory is gone")
        XCTAssertTrue(FileManager.default.fileExists(atPath: held + "/3001.dat.gz"), "a partial directory a backup holds is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh + "/3001.dat.gz"), "one changed a moment ago is kept")
        try pgsnapStep(["verify", Harness.snapshotID(r)])
    }
}
