import Foundation
import XCTest

/// Fidelity gaps the corpus found beyond issue 11's list, one test each (each failed before its fix).
///
/// - A table or column name with a newline: pg_dump's COPY line spans two lines, DumpScanner
///   misses the table, so the manifest has no row count for it and restore checks nothing there.
/// - A subscription in the database: DROP DATABASE refuses it even WITH (FORCE), so the scratch
///   database of `verify --restore-test` stays behind, the next restore fails at its orphan
///   clean-up ("query failed"), and `--drop-previous` exits 1 after a successful swap.
/// - A database created with LOCALE_PROVIDER icu or in another tablespace comes back as libc in
///   pg_default.
final class FidelityGapTests: CorpusTestCase {
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
        XCTAssertTrue(properties.contains("provider=i locale=de-DE rules=- tablespace=\(CorpusCluster.tablespace)"), properties)

        let id = try backupAndVerify(db)
        let copy = "\(db)_copy"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "-d", db])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "ICU database in a tablespace, restore --target")
    }
}
