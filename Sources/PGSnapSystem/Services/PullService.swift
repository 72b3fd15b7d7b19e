import Foundation
import PGSnapCore

/// action: "downloaded", or "skipped" when the local copy was already whole.
public typealias PullResult = TransferResult

/// Copies one snapshot from another storage (a bucket, or any `SnapshotStorage`) into the local
/// directory exactly as a backup writes one: each data file as `.partial`, size and SHA-256
/// checked while it streams, renamed, manifest last.
public struct PullService {
    let session: Session
    let remote: SnapshotStorage

    public init(session: Session, remote: SnapshotStorage) {
        self.session = session
        self.remote = remote
    }

    /// The remote snapshot a selector means, and its manifest (one listing, one GET).
    ///
    /// - Throws: `PGSnapError`: exit 2 when the remote copy is incomplete or its dump has the wrong size.
    public func resolve(_ selector: SnapshotSelector) throws -> (manifest: Manifest, bytes: [UInt8], files: [String: Int64]) {
        let (objects, files) = try remote.listing()
        let entries = RemoteCatalog.build(files: objects)
        let entry = try RemoteCatalog.select(selector, from: entries, location: remote.location)
        // Never an older copy in its place without saying so: the refusal names the next good one.
        func refuse(_ check: String, _ detail: String) -> PGSnapError {
            selector.refusal(entry, check: check, detail: "\(detail) in \(remote.location)", among: entries) { "pgsnap pull \($0) --remote \(remote.location)" }
        }
        guard entry.isGood else { throw refuse("files", entry.problem ?? entry.status.rawValue) }
        let manifestName = entry.id + SnapshotName.manifestSuffix
        let bytes = try remote.readSmall(manifestName, limit: Manifest.maxBytes)
        let m: Manifest
        do {
            m = try Manifest.decode(bytes: bytes, fileName: manifestName)
        } catch let e as PGSnapError {
            throw PGSnapError.verification("in \(remote.location): \(e.what)", next: "The remote copy of \(entry.id) cannot be used; choose another ('pgsnap list --remote')")
        }
        guard m.id == entry.id else {
            throw PGSnapError.verification("remote manifest \(manifestName) describes snapshot \(m.id)", next: "The remote copy cannot be used")
        }
        guard let size = files[m.file], size == m.compressedBytes else {
            throw refuse("size", "the remote copy is damaged: \(m.file) is \(files[m.file].map(String.init) ?? "missing") bytes, its manifest says \(m.compressedBytes)")
        }
        return (m, bytes, files)
    }

    /// - Parameter requireIdentity: the snapshot is about to be restored: an encrypted one without a key is refused.
    /// - Throws: `PGSnapError`: exit 2 when what arrives does not match the manifest (nothing is kept);
    ///   1 for a key that does not open it (proven on its first MiB in the bucket, before anything is
    ///   downloaded); 64 for a missing key with `requireIdentity`; 1 otherwise.
    public func pull(_ selector: SnapshotSelector, wait: Double?, requireIdentity: Bool = false) throws -> PullResult {
        let start = DispatchTime.now()
        let (m, manifestBytes, files) = try resolve(selector)
        if requireIdentity { _ = try session.requireAgeDecryption(for: m) }
        try session.proveIdentity(for: m) { name, count in try remote.readPrefix(name, count: min(count, Int(files[name] ?? Int64(count)))) }
        if let g = m.globalsFile, files[g] == nil {
            throw PGSnapError.verification("remote copy of \(m.id) lacks its globals file \(g)", next: "Push it again from the machine that has it; nothing was downloaded")
        }
        let dir = try session.directory(create: true)
        let lock = try DirectoryLock(directory: dir, mode: .shared, command: "pull", wait: wait)
        defer { withExtendedLifetime(lock) {} }
        if let localEntry = try dir.catalog().first(where: { $0.id == m.id }), localEntry.isGood {
            guard localEntry.manifest?.sha256 == m.sha256 else {
                throw PGSnapError("a different snapshot named \(m.id) is already in \(dir.path)", next: "Move it away, then pull again")
            }
            session.reporter.info("pgsnap: \(m.id) is already whole in \(dir.path)")
            return PullResult(id: m.id, action: "skipped", bytes: 0, seconds: seconds(since: start))
        }
        let local = LocalStorage(dir)
        let globalsHere = try runGlobalsAlreadyHere(m, in: dir)
        if m.format == .directory {
            try downloadDirectory(m, into: local)
        } else {
            try download(m.file, size: m.compressedBytes, sha256: m.sha256, into: local)
        }
        var bytes = m.compressedBytes
        if m.globalsFile != nil { bytes += try pullGlobals(m, files: files, into: local, alreadyHere: globalsHere) }
        // Last: only now does the snapshot exist locally.
        try local.putSmall(m.id + SnapshotName.manifestSuffix, bytes: manifestBytes)
        let secs = seconds(since: start)
        session.reporter.info("pgsnap: pulled \(m.id) from \(remote.location): \(formatBytes(bytes)) in \(String(format: "%.1f", secs)) s")
        return PullResult(id: m.id, action: "downloaded", bytes: bytes, seconds: secs)
    }

