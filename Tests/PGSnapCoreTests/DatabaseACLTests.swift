import XCTest
@testable import PGSnapCore

final class DatabaseACLTests: XCTestCase {
    func testItemsAsPostgreSQLPrintsThem() {
        XCTAssertEqual(DatabaseACLItem.parse("=Tc/app"), DatabaseACLItem(
            grantee: nil, privileges: [.init(name: "TEMPORARY", grantOption: false), .init(name: "CONNECT", grantOption: false)], grantor: "app"))
        XCTAssertEqual(DatabaseACLItem.parse("migrator=C*c*/app")?.privileges, [.init(name: "CREATE", grantOption: true), .init(name: "CONNECT", grantOption: true)])
        let quoted = DatabaseACLItem.parse("\"we b\"\"x=/\"=c/\"Own er\"")
        XCTAssertEqual(quoted?.grantee, "we b\"x=/")
        XCTAssertEqual(quoted?.grantor, "Own er")
        XCTAssertEqual(quoted?.roles, ["we b\"x=/", "Own er"])
        XCTAssertEqual(DatabaseACLItem.parse("app=CTc/app")?.renaming("app", to: "rest"),
                       DatabaseACLItem.parse("rest=CTc/rest"))
    }

    func testWhatIsNotADatabaseItemIsNil() {
        for bad in ["", "app", "app=c", "app=c/", "app=r/app", "app=c/app/x", "\"app=c/app", "=c/\"x"] {
            XCTAssertNil(DatabaseACLItem.parse(bad), bad)
        }
    }
}
