import Foundation

/// Which local snapshots `push` offers to the remote. Pure: the rule is tested on its own.
public enum PushSelection {
    /// - `all`: every good snapshot, newest first.
    /// - a selector: the one snapshot it means (an explicit id must be good to be pushed).
    /// - neither: the newest good snapshot of each database.
    ///
    /// - Throws: `PGSnapError` when the selector matches nothing or names a snapshot that is not good.
    public static func choose(from entries: [CatalogEntry], selector: SnapshotSelector?, all: Bool, directory: String) throws -> [CatalogEntry] {
        let good = Catalog.sorted(entries).filter(\.isGood)
        if all { return good }
        if let selector {
            let e = try selector.select(from: entries, directory: directory)
            guard e.isGood else {
                throw PGSnapError.verification("snapshot \(e.id) is \(e.status.rawValue): \(e.problem ?? "")", next: "Only good snapshots are pushed; run 'pgsnap list'")
            }
            return [e]
        }
        var seen = Set<String>()
        return good.filter { seen.insert($0.database).inserted }
    }

    /// A remote copy is whole when its manifest is there and every data file has the local size.
    public static func isWhole(_ manifest: Manifest, localFiles: [DirectoryFile], remoteFiles: [String: Int64]) -> Bool {
        guard remoteFiles[manifest.id + SnapshotName.manifestSuffix] != nil,
              remoteFiles[manifest.file] == manifest.compressedBytes else { return false }
        if let g = manifest.globalsFile {
            guard let local = localFiles.first(where: { $0.name == g }), remoteFiles[g] == local.size else { return false }
        }
        if let run = manifest.run, remoteFiles[RunName.recordFile(run)] == nil { return false }
        return true
    }
}
