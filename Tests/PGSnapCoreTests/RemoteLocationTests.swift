import Foundation
import XCTest

@testable import PGSnapCore

final class RemoteLocationTests: XCTestCase {
    func testParsing() throws {
        let cases: [(String, String, String)] = [
            ("s3://backups", "backups", ""),
            ("s3://backups/", "backups", ""),
            ("s3://backups/pgsnap", "backups", "pgsnap"),
            ("s3://my.bucket-1/a//b/", "my.bucket-1", "a/b"),
        ]
        for (text, bucket, prefix) in cases {
            let l = try RemoteLocation(parsing: text)
            XCTAssertEqual(l.bucket, bucket, text)
            XCTAssertEqual(l.prefix, prefix, text)
        }
        for bad in ["backups", "http://b/x", "s3://", "s3://ab", "s3://Upper", "s3://-dash", "s3://b_u", "s3://bucket/../x", "s3://bucket/a\nb"] {
            assertPGSnapError(.usage, bad) { try RemoteLocation(parsing: bad) }
        }
    }

    func testKeysAndNames() throws {
        let l = try RemoteLocation(parsing: "s3://b-1/nightly/eu")
        XCTAssertEqual(l.key("app_20261201T000000Z.sql.gz"), "nightly/eu/app_20261201T000000Z.sql.gz")
        XCTAssertEqual(l.listPrefix, "nightly/eu/")
        XCTAssertEqual(l.name(ofKey: "nightly/eu/x.sql.gz"), "x.sql.gz")
        XCTAssertNil(l.name(ofKey: "nightly/eu/deeper/x.sql.gz"))
        XCTAssertNil(l.name(ofKey: "nightly/eu-old/x.sql.gz"))
        XCTAssertEqual(l.description, "s3://b-1/nightly/eu")
        let root = try RemoteLocation(parsing: "s3://b-1")
        XCTAssertEqual(root.key("x"), "x")
        XCTAssertEqual(root.listPrefix, "")
    }
}
