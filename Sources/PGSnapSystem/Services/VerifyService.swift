import Foundation
import PGSnapCore

/// The outcome of verifying one snapshot: the first check that failed, or none.
public struct VerifyResult: Codable, Sendable {
    public var id: String
    public var ok: Bool
    /// size, checksum, header, decompression, trailer, row_counts, manifest, files; identity and age
    /// (the key or the tool is missing or wrong: not the snapshot's fault).
    public var failedCheck: String?
    /// false for an encrypted snapshot verified without its identity: only size, SHA-256 and the age header.
    public var contentsChecked: Bool?
    public var detail: String?
    public var uncompressedBytes: Int64?
    public var tables: Int?
    public var rows: Int64?
    public var seconds: Double?
}

/// Reads a snapshot's dump once: size, SHA-256, full decompression (CRC and length of every
/// member), pg_dump's completion trailer and a recount of every COPY block, all in one pass.
public struct VerifyService {
    let session: Session
    public init(session: Session) { self.session = session }

    /// The dump's checks, then the globals it refers to (its own or its run's) against their checksum.
    public func verify(_ entry: CatalogEntry, in dir: SnapshotDirectory) -> VerifyResult {
        var result = verifyDump(entry, in: dir)
        if result.ok, let m = entry.manifest, let problem = globalsProblem(m, in: dir) {
            return failed(&result, "globals", problem)
        }
        return result
    }

    /// What is wrong with the globals file `m` refers to, or nil (also when its manifest records no checksum).
    func globalsProblem(_ m: Manifest, in dir: SnapshotDirectory) -> String? {
        guard let g = m.globalsFile, let sha = m.globalsSHA256 else { return nil }
        do {
            let got = try RunGlobals.sha256(ofFile: dir.file(g))
            return got == sha ? nil : "\(g) has SHA-256 \(got), the manifest says \(sha)"
        } catch {
            return "\(g) cannot be read: \(error)"
        }
    }

    func verifyDump(_ entry: CatalogEntry, in dir: SnapshotDirectory) -> VerifyResult {
        var result = VerifyResult(id: entry.id, ok: false)
        // Only a dump that is there as a regular file is read (a damaged one too, so its size
        // check is named); anything else is reported from the catalog without opening it.
        guard let m = entry.manifest, entry.isGood || entry.status == .damaged else {
            result.failedCheck = entry.status == .invalidManifest ? "manifest" : "files"
            result.detail = entry.problem ?? "no manifest: the backup did not finish"
            return result
        }
        let start = DispatchTime.now()
        let decryption: AgeDecryption?
        do {
            decryption = try session.ageDecryption(for: m)
        } catch {
            return failed(&result, "age", "\(error)")
        }
        if m.format == .directory { return verifyDirectory(m, in: dir, decryption: decryption, result: &result, start: start) }
        if let encryption = m.encryption, decryption == nil {
            return verifyStoredOnly(m, encryption: encryption, in: dir, result: &result, start: start)
        }
        do {
            let stream = try DumpStream.open(path: dir.file(m.file), compression: m.compression.algorithm, decryption: decryption)
            var scanner = DumpScanner()
            let progress = Progress(reporter: session.reporter, verb: "verified", total: m.compressedBytes)
            let outcome = stream.readAll(sink: { scanner.consume($0) }, progress: { progress.update(bytesIn: $0, bytesOut: scanner.bytes) })
            progress.done()
            result.uncompressedBytes = scanner.bytes
            result.tables = scanner.tables.count
            result.rows = scanner.tables.reduce(0) { $0 + $1.rows }
            result.seconds = seconds(since: start)
            if let e = outcome.readError { throw e }
            if outcome.compressedBytes != m.compressedBytes {
                return failed(&result, "size", "file is \(outcome.compressedBytes) bytes, manifest says \(m.compressedBytes)")
            }
            if outcome.sha256 != m.sha256 {
                return failed(&result, "checksum", "SHA-256 is \(outcome.sha256), manifest says \(m.sha256)")
            }
            if let e = outcome.decompressError as? AgeIdentityMismatch {
                return failed(&result, "identity", e.description)
            }
            if let e = outcome.decompressError {
                return failed(&result, decryption == nil ? "decompression" : "decryption", "\(e)")
            }
            if scanner.bytes != m.uncompressedBytes {
                return failed(&result, "decompression", "dump is \(scanner.bytes) bytes uncompressed, manifest says \(m.uncompressedBytes)")
            }
            if !scanner.sawCompletionTrailer {
                return failed(&result, "trailer", "the dump does not end with pg_dump's completion trailer")
            }
            let counted = scanner.rowsByTable
            if counted != m.tableRows {
                let diff = Set(counted.keys).union(m.tableRows.keys).sorted().first { counted[$0] != m.tableRows[$0] }!
                return failed(&result, "row_counts", "table \(diff) has \(counted[diff].map(String.init) ?? "no") rows in the dump, manifest says \(m.tableRows[diff].map(String.init) ?? "none")")
            }
            result.ok = true
            return result
        } catch {
            return failed(&result, "files", "\(error)")
        }
    }

