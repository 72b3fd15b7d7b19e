import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

/// A fresh directory under the system temp directory, removed when the test ends.
func makeTemporaryDirectory(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "pgsnap-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Runs a system tool and returns its exit status and standard output (stderr is discarded).
///
/// Output goes to a file rather than a pipe, so a large output can never block the child.
func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: Data) {
    let outPath = NSTemporaryDirectory() + "pgsnap-tool-" + UUID().uuidString
    guard FileManager.default.createFile(atPath: outPath, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
    defer { try? FileManager.default.removeItem(atPath: outPath) }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.standardInput = FileHandle.nullDevice
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    try out.close()
    return (p.terminationStatus, try Data(contentsOf: URL(fileURLWithPath: outPath)))
}

/// The hex SHA-256 of a file according to coreutils' sha256sum, independent of pgsnap's hashing.
func sha256sum(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let r = try runTool("/usr/bin/sha256sum", [path])
    XCTAssertEqual(r.status, 0, "sha256sum \(path)", file: file, line: line)
    return String(String(decoding: r.stdout, as: UTF8.self).prefix(64))
}

/// Bytes from a fixed seed (SplitMix64), so every run tests the same "random" data.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var out: [UInt8] = []
    out.reserveCapacity(count + 8)
    while out.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        withUnsafeBytes(of: z) { out.append(contentsOf: $0) }
    }
    return Array(out.prefix(count))
}

/// Text that compresses well, like a dump: repeated lines with some variation.
func dumpLikeText(_ count: Int) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while out.count < count {
        out.append(contentsOf: Array("\(i)\tcampaign \(i % 97)\t2026-11-22 03:15:\(i % 60)\tsome text, ünïcödé\n".utf8))
        i += 1
    }
    return Array(out.prefix(count))
}

/// Asserts that `body` throws a `PGSnapError` with `status`, and returns it.
@discardableResult
func assertPGSnapError<T>(
    _ status: ExitStatus, _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) -> PGSnapError? {
    do {
        let value = try body()
        XCTFail("expected a PGSnapError (\(status)), got \(value). \(message)", file: file, line: line)
        return nil
    } catch let error as PGSnapError {
        XCTAssertEqual(error.status, status, "\(error). \(message)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a PGSnapError, got \(type(of: error)): \(error). \(message)", file: file, line: line)
        return nil
    }
}
