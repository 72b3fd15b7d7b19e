import Foundation
import PGSnapCore

/// One snapshot copied between the local directory and the remote (push and pull alike).
public struct TransferResult: Codable, Sendable {
    public var id: String
    /// What was done: "uploaded", "downloaded", or "skipped" when the other side was already whole.
    public var action: String
    public var bytes: Int64
    public var seconds: Double
}

/// action: "uploaded", or "skipped" when the remote copy was already whole.
public typealias PushResult = TransferResult

/// Copies committed local snapshots to another storage (a bucket, or any `SnapshotStorage`):
/// data files first (checked as they stream), the manifest last, so there too a snapshot
/// without its manifest does not exist.
public struct PushService {
    let session: Session
    let remote: SnapshotStorage

    public init(session: Session, remote: SnapshotStorage) {
        self.session = session
        self.remote = remote
    }

    /// - Throws: `PGSnapError`: exit 2 when a local dump no longer matches its manifest, 1 for S3 trouble.
    public func run(selector: SnapshotSelector?, all: Bool, wait: Double?) throws -> [PushResult] {
        let dir = try session.directory(create: false)
        // Shared, like a backup: prune (exclusive) cannot delete a file while it is being read.
        let lock = try DirectoryLock(directory: dir, mode: .shared, command: "push", wait: wait)
        defer { withExtendedLifetime(lock) {} }
        let localFiles = try dir.list()
        let chosen = try PushSelection.choose(from: try dir.catalog(), selector: selector, all: all, directory: dir.path)
        if chosen.isEmpty {
            throw PGSnapError("no good snapshot to push in \(dir.path)", next: "Run 'pgsnap backup' first")
        }
        let remoteFiles = try remote.listing().sizes
        return try chosen.map { entry in
            try push(entry.manifest!, dir: dir, localFiles: localFiles, remoteFiles: remoteFiles)
        }
    }

    func push(_ m: Manifest, dir: SnapshotDirectory, localFiles: [DirectoryFile], remoteFiles: [String: Int64]) throws -> PushResult {
        let start = DispatchTime.now()
        if PushSelection.isWhole(m, localFiles: localFiles, remoteFiles: remoteFiles) {
            session.reporter.info("pgsnap: \(m.id) is already in \(remote.location)")
            return PushResult(id: m.id, action: "skipped", bytes: 0, seconds: seconds(since: start))
        }
        let local = LocalStorage(dir)
        var sent: Int64 = 0
        if m.format == .directory {
            sent += try pushDirectory(m, from: local, remoteFiles: remoteFiles)
        } else if remoteFiles[m.file] == m.compressedBytes, let meta = try remote.stat(m.file), meta.size == m.compressedBytes,
           meta.sha256 == m.sha256 {
            // A dump left whole by a push killed before its manifest (same size, same SHA-256 recorded) is kept.
            session.reporter.info("pgsnap: \(m.file) is already uploaded; writing the manifest")
        } else {
            try upload(m.file, size: m.compressedBytes, sha256: m.sha256, from: local)
            sent += m.compressedBytes
        }
        if m.globalsFile != nil { sent += try pushGlobals(m, from: local, localFiles: localFiles) }
        // A push killed mid-upload leaves an unfinished multipart upload that S3 keeps (and bills).
        if let n = try? remote.removeAbandonedWrites(of: m.file), n > 0 {
            session.reporter.info("pgsnap: aborted \(n) unfinished upload(s) of \(m.file) left by an earlier push")
        }
        let manifestName = m.id + SnapshotName.manifestSuffix
        try remote.putSmall(manifestName, bytes: try local.readSmall(manifestName, limit: Manifest.maxBytes))
        let secs = seconds(since: start)
        session.reporter.info("pgsnap: pushed \(m.id) to \(remote.location): \(formatBytes(sent)) in \(String(format: "%.1f", secs)) s")
        return PushResult(id: m.id, action: "uploaded", bytes: sent, seconds: secs)
    }

