import Foundation
import PGSnapCore

public struct PruneResult: Encodable {
    public var dryRun: Bool
    public var decisions: [RetentionDecision]
    /// Whole-server runs' globals: kept while a kept snapshot refers to them.
    public var runs: [RunDecision]
    public var removedBytes: Int64
}

/// Applies a retention plan to one storage (the backup directory or a bucket) under the
/// directory's exclusive lock: manifest first, then the dump; then the globals of runs that no
/// kept snapshot refers to any more, record first; then writes a killed run never finished.
public struct PruneService {
    let session: Session
    public init(session: Session) { self.session = session }

    /// - Parameters:
    ///   - command: how the lock names this run to others ("prune", "prune --remote").
    ///   - confirmed: snapshots this run has just verified whole (`backup --prune`'s new one).
    public func run(_ storage: SnapshotStorage, policy: RetentionPolicy, database: String?, dryRun: Bool, wait: Double?,
                    command: String = "prune", confirmed: Set<String> = []) throws -> PruneResult {
        // The backup directory's lock keeps this machine's backups and pushes out; a bucket pruned
        // from a machine without a backup directory has no local lock to take.
        let dir = try? session.directory(create: false)
        let lock = try dir.map { try DirectoryLock(directory: $0, mode: .exclusive, command: command, wait: wait) }
        defer { withExtendedLifetime(lock) {} }
        return try runLocked(storage, policy: policy, database: database, dryRun: dryRun, confirmed: confirmed)
    }

    func runLocked(_ storage: SnapshotStorage, policy: RetentionPolicy, database: String?, dryRun: Bool,
                   confirmed: Set<String> = []) throws -> PruneResult {
        let files = try storage.list()
        // Every database's snapshots: a run's globals are shared, whatever database this prune is for.
        let all = try storage.catalog(summaries: true)
        let plan = RetentionPlan.make(entries: all.filter { database == nil || $0.database == database }, policy: policy, now: session.now())
        // Removing rests on the newest good snapshot each database keeps ("good" in the catalogue
        // is its size): it must also be the bytes its manifest names, or the older ones are all
        // that is left. One read of it (a bucket compares the checksum it recorded instead).
        for name in Set(plan.filter { $0.action == .remove }.map(\.database)).sorted() {
            guard let newest = all.first(where: { $0.database == name && $0.isGood })?.manifest, !confirmed.contains(newest.id) else { continue }
            if let problem = try checksumProblem(newest, in: storage) {
                throw PGSnapError.verification("nothing was pruned: \(newest.id), the newest good snapshot of \"\(name)\" that pruning would rest on, \(problem)",
                                               next: "Run 'pgsnap verify \(newest.id)' and take a new backup; the older snapshots may be all that is left")
            }
        }
        let removing = Set(plan.filter { $0.action == .remove }.map(\.id))
        let runs = RunRetention.plan(runs: storage.runs(files: files), entries: all, removing: removing, now: session.now(),
                                     grace: policy.leftoverGrace)
        var removed: Int64 = 0
        if !dryRun {
            for d in plan where d.action == .remove {
                for f in RetentionPlan.deletionOrder(d.files) { try storage.delete(f) }
                removed += d.bytes
            }
            // After the snapshots: a crash in between leaves globals nothing refers to, never the reverse.
            for r in runs where r.action == .remove {
                for f in RunRetention.deletionOrder(r.files) { try storage.delete(f) }
                removed += r.bytes
            }
            try storage.sync()
            try session.abortAbandonedWrites(in: storage, olderThan: policy.leftoverGrace)
        }
        return PruneResult(dryRun: dryRun, decisions: plan, runs: runs, removedBytes: removed)
    }
}

