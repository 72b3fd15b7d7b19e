import Foundation
import XCTest

/// The fidelity corpus (Tests/Fixtures/corpus.sql: one of every kind of object a plain dump can
/// carry) through backup -> verify -> restore, compared by `DatabaseFingerprint`.
///
/// `testPlainDumpReproducesCorpusFingerprint` shows that PostgreSQL's own `pg_dump | psql`
/// reproduces every section but the database-level one, which no plain dump carries: any other
/// difference after a pgsnap round trip is pgsnap's.
final class FidelityTests: XCTestCase {
    var fixture: RestoreFixture!

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
        try CorpusCluster.prepare()
    }

    override func tearDown() {
        if let fixture {
            // DROP DATABASE refuses a database that holds a subscription, even WITH (FORCE).
            for db in fixture.databases {
                CorpusCluster.dropSubscriptions(in: db)
                for previous in (try? RestoreFixture.previousDatabases(of: db)) ?? [] { CorpusCluster.dropSubscriptions(in: previous) }
            }
            for scratch in (try? RestoreFixture.scratchDatabases()) ?? [] { CorpusCluster.dropSubscriptions(in: scratch) }
            fixture.cleanUp()
        }
        fixture = nil
    }

    override class func tearDown() {
        CorpusCluster.cleanUp()
        super.tearDown()
    }

    // MARK: - Loading

    /// A fresh database holding the corpus, dropped at tear-down.
    func corpusDatabase(_ prefix: String = "fid") throws -> String {
        let db = try fixture.database(prefix)
        let r = try Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", CorpusCluster.corpusPath])
        XCTAssertEqual(r.status, 0, "loading the corpus failed: \(r.stderr)")
        return db
    }

    /// Thrown after a failed step, so the test stops at its first real failure instead of
    /// piling up errors about databases that were never made.
    struct StepFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// `pgsnap ARGS`; a non-zero exit fails the test and stops it.
    @discardableResult
    func pgsnapStep(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Harness.Result {
        let r = try fixture.pgsnap(args)
        guard r.status == 0 else {
            let what = "pgsnap \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)"
            XCTFail(what, file: file, line: line)
            throw StepFailed(description: what)
        }
        return r
    }

    /// `pgsnap backup -d db ARGS`, then `pgsnap verify ID`; returns the id.
    func backupAndVerify(_ db: String, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let b = try pgsnapStep(["backup", "-d", db] + extra, file: file, line: line)
        let id = Harness.snapshotID(b)
        XCTAssertTrue(id.hasPrefix(db + "_"), "unexpected snapshot id '\(id)'; stderr: \(b.stderr)", file: file, line: line)
        try pgsnapStep(["verify", id], file: file, line: line)
        return id
    }

    /// `manifest.migration.version` as a number, whether written as a JSON number or a string.
    func migrationVersion(_ id: String) throws -> Int64? {
        let migration = try Harness.manifest(dir: fixture.dir, id: id)["migration"] as? [String: Any]
        switch migration?["version"] {
        case let n as NSNumber: return n.int64Value
        case let s as String: return Int64(s)
        default: return nil
        }
    }

    // MARK: - The fingerprint itself

    /// The corpus loads, its fingerprint is stable, and PostgreSQL's own tools reproduce it.
    func testPlainDumpReproducesCorpusFingerprint() throws {
        let db = try corpusDatabase()
        let original = try DatabaseFingerprint.of(db)
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "two reads of one database")
        // The corpus really is in there (guards the fingerprint against reading nothing).
        let rows = original.sections.first { $0.name == "rows" }?.lines ?? []
        XCTAssertTrue(rows.contains("public.not_populated: not populated"), rows.joined(separator: "\n"))
        XCTAssertTrue(rows.contains { $0.hasPrefix("public.customer_totals: 300 rows ") }, rows.joined(separator: "\n"))
        XCTAssertEqual(original.sections.first { $0.name == "large objects" }?.lines.count, 3)

        let copy = try fixture.database("fidplain")
        let dump = try Harness.run(Harness.pgbin + "/pg_dump", ["--no-password", "-d", db])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let load = try Harness.psqlStdin(copy, Data(dump.stdout.utf8))
        XCTAssertEqual(load.status, 0, "psql could not load pg_dump's own output: \(load.stderr)")

        var expected = try DatabaseFingerprint.of(copy)
        let expectedDatabase = expected.sections.removeLast(), originalDatabase = original.sections.last!
        var withoutDatabase = original
        withoutDatabase.sections.removeLast()
        DatabaseFingerprint.assertEqual(expected, withoutDatabase, "pg_dump | psql")
        // What a plain dump leaves out is exactly what pgsnap must carry itself: the database section.
        XCTAssertEqual(expectedDatabase.name, "database")
        XCTAssertNotEqual(expectedDatabase, originalDatabase, "the corpus's database-level properties are missing")
        XCTAssertTrue(originalDatabase.lines.contains("setting pgsnap_corpus_reader: statement_timeout=5s"), originalDatabase.lines.joined(separator: "\n"))
    }

    // MARK: - pgsnap round trips

    /// backup -> verify -> restore --target COPY: the copy is the same database; the original is untouched.
    func testBackupVerifyRestoreToNewNameReproducesCorpus() throws {
        let db = try corpusDatabase()
        let original = try DatabaseFingerprint.of(db)
        let id = try backupAndVerify(db)
        XCTAssertEqual(try migrationVersion(id), Int64(try Harness.psql(db, "SELECT max(version) FROM public.schema_migrations")))
        XCTAssertEqual((try Harness.manifest(dir: fixture.dir, id: id)["migration"] as? [String: Any])?["dirty"] as? Bool, false)

        let copy = "\(db)_copy"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "-d", db])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "restore --target \(copy)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "the original after restore --target")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// The manifest's row counts cover every table with its true count, awkward names included
    /// (a name with a newline makes pg_dump's COPY line span two lines).
    func testManifestCountsEveryTableOfCorpus() throws {
        let db = try corpusDatabase()
        let id = try backupAndVerify(db)
        let manifestRows = try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["table_rows"] as? [String: Any])
        var recorded: [String: Int64] = [:]
        for (k, v) in manifestRows { recorded[k.replacingOccurrences(of: "\n", with: "\\n")] = (v as? NSNumber)?.int64Value }
        let actual = try DatabaseFingerprint.gexec(db, """
            SELECT format('SELECT %L || E''\\t'' || count(*) FROM ONLY %I.%I', \(DatabaseFingerprint.label), n.nspname, c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            """, file: #filePath, line: #line)
        var expected: [String: Int64] = [:]
        for l in actual {
            guard let tab = l.lastIndex(of: "\t") else { continue }
            expected[String(l[..<tab])] = Int64(l[l.index(after: tab)...])
        }
        XCTAssertGreaterThan(expected.count, 30)
        XCTAssertEqual(Set(recorded.keys).symmetricDifference(expected.keys).sorted(), [], "tables missing from or extra in the manifest")
        for (table, n) in expected where recorded[table] != nil {
            XCTAssertEqual(recorded[table], n, "rows of \(table)")
        }
    }

    /// The databases pgsnap drops itself (a restore test's scratch database, the previous one
    /// under --drop-previous) go, although the corpus holds a subscription: DROP DATABASE
    /// refuses a database with a subscription, even WITH (FORCE).
    func testRestoreTestAndDropPreviousLeaveNothingBehind() throws {
        let db = try corpusDatabase()
        let original = try DatabaseFingerprint.of(db)
        let id = try backupAndVerify(db)

        let tested = try fixture.pgsnap(["verify", id, "--restore-test", "-d", db])
        XCTAssertEqual(tested.status, 0, tested.stderr)
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "verify --restore-test left its scratch database")
        CorpusCluster.dropLeftoverScratchDatabases()

        try Harness.psql(db, "DELETE FROM public.orders WHERE id % 3 = 0")
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--drop-previous"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "--drop-previous kept the previous database")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "restore --drop-previous")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// Damage the original every way a bad migration could, restore over it: it is the corpus again.
    func testRestoreOverDamagedOriginalReproducesCorpus() throws {
        let db = try corpusDatabase()
        let original = try DatabaseFingerprint.of(db)
        let id = try backupAndVerify(db)

        for sql in [
            "DROP TABLE public.events_default",
            "DELETE FROM public.orders WHERE id % 2 = 0",
            "UPDATE \"Weird.Schema \"\"q\"\"\".\"table \"\"with\"\" quotes.and dots\" SET \"ünïcødé 列\" = 'changed'",
            "REFRESH MATERIALIZED VIEW public.not_populated",
            "SELECT lo_unlink(424203)",
            "SELECT setval('public.not_called_seq', 7)",
            "ALTER TABLE public.customers DROP COLUMN tags",
            "DROP POLICY \"own documents\" ON public.documents",
        ] { try Harness.psql(db, sql) }
        for sql in [
            "ALTER DATABASE \"\(db)\" SET work_mem = '1MB'",
            "ALTER DATABASE \"\(db)\" RESET statement_timeout",
            "ALTER ROLE pgsnap_corpus_reader IN DATABASE \"\(db)\" RESET statement_timeout",
            "ALTER ROLE pgsnap_corpus_writer IN DATABASE \"\(db)\" SET work_mem = '2MB'",
            "COMMENT ON DATABASE \"\(db)\" IS 'damaged'",
            "REVOKE TEMPORARY ON DATABASE \"\(db)\" FROM pgsnap_corpus_reader",
            "ALTER DATABASE \"\(db)\" CONNECTION LIMIT 7",
        ] { try Harness.psql("postgres", sql) }
        let damaged = try DatabaseFingerprint.of(db)
        let differing = zip(original.sections, damaged.sections).filter { $0 != $1 }.map(\.0.name)
        XCTAssertEqual(differing, ["schema", "rows", "sequences", "large objects", "database"], "the damage must show in every section it touched")

        let held = try HeldSession(database: db, applicationName: "fidelity_held")
        defer { held.close() }
        XCTAssertTrue(try held.waitUntilConnected(), "the held psql session never appeared")
        try pgsnapStep(["restore", id, "-d", db, "--yes", "--terminate-connections"])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "restore over the damaged original")
        let previous = try RestoreFixture.previousDatabases(of: db)
        XCTAssertEqual(previous.count, 1, "expected the damaged database kept aside: \(previous)")
        if let p = previous.first {
            XCTAssertEqual(try Harness.psql(p, "SELECT to_regclass('public.events_default') IS NULL"), "t", "\(p) is not the damaged database")
        }
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// The other compression modes carry the corpus as exactly as the default gzip.
    func testCompressionModesReproduceCorpus() throws {
        let db = try corpusDatabase()
        let original = try DatabaseFingerprint.of(db)
        for mode in ["zstd", "none"] {
            let id = try backupAndVerify(db, ["--compress", mode])
            let copy = "\(db)_\(mode)"
            fixture.track(database: copy)
            try pgsnapStep(["restore", id, "--target", copy, "-d", db])
            DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "--compress \(mode)")
        }
    }

    /// Properties fixed when a database is created (ICU locale provider, default tablespace):
    /// the restored database is created with them too.
    func testDatabaseLocaleProviderAndTablespaceSurvive() throws {
        let db = "fidicu_\(UUID().uuidString.prefix(8).lowercased())"
        fixture.track(database: db)
        try Harness.psql("postgres", """
            CREATE DATABASE \(db) TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' \
            LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TABLESPACE \(CorpusCluster.tablespace)
            """)
        try Harness.psqlFile(db, Harness.repo + "/Tests/Fixtures/corpus-rails-migrations.sql")
        let original = try DatabaseFingerprint.of(db)
        let properties = original.sections.last?.lines.first ?? ""
        XCTAssertTrue(properties.contains("provider=i icu=de-DE tablespace=\(CorpusCluster.tablespace)"), properties)

        let id = try backupAndVerify(db)
        let copy = "\(db)_copy"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "-d", db])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "ICU database in a tablespace, restore --target")
    }

    /// Rails / dbmate keep one varchar row per migration and no dirty column: the manifest records
    /// the newest version by number (not by text), and the database round-trips.
    func testRailsShapedSchemaMigrationsRecordNewestVersion() throws {
        let db = try fixture.database("fidrails")
        try Harness.psqlFile(db, Harness.repo + "/Tests/Fixtures/corpus-rails-migrations.sql")
        let newest = try XCTUnwrap(Int64(try Harness.psql(db, "SELECT max(version::bigint) FROM schema_migrations")))
        let newestAsText = try Harness.psql(db, "SELECT max(version) FROM schema_migrations")
        XCTAssertNotEqual(String(newest), newestAsText, "the fixture must tell numeric from textual order apart")
        let original = try DatabaseFingerprint.of(db)

        let id = try backupAndVerify(db)
        let recorded = try Harness.manifest(dir: fixture.dir, id: id)["migration"]
        XCTAssertEqual(try migrationVersion(id), newest, "manifest migration: \(recorded ?? "none")")

        let copy = "\(db)_copy"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "-d", db])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "Rails-shaped restore --target")
    }
}

