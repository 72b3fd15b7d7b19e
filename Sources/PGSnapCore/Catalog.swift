import Foundation

/// A file in the backup directory, as the catalog needs to see it.
public struct DirectoryFile: Equatable, Sendable {
    public var name: String
    public var size: Int64
    public init(name: String, size: Int64) {
        self.name = name
        self.size = size
    }
}

/// One snapshot, or the remains of one, found in a backup directory.
public struct CatalogEntry: Sendable {
    public enum Status: String, Codable, Sendable {
        case good
        /// Dump size differs from the manifest: the file was truncated or replaced.
        case damaged
        case partial
        case dumpWithoutManifest = "dump_without_manifest"
        case manifestWithoutDump = "manifest_without_dump"
        case invalidManifest = "invalid_manifest"
    }

    public var id: String
    public var status: Status
    /// Boxed: a manifest is a large value, and catalogs of 10,000 entries are sorted and filtered.
    private var box: ManifestBox?
    public var manifest: Manifest? {
        get { box?.value }
        set { box = newValue.map(ManifestBox.init) }
    }
    /// The database, from the manifest or, for leftovers, from the file name.
    public var database: String
    /// From the manifest's `created_at`, or for leftovers from the name; never a file time.
    public var createdAt: Date
    public var files: [String]
    public var bytes: Int64
    public var problem: String?

    public init(id: String, status: Status, manifest: Manifest?, database: String, createdAt: Date, files: [String],
                bytes: Int64, problem: String?) {
        self.id = id
        self.status = status
        self.box = manifest.map(ManifestBox.init)
        self.database = database
        self.createdAt = createdAt
        self.files = files
        self.bytes = bytes
        self.problem = problem
    }

    public var isGood: Bool { status == .good }
    /// Its manifest was written (the commit point), whatever happened to it since: `latest` may
    /// only skip what is not, so a damaged newest snapshot is refused rather than passed over.
    public var isCommitted: Bool { status != .partial && status != .dumpWithoutManifest }
    public var isLeftover: Bool { status == .partial || status == .dumpWithoutManifest || status == .manifestWithoutDump }
}

final class ManifestBox: Sendable {
    let value: Manifest
    init(_ value: Manifest) { self.value = value }
}

/// Groups the files of a backup directory into snapshots. Pure: the caller lists and reads files.
public enum Catalog {
    static let dumpSuffixes = SnapshotName.dumpSuffixes

    /// - Parameter loadManifest: reads and decodes `<id>.manifest.json`; its error text becomes the entry's problem.
    public static func build(files: [DirectoryFile], loadManifest: (String) throws -> Manifest) -> [CatalogEntry] {
        var byID: [String: [DirectoryFile]] = [:]
        let manifests = manifestIDs(files.map(\.name))
        for f in files {
            guard let id = snapshotID(ofFile: f.name, manifests: manifests) else { continue }
            byID[id, default: []].append(f)
        }
        var out: [CatalogEntry] = []
        for (id, group) in byID {
            let names = Set(group.map(\.name))
            let manifestName = id + SnapshotName.manifestSuffix
            let dumps = group.filter { f in dumpSuffixes.contains { f.name == id + $0 } }
            let partials = group.filter { $0.name.hasSuffix(SnapshotName.partialSuffix) }
            let bytes = group.reduce(Int64(0)) { $0 + $1.size }
            let parsed = SnapshotName.parse(id: id)
            let nameDB = parsed.map { $0.encodedDatabase.removingPercentEncoding ?? $0.encodedDatabase } ?? id
            let nameDate = parsed?.date ?? Date(timeIntervalSince1970: 0)
            func entry(_ status: CatalogEntry.Status, _ m: Manifest? = nil, _ problem: String? = nil) -> CatalogEntry {
                CatalogEntry(id: id, status: status, manifest: m, database: m?.database ?? nameDB,
                             createdAt: m?.createdAt ?? nameDate, files: group.map(\.name).sorted(), bytes: bytes, problem: problem)
            }
            if names.contains(manifestName) {
                let manifest: Manifest
                do {
                    manifest = try loadManifest(id)
                } catch {
                    out.append(entry(.invalidManifest, nil, "\(error)"))
                    continue
                }
                guard let dump = group.first(where: { $0.name == manifest.file }) else {
                    out.append(entry(.manifestWithoutDump, manifest, "dump file \(manifest.file) is missing"))
                    continue
                }
                if dump.size != manifest.compressedBytes {
                    // A directory snapshot's size is its files' total: one added, removed or cut changes it.
                    out.append(entry(.damaged, manifest, manifest.format == .directory
                        ? "\(manifest.file) holds \(dump.size) bytes of files, manifest says \(manifest.compressedBytes) (run 'pgsnap verify \(manifest.id)' for which file)"
                        : "dump is \(dump.size) bytes, manifest says \(manifest.compressedBytes)"))
                } else {
                    out.append(entry(.good, manifest))
                }
            } else if !dumps.isEmpty {
                out.append(entry(.dumpWithoutManifest, nil, "no manifest: the backup did not finish"))
            } else if !partials.isEmpty {
                out.append(entry(.partial, nil, "partial file: a backup is running or was interrupted"))
            } else if names.contains(id + SnapshotName.globalsSuffix) || names.contains(id + SnapshotName.encryptedGlobalsSuffix) {
                // Written just before the manifest: a backup killed between the two leaves it
                // (role password hashes), which must be listed and pruned like any leftover.
                out.append(entry(.partial, nil, "roles file without its snapshot: a backup is running or was interrupted"))
            }
        }
        return sorted(out)
    }

