import Foundation
import XCTest

/// What the fidelity tests share: a fixture per test, the corpus loader, pgsnap steps that stop
/// the test at their first failure, and the cluster-wide tablespace and roles removed after the class.
class CorpusTestCase: XCTestCase {
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

    /// Damage every way a bad migration could: every section of the fingerprint changes.
    func damageCorpus(_ db: String) throws {
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
    }


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
}

/// Cluster-wide things the corpus needs: its tablespace (a directory under the test cluster's
/// own temp directory, owned by the server's OS user) and its roles, removed after the class.
enum CorpusCluster {
    static let tablespace = "pgsnap_corpus_space"
    static let roles = ["pgsnap_corpus_owner", "pgsnap_corpus_reader", "pgsnap_corpus_writer", "pgsnap corpus \"odd\" rôle"]
    /// corpus.sql needs these contrib extensions; a server build without them (the PostgreSQL
    /// 14 and 16 to 18 builds the version matrix runs) loads corpus-core.sql, the same corpus without them.
    static let contrib = ["pg_trgm", "hstore", "citext", "uuid-ossp", "postgres_fdw", "btree_gist"]
    static let hasContrib: Bool = {
        let names = contrib.map { "'\($0)'" }.joined(separator: ", ")
        return (try? Harness.psql("postgres", "SELECT count(*) FROM pg_available_extensions WHERE name IN (\(names))")) == "\(contrib.count)"
    }()
    static var corpusPath: String { Harness.repo + (hasContrib ? "/Tests/Fixtures/corpus.sql" : "/Tests/Fixtures/corpus-core.sql") }

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
