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
    /// the staging folder of a directory snapshot, and the globals' size as the run's record
    /// will state it.
    struct Plan {
        var send: [File] = []
        var stray: [String] = []
        /// A directory snapshot's folder as written, then renamed (`commitFolder`).
        var folder: (staging: String, name: String)?
        /// The globals' size in the copy that will stand at the destination (found whole or sent).
        var globalsBytes: Int64 = 0
        var bytes: Int64 { send.reduce(0) { $0 + $1.size } }
    }

    /// - Parameter listing: sizes by name from one listing of the destination taken by the caller
    ///   (push lists the bucket once for all its snapshots); nil to ask the destination.
    /// - Returns: the bytes sent.
    /// - Throws: `PGSnapError.verification` (exit 2) when the source does not match its manifest;
    ///   `PGSnapError` when the destination holds another run's globals or a record it cannot read,
    ///   lacks the space, or a write fails. Nothing sent so far carries the manifest.
    func copy(_ m: Manifest, manifestBytes: [UInt8], listing: [String: Int64]? = nil) throws -> Int64 {
        var staging: String?
        if m.format == .directory {
            // Claimed before it is read: a backup's cleanup of abandoned partial folders must not
            // remove files the plan counts as already there.
            staging = destination.stagingFolder(for: m.file)
            try destination.beginFolder(staging!)
        }
        do {
            return try copy(m, manifestBytes: manifestBytes, plan: try plan(m, listing: listing))
        } catch {
            // A refusal before anything was written leaves no empty staging folder behind.
            if let staging, staging != m.file, (try? destination.files(inDirectory: staging).isEmpty) == true {
                try? destination.delete(staging)
            }
            throw error
        }
    }

    private func copy(_ m: Manifest, manifestBytes: [UInt8], plan: Plan) throws -> Int64 {
        if let free = destination.freeBytes(), free < plan.bytes {
            throw PGSnapError("\(destination.location) has \(formatBytes(free)) free, \(m.id) needs \(formatBytes(plan.bytes))",
                              next: "Free space or use another place; nothing of \(m.id) was copied")
        }
        for name in plan.stray { try destination.delete(name) }
        // A transfer killed mid-upload leaves an unfinished multipart upload that S3 keeps (and
        // bills): one per file it was sending in parts, which is still to send now.
        for f in plan.send where f.size >= CheckedCopy.smallFile {
            if let n = try? destination.removeAbandonedWrites(of: f.destination), n > 0 {
                reporter.info("pgsnap: aborted \(n) unfinished upload(s) of \(f.destination) left by an earlier transfer")
            }
        }
        for f in plan.send { try send(f) }
        if let folder = plan.folder { try destination.commitFolder(folder.staging, as: folder.name) }
        if let run = m.run, let g = m.globalsFile, let sha = m.globalsSHA256 {
            // Read again just before it is written: another transfer of the same run may have
            // added its snapshot since the plan.
            let record = try runRecord(m, run: run, globals: g, sha256: sha, size: plan.globalsBytes)
            try destination.putSmall(RunName.recordFile(run), bytes: [UInt8](try record.encoded()))
        }
        try destination.putSmall(m.id + SnapshotName.manifestSuffix, bytes: manifestBytes)
        try destination.sync()
        return plan.bytes
    }

    func plan(_ m: Manifest, listing: [String: Int64]? = nil) throws -> Plan {
        var plan = Plan()
        if m.format == .directory {
            let staging = destination.stagingFolder(for: m.file)
            plan.folder = (staging, m.file)
            let files = (m.files ?? []).map { File(name: m.file + "/" + $0.name, size: $0.bytes, sha256: $0.sha256, destination: staging + "/" + $0.name) }
            // Sizes of what the folder holds: from the caller's listing where the folder is the
            // final name (a bucket lists each object), else one listing of the folder.
            var there: [String: Int64] = [:]
            if let listing, staging == m.file {
                for (name, size) in listing where name.hasPrefix(staging + "/") { there[name] = size }
            } else {
                for f in try destination.files(inDirectory: staging) { there[staging + "/" + f.name] = f.size }
            }
            let named = Set(files.map(\.destination))
            plan.stray = there.keys.filter { !named.contains($0) }.sorted()
            plan.send = try files.filter { f in
                guard there[f.destination] == f.size else { return true }
                return try !matches(f, try destination.stat(f.destination))
            }
        } else {
            let f = File(name: m.file, size: m.compressedBytes, sha256: m.sha256)
            if let stored = try destination.stat(f.destination), stored.size == f.size, try matches(f, stored) {} else { plan.send.append(f) }
        }
        if let g = m.globalsFile {
            let stored = try destination.stat(g)
            // Judged by the manifest's checksum alone: the source's copy may be the damaged one.
            let whole = try stored.map { try matches(File(name: g, size: $0.size, sha256: m.globalsSHA256), $0) } ?? false
            if whole {
                plan.globalsBytes = stored!.size
            } else {
                // One copy per run, whatever the number of its snapshots; another run's under
                // the same name is never overwritten.
                if stored != nil, let run = m.run, let sha = m.globalsSHA256 {
                    throw PGSnapError("a different \(g) is already in \(destination.location) (snapshot \(m.id) says SHA-256 \(sha)): two runs are named \(run)",
                                      next: "Use another place for one of them; nothing of \(m.id) was copied")
                }
                guard let size = try source.size(of: g), size >= 0 else {
                    throw PGSnapError.verification("snapshot \(m.id) refers to the globals file \(g), which is not in \(source.location); nothing of it was copied",
                                                   next: next)
                }
                plan.globalsBytes = size
                plan.send.append(File(name: g, size: size, sha256: m.globalsSHA256))
            }
        }
        if let run = m.run, let g = m.globalsFile, let sha = m.globalsSHA256 {
            // Both records readable before anything is sent (written again after the data).
            _ = try runRecord(m, run: run, globals: g, sha256: sha, size: plan.globalsBytes)
        }
        return plan
    }

    /// The destination's copy has the file's SHA-256 (`SnapshotStorage.holds`). No checksum in
    /// the manifest: never taken as whole, it is sent again.
    func matches(_ f: File, _ stored: StoredObject?) throws -> Bool {
        guard let stored, let sha = f.sha256 else { return false }
        return try destination.holds(f.destination, sha256: sha, stored: stored)
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
                throw PGSnapError("\(destination.location)/\(name) cannot be read (\(error)); the snapshot \(m.id) was not committed there",
                                  next: "Move it away, then run the command again")
            }
            record = try there.merged(with: record)
        }
        return record.adding(m.id)
    }

    /// One file, checked as it streams (a small one in one write).
    func send(_ f: File) throws {
        try CheckedCopy(source: source, destination: destination, next: next)
            .copy(f.name, size: f.size, sha256: f.sha256, as: f.destination, progress: Progress(reporter: reporter, verb: verb, total: f.size))
    }
}
