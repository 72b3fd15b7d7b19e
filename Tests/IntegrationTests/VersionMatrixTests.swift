import Foundation
import XCTest

/// What must hold on every PostgreSQL major: `scripts/test` runs this class against Debian's 15,
/// `scripts/test-matrix` against 14, 16, 17 and 18 (each with its own pg_dump, psql and pg_restore,
/// given to pgsnap as PGSNAP_PG_BINDIR). The tests exercise what depends on the major: catalogue
/// queries (database properties, locale providers), dump and restore flags, statistics, tool
/// choice. Exactness is the fidelity corpus's fingerprint (the contrib-free corpus where the
/// server build has no contrib).
final class VersionMatrixTests: CorpusTestCase {
    var major: Int { (Int((try? Harness.psql("postgres", "SHOW server_version_num")) ?? "") ?? 0) / 10000 }

    /// ANALYZE of every table that can be analyzed without reaching a foreign server (the
    /// corpus has a partitioned table with a foreign partition, which plain ANALYZE trips on).
    func analyze(_ db: String) throws {
        try Harness.psql(db, """
            DO $$ DECLARE r record; BEGIN
              FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind IN ('r', 'm', 'p') AND (c.relkind <> 'm' OR c.relispopulated)
                         AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                         AND NOT EXISTS (SELECT 1 FROM pg_partition_tree(c.oid) p JOIN pg_class f ON f.oid = p.relid WHERE f.relkind = 'f')
              LOOP EXECUTE format('ANALYZE %s', r.t); END LOOP;
            END $$
            """)
    }

    /// Tables of `db` with planner statistics (a pg_statistic row), schema-qualified, and
    /// extended statistics objects with data (`stats:` and their name): 18's pg_dump carries
    /// the first but not the second.
    func tablesWithStatistics(_ db: String) throws -> Set<String> {
        Set(try Harness.psql(db, """
            SELECT DISTINCT format('%I.%I', n.nspname, c.relname) FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
            UNION SELECT DISTINCT 'stats:' || x.stxname FROM pg_statistic_ext x JOIN pg_statistic_ext_data d ON d.stxoid = x.oid
            """).split(separator: "\n").map(String.init))
    }

    /// backup (plain, each compression) -> verify -> restore --target NEW: the same database,
    /// and every table that had statistics has them, on every major.
    func testPlainSnapshotsInEveryCompressionRestoreExactlyWithStatistics() throws {
        let db = try corpusDatabase("mx")
        try analyze(db)
        let original = try DatabaseFingerprint.of(db)
        let analyzed = try tablesWithStatistics(db)
        XCTAssertFalse(analyzed.isEmpty, "ANALYZE gave the corpus no statistics")
        XCTAssertTrue(analyzed.contains("stats:orders_stats"), "ANALYZE gave the corpus no extended statistics: \(analyzed.sorted())")
        for compression in ["gzip", "zstd", "none"] {
            let id = try backupAndVerify(db, ["--compress", compression])
            let m = try Harness.manifest(dir: fixture.dir, id: id)
            XCTAssertEqual(ServerVersion.major(m["server_version"] as? String), major, "\(m)")
            XCTAssertEqual(ServerVersion.major(m["pg_dump_version"] as? String).map { $0 >= major }, true, "\(m)")
            XCTAssertNotNil(m["tool_directory"] as? String, "the manifest must say which tools made it")
            XCTAssertEqual(m["statistics"] as? String, major >= 18 ? "dumped" : nil, "\(m)")
            let copy = "\(db)_\(compression)"
            fixture.track(database: copy)
            try pgsnapStep(["restore", id, "--target", copy, "-d", db])
            DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "\(compression) restore on PostgreSQL \(major)")
            let restored = try tablesWithStatistics(copy)
            XCTAssertTrue(analyzed.isSubset(of: restored), "tables without statistics after restore: \(analyzed.subtracting(restored).sorted())")
        }
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// backup --remote (straight to the bucket, encrypted, with its globals) -> verify --remote
    /// -> drill --remote -> restore --remote into an empty directory: the same database on
    /// every major, and nothing was written to the backup directory.
    func testDirectToBucketEncryptedSnapshotRestoresExactly() throws {
        let db = try corpusDatabase("mxs3")
        let original = try DatabaseFingerprint.of(db)
        let key = fixture.dir + "-key.txt"
        defer { unlink(key) }
        XCTAssertEqual(try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", key]).status, 0)
        chmod(key, 0o600)
        let recipient = try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", key]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let (remote, prefix) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        let unused = fixture.dir + "-unused"
        let b = try Harness.pgsnap(["backup", "-d", db, "--remote", "--encrypt-to", recipient, "--globals"], dir: unused, env: env)
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = Harness.snapshotID(b)
        XCTAssertFalse(FileManager.default.fileExists(atPath: unused), "a direct backup wrote to the local disk")
        XCTAssertEqual(Set(try S3Harness.objects(prefix).keys),
                       Set([".sql.gz.age", ".manifest.json", ".globals.sql.age"].map { prefix + "/" + id + $0 }))
        let verify = try Harness.pgsnap(["verify", "--remote", id, "--identity", key], dir: unused, env: env)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        let drill = try Harness.pgsnap(["drill", "-d", db, "--remote", "--identity", key], dir: unused, env: env)
        XCTAssertEqual(drill.status, 0, drill.stderr)
        let empty = fixture.dir + "-dr"
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let copy = "\(db)_s3"
        fixture.track(database: copy)
        let r = try Harness.pgsnap(["restore", id, "--remote", "--target", copy, "-d", db, "--identity", key, "--yes"], dir: empty, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "backup --remote, restore --remote on PostgreSQL \(major)")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// `--no-analyze`: before 18 the statistics came from restore's ANALYZE, so without it the
    /// tables have none; from 18 they travel in the dump and are there all the same.
    func testNoAnalyzeShowsWhereStatisticsComeFrom() throws {
        let db = try fixture.database("mxstat")
        try Harness.psql(db, """
            CREATE TABLE t (id int PRIMARY KEY, v text);
            INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
            ANALYZE t;
            """)
        let id = try backupAndVerify(db)
        let copy = db + "_noanalyze"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "--no-analyze", "-d", db])
        XCTAssertEqual(try tablesWithStatistics(copy), major >= 18 ? ["public.t"] : [])
        XCTAssertEqual(try Harness.psql(copy, "SELECT count(*) FROM t"), "5000")
    }

