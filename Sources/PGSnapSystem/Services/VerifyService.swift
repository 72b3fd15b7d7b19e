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

/// The one verification ladder: size, SHA-256, the age header (or, with the identity, the key
/// and decryption), full decompression, pg_dump's trailer, row counts and, for a directory
/// snapshot, the table of contents, over a snapshot's manifest and its bytes as one storage
/// serves them. `verify` and `verify --remote` differ only in the storage they pass.
public struct VerifyService {
    let session: Session
    public init(session: Session) { self.session = session }

    /// A snapshot in the backup directory.
    public func verify(_ entry: CatalogEntry, in dir: SnapshotDirectory) -> VerifyResult {
        verify(entry, in: LocalStorage(dir))
    }

    /// The dump's checks, then the globals it refers to (its own or its run's) against their checksum.
    public func verify(_ entry: CatalogEntry, in storage: SnapshotStorage) -> VerifyResult {
        var result = verifyDump(entry, in: storage)
        if result.ok, let m = entry.manifest, let problem = globalsProblem(m, in: storage) {
            return failed(&result, "globals", problem)
        }
        return result
    }

    /// What is wrong with the globals file `m` refers to, or nil (also when its manifest records no checksum).
    func globalsProblem(_ m: Manifest, in storage: SnapshotStorage) -> String? {
        guard let g = m.globalsFile, let sha = m.globalsSHA256 else { return nil }
        do {
            guard let size = try storage.size(of: g), size >= 0 else { return "\(g) cannot be read: it is not in \(storage.location)" }
            var hash = SHA256Stream()
            try storage.read(g, size: size) { hash.update($0) }
            let got = hash.finalizeHex()
            return got == sha ? nil : "\(g) has SHA-256 \(got), the manifest says \(sha)"
        } catch {
            return "\(g) cannot be read: \(error)"
        }
    }

    func verifyDump(_ entry: CatalogEntry, in storage: SnapshotStorage) -> VerifyResult {
        var result = VerifyResult(id: entry.id, ok: false)
        // Only a dump that is there is read (a damaged one too, so its size check is named);
        // anything else is reported from the catalog without opening it.
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
        if let decryption {
            // A wrong key is known from the first MiB, before the rest is read; anything else
            // wrong with those bytes is left to the full read, which names it.
            do {
                try decryption.checkIdentity(prefix: try storage.readPrefix(m.identityProbeFile, count: AgeDecryptor.probeBytes))
            } catch let e as AgeIdentityMismatch {
                return failed(&result, "identity", e.description)
            } catch {}
        }
        if m.format == .directory { return verifyDirectory(m, in: storage, decryption: decryption, result: &result, start: start) }
        return verifyPlain(m, in: storage, decryption: decryption, result: &result, start: start)
    }

    /// One streaming pass over the dump. Encrypted and no identity: what the stored bytes show
    /// (size, SHA-256, the age header against the manifest's recipients).
    func verifyPlain(_ m: Manifest, in storage: SnapshotStorage, decryption: AgeDecryption?, result: inout VerifyResult,
                     start: DispatchTime) -> VerifyResult {
        let size: Int64
        do {
            guard let s = try storage.size(of: m.file) else { return failed(&result, "files", "\(m.file) is missing from \(storage.location)") }
            guard s >= 0 else { return failed(&result, "files", "\(m.file) in \(storage.location) is not a regular file") }
            size = s
        } catch {
            return failed(&result, "files", "\(error)")
        }
        let storedOnly = m.encryption != nil && decryption == nil
        let stream = DumpStream.open(m.file, size: size, in: storage, compression: storedOnly ? .none : m.compression.algorithm,
                                     decryption: decryption)
        var scanner = DumpScanner()
        let progress = Progress(reporter: session.reporter, verb: "verified", total: m.compressedBytes)
        let outcome = stream.readAll(sink: { if !storedOnly { scanner.consume($0) } },
                                     progress: { progress.update(bytesIn: $0, bytesOut: storedOnly ? $0 : scanner.bytes) })
        progress.done()
        result.seconds = seconds(since: start)
        if let e = outcome.readError { return failed(&result, "files", "\(e)") }
        if outcome.compressedBytes != m.compressedBytes {
            return failed(&result, "size", "\(m.file) is \(outcome.compressedBytes) bytes, manifest says \(m.compressedBytes)")
        }
        if outcome.sha256 != m.sha256 {
            return failed(&result, "checksum", "SHA-256 is \(outcome.sha256), manifest says \(m.sha256)")
        }
        if storedOnly, let encryption = m.encryption {
            let check: (problem: String?, summary: String?)
            do { check = Self.ageHeader(try storage.readPrefix(m.file, count: 64 << 10), encryption: encryption) } catch {
                return failed(&result, "files", "\(error)")
            }
            if let problem = check.problem { return failed(&result, "header", problem) }
            result.ok = true
            result.contentsChecked = false
            result.detail = check.summary
            return result
        }
        result.uncompressedBytes = scanner.bytes
        result.tables = scanner.tables.count
        result.rows = scanner.tables.reduce(0) { $0 + $1.rows }
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
    }

