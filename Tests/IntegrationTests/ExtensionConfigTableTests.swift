import Foundation
import XCTest

/// An extension's configuration table with a filter (PostGIS' `spatial_ref_sys`): pg_dump dumps
/// only the user's rows, and `CREATE EXTENSION` in the restore puts the extension's own rows back.
/// A directory restore counted the table afterwards and refused every such snapshot.
final class ExtensionConfigTableTests: XCTestCase {
    var fixture: RestoreFixture!
    var installed: [String] = []
    static let name = "pgsnap_cfgtest"

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
        // A real extension, installed where this server looks for them (the test cluster's own
        // SHAREDIR), removed afterwards.
        let share = try Harness.psql("postgres", "SELECT setting FROM pg_config() WHERE name = 'SHAREDIR'")
        let files = [
            "\(Self.name).control": "default_version = '1.0'\nrelocatable = false\nschema = cfg\n",
            "\(Self.name)--1.0.sql": """
                CREATE TABLE cfg.settings (k text PRIMARY KEY, v text, user_defined boolean NOT NULL DEFAULT true);
                INSERT INTO cfg.settings VALUES ('builtin1', 'x', false), ('builtin2', 'y', false);
                SELECT pg_catalog.pg_extension_config_dump('cfg.settings', 'WHERE user_defined');

                """,
        ]
        for (file, text) in files {
            let path = share + "/extension/" + file
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            chmod(path, 0o644)
            installed.append(path)
        }
    }

    override func tearDown() {
        fixture?.cleanUp()
        fixture = nil
        for path in installed { unlink(path) }
    }

    func database() throws -> String {
        let db = try fixture.database("extcfg")
        try Harness.psql(db, "CREATE SCHEMA cfg; CREATE EXTENSION \(Self.name) SCHEMA cfg; INSERT INTO cfg.settings VALUES ('mine', 'z', true)")
        return db
    }

    func directorySnapshot(_ db: String) throws -> String {
        let b = try fixture.pgsnap(["backup", "-d", db, "--format", "directory"])
        XCTAssertEqual(b.status, 0, b.stderr)
        return b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Restored exactly (the extension's two rows and the user's one), the filtered rows checked.
    func testADirectorySnapshotWithAFilteredConfigurationTableRestores() throws {
        let db = try database()
        let before = try Harness.fingerprint(db)
        let id = try directorySnapshot(db)
        XCTAssertEqual(try XCTUnwrap(try Harness.manifest(dir: fixture.dir, id: id)["table_rows"] as? [String: Any])["cfg.settings"] as? Int, 1)
        let copy = db + "_copy"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "--jobs", "2", "--verbose"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("cfg.settings is an extension's configuration table: 1 rows WHERE user_defined, as in the snapshot"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(copy), before)
        XCTAssertEqual(try Harness.psql(copy, "SELECT string_agg(k, ',' ORDER BY k) FROM cfg.settings"), "builtin1,builtin2,mine")
    }

    /// The filter is what is checked: a manifest promising one user row more than the snapshot
    /// holds still fails the restore (exit 2), target not created.
    func testTheFilteredRowsAreStillChecked() throws {
        let db = try database()
        let id = try directorySnapshot(db)
        try Harness.promiseRows(["cfg.settings": 2], dir: fixture.dir, id: id)
        let copy = db + "_copy"
        fixture.track(database: copy)
        let r = try fixture.pgsnap(["restore", id, "--target", copy, "--quiet"])
        Harness.assertOneErrorLine(r, status: 2, "a configuration table short of a user row")
        XCTAssertTrue(r.stderr.contains("restored table cfg.settings has 3 rows, the snapshot has 2"), r.stderr)
        XCTAssertEqual(try Harness.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '\(copy)'"), "0")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }
}
