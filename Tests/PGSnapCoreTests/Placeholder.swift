import XCTest
final class PGSnapCoreTestsPlaceholder: XCTestCase { func testNothing() {} }
