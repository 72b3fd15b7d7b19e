import Foundation
import PGSnapCore

/// One file copied from one storage to another, hashed as it streams, and committed on the
/// destination only when its size and SHA-256 are the manifest's; aborted otherwise, so a
/// file that does not match never carries its name there. push (directory -> bucket) and pull
/// (bucket -> directory) are this one step in opposite directions.
struct CheckedCopy {
    let source: SnapshotStorage
    let destination: SnapshotStorage
    /// What to do when the source is the damaged side (e.g. "Run 'pgsnap verify' on it").
    let next: String

    /// - Parameters:
    ///   - size, sha256: what the manifest says of the file.
    ///   - destinationName: the name to write it under (default: `name`).
    /// - Throws: `PGSnapError.verification` (exit 2) when the source does not match; the destination's error otherwise.
    /// Below it a file is gathered and stored in one write (`putSmall`): one request to a bucket
    /// instead of a multipart upload's four. S3's smallest part.
    static let smallFile: Int64 = 5 << 20

    func copy(_ name: String, size: Int64, sha256: String?, as destinationName: String? = nil, progress: Progress? = nil) throws {
        let what = "\(source.location)/\(name)"
        var gathered: [UInt8] = []
        let file = size < CheckedCopy.smallFile ? nil : try destination.create(destinationName ?? name, expectedSize: size, sha256: sha256)
        var hash = SHA256Stream()
        var count: Int64 = 0
        do {
            try source.read(name, size: size) { chunk in
                count += Int64(chunk.count)
                guard count <= size else {
                    throw PGSnapError.verification("\(what) is damaged: longer than its manifest says (\(size) bytes); nothing was kept", next: next)
                }
                hash.update(chunk)
                if let file { try file.write(chunk) } else { gathered.append(contentsOf: chunk) }
                progress?.update(bytesIn: count, bytesOut: count)
            }
            progress?.done()
            guard count == size else {
                throw PGSnapError.verification("\(what) is damaged: \(count) bytes, its manifest says \(size); nothing was kept", next: next)
            }
            if let sha256 {
                let got = hash.finalizeHex()
                guard got == sha256 else {
                    throw PGSnapError.verification("\(what) is damaged: SHA-256 \(got), its manifest says \(sha256); nothing was kept", next: next)
                }
            }
            if let file {
                _ = try file.commit()
            } else {
                try destination.putSmall(destinationName ?? name, bytes: gathered, sha256: sha256)
            }
        } catch {
            file?.abort()
            throw error
        }
    }
}
