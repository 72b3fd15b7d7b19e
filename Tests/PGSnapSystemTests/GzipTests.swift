import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

/// ParallelGzipWriter + FileSink on the way out, GzipInflater on the way back, system gzip as the referee.
final class GzipTests: XCTestCase {
    static let blockSize = 1024

    static var inputs: [(name: String, bytes: [UInt8])] {
        let b = blockSize
        var out: [(String, [UInt8])] = []
        for size in [0, 1, b - 1, b, b + 1, 10 * b + 7] {
            out.append(("random \(size)", pseudoRandomBytes(size, seed: UInt64(size) + 1)))
            out.append(("text \(size)", dumpLikeText(size)))
        }
        out.append(("text 200 KiB", dumpLikeText(200 << 10)))
        return out
    }

    /// Compresses `bytes` into a new file, writing in uneven pieces as pg_dump's pipe delivers them.
    @discardableResult
    func writeGzip(_ bytes: [UInt8], to path: String, jobs: Int, blockSize: Int = GzipTests.blockSize,
                   piece: Int = 333) throws -> (sha256: String, bytes: Int64) {
        let sink = try FileSink(creating: path)
        let writer = ParallelGzipWriter(sink: sink, level: 6, jobs: jobs, blockSize: blockSize)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + piece)
            try bytes[offset..<end].withUnsafeBytes { try writer.write($0) }
            offset = end
        }
        try writer.finish()
        try sink.sync()
        return (sink.sha256Hex(), sink.bytes)
    }

    /// Both ways a gzip snapshot is read: zlib's stream, and libdeflate member by member (what
    /// restore and verify use, handing odd streams to zlib). Every inflating test runs both.
    static let inflaters: [(name: String, make: (Int) throws -> DumpInflater)] = [
        ("zlib", { try GzipInflater(outputChunk: $0) }),
        ("libdeflate", { _ in try GzipMemberInflater() }),
    ]
    var kind = 0

    /// Runs `body` once with each way of inflating.
    func withEachInflater(_ body: () throws -> Void) rethrows {
        for k in Self.inflaters.indices {
            kind = k
            try body()
        }
    }

    func makeInflater(outputChunk: Int = 4096) throws -> DumpInflater { try Self.inflaters[kind].make(outputChunk) }

    /// Inflates `compressed` fed in pieces of `chunk` bytes, then checks the end of the stream.
    func inflate(_ compressed: [UInt8], chunk: Int = 64 << 10, outputChunk: Int = 4096) throws -> [UInt8] {
        let inflater = try makeInflater(outputChunk: outputChunk)
        var out: [UInt8] = []
        var offset = 0
        while offset < compressed.count {
            let end = min(compressed.count, offset + chunk)
            try compressed[offset..<end].withUnsafeBytes { piece in
                try inflater.feed(piece) { out.append(contentsOf: $0) }
            }
            offset = end
        }
        try inflater.finish()
        return out
    }

    func readFile(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// One gzip member made by the system's gzip, independently of pgsnap.
    func systemGzip(_ bytes: [UInt8], in dir: String) throws -> [UInt8] {
        let path = dir + "/" + UUID().uuidString
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try runTool("/usr/bin/gzip", ["-c", "-n", path])
        XCTAssertEqual(r.status, 0)
        return [UInt8](r.stdout)
    }

    // MARK: round trips

    func testRoundTripThroughInflater() throws {
        try withEachInflater {
            let dir = try makeTemporaryDirectory(self)
            for jobs in [1, 2, 4] {
                for (name, input) in GzipTests.inputs {
                    let path = dir + "/\(jobs)-\(name.replacingOccurrences(of: " ", with: "-")).sql.gz"
                    try writeGzip(input, to: path, jobs: jobs)
                    let compressed = try readFile(path)
                    XCTAssertEqual(try inflate(compressed), input, "\(name), jobs \(jobs)")
                    XCTAssertEqual(try inflate(compressed, chunk: 7, outputChunk: 100), input, "\(name), jobs \(jobs), small chunks")
                }
            }
        }
    }

    func testSystemGzipReadsTheOutput() throws {
        let dir = try makeTemporaryDirectory(self)
        for jobs in [1, 2, 4] {
            for (name, input) in GzipTests.inputs {
                let path = dir + "/\(jobs)-\(name.replacingOccurrences(of: " ", with: "-")).sql.gz"
                try writeGzip(input, to: path, jobs: jobs)
                let r = try runTool("/usr/bin/gzip", ["-dc", path])
                XCTAssertEqual(r.status, 0, "gzip -dc \(name), jobs \(jobs)")
                XCTAssertEqual([UInt8](r.stdout), input, "gzip -dc \(name), jobs \(jobs)")
                XCTAssertEqual(try runTool("/usr/bin/gzip", ["-t", path]).status, 0, "gzip -t \(name), jobs \(jobs)")
            }
        }
    }

    func testBlocksBecomeSeparateMembers() throws {
        // pigz-style: every block is a complete member, so the stream has ceil(n / blockSize) members.
        let dir = try makeTemporaryDirectory(self)
        for (size, members) in [(0, 1), (1, 1), (1024, 1), (1025, 2), (10 * 1024 + 7, 11)] {
            let path = dir + "/\(size).sql.gz"
            try writeGzip(dumpLikeText(size), to: path, jobs: 2)
            let compressed = try readFile(path)
            var count = 0
            var offset = 0
            // Each member is read by its own inflater, which must end exactly at the member's end.
            while offset < compressed.count {
                let inflater = try GzipInflater(outputChunk: 4096)
                var used = 0
                while !inflater.atMemberBoundary, offset + used < compressed.count {
                    try compressed[(offset + used)...(offset + used)].withUnsafeBytes { try inflater.feed($0) { _ in } }
                    used += 1
                }
                XCTAssertNoThrow(try inflater.finish(), "member \(count) of \(size) bytes")
                offset += used
                count += 1
            }
            XCTAssertEqual(count, members, "\(size) bytes")
        }
    }

    func testFileSinkHashAndSizeMatchTheFile() throws {
        let dir = try makeTemporaryDirectory(self)
        for jobs in [1, 4] {
            for (name, input) in GzipTests.inputs {
                let path = dir + "/\(jobs)-\(name.replacingOccurrences(of: " ", with: "-")).sql.gz"
                let written = try writeGzip(input, to: path, jobs: jobs)
                XCTAssertEqual(written.sha256, try sha256sum(path), "\(name), jobs \(jobs)")
                XCTAssertEqual(written.bytes, Int64(try readFile(path).count), "\(name), jobs \(jobs)")
            }
        }
    }

    func testSameOutputWhateverTheNumberOfJobs() throws {
        let dir = try makeTemporaryDirectory(self)
        let input = dumpLikeText(50 * GzipTests.blockSize + 3)
        var hashes: Set<String> = []
        for jobs in [1, 2, 4, 8] {
            hashes.insert(try writeGzip(input, to: dir + "/\(jobs).sql.gz", jobs: jobs).sha256)
        }
        XCTAssertEqual(hashes.count, 1, "members are written in order, so the file does not depend on scheduling")
    }

    // MARK: multi-member streams

    func testConcatenatedIndependentFilesInflateToTheConcatenation() throws {
        try withEachInflater {
            let dir = try makeTemporaryDirectory(self)
            let a = dumpLikeText(5000)
            let b = pseudoRandomBytes(3000, seed: 7)
            let c = Array("the last part\n".utf8)
            let gzA = try systemGzip(a, in: dir)
            let gzB = try systemGzip(b, in: dir)
            try writeGzip(c, to: dir + "/c.gz", jobs: 1)
            let gzC = try readFile(dir + "/c.gz")
            let whole = gzA + gzB + gzC
            XCTAssertEqual(try inflate(whole), a + b + c)
            XCTAssertEqual(try inflate(whole, chunk: 1, outputChunk: 64), a + b + c, "1-byte chunks")
            XCTAssertEqual(try inflate(gzA + systemGzip([], in: dir) + gzB), a + b, "an empty member in the middle")
        }
    }

    func testCorruptMemberInTheMiddleIsAVerificationFailure() throws {
        try withEachInflater {
            let dir = try makeTemporaryDirectory(self)
            let parts = [dumpLikeText(4000), pseudoRandomBytes(4000, seed: 3), dumpLikeText(3000)]
            for middle in [parts[0], parts[1]] {
                let first = try systemGzip(parts[0], in: dir)
                var second = try systemGzip(middle, in: dir)
                let last = try systemGzip(parts[2], in: dir)
                second[second.count / 2] ^= 0x55
                for chunk in [1 << 20, 100] {
                    let error = assertPGSnapError(.verificationFailed, "chunk \(chunk)") {
                        try inflate(first + second + last, chunk: chunk)
                    }
                    XCTAssertTrue(error?.description.contains("gzip") ?? true, "\(String(describing: error))")
                }
            }
        }
    }

    func testTruncatedStreamFailsAtFinish() throws {
        try withEachInflater {
            let dir = try makeTemporaryDirectory(self)
            let first = try systemGzip(dumpLikeText(700), in: dir)
            let second = try systemGzip(pseudoRandomBytes(300, seed: 9), in: dir)
            let whole = first + second
            let boundaries: Set<Int> = [first.count, whole.count]
            for cut in 0..<whole.count where !boundaries.contains(cut) {
                let inflater = try makeInflater()
                do {
                    try whole[..<cut].withUnsafeBytes { try inflater.feed($0) { _ in } }
                } catch {
                    XCTFail("cut at \(cut): a prefix of a valid stream must feed without error, got \(error)")
                    continue
                }
                let error = assertPGSnapError(.verificationFailed, "cut at \(cut)") { try inflater.finish() }
                XCTAssertTrue(error?.description.contains("truncated") ?? true, "\(String(describing: error))")
            }
            // A cut exactly between members is a complete stream as far as gzip can tell.
            XCTAssertEqual(try inflate(first), dumpLikeText(700))
        }
    }

    func testGarbageAfterTheLastMemberIsAVerificationFailure() throws {
        try withEachInflater {
            let dir = try makeTemporaryDirectory(self)
            let input = dumpLikeText(2000)
            let member = try systemGzip(input, in: dir)
            let garbage: [(name: String, bytes: [UInt8])] = [
                ("text", Array("garbage".utf8)),
                ("newline", [0x0A]),
                ("zeros", [UInt8](repeating: 0, count: 16)),
                ("gzip magic only", [0x1f]),
                ("gzip magic then junk", [0x1f, 0x8b, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                ("half a second member", Array(member.prefix(member.count / 2))),
            ]
            for (name, extra) in garbage {
                for chunk in [1 << 20, member.count, 1] {
                    assertPGSnapError(.verificationFailed, "\(name), chunk \(chunk)") { try inflate(member + extra, chunk: chunk) }
                }
            }
            let inflater = try GzipInflater()
            try member.withUnsafeBytes { try inflater.feed($0) { _ in } }
            XCTAssertFalse(inflater.trailingGarbage)
            XCTAssertThrowsError(try Array("x".utf8).withUnsafeBytes { try inflater.feed($0) { _ in } })
            XCTAssertTrue(inflater.trailingGarbage)
        }
    }

    func testOutputIsPassedOnAsItIsInflated() throws {
        // A sink error stops the inflater at once and comes back unchanged.
        struct Stop: Error {}
        let dir = try makeTemporaryDirectory(self)
        let member = try systemGzip(dumpLikeText(100_000), in: dir)
        let inflater = try GzipInflater(outputChunk: 1000)
        var calls = 0
        XCTAssertThrowsError(try member.withUnsafeBytes { raw in
            try inflater.feed(raw) { _ in
                calls += 1
                if calls == 3 { throw Stop() }
            }
        }) { XCTAssertTrue($0 is Stop, "\($0)") }
        XCTAssertEqual(calls, 3)
    }

    // MARK: FileSink

    func testFileSinkRefusesAnExistingPath() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/exists.sql.gz"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try FileSink(creating: path)) { XCTAssertTrue("\($0)".contains(path), "\($0)") }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "keep me", "the existing file is untouched")

        let created = dir + "/new.sql.gz"
        _ = try FileSink(creating: created)
        XCTAssertThrowsError(try FileSink(creating: created), "a second writer must not reuse the file")
    }

    func testFileSinkDoesNotFollowASymlink() throws {
        let dir = try makeTemporaryDirectory(self)
        let target = dir + "/target"
        let link = dir + "/link.sql.gz"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        XCTAssertThrowsError(try FileSink(creating: link))
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "nothing may be created through the link")
    }

    func testFilesAreCreatedOwnerReadWriteOnly() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/mode.sql.gz"
        try writeGzip(dumpLikeText(5000), to: path, jobs: 2)
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o600, String(st.st_mode & 0o7777, radix: 8))
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG)
    }
}

