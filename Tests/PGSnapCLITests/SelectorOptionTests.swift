import XCTest

/// Which snapshot a command means: an id names one, `--before` and `--label` choose among them;
/// mixing them, or an id that only looks right, is a usage error before anything is read.
final class SelectorOptionTests: XCTestCase {
    func testAnIdWithBeforeOrLabelIsRefused() throws {
        let cases: [([String], String)] = [
            (["restore", "app_20261122T031500Z", "--before", "2026-11-20 14:00", "-d", "app"], "give either a snapshot ID or --before"),
            (["restore", "app_20261122T031500Z", "--label", "nightly", "-d", "app"], "or --label, not both"),
            (["show", "app_20261122T031500Z "], "invalid snapshot id 'app_20261122T031500Z' (with spaces around it)"),
        ]
        for (args, expected) in cases {
            let r = try CLI.run(args, env: ["PGSNAP_DIR": "/nonexistent/pgsnap-selector-option-test"])
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
        }
    }
}
