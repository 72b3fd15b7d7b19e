import Foundation
import XCTest

/// The fidelity corpus (Tests/Fixtures/corpus.sql: one of every kind of object a plain dump can
/// carry) through backup -> verify -> restore, compared by `DatabaseFingerprint`.
///
/// `testPlainDumpReproducesCorpusFingerprint` shows that PostgreSQL's own `pg_dump | psql`
/// reproduces every section but the database-level one, which no plain dump carries: any other
/// difference after a pgsnap round trip is pgsnap's.
final class FidelityTests: CorpusTestCase {
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

    /// The plain restore's split load (big tables through several COPY sessions) sent every
    /// non-empty corpus table that way: the same database, and the rows counted from the sessions.
    func testPlainRestoreSplittingEveryTableReproducesCorpus() throws {
        let db = try corpusDatabase()
        let original = try DatabaseFingerprint.of(db)
        let id = try backupAndVerify(db)
        let copy = "\(db)_split"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "-d", db, "--jobs", "2", "--verbose"],
                                   env: ["PGSNAP_PARALLEL_COPY_MIN_ROWS": "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("big table(s) loaded through 2 COPY sessions each"), r.stderr)
        XCTAssertFalse(r.stderr.contains("counting rows instead"), "the COPY results must pair up: \(r.stderr)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "restore with every table split")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// Damage the original every way a bad migration could, restore over it: it is the corpus again.
    func testRestoreOverDamagedOriginalReproducesCorpus() throws {
        let db = try corpusDatabase()
        let original = try DatabaseFingerprint.of(db)
        let id = try backupAndVerify(db)

        try damageCorpus(db)
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