    /// An encrypted snapshot without its identity: size, SHA-256 and what the age header shows.
    private func verifyStoredOnly(_ m: Manifest, encryption: Encryption, in dir: SnapshotDirectory, result: inout VerifyResult,
                                  start: DispatchTime) -> VerifyResult {
        do {
            let path = dir.file(m.file)
            let progress = Progress(reporter: session.reporter, verb: "verified", total: m.compressedBytes)
            let outcome = try DumpStream.open(path: path, compression: .none).readAll(sink: { _ in }, progress: { progress.update(bytesIn: $0, bytesOut: $0) })
            progress.done()
            result.seconds = seconds(since: start)
            if let e = outcome.readError { throw e }
            if outcome.compressedBytes != m.compressedBytes {
                return failed(&result, "size", "file is \(outcome.compressedBytes) bytes, manifest says \(m.compressedBytes)")
            }
            if outcome.sha256 != m.sha256 {
                return failed(&result, "checksum", "SHA-256 is \(outcome.sha256), manifest says \(m.sha256)")
            }
            let check = try Self.ageHeader(path, encryption: encryption)
            if let problem = check.problem { return failed(&result, "header", problem) }
            result.ok = true
            result.contentsChecked = false
            result.detail = check.summary
            return result
        } catch {
            return failed(&result, "files", "\(error)")
        }
    }

    /// The age header at the start of `path` against the manifest's recipients: the first problem,
    /// or none and what the header shows.
    static func ageHeader(_ path: String, encryption: Encryption) throws -> (problem: String?, summary: String?) {
        guard let header = AgeHeader.parse(try head(path)) else { return ("the file does not start with an age header", nil) }
        let check = header.check(against: encryption.recipients.compactMap { try? AgeRecipient.parse($0) }, sha256: sha256Digest)
        return (check.problems.first, check.summary)
    }

    /// The first 64 KiB of a file: more than any age header with a handful of recipients.
    static func head(_ path: String) throws -> [UInt8] {
        let fd = try SnapshotDirectory.openRegularFile(path)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64 << 10)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return Array(bytes.prefix(max(0, n)))
    }

    func failed(_ r: inout VerifyResult, _ check: String, _ detail: String) -> VerifyResult {
        r.ok = false
        r.failedCheck = check
        r.detail = detail
        return r
    }
}

/// A dump file read back: raw bytes hashed and counted, content decompressed to a sink.
public struct DumpStream {
    public struct Outcome {
        public var compressedBytes: Int64 = 0
        public var sha256 = ""
        public var readError: Error?
        public var decompressError: Error?
        public var sinkError: Error?
    }

    let fd: Int32
    let compression: CompressionAlgorithm
    let path: String
    /// Set for an encrypted snapshot read with its identity: age runs before the inflater.
    let decryption: AgeDecryption?

    /// - Throws: `PGSnapError` when the file cannot be opened.
    public static func open(path: String, compression: CompressionAlgorithm, decryption: AgeDecryption? = nil) throws -> DumpStream {
        let fd = try SnapshotDirectory.openRegularFile(path)
        return DumpStream(fd: fd, compression: compression, path: path, decryption: decryption)
    }

    /// Reads to the end even after a decompression error, so size and checksum are always known.
    /// A sink error (e.g. psql went away) stops the read at once.
    public func readAll(sink: (UnsafeRawBufferPointer) throws -> Void, progress: (Int64) -> Void = { _ in },
                        shouldStop: () -> Bool = { false }) -> Outcome {
        defer { close(fd) }
        var out = Outcome()
        // Hashing runs on its own thread, overlapped with inflating the same chunk; two buffers
        // alternate so the next read never overwrites a chunk still being hashed.
        let hash = HashBox()
        let hashQueue = DispatchQueue(label: "pgsnap.hash")
        let inflater: DumpInflater
        do {
            let plain = try Codec.inflater(compression)
            inflater = try decryption.map { try $0.decryptor(inner: plain) } ?? plain
        } catch {
            out.decompressError = error
            return out
        }
        let buffers = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16) }
        defer {
            hashQueue.sync {}
            buffers.forEach { $0.deallocate() }
        }
        var inflating = true
        var turn = 0
        func recordingSink(_ bytes: UnsafeRawBufferPointer) throws {
            do { try sink(bytes) } catch {
                out.sinkError = error
                throw error
            }
        }
        while true {
            let buffer = buffers[turn]
            turn ^= 1
            hashQueue.sync {}
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                out.readError = SnapshotDirectory.ioError("read \(path)")
                break
            }
            if n == 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            hashQueue.async { hash.stream.update(chunk) }
            out.compressedBytes += Int64(n)
            progress(out.compressedBytes)
            if inflating {
                do {
                    try inflater.feed(chunk, sink: recordingSink)
                } catch {
                    if out.sinkError != nil { break }
                    out.decompressError = error
                    inflating = false
                }
            }
            if shouldStop() { break }
        }
        if inflating, out.readError == nil, out.sinkError == nil {
            do { try inflater.finish(sink: recordingSink) } catch { if out.sinkError == nil { out.decompressError = error } }
        }
        hashQueue.sync {}
        out.sha256 = hash.stream.finalizeHex()
        return out
    }
}

final class HashBox: @unchecked Sendable {
    var stream = SHA256Stream()
}
