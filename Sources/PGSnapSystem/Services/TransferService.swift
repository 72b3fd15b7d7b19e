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

/// push and pull: which snapshot, under which lock, then one `SnapshotTransfer` between the
/// backup directory and `remote` (a bucket, or any `SnapshotStorage`) in one direction or the other.
public struct TransferService {
    let session: Session
    let remote: SnapshotStorage

    public init(session: Session, remote: SnapshotStorage) {
        self.session = session
        self.remote = remote
    }

    /// Copies committed local snapshots to the remote, manifest last, each file checked as it streams.
    ///
    /// - Throws: `PGSnapError`: exit 2 when a local dump no longer matches its manifest, 1 for S3 trouble.
    /// - Parameter force: upload the snapshots again although the bucket holds them whole by size
    ///   (a copy damaged there): the remote manifest goes first, so the copy never looks whole
    ///   while it is rewritten, and comes back last.
    public func push(selector: SnapshotSelector?, all: Bool, wait: Double?, force: Bool = false) throws -> [TransferResult] {
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
        let local = LocalStorage(dir)
        let transfer = SnapshotTransfer(source: local, destination: remote, reporter: session.reporter,
                                        next: "Run 'pgsnap verify' on it; nothing more was uploaded", verb: "pushed")
        return try chosen.map { entry in
            let m = entry.manifest!
            let start = DispatchTime.now()
            if !force, PushSelection.isWhole(m, localFiles: localFiles, remoteFiles: remoteFiles) {
                session.reporter.info("pgsnap: \(m.id) is already in \(remote.location)")
                return TransferResult(id: m.id, action: "skipped", bytes: 0, seconds: seconds(since: start))
            }
            let manifestName = m.id + SnapshotName.manifestSuffix
            if remoteFiles[manifestName] != nil,
               let there = try? Manifest.decode(bytes: try remote.readSmall(manifestName, limit: Manifest.maxBytes), fileName: manifestName),
               there.sha256 != m.sha256 {
                throw PGSnapError("a different snapshot named \(m.id) is already in \(remote.location)", next: "Nothing of it was changed; push to another prefix")
            }
            var listing = remoteFiles
            if force {
                if remoteFiles[manifestName] != nil { try remote.delete(manifestName) }
                // Every file of the snapshot goes up again; a run's globals stay as they are.
                listing = listing.filter { $0.key != manifestName && $0.key != m.file && !$0.key.hasPrefix(m.file + "/") }
            }
            let sent = try transfer.copy(m, manifestBytes: try local.readSmall(manifestName, limit: Manifest.maxBytes), listing: listing)
            let secs = seconds(since: start)
            session.reporter.info("pgsnap: pushed \(m.id) to \(remote.location): \(formatBytes(sent)) in \(String(format: "%.1f", secs)) s")
            return TransferResult(id: m.id, action: "uploaded", bytes: sent, seconds: secs)
        }
    }

    /// The remote snapshot a selector means, and its manifest (one listing, one GET).
    ///
    /// - Throws: `PGSnapError`: exit 2 when the remote copy is incomplete or its dump has the wrong size.
    public func resolve(_ selector: SnapshotSelector) throws -> (manifest: Manifest, bytes: [UInt8], files: [String: Int64]) {
        let (objects, files) = try remote.listing()
        var entries = ListingCatalog.build(files: objects)
        // An id the listing cannot split for sure (a label or database name holding a time) could
        // be filed under the wrong database, and `latest` pass over it: the manifests decide then.
        if entries.contains(where: { SnapshotName.isAmbiguous(id: $0.id) }) { entries = try remote.catalog(summaries: true) }
        let entry = try ListingCatalog.select(selector, from: entries, location: remote.location)
        if let line = selector.passedOverLine(entry, among: entries) { session.reporter.warn(line) }
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

    /// Copies one remote snapshot into the local directory exactly as a backup writes one: each
    /// file as `.partial`, checked while it streams, renamed; the manifest last.
    ///
    /// - Parameter requireIdentity: the snapshot is about to be restored: an encrypted one without a key is refused.
    /// - Throws: `PGSnapError`: exit 2 when what arrives does not match the manifest (nothing is kept);
    ///   1 for a key that does not open it (proven on its first MiB in the bucket, before anything is
    ///   downloaded); 64 for a missing key with `requireIdentity`; 1 otherwise.
    public func pull(_ selector: SnapshotSelector, wait: Double?, requireIdentity: Bool = false) throws -> TransferResult {
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
        let transfer = SnapshotTransfer(source: remote, destination: LocalStorage(dir), reporter: session.reporter,
                                        next: "Replace the bucket's copy from a machine that has it ('pgsnap push \(m.id) --force') or choose another snapshot", verb: "pulled")
        if let localEntry = try dir.catalog().first(where: { $0.id == m.id }), localEntry.isGood {
            guard localEntry.manifest?.sha256 == m.sha256 else {
                throw PGSnapError("a different snapshot named \(m.id) is already in \(dir.path)", next: "Move it away, then pull again")
            }
            // Whole by its size is not whole: a local copy damaged in place is read and hashed,
            // and what does not match is fetched again (restore --remote at 3 a.m. relies on it).
            guard try !transfer.plan(m).send.isEmpty else {
                session.reporter.info("pgsnap: \(m.id) is already whole in \(dir.path)")
                return TransferResult(id: m.id, action: "skipped", bytes: 0, seconds: seconds(since: start))
            }
            session.reporter.info("pgsnap: the copy of \(m.id) in \(dir.path) does not match its checksum: pulling it again")
        }
        let bytes = try transfer.copy(m, manifestBytes: manifestBytes)
        let secs = seconds(since: start)
        session.reporter.info("pgsnap: pulled \(m.id) from \(remote.location): \(formatBytes(bytes)) in \(String(format: "%.1f", secs)) s")
        return TransferResult(id: m.id, action: "downloaded", bytes: bytes, seconds: secs)
    }
}
