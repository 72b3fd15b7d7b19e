import Foundation
import PGSnapCore

/// One snapshot copied from one storage to another, in the order a backup writes one: its data
/// files, each checked against the manifest as it streams; the globals of a whole-server run and
/// the run's record; the manifest last. Until the manifest lands the destination holds no
/// snapshot, only files the catalog and prune know as leftovers (on disk a directory snapshot's
/// files wait in `<id>.dir.partial` until all are there). push (directory -> bucket) and
/// pull (bucket -> directory) are this one copy in opposite directions; what either side is
/// comes only from the two storages.
struct SnapshotTransfer {
    let source: SnapshotStorage
    let destination: SnapshotStorage
    let reporter: Reporter
    /// What to do when the source turns out damaged (e.g. "Run 'pgsnap verify' on it").
    let next: String
    /// The progress line's verb: "pushed", "pulled".
    let verb: String

    /// One file the manifest names, with what it says of it.
    struct File {
        var name: String
        var size: Int64
        var sha256: String?
        /// Where it goes: `name`, or inside the destination's staging folder.
        var destination: String

        init(name: String, size: Int64, sha256: String?, destination: String? = nil) {
            self.name = name
            self.size = size
            self.sha256 = sha256
            self.destination = destination ?? name
        }
    }

    /// What the copy does, decided before a byte moves: the files still to send (a killed
    /// transfer resumes file by file), files of an earlier copy that the manifest does not name,
    /// and a run's record as it will be written.
    struct Plan {
        var send: [File] = []
        var stray: [String] = []
        /// A directory snapshot's folder as written, then renamed (`commitFolder`).
        var folder: (staging: String, name: String)?
        var record: (name: String, bytes: [UInt8])?
        /// Files too big for one write: where a killed transfer may have left an unfinished upload.
        var multipart: [String] = []
        var bytes: Int64 { send.reduce(0) { $0 + $1.size } }
    }

    /// - Returns: the bytes sent.
    /// - Throws: `PGSnapError.verification` (exit 2) when the source does not match its manifest;
    ///   `PGSnapError` when the destination holds another run's globals or a record it cannot read,
    ///   lacks the space, or a write fails. Nothing sent so far carries the manifest.
    func copy(_ m: Manifest, manifestBytes: [UInt8]) throws -> Int64 {
        // Claimed before it is read: a backup's cleanup of abandoned partial folders must not
        // remove files the plan counts as already there.
        if m.format == .directory { try destination.beginFolder(destination.stagingFolder(for: m.file)) }
        let plan = try self.plan(m)
        if let free = destination.freeBytes(), free < plan.bytes {
            throw PGSnapError("\(destination.location) has \(formatBytes(free)) free, \(m.id) needs \(formatBytes(plan.bytes))",
                              next: "Free space or use another place; nothing was copied")
        }
        for name in plan.stray { try destination.delete(name) }
        for f in plan.send { try send(f) }
        if let folder = plan.folder { try destination.commitFolder(folder.staging, as: folder.name) }
        if let record = plan.record { try destination.putSmall(record.name, bytes: record.bytes) }
        // A transfer killed mid-upload leaves an unfinished multipart upload that S3 keeps (and bills):
        // one per file big enough to be sent in parts.
        for f in plan.multipart {
            if let n = try? destination.removeAbandonedWrites(of: f), n > 0 {
                reporter.info("pgsnap: aborted \(n) unfinished upload(s) of \(f) left by an earlier transfer")
            }
        }
        try destination.putSmall(m.id + SnapshotName.manifestSuffix, bytes: manifestBytes)
        try destination.sync()
        return plan.bytes
    }

