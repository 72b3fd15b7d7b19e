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
    func read(_ name: String, size: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) throws
    /// A new file that nobody sees under `name` until `commit` (temporary name / multipart upload).
    func create(_ name: String, expectedSize: Int64, sha256: String?) throws -> StorageUpload
    /// A small file (a manifest), visible all at once or not at all.
    func putSmall(_ name: String, bytes: [UInt8]) throws
    func delete(_ name: String) throws
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
