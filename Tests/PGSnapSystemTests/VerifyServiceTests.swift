import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

/// The verification ladder over the in-memory storage: no PostgreSQL, no S3, no files. The same
/// function `verify` and `verify --remote` call, so each check it names is shown here failing.
final class VerifyServiceTests: XCTestCase {
    static let id = "app_20261122T031500Z"

    static let dumpText = """
        --
        -- PostgreSQL database dump
        --

        --
        -- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: app
        --

        COPY public.t (i) FROM stdin;
        1
        2
        3
        \\.

        --
        -- PostgreSQL database dump complete
        --

        """

    func gzip(_ text: String) throws -> [UInt8] { try Self.gzip(text, test: self) }

    static func gzip(_ text: String, test: XCTestCase) throws -> [UInt8] {
        let dir = try makeTemporaryDirectory(test)
        let sink = try FileSink(creating: dir + "/dump.gz")
        let writer = ParallelGzipWriter(sink: sink, level: 6, jobs: 1, blockSize: 64 << 10)
        try Array(text.utf8).withUnsafeBytes { try writer.write($0) }
        try writer.finish()
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/dump.gz")))
    }

    func sha256(_ bytes: [UInt8]) -> String { Self.sha256(bytes) }

    static func sha256(_ bytes: [UInt8]) -> String {
        var hash = SHA256Stream()
        bytes.withUnsafeBytes { hash.update($0) }
        return hash.finalizeHex()
    }

    /// A snapshot whose manifest describes `stored` (size, SHA-256) and `text` (size, rows), then `change`d.
    func storage(text: String = dumpText, stored: [UInt8]? = nil, rows: [String: Int64] = ["public.t": 3],
                 change: (inout Manifest) -> Void = { _ in }) throws -> InMemoryStorage {
        try Self.storage(test: self, text: text, stored: stored, rows: rows, change: change)
    }

    static func storage(test: XCTestCase, text: String = dumpText, stored: [UInt8]? = nil, rows: [String: Int64] = ["public.t": 3],
                        change: (inout Manifest) -> Void = { _ in }) throws -> InMemoryStorage {
        let good = try gzip(text, test: test)
        var m = Manifest(
            id: Self.id, database: "app", label: nil, createdAt: Date(timeIntervalSince1970: 1_795_000_000), durationSeconds: 1,
            file: Self.id + ".sql.gz", compressedBytes: Int64(good.count), uncompressedBytes: Int64(text.utf8.count), sha256: sha256(good),
            compression: .init(algorithm: .gzip, level: 6), pgDumpVersion: "15.14", serverVersion: "15.14", host: nil, port: nil,
            user: nil, migration: nil, tableRows: rows, databaseProperties: nil, timings: nil, pgsnapVersion: "0.1.0")
        change(&m)
        let s = InMemoryStorage(chunkSize: 7)
        try s.putSmall(m.file, bytes: stored ?? good)
        try s.putSmall(m.id + SnapshotName.manifestSuffix, bytes: [UInt8](try m.encoded()))
        return s
    }

    /// A session that needs no server: only the directory matters (and nothing reads it here).
    static func session(directory: String = "/nonexistent/pgsnap") throws -> Session {
        try Session(spec: ConnectionSpec(), directory: directory, environment: ["PATH": "/usr/bin:/bin"],
                    reporter: Reporter(quiet: true, json: false))
    }

    func verdict(_ s: InMemoryStorage) throws -> String {
        let session = try Self.session()
        let entry = try XCTUnwrap(try s.catalog().first)
        let r = VerifyService(session: session).verify(entry, in: s)
        return r.ok ? "ok" : (r.failedCheck ?? "?")
    }

    func testAGoodSnapshotPassesEveryCheck() throws {
        XCTAssertEqual(try verdict(try storage()), "ok")
    }

    func testEachCheckFailsByName() throws {
        let good = try gzip(Self.dumpText)
        var flipped = good
        flipped[good.count / 2] ^= 0xFF
        let noTrailer = Self.dumpText.replacingOccurrences(of: "-- PostgreSQL database dump complete\n", with: "")
        let cases: [(String, InMemoryStorage, String)] = [
            ("truncated", try storage(stored: Array(good.prefix(good.count / 2)), change: { m in m.compressedBytes = Int64(good.count) }), "size"),
            ("a flipped byte", try storage(stored: flipped), "checksum"),
            ("wrong row count", try storage(rows: ["public.t": 2]), "row_counts"),
            ("a table the dump lacks", try storage(rows: ["public.t": 3, "public.u": 0]), "row_counts"),
            ("no completion trailer", try storage(text: noTrailer), "trailer"),
            ("wrong uncompressed size", try storage(change: { m in m.uncompressedBytes += 1 }), "decompression"),
            ("globals missing", try storage(change: { m in
                m.globalsFile = Self.id + ".globals.sql"
                m.globalsSHA256 = String(repeating: "0", count: 64)
            }), "globals"),
        ]
        for (what, s, check) in cases {
            XCTAssertEqual(try verdict(s), check, what)
        }
    }

    func testNotGzipAtAllFailsDecompressionWithSizeAndChecksumMatching() throws {
        let junk = Array("not a gzip stream at all".utf8)
        let s = try storage(stored: junk, change: { m in
            m.compressedBytes = Int64(junk.count)
            m.sha256 = self.sha256(junk)
        })
        XCTAssertEqual(try verdict(s), "decompression")
    }
}
