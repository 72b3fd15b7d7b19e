import PGSnapCore

extension SnapshotStorage {
    /// Whether `name` (as `stat` found it) holds the bytes whose SHA-256 is `sha256`: the checksum
    /// the storage recorded when it was written (a bucket's metadata), else the file read and
    /// hashed (a directory keeps none).
    func holds(_ name: String, sha256: String, stored: StoredObject) throws -> Bool {
        if let recorded = stored.sha256 { return recorded == sha256 }
        var hash = SHA256Stream()
        try read(name, size: stored.size) { hash.update($0) }
        return hash.finalizeHex() == sha256
    }
}
