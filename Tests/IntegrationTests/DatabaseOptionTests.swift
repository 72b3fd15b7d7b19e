import Foundation
import XCTest

/// `-d/--dbname` means the same in every command: the database whose snapshots are meant, as a
/// name or a connection string (as backup and restore read it); `--database` is the old spelling.
/// Two databases share one backup directory, so a filter that is ignored shows up as the other
/// database's snapshot.
final class DatabaseOptionTests: XCTestCase {
    var databases: [String] = []
    var dir = ""
    var ids: [String: String] = [:]

    override func setUpWithError() throws {
        dir = try Harness.tempDir()
        for prefix in ["dopt_a", "dopt_b"] {
            let db = try Harness.createDatabase(prefix)
            databases.append(db)
            try Harness.psql(db, "CREATE TABLE items AS SELECT i AS id FROM generate_series(1, 10) i")
            let r = try Harness.pgsnap(["backup", "-d", db], dir: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            ids[db] = Harness.snapshotID(r)
        }
    }

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }

    /// Every spelling of the option and every form of its value that names database A.
    var spellingsOfA: [[String]] {
        let a = databases[0]
        return [["-d", a], ["--dbname", a], ["--database", a], ["--dbname=\(a)"],
                ["-d", "postgres://someone@db.example:5432/\(a)?sslmode=disable"], ["-d", "host=db.example dbname=\(a)"]]
    }

    func json(_ r: Harness.Result) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    func testListShowPruneAndCheckSelectTheDatabaseNamedByDashD() throws {
        let a = databases[0], idA = ids[a]!
        for option in spellingsOfA {
            let list = try Harness.pgsnap(["list", "--json"] + option, dir: dir)
            XCTAssertEqual(list.status, 0, "list \(option): \(list.stderr)")
            let listed = (try json(list) as? [[String: Any]])?.compactMap { $0["id"] as? String }
            XCTAssertEqual(listed, [idA], "list \(option)")

            // B's snapshot is the newer one: `latest` without the filter would be B's.
            let show = try Harness.pgsnap(["show", "latest", "--json"] + option, dir: dir)
            XCTAssertEqual(show.status, 0, "show \(option): \(show.stderr)")
            XCTAssertEqual((try json(show) as? [String: Any])?["id"] as? String, idA, "show \(option)")

            let prune = try Harness.pgsnap(["prune", "--dry-run", "--json"] + option, dir: dir)
            XCTAssertEqual(prune.status, 0, "prune \(option): \(prune.stderr)")
            let decided = ((try json(prune) as? [String: Any])?["decisions"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            XCTAssertEqual(decided, [idA], "prune \(option)")

            let check = try Harness.pgsnap(["check", "--json"] + option, dir: dir)
            XCTAssertEqual(check.status, 0, "check \(option): \(check.stderr)")
            let checked = ((try json(check) as? [String: Any])?["databases"] as? [[String: Any]])?.compactMap { $0["database"] as? String }
            XCTAssertEqual(checked, [a], "check \(option)")
        }
    }

    func testDiffTakesDashDAsTheDatabaseToCompare() throws {
        let a = databases[0]
        let r = try Harness.pgsnap(["diff", "latest", "-d", a, "--json"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual((try json(r) as? [String: Any])?["snapshot"] as? String, ids[a])
    }

    func testADashDThatNamesNoDatabaseIsAUsageError() throws {
        for command in [["list"], ["show", "latest"], ["prune", "--dry-run"], ["check"]] {
            let r = try Harness.pgsnap(command + ["-d", "host=db.example port=5432"], dir: dir)
            Harness.assertOneErrorLine(r, status: 64, "\(command)")
            XCTAssertTrue(r.stderr.contains("names no database"), "\(command): \(r.stderr)")
            let unparsable = try Harness.pgsnap(command + ["-d", "postgres://[broken"], dir: dir)
            XCTAssertEqual(unparsable.status, 64, "\(command): \(unparsable.stderr)")
        }
        // Nothing was deleted by the failed prune runs.
        XCTAssertEqual(Harness.snapshotFiles(dir).filter { $0.hasSuffix(".manifest.json") }.count, 2)
    }
}
