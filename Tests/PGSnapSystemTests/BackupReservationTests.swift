import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

/// How a backup claims its snapshot name in any storage: over the in-memory storage, no
/// PostgreSQL, no S3. A name is taken by any finished or partial file of the id, or by an
/// upload under way; a write is invisible until committed.
final class BackupReservationTests: XCTestCase {
    let date = ISO8601.parse("2026-11-22T03:15:00Z")!

    func service() throws -> BackupService {
        BackupService(session: try Session(spec: ConnectionSpec(), directory: NSTemporaryDirectory(), environment: ["PATH": "/usr/bin:/bin"],
                                           reporter: Reporter(quiet: true, json: false)))
    }

    func testAFreeNameIsTheFirstAttemptAndInvisibleUntilCommitted() throws {
        let storage = InMemoryStorage()
        let (id, upload) = try service().reserveName(in: storage, database: "app", date: date, label: "pre_000045", compression: .gzip, encrypted: false)
        XCTAssertEqual(id, "app_20261122T031500Z_pre_000045")
        try [UInt8]("dump".utf8).withUnsafeBytes { try upload.write($0) }
        XCTAssertEqual(storage.names, [], "an uncommitted dump is visible")
        XCTAssertEqual(try upload.commit(), 4)
        XCTAssertEqual(storage.names, ["app_20261122T031500Z_pre_000045.sql.gz"])
    }

    func testAnyFileOfTheIdTakesTheName() throws {
        for taken in ["app_20261122T031500Z.sql.gz", "app_20261122T031500Z.manifest.json", "app_20261122T031500Z.sql.zst.age",
                      "app_20261122T031500Z.sql.gz.partial", "app_20261122T031500Z.dir/toc.dat"] {
            let storage = InMemoryStorage()
            try storage.putSmall(taken, bytes: [1])
            let (id, upload) = try service().reserveName(in: storage, database: "app", date: date, label: nil, compression: .zstd, encrypted: true)
            XCTAssertEqual(id, "app_20261122T031500Z-2", "with \(taken)")
            upload.abort()
        }
    }

    func testAnAbortedReservationLeavesNothing() throws {
        let storage = InMemoryStorage()
        let (_, upload) = try service().reserveName(in: storage, database: "app", date: date, label: nil, compression: .gzip, encrypted: false)
        try [UInt8]("partial dump".utf8).withUnsafeBytes { try upload.write($0) }
        upload.abort()
        XCTAssertEqual(storage.names, [])
    }

    /// The directory: `.partial` created exclusively, so a second backup in the same second takes `-2`.
    func testInADirectoryTwoBackupsInOneSecondGetTwoNames() throws {
        let path = NSTemporaryDirectory() + "pgsnap-reserve-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let storage = LocalStorage(try SnapshotDirectory(path: path, create: true))
        let (first, a) = try service().reserveName(in: storage, database: "app", date: date, label: nil, compression: .gzip, encrypted: false)
        let (second, b) = try service().reserveName(in: storage, database: "app", date: date, label: nil, compression: .gzip, encrypted: false)
        XCTAssertEqual([first, second], ["app_20261122T031500Z", "app_20261122T031500Z-2"])
        a.abort()
        b.abort()
        XCTAssertEqual(try storage.list().map(\.name), [])
    }
}