    /// A whole-server run's globals already in `dir` (another snapshot of the run was pulled or
    /// taken here): true when they match the manifest's checksum. Asked before anything is downloaded.
    ///
    /// - Throws: when different globals carry the run's name here (two servers' runs in one place).
    func runGlobalsAlreadyHere(_ m: Manifest, in dir: SnapshotDirectory) throws -> Bool {
        guard let run = m.run, let g = m.globalsFile, let sha = m.globalsSHA256, access(dir.file(g), F_OK) == 0 else { return false }
        let here = try RunGlobals.sha256(ofFile: dir.file(g))
        guard here == sha else {
            throw PGSnapError("a different \(g) is already in \(dir.path) (SHA-256 \(here), snapshot \(m.id) says \(sha)): two runs are named \(run)",
                              next: "Pull into another --dir; nothing was downloaded")
        }
        return true
    }

    /// The snapshot's globals, checked against its manifest's checksum as they stream, and for a
    /// whole-server run the run's record (the bucket's merged with any local one), both before the
    /// manifest. A run's globals already here (`alreadyHere`) are not downloaded again. Returns the
    /// bytes downloaded.
    func pullGlobals(_ m: Manifest, files: [String: Int64], into local: LocalStorage, alreadyHere: Bool) throws -> Int64 {
        guard let g = m.globalsFile else { return 0 }
        guard let size = files[g] else {
            throw PGSnapError.verification("remote copy of \(m.id) lacks its globals file \(g)", next: "Push it again from the machine that has it")
        }
        let dir = local.directory
        var got: Int64 = 0
        if !alreadyHere {
            try download(g, size: size, sha256: m.globalsSHA256, into: local)
            got = size
        }
        guard let run = m.run, let sha = m.globalsSHA256 else { return got }
        let name = RunName.recordFile(run)
        var record = RunRecord(run: run, createdAt: RunName.parse(run) ?? m.createdAt, globalsBytes: size, globalsSHA256: sha, pgsnapVersion: pgsnapVersion,
                               encrypted: g.hasSuffix(SnapshotName.encryptedGlobalsSuffix))
        if files[name] != nil {
            record = try RunRecord.decode(bytes: try remote.readSmall(name, limit: Manifest.maxBytes), fileName: name).merged(with: record)
        }
        record = record.adding(m.id)
        if case .valid(let onDisk) = dir.runRecord(run) { record = try onDisk.merged(with: record) }
        try dir.writeAtomically(try record.encoded(), to: name)
        return got
    }

    /// A directory snapshot into `<id>.dir.partial/`, every file checked as it streams, then
    /// fsynced and renamed to `<id>.dir/`: only a whole directory ever carries the final name.
    func downloadDirectory(_ m: Manifest, into local: LocalStorage) throws {
        let dir = local.directory
        if let free = dir.freeBytes(), free < m.compressedBytes {
            throw PGSnapError("\(dir.path) has \(formatBytes(free)) free, \(m.id) needs \(formatBytes(m.compressedBytes))",
                              next: "Free space or pull into another --dir; nothing was downloaded")
        }
        let partialName = m.file + SnapshotName.partialSuffix
        let partial = dir.file(partialName)
        try SnapshotDirectory.removeTree(partial)
        try? SnapshotDirectory.removeTree(dir.file(m.file))
        guard mkdir(partial, 0o700) == 0 else { throw SnapshotDirectory.ioError("create \(partial)") }
        var done = false
        defer { if !done { try? SnapshotDirectory.removeTree(partial) } }
        let inside = LocalStorage(try SnapshotDirectory(path: partial, create: false))
        for f in m.files ?? [] {
            try download(m.file + "/" + f.name, size: f.bytes, sha256: f.sha256, into: inside, as: f.name)
        }
        try SnapshotDirectory.fsyncPath(partial)
        guard rename(partial, dir.file(m.file)) == 0 else { throw SnapshotDirectory.ioError("rename \(partial)") }
        try dir.sync()
        done = true
    }

    /// - Parameter localName: the name to write it under (default: `name`).
    func download(_ name: String, size: Int64, sha256: String?, into local: LocalStorage, as localName: String? = nil) throws {
        if let free = local.directory.freeBytes(), free < size {
            throw PGSnapError("\(local.directory.path) has \(formatBytes(free)) free, \(name) needs \(formatBytes(size))",
                              next: "Free space or pull into another --dir; nothing was downloaded")
        }
        try CheckedCopy(source: remote, destination: local, next: "Push it again or choose another snapshot")
            .copy(name, size: size, sha256: sha256, as: localName, progress: Progress(reporter: session.reporter, verb: "pulled", total: size))
    }
}
