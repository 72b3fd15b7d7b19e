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

        let j = try Harness.pgsnap(["backup", "--all-databases", "--json"], dir: dir, env: asRole)
        XCTAssertEqual(j.status, 1, j.stderr)
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
        XCTAssertNil(entries["template1"], "templates are not backed up")
        XCTAssertNil(entries["template0"], "templates are not backed up")
    }

    func testGlobalsAreSavedBesideEverySnapshotAlike() throws {
        let one = try makeDatabase("globone"), two = try makeDatabase("globtwo")
        let role = try makeRole()
        let dir = try makeDir()

        let r = try Harness.pgsnap(["backup", "--all-databases", "--globals", "--json"], dir: dir)
        let entries = outcomes(r)
        XCTAssertEqual(r.status, expectedWorst(entries), "exit status is the worst entry's: \(r.stdout) / \(r.stderr)")
        var texts: [Data] = []
        for db in [one, two] {
            let id = try XCTUnwrap(entries[db]?["id"] as? String, "no snapshot of \(db): \(r.stdout) / \(r.stderr)")
            XCTAssertNil(entries[db]?["error"])
            let m = try Harness.manifest(dir: dir, id: id)
            let name = try XCTUnwrap(m["globals_file"] as? String, "\(id): no globals_file in the manifest")
            XCTAssertEqual(name, id + ".globals.sql")
            let path = dir + "/" + name
            XCTAssertEqual(Harness.permissions(path), 0o600, path)
            texts.append(try Harness.bytes(path))
        }
        XCTAssertEqual(texts[0], texts[1], "one pg_dumpall run: every snapshot carries the same globals")
        XCTAssertTrue(String(decoding: texts[0], as: UTF8.self).contains("CREATE ROLE \(role);"), "the globals hold the roles")
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
