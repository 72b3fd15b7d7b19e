import Foundation

/// One whole-server run's files as a prune finds them: its globals, its record (read or not), leftovers.
public struct RunFiles: Sendable {
    public enum Record: Sendable {
        case missing
        case invalid(String)
        case valid(RunRecord)
    }

    public var run: String
    public var files: [DirectoryFile]
    public var record: Record

    public init(run: String, files: [DirectoryFile], record: Record) {
        self.run = run
        self.files = files
        self.record = record
    }

    /// The runs among listed files (their records not read yet: `.missing` until the caller reads them).
    public static func group(_ files: [DirectoryFile]) -> [RunFiles] {
        var byRun: [String: [DirectoryFile]] = [:]
        for f in files {
            guard let run = RunName.run(ofFile: f.name) else { continue }
            byRun[run, default: []].append(f)
        }
        return byRun.keys.sorted().map { RunFiles(run: $0, files: byRun[$0]!.sorted { $0.name < $1.name }, record: .missing) }
    }

    public var hasRecord: Bool { files.contains { $0.name == RunName.recordFile(run) } }
}

/// One line of a prune plan for a run's globals.
public struct RunDecision: Equatable, Sendable, Codable {
    public var run: String
    public var createdAt: Date
    public var action: RetentionDecision.Action
    public var reasons: [String]
    public var files: [String]
    public var bytes: Int64
}

/// Decides, never acts: a run's globals are kept while any snapshot that refers to them is kept.
///
/// The snapshots that refer to a run are the ones its record lists and the ones whose manifest
/// names it (either alone suffices: a bucket's retention reads records, not every manifest).
/// Whatever the snapshot plan keeps, in any state and of any database, counts: a damaged or
/// unfinished snapshot may still be repaired or completed, and a prune of one database must not
/// take globals that another database's snapshots share. A run whose snapshots are all gone goes
/// with the last of them; a run that names no snapshot yet goes once it is older than the leftover
/// grace period (until then it may be a run in flight, about to commit its first snapshot); a
/// record that cannot be read is left for a person, as a damaged snapshot is.
///
/// A run in flight whose globals go anyway (its only snapshot so far failed) loses nothing: the
/// next snapshot of the run writes them again before its manifest refers to them (`RunGlobals`).
public enum RunRetention {
    /// - Parameters:
    ///   - entries: every snapshot in the directory or bucket, all databases, as the catalog sees them.
    ///   - removing: the ids the snapshot plan removes.
    public static func plan(runs: [RunFiles], entries: [CatalogEntry], removing: Set<String>, now: Date, grace: TimeInterval) -> [RunDecision] {
        let kept = entries.filter { !removing.contains($0.id) }
        let keptIDs = Set(kept.map(\.id))
        let unreadableManifestKept = kept.contains { $0.status == .invalidManifest }
        return runs.map { r in
            let created = RunName.parse(r.run) ?? Date(timeIntervalSince1970: 0)
            var d = RunDecision(run: r.run, createdAt: created, action: .keep, reasons: [], files: r.files.map(\.name),
                                bytes: r.files.reduce(0) { $0 + max(0, $1.size) })
            var referring = Set<String>()
            if case .valid(let record) = r.record { referring.formUnion(record.snapshots) }
            let globals = RunName.globalsFiles(r.run)
            for e in entries where e.manifest.map({ $0.run == r.run || $0.globalsFile.map(globals.contains) == true }) == true { referring.insert(e.id) }
            let survivors = referring.intersection(keptIDs).sorted()
            if !survivors.isEmpty {
                let named = survivors.prefix(3).joined(separator: ", ") + (survivors.count > 3 ? ", …" : "")
                d.reasons = ["referred to by \(survivors.count) kept snapshot(s): \(named)"]
                return d
            }
            switch r.record {
            case .invalid(let why):
                d.reasons = ["run record cannot be read: left for a person to inspect (\(why))"]
                return d
            case .missing where unreadableManifestKept && r.files.contains(where: { globals.contains($0.name) }):
                d.reasons = ["no run record, and a kept manifest that cannot be read may refer to it: left for a person to inspect"]
                return d
            default:
                break
            }
            if referring.isEmpty && now.timeIntervalSince(created) < grace {
                d.reasons = ["no snapshot refers to it yet, but recent: a backup run may be in flight"]
                return d
            }
            d.action = .remove
            if !referring.isEmpty {
                d.reasons = ["no kept snapshot refers to it any more"]
            } else {
                d.reasons = [r.hasRecord ? "no snapshot refers to it, older than \(Int(grace / 3600)) h" : "incomplete run (no record) older than \(Int(grace / 3600)) h"]
            }
            return d
        }
    }

    /// Order in which a removal deletes a run's files: the record first (it commits the globals),
    /// so a crash leaves an incomplete run that the next prune removes, never a record without globals.
    public static func deletionOrder(_ files: [String]) -> [String] {
        files.sorted { a, b in
            let ar = a.hasSuffix(RunName.recordSuffix), br = b.hasSuffix(RunName.recordSuffix)
            if ar != br { return ar }
            return a < b
        }
    }
}