    /// Newest first: by the second, then the id's `-n`, then `created_at`, then the id (so the
    /// order never depends on the directory listing). A manifest's `created_at` has
    /// milliseconds, a leftover's time comes from its name: by `created_at` alone, a damaged
    /// `-2` of the same second sorted behind the snapshot before it, and `restore latest` took
    /// that one without a word. The id's time is `created_at`'s second (one clock reading).
    public static func sorted(_ entries: [CatalogEntry]) -> [CatalogEntry] {
        func key(_ e: CatalogEntry) -> (Date, Int) {
            // The id's second when it is created_at's (a manifest rounds to milliseconds: .9996 s
            // reads as the next second); a label that holds a time parses as the time field, far
            // from created_at: then neither its second nor its -n is the id's.
            if let p = SnapshotName.parse(id: e.id), abs(p.date.timeIntervalSince(e.createdAt)) < 1.5 { return (p.date, p.attempt) }
            return (Date(timeIntervalSince1970: e.createdAt.timeIntervalSince1970.rounded(.down)), 1)
        }
        let keyed = entries.map { (key($0), $0) }
        return keyed.sorted { x, y in
            let (ka, a) = x, (kb, b) = y
            if ka.0 != kb.0 { return ka.0 > kb.0 }
            if ka.1 != kb.1 { return ka.1 > kb.1 }
            return a.createdAt != b.createdAt ? a.createdAt > b.createdAt : a.id > b.id
        }.map(\.1)
    }

    /// The ids among `names` that have a manifest (whose name is never ambiguous).
    public static func manifestIDs(_ names: [String]) -> Set<String> {
        Set(names.lazy.filter { $0.hasSuffix(SnapshotName.manifestSuffix) }.compactMap { snapshotID(ofFile: $0) })
    }

    /// `snapshotID(ofFile:)` in a listing whose manifests are `manifests`: `<id>.globals.sql`
    /// (`.sql.age`) is also the uncompressed dump of a snapshot labelled `....globals` (such labels
    /// are refused now, not always before): when that snapshot has a manifest, the file is its
    /// dump. Filed as another backup's roles file, it left the snapshot without its dump, both
    /// leftovers, which prune removes after a day however new.
    public static func snapshotID(ofFile name: String, manifests: Set<String>) -> String? {
        guard let id = snapshotID(ofFile: name) else { return nil }
        guard name.hasSuffix(SnapshotName.globalsSuffix) || name.hasSuffix(SnapshotName.encryptedGlobalsSuffix) else { return id }
        for suffix in dumpSuffixes where name.hasSuffix(suffix) {
            let dumpOf = String(name.dropLast(suffix.count))
            if manifests.contains(dumpOf) { return dumpOf }
        }
        return id
    }

    /// The snapshot id a file belongs to, or nil for files that are not pgsnap's.
    public static func snapshotID(ofFile name: String) -> String? {
        var stem = name
        if stem.hasSuffix(SnapshotName.partialSuffix) { stem.removeLast(SnapshotName.partialSuffix.count) }
        // The encrypted globals before the dumps: `.globals.sql.age` also ends in `.sql.age`.
        for suffix in [SnapshotName.manifestSuffix, SnapshotName.globalsSuffix, SnapshotName.encryptedGlobalsSuffix] + dumpSuffixes
        where stem.hasSuffix(suffix) {
            let id = String(stem.dropLast(suffix.count))
            return SnapshotName.parse(id: id) == nil ? nil : id
        }
        return nil
    }
}