/// GzipStreamInflater (ISA-L) against the system's gzip: every member, CRC checked, damage refused.
final class GzipStreamInflaterTests: XCTestCase {
    func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-6", "-c"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        let writer = Thread { input.fileHandleForWriting.write(Data(bytes)); try? input.fileHandleForWriting.close() }
        writer.start()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return [UInt8](out)
    }

    func inflate(_ gz: [UInt8]) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "pgsnap-isal-\(UUID().uuidString).gz"
        try Data(gz).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        var out: [UInt8] = []
        try GzipStreamInflater.inflate(file: path) { out.append(contentsOf: $0) }
        return out
    }

    func testInflatesWhatGzipWroteMemberByMember() throws {
        let big = dumpLikeText(3 << 20)
        XCTAssertEqual(try inflate(try gzip(big)), big)
        XCTAssertEqual(try inflate(try gzip([])), [])
        let a = pseudoRandomBytes(700_001, seed: 7), b = dumpLikeText(5_000)
        XCTAssertEqual(try inflate(try gzip(a) + gzip(b)), a + b, "concatenated members, as gzip reads them")
    }

    func testDamageIsAnErrorNotShortData() throws {
        let text = dumpLikeText(600_000)
        var gz = try gzip(text)
        let cut = Array(gz[0..<(gz.count / 2)])
        XCTAssertThrowsError(try inflate(cut), "a truncated file")
        gz[gz.count - 6] ^= 0xff  // the CRC-32 in the trailer
        XCTAssertThrowsError(try inflate(gz), "a wrong CRC-32") { e in
            XCTAssertTrue("\(e)".contains("not valid gzip"), "\(e)")
        }
        XCTAssertThrowsError(try inflate(Array("not gzip at all".utf8)))
    }
}
