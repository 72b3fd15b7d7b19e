import Foundation

/// Snapshots from one listing of a storage, no manifest read: how `pull` (and `restore
/// --remote`) pick the one snapshot they then read the manifest of, with one request per 1,000
/// objects instead of a GET per snapshot. Every other command builds the full `Catalog` over the
/// storage (`SnapshotStorage.catalog`).
///
/// A listing proves less than a manifest read: a snapshot with both its dump and its manifest
/// is `good` (the manifest is written only after the dump's size was checked); anything else
/// is a leftover. `pull` checks the manifest, the size and the content itself.
public enum ListingCatalog {
    public static func build(files: [DirectoryFile]) -> [CatalogEntry] {
        var byID: [String: [DirectoryFile]] = [:]
        let manifests = Catalog.manifestIDs(files.map(\.name))
        for f in files {
            guard let id = Catalog.snapshotID(ofFile: String(f.name.prefix { $0 != "/" }), manifests: manifests) else { continue }
            byID[id, default: []].append(f)
        }
        var out: [CatalogEntry] = []
        for (id, group) in byID {
            let names = Set(group.map(\.name))
            let hasManifest = names.contains(id + SnapshotName.manifestSuffix)
            let hasDump = Catalog.dumpSuffixes.contains { names.contains(id + $0) }
                || names.contains { $0.hasPrefix(id + SnapshotName.directorySuffix + "/") }
            let parsed = SnapshotName.parse(id: id)
            let status: CatalogEntry.Status
            let problem: String?
            switch (hasManifest, hasDump) {
            case (true, true): (status, problem) = (.good, nil)
            case (true, false): (status, problem) = (.manifestWithoutDump, "the dump object is missing")
            case (false, true): (status, problem) = (.dumpWithoutManifest, "no manifest: the upload did not finish")
            case (false, false): (status, problem) = (.partial, "no dump and no manifest")
            }
            out.append(CatalogEntry(
                id: id, status: status, manifest: nil,
                database: parsed.map { $0.encodedDatabase.removingPercentEncoding ?? $0.encodedDatabase } ?? id,
                createdAt: parsed?.date ?? Date(timeIntervalSince1970: 0), files: group.map(\.name).sorted(),
                bytes: group.reduce(0) { $0 + $1.size }, problem: problem))
        }
        return Catalog.sorted(out)
    }

    /// Object sizes by name plus, for each directory snapshot, `<id>.dir` with the sum of its
    /// files' sizes: what a manifest's `file` and `compressed_bytes` are checked against.
    public static func folded(_ files: [String: Int64]) -> [String: Int64] {
        var out = files
        for (name, size) in files {
            guard let slash = name.firstIndex(of: "/") else { continue }
            out[String(name[..<slash]), default: 0] += size
        }
        return out
    }

    /// The remote snapshot a selector means, chosen from the listing alone, by the local rule:
    /// the newest *committed* one in scope (labels are matched on the id, so no manifest is read).
    /// A caller that needs it good refuses a bad one rather than passing over it.
    public static func select(_ selector: SnapshotSelector, from entries: [CatalogEntry], location: String) throws -> CatalogEntry {
        try selector.select(from: entries, directory: location)
    }
}