    /// The snapshot's globals, checked against its manifest's checksum, and for a whole-server run
    /// the run's record (merged with the bucket's copy, so it names every pushed snapshot), both
    /// before the manifest. A run's globals already in the bucket with their checksum are not sent
    /// again: one copy per run, whatever the number of its snapshots (asked with a HEAD, not the
    /// listing taken before the first of them was pushed). Returns the bytes sent.
    func pushGlobals(_ m: Manifest, from local: LocalStorage, localFiles: [DirectoryFile]) throws -> Int64 {
        guard let g = m.globalsFile else { return 0 }
        guard let size = localFiles.first(where: { $0.name == g })?.size else {
            throw PGSnapError("snapshot \(m.id) refers to the globals file \(g), which is not in \(local.directory.path); nothing more was uploaded",
                              next: "Run 'pgsnap verify \(m.id)'")
        }
        var sent: Int64 = 0
        if let sha = m.globalsSHA256, let meta = try remote.stat(g), meta.size == size, meta.sha256 == sha {
            // Already there from another snapshot of the run (or an earlier push).
        } else {
            try upload(g, size: size, sha256: m.globalsSHA256, from: local)
            sent = size
        }
        guard let run = m.run, let sha = m.globalsSHA256 else { return sent }
        let name = RunName.recordFile(run)
        var record: RunRecord
        if case .valid(let onDisk) = local.directory.runRecord(run) {
            record = onDisk
        } else {
            // Lost locally: what the manifest says is enough to name this snapshot.
            record = RunRecord(run: run, createdAt: RunName.parse(run) ?? m.createdAt, globalsBytes: size, globalsSHA256: sha, pgsnapVersion: pgsnapVersion,
                               encrypted: g.hasSuffix(SnapshotName.encryptedGlobalsSuffix))
        }
        record = record.adding(m.id)
        // The bucket's copy may name snapshots pushed from elsewhere: merged, never overwritten unread.
        if try remote.stat(name) != nil {
            record = try RunRecord.decode(bytes: try remote.readSmall(name, limit: Manifest.maxBytes), fileName: name).merged(with: record)
        }
        try remote.putSmall(name, bytes: [UInt8](try record.encoded()))
        return sent
    }

    /// A directory snapshot as `<id>.dir/<file>` objects, each checked against its manifest entry.
    /// A file already in the bucket with its size and SHA-256 is kept: a killed push resumes file by file.
    func pushDirectory(_ m: Manifest, from local: LocalStorage, remoteFiles: [String: Int64]) throws -> Int64 {
        var sent: Int64 = 0
        for f in m.files ?? [] {
            let name = m.file + "/" + f.name
            if remoteFiles[name] == f.bytes, let meta = try remote.stat(name), meta.size == f.bytes, meta.sha256 == f.sha256 { continue }
            if f.bytes < 5 << 20 {
                let bytes = try local.readSmall(name, limit: 5 << 20)
                var hash = SHA256Stream()
                bytes.withUnsafeBytes { hash.update($0) }
                guard bytes.count == f.bytes, hash.finalizeHex() == f.sha256 else {
                    throw PGSnapError.verification("local file \(local.directory.file(name)) no longer matches its manifest; nothing more was uploaded",
                                                   next: "Run 'pgsnap verify \(m.id)'")
                }
                try remote.putSmall(name, bytes: bytes, sha256: f.sha256)
            } else {
                try upload(name, size: f.bytes, sha256: f.sha256, from: local)
            }
            sent += f.bytes
        }
        return sent
    }

    /// A local file into the bucket, checked as it streams: one that no longer matches its
    /// manifest is never committed there.
    func upload(_ name: String, size: Int64, sha256: String?, from local: LocalStorage) throws {
        try CheckedCopy(source: local, destination: remote, next: "Run 'pgsnap verify' on it; nothing was uploaded").copy(name, size: size, sha256: sha256)
    }
}
