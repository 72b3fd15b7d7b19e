import PGSnapCore
import XCTest

/// The line a failed tool's stderr is reduced to, on the formats of 14 (context at error level)
/// and of 15 and later (context as `detail:`), as the tools printed them on this machine.
final class ToolErrorLineTests: XCTestCase {
    func testRowSecurityRefusalIsTheCauseNotTheQuery() {
        let v14 = [
            "pg_dump: error: query failed: ERROR:  query would be affected by row-level security policy for table \"rls\"",
            "HINT:  To disable the policy for the table's owner, use ALTER TABLE NO FORCE ROW LEVEL SECURITY.",
            "pg_dump: error: query was: COPY public.rls (id) TO stdout;",
        ]
        let v15 = [
            "pg_dump: error: query failed: ERROR:  query would be affected by row-level security policy for table \"rls\"",
            "HINT:  To disable the policy for the table's owner, use ALTER TABLE NO FORCE ROW LEVEL SECURITY.",
            "pg_dump: detail: Query was: COPY public.rls (id) TO stdout;",
        ]
        XCTAssertEqual(ToolErrorLine.pick(v14), v14[0])
        XCTAssertEqual(ToolErrorLine.pick(v15), v15[0])
    }

    func testServerMessageIsJoinedToTheFailedCopy() {
        let failed = "pg_dump: error: Dumping the contents of table \"big\" failed: PQgetCopyData() failed."
        let v14 = [failed, "pg_dump: error: Error message from server: FATAL:  terminating connection due to administrator command",
                   "pg_dump: error: The command was: COPY public.big (id, v, j) TO stdout;"]
        let v15 = [failed, "pg_dump: detail: Error message from server: FATAL:  terminating connection due to administrator command",
                   "pg_dump: detail: Command was: COPY public.big (id, v, j) TO stdout;"]
        let expected = "pg_dump: error: Dumping the contents of table \"big\" failed: PQgetCopyData() failed: FATAL:  terminating connection due to administrator command"
        XCTAssertEqual(ToolErrorLine.pick(v14), expected)
        XCTAssertEqual(ToolErrorLine.pick(v15), expected)
    }

    func testWorkerDeathGivesWayToTheWorkersReason() {
        let lines = ["pg_restore: error: could not execute query: ERROR:  out of shared memory",
                     "pg_restore: error: a worker process died unexpectedly"]
        XCTAssertEqual(ToolErrorLine.pick(lines), lines[0])
        XCTAssertEqual(ToolErrorLine.pick(["pg_restore: error: a worker process died unexpectedly"]),
                       "pg_restore: error: a worker process died unexpectedly")
    }

    func testWithoutAnErrorLineTheLastLine() {
        XCTAssertEqual(ToolErrorLine.pick(["starting", "killed"]), "killed")
        XCTAssertNil(ToolErrorLine.pick([]))
    }
}
