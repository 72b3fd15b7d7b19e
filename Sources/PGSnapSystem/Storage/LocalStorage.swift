import Foundation
import PGSnapCore

/// The backup directory as a `SnapshotStorage`: `SnapshotDirectory` underneath, files 0600,
/// written as `.partial`, fsynced, renamed, directory fsynced, as every local write is.
public final class LocalStorage: SnapshotStorage {
    public let directory: SnapshotDirectory
    public var location: String { directory.path }
    /// Staging folders this writer holds (`beginFolder`): their flocked descriptors.
    private var held: [String: Int32] = [:]

    public init(_ directory: SnapshotDirectory) { self.directory = directory }

    deinit { for fd in held.values { close(fd) } }

    public func list() throws -> [DirectoryFile] { try directory.list() }

    public func catalog(summaries: Bool) throws -> [CatalogEntry] { try directory.catalog(summaries: summaries) }

    public func removeAbandonedWrites(startedBefore cutoff: Date) throws -> Int { 0 }

    public func removeAbandonedWrites(of name: String) throws -> Int { 0 }

    public func sync() throws { try directory.sync() }

    public func freeBytes() -> Int64? { directory.freeBytes() }

    public func stagingFolder(for name: String) -> String { name + SnapshotName.partialSuffix }

    /// Created (0700) and flocked for as long as this storage lives or until `commitFolder`: the
    /// same claim a running directory backup holds on its own `.dir.partial`.
    public func beginFolder(_ staging: String) throws {
        guard held[staging] == nil else { return }
        let path = directory.file(staging)
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw SnapshotDirectory.ioError("create \(path)") }
        guard let fd = SnapshotDirectory.claimFolder(path) else {
            throw PGSnapError("\(path) is being written by another pgsnap", next: "Wait for it to finish, then run the command again")
        }
        held[staging] = fd
    }

    /// fsync the folder, replace what stands under the final name (a leftover: a whole snapshot
    /// would have its manifest and not be copied again), rename, fsync the directory.
    public func commitFolder(_ staging: String, as name: String) throws {
        guard staging != name else { return }
        // Never over a whole snapshot (a concurrent pull of the same one finished first).
        if let id = Catalog.snapshotID(ofFile: name), access(directory.file(id + SnapshotName.manifestSuffix), F_OK) == 0 {
            throw PGSnapError("\(directory.file(name)) is already a whole snapshot", next: "Nothing was replaced; run 'pgsnap list'")
        }
        try beginFolder(staging)
        let from = directory.file(staging)
        try SnapshotDirectory.fsyncPath(from)
        try SnapshotDirectory.removeTree(directory.file(name))
        guard rename(from, directory.file(name)) == 0 else { throw SnapshotDirectory.ioError("rename \(from)") }
        try directory.sync()
        if let fd = held.removeValue(forKey: staging) { close(fd) }
    }

    public func readSmall(_ name: String, limit: Int) throws -> [UInt8] {
        let fd = try SnapshotDirectory.openRegularFile(directory.file(name))
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SnapshotDirectory.ioError("read \(directory.file(name))") }
            if n == 0 { return out }
            out += buf[0..<n]
            if out.count > limit { throw PGSnapError.verification("\(directory.file(name)) is more than \(limit) bytes") }
        }
    }

    public func read(_ name: String, size: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        try SnapshotDirectory.readFile(directory.file(name), consume: consume)
    }

    public func size(of name: String) throws -> Int64? {
        var st = Glibc.stat()
        guard lstat(directory.file(name), &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SnapshotDirectory.ioError("stat \(directory.file(name))")
        }
        return (st.st_mode & S_IFMT) == S_IFREG ? Int64(st.st_size) : -1
    }

    public func files(inDirectory name: String) throws -> [DirectoryFile] {
        var st = Glibc.stat()
        guard lstat(directory.file(name), &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return [] }
        return try SnapshotDirectory.files(in: directory.file(name))
    }

    public func create(_ name: String, expectedSize: Int64, sha256: String?) throws -> StorageUpload {
        try makeFolder(of: name)
        return try LocalUpload(directory: directory, name: name)
    }

    /// `name.partial` created exclusively: another backup that took the name first wins.
    public func createNew(_ name: String, expectedSize: Int64) throws -> StorageUpload? {
        do {
            return try LocalUpload(directory: directory, name: name, exclusive: true)
        } catch is FileSink.AlreadyExists {
            return nil
        }
    }

    public func stat(_ name: String) throws -> StoredObject? { try size(of: name).map { StoredObject(size: $0, sha256: nil) } }

    /// A directory records no checksum beside a file (the manifest holds them).
    public func putSmall(_ name: String, bytes: [UInt8], sha256: String?) throws {
        try makeFolder(of: name)
        try directory.writeAtomically(Data(bytes), to: name)
        try LocalStorage.syncFolder(of: name, in: directory)
    }

    /// A file of `<id>.dir` is renamed inside that folder: the folder is what must be fsynced
    /// for the rename to survive a crash (the directory itself is synced by every write).
    static func syncFolder(of name: String, in directory: SnapshotDirectory) throws {
        guard let slash = name.firstIndex(of: "/") else { return }
        try SnapshotDirectory.fsyncPath(directory.file(String(name[..<slash])))
    }

    /// `<id>.dir` (0700) for a directory snapshot's file `<id>.dir/<file>`.
    private func makeFolder(of name: String) throws {
        guard let slash = name.firstIndex(of: "/") else { return }
        let folder = directory.file(String(name[..<slash]))
        if mkdir(folder, 0o700) != 0 && errno != EEXIST { throw SnapshotDirectory.ioError("create \(folder)") }
    }

    public func delete(_ name: String) throws { try directory.remove(name) }
}

/// `name.partial` until commit: fsync, rename, fsync the directory.
final class LocalUpload: StorageUpload {
    let directory: SnapshotDirectory
    let name: String
    let tmp: String
    private var fd: Int32
    private var written: Int64 = 0

    /// - Parameter exclusive: fail with `FileSink.AlreadyExists` when `name.partial` is there (a
    ///   backup reserving its name against another one) instead of replacing it (a transfer's
    ///   leftover, which holds the directory's lock).
    init(directory: SnapshotDirectory, name: String, exclusive: Bool = false) throws {
        self.directory = directory
        self.name = name
        tmp = directory.file(name + SnapshotName.partialSuffix)
        if !exclusive { unlink(tmp) }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST { throw FileSink.AlreadyExists(path: tmp) }
            throw SnapshotDirectory.ioError("create \(tmp)", errno: code)
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try SnapshotDirectory.writeAll(fd, bytes, path: tmp)
        written += Int64(bytes.count)
    }

    func commit() throws -> Int64 {
        guard fsync(fd) == 0 else { throw SnapshotDirectory.ioError("fsync \(tmp)") }
        close(fd)
        fd = -1
        guard rename(tmp, directory.file(name)) == 0 else { throw SnapshotDirectory.ioError("rename \(tmp)") }
        try LocalStorage.syncFolder(of: name, in: directory)
        try directory.sync()
        return written
    }

    func abort() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        unlink(tmp)
    }
}
