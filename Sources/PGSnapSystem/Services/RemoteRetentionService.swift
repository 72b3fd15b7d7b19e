import Foundation
import PGSnapCore

/// A bucket's catalog with its newest good snapshots confirmed: `good` from a listing only means
/// dump and manifest are both there, so before a rule leans on "the newest good snapshot" (prune
/// never deletes it, check judges its age and size), its manifest is read and the dump's listed
/// size compared with it. A few GETs per database, not one per snapshot.
struct RemoteCatalogReader {
    let remote: S3Storage

    /// - Parameter confirm: how many good snapshots per database, newest first, to confirm.
    func entries(database: String?, confirm: Int) throws -> [CatalogEntry] {
        try entries(listing: try remote.listing(), database: database, confirm: confirm)
    }

    func entries(listing: (files: [DirectoryFile], sizes: [String: Int64]), database: String?, confirm: Int) throws -> [CatalogEntry] {
        let (objects, sizes) = listing
        var entries = RemoteCatalog.build(files: objects).filter { database == nil || $0.database == database }
        var confirmed: [String: Int] = [:]
        for i in entries.indices where entries[i].isGood && confirmed[entries[i].database, default: 0] < confirm {
            let name = entries[i].id + SnapshotName.manifestSuffix
            do {
                let m = try Manifest.decode(bytes: try remote.readSmall(name, limit: Manifest.maxBytes), fileName: name, summary: true)
                entries[i].manifest = m
                entries[i].createdAt = m.createdAt
                if sizes[m.file] != m.compressedBytes {
                    entries[i].status = .damaged
                    entries[i].problem = "dump is \(sizes[m.file].map(String.init) ?? "missing") bytes in the bucket, manifest says \(m.compressedBytes)"
                    continue
                }
            } catch let e as PGSnapError where e.status == .verificationFailed {
                entries[i].status = .invalidManifest
                entries[i].problem = e.description
                continue
            }
            confirmed[entries[i].database, default: 0] += 1
        }
        return Catalog.sorted(entries)
    }
}

/// `prune --remote`: the local retention rules over the bucket (the newest good snapshot of each
/// database, confirmed, is never deleted), plus unfinished multipart uploads older than the
/// leftover grace period aborted.
public struct RemotePruneService {
    let session: Session
    let remote: S3Storage

    public init(session: Session, remote: S3Storage) {
        self.session = session
        self.remote = remote
    }

    public func run(policy: RetentionPolicy, database: String?, dryRun: Bool, wait: Double?) throws -> PruneResult {
        // The local directory's lock, when there is one, keeps this machine's pushes out.
        let lock = try? session.directory(create: false)
        let held = try lock.map { try DirectoryLock(directory: $0, mode: .exclusive, command: "prune --remote", wait: wait) }
        defer { withExtendedLifetime(held) {} }
        let listing = try remote.listing()
        let entries = try RemoteCatalogReader(remote: remote).entries(listing: listing, database: database, confirm: 1)
        let plan = RetentionPlan.make(entries: entries, policy: policy, now: session.now())
        // Which snapshots refer to a run's globals: its record says (one small GET per run), for every database.
        let removing = Set(plan.filter { $0.action == .remove }.map(\.id))
        let others = database == nil ? [] : RemoteCatalog.build(files: listing.files).filter { $0.database != database }
        let runs = RunRetention.plan(runs: try remoteRuns(listing.files), entries: entries + others, removing: removing, now: session.now(),
                                     grace: policy.leftoverGrace)
        var removed: Int64 = 0
        if !dryRun {
            for d in plan where d.action == .remove {
                for f in RetentionPlan.deletionOrder(d.files) { try remote.delete(f) }
                removed += d.bytes
            }
            for r in runs where r.action == .remove {
                for f in RunRetention.deletionOrder(r.files) { try remote.delete(f) }
                removed += r.bytes
            }
            let cutoff = session.now().addingTimeInterval(-policy.leftoverGrace)
            let stale = try remote.abortUnfinishedUploads(initiatedBefore: cutoff)
            if stale > 0 { session.reporter.info("pgsnap: aborted \(stale) unfinished upload(s) older than \(Int(policy.leftoverGrace / 3600)) h") }
        }
        return PruneResult(dryRun: dryRun, decisions: plan, runs: runs, removedBytes: removed)
    }

    /// The runs in the bucket with their records read; a record that cannot be read or parsed is `.invalid` (kept).
    func remoteRuns(_ files: [DirectoryFile]) throws -> [RunFiles] {
        try RunFiles.group(files).map { r in
            var r = r
            guard r.hasRecord else { return r }
            let name = RunName.recordFile(r.run)
            do {
                r.record = .valid(try RunRecord.decode(bytes: try remote.readSmall(name, limit: Manifest.maxBytes), fileName: name))
            } catch let e as PGSnapError where e.status == .verificationFailed {
                r.record = .invalid(e.description)
            }
            return r
        }
    }
}

/// `check --remote`: is the newest good offsite copy of each database fresh and plausibly sized?
public struct RemoteCheckService {
    let session: Session
    let remote: S3Storage

    public init(session: Session, remote: S3Storage) {
        self.session = session
        self.remote = remote
    }

    public func run(maxAge: TimeInterval, minSize: Int64, database: String?, metricsFile: String?) throws -> HealthReport {
        // Two per database: the shrink rule compares the newest with the one before.
        let entries = try RemoteCatalogReader(remote: remote).entries(database: database, confirm: 2)
        let check = CheckService(session: session)
        let report = check.evaluate(entries, location: remote.location, maxAge: maxAge, minSize: minSize, database: database)
        if let metricsFile { try check.writeMetrics(report, to: metricsFile, prefix: "pgsnap_remote") }
        return report
    }
}
