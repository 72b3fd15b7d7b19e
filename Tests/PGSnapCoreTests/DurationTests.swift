import XCTest
@testable import PGSnapCore

/// --max-age and --wait: a number of seconds, minutes, hours, days or weeks, and nothing else.
final class DurationTests: XCTestCase {
    func testDurationsWithAndWithoutUnits() {
        XCTAssertEqual(parseDuration("26h"), 26 * 3600)
        XCTAssertEqual(parseDuration("2d"), 2 * 86400)
        XCTAssertEqual(parseDuration("1.5m"), 90)
        XCTAssertEqual(parseDuration("1w"), 604_800)
        XCTAssertEqual(parseDuration("30s"), 30)
        XCTAssertEqual(parseDuration("45"), 45, "a bare number is seconds")
        XCTAssertEqual(parseDuration("0h"), 0)
        XCTAssertEqual(parseDuration("100000d"), 100_000 * 86400)
    }

    func testWhatDoubleWouldTakeIsRefused() {
        for bad in ["", "h", "inf", "infh", "nan", "1e400h", "1e3", "0x10s", "-0h", "-1h", "+2h", " 2h", "2h ", "2 h", "1.h", ".5h", "1..2h",
                    "2hh", "٣h", "2x", String(repeating: "9", count: 400) + "d"] {
            XCTAssertNil(parseDuration(bad), "'\(bad)'")
        }
    }
}