/// Cluster-wide things the corpus needs: its tablespace (a directory under the test cluster's
/// own temp directory, owned by the server's OS user) and its roles, removed after the class.
enum CorpusCluster {
    static let tablespace = "pgsnap_corpus_space"
    static let roles = ["pgsnap_corpus_owner", "pgsnap_corpus_reader", "pgsnap_corpus_writer", "pgsnap corpus \"odd\" rôle"]
    static var corpusPath: String { Harness.repo + "/Tests/Fixtures/corpus.sql" }

    /// Creates the tablespace unless it exists (CREATE TABLESPACE cannot run in a transaction block).
    static func prepare() throws {
        if try Harness.psql("postgres", "SELECT count(*) FROM pg_tablespace WHERE spcname = '\(tablespace)'") == "1" { return }
        let data = Harness.require("PGSNAP_TEST_PGDATA")
        let location = (data as NSString).deletingLastPathComponent + "/corpus_tablespace"
        try FileManager.default.createDirectory(atPath: location, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // The server runs as `postgres` when the tests run as root: it must own the directory.
        if let user = Harness.env["PGSNAP_TEST_RUNAS"], !user.isEmpty {
            try FileManager.default.setAttributes([.ownerAccountName: user], ofItemAtPath: location)
        }
        try Harness.psql("postgres", "CREATE TABLESPACE \(tablespace) LOCATION '\(location)'")
    }

    /// Drops the subscriptions of `database` (the corpus's never has a slot), so it can be dropped.
    static func dropSubscriptions(in database: String) {
        let sql = """
            SELECT format('DROP SUBSCRIPTION %I', subname) FROM pg_subscription
            WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            \\gexec
            """
        _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", database], stdin: Data(sql.utf8))
    }

    /// Drops scratch databases a failed step left (subscriptions first), so the next step's
    /// own checks see only what it did.
    static func dropLeftoverScratchDatabases() {
        for scratch in (try? RestoreFixture.scratchDatabases()) ?? [] {
            dropSubscriptions(in: scratch)
            Harness.dropDatabase(scratch)
        }
    }

    /// Best effort, after every corpus database is gone: the tablespace, then the roles.
    static func cleanUp() {
        let psql = Harness.pgbin + "/psql"
        _ = try? Harness.run(psql, ["-X", "-q", "-d", "postgres", "-c", "DROP TABLESPACE IF EXISTS \(tablespace)"])
        for role in roles {
            let quoted = "\"" + role.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            _ = try? Harness.run(psql, ["-X", "-q", "-d", "postgres", "-c", "DROP OWNED BY \(quoted)"])
            _ = try? Harness.run(psql, ["-X", "-q", "-d", "postgres", "-c", "DROP ROLE IF EXISTS \(quoted)"])
        }
    }
}
