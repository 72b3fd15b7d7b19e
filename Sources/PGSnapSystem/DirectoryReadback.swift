import Foundation
import PGSnapCore

/// Reads every file of a directory dump once, in parallel: size, SHA-256 and, with `inflate`,
/// full gzip decompression with a row count of each table data file. Backup uses it as the first
/// verification (and to fsync and chmod what pg_dump wrote), verify to recheck, restore to
/// check size and SHA-256 before anything is touched.
enum DirectoryReadback {
    struct FileResult: Sendable {
        var name: String
        var bytes: Int64 = 0
        var sha256 = ""
        var inflatedBytes: Int64 = 0
        /// Rows of a table data file (`<n>.dat.gz`); nil when it lacks the end-of-data marker.
        var rows: Int64?
        /// The first thing wrong with the file (cannot open, read, inflate, sync), or nil.
        var error: String?
        /// Which check `error` is: files, decompression or sync.
        var check = "files"
    }

    /// - Parameters:
    ///   - sync: fsync each file and make it 0600 (backup: pg_dump wrote them with its umask).
    ///   - decryption: an encrypted snapshot read with its identity: age runs before the inflater.
    ///   - shouldStop: polled between reads (Ctrl-C).
    static func read(directory path: String, names: [String], inflate: Bool, sync: Bool, decryption: AgeDecryption? = nil,
                     shouldStop: @escaping @Sendable () -> Bool = { false }) -> [FileResult] {
        // Biggest first, so the last file to start is a small one and the cores finish together.
        let sizes = Dictionary(uniqueKeysWithValues: ((try? SnapshotDirectory.files(in: path)) ?? []).map { ($0.name, $0.size) })
        let order = names.sorted { (sizes[$0] ?? 0) > (sizes[$1] ?? 0) }
        var results = [FileResult?](repeating: nil, count: order.count)
        results.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            DispatchQueue.concurrentPerform(iterations: order.count) { i in
                (base + i).initialize(to: readOne(path + "/" + order[i], name: order[i], inflate: inflate, sync: sync,
                                                  decryption: decryption, shouldStop: shouldStop))
            }
        }
        let byName = Dictionary(uniqueKeysWithValues: results.compactMap { $0 }.map { ($0.name, $0) })
        return names.map { byName[$0]! }
    }

    static func readOne(_ path: String, name: String, inflate: Bool, sync: Bool, decryption: AgeDecryption? = nil,
                        shouldStop: () -> Bool) -> FileResult {
        let fd: Int32
        switch SnapshotDirectory.openRegular(path) {
        case .success(let opened): fd = opened
        case .failure(let why):
            var r = FileResult(name: name)
            r.error = "cannot open \(name): \(why.text)"
            return r
        }
        defer { close(fd) }
        if sync { fchmod(fd, 0o600) }
        var reader = FileReader(name: name, inflate: inflate, decryption: decryption)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                reader.result.error = "cannot read \(name): \(String(cString: strerror(errno)))"
                return reader.result
            }
            if n == 0 { break }
            reader.consume(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            if shouldStop() { break }
        }
        return reader.finish(syncing: sync ? fd : nil)
    }

    /// The verify check a failed read stands for: the wrong key is not the snapshot's fault.
    static func check(for error: Error, decrypting: Bool) -> String {
        if error is AgeIdentityMismatch { return "identity" }
        return decrypting ? "decryption" : "decompression"
    }
}

/// One file read front to back: size, SHA-256 and, with `inflate`, decompression and row count.
/// Fed by the read-back above, or chunk by chunk while pg_dump still writes (`DirectoryTail`).
struct FileReader {
    var result: DirectoryReadback.FileResult
    private var hash = SHA256Stream()
    private var counter = CopyDataCounter()
    private var inflater: DumpInflater?
    private let isData: Bool
    private let countsBytes: Bool
    private let inflate: Bool
    private let decrypting: Bool

    init(name: String, inflate: Bool, decryption: AgeDecryption?) {
        result = DirectoryReadback.FileResult(name: name)
        isData = DirectoryDump.dataFileDumpID(name) != nil
        // Decrypted non-gzip files (toc.dat) are read to prove they decrypt, not counted.
        countsBytes = DirectoryDump.plainName(name).hasSuffix(".gz")
        self.inflate = inflate
        decrypting = decryption != nil
        guard inflate else { return }
        do {
            let inner: DumpInflater? = countsBytes ? try GzipInflater() : (decryption != nil ? PlainInflater() : nil)
            inflater = try inner.map { inner in try decryption.map { try $0.decryptor(inner: inner) } ?? inner }
        } catch {
            result.error = "\(error)"
        }
    }

    mutating func consume(_ chunk: UnsafeRawBufferPointer) {
        hash.update(chunk)
        result.bytes += Int64(chunk.count)
        guard let inf = inflater, result.error == nil else { return }
        do {
            try inf.feed(chunk) { count($0) }
        } catch {
            failed(error)
        }
    }

    private mutating func count(_ out: UnsafeRawBufferPointer) {
        if countsBytes { result.inflatedBytes += Int64(out.count) }
        if isData { counter.consume(out) }
    }

    private mutating func failed(_ error: Error) {
        result.error = "\(result.name) does not decompress: \(error)"
        result.check = DirectoryReadback.check(for: error, decrypting: decrypting)
        inflater = nil
    }

    /// The end of the file: the inflater must end too; given an fd, fsync it.
    mutating func finish(syncing fd: Int32? = nil) -> DirectoryReadback.FileResult {
        if let inf = inflater, result.error == nil {
            do {
                try inf.finish { count($0) }
            } catch {
                failed(error)
            }
        }
        result.sha256 = hash.finalizeHex()
        if isData && inflate { result.rows = counter.rows }
        if let fd, result.error == nil, fsync(fd) != 0 {
            result.error = "cannot fsync \(result.name): \(String(cString: strerror(errno)))"
            result.check = "sync"
        }
        return result
    }
}
