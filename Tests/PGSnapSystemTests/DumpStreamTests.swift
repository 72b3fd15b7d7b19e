import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

final class DumpStreamTests: XCTestCase {
    /// Writes `bytes` as pgsnap does (parallel gzip members), returning the path.
    func writeGzip(_ bytes: [UInt8], in dir: String, name: String = "app_20261122T031500Z.sql.gz") throws -> String {
        let path = dir + "/" + name
        let sink = try FileSink(creating: path)
        let writer = ParallelGzipWriter(sink: sink, level: 6, jobs: 2, blockSize: 64 << 10)
        try bytes.withUnsafeBytes { try writer.write($0) }
        try writer.finish()
        return path
    }

    func fileSize(_ path: String) throws -> Int64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? -1
    }

    func readAll(_ path: String, _ compression: CompressionAlgorithm) throws -> (DumpStream.Outcome, [UInt8], [Int64]) {
        var content: [UInt8] = []
        var progress: [Int64] = []
        let outcome = try DumpStream.open(path: path, compression: compression)
            .readAll(sink: { content.append(contentsOf: $0) }, progress: { progress.append($0) })
        return (outcome, content, progress)
    }

    func testGzipFileReportsSizeChecksumAndContent() throws {
        let dir = try makeTemporaryDirectory(self)
        // Larger than the 1 MiB read buffer, so the file is read in several pieces.
        let input = dumpLikeText(3 << 20) + pseudoRandomBytes(300_000, seed: 11)
        let path = try writeGzip(input, in: dir)
        let (outcome, content, progress) = try readAll(path, .gzip)
        XCTAssertNil(outcome.readError)
        XCTAssertNil(outcome.decompressError)
        XCTAssertNil(outcome.sinkError)
        XCTAssertEqual(outcome.compressedBytes, try fileSize(path))
        XCTAssertEqual(outcome.sha256, try sha256sum(path))
        XCTAssertEqual(content, input)
        XCTAssertEqual(progress.last, outcome.compressedBytes)
        XCTAssertEqual(progress, progress.sorted(), "progress only moves forward")
    }

    func testCorruptFileReportsDecompressErrorButFullSizeAndChecksum() throws {
        let dir = try makeTemporaryDirectory(self)
        let input = pseudoRandomBytes(3 << 20, seed: 5)
        let path = try writeGzip(input, in: dir)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertGreaterThan(bytes.count, 2 << 20, "the damage must be followed by more than one read of the file")
        bytes[200_000] ^= 0xFF  // inside the random data of an early member
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let (outcome, content, _) = try readAll(path, .gzip)
        let error = try XCTUnwrap(outcome.decompressError as? PGSnapError, "\(String(describing: outcome.decompressError))")
        XCTAssertEqual(error.status, .verificationFailed)
        XCTAssertNil(outcome.readError)
        XCTAssertNil(outcome.sinkError)
        XCTAssertEqual(outcome.compressedBytes, Int64(bytes.count), "read to the end despite the error")
        XCTAssertEqual(outcome.sha256, try sha256sum(path))
        XCTAssertLessThan(content.count, input.count)
    }

    func testTruncatedGzipFileReportsDecompressError() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = try writeGzip(dumpLikeText(500_000), in: dir)
        let size = try fileSize(path)
        XCTAssertEqual(truncate(path, off_t(size - 3)), 0)
        let (outcome, _, _) = try readAll(path, .gzip)
        let error = try XCTUnwrap(outcome.decompressError as? PGSnapError)
        XCTAssertEqual(error.status, .verificationFailed)
        XCTAssertTrue(error.description.contains("truncated"), "\(error)")
        XCTAssertEqual(outcome.compressedBytes, size - 3)
        XCTAssertEqual(outcome.sha256, try sha256sum(path))
    }

    func testGarbageAfterGzipFileReportsDecompressError() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = try writeGzip(dumpLikeText(10_000), in: dir)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("\n-- appended by hand\n".utf8))
        try handle.close()
        let (outcome, content, _) = try readAll(path, .gzip)
        XCTAssertNotNil(outcome.decompressError)
        XCTAssertEqual(content, dumpLikeText(10_000))
        XCTAssertEqual(outcome.compressedBytes, try fileSize(path))
    }

    func testUncompressedFileIsPassedThrough() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/app_20261122T031500Z.sql"
        let input = dumpLikeText((1 << 20) + 17)
        try Data(input).write(to: URL(fileURLWithPath: path))
        let (outcome, content, _) = try readAll(path, .none)
        XCTAssertNil(outcome.decompressError)
        XCTAssertEqual(content, input)
        XCTAssertEqual(outcome.compressedBytes, Int64(input.count))
        XCTAssertEqual(outcome.sha256, try sha256sum(path))
    }

    func testSinkErrorStopsTheRead() throws {
        struct Gone: Error {}
        let dir = try makeTemporaryDirectory(self)
        let path = try writeGzip(pseudoRandomBytes(4 << 20, seed: 13), in: dir)
        var calls = 0
        let outcome = try DumpStream.open(path: path, compression: .gzip).readAll(sink: { _ in
            calls += 1
            throw Gone()
        })
        XCTAssertEqual(calls, 1)
        XCTAssertTrue(outcome.sinkError is Gone, "\(String(describing: outcome.sinkError))")
        XCTAssertNil(outcome.decompressError, "a sink failure is not the file's fault")
        XCTAssertLessThan(outcome.compressedBytes, try fileSize(path))
    }

    func testMissingFileIsAnError() throws {
        let dir = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try DumpStream.open(path: dir + "/missing.sql.gz", compression: .gzip)) {
            XCTAssertTrue("\($0)".contains("missing.sql.gz"), "\($0)")
        }
    }
}

/// SnapshotDirectory.parent(of:) replaces NSString's deletingLastPathComponent, which trapped in
/// release builds on a one-character relative path.
final class SnapshotDirectoryParentTests: XCTestCase {
    func testParentOfPaths() {
        let cases: [(String, String)] = [("d", "."), ("dd", "."), ("./d", "."), ("a/b", "a"), ("a/b/", "a"), ("/d", "/"),
                                         ("/", "/"), ("/var/backups/pgsnap", "/var/backups"), ("a//b", "a/"), ("../x", "..")]
        for (path, parent) in cases {
            XCTAssertEqual(SnapshotDirectory.parent(of: path), parent, path)
        }
    }
}
