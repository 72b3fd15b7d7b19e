import XCTest

/// Negative and malformed numbers are usage errors that name the option and its range.
/// ArgumentParser reads "-1" as an option by default ("Missing value for '--jobs'"): numeric
/// options parse their value unconditionally, and the commands' own checks say what is allowed.
final class NumericOptionTests: XCTestCase {
    func testNegativeNumbersNameTheOptionAndItsRange() throws {
        let cases: [([String], String)] = [
            (["restore", "x", "--jobs", "-1"], "--jobs must be 1-64"),
            (["backup", "-d", "x", "--jobs", "-2"], "--jobs must be 1-64"),
            (["backup", "-d", "x", "--level", "-1"], "--level"),
            (["backup", "-d", "x", "--lock-wait-timeout", "-2"], "--lock-wait-timeout must be"),
            (["prune", "--keep-days", "-3"], "--keep-days must be 0 or more"),
            (["prune", "--keep-last", "-1"], "--keep-last"),
            (["check", "--min-size", "-5"], "--min-size must be 0 or more"),
            (["preflight", "--require-migration", "-1"], "--require-migration must be a version, 0 or more"),
            (["preflight", "--max-connections", "-1"], "--max-connections must be 0 or more"),
            (["guard", "--max-connections", "-1", "--", "true"], "--max-connections must be 0 or more"),
        ]
        for (args, expected) in cases {
            let r = try CLI.run(args, env: ["PGSNAP_DIR": "/nonexistent/pgsnap-numeric-option-test"])
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Missing value"), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(args)")
        }
    }

    func testAMissingValueIsStillNamed() throws {
        let r = try CLI.run(["restore", "x", "--jobs"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("--jobs"), r.stderr)
    }
}
