import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

/// push and pull are a copy between two storages: here the directory and the in-memory storage,
/// so the transfer's rules (manifest last, checked as it streams, nothing kept from a damaged
/// copy, a whole copy not sent again) are shown without S3.
final class TransferTests: XCTestCase {
    /// A directory holding one plain snapshot (the verify tests' dump), and its id.
    func directoryWithSnapshot() throws -> (dir: String, id: String) {
        let dir = try makeTemporaryDirectory(self)
        let memory = try VerifyServiceTests.storage(test: self)
        let local = LocalStorage(try SnapshotDirectory(path: dir, create: false))
        for name in memory.names {
            try local.putSmall(name, bytes: try memory.readSmall(name, limit: 1 << 20))
        }
        return (dir, VerifyServiceTests.id)
    }

    func snapshotFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    func testPushThenPullGivesTheSameBytesAndAWholeCopyIsNotSentAgain() throws {
        let (dir, id) = try directoryWithSnapshot()
        let memory = InMemoryStorage(chunkSize: 5)
        let pushed = try PushService(session: try VerifyServiceTests.session(directory: dir), remote: memory)
            .run(selector: nil, all: true, wait: nil)
        XCTAssertEqual(pushed.map(\.action), ["uploaded"])
        XCTAssertEqual(memory.names, [id + ".manifest.json", id + ".sql.gz"])
        XCTAssertEqual(try memory.stat(id + ".sql.gz")?.sha256, try sha256sum(dir + "/" + id + ".sql.gz"),
                       "the SHA-256 is recorded with the copy")
        let again = try PushService(session: try VerifyServiceTests.session(directory: dir), remote: memory)
            .run(selector: nil, all: true, wait: nil)
        XCTAssertEqual(again.map(\.action), ["skipped"])

        let fresh = try makeTemporaryDirectory(self)
        let pulled = try PullService(session: try VerifyServiceTests.session(directory: fresh), remote: memory)
            .pull(SnapshotSelector(kind: .latest), wait: nil)
        XCTAssertEqual(pulled.action, "downloaded")
        XCTAssertEqual(snapshotFiles(fresh), [id + ".manifest.json", id + ".sql.gz"])
        for name in snapshotFiles(fresh) {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: fresh + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)), name)
        }
    }

    func testADamagedCopyIsNotPulledAndNothingIsKept() throws {
        let (dir, id) = try directoryWithSnapshot()
        let memory = InMemoryStorage()
        _ = try PushService(session: try VerifyServiceTests.session(directory: dir), remote: memory).run(selector: nil, all: true, wait: nil)
        var bytes = try memory.readSmall(id + ".sql.gz", limit: 1 << 20)
        bytes[bytes.count / 2] ^= 0xFF
        try memory.putSmall(id + ".sql.gz", bytes: bytes)

        let fresh = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try PullService(session: try VerifyServiceTests.session(directory: fresh), remote: memory)
            .pull(SnapshotSelector(kind: .id(id)), wait: nil)) { error in
            let e = error as? PGSnapError
            XCTAssertEqual(e?.status, .verificationFailed, "\(error)")
            XCTAssertTrue(e?.what.contains("SHA-256") ?? false, "\(error)")
        }
        XCTAssertEqual(snapshotFiles(fresh), [], "nothing that looks like a snapshot is kept")
    }
}