    /// Directory format, encrypted with age: backup, verify with the identity, restore into a new
    /// and over an existing (damaged) database, and one table back with --table.
    func testEncryptedDirectorySnapshotRestoresExactlyNewAndOverExisting() throws {
        let db = try corpusDatabase("mxdir")
        try analyze(db)
        let original = try DatabaseFingerprint.of(db)
        let analyzed = try tablesWithStatistics(db)
        let keyDir = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: keyDir) }
        let key = keyDir + "/key.txt"
        XCTAssertEqual(try Harness.run(EncryptionTests.tool("age-keygen"), ["-o", key]).status, 0)
        let recipient = try Harness.run(EncryptionTests.tool("age-keygen"), ["-y", key]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let b = try pgsnapStep(["backup", "-d", db, "--format", "directory", "--jobs", "2", "--encrypt-to", recipient])
        let id = Harness.snapshotID(b)
        try pgsnapStep(["verify", id, "--identity", key])
        let copy = db + "_new"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "--identity", key])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "directory restore on PostgreSQL \(major)")
        XCTAssertTrue(analyzed.isSubset(of: try tablesWithStatistics(copy)), "directory restore lost statistics")

        // The split path: the biggest table through COPY sessions, the rest of the schema and the
        // other tables' data, indexes and keys beside its load, this major's pg_restore listing the plan.
        let files = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]])
        let biggest = try XCTUnwrap(files.filter { $0["table"] is String }.compactMap { $0["bytes"] as? Int }.max())
        let split = db + "_split"
        fixture.track(database: split)
        let s = try fixture.pgsnap(["restore", id, "--target", split, "--identity", key, "--jobs", "2", "--verbose"],
                                   env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": String(biggest)])
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertTrue(s.stderr.contains("loaded through 2 COPY sessions each") && s.stderr.contains("schema_during_load"), s.stderr)
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(split), original, "split directory restore on PostgreSQL \(major)")
        XCTAssertTrue(analyzed.isSubset(of: try tablesWithStatistics(split)), "split directory restore lost statistics")

        let one = db + "_orders"
        fixture.track(database: one)
        try pgsnapStep(["restore", id, "--table", "public.orders", "--target", one, "--identity", key])
        XCTAssertEqual(try Harness.psql(one, "SELECT count(*) || ' ' || md5(string_agg(o::text, ',' ORDER BY id)) FROM public.orders o"),
                       try Harness.psql(db, "SELECT count(*) || ' ' || md5(string_agg(o::text, ',' ORDER BY id)) FROM public.orders o"))

        try damageCorpus(db)
        try pgsnapStep(["restore", id, "-d", db, "--yes", "--terminate-connections", "--identity", key])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "directory restore over the damaged original")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// A sub-partitioned tree with an identity column, every leaf through the split path: the
    /// schema is made whole, in the dump's order, before the load, so each major makes of it what
    /// its own pg_restore makes (18 gives the leaves of a sub-partition attached after its own
    /// leaves no identity, in pg_restore's order too; made in stages, the split path lost it on
    /// every leaf below the root). Rows exact.
    func testASubPartitionedIdentityTreeSplitRestoresAsPgRestoreMakesIt() throws {
        let db = try fixture.database("mxtree")
        try Harness.psql(db, """
            CREATE SCHEMA parts;
            CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, at date NOT NULL, region text NOT NULL, body text,
                                 PRIMARY KEY (id, at, region)) PARTITION BY RANGE (at);
            CREATE TABLE parts.events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01') PARTITION BY LIST (region);
            CREATE TABLE parts.events_2023_eu PARTITION OF parts.events_2023 FOR VALUES IN ('eu');
            CREATE TABLE parts.events_2023_def PARTITION OF parts.events_2023 DEFAULT;
            CREATE TABLE parts.events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (region);
            CREATE TABLE parts.events_2024_eu PARTITION OF parts.events_2024 FOR VALUES IN ('eu') PARTITION BY HASH (id);
            CREATE TABLE parts.events_2024_eu_h0 PARTITION OF parts.events_2024_eu FOR VALUES WITH (MODULUS 2, REMAINDER 0);
            CREATE TABLE parts.events_2024_eu_h1 PARTITION OF parts.events_2024_eu FOR VALUES WITH (MODULUS 2, REMAINDER 1);
            CREATE TABLE parts.events_2024_rest PARTITION OF parts.events_2024 DEFAULT;
            CREATE TABLE parts.events_default PARTITION OF events DEFAULT;
            INSERT INTO events (at, region, body) SELECT date '2022-06-01' + (g % 900), (ARRAY['eu', 'us'])[1 + g % 2], md5(g::text)
                FROM generate_series(1, 4000) g;
            """)
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db, "--format", "directory"]))
        let identityLeaves = """
            SELECT string_agg(format('%I.%I', n.nspname, c.relname), ',' ORDER BY n.nspname, c.relname) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attidentity <> '' AND c.relkind = 'r'
            """
        let rows = "SELECT count(*) || ' ' || md5(string_agg(e::text, ',' ORDER BY e::text)) FROM events e"
        let byTool = db + "_pgr"
        fixture.track(database: byTool)
        try Harness.psql("postgres", "CREATE DATABASE \(byTool)")
        let pgr = try Harness.run(Harness.pgbin + "/pg_restore", ["-d", byTool, "--exit-on-error", fixture.dir + "/" + id + ".dir"])
        XCTAssertEqual(pgr.status, 0, pgr.stderr)

        let split = db + "_split"
        fixture.track(database: split)
        let s = try fixture.pgsnap(["restore", id, "--target", split, "--jobs", "2", "--verbose"], env: ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertTrue(s.stderr.contains("big table(s) loaded through 2 COPY sessions each"), s.stderr)
        XCTAssertEqual(try Harness.psql(split, identityLeaves), try Harness.psql(byTool, identityLeaves), "PostgreSQL \(major)")
        XCTAssertEqual(try Harness.psql(split, rows), try Harness.psql(db, rows))
        if major < 18 {
            XCTAssertEqual(try Harness.psql(split, identityLeaves), try Harness.psql(db, identityLeaves), "every leaf keeps its identity before 18")
        }
    }

    /// The builtin locale provider (17+) and its locale survive a restore into a new database.
    func testDatabaseLocaleProviderIsKept() throws {
        let db = "mxloc_\(UUID().uuidString.prefix(8).lowercased())"
        let provider = major >= 17 ? "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'" : major >= 15 ? "LOCALE_PROVIDER libc" : ""
        try Harness.psql("postgres", "CREATE DATABASE \(db) TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' \(provider)")
        fixture.track(database: db)
        try Harness.psql(db, "CREATE TABLE t (v text); INSERT INTO t VALUES ('b'), ('a'), ('é')")
        let id = try backupAndVerify(db)
        let m = try Harness.manifest(dir: fixture.dir, id: id)
        let props = m["database_properties"] as? [String: Any] ?? [:]
        XCTAssertEqual(props["locale_provider"] as? String, major >= 17 ? "b" : "c", "\(props)")
        if major >= 17 { XCTAssertEqual(props["builtin_locale"] as? String, "C.UTF-8", "\(props)") }
        let copy = db + "_copy"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "-d", db])
        let locale = "SELECT coalesce(to_jsonb(d)->>'datlocprovider', 'c') || ' ' || coalesce(to_jsonb(d)->>'datlocale', to_jsonb(d)->>'daticulocale', '-') || ' ' || datcollate FROM pg_database d WHERE datname = "
        XCTAssertEqual(try Harness.psql("postgres", locale + "'\(copy)'"), try Harness.psql("postgres", locale + "'\(db)'"))
        XCTAssertEqual(try Harness.psql(copy, "SELECT string_agg(v, ',' ORDER BY v) FROM t"), try Harness.psql(db, "SELECT string_agg(v, ',' ORDER BY v) FROM t"))
    }

    /// Every database of the server with the globals, then check: on every major.
    func testAllDatabasesWithGlobalsAndCheck() throws {
        let a = try fixture.database("mxall"), b = try fixture.database("mxall")
        for db in [a, b] { try Harness.psql(db, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g") }
        let r = try fixture.pgsnap(["backup", "--all-databases", "--globals"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for db in [a, b] {
            let list = try fixture.pgsnap(["list", "-d", db, "--json"])
            XCTAssertEqual(list.status, 0, list.stderr)
            XCTAssertTrue(list.stdout.contains("\"\(db)\""), "no snapshot of \(db): \(list.stdout)")
        }
        let globals = Harness.entries(fixture.dir).filter { $0.hasSuffix(".globals.sql") }
        XCTAssertFalse(globals.isEmpty, "no globals file: \(Harness.entries(fixture.dir))")
        let check = try fixture.pgsnap(["check", "--all-databases", "--max-age", "1h"])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
    }

    /// preflight, guard (auto-restore of a failed migration) and diff on every major.
    func testMigrationStepPreflightGuardDiff() throws {
        let db = try fixture.database("mxmig")
        try Harness.psqlFile(db, Harness.repo + "/scripts/demo-data/schema.sql")
        let pre = try fixture.pgsnap(["preflight", "-d", db])
        XCTAssertEqual(pre.status, 0, pre.stderr)
        XCTAssertTrue(pre.stderr.contains("pg_dump"), pre.stderr)
        let before = try Harness.fingerprint(db)
        let psql = Harness.pgbin + "/psql"
        let g = try fixture.pgsnap(["guard", "-d", db, "--auto-restore", "--", psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", db,
                                    "-c", "DROP TABLE generated_domains CASCADE", "-c", "SELECT 1/0"])
        XCTAssertEqual(g.status, 4, g.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "guard must leave the database exactly as before")
        try Harness.psql(db, "CREATE TABLE phases (id int); UPDATE schema_migrations SET version = 45")
        let d = try fixture.pgsnap(["diff", "latest", "-d", db, "--json"])
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertTrue(d.stdout.contains("public.phases"), d.stdout)
    }

    /// The split load's commit rounds and the passes reading the pages behind it run where this
    /// major's server logs hint bits, and only there: 18 (its initdb turns data checksums on) and
    /// 14 (the matrix starts it with wal_log_hints=on: the oldest major, the first with the TID
    /// range scans the passes use), not 16 or 17 with their defaults. Exact either way, from plain
    /// and directory snapshots, the rows counted over every commit.
    func testASplitLoadCommitsInRoundsOnlyWhereHintBitsAreLogged() throws {
        let logsHints = try Harness.psql("postgres", "SELECT current_setting('data_checksums') = 'on' OR current_setting('wal_log_hints') = 'on'") == "t"
        if major == 18 || major == 14 { XCTAssertTrue(logsHints, "PostgreSQL \(major): expected data checksums (18) or wal_log_hints (14, scripts/test-matrix)") }
        if major == 16 || major == 17 { XCTAssertFalse(logsHints, "PostgreSQL \(major) with its defaults") }
        let db = try fixture.database("mxrounds")
        try Harness.psql(db, """
            CREATE TABLE "Big Rounds" (id bigint PRIMARY KEY, doc jsonb, note text);
            INSERT INTO "Big Rounds" SELECT g, jsonb_build_object('g', g, 'tab', E'a\\tb'), md5(g::text) FROM generate_series(1, 60000) g;
            CREATE INDEX ON "Big Rounds" (note);
            """)
        let before = try Harness.fingerprint(db)
        let plain = try backupAndVerify(db)
        let directory = try backupAndVerify(db, ["--format", "directory"])
        for (id, env) in [(plain, ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1000"]), (directory, ["PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])] {
            let copy = db + "_copy_" + (id == plain ? "plain" : "dir")
            fixture.track(database: copy)
            var e = env
            e["PGSNAP_COPY_COMMIT_BYTES"] = "1"
            let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2", "--verbose"], env: e)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("loaded through 2 COPY sessions each"), r.stderr)
            if logsHints {
                XCTAssertTrue(r.stderr.contains(#"public."Big Rounds": loaded in "#) && r.stderr.contains("commits a session, its pages read behind the load in "), r.stderr)
                XCTAssertFalse(r.stderr.contains("behind the load in 0 pass(es)"), r.stderr)
                XCTAssertFalse(r.stderr.contains(" failed (first: "), r.stderr)
            } else {
                XCTAssertFalse(r.stderr.contains("commits a session"), r.stderr)
            }
            XCTAssertEqual(try Harness.fingerprint(copy), before, "PostgreSQL \(major), \(id)")
            XCTAssertEqual(try Harness.psql(copy, #"SELECT count(*) FROM "Big Rounds""#), "60000")
        }
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// Faults get the same answers on every major: a truncated snapshot fails verify (2) and is
    /// refused by restore (2) with the target untouched; a load the server refuses part-way (a
    /// row with an extra column, split across COPY sessions) fails (1) with the target untouched.
    func testFaultsLeaveTheTargetUntouched() throws {
        let db = try fixture.database("mxfault")
        try Harness.psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        let good = try backupAndVerify(db)
        try Harness.psql(db, "DELETE FROM t WHERE id > 100")
        let before = try Harness.fingerprint(db)

        let truncated = try backupAndVerify(db)
        let path = try fixture.dumpPath(truncated)
        XCTAssertEqual(truncate(path, off_t(try Harness.fileSize(path) / 2)), 0)
        let v = try fixture.pgsnap(["verify", truncated, "--quiet"])
        XCTAssertEqual(v.status, 2, v.stdout + v.stderr)
        let r = try fixture.pgsnap(["restore", truncated, "-d", db, "--yes", "--quiet"])
        Harness.assertOneErrorLine(r, status: 2, "truncated snapshot on PostgreSQL \(major)")
        XCTAssertEqual(try Harness.fingerprint(db), before)

        // The good snapshot with one row made unloadable, its manifest matching the file.
        let dump = try Harness.gunzip(try fixture.dumpPath(good))
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let row = "\n15000\t" + (try Harness.psql("postgres", "SELECT md5('15000')")) + "\n"
        let broken = dump.stdout.replacingOccurrences(of: row, with: row.dropLast() + "\textra\n")
        XCTAssertNotEqual(broken, dump.stdout)
        let plain = fixture.dir + "/broken.sql"
        try Data(broken.utf8).write(to: URL(fileURLWithPath: plain))
        XCTAssertEqual(try Harness.run("/bin/gzip", ["-f", plain]).status, 0)
        let gz = try fixture.dumpPath(good)
        try FileManager.default.removeItem(atPath: gz)
        try FileManager.default.moveItem(atPath: plain + ".gz", toPath: gz)
        var m = try Harness.manifest(dir: fixture.dir, id: good)
        m["compressed_bytes"] = try Harness.fileSize(gz)
        m["uncompressed_bytes"] = broken.utf8.count
        m["sha256"] = try Harness.sha256sum(gz)
        try Harness.writeJSON(m, to: Harness.manifestPath(dir: fixture.dir, id: good))
        for jobs in ["1", "2"] {
            let f = try fixture.pgsnap(["restore", good, "-d", db, "--yes", "--quiet", "--jobs", jobs], env: ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1000"])
            Harness.assertOneErrorLine(f, status: 1, "refused row, --jobs \(jobs), PostgreSQL \(major)")
            XCTAssertTrue(f.stderr.contains("extra data after last expected column"), f.stderr)
            XCTAssertEqual(try Harness.fingerprint(db), before, "--jobs \(jobs)")
        }
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
    }

    /// A backup pg_dump refuses (forced row-level security, dumped as the table's owner) names the
    /// server's reason, not the statement: 14's pg_dump prints the statement at error level after
    /// the reason, 15's and later as a detail. Nothing is kept.
    func testRefusedBackupNamesTheReason() throws {
        let db = try fixture.database("mxrls")
        let role = "pgsnap_mx_rls_owner"
        try Harness.psql("postgres", "DROP ROLE IF EXISTS \(role); CREATE ROLE \(role) LOGIN")
        defer {
            _ = try? Harness.psql(db, "DROP OWNED BY \(role)")
            _ = try? Harness.psql("postgres", "DROP ROLE IF EXISTS \(role)")
        }
        try Harness.psql(db, """
            CREATE TABLE rls (id int); INSERT INTO rls VALUES (1); ALTER TABLE rls OWNER TO \(role);
            ALTER TABLE rls ENABLE ROW LEVEL SECURITY; ALTER TABLE rls FORCE ROW LEVEL SECURITY;
            CREATE POLICY only_positive ON rls USING (id > 0)
            """)
        let kept = Harness.snapshotFiles(fixture.dir)
        for format in ["plain", "directory"] {
            let r = try fixture.pgsnap(["backup", "-d", db, "--format", format, "--quiet"], env: ["PGUSER": role])
            Harness.assertOneErrorLine(r, status: 1, "\(format) backup refused by row-level security, PostgreSQL \(major)")
            XCTAssertTrue(r.stderr.contains("query would be affected by row-level security policy for table \"rls\""), r.stderr)
            XCTAssertFalse(r.stderr.contains("COPY public.rls"), "the statement instead of the reason: \(r.stderr)")
        }
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), kept)
    }

    /// The tool search: the server's own tools from --pg-bindir (recorded in the manifest); a
    /// directory without them, or with an older major's, is refused naming both majors and what
    /// to install; without PATH, the Debian layout is found for 15 and refused as too old above it.
    func testToolSelection() throws {
        let db = try fixture.database("mxtools")
        try Harness.psql(db, "CREATE TABLE t (id int)")
        let id = Harness.snapshotID(try pgsnapStep(["backup", "-d", db, "--pg-bindir", Harness.pgbin, "--verbose"]))
        XCTAssertEqual(try Harness.manifest(dir: fixture.dir, id: id)["tool_directory"] as? String, Harness.pgbin)

        let empty = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let missing = try fixture.pgsnap(["backup", "-d", db, "--pg-bindir", empty])
        Harness.assertOneErrorLine(missing, status: 1, "no pg_dump in --pg-bindir")
        XCTAssertTrue(missing.stderr.contains("pg_dump not found in \(empty) (--pg-bindir)"), missing.stderr)

        let noPath: [String: String?] = ["PATH": "/nonexistent", "PGSNAP_PG_BINDIR": nil]
        let debian = "/usr/lib/postgresql/15/bin"
        if major <= 15 {
            // pg_dump reads older servers: on 14, Debian's 15 tools are the newest new enough.
            let v = try fixture.pgsnap(["backup", "-d", db, "--verbose"], env: noPath)
            XCTAssertEqual(v.status, 0, v.stderr)
            XCTAssertTrue(v.stderr.contains("using \(debian)/pg_dump"), v.stderr)
            XCTAssertTrue(v.stderr.contains(major == 15 ? "the Debian/PGDG layout for the server's major 15"
                                                        : "the newest installed tools new enough for the server (15)"), v.stderr)
            let used = try Harness.manifest(dir: fixture.dir, id: Harness.snapshotID(v))
            XCTAssertEqual(used["tool_directory"] as? String, debian)
            XCTAssertTrue((used["pg_dump_version"] as? String ?? "").contains("15."), "\(used)")
        } else {
            for r in [try fixture.pgsnap(["backup", "-d", db], env: noPath),
                      try fixture.pgsnap(["backup", "-d", db, "--pg-bindir", debian])] {
                Harness.assertOneErrorLine(r, status: 1, "15 tools against a \(major) server")
                XCTAssertTrue(r.stderr.contains("is older than the server (PostgreSQL \(major))"), r.stderr)
                XCTAssertTrue(r.stderr.contains("Install postgresql-client-\(major)"), r.stderr)
            }
            XCTAssertEqual(Harness.snapshotFiles(fixture.dir).count, 2, "a refused backup must write nothing: \(Harness.entries(fixture.dir))")
        }
    }
}

/// The major of a version string as manifests record it ("15.18 (Debian ...)", "17.10").
enum ServerVersion {
    static func major(_ text: String?) -> Int? {
        guard let text else { return nil }
        return Int(text.prefix { $0.isNumber })
    }
}
