import Foundation
import PGSnapCore
import PGSnapSystem
import StorageContract
import XCTest

/// The storage contract against the backup directory on disk.
final class LocalStorageTests: XCTestCase {
    var dirs: [String] = []

    override func tearDown() {
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
    }

    func testKeepsTheStorageContract() {
        let contract = StorageContract(largeBytes: 3 << 20) { [self] in
            let path = NSTemporaryDirectory() + "pgsnap-local-contract-" + UUID().uuidString
            dirs.append(path)
            return LocalStorage(try SnapshotDirectory(path: path, create: true))
        }
        for c in StorageContract.cases {
            XCTAssertNoThrow(try c.run(contract), c.name)
        }
    }

    func testFilesAreOwnerOnly() throws {
        let path = NSTemporaryDirectory() + "pgsnap-local-modes-" + UUID().uuidString
        dirs.append(path)
        let storage = LocalStorage(try SnapshotDirectory(path: path, create: true))
        let upload = try storage.create("app_20261101T000000Z.dir/toc.dat", expectedSize: 1, sha256: nil)
        try [UInt8(1)].withUnsafeBytes { try upload.write($0) }
        _ = try upload.commit()
        var st = stat()
        XCTAssertEqual(stat(path + "/app_20261101T000000Z.dir", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
        XCTAssertEqual(stat(path + "/app_20261101T000000Z.dir/toc.dat", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
    }
}
