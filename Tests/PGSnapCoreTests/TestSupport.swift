import Foundation
import XCTest

@testable import PGSnapCore

/// A UTC instant from calendar fields, built independently of the code under test.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0,
         millisecond: Int = 0) -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    return calendar.date(from: c)!.addingTimeInterval(Double(millisecond) / 1000)
}

/// Asserts that `body` throws a `PGSnapError` with `status`, and returns it for further checks.
@discardableResult
func assertPGSnapError<T>(
    _ status: ExitStatus, _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) -> PGSnapError? {
    do {
        let value = try body()
        XCTFail("expected a PGSnapError (\(status)), got \(value). \(message)", file: file, line: line)
        return nil
    } catch let error as PGSnapError {
        XCTAssertEqual(error.status, status, "\(error). \(message)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a PGSnapError, got \(type(of: error)): \(error). \(message)", file: file, line: line)
        return nil
    }
}