/// Which snapshot a command means: `latest`, an id, a label, or the newest before a time.
public struct SnapshotSelector: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case latest
        case id(String)
        case label(String)
    }

    public var kind: Kind
    public var database: String?
    public var before: Date?

    public init(kind: Kind, database: String? = nil, before: Date? = nil) {
        self.kind = kind
        self.database = database
        self.before = before
    }

    public var text: String {
        switch kind {
        case .latest: return "latest"
        case .id(let id): return id
        case .label(let l): return "--label \(l)"
        }
    }

    /// Picks from a catalog. An explicit id may name a snapshot in any state (so verify can report it);
    /// `latest`, a label and `--before` pick the newest *committed* snapshot in scope, good or not:
    /// passing over a damaged one would quietly roll back further than asked. Callers that need a
    /// good snapshot refuse a bad one with `refusal(_:check:detail:among:command:)`.
    ///
    /// - Throws: `PGSnapError` saying nothing matched and how to list snapshots.
    public func select(from entries: [CatalogEntry], directory: String) throws -> CatalogEntry {
        let sorted = Catalog.sorted(entries)
        switch kind {
        case .id(let id):
            if let e = sorted.first(where: { $0.id == id }) { return e }
            throw PGSnapError(.failure, "No snapshot with id '\(oneLine(id, limit: 120))' in \(directory)", next: "Run '\(SnapshotSelector.listCommand(directory))'")
        case .latest:
            if let e = inScope(sorted).first { return e }
            throw PGSnapError(.failure, "No snapshot matches 'latest'\(scope) in \(directory)", next: "Run '\(SnapshotSelector.listCommand(directory))'")
        case .label(let label):
            if let e = inScope(sorted).first { return e }
            throw PGSnapError(.failure, "No snapshot with label '\(label)'\(scope) in \(directory)", next: "Run '\(SnapshotSelector.listCommand(directory))'")
        }
    }

    /// How to list what is in `location` (a directory or `s3://bucket/prefix`), for hints.
    public static func listCommand(_ location: String) -> String {
        location.hasPrefix("s3://") ? "pgsnap list --remote \(location)" : "pgsnap list --dir \(location)"
    }

    /// Committed snapshots this selector could mean, newest first (for an id: that one).
    func inScope(_ sorted: [CatalogEntry]) -> [CatalogEntry] {
        sorted.filter { e in
            guard e.isCommitted, database == nil || e.database == database, before == nil || e.createdAt < before! else { return false }
            switch kind {
            case .id(let id): return e.id == id
            case .latest: return true
            // Without a manifest (a bucket's listing), the label is what follows the id's time
            // field, whole: "migration_45" is not "pre_migration_45".
            case .label(let label): return e.manifest.map { $0.label == label } ?? (SnapshotName.parse(id: e.id)?.label == label)
            }
        }
    }

    /// Unfinished backups in this selector's scope newer than `chosen` (a `.partial`, a dump
    /// without its manifest), newest first: what `latest`, a label or `--before` passed over. Said
    /// by the caller, not hidden: at 3 a.m. a restore of last night's snapshot must not surprise
    /// anyone whose backup of tonight died (or is still running). None for an explicit id.
    public func newerUnfinished(than chosen: CatalogEntry, among entries: [CatalogEntry]) -> [CatalogEntry] {
        if case .id = kind { return [] }
        // Newer by the catalog's own order: a `-2` begun in the same second as the pick is newer.
        let sorted = Catalog.sorted(entries)
        guard let at = sorted.firstIndex(where: { $0.id == chosen.id }) else { return [] }
        return sorted[..<at].filter { e in
            guard !e.isCommitted, database == nil || e.database == database,
                  before == nil || e.createdAt < before! else { return false }
            if case .label(let label) = kind { return SnapshotName.parse(id: e.id)?.label == label }
            return true
        }
    }

    /// The warning line for `newerUnfinished`, or nil when there is none.
    public func passedOverLine(_ chosen: CatalogEntry, among entries: [CatalogEntry]) -> String? {
        let newer = newerUnfinished(than: chosen, among: entries)
        guard let newest = newer.first else { return nil }
        let others = newer.count > 1 ? " and \(newer.count - 1) older one(s)" : ""
        return "a newer backup did not finish or is still running (\(newest.id): \(newest.status.rawValue.replacingOccurrences(of: "_", with: " "))\(others)); "
            + "using \(chosen.id), the newest complete snapshot\(scope)"
    }

    /// The error for a selected snapshot that failed `check`: names it, and for `latest`, a label or
    /// `--before` also the next older complete snapshot (manifest and size as listed: reading its
    /// checksum here could take minutes) with the command that restores it on purpose.
    ///
    /// - Parameter command: the restore command line for a snapshot id.
    public func refusal(_ entry: CatalogEntry, check: String, detail: String, among entries: [CatalogEntry],
                        command: (String) -> String) -> PGSnapError {
        let what = "snapshot \(entry.id) failed the \(check) check (\(oneLine(detail, limit: 200)))"
        if case .id = kind {
            return PGSnapError.verification(what, next: "Nothing was changed; choose another snapshot ('pgsnap list')")
        }
        let newest: String
        switch kind {
        case .label(let label): newest = "the newest snapshot with label '\(label)'\(scope)"
        default: newest = "the newest snapshot\(scope)"
        }
        let older = inScope(Catalog.sorted(entries)).drop { $0.id != entry.id }.dropFirst().first(where: \.isGood)
        // Named by its listing (manifest and size): its checksum is read when it is restored, first.
        let next = older.map { "Nothing was changed and no older snapshot was used in its place. To restore the next older complete one, \($0.id) (its checksum is checked before anything is changed), on purpose: \(command($0.id))" }
            ?? "Nothing was changed; there is no older good snapshot to fall back to ('pgsnap list')"
        return PGSnapError.verification("\(newest) is damaged: \(what)", next: next)
    }

    var scope: String {
        var s = ""
        if let database { s += " for database \"\(database)\"" }
        if let before { s += " taken before \(ISO8601.format(before))" }
        return s
    }
}