    func plan(_ m: Manifest) throws -> Plan {
        var plan = Plan()
        var files: [File]
        var globalsSize: Int64 = 0
        // Sizes of what the destination already holds: one listing of the snapshot's folder, a
        // HEAD (or stat) per other file; never a listing of a whole bucket prefix per snapshot.
        var existing: [String: Int64] = [:]
        if m.format == .directory {
            let staging = destination.stagingFolder(for: m.file)
            plan.folder = (staging, m.file)
            files = (m.files ?? []).map { File(name: m.file + "/" + $0.name, size: $0.bytes, sha256: $0.sha256, destination: staging + "/" + $0.name) }
            let named = Set(files.map(\.destination))
            for f in try destination.files(inDirectory: staging) { existing[staging + "/" + f.name] = f.size }
            plan.stray = existing.keys.filter { !named.contains($0) }.sorted()
        } else {
            files = [File(name: m.file, size: m.compressedBytes, sha256: m.sha256)]
            existing[m.file] = try destination.size(of: m.file)
        }
        if let g = m.globalsFile {
            guard let size = try source.size(of: g), size >= 0 else {
                throw PGSnapError.verification("snapshot \(m.id) refers to the globals file \(g), which is not in \(source.location); nothing was copied",
                                               next: next)
            }
            globalsSize = size
            let globals = File(name: g, size: size, sha256: m.globalsSHA256)
            let there = try destination.size(of: g)
            existing[g] = there
            // One copy per run, whatever the number of its snapshots; another run's under the
            // same name is never overwritten.
            if m.run != nil, let sha = m.globalsSHA256, let there, there >= 0, try !isWhole(globals, size: there) {
                throw PGSnapError("a different \(g) is already in \(destination.location) (snapshot \(m.id) says SHA-256 \(sha)): two runs are named \(m.run!)",
                                  next: "Use another place for one of them; nothing was copied")
            }
            files.append(globals)
        }
        plan.multipart = files.filter { $0.size >= SnapshotTransfer.smallFile }.map(\.destination)
        plan.send = try files.filter { f in try !(existing[f.destination] == f.size && isWhole(f, size: f.size)) }
        if let run = m.run, let g = m.globalsFile, let sha = m.globalsSHA256 {
            plan.record = (RunName.recordFile(run), [UInt8](try runRecord(m, run: run, globals: g, sha256: sha, size: globalsSize).encoded()))
        }
        return plan
    }

    /// The destination's copy has the manifest's size and SHA-256: the one the storage recorded
    /// when it was written (a bucket's metadata), else read and hashed (a directory keeps none).
    func isWhole(_ f: File, size: Int64) throws -> Bool {
        guard size == f.size, let sha = f.sha256 else { return size == f.size }
        if let recorded = try destination.stat(f.destination)?.sha256 { return recorded == sha }
        var hash = SHA256Stream()
        try destination.read(f.destination, size: size) { hash.update($0) }
        return hash.finalizeHex() == sha
    }

    /// The run's record as the destination will hold it: what the manifest says, merged with the
    /// source's record (it may name other snapshots of the run) and the destination's (never
    /// overwritten unread), naming this snapshot.
    func runRecord(_ m: Manifest, run: String, globals: String, sha256: String, size: Int64) throws -> RunRecord {
        let name = RunName.recordFile(run)
        var record = RunRecord(run: run, createdAt: RunName.parse(run) ?? m.createdAt, globalsBytes: size, globalsSHA256: sha256,
                               pgsnapVersion: pgsnapVersion, encrypted: globals.hasSuffix(SnapshotName.encryptedGlobalsSuffix))
        // A source record that was lost or cannot be read: what the manifest says is enough.
        if try source.size(of: name) != nil,
           let theirs = try? RunRecord.decode(bytes: try source.readSmall(name, limit: Manifest.maxBytes), fileName: name) {
            record = try theirs.merged(with: record)
        }
        if try destination.size(of: name) != nil {
            let there: RunRecord
            do {
                there = try RunRecord.decode(bytes: try destination.readSmall(name, limit: Manifest.maxBytes), fileName: name)
            } catch {
                throw PGSnapError("\(destination.location)/\(name) cannot be read (\(error)); nothing was copied",
                                  next: "Move it away, then run the command again")
            }
            record = try there.merged(with: record)
        }
        return record.adding(m.id)
    }

    /// S3's smallest part: a file below it is one write, at or above it a multipart upload.
    static let smallFile = 5 << 20

    /// One file, checked as it streams; a small one (a directory snapshot's TOC or a small
    /// table) in one write, which costs a bucket one request instead of a multipart upload's four.
    func send(_ f: File) throws {
        guard f.size < SnapshotTransfer.smallFile else {
            try CheckedCopy(source: source, destination: destination, next: next)
                .copy(f.name, size: f.size, sha256: f.sha256, as: f.destination, progress: Progress(reporter: reporter, verb: verb, total: f.size))
            return
        }
        let bytes = try source.readSmall(f.name, limit: SnapshotTransfer.smallFile)
        var hash = SHA256Stream()
        bytes.withUnsafeBytes { hash.update($0) }
        let got = hash.finalizeHex()
        guard bytes.count == f.size, f.sha256.map({ $0 == got }) ?? true else {
            throw PGSnapError.verification("\(source.location)/\(f.name) is damaged: \(bytes.count) bytes with SHA-256 \(got), its manifest says \(f.size) bytes"
                                           + (f.sha256.map { " with \($0)" } ?? "") + "; nothing was kept", next: next)
        }
        try destination.putSmall(f.destination, bytes: bytes, sha256: f.sha256)
    }
}
