import XCTest

@testable import PGSnapCore

final class AllDatabasesTests: XCTestCase {
    func testTheWorstStatusWins() {
        let cases: [([ExitStatus], ExitStatus)] = [
            ([], .success),
            ([.success, .success], .success),
            ([.success, .offsiteCopyFailed], .offsiteCopyFailed),
            ([.offsiteCopyFailed, .locked], .locked),
            ([.locked, .verificationFailed, .offsiteCopyFailed], .verificationFailed),
            ([.verificationFailed, .failure, .locked], .failure),
            ([.offsiteCopyFailed, .failure], .failure),
            ([.failure, .interrupted, .success], .interrupted),
            ([.usage, .failure], .usage),
        ]
        for (statuses, worst) in cases {
            XCTAssertEqual(ExitStatus.worst(statuses), worst, "\(statuses)")
        }
        // A total order: no two statuses share a rank.
        XCTAssertEqual(Set(ExitStatus.allCases.map(\.severity)).count, ExitStatus.allCases.count)
    }

    func testOnlyConnectionStringsPassWithAllDatabases() {
        for text in ["host=db1 user=backup", "dbname=postgres", "postgres://backup@db1/postgres", "postgresql://db1", "service=prod"] {
            XCTAssertTrue(ConnectionSpec.isConnectionString(text), text)
        }
        for text in ["app", "postgres", "my-db", ""] {
            XCTAssertFalse(ConnectionSpec.isConnectionString(text), text)
        }
    }

    func testOutcomeStatus() {
        XCTAssertEqual(DatabaseOutcome(database: "a", id: "a_1").status, .success)
        let failed = DatabaseOutcome(database: "b", id: nil, error: "database \"b\": x", exitStatus: .failure)
        XCTAssertEqual(failed.status, .failure)
        XCTAssertEqual(failed.exitStatus, 1)
    }
}
