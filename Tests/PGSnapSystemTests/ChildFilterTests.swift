import Foundation
import XCTest
@testable import PGSnapSystem

/// The poll(2) pump that runs age: everything pushed comes out once, in order, whatever the pipe sizes.
final class ChildFilterTests: XCTestCase {
    func command(_ path: String, _ args: [String] = []) -> ExternalCommand {
        ExternalCommand(name: (path as NSString).lastPathComponent, executable: path, arguments: args,
                        environment: ProcessInfo.processInfo.environment)
    }

    func testPushesMoreThanBothPipesHoldWithoutDeadlock() throws {
        let filter = try ChildFilter(command("/bin/cat"))
        // 24 MiB in 3 MiB pushes: far more than the 1 MiB pipes in each direction.
        var input = [UInt8](repeating: 0, count: 3 << 20)
        var output = [UInt8]()
        var expected = [UInt8]()
        for round in 0..<8 {
            for i in input.indices { input[i] = UInt8(truncatingIfNeeded: i &* 31 &+ round) }
            expected += input
            try input.withUnsafeBytes { try filter.push($0) { output += $0 } }
        }
        let status = try filter.finish { output += $0 }
        XCTAssertEqual(status, .exited(0))
        XCTAssertEqual(output.count, expected.count)
        XCTAssertTrue(output == expected, "output differs from input")
    }

    func testAChildThatStopsReadingIsReported() throws {
        let filter = try ChildFilter(command("/bin/sh", ["-c", "exit 3"]))
        let big = [UInt8](repeating: 65, count: 4 << 20)
        XCTAssertThrowsError(try big.withUnsafeBytes { try filter.push($0) { _ in } }) { error in
            XCTAssertTrue(error is ChildFilter.Stopped, "\(error)")
        }
        XCTAssertEqual(filter.child.terminate(grace: 1), .exited(3))
    }

    func testAnOutputErrorStopsThePushAndAbortEndsTheChild() throws {
        struct Full: Error {}
        let filter = try ChildFilter(command("/bin/cat"))
        let chunk = [UInt8](repeating: 1, count: 4 << 20)
        XCTAssertThrowsError(try chunk.withUnsafeBytes { try filter.push($0) { _ in throw Full() } }) { error in
            XCTAssertTrue(error is Full, "\(error)")
        }
        filter.abort()
        XCTAssertFalse(filter.child.isRunning, "cat must be stopped")
    }
}
