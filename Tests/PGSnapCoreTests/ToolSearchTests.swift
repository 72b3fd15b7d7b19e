import PGSnapCore
import XCTest

/// The order pgsnap looks for PostgreSQL tools in, and why.
final class ToolSearchTests: XCTestCase {
    func dirs(_ s: ToolSearch) -> [String] { s.places.map(\.directory) }

    func testExplicitDirectoryIsTheOnlyPlace() {
        let s = ToolSearch(explicit: ("/opt/pg18/bin", "--pg-bindir"), serverMajor: 18, installedMajors: [15, 18], path: "/usr/bin")
        XCTAssertEqual(s.places, [.init(directory: "/opt/pg18/bin", reason: "--pg-bindir")])
    }

    func testServerMajorFirstThenNewerThenPathThenOlder() {
        let s = ToolSearch(explicit: nil, serverMajor: 16, installedMajors: [14, 15, 16, 17, 18], path: "/usr/local/bin:/usr/bin")
        XCTAssertEqual(dirs(s), ["/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/18/bin", "/usr/lib/postgresql/17/bin",
                                 "/usr/local/bin", "/usr/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/14/bin"])
        XCTAssertEqual(s.places[0].reason, "the Debian/PGDG layout for the server's major 16")
        XCTAssertEqual(s.places[1].reason, "the newest installed tools new enough for the server (18)")
        XCTAssertEqual(s.places[3].reason, "PATH")
        XCTAssertEqual(s.places[5].reason, "installed, but older than the server")
    }

    /// The server's own major is not installed: newer ones, then PATH.
    func testServerMajorMissingFromLayout() {
        let s = ToolSearch(explicit: nil, serverMajor: 17, installedMajors: [15, 18], path: "/usr/bin")
        XCTAssertEqual(dirs(s), ["/usr/lib/postgresql/18/bin", "/usr/bin", "/usr/lib/postgresql/15/bin"])
    }

    /// A PATH entry that is also a layout directory is looked at once, where the layout puts it.
    func testNoDuplicatesAndNoEmptyPathEntries() {
        let s = ToolSearch(explicit: nil, serverMajor: 15, installedMajors: [15], path: "::/usr/lib/postgresql/15/bin:/bin:")
        XCTAssertEqual(dirs(s), ["/usr/lib/postgresql/15/bin", "/bin"])
    }

    func testUnknownServerMajorTriesNewestFirst() {
        let s = ToolSearch(explicit: nil, serverMajor: nil, installedMajors: [15, 17], path: nil)
        XCTAssertEqual(dirs(s), ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/15/bin", "/usr/bin", "/bin"])
    }

    func testLayoutListingKeepsNumbersOnly() {
        XCTAssertEqual(ToolSearch.majors(inLayout: ["17", "15", "lib", ".", "0", "16beta"]), [15, 17])
    }

    func testTooOldNamesBothMajorsAndThePackage() {
        let e = ToolSearch.tooOld("pg_dump", version: "15.18", path: "/usr/lib/postgresql/15/bin/pg_dump", serverMajor: 18)
        XCTAssertEqual(e.description,
                       "pg_dump 15.18 at /usr/lib/postgresql/15/bin/pg_dump is older than the server (PostgreSQL 18); pg_dump must be at least the server's major. Install postgresql-client-18 (the PGDG apt repository has every major) or pass --pg-bindir with PostgreSQL 18 tools")
    }
}
