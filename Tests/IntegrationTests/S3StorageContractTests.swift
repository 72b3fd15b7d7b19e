import Foundation
import PGSnapCore
import PGSnapSystem
import StorageContract
import XCTest

/// The storage contract against a bucket (moto, signatures checked): multipart parts of 5 MiB,
/// so the large object is three parts.
final class S3StorageContractTests: XCTestCase {
    func testKeepsTheStorageContract() {
        let contract = StorageContract(largeBytes: 12 << 20) {
            let (url, _) = S3Harness.newRemote()
            let env = S3Harness.env(remote: url).compactMapValues { $0 }
            return try S3Storage(remote: try RemoteLocation(parsing: url), environment: env)
        }
        for c in StorageContract.cases {
            XCTAssertNoThrow(try c.run(contract), c.name)
        }
    }

    func testAnAbortedUploadLeavesNoUnfinishedMultipartUpload() throws {
        let (url, prefix) = S3Harness.newRemote()
        let storage = try S3Storage(remote: try RemoteLocation(parsing: url), environment: S3Harness.env(remote: url).compactMapValues { $0 })
        let upload = try storage.create("app_20261101T000000Z.sql.gz", expectedSize: 6 << 20, sha256: nil)
        let part = [UInt8](repeating: 1, count: 6 << 20)
        try part.withUnsafeBytes { try upload.write($0) }
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix).count, 1, "the upload is under way")
        upload.abort()
        XCTAssertEqual(try S3Harness.unfinishedUploads(prefix), [], "abort must end the multipart upload")
        XCTAssertEqual(try S3Harness.objects(prefix), [:])
    }
}
