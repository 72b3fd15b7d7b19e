import Foundation

/// Snapshots in memory: the third `SnapshotStorage`, for tests of services and of the storage
/// contract. Thread-safe; a write is invisible until `commit`, as on disk and in a bucket.
public final class InMemoryStorage: SnapshotStorage, @unchecked Sendable {
    private let lock = NSLock()
    private var objects: [String: [UInt8]] = [:]
    /// SHA-256 recorded at write time, as a bucket keeps it in metadata.
    private var recorded: [String: String] = [:]
    /// Bytes handed to one `consume` call at most: reads stream in pieces, as the other storages do.
    public let chunkSize: Int

    public init(chunkSize: Int = 1 << 20) { self.chunkSize = max(1, chunkSize) }

    public var location: String { "memory:" }

    /// Everything stored, committed only (a test looks into the storage with this).
    public var names: [String] { lock.withLock { objects.keys.sorted() } }

    public func list() throws -> [DirectoryFile] {
        lock.withLock {
            objects.filter { !$0.key.hasPrefix(".") }.map { DirectoryFile(name: $0.key, size: Int64($0.value.count)) }
        }.sorted { $0.name < $1.name }
    }

    public func readSmall(_ name: String, limit: Int) throws -> [UInt8] {
        let bytes = try get(name)
        guard bytes.count <= limit else { throw PGSnapError.verification("\(location)\(name) is more than \(limit) bytes") }
        return bytes
    }

    public func read(_ name: String, size: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        let bytes = try get(name)
        try bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let end = min(offset + chunkSize, all.count)
                try consume(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
                offset = end
            }
        }
    }

    public func size(of name: String) throws -> Int64? { lock.withLock { objects[name].map { Int64($0.count) } } }

    public func files(inDirectory name: String) throws -> [DirectoryFile] { try listedFiles(inDirectory: name) }

    public func create(_ name: String, expectedSize: Int64, sha256: String?) throws -> StorageUpload {
        InMemoryUpload { [self] bytes in store(name, bytes, sha256) }
    }

    public func putSmall(_ name: String, bytes: [UInt8], sha256: String?) throws { store(name, bytes, sha256) }

    public func stat(_ name: String) throws -> StoredObject? {
        lock.withLock { objects[name].map { StoredObject(size: Int64($0.count), sha256: recorded[name]) } }
    }

    public func removeAbandonedWrites(of name: String) throws -> Int { 0 }

    private func store(_ name: String, _ bytes: [UInt8], _ sha256: String?) {
        lock.withLock {
            objects[name] = bytes
            recorded[name] = sha256
        }
    }

    public func delete(_ name: String) throws {
        lock.withLock {
            objects[name] = nil
            recorded[name] = nil
            // A directory snapshot goes with its files, as on disk.
            for key in objects.keys where key.hasPrefix(name + "/") { objects[key] = nil }
        }
    }

    public func removeAbandonedWrites(startedBefore cutoff: Date) throws -> Int { 0 }

    public func sync() throws {}

    private func get(_ name: String) throws -> [UInt8] {
        guard let bytes = lock.withLock({ objects[name] }) else {
            throw PGSnapError("\(location)\(name) does not exist", next: "Run 'pgsnap list'")
        }
        return bytes
    }
}

/// Bytes gathered aside; stored under the name only by `commit`.
final class InMemoryUpload: StorageUpload {
    private var bytes: [UInt8] = []
    private var store: (([UInt8]) -> Void)?

    init(store: @escaping ([UInt8]) -> Void) { self.store = store }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        guard store != nil else { throw PGSnapError("write after commit or abort") }
        bytes.append(contentsOf: chunk)
    }

    func commit() throws -> Int64 {
        guard let store else { throw PGSnapError("commit after commit or abort") }
        store(bytes)
        self.store = nil
        return Int64(bytes.count)
    }

    func abort() {
        store = nil
        bytes = []
    }
}
