import Foundation

/// Where snapshot files live: the local directory or a bucket. The same file names either way;
/// services read and write through this and carry no `if remote` branches.
public protocol SnapshotStorage: AnyObject {
    /// For messages: the directory path or `s3://bucket/prefix`.
    var location: String { get }
    /// Every snapshot-looking file with its size (no dot files).
    func list() throws -> [DirectoryFile]
    /// A small file (a manifest) whole; more than `limit` bytes is an error.
    func readSmall(_ name: String, limit: Int) throws -> [UInt8]
    /// Streams a file in order; `consume` sees each piece once. Memory stays bounded by the storage.
    /// `size` is the stored size (from `list`, `size(of:)` or `files(inDirectory:)`).
    func read(_ name: String, size: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) throws
    /// The stored size of one file: nil when there is none, -1 when something else stands under the name.
    func size(of name: String) throws -> Int64?
    /// The files of a directory snapshot (`<id>.dir`), sorted by name; -1 as the size of anything
    /// that is not a regular file. Empty when there is no such directory.
    func files(inDirectory name: String) throws -> [DirectoryFile]
    /// A new file that nobody sees under `name` until `commit` (temporary name / multipart upload).
    func create(_ name: String, expectedSize: Int64, sha256: String?) throws -> StorageUpload
    /// `create` for a name nobody has: nil when a file is there or, where the storage can tell,
    /// another writer is writing it (a backup reserving its snapshot name).
    func createNew(_ name: String, expectedSize: Int64) throws -> StorageUpload?
    /// A small file (a manifest), visible all at once or not at all, with its SHA-256 recorded
    /// beside it where the storage keeps one (a bucket's object metadata).
    func putSmall(_ name: String, bytes: [UInt8], sha256: String?) throws
    /// Size and recorded SHA-256 (nil where none is kept) of one file; nil when there is none.
    func stat(_ name: String) throws -> StoredObject?
    /// Ends uncommitted writes of `name` left by a killed run; returns how many.
    func removeAbandonedWrites(of name: String) throws -> Int
    /// Removes a file, or a directory snapshot (`<id>.dir`) with its files; a missing one is no error.
    func delete(_ name: String) throws
    /// Every snapshot (and leftover) with its manifest read: `Catalog.build` over this storage.
    ///
    /// - Parameter summaries: keep only the manifest fields prune and check need.
    func catalog(summaries: Bool) throws -> [CatalogEntry]
    /// Ends writes that were never committed nor aborted (a killed run) and started before
    /// `cutoff`; returns how many. Leftovers that list (a `.partial` file) are the catalog's
    /// and prune's business, so a directory has none of these.
    func removeAbandonedWrites(startedBefore cutoff: Date) throws -> Int
    /// Bytes free for new files where the storage can tell (a directory's file system); nil otherwise.
    func freeBytes() -> Int64?
    /// Where a copied directory snapshot's files are written until all are there: on disk
    /// `<id>.dir.partial` (a folder is never seen half-filled under its final name, which `pg_restore`
    /// by hand would read); in a bucket the final name, since the manifest, written last, is what
    /// makes the objects a snapshot.
    func stagingFolder(for name: String) -> String
    /// Claims the staging folder for this writer until `commitFolder` (or the storage is gone): on
    /// disk it is created and flocked, as a running backup holds its own, so the next backup's
    /// cleanup of abandoned `.dir.partial` folders leaves it alone.
    ///
    /// - Throws: when another writer holds it.
    func beginFolder(_ staging: String) throws
    /// Gives the staged folder its final name (a no-op where `stagingFolder` is the final name).
    func commitFolder(_ staging: String, as name: String) throws
    /// Makes the deletes so far durable (a directory: fsync it; a bucket: each already is).
    func sync() throws
}

/// A file being written: invisible under its name until `commit` returns.
public protocol StorageUpload: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the file visible and checks its size; returns the bytes stored.
    ///
    /// - Throws: when the stored size is not what was written (nothing is left under the name).
    func commit() throws -> Int64
    /// Removes what was written so far; never throws (it runs on the failure path).
    func abort()
}

extension SnapshotStorage {
    public func createNew(_ name: String, expectedSize: Int64) throws -> StorageUpload? {
        guard try size(of: name) == nil else { return nil }
        return try create(name, expectedSize: expectedSize, sha256: nil)
    }

    public func putSmall(_ name: String, bytes: [UInt8]) throws { try putSmall(name, bytes: bytes, sha256: nil) }

    public func freeBytes() -> Int64? { nil }

    public func stagingFolder(for name: String) -> String { name }

    public func beginFolder(_ staging: String) throws {}

    public func commitFolder(_ staging: String, as name: String) throws {}

    /// One listing, two views: the files, and sizes by name with each directory snapshot's total
    /// under `<id>.dir` (what a manifest's `file` is checked against).
    public func listing() throws -> (files: [DirectoryFile], sizes: [String: Int64]) {
        let files = try list()
        var sizes: [String: Int64] = [:]
        for f in files { sizes[f.name] = f.size }
        return (files, ListingCatalog.folded(sizes))
    }

