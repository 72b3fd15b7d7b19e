import Foundation
import XCTest

/// `backup --all-databases` and `check --all-databases` against the shared test server.
///
/// Other test classes may leave databases behind on that server, and a whole-server run covers
/// them too. So every assertion is about the databases these tests create, plus rules that hold
/// whatever else exists: the exit status is the worst of the per-database ones, and a database
/// with a snapshot is never reported as missing.
final class AllDatabasesTests: XCTestCase {
    var databases: [String] = []
    var roles: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for r in roles { _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP ROLE IF EXISTS \"\(r)\""]) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    // MARK: - Fixtures

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    /// A database with one small table, created by the superuser.
    func makeDatabase(_ prefix: String) throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        try Harness.psql(db, "CREATE TABLE items AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 50) i")
        return db
    }

    /// A non-superuser LOGIN role. Over the test server's unix socket every role is trusted, so
    /// pgsnap runs as it with PGUSER alone; superusers would bypass CONNECT privileges.
    func makeRole() throws -> String {
        let role = "alldb_\(UUID().uuidString.prefix(8).lowercased())"
        try Harness.psql("postgres", "CREATE ROLE \"\(role)\" LOGIN")
        roles.append(role)
        return role
    }

    /// A database owned by `role`, its table created by `role`, so that `role` can dump it.
    func makeDatabase(_ prefix: String, ownedBy role: String) throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try Harness.psql("postgres", "CREATE DATABASE \"\(name)\" OWNER \"\(role)\"")
        databases.append(name)
        let r = try Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", name, "-c",
                                                          "CREATE TABLE items AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 50) i"],
                                env: ["PGUSER": role])
        XCTAssertEqual(r.status, 0, "creating a table as \(role): \(r.stderr)")
        return name
    }

    /// The `--json` array: one object per database.
    func outcomes(_ r: Harness.Result, file: StaticString = #filePath, line: UInt = #line) -> [String: [String: Any]] {
        guard let data = r.stdout.data(using: .utf8), let array = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
            XCTFail("backup --all-databases --json did not print a JSON array: \(r.stdout) / \(r.stderr)", file: file, line: line)
            return [:]
        }
        var byName: [String: [String: Any]] = [:]
        for entry in array {
            guard let name = entry["database"] as? String else {
                XCTFail("entry without a database: \(entry)", file: file, line: line)
                continue
            }
            XCTAssertNil(byName[name], "\(name) appears twice", file: file, line: line)
            byName[name] = entry
        }
        return byName
    }

    /// The exit status a run must have given its per-database statuses: 0, or the worst by
    /// pgsnap's documented order (1 before 2, 3, 6).
    func expectedWorst(_ entries: [String: [String: Any]]) -> Int32 {
        let statuses = Set(entries.values.compactMap { ($0["exit_status"] as? NSNumber)?.int32Value })
        for s: Int32 in [130, 64, 1, 2, 3, 6] where statuses.contains(s) { return s }
        return 0
    }

    func stderrLines(_ r: Harness.Result) -> [String] {
        r.stderr.split(separator: "\n").map(String.init)
    }

    // MARK: - backup --all-databases

    func testEveryDatabaseIsBackedUpAndOneThatRefusesTheRoleFailsByName() throws {
        let role = try makeRole()
        let a = try makeDatabase("alla", ownedBy: role), b = try makeDatabase("allb", ownedBy: role)
        let closed = try makeDatabase("allclosed")
        try Harness.psql("postgres", "REVOKE CONNECT ON DATABASE \"\(closed)\" FROM PUBLIC")
        let dir = try makeDir()
        let asRole: [String: String?] = ["PGUSER": role]

        let r = try Harness.pgsnap(["backup", "--all-databases", "--label", "nightly"], dir: dir, env: asRole)
        XCTAssertEqual(r.status, 1, "the worst status of the run is the refused database's failure: \(r.stderr)")
        // Text output: one id per database backed up, on stdout.
        let ids = r.stdout.split(separator: "\n").map(String.init)
        let idA = try XCTUnwrap(ids.first { $0.hasPrefix(a + "_") && $0.hasSuffix("_nightly") }, "no id for \(a): \(r.stdout) / \(r.stderr)")
        let idB = try XCTUnwrap(ids.first { $0.hasPrefix(b + "_") && $0.hasSuffix("_nightly") }, "no id for \(b): \(r.stdout) / \(r.stderr)")
        XCTAssertFalse(ids.contains { $0.hasPrefix(closed + "_") }, r.stdout)
        // The refused database: its own one line, naming it and the cause.
        let closedLines = stderrLines(r).filter { $0.hasPrefix("pgsnap: database \"\(closed)\": ") }
        XCTAssertEqual(closedLines.count, 1, r.stderr)
        XCTAssertTrue(closedLines.first?.contains("permission denied") ?? false, r.stderr)
        let summary = try XCTUnwrap(stderrLines(r).last)
        XCTAssertTrue(summary.hasPrefix("pgsnap: ") && summary.contains("failed") && summary.contains(closed), summary)
        for line in stderrLines(r) { XCTAssertTrue(line.hasPrefix("pgsnap: "), line) }
        XCTAssertFalse(Harness.snapshotFiles(dir).contains { $0.hasPrefix(closed + "_") }, "the failed database left files: \(Harness.snapshotFiles(dir))")

        // The snapshots taken are ordinary ones: the manifest a plain backup writes, and they verify.
        for (db, id) in [(a, idA), (b, idB)] {
            let m = try Harness.manifest(dir: dir, id: id)
            XCTAssertEqual(m["database"] as? String, db)
            XCTAssertEqual(m["label"] as? String, "nightly")
            XCTAssertEqual((m["table_rows"] as? [String: Any])?["public.items"] as? Int, 50, "\(m)")
            XCTAssertTrue(m["globals_file"] is NSNull, "no --globals, no globals file: \(String(describing: m["globals_file"]))")
            let v = try Harness.pgsnap(["verify", id], dir: dir)
            XCTAssertEqual(v.status, 0, "verify \(id): \(v.stderr)")
        }

        // The run's notification names no database, though PGDATABASE (an env file's) names one.
        let rx = try NotifyReceiver()
        defer { rx.stop() }
        var withEnvFile = asRole
        withEnvFile["PGDATABASE"] = a
        let j = try Harness.pgsnap(["backup", "--all-databases", "--json", "--notify", "json+\(rx.base)/hook"], dir: dir, env: withEnvFile)
        XCTAssertEqual(j.status, 1, j.stderr)
        let doc = try XCTUnwrap(rx.requests.compactMap(\.json).last, "no notification")
        XCTAssertEqual(doc["event"] as? String, "backup.failure")
        XCTAssertEqual(doc["exit_code"] as? Int, 1)
        XCTAssertTrue(doc["database"] is NSNull, "\(doc)")
        let entries = outcomes(j)
        XCTAssertEqual(j.status, expectedWorst(entries), "exit status is the worst entry's: \(j.stdout)")
        for db in [a, b] {
            let e = try XCTUnwrap(entries[db], "no entry for \(db): \(j.stdout)")
            let id = try XCTUnwrap(e["id"] as? String, "\(db): \(e)")
            XCTAssertTrue(id.hasPrefix(db + "_"), id)
            XCTAssertNil(e["error"], "\(e)")
            XCTAssertNil(e["exit_status"], "\(e)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: Harness.manifestPath(dir: dir, id: id)), id)
        }
        let c = try XCTUnwrap(entries[closed], "the refused database must be listed: \(j.stdout)")
        XCTAssertNil(c["id"], "\(c)")
        XCTAssertEqual((c["exit_status"] as? NSNumber)?.intValue, 1, "\(c)")
        XCTAssertTrue((c["error"] as? String)?.contains(closed) ?? false, "\(c)")
        XCTAssertTrue(stderrLines(j).contains { $0.hasPrefix("pgsnap: database \"\(closed)\": ") }, j.stderr)
        XCTAssertNil(entries["template1"], "the server's own templates are not backed up")
        XCTAssertNil(entries["template0"], "the server's own templates are not backed up")
    }

    /// A template database someone made holds their objects: a whole-server run backs it up (as
    /// pg_dumpall does), and a restore over it makes it a template again; the previous database
    /// kept aside is an ordinary one (DROP DATABASE removes it, --drop-previous too); a copy under
    /// another name is not a template. Other databases' manifests say is_template false.
    func testAUserTemplateDatabaseIsBackedUpAndRestoredAsATemplate() throws {
        let tpl = try makeDatabase("alltpl"), plain = try makeDatabase("allplain")
        try Harness.psql("postgres", "ALTER DATABASE \"\(tpl)\" IS_TEMPLATE true")
        let copy = tpl + "_copy"
        databases.append(copy)
        let dir = try makeDir()
        let r = try Harness.pgsnap(["backup", "--all-databases", "--json"], dir: dir)
        let entries = outcomes(r)
        let id = try XCTUnwrap(entries[tpl]?["id"] as? String, "the template database was not backed up: \(r.stdout) / \(r.stderr)")
        XCTAssertNil(entries["template1"], "\(r.stdout)")
        let isTemplateIn = { (id: String) in
            ((try Harness.manifest(dir: dir, id: id))["database_properties"] as? [String: Any])?["is_template"] as? Bool
        }
        XCTAssertEqual(try isTemplateIn(id), true)
        XCTAssertEqual(try isTemplateIn(try XCTUnwrap(entries[plain]?["id"] as? String)), false)

        let isTemplate = { (db: String) in try Harness.psql("postgres", "SELECT datistemplate FROM pg_database WHERE datname = '\(db)'") }
        let toCopy = try Harness.pgsnap(["restore", id, "--target", copy], dir: dir)
        XCTAssertEqual(toCopy.status, 0, toCopy.stderr)
        XCTAssertEqual(try isTemplate(copy), "f", "a copy under another name is not the template")
        XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM items"), "50")

        try Harness.psql(tpl, "DELETE FROM items WHERE id > 10")
        let over = try Harness.pgsnap(["restore", id, "-d", tpl, "--yes"], dir: dir)
        XCTAssertEqual(over.status, 0, over.stderr)
        XCTAssertEqual(try isTemplate(tpl), "t")
        XCTAssertEqual(try Harness.psql(tpl, "SELECT count(*) FROM items"), "50")
        let previous = try Harness.databases(like: tpl + "\\_pre\\_restore\\_%")
        XCTAssertEqual(previous.count, 1, "\(previous)")
        for p in previous {
            XCTAssertEqual(try isTemplate(p), "f", "the previous database kept aside must be droppable")
            XCTAssertEqual(try Harness.psql(p, "SELECT count(*) FROM items"), "10")
            try Harness.psql("postgres", "DROP DATABASE \"\(p)\"")
        }

        let again = try Harness.pgsnap(["restore", id, "-d", tpl, "--yes", "--drop-previous"], dir: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stderr.contains("could not be dropped"), again.stderr)
        XCTAssertEqual(try isTemplate(tpl), "t")
        XCTAssertEqual(try Harness.databases(like: tpl + "\\_pre\\_restore\\_%"), [], "the previous template was not dropped")
    }

    // MARK: - --globals: once per run

    /// `run-<UTC time>[-n]`: what a whole-server run's globals and record are named after.
    static func isRunName(_ s: String) -> Bool {
        s.range(of: #"^run-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$"#, options: .regularExpression) != nil
    }

    /// The files of whole-server runs in `dir`: `run-...globals.sql` and `run-...run.json`.
    static func runFiles(_ dir: String) -> Set<String> {
        Set(Harness.snapshotFiles(dir).filter { $0.hasPrefix("run-") })
    }

    static func runFiles(of run: String) -> Set<String> { [run + ".globals.sql", run + ".run.json"] }

    /// Every manifest in `dir` that names a globals file finds it there, with the checksum it records.
    func assertEveryGlobalsFileIsThere(_ dir: String, _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for name in Harness.snapshotFiles(dir) where name.hasSuffix(".manifest.json") {
            let m = try Harness.manifest(dir: dir, id: String(name.dropLast(".manifest.json".count)))
            guard let g = m["globals_file"] as? String else { continue }
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + g), "\(context): \(name) refers to \(g), which is gone", file: file, line: line)
            if let sha = m["globals_sha256"] as? String, FileManager.default.fileExists(atPath: dir + "/" + g) {
                XCTAssertEqual(try Harness.sha256sum(dir + "/" + g), sha, "\(context): \(g)", file: file, line: line)
            }
        }
    }

    func testGlobalsAreWrittenOncePerRunAndEverySnapshotOfTheRunRefersToThem() throws {
        let one = try makeDatabase("globone"), two = try makeDatabase("globtwo")
        let role = try makeRole()
        let dir = try makeDir()

        let r = try Harness.pgsnap(["backup", "--all-databases", "--globals", "--json"], dir: dir)
        let entries = outcomes(r)
        XCTAssertEqual(r.status, expectedWorst(entries), "exit status is the worst entry's: \(r.stdout) / \(r.stderr)")
        let globals = Harness.snapshotFiles(dir).filter { $0.hasSuffix(".globals.sql") }
        XCTAssertEqual(globals.count, 1, "one globals file per run, not one per database: \(globals)")
        let name = try XCTUnwrap(globals.first)
        let run = String(name.dropLast(".globals.sql".count))
        XCTAssertTrue(Self.isRunName(run), "named for the run: \(name)")
        let path = dir + "/" + name
        XCTAssertEqual(Harness.permissions(path), 0o600, path)
        XCTAssertTrue(String(decoding: try Harness.bytes(path), as: UTF8.self).contains("CREATE ROLE \(role);"), "the globals hold the roles")
        let sha = try Harness.sha256sum(path)

        // The run's record commits the globals with their own checksum and names every snapshot of the run.
        let recordPath = dir + "/" + run + ".run.json"
        XCTAssertEqual(Harness.permissions(recordPath), 0o600, recordPath)
        let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Harness.bytes(recordPath)) as? [String: Any])
        XCTAssertEqual(record["run"] as? String, run)
        XCTAssertEqual(record["globals_file"] as? String, name)
        XCTAssertEqual(record["globals_sha256"] as? String, sha)
        XCTAssertEqual((record["globals_bytes"] as? NSNumber)?.int64Value, try Harness.fileSize(path))
        let listed = Set(record["snapshots"] as? [String] ?? [])

        let ids = entries.values.compactMap { $0["id"] as? String }
        for db in [one, two] { XCTAssertNotNil(entries[db]?["id"] as? String, "no snapshot of \(db): \(r.stdout) / \(r.stderr)") }
        for id in ids {
            let m = try Harness.manifest(dir: dir, id: id)
            XCTAssertEqual(m["globals_file"] as? String, name, id)
            XCTAssertEqual(m["globals_sha256"] as? String, sha, id)
            XCTAssertEqual(m["run"] as? String, run, id)
            XCTAssertTrue(listed.contains(id), "\(id) is not in the run record: \(listed.sorted())")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/" + id + ".globals.sql"), "\(id) has a copy of its own")
        }
        XCTAssertEqual(Self.runFiles(dir), Self.runFiles(of: run))

        // verify checks the globals against the checksum every snapshot of the run carries.
        let idOne = try XCTUnwrap(entries[one]?["id"] as? String)
        XCTAssertEqual(try Harness.pgsnap(["verify", idOne], dir: dir).status, 0)
        let good = try Harness.bytes(path)
        var changed = good
        changed[changed.count / 2] ^= 0x20
        try changed.write(to: URL(fileURLWithPath: path))
        let bad = try Harness.pgsnap(["verify", idOne], dir: dir)
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("globals check failed") && bad.stderr.contains(name), bad.stderr)
        try good.write(to: URL(fileURLWithPath: path))

        // One database with --globals: as before, the file beside its snapshot, with its checksum.
        let single = try Harness.pgsnap(["backup", "-d", one, "--globals"], dir: dir)
        XCTAssertEqual(single.status, 0, single.stderr)
        let singleID = Harness.snapshotID(single)
        let m = try Harness.manifest(dir: dir, id: singleID)
        XCTAssertEqual(m["globals_file"] as? String, singleID + ".globals.sql")
        XCTAssertEqual(m["globals_sha256"] as? String, try Harness.sha256sum(dir + "/" + singleID + ".globals.sql"))
        XCTAssertTrue(m["run"] is NSNull, "\(String(describing: m["run"]))")
        XCTAssertEqual(Self.runFiles(dir), Self.runFiles(of: run), "a single-database backup writes no run files")

        // A manifest from before this change (its own globals file, no checksum, no run) keeps working:
        // verify, push, pull, and prune, which takes its globals file with it.
        var old = m
        old.removeValue(forKey: "globals_sha256")
        old.removeValue(forKey: "run")
        try Harness.writeJSON(old, to: Harness.manifestPath(dir: dir, id: singleID))
        let verifyOld = try Harness.pgsnap(["verify", singleID], dir: dir)
        XCTAssertEqual(verifyOld.status, 0, verifyOld.stderr)
        let (remote, _) = S3Harness.newRemote()
        let s3 = S3Harness.env(remote: remote)
        let push = try Harness.pgsnap(["push", singleID, "--quiet"], dir: dir, env: s3)
        XCTAssertEqual(push.status, 0, push.stderr)
        let fresh = try makeDir()
        let pull = try Harness.pgsnap(["pull", singleID, "--quiet"], dir: fresh, env: s3)
        XCTAssertEqual(pull.status, 0, pull.stderr)
        XCTAssertEqual(try Harness.bytes(fresh + "/" + singleID + ".globals.sql"), try Harness.bytes(dir + "/" + singleID + ".globals.sql"))
        let newer = try Harness.pgsnap(["backup", "-d", one, "--globals"], dir: dir)
        XCTAssertEqual(newer.status, 0, newer.stderr)
        let prune = try Harness.pgsnap(["prune", "-d", one, "--keep-days", "0", "--keep-last", "1", "--allow-empty"], dir: dir)
        XCTAssertEqual(prune.status, 0, prune.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/" + singleID + ".globals.sql"), "pruned with its snapshot")
        XCTAssertEqual(Self.runFiles(dir), Self.runFiles(of: run), "the run's globals stay: \(two)'s snapshot of the run refers to them")
        try assertEveryGlobalsFileIsThere(dir, "after pruning \(one)")
    }

    /// Roles and tablespaces whose `pg_dumpall --globals-only` passes 1 MiB (a few thousand
    /// roles with password hashes; here one role with a long comment): the roles file is whole,
    /// to pg_dumpall's last line, and verify checks the whole. It was cut at 1 MiB, silently,
    /// its checksum that of the cut bytes.
    func testGlobalsLongerThanAMebibyteAreKeptWhole() throws {
        let role = try makeRole()
        try Harness.psql("postgres", "DO $$ BEGIN EXECUTE format('COMMENT ON ROLE %I IS %L', '\(role)', repeat('r', 1500000) || ' the end'); END $$")
        let db = try makeDatabase("bigglobals")
        let dir = try makeDir()
        let r = try Harness.pgsnap(["backup", "-d", db, "--globals"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let id = Harness.snapshotID(r)
        let text = String(decoding: try Harness.bytes(dir + "/" + id + ".globals.sql"), as: UTF8.self)
        XCTAssertGreaterThan(text.utf8.count, 1_500_000)
        XCTAssertTrue(text.contains("rrrr the end'"), "the role's comment is cut")
        XCTAssertTrue(text.contains("PostgreSQL database cluster dump complete"), String(text.suffix(300)))
        let v = try Harness.pgsnap(["verify", id], dir: dir)
        XCTAssertEqual(v.status, 0, v.stderr)
    }

    /// Two runs on the second test server (it holds only what this test creates): a run's globals
    /// stay while any snapshot of the run is kept, locally and in the bucket, and go with the last
    /// one; push and pull carry them once; restoring onto a server without the owner role finds
    /// them beside the pulled snapshot.
    /// With --encrypt-to the run's globals are encrypted too, once, and named `.globals.sql.age`.
    func testEncryptedRunGlobalsAreWrittenOnceAndVerified() throws {
        let one = try makeDatabase("encglob")
        let role = try makeRole()
        let dir = try makeDir()
        let keyPath = dir + "-key.txt"
        defer { unlink(keyPath) }
        XCTAssertEqual(try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", keyPath]).status, 0)
        let recipient = try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", keyPath]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let r = try Harness.pgsnap(["backup", "--all-databases", "--globals", "--encrypt-to", recipient, "--json"], dir: dir)
        let entries = outcomes(r)
        XCTAssertEqual(r.status, expectedWorst(entries), "\(r.stdout) / \(r.stderr)")
        let globals = Harness.snapshotFiles(dir).filter { $0.contains(".globals.sql") }
        XCTAssertEqual(globals.count, 1, "\(globals)")
        let name = try XCTUnwrap(globals.first)
        XCTAssertTrue(name.hasSuffix(".globals.sql.age") && Self.isRunName(String(name.dropLast(".globals.sql.age".count))), name)
        let stored = try Harness.bytes(dir + "/" + name)
        XCTAssertTrue(stored.starts(with: Data("age-encryption.org/v1\n".utf8)), "not age-encrypted")
        XCTAssertNil(stored.range(of: Data(role.utf8)), "a role name is readable in the stored globals")
        let plain = try Harness.run(EncryptionTests.tool("age"), ["-d", "-i", keyPath, dir + "/" + name])
        XCTAssertTrue(plain.stdout.contains("CREATE ROLE \(role);"), plain.stderr)

        let id = try XCTUnwrap(entries[one]?["id"] as? String)
        XCTAssertEqual(try Harness.manifest(dir: dir, id: id)["globals_file"] as? String, name)
        let verify = try Harness.pgsnap(["verify", id, "--identity", keyPath], dir: dir)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        try assertEveryGlobalsFileIsThere(dir, "after an encrypted run")
        // A prune that removes nothing keeps the run's globals: its snapshots refer to them.
        XCTAssertEqual(try Harness.pgsnap(["prune", "--keep-days", "30"], dir: dir).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + name))
    }

    func testRunGlobalsAreKeptWhileReferredToAndTravelThroughTheBucket() throws {
        let server = LockCapacityTests.serverEnv
        func sql(_ db: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", text], env: server)
            XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let role = "runrole_\(tag)", one = "runone_\(tag)", two = "runtwo_\(tag)"
        try sql("postgres", "CREATE ROLE \(role)")
        defer {
            for db in [one, two] { _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS \(db) WITH (FORCE)"], env: server) }
            _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP ROLE IF EXISTS \(role)"], env: server)
        }
        for db in [one, two] {
            try sql("postgres", "CREATE DATABASE \(db) OWNER \(role)")
            try sql(db, "CREATE TABLE items AS SELECT i AS id FROM generate_series(1, 30) i")
        }
        let dir = try makeDir()
        func pgsnap(_ args: [String], dir: String, env extra: [String: String?] = [:]) throws -> Harness.Result {
            var e = server
            for (k, v) in extra { e[k] = v }
            return try Harness.pgsnap(args, dir: dir, env: e)
        }

        var runs: [(run: String, ids: [String: String])] = []
        for _ in 0..<2 {
            let r = try pgsnap(["backup", "--all-databases", "--globals", "--json"], dir: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            let ids = outcomes(r).compactMapValues { $0["id"] as? String }
            let run = try XCTUnwrap(try Harness.manifest(dir: dir, id: try XCTUnwrap(ids[one]))["run"] as? String)
            runs.append((run, ids))
        }
        let (first, second) = (runs[0], runs[1])
        XCTAssertNotEqual(first.run, second.run)
        XCTAssertEqual(Self.runFiles(dir), Self.runFiles(of: first.run).union(Self.runFiles(of: second.run)))

        // The bucket gets each run's globals and record once.
        let (remote, prefix) = S3Harness.newRemote()
        let s3 = S3Harness.env(remote: remote)
        let push = try pgsnap(["push", "--all", "--json"], dir: dir, env: s3)
        XCTAssertEqual(push.status, 0, push.stderr)
        // Each run's globals are sent with one of its snapshots only.
        let sent = Dictionary(((try? JSONSerialization.jsonObject(with: Data(push.stdout.utf8))) as? [[String: Any]] ?? [])
            .compactMap { r in (r["id"] as? String).map { ($0, (r["bytes"] as? NSNumber)?.int64Value ?? -1) } }, uniquingKeysWith: { a, _ in a })
        for r in runs {
            let globals = try Harness.fileSize(dir + "/" + r.run + ".globals.sql")
            var withGlobals = 0
            for id in r.ids.values {
                let dump = try XCTUnwrap((try Harness.manifest(dir: dir, id: id)["compressed_bytes"] as? NSNumber)?.int64Value)
                let bytes = try XCTUnwrap(sent[id], "\(id) not pushed: \(push.stdout)")
                XCTAssertTrue(bytes == dump || bytes == dump + globals, "\(id): sent \(bytes), dump \(dump), globals \(globals)")
                if bytes == dump + globals { withGlobals += 1 }
            }
            XCTAssertEqual(withGlobals, 1, "\(r.run): its globals were sent \(withGlobals) times: \(push.stdout)")
        }
        func remoteRunFiles() throws -> Set<String> {
            Set(try S3Harness.objects(prefix).keys.map { String($0.dropFirst(prefix.count + 1)) }.filter { $0.hasSuffix(".globals.sql") || $0.hasSuffix(".run.json") })
        }
        XCTAssertEqual(try remoteRunFiles(), Self.runFiles(of: first.run).union(Self.runFiles(of: second.run)))
        // verify --remote checks them too: a changed byte in the bucket's copy is named.
        let verified = try pgsnap(["verify", "--remote", first.ids[two]!], dir: dir, env: s3)
        XCTAssertEqual(verified.status, 0, verified.stderr)
        let globalsKey = prefix + "/" + first.run + ".globals.sql"
        _ = try S3Harness.boto(["flip", S3Harness.bucket, globalsKey, "3"])
        let flipped = try pgsnap(["verify", "--remote", first.ids[two]!], dir: dir, env: s3)
        XCTAssertEqual(flipped.status, 2, flipped.stderr)
        XCTAssertTrue(flipped.stderr.contains("globals check failed") && flipped.stderr.contains(first.run + ".globals.sql"), flipped.stderr)
        _ = try S3Harness.boto(["flip", S3Harness.bucket, globalsKey, "3"])

        // Local retention: pruning one database leaves the first run's globals, which other snapshots of it refer to.
        let policy = ["--keep-days", "0", "--keep-last", "1", "--allow-empty", "--json"]
        let pruneOne = try pgsnap(["prune", "-d", one] + policy, dir: dir)
        XCTAssertEqual(pruneOne.status, 0, pruneOne.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Harness.manifestPath(dir: dir, id: first.ids[one]!)), "the old snapshot of \(one) is pruned")
        XCTAssertEqual(Self.runFiles(dir), Self.runFiles(of: first.run).union(Self.runFiles(of: second.run)), "kept: \(two)'s first snapshot refers to them")
        let kept = try XCTUnwrap(runDecisions(pruneOne)[first.run])
        XCTAssertEqual(kept["action"] as? String, "keep", "\(kept)")
        XCTAssertTrue((kept["reasons"] as? [String] ?? []).joined().contains(first.ids[two]!), "the reason names a snapshot that refers to it: \(kept)")
        try assertEveryGlobalsFileIsThere(dir, "after pruning \(one)")

        // Every snapshot of the first run pruned: its globals and record go with the last one.
        let pruneAll = try pgsnap(["prune"] + policy, dir: dir)
        XCTAssertEqual(pruneAll.status, 0, pruneAll.stderr)
        XCTAssertEqual(Self.runFiles(dir), Self.runFiles(of: second.run), pruneAll.stdout)
        XCTAssertEqual(runDecisions(pruneAll)[first.run]?["action"] as? String, "remove", pruneAll.stdout)
        try assertEveryGlobalsFileIsThere(dir, "after pruning everything")

        // A new server without the owner role: restore --remote of a snapshot of the first run (not the
        // one that wrote its globals) names the run's globals, pulled beside it, to create the role.
        for db in [one, two] { try sql("postgres", "DROP DATABASE \(db) WITH (FORCE)") }
        try sql("postgres", "DROP ROLE \(role)")
        let fresh = try makeDir()
        let refused = try pgsnap(["restore", first.ids[two]!, "-d", two, "--remote"], dir: fresh, env: s3)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        let globalsPath = fresh + "/" + first.run + ".globals.sql"
        XCTAssertTrue(refused.stderr.contains("\"\(role)\" does not exist") && refused.stderr.contains("psql -X -f \(globalsPath)"), refused.stderr)
        let pulled = try Harness.manifest(dir: fresh, id: first.ids[two]!)
        XCTAssertEqual(try Harness.sha256sum(globalsPath), pulled["globals_sha256"] as? String)
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh + "/" + first.run + ".run.json"), "pull carries the run record")
        let roleLines = String(decoding: try Harness.bytes(globalsPath), as: UTF8.self).split(separator: "\n").filter { $0.contains(" \(role) ") || $0.hasSuffix(" \(role);") }
        XCTAssertFalse(roleLines.isEmpty, "the run's globals define \(role)")
        try sql("postgres", roleLines.joined(separator: "\n"))
        let restored = try pgsnap(["restore", first.ids[two]!, "-d", two], dir: fresh)
        XCTAssertEqual(restored.status, 0, restored.stderr)

        // Remote retention: the same rule in the bucket.
        let remoteOne = try pgsnap(["prune", "--remote", "-d", one] + policy, dir: try makeDir(), env: s3)
        XCTAssertEqual(remoteOne.status, 0, remoteOne.stderr)
        XCTAssertEqual(try remoteRunFiles(), Self.runFiles(of: first.run).union(Self.runFiles(of: second.run)), remoteOne.stdout)
        let remoteAll = try pgsnap(["prune", "--remote"] + policy, dir: try makeDir(), env: s3)
        XCTAssertEqual(remoteAll.status, 0, remoteAll.stderr)
        XCTAssertEqual(try remoteRunFiles(), Self.runFiles(of: second.run), remoteAll.stdout)
    }

    /// `prune --json`'s `runs`: the decision on each run's globals, by run.
    func runDecisions(_ r: Harness.Result, file: StaticString = #filePath, line: UInt = #line) -> [String: [String: Any]] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any],
              let runs = object["runs"] as? [[String: Any]]
        else {
            XCTFail("prune --json printed no runs: \(r.stdout) / \(r.stderr)", file: file, line: line)
            return [:]
        }
        return Dictionary(runs.compactMap { d in (d["run"] as? String).map { ($0, d) } }, uniquingKeysWith: { a, _ in a })
    }

    /// kill -9 in the middle of a run: whatever it committed refers only to globals that are there,
    /// with their checksum, and prune keeps them.
    func testKill9MidRunLeavesNoSnapshotReferringToMissingGlobals() throws {
        _ = try makeDatabase("killa")
        _ = try makeDatabase("killb")
        let dir = try makeDir()
        var killed = false
        let r = try Harness.pgsnap(["backup", "--all-databases", "--globals", "--quiet"], dir: dir) { pid in
            let committed = Harness.poll(timeout: 60) {
                !Procfs.isAlive(pid) || Harness.snapshotFiles(dir).contains { $0.hasSuffix(".manifest.json") }
            }
            if committed, Procfs.isAlive(pid), kill(pid, SIGKILL) == 0 { killed = true }
        }
        XCTAssertTrue(killed, "the run ended before a kill could land: \(r.stderr)")
        XCTAssertEqual(r.status, SIGKILL, "pgsnap should have died of SIGKILL: \(r.stderr)")
        try assertEveryGlobalsFileIsThere(dir, "after kill -9")
        let prune = try Harness.pgsnap(["prune", "--quiet"], dir: dir)
        XCTAssertEqual(prune.status, 0, prune.stderr)
        try assertEveryGlobalsFileIsThere(dir, "after kill -9 and prune")
        XCTAssertEqual(Self.runFiles(dir).filter { $0.hasSuffix(".globals.sql") }.count, 1, "\(Harness.snapshotFiles(dir))")
    }

    func testPushCopiesEachSnapshotAndADeadRemoteIsExit6PerDatabase() throws {
        let one = try makeDatabase("pushone"), two = try makeDatabase("pushtwo")
        let dir = try makeDir()
        let (remote, prefix) = S3Harness.newRemote()
        let r = try Harness.pgsnap(["backup", "--all-databases", "--push", "--json"], dir: dir, env: S3Harness.env(remote: remote))
        let entries = outcomes(r)
        XCTAssertEqual(r.status, expectedWorst(entries), "\(r.stdout) / \(r.stderr)")
        let objects = try S3Harness.objects(prefix)
        for db in [one, two] {
            let id = try XCTUnwrap(entries[db]?["id"] as? String, "no snapshot of \(db): \(r.stdout) / \(r.stderr)")
            XCTAssertNil(entries[db]?["error"], "\(entries[db] ?? [:])")
            XCTAssertNotNil(objects[prefix + "/" + id + ".manifest.json"], "\(id) not pushed: \(objects.keys.sorted())")
        }
        // The bucket now has a fresh snapshot of each of them.
        let remoteCheck = try Harness.pgsnap(["check", "--all-databases", "--remote", "--json"], dir: dir, env: S3Harness.env(remote: remote))
        for db in [one, two] { XCTAssertFalse(remoteCheck.stderr.contains("database \"\(db)\""), remoteCheck.stderr) }

        // The remote down: every snapshot is still taken and good; each database says exit 6.
        var dead = S3Harness.env(remote: remote, endpoint: S3Harness.deadEndpoint())
        dead["PGSNAP_S3_ATTEMPTS"] = "1"
        let d = try Harness.pgsnap(["backup", "--all-databases", "--push", "--json"], dir: dir, env: dead)
        let down = outcomes(d)
        XCTAssertEqual(d.status, expectedWorst(down), "\(d.stdout) / \(d.stderr)")
        XCTAssertNotEqual(d.status, 0, d.stderr)
        for db in [one, two] {
            let e = try XCTUnwrap(down[db], d.stdout)
            let id = try XCTUnwrap(e["id"] as? String, "the local snapshot is kept and named: \(e)")
            XCTAssertEqual((e["exit_status"] as? NSNumber)?.intValue, 6, "\(e)")
            XCTAssertTrue((e["error"] as? String)?.contains("pgsnap push \(id)") ?? false, "\(e)")
            let v = try Harness.pgsnap(["verify", id], dir: dir)
            XCTAssertEqual(v.status, 0, v.stderr)
        }
        // The last line, the one a cron mail shows first, does not read as "nothing backed up".
        let last = d.stderr.split(separator: "\n").last.map(String.init) ?? ""
        if down.values.allSatisfy({ $0["id"] != nil }) {
            XCTAssertTrue(last.contains("database(s) were backed up, but a later step (prune, offsite copy) failed"), last)
        } else {
            XCTAssertTrue(last.contains("backed up, a later step failed"), last)
        }
    }

    // MARK: - check --all-databases

    func testCheckNamesADatabaseWithoutSnapshotAndAStaleOne() throws {
        let backedUp = try makeDatabase("chkfresh")
        let dir = try makeDir()
        let b = try Harness.pgsnap(["backup", "--all-databases", "--json"], dir: dir)
        let entries = outcomes(b)
        XCTAssertEqual(b.status, expectedWorst(entries), b.stderr)
        let id = try XCTUnwrap(entries[backedUp]?["id"] as? String, "no snapshot of \(backedUp): \(b.stdout) / \(b.stderr)")
        let failedBackups = Set(entries.filter { $0.value["error"] != nil }.keys)

        // Every database that was backed up is healthy; only ones that failed to back up may be reported.
        let fresh = try Harness.pgsnap(["check", "--all-databases", "--max-age", "26h", "--json"], dir: dir)
        XCTAssertEqual(fresh.status, failedBackups.isEmpty ? 0 : 2, fresh.stderr)
        for line in stderrLines(fresh) where line.contains("database \"") {
            XCTAssertTrue(failedBackups.contains { line.contains("database \"\($0)\"") }, "a backed-up database is reported: \(line)")
        }
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(fresh.stdout.utf8)) as? [String: Any])
        let checked = (report["databases"] as? [[String: Any]] ?? []).compactMap { $0["database"] as? String }
        XCTAssertTrue(checked.contains(backedUp), "\(checked)")
        XCTAssertFalse(checked.contains("template1"), "\(checked)")

        // A database created after the nightly run: missing, by name, though the directory never saw it.
        let newcomer = try makeDatabase("chknew")
        let missing = try Harness.pgsnap(["check", "--all-databases", "--max-age", "26h"], dir: dir)
        XCTAssertEqual(missing.status, 2, missing.stderr)
        XCTAssertEqual(missing.stdout, "")
        let newLines = stderrLines(missing).filter { $0.contains("database \"\(newcomer)\"") }
        XCTAssertEqual(newLines, ["pgsnap: database \"\(newcomer)\": no good snapshot in \(dir)"], missing.stderr)
        XCTAssertFalse(missing.stderr.contains("database \"\(backedUp)\""), missing.stderr)
        for line in stderrLines(missing) { XCTAssertTrue(line.hasPrefix("pgsnap: "), line) }
        // Without --all-databases the directory alone cannot know it.
        let plain = try Harness.pgsnap(["check", "--max-age", "26h"], dir: dir)
        XCTAssertFalse(plain.stderr.contains(newcomer), plain.stderr)

        // Three days later the snapshot taken is stale, by name; -d may give the connection as a string.
        let later = ["PGSNAP_NOW": ISO8601DateFormatter().string(from: Date().addingTimeInterval(3 * 86400))]
        let stale = try Harness.pgsnap(["check", "--all-databases", "-d", "dbname=postgres", "--max-age", "26h"], dir: dir, env: later)
        XCTAssertEqual(stale.status, 2, stale.stderr)
        let staleLine = try XCTUnwrap(stderrLines(stale).first { $0.contains("database \"\(backedUp)\"") }, stale.stderr)
        XCTAssertTrue(staleLine.contains(id) && staleLine.contains("old"), staleLine)
    }

    // MARK: - bad input

    func testAllDatabasesWithOneDatabaseNamedIsAUsageError() throws {
        let parent = try makeDir()
        let dir = parent + "/snapshots"
        for args in [["backup", "--all-databases", "-d", "app"], ["backup", "--all-databases", "--dbname", "postgres", "--globals"],
                     ["check", "--all-databases", "-d", "app"], ["check", "--all-databases", "--database", "app"]] {
            let r = try Harness.pgsnap(args, dir: dir)
            Harness.assertOneErrorLine(r, status: 64, "\(args)")
            XCTAssertTrue(r.stderr.contains("--all-databases") && r.stderr.contains("connection string"), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(args)")
        }
        XCTAssertEqual(Harness.entries(parent), [], "a usage error wrote something")

        // A server that cannot be reached: the run cannot start, one line says so.
        let r = try Harness.pgsnap(["backup", "--all-databases", "-d", "host=/nonexistent-socket-dir"], dir: dir)
        Harness.assertOneErrorLine(r, status: 1, "unreachable server")
        XCTAssertTrue(r.stderr.contains("cannot list the server's databases"), r.stderr)
        XCTAssertEqual(Harness.entries(parent), [], "nothing is written when the list cannot be read")
    }
}
