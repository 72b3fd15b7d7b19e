import Foundation
import XCTest

/// `pgsnap preflight`, `guard` and `diff` end to end on the demo schema (schema_migrations at 44):
/// each preflight check failing on its own, guard's exit statuses 0/2/4/5 with what each promises
/// about the database, and diff's counts after a migration.
final class MigrationStepTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
    }

    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
    }

    // MARK: - Helpers

    var psqlPath: String { Harness.pgbin + "/psql" }

    /// A fresh database loaded with scripts/demo-data/schema.sql, dropped at tear-down.
    func demoDatabase(_ prefix: String = "mig") throws -> String {
        let db = try fixture.database(prefix)
        try Harness.psqlFile(db, Harness.repo + "/scripts/demo-data/schema.sql")
        XCTAssertEqual(try Harness.psql(db, "SELECT version || ' ' || dirty FROM schema_migrations"), "44 false")
        return db
    }

    /// The migration command guard runs: psql on `db` with one `-c` per statement group.
    func psqlCommand(_ db: String, _ commands: String...) -> [String] {
        [psqlPath, "-X", "-v", "ON_ERROR_STOP=1", "-d", db] + commands.flatMap { ["-c", $0] }
    }

    /// `preflight --json`: the checks that did not pass, by name.
    func failedChecks(_ r: Harness.Result, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        preflightChecks(r, file: file, line: line).filter { ($0["ok"] as? Bool) != true }.compactMap { $0["name"] as? String }
    }

    func preflightChecks(_ r: Harness.Result, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        guard let array = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]] else {
            XCTFail("preflight --json did not print a JSON array: \(r.stdout) / \(r.stderr)", file: file, line: line)
            return []
        }
        return array
    }

    /// Runs preflight twice (human and --json) and asserts that exactly `check` fails: exit 2, named on stderr.
    func assertOnlyFailing(_ check: String, _ db: String, _ extra: [String] = [], env: [String: String?] = [:],
                           file: StaticString = #filePath, line: UInt = #line) throws -> Harness.Result {
        let human = try fixture.pgsnap(["preflight", "-d", db] + extra, env: env)
        XCTAssertEqual(human.status, 2, "preflight \(extra): \(human.stderr)", file: file, line: line)
        XCTAssertTrue(human.stderr.contains("pgsnap: FAIL \(check)"), "no FAIL line for \(check): \(human.stderr)", file: file, line: line)
        XCTAssertTrue(human.stderr.contains("pgsnap: preflight failed: \(check)."), "final line must name \(check): \(human.stderr)",
                      file: file, line: line)
        let json = try fixture.pgsnap(["preflight", "-d", db, "--json"] + extra, env: env)
        XCTAssertEqual(json.status, 2, json.stderr, file: file, line: line)
        XCTAssertEqual(failedChecks(json, file: file, line: line), [check], file: file, line: line)
        return human
    }

    /// Ids of the snapshots (manifests) in the fixture's directory.
    func snapshotIDs() -> [String] {
        Harness.entries(fixture.dir).filter { $0.hasSuffix(".manifest.json") }.map { String($0.dropLast(".manifest.json".count)) }
    }

    /// `to_regclass(name)` in `db`: the name when the table exists, "" when it does not.
    func regclass(_ db: String, _ name: String) throws -> String {
        try Harness.psql(db, "SELECT to_regclass('\(name)')")
    }

    /// The `pgsnap restore …` command in guard's stderr, split into words.
    ///
    /// Only what `shellQuote` produces is understood: bare words, single-quoted words and `\'`;
    /// anything else a shell would interpret fails the test rather than being guessed at.
    static func restoreCommand(in stderr: String, file: StaticString = #filePath, line: UInt = #line) -> [String]? {
        guard let start = stderr.range(of: "pgsnap restore ") else {
            XCTFail("no 'pgsnap restore' command on stderr: \(stderr)", file: file, line: line)
            return nil
        }
        let text = stderr[start.lowerBound...].prefix { $0 != "\n" }
        var words: [String] = []
        var word: String?
        var quoted = false
        var escaped = false
        for ch in text {
            if quoted {
                if ch == "'" { quoted = false } else { word!.append(ch) }
            } else if escaped {
                word = (word ?? "") + String(ch)
                escaped = false
            } else if ch == " " {
                if let w = word { words.append(w) }
                word = nil
            } else if ch == "'" {
                quoted = true
                word = word ?? ""
            } else if ch == "\\" {
                escaped = true
            } else if "\"$`;&|<>()*?[]{}~#!".contains(ch) {
                XCTFail("unexpected shell syntax '\(ch)' in: \(text)", file: file, line: line)
                return nil
            } else {
                word = (word ?? "") + String(ch)
            }
        }
        XCTAssertFalse(quoted || escaped, "unterminated quoting in: \(text)", file: file, line: line)
        if let w = word { words.append(w) }
        return words
    }

    // MARK: - preflight

    func testPreflightPassesOnACleanDatabase() throws {
        let db = try demoDatabase()
        let r = try fixture.pgsnap(["preflight", "-d", db])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("FAIL"), r.stderr)
        for name in ["connection", "pg_dump", "psql", "schema_migrations", "connections", "backup_directory", "disk_space", "lock"] {
            XCTAssertTrue(r.stderr.contains("ok   \(name) "), "check \(name) not reported ok: \(r.stderr)")
        }
        XCTAssertTrue(r.stderr.contains("version 44"), r.stderr)
    }

    func testPreflightJSONIsAnArrayOfNameOkValue() throws {
        let db = try demoDatabase()
        let r = try fixture.pgsnap(["preflight", "-d", db, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let checks = preflightChecks(r)
        XCTAssertEqual(checks.compactMap { $0["name"] as? String },
                       ["connection", "pg_dump", "psql", "pg_restore", "schema_migrations", "connections", "backup_directory", "disk_space", "lock"])
        for c in checks {
            XCTAssertEqual(c["ok"] as? Bool, true, "\(c)")
            XCTAssertFalse((c["value"] as? String ?? "").isEmpty, "value missing: \(c)")
        }
        let migration = checks.first { $0["name"] as? String == "schema_migrations" }
        XCTAssertEqual(migration?["value"] as? String, "version 44")
        let connection = checks.first { $0["name"] as? String == "connection" }
        XCTAssertTrue((connection?["value"] as? String ?? "").contains("database \"\(db)\""), "\(String(describing: connection))")
    }

    func testPreflightFailsWhenAnOlderMigrationIsRequired() throws {
        let db = try demoDatabase()
        XCTAssertEqual(try fixture.pgsnap(["preflight", "-d", db, "--require-migration", "44"]).status, 0)
        let r = try assertOnlyFailing("schema_migrations", db, ["--require-migration", "45"])
        XCTAssertTrue(r.stderr.contains("version 44 is older than the required 45"), r.stderr)
    }

    func testPreflightFailsOnADirtyMigrationUnlessAllowed() throws {
        let db = try demoDatabase()
        try Harness.psql(db, "UPDATE schema_migrations SET dirty = true")
        let r = try assertOnlyFailing("schema_migrations", db)
        XCTAssertTrue(r.stderr.contains("dirty"), r.stderr)
        let allowed = try fixture.pgsnap(["preflight", "-d", db, "--allow-dirty"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
    }

    /// The migration tool keeps its table in a schema of its own (its search_path, migrate's
    /// x-migrations-table): preflight finds the only one there is, dirty or not.
    func testPreflightFindsTheMigrationTableOutsideTheSearchPath() throws {
        let db = try demoDatabase()
        try Harness.psql(db, "CREATE SCHEMA \"Mig\"; ALTER TABLE schema_migrations SET SCHEMA \"Mig\"; UPDATE \"Mig\".schema_migrations SET dirty = true")
        let r = try assertOnlyFailing("schema_migrations", db)
        XCTAssertTrue(r.stderr.contains("dirty at 44"), r.stderr)
        try Harness.psql(db, "UPDATE \"Mig\".schema_migrations SET dirty = false")
        let ok = try fixture.pgsnap(["preflight", "-d", db, "--require-migration", "44", "--json"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("version 44"), ok.stdout)

        // A second service's table in another schema, neither on the search path: which one the
        // tool uses is not known, so preflight fails the check and guard runs nothing (it said
        // "no migration table", ok, and guard ran on past a dirty one). The search path decides.
        try Harness.psql(db, "CREATE SCHEMA billing; CREATE TABLE billing.schema_migrations (version bigint NOT NULL, dirty boolean NOT NULL); INSERT INTO billing.schema_migrations VALUES (7, true)")
        let two = try assertOnlyFailing("schema_migrations", db)
        XCTAssertTrue(two.stderr.contains("2 tables, none on the search path") && two.stderr.contains("\"Mig\".schema_migrations, billing.schema_migrations"), two.stderr)
        let g = try fixture.pgsnap(["guard", "-d", db, "--quiet", "--"] + psqlCommand(db, "CREATE TABLE guard_marker(x int)"))
        Harness.assertOneErrorLine(g, status: 2, "guard with two migration tables")
        XCTAssertEqual(try regclass(db, "public.guard_marker"), "")
        let chosen = try fixture.pgsnap(["preflight", "-d", db, "--json"], env: ["PGOPTIONS": "-c search_path=\"Mig\""])
        XCTAssertEqual(chosen.status, 0, chosen.stderr)
        XCTAssertTrue(chosen.stdout.contains("version 44"), chosen.stdout)
    }

    func testPreflightFailsWhileAnotherSessionIsConnected() throws {
        let db = try demoDatabase()
        let held = try HeldSession(database: db, applicationName: "held_open")
        defer { held.close() }
        XCTAssertTrue(try held.waitUntilConnected(), "the held_open session never showed up in pg_stat_activity")
        let r = try assertOnlyFailing("connections", db)
        XCTAssertTrue(r.stderr.contains("application=held_open"), "the session must be named: \(r.stderr)")
        let allowed = try fixture.pgsnap(["preflight", "-d", db, "--max-connections", "1"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        XCTAssertTrue(allowed.stderr.contains("1 other session(s), max 1"), allowed.stderr)
    }

    func testPreflightFailsWhenTheDiskIsFull() throws {
        let db = try demoDatabase()
        let r = try assertOnlyFailing("disk_space", db, env: ["PGSNAP_TEST_FREE_BYTES": "1000"])
        XCTAssertTrue(r.stderr.contains("pgsnap prune"), "must say what to do next: \(r.stderr)")
    }

    /// backup makes the directory but not its parents: preflight says so, before guard would fail.
    func testPreflightFailsWhenTheDirectorysParentIsMissing() throws {
        let db = try demoDatabase()
        let deeper = fixture.dir + "/missing/deeper"
        let r = try assertOnlyFailing("backup_directory", db, ["--dir", deeper])
        XCTAssertTrue(r.stderr.contains("\(fixture.dir)/missing does not exist"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.dir + "/missing"))
        let ok = try fixture.pgsnap(["preflight", "-d", db, "--dir", fixture.dir + "/new"])
        XCTAssertEqual(ok.status, 0, "a directory backup will make, under one that exists: \(ok.stderr)")
        // One every command would refuse (others may write there) fails the same check.
        let open = fixture.dir + "/open"
        XCTAssertEqual(mkdir(open, 0o700), 0)
        XCTAssertEqual(chmod(open, 0o777), 0)
        let refused = try assertOnlyFailing("backup_directory", db, ["--dir", open])
        XCTAssertTrue(refused.stderr.contains("writable by every user"), refused.stderr)
    }

    /// pgsnap looks beyond PATH (/usr/lib/postgresql/<server major>/bin first), so an empty PATH
    /// does not lose pg_dump: preflight passes and reports where it found it.
    func testPreflightReportsWherePgDumpWasFoundWithoutPATH() throws {
        let db = try demoDatabase()
        let major = (Int(try Harness.psql(db, "SHOW server_version_num")) ?? 0) / 10000
        let r = try fixture.pgsnap(["preflight", "-d", db, "--json"], env: ["PATH": "/nonexistent"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let checks = preflightChecks(r)
        for tool in ["pg_dump", "psql"] {
            let c = checks.first { $0["name"] as? String == tool }
            XCTAssertEqual(c?["ok"] as? Bool, true, "\(String(describing: c))")
            let value = c?["value"] as? String ?? ""
            // "15.18 at /usr/lib/postgresql/15/bin/pg_dump (the Debian/PGDG layout for the server's major 15)"
            let path = value.components(separatedBy: " at ").last?.components(separatedBy: " (").first ?? ""
            XCTAssertEqual(path, "/usr/lib/postgresql/\(major)/bin/\(tool)", "value: \(value)")
            XCTAssertTrue(value.hasSuffix("(the Debian/PGDG layout for the server's major \(major))"), "value must say why: \(value)")
            XCTAssertEqual(access(path, X_OK), 0, "reported \(path) is not executable")
        }
    }

    // MARK: - guard

    func testGuardRecordsTheNewVersionWhenTheCommandSucceeds() throws {
        let db = try demoDatabase()
        let r = try fixture.pgsnap(["guard", "-d", db, "--"] + psqlCommand(db, "UPDATE schema_migrations SET version=45; CREATE TABLE t45(x int)"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try regclass(db, "public.t45"), "t45", "the command did not run")
        let ids = snapshotIDs()
        XCTAssertEqual(ids.count, 1, "\(Harness.entries(fixture.dir))")
        guard let id = ids.first else { return }
        XCTAssertTrue(id.hasPrefix(db + "_") && id.hasSuffix("_pre_migration_000045"), id)
        let m = try Harness.manifest(dir: fixture.dir, id: id)
        XCTAssertEqual(m["label"] as? String, "pre_migration_000045")
        let before = m["migration"] as? [String: Any], after = m["migration_after"] as? [String: Any]
        XCTAssertEqual(before?["version"] as? Int, 44, "\(m)")
        XCTAssertEqual(before?["dirty"] as? Bool, false)
        XCTAssertEqual(after?["version"] as? Int, 45, "\(m)")
        XCTAssertEqual(after?["dirty"] as? Bool, false)
        // The snapshot is the state before the command: the migration's table is not in it.
        XCTAssertNil((m["table_rows"] as? [String: Any])?["public.t45"])
        let list = try fixture.pgsnap(["list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let row = list.stdout.split(separator: "\n").first { $0.hasPrefix(id) } ?? ""
        XCTAssertTrue(row.contains("44 -> 45"), "list: \(list.stdout)")
        XCTAssertEqual(try fixture.pgsnap(["verify", id]).status, 0, "rewriting the manifest must keep the snapshot good")
    }

    func testGuardAutoRestoresWhenTheCommandFails() throws {
        let db = try demoDatabase()
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["guard", "-d", db, "--auto-restore", "--"]
                                   + psqlCommand(db, "DROP TABLE generated_domains CASCADE", "SELECT 1/0"))
        XCTAssertEqual(r.status, 4, r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "the database must be exactly as before guard")
        let previous = try RestoreFixture.previousDatabases(of: db)
        XCTAssertEqual(previous.count, 1, "\(previous)")
        if let p = previous.first {
            XCTAssertTrue(r.stderr.contains(p), "stderr must name the kept failed state \(p): \(r.stderr)")
            XCTAssertEqual(try regclass(p, "public.generated_domains"), "", "the failed state has the table dropped")
            XCTAssertEqual(try Harness.psql(p, "SELECT count(*) FROM campaigns"), "5")
        }
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    func testGuardWithoutAutoRestoreLeavesTheDatabaseAndPrintsARestoreCommand() throws {
        let db = try demoDatabase()
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["guard", "-d", db, "--"] + psqlCommand(db, "DROP TABLE generated_domains CASCADE", "SELECT 1/0"))
        XCTAssertEqual(r.status, 5, r.stderr)
        XCTAssertEqual(try regclass(db, "public.generated_domains"), "", "pgsnap must leave the command's result alone")
        XCTAssertNotEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "nothing may have been restored")

        guard let argv = Self.restoreCommand(in: r.stderr) else { return }
        XCTAssertEqual(Array(argv.prefix(2)), ["pgsnap", "restore"])
        XCTAssertEqual(argv.count > 2 ? argv[2] : nil, snapshotIDs().first, "the command must name the new snapshot")
        let restore = try Harness.run(Harness.binary, Array(argv.dropFirst()))
        XCTAssertEqual(restore.status, 0, "\(argv): \(restore.stderr)")
        XCTAssertEqual(try Harness.fingerprint(db), before, "the printed command must restore the pre-guard state")
    }

    /// -d with a password inside (a URI): the printed command leaves the password out, not masked
    /// (a masked one was sent literally and failed), and runs as printed with PGPASSWORD.
    func testGuardsRestoreCommandRunsAsPrintedWhenTheConnectionHadAPassword() throws {
        let db = try demoDatabase()
        let role = fixture.role("mig_pw")
        let password = "Ri@ght:P/ss 1%"
        try Harness.psql("postgres", "CREATE ROLE \(role) LOGIN SUPERUSER PASSWORD '\(password)'")
        let before = try Harness.fingerprint(db)
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let uri = "postgres://\(role):\(encoded)@127.0.0.1:\(Harness.tcpPort)/\(db)"
        let r = try fixture.pgsnap(["guard", "-d", uri, "--"] + psqlCommand(db, "DROP TABLE generated_domains CASCADE", "SELECT 1/0"),
                                   env: ["PGPASSWORD": nil])
        XCTAssertEqual(r.status, 5, r.stderr)
        XCTAssertFalse(r.stderr.contains(password) || r.stderr.contains(encoded), "the password was printed: \(r.stderr)")
        guard let argv = Self.restoreCommand(in: r.stderr) else { return }
        XCTAssertFalse(argv.joined(separator: " ").contains("****"), "a masked password in the command: \(argv)")
        let restore = try Harness.run(Harness.binary, Array(argv.dropFirst()), env: ["PGPASSWORD": password, "PGHOST": nil, "PGPORT": nil, "PGUSER": nil])
        XCTAssertEqual(restore.status, 0, "\(argv): \(restore.stderr)")
        XCTAssertEqual(try Harness.fingerprint(db), before, "the printed command must restore the pre-guard state")
    }

    /// The migration command's own URL holds the password (migrate -database "$DATABASE_URL"):
    /// guard's "running: ..." line masks it; --json prints the outcome on exit 5 too.
    func testGuardMasksThePasswordInTheCommandAndPrintsJSONWhenItFails() throws {
        let db = try demoDatabase()
        let secret = "Mig-S3cret-\(UUID().uuidString.prefix(6))"
        let url = "pgx5://migrator:\(secret)@127.0.0.1:\(Harness.tcpPort)/\(db)?sslmode=disable"
        let command = ["/bin/sh", "-c", "exit 3", "migrate", "-database", url, "up"]
        let human = try fixture.pgsnap(["guard", "-d", db, "--"] + command)
        XCTAssertEqual(human.status, 5, human.stderr)
        XCTAssertTrue(human.stderr.contains("running: /bin/sh"), human.stderr)
        XCTAssertTrue(human.stderr.contains("pgx5://migrator:********@"), human.stderr)
        XCTAssertFalse(human.stderr.contains(secret), "the command's password was printed: \(human.stderr)")
        let r = try fixture.pgsnap(["guard", "-d", db, "--json", "--"] + command)
        XCTAssertEqual(r.status, 5, r.stderr)
        XCTAssertFalse(r.stdout.contains(secret) || r.stderr.contains(secret), r.stdout + r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "stdout: \(r.stdout)")
        XCTAssertEqual(doc["ok"] as? Bool, false, "\(doc)")
        XCTAssertEqual(doc["restored"] as? Bool, false, "\(doc)")
        XCTAssertTrue(snapshotIDs().contains(doc["snapshot"] as? String ?? "-"), "\(doc)")
        XCTAssertTrue((doc["restore_command"] as? String)?.hasPrefix("pgsnap restore ") ?? false, "\(doc)")
    }

    /// The migration succeeded but its record could not be written (here: a directory where the
    /// manifest's temporary file goes): exit 0, the migration's truth, with a warning; not 1
    /// ("pgsnap failed before the migration ran", to a deploy script).
    func testGuardExitsZeroWhenOnlyTheManifestCannotRecordASucceededMigration() throws {
        let db = try demoDatabase()
        let script = "for f in \"$1\"/*.manifest.json; do mkdir \"$f.partial\"; done && \"$2\" -X -q -d \"$3\" -c 'UPDATE schema_migrations SET version = 45'"
        let r = try fixture.pgsnap(["guard", "-d", db, "--json", "--", "/bin/sh", "-c", script, "sh", fixture.dir, psqlPath, db])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("the migration succeeded, but the manifest of"), r.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT version FROM schema_migrations"), "45")
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "stdout: \(r.stdout)")
        XCTAssertEqual(doc["ok"] as? Bool, true, "\(doc)")
        XCTAssertNotNil(doc["manifest_not_updated"] as? String, "\(doc)")
    }

    func testGuardTreatsADirtyMigrationAsFailed() throws {
        let db = try demoDatabase()
        let r = try fixture.pgsnap(["guard", "-d", db, "--"] + psqlCommand(db, "UPDATE schema_migrations SET version=45, dirty=true"))
        XCTAssertEqual(r.status, 5, r.stderr)
        XCTAssertTrue(r.stderr.contains("dirty"), r.stderr)
        XCTAssertTrue(r.stderr.contains("pgsnap restore "), r.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT version || ' ' || dirty FROM schema_migrations"), "45 true")
        if let id = snapshotIDs().first {
            let after = try Harness.manifest(dir: fixture.dir, id: id)["migration_after"]
            XCTAssertTrue(after is NSNull, "a failed migration is not recorded as done: \(String(describing: after))")
        } else {
            XCTFail("no snapshot taken: \(Harness.entries(fixture.dir))")
        }
    }

    func testGuardRunsNothingWhenPreflightFails() throws {
        let db = try demoDatabase()
        let r = try fixture.pgsnap(["guard", "-d", db, "--require-migration", "99", "--"]
                                   + psqlCommand(db, "CREATE TABLE guard_marker(x int)"))
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("schema_migrations"), r.stderr)
        XCTAssertTrue(r.stderr.contains("Nothing was run"), r.stderr)
        XCTAssertEqual(try regclass(db, "public.guard_marker"), "", "the command ran although preflight failed")
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "no snapshot may be written")
    }

    func testGuardWithAMissingCommandLeavesTheDatabaseUntouched() throws {
        let db = try demoDatabase()
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["guard", "-d", db, "--auto-restore", "--", "pgsnap-no-such-migrate-tool", "up"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("pgsnap: command pgsnap-no-such-migrate-tool not found in PATH"), r.stderr)
        XCTAssertTrue(r.stderr.contains("Nothing was run"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "nothing to restore: nothing ran")
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "a mistyped command must not cost a backup")
    }

    /// A command guard could start only to fail (a directory, a script whose #! interpreter is
    /// missing) is refused like a missing one: before the backup, exit 1, nothing run.
    func testGuardRefusesAnUnrunnableCommandBeforeTheBackup() throws {
        let db = try demoDatabase()
        let scripts = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: scripts) }
        let badShebang = scripts + "/migrate-bad-shebang"
        try Data("#!/nonexistent/interpreter\nexit 0\n".utf8).write(to: URL(fileURLWithPath: badShebang))
        XCTAssertEqual(chmod(badShebang, 0o755), 0)
        let emptyShebang = scripts + "/migrate-empty-shebang"
        try Data("#!\nexit 0\n".utf8).write(to: URL(fileURLWithPath: emptyShebang))
        XCTAssertEqual(chmod(emptyShebang, 0o755), 0)
        let envShebang = scripts + "/migrate-env-shebang"
        try Data("#!/usr/bin/env -S pgsnap-no-such-interpreter --flag\nexit 0\n".utf8).write(to: URL(fileURLWithPath: envShebang))
        XCTAssertEqual(chmod(envShebang, 0o755), 0)
        let noShebang = scripts + "/migrate-no-shebang"
        try Data("echo migrating\nexit 0\n".utf8).write(to: URL(fileURLWithPath: noShebang))
        XCTAssertEqual(chmod(noShebang, 0o755), 0)
        for (command, message) in [(scripts, "is not an executable file"), (emptyShebang, "has an empty #! line"),
                                   (noShebang, "is neither a program nor a script with a #! line"),
                                   (badShebang, "names /nonexistent/interpreter in its #! line, which is not an executable file"),
                                   (envShebang, "runs pgsnap-no-such-interpreter through /usr/bin/env in its #! line, and pgsnap-no-such-interpreter is not in PATH")] {
            let r = try fixture.pgsnap(["guard", "-d", db, "--auto-restore", "--", command, "up"])
            Harness.assertOneErrorLine(r, status: 1, command)
            XCTAssertTrue(r.stderr.contains(message) && r.stderr.contains("othing was run"), r.stderr)
        }
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "an unrunnable command must not cost a backup")
    }

    /// Another run holding the lock is guard's exit 3 (the deploy script's "another pgsnap run
    /// holds the lock; nothing was run"), with advice guard can follow (it has no --wait).
    func testGuardExitsThreeWhileAnotherRunHoldsTheLock() throws {
        let db = try demoDatabase()
        let fd = open(fixture.dir + "/.pgsnap.lock", O_RDWR | O_CREAT, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX), 0)
        let r = try fixture.pgsnap(["guard", "-d", db, "--quiet", "--"] + psqlCommand(db, "CREATE TABLE guard_marker(x int)"))
        Harness.assertOneErrorLine(r, status: 3, "guard with the lock held")
        XCTAssertTrue(r.stderr.contains("another pgsnap run holds the lock") && r.stderr.contains("nothing was run"), r.stderr)
        XCTAssertFalse(r.stderr.contains("--wait"), "guard has no --wait: \(r.stderr)")
        XCTAssertEqual(try regclass(db, "public.guard_marker"), "")
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [])
        // preflight says the same with the same code as every command: 3, not 2 (a failed check).
        let pre = try fixture.pgsnap(["preflight", "-d", db])
        XCTAssertEqual(pre.status, 3, pre.stderr)
        XCTAssertTrue(pre.stderr.contains("pgsnap: FAIL lock") && pre.stderr.contains("pgsnap: preflight failed: lock"), pre.stderr)
    }

    /// Ctrl-C while the migration runs reaches the command as SIGINT (golang-migrate's signal to
    /// stop after the running migration; it was turned into SIGTERM, on which migrate dies
    /// mid-migration), and everything in its process group (the sleep the script started);
    /// guard's status then says what became of the database: 0 when the command finished its
    /// migration anyway, 5 (never an automatic restore: the user asked pgsnap to stop) when it
    /// gave up. Never 130, which the deploy script reads as "nothing ran".
    func testGuardSignalledWhileTheCommandRunsReportsTheDatabasesState() throws {
        let scripts = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: scripts) }
        for finishes in [true, false] {
            let db = try demoDatabase()
            let started = scripts + "/started-\(finishes)"
            let onTerm = finishes ? "\(psqlPath) -X -q -d \(db) -c 'UPDATE schema_migrations SET version = 45'; exit 0" : "exit 1"
            let script = scripts + "/migrate-\(finishes)"
            // The sleep is ended with the script: a child left running would keep the descriptor
            // by which Foundation learns that the command exited, and guard would wait for it.
            try Data("#!/bin/bash\ntrap \"kill \\$s; \(onTerm)\" INT\ntouch \(started)\nsleep 600 & s=$!\nwait $s\n".utf8)
                .write(to: URL(fileURLWithPath: script))
            XCTAssertEqual(chmod(script, 0o755), 0)
            let r = try fixture.pgsnap(["guard", "-d", db, "--auto-restore", "--", script], whileRunning: { pid in
                XCTAssertTrue(Harness.poll(timeout: 120) { FileManager.default.fileExists(atPath: started) }, "the command never started")
                kill(pid, SIGINT)
            })
            if finishes {
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertTrue(r.stderr.contains("migration succeeded: 44 -> 45"), r.stderr)
                XCTAssertEqual(try Harness.psql(db, "SELECT version || ' ' || dirty FROM schema_migrations"), "45 false")
            } else {
                XCTAssertEqual(r.status, 5, r.stderr)
                XCTAssertTrue(r.stderr.contains("was interrupted (signal 2)") && r.stderr.contains("no automatic restore"), r.stderr)
                XCTAssertTrue(r.stderr.contains("pgsnap restore "), r.stderr)
                XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "restored although interrupted")
            }
        }
    }

    /// A wrapper (a script that runs the real migration tool, as `make migrate` or `npm run`
    /// do): Ctrl-C reaches the tool under it, as SIGINT, which stops cleanly; the wrapper then
    /// finishes and guard's status is the command's. It reached the wrapper alone, as SIGTERM:
    /// the wrapper died and the tool ran on, unwatched.
    func testCtrlCReachesTheToolUnderAWrapperScript() throws {
        let db = try demoDatabase()
        let scripts = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: scripts) }
        let started = scripts + "/started", got = scripts + "/got"
        let tool = scripts + "/tool"
        try Data("#!/bin/bash\ntrap 'echo INT > \(got); exit 0' INT\ntouch \(started)\nfor i in $(seq 600); do sleep 0.1; done\nexit 1\n".utf8)
            .write(to: URL(fileURLWithPath: tool))
        let wrapper = scripts + "/wrapper"
        try Data("#!/bin/bash\n\(tool)\nstatus=$?\necho wrapper-done >> \(got)\nexit $status\n".utf8).write(to: URL(fileURLWithPath: wrapper))
        XCTAssertEqual(chmod(tool, 0o755), 0)
        XCTAssertEqual(chmod(wrapper, 0o755), 0)
        let r = try fixture.pgsnap(["guard", "-d", db, "--", wrapper], whileRunning: { pid in
            XCTAssertTrue(Harness.poll(timeout: 120) { FileManager.default.fileExists(atPath: started) }, "the tool never started")
            kill(pid, SIGINT)
        })
        XCTAssertEqual(try String(contentsOfFile: got, encoding: .utf8), "INT\nwrapper-done\n", r.stderr)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// A signal while the automatic restore runs, after the command has run and failed: the
    /// restore stops (the database as the command left it) and the status is guard's 5, with the
    /// command to restore by hand. It was 130, which the deploy script reads as "nothing ran".
    func testASignalDuringTheAutomaticRestoreIsFiveNotOneThirty() throws {
        let db = try demoDatabase()
        // An index whose build takes a second or more, so the restore is still running when signalled.
        try Harness.psql(db, """
            CREATE FUNCTION slow(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN $1; END $$;
            CREATE TABLE slow_t AS SELECT g FROM generate_series(1, 1000) g;
            CREATE INDEX slow_i ON slow_t (slow(g));
            """)
        var signalled = false
        let r = try fixture.pgsnap(["guard", "-d", db, "--auto-restore", "--", "false"]) { pid in
            guard Harness.poll(timeout: 120, { (try? RestoreFixture.scratchDatabases())?.isEmpty == false || !Procfs.isAlive(pid) }),
                  Procfs.isAlive(pid) else { return XCTFail("the automatic restore never started") }
            signalled = kill(pid, SIGINT) == 0
        }
        XCTAssertTrue(signalled)
        XCTAssertEqual(r.status, 5, r.stderr)
        XCTAssertTrue(r.stderr.contains("the automatic restore failed too") && r.stderr.contains("pgsnap restore "), r.stderr)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "restored although interrupted")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// `#!/usr/bin/env bash`, as bin/rails and most scripts start: run (the program env names is
    /// looked up in PATH before the backup, and found).
    func testGuardRunsAScriptWhoseInterpreterEnvFinds() throws {
        let db = try demoDatabase()
        let scripts = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: scripts) }
        let script = scripts + "/migrate-env"
        try Data("#!/usr/bin/env bash\nexec \(psqlPath) -X -q -d \(db) -c 'UPDATE schema_migrations SET version = 45'\n".utf8)
            .write(to: URL(fileURLWithPath: script))
        XCTAssertEqual(chmod(script, 0o755), 0)
        let r = try fixture.pgsnap(["guard", "-d", db, "--", script])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT version FROM schema_migrations"), "45")
    }

    // MARK: - diff

    func testDiffCountsAddedDroppedAndChangedTablesAndTheMigration() throws {
        let db = try demoDatabase()
        let id = try fixture.backup(db)
        try Harness.psql(db, """
            BEGIN;
            DROP VIEW campaign_stats;
            DROP TABLE generated_domains;
            CREATE TABLE phases (id int PRIMARY KEY, name text);
            INSERT INTO phases VALUES (1, 'a'), (2, 'b'), (3, 'c');
            DELETE FROM campaigns WHERE id > 3;
            UPDATE schema_migrations SET version = 45;
            COMMIT;
            """)
        let r = try fixture.pgsnap(["diff", "latest", "-d", db, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        guard let report = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] else {
            return XCTFail("diff --json did not print an object: \(r.stdout) / \(r.stderr)")
        }
        XCTAssertEqual(report["snapshot"] as? String, id)
        XCTAssertEqual(report["database"] as? String, db)
        let was = report["migration_before"] as? [String: Any], now = report["migration_now"] as? [String: Any]
        XCTAssertEqual(was?["version"] as? Int, 44, "\(report)")
        XCTAssertEqual(now?["version"] as? Int, 45, "\(report)")
        XCTAssertEqual(now?["dirty"] as? Bool, false)

        let tables = report["tables"] as? [[String: Any]] ?? []
        var change: [String: String] = [:]
        for t in tables { change[t["table"] as? String ?? "?"] = t["change"] as? String }
        XCTAssertEqual(change, ["public.campaigns": "-2 rows", "public.generated_domains": "dropped",
                                "public.phases": "added", "public.schema_migrations": "unchanged"])
        XCTAssertEqual(tables.filter { $0["change"] as? String == "added" }.count, 1)
        XCTAssertEqual(tables.filter { $0["change"] as? String == "dropped" }.count, 1)
        XCTAssertEqual(tables.filter { !["added", "dropped", "unchanged"].contains($0["change"] as? String ?? "") }.count, 1)
        let row = { (name: String) in tables.first { $0["table"] as? String == name } ?? [:] }
        XCTAssertEqual(row("public.phases")["live_rows"] as? Int, 3)
        XCTAssertNil(row("public.phases")["snapshot_rows"] as? Int)
        XCTAssertEqual(row("public.generated_domains")["snapshot_rows"] as? Int, 2000)
        XCTAssertNil(row("public.generated_domains")["live_rows"] as? Int)
        XCTAssertEqual(row("public.campaigns")["snapshot_rows"] as? Int, 5)
        XCTAssertEqual(row("public.campaigns")["live_rows"] as? Int, 3)
    }
}