    /// The age header at the start of a stored file against the manifest's recipients: the first
    /// problem, or none and what the header shows.
    static func ageHeader(_ prefix: [UInt8], encryption: Encryption) -> (problem: String?, summary: String?) {
        guard let header = AgeHeader.parse(prefix) else { return ("the file does not start with an age header", nil) }
        let check = header.check(against: encryption.recipients.compactMap { try? AgeRecipient.parse($0) }, sha256: sha256Digest)
        return (check.problems.first, check.summary)
    }

    func failed(_ r: inout VerifyResult, _ check: String, _ detail: String) -> VerifyResult {
        r.ok = false
        r.failedCheck = check
        r.detail = detail
        return r
    }
}

/// A dump file read back: raw bytes hashed and counted, content decompressed to a sink. The bytes
/// come from a file or from any `SnapshotStorage`, so local and remote reads are the same pass.
public struct DumpStream {
    public struct Outcome {
        public var compressedBytes: Int64 = 0
        public var sha256 = ""
        public var readError: Error?
        public var decompressError: Error?
        public var sinkError: Error?
    }

    /// Pushes the stored bytes, in order, to the closure it is given.
    public typealias Source = ((UnsafeRawBufferPointer) throws -> Void) throws -> Void

    let source: Source
    let compression: CompressionAlgorithm
    /// Set for an encrypted snapshot read with its identity: age runs before the inflater.
    let decryption: AgeDecryption?

    public init(compression: CompressionAlgorithm, decryption: AgeDecryption? = nil, source: @escaping Source) {
        self.source = source
        self.compression = compression
        self.decryption = decryption
    }

    /// - Throws: `PGSnapError` when the file cannot be opened.
    public static func open(path: String, compression: CompressionAlgorithm, decryption: AgeDecryption? = nil) throws -> DumpStream {
        let file = try OpenFile(path: path)
        return DumpStream(compression: compression, decryption: decryption) { consume in try file.readAll(consume) }
    }

    /// `name` of `storage`, `size` bytes as stored.
    public static func open(_ name: String, size: Int64, in storage: SnapshotStorage, compression: CompressionAlgorithm,
                            decryption: AgeDecryption? = nil) -> DumpStream {
        DumpStream(compression: compression, decryption: decryption) { consume in try storage.read(name, size: size, consume: consume) }
    }

    private struct Stop: Error {}

    /// Reads to the end even after a decompression error, so size and checksum are always known.
    /// A sink error (e.g. psql went away) stops the read at once.
    public func readAll(sink: (UnsafeRawBufferPointer) throws -> Void, progress: (Int64) -> Void = { _ in },
                        shouldStop: () -> Bool = { false }) -> Outcome {
        var out = Outcome()
        // Hashing runs on its own thread, overlapped with inflating the same chunk; each chunk is
        // copied into one of two buffers that alternate, so the next chunk never overwrites one still being hashed.
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
        var buffers = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16) }
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
        do {
            try source { chunk in
                guard chunk.count > 0 else { return }
                hashQueue.sync {}
                if buffers[turn].count < chunk.count {
                    buffers[turn].deallocate()
                    buffers[turn] = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk.count, alignment: 16)
                }
                buffers[turn].copyMemory(from: chunk)
                let copy = HashedBytes(bytes: UnsafeRawBufferPointer(rebasing: buffers[turn][0..<chunk.count]))
                turn ^= 1
                hashQueue.async { hash.stream.update(copy.bytes) }
                out.compressedBytes += Int64(chunk.count)
                progress(out.compressedBytes)
                if inflating {
                    do {
                        try inflater.feed(chunk, sink: recordingSink)
                    } catch {
                        if out.sinkError != nil { throw Stop() }
                        out.decompressError = error
                        inflating = false
                    }
                }
                if shouldStop() { throw Stop() }
            }
        } catch is Stop {
        } catch {
            out.readError = error
        }
        if inflating, out.readError == nil, out.sinkError == nil {
            do { try inflater.finish(sink: recordingSink) } catch { if out.sinkError == nil { out.decompressError = error } }
        }
        hashQueue.sync {}
        out.sha256 = hash.stream.finalizeHex()
        return out
    }
}

/// A regular file opened for one front-to-back read; closed when the last reference goes.
final class OpenFile {
    let fd: Int32
    let path: String

    init(path: String) throws {
        fd = try SnapshotDirectory.openRegularFile(path)
        self.path = path
    }

    deinit { close(fd) }

    func readAll(_ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SnapshotDirectory.ioError("read \(path)") }
            if n == 0 { return }
            try consume(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
    }
}

final class HashBox: @unchecked Sendable {
    var stream = SHA256Stream()
}

/// A chunk handed to the hashing queue: its buffer is not written again until the queue has
/// hashed it (the next use of that buffer waits for the queue first), so sharing it is safe.
private struct HashedBytes: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
}