extension PruneService {
    /// Whether a snapshot's files are the bytes its manifest names (`SnapshotStorage.holds`).
    func checksumProblem(_ m: Manifest, in storage: SnapshotStorage) throws -> String? {
        let files = m.format == .directory
            ? (m.files ?? []).map { (m.file + "/" + $0.name, $0.sha256) }
            : [(m.file, m.sha256)]
        for (name, sha256) in files {
            guard let stored = try storage.stat(name) else { return "has lost \(name)" }
            if try !storage.holds(name, sha256: sha256, stored: stored) {
                return "fails its checksum (\(name): SHA-256 differs from the manifest)"
            }
        }
        return nil
    }
}

/// One health problem found by `check`.
public struct HealthProblem: Encodable {
    public var database: String?
    public var problem: String
}

public struct HealthReport: Encodable {
    public struct Database: Encodable {
        public var database: String
        public var newest: String?
        public var newestCreatedAt: Date?
        public var ageSeconds: Double?
        public var newestBytes: Int64?
        public var goodSnapshots: Int
    }
    public var ok: Bool
    public var databases: [Database]
    public var problems: [HealthProblem]
}

/// For cron and monitoring: is the newest good snapshot of each database fresh and plausibly sized?
public struct CheckService {
    let session: Session
    public init(session: Session) { self.session = session }

    /// - Parameter metricsPrefix: `pgsnap`, or `pgsnap_remote` for the offsite copy's health.
    public func run(_ storage: SnapshotStorage, maxAge: TimeInterval, minSize: Int64, database: String?, metricsFile: String?,
                    metricsPrefix: String = "pgsnap") throws -> HealthReport {
        let entries = try storage.catalog(summaries: true).filter { database == nil || $0.database == database }
        let report = evaluate(entries, location: storage.location, maxAge: maxAge, minSize: minSize, database: database)
        return metricsFile.map { writingMetrics(report, to: $0, prefix: metricsPrefix) } ?? report
    }

    /// Writes the metrics; a file that cannot be written is one more problem of the report, beside
    /// (not instead of) what the check found about the snapshots.
    func writingMetrics(_ report: HealthReport, to path: String, prefix: String) -> HealthReport {
        do {
            try writeMetrics(report, to: path, prefix: prefix)
            return report
        } catch {
            let parent = SnapshotDirectory.parent(of: path)
            let reason = FileManager.default.fileExists(atPath: parent) ? oneLine((error as? PGSnapError)?.what ?? "\(error)")
                : "its directory \(parent) does not exist"
            var r = report
            r.problems.append(HealthProblem(database: nil, problem: "cannot write --metrics-file \(path): \(reason); the check itself ran"))
            r.ok = false
            return r
        }
    }

    /// How far ahead of this host's clock a snapshot may be dated before it is a problem: the
    /// clocks of the backup host and the checking host drift a little.
    static let clockSkew = RetentionPlan.clockSkew

