import PGSnapCore
import StorageContract
import XCTest

/// The storage contract against the in-memory storage the service tests use.
final class InMemoryStorageTests: XCTestCase {
    func testKeepsTheStorageContract() {
        let contract = StorageContract(largeBytes: 3 << 20) { InMemoryStorage(chunkSize: 1 << 20) }
        for c in StorageContract.cases {
            XCTAssertNoThrow(try c.run(contract), c.name)
        }
    }
}
