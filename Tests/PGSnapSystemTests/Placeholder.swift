import XCTest
final class PGSnapSystemTestsPlaceholder: XCTestCase { func testNothing() {} }