    /// The health rules over a catalog (local, or a bucket's with its newest manifests read).
    /// Only the two newest good entries of each database need their manifest.
    public func evaluate(_ entries: [CatalogEntry], location: String, maxAge: TimeInterval, minSize: Int64, database: String?) -> HealthReport {
        let now = session.now()
        var names = Set(entries.map(\.database))
        if let database { names.insert(database) }
        var report = HealthReport(ok: true, databases: [], problems: [])
        if names.isEmpty {
            report.problems.append(HealthProblem(database: nil, problem: "no snapshots in \(location)"))
        }
        for name in names.sorted() {
            let good = entries.filter { $0.database == name && $0.isGood }
            var db = HealthReport.Database(database: name, goodSnapshots: good.count)
            // What `restore latest` would take: the newest finished snapshot, good or not. A damaged
            // one there fails tonight's restore, however fresh the good one behind it.
            if let newest = entries.first(where: { $0.database == name && $0.isCommitted }), !newest.isGood {
                report.problems.append(HealthProblem(database: name, problem: "database \"\(name)\": newest snapshot \(newest.id) is \(newest.status.rawValue.replacingOccurrences(of: "_", with: " "))\(newest.problem.map { " (\($0))" } ?? ""): 'restore latest' would refuse it; run 'pgsnap verify \(newest.id)\(location.hasPrefix("s3://") ? " --remote \(location)" : "")' and take a new backup"))
            }
            // A snapshot dated ahead of this clock (the host that took it had a wrong clock, or
            // this one has): its age says nothing, and while it is the newest an alert on age
            // could never fire. Freshness goes by the newest good one dated before now.
            let ahead = good.filter { $0.createdAt.timeIntervalSince(now) > Self.clockSkew }
            if let first = ahead.first {
                report.problems.append(HealthProblem(database: name, problem: "database \"\(name)\": \(ahead.count) good snapshot(s) dated in the future (newest \(first.id), \(describe(first.createdAt.timeIntervalSince(now))) ahead of this host's clock): the clock of the host that took them, or of this one, is wrong; fix it, then keep them knowingly or remove them ('pgsnap prune' keeps them as the newest)"))
            }
            let dated = good.filter { $0.createdAt.timeIntervalSince(now) <= Self.clockSkew }
            guard let newest = dated.first, let m = newest.manifest else {
                report.problems.append(HealthProblem(database: name, problem: "database \"\(name)\": no good snapshot \(ahead.isEmpty ? "" : "dated before now ")in \(location)"))
                report.databases.append(db)
                continue
            }
            db.newest = m.id
            db.newestCreatedAt = m.createdAt
            db.ageSeconds = now.timeIntervalSince(m.createdAt)
            db.newestBytes = m.compressedBytes
            if now.timeIntervalSince(m.createdAt) > maxAge {
                report.problems.append(HealthProblem(database: name, problem: "database \"\(name)\": newest good snapshot \(m.id) is \(describe(now.timeIntervalSince(m.createdAt))) old (max \(describe(maxAge)))"))
            }
            if m.compressedBytes < minSize {
                report.problems.append(HealthProblem(database: name, problem: "database \"\(name)\": newest snapshot \(m.id) is \(m.compressedBytes) bytes, below --min-size \(minSize)"))
            }
            if dated.count > 1, let prev = dated[1].manifest, m.compressedBytes * 2 < prev.compressedBytes {
                report.problems.append(HealthProblem(database: name, problem: "database \"\(name)\": newest snapshot shrank to \(formatBytes(m.compressedBytes)) from \(formatBytes(prev.compressedBytes)) (less than half): check that the dump is complete"))
            }
            report.databases.append(db)
        }
        report.ok = report.problems.isEmpty
        return report
    }

    /// node_exporter textfile format, written to a temp file then renamed.
    ///
    /// - Parameter prefix: `pgsnap`, or `pgsnap_remote` for the offsite copy's health.
    public func writeMetrics(_ report: HealthReport, to path: String, prefix: String = "pgsnap") throws {
        var text = """
            # HELP \(prefix)_last_success_timestamp_seconds Creation time of the newest good snapshot.
            # TYPE \(prefix)_last_success_timestamp_seconds gauge
            # HELP \(prefix)_last_size_bytes Compressed size of the newest good snapshot.
            # TYPE \(prefix)_last_size_bytes gauge
            # HELP \(prefix)_snapshots Number of good snapshots.
            # TYPE \(prefix)_snapshots gauge

            """
        for d in report.databases {
            let label = "{database=\"\(d.database.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n"))\"}"
            if let t = d.newestCreatedAt { text += "\(prefix)_last_success_timestamp_seconds\(label) \(Int64(t.timeIntervalSince1970))\n" }
            if let b = d.newestBytes { text += "\(prefix)_last_size_bytes\(label) \(b)\n" }
            text += "\(prefix)_snapshots\(label) \(d.goodSnapshots)\n"
        }
        let dir = try SnapshotDirectory.forWriting(SnapshotDirectory.parent(of: path))
        try dir.writeAtomically(Data(text.utf8), to: (path as NSString).lastPathComponent, mode: 0o644)
    }

    func describe(_ s: TimeInterval) -> String {
        if s >= 2 * 86400 { return String(format: "%.1f days", s / 86400) }
        if s >= 3600 { return String(format: "%.1f h", s / 3600) }
        return String(format: "%.0f min", s / 60)
    }
}