    /// The listing with each directory snapshot's files (`<id>.dir/<file>`, as a bucket lists
    /// them) folded into one `<id>.dir` entry, as a directory on disk lists it; manifests read
    /// several at a time.
    public func catalog(summaries: Bool = false) throws -> [CatalogEntry] {
        let files = StorageListing.folded(try list())
        let ids = files.compactMap { f in
            f.name.hasSuffix(SnapshotName.manifestSuffix) ? String(f.name.dropLast(SnapshotName.manifestSuffix.count)) : nil
        }
        let loaded = ConcurrentMap.run(ids, width: 8) { id -> Result<Manifest, Error> in
            Result {
                let name = id + SnapshotName.manifestSuffix
                return try Manifest.decode(bytes: try self.readSmall(name, limit: Manifest.maxBytes), fileName: name, summary: summaries)
            }
        }
        let byID = Dictionary(zip(ids, loaded), uniquingKeysWith: { first, _ in first })
        return Catalog.build(files: files, loadManifest: { id in try byID[id]!.get() })
    }

    public func catalog() throws -> [CatalogEntry] { try catalog(summaries: false) }

    /// `files(inDirectory:)` for a storage whose listing names each file of a directory
    /// snapshot (`<id>.dir/<file>`), as a bucket's does.
    public func listedFiles(inDirectory name: String) throws -> [DirectoryFile] {
        let folder = name + "/"
        return try list().compactMap { f in
            f.name.hasPrefix(folder) ? DirectoryFile(name: String(f.name.dropFirst(folder.count)), size: f.size) : nil
        }.sorted { $0.name < $1.name }
    }

    /// The whole-server runs in the listing, each with its record read: `.invalid` (so the run is
    /// left alone) when the record cannot be read or parsed.
    public func runs(files: [DirectoryFile]) -> [RunFiles] {
        RunFiles.group(files).map { r in
            var r = r
            guard r.hasRecord else { return r }
            let name = RunName.recordFile(r.run)
            do {
                r.record = .valid(try RunRecord.decode(bytes: try readSmall(name, limit: Manifest.maxBytes), fileName: name))
            } catch {
                r.record = .invalid("\(error)")
            }
            return r
        }
    }

    /// Up to `count` bytes from the start of a file (fewer when it is shorter): an age header, an identity probe.
    public func readPrefix(_ name: String, count: Int) throws -> [UInt8] {
        guard count > 0, let size = try size(of: name) else { return [] }
        var out: [UInt8] = []
        do {
            try read(name, size: min(size, Int64(count))) { chunk in
                out.append(contentsOf: chunk.prefix(count - out.count))
                if out.count >= count { throw EnoughRead() }
            }
        } catch is EnoughRead {}
        return out
    }
}

/// Ends a read early from inside `consume`: not a failure.
public struct EnoughRead: Error {
    public init() {}
}

public enum StorageListing {
    /// `<id>.dir/<file>` entries folded into one `<id>.dir` with the sum of their sizes.
    public static func folded(_ files: [DirectoryFile]) -> [DirectoryFile] {
        var out: [DirectoryFile] = []
        var folders: [String: Int64] = [:]
        for f in files {
            if let slash = f.name.firstIndex(of: "/") {
                folders[String(f.name[..<slash]), default: 0] += max(0, f.size)
            } else {
                out.append(f)
            }
        }
        return out + folders.sorted { $0.key < $1.key }.map { DirectoryFile(name: $0.key, size: $0.value) }
    }
}

/// `transform` over `items` on `width` threads of their own, results in the items' order. For
/// requests that wait on the network: `concurrentPerform` runs only as many at once as there
/// are cores (two here), which leaves a bucket's round trips mostly idle.
/// The results of a `ConcurrentMap`: each thread writes only its own indices, and all are
/// written before any is read, so sharing the pointer between threads is safe.
private struct ResultSlots<R>: @unchecked Sendable {
    let base: UnsafeMutablePointer<R>
}

enum ConcurrentMap {
    static func run<T, R>(_ items: [T], width: Int, _ transform: @escaping (T) -> R) -> [R] {
        guard !items.isEmpty else { return [] }
        let workers = max(1, min(width, items.count))
        let slots = ResultSlots(base: UnsafeMutablePointer<R>.allocate(capacity: items.count))
        defer {
            slots.base.deinitialize(count: items.count)
            slots.base.deallocate()
        }
        let finished = DispatchSemaphore(value: 0)
        for worker in 0..<workers {
            Thread {
                var i = worker
                while i < items.count {
                    (slots.base + i).initialize(to: transform(items[i]))
                    i += workers
                }
                finished.signal()
            }.start()
        }
        // Every thread has written its slots before they are read (and freed).
        for _ in 0..<workers { finished.wait() }
        return Array(UnsafeBufferPointer(start: slots.base, count: items.count))
    }
}

/// What a storage knows of one stored file without reading it.
public struct StoredObject: Equatable, Sendable {
    public var size: Int64
    /// The SHA-256 recorded when it was written, where the storage keeps one.
    public var sha256: String?
    public init(size: Int64, sha256: String?) {
        self.size = size
        self.sha256 = sha256
    }
}
