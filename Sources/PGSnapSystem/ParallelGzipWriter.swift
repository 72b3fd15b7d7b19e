import Foundation
import PGSnapCore

/// Compresses a byte stream into consecutive gzip members, `jobs` blocks at a time, written in order.
///
/// Each ~1 MiB block becomes a complete gzip member (as pigz does), so zcat and any gzip reader
/// read the file and both cores compress. At most `2 * jobs` blocks are in flight: memory stays
/// flat whatever the size of the dump. Output is hashed as it is written.
public final class ParallelGzipWriter {
    public static let defaultBlockSize = 1 << 20

    private let sink: ByteSink
    private let level: Int
    private let blockSize: Int
    private let maxInFlight: Int
    private let queue = DispatchQueue(label: "pgsnap.compress", attributes: .concurrent)
    private var block: [UInt8]
    private var pending: [Job] = []
    private var deflaters: [GzipMemberDeflater] = []
    private let deflaterLock = NSLock()
    private var wroteMember = false
    public private(set) var waitSeconds: Double = 0

    final class Job: @unchecked Sendable {
        var input: [UInt8]
        var output: [UInt8] = []
        var error: Error?
        let done = DispatchSemaphore(value: 0)
        init(input: [UInt8]) { self.input = input }
    }

    public init(sink: ByteSink, level: Int, jobs: Int, blockSize: Int = ParallelGzipWriter.defaultBlockSize) {
        self.sink = sink
        self.level = level
        self.blockSize = blockSize
        self.maxInFlight = max(1, jobs) * 2
        block = []
        block.reserveCapacity(blockSize)
    }

    /// - Throws: a compression or write error (e.g. disk full).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            let take = min(blockSize - block.count, rest.count)
            block.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if block.count == blockSize { try submitBlock() }
        }
    }

    /// Flushes the last block and waits for every member to be written.
    public func finish() throws {
        if !block.isEmpty || !wroteMember { try submitBlock() }
        while !pending.isEmpty { try writeOldest() }
    }

    private func submitBlock() throws {
        let job = Job(input: block)
        block = []
        block.reserveCapacity(blockSize)
        let level = self.level
        queue.async { [self] in
            do {
                let d = try takeDeflater(level: level)
                try job.input.withUnsafeBytes { try d.compress($0, into: &job.output) }
                giveBack(d)
            } catch {
                job.error = error
            }
            job.input = []
            job.done.signal()
        }
        pending.append(job)
        wroteMember = true
        while pending.count >= maxInFlight { try writeOldest() }
    }

    private func writeOldest() throws {
        let job = pending.removeFirst()
        let start = DispatchTime.now()
        job.done.wait()
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        if let error = job.error { throw error }
        try job.output.withUnsafeBytes { try sink.write($0) }
    }

    private func takeDeflater(level: Int) throws -> GzipMemberDeflater {
        deflaterLock.lock()
        if let d = deflaters.popLast() {
            deflaterLock.unlock()
            return d
        }
        deflaterLock.unlock()
        return try GzipMemberDeflater(level: level)
    }

    private func giveBack(_ d: GzipMemberDeflater) {
        deflaterLock.lock()
        deflaters.append(d)
        deflaterLock.unlock()
    }
}

/// A file being written: counts and hashes what goes through, reports ENOSPC by name.
public final class FileSink: ByteSink {
    public let path: String
    public let fd: Int32
    public private(set) var bytes: Int64 = 0
    private var hash = SHA256Stream()

    /// Thrown when the file to create exclusively is already there (another run took the name).
    public struct AlreadyExists: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "\(path) already exists" }
    }

    /// Creates `path` exclusively, 0600.
    ///
    /// - Throws: `AlreadyExists` if it exists, else a `PGSnapError`.
    public init(creating path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST { throw AlreadyExists(path: path) }
            throw SnapshotDirectory.ioError("create \(path)", errno: code)
        }
    }

    deinit { close(fd) }

    public func write(_ data: UnsafeRawBufferPointer) throws {
        hash.update(data)
        try SnapshotDirectory.writeAll(fd, data, path: path)
        bytes += Int64(data.count)
    }

    public func sync() throws {
        guard fsync(fd) == 0 else { throw SnapshotDirectory.ioError("fsync \(path)") }
    }

    public func sha256Hex() -> String { hash.finalizeHex() }
}
