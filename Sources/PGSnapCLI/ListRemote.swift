import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// `list --remote`: the bucket's snapshots from object listings alone (one request per 1,000 keys).
func listRemote(_ remote: RemoteOptions, output: OutputOptions, database: String?) throws {
    let env = ProcessInfo.processInfo.environment
    let storage = try remote.storage(env)
    let entries = RemoteCatalog.build(files: try storage.list()).filter { database == nil || $0.database == database }
    if output.json {
        try printJSON(WithNulls(entries.map(RemoteListedSnapshot.init)))
        return
    }
    if entries.isEmpty {
        output.reporter.info("pgsnap: no snapshots in \(storage.location)")
        return
    }
    var rows = [["ID", "STATUS", "CREATED (UTC)", "LABEL", "SIZE"]]
    for e in entries {
        rows.append([oneLine(e.id, limit: 200), e.isGood ? "good" : "incomplete",
                     ISO8601.format(e.createdAt).replacingOccurrences(of: "T", with: " ").prefix(19) + "",
                     RemoteCatalog.label(ofID: e.id) ?? "-", formatBytes(e.bytes)])
    }
    printOut(table(rows))
    for e in entries where !e.isGood {
        output.reporter.info("  \(e.id): \(e.problem ?? e.status.rawValue)")
    }
}

/// `list --remote --json` rows: what a listing shows (no manifest is read).
struct RemoteListedSnapshot: Encodable {
    var id: String
    /// "good" (dump and manifest are there) or "incomplete".
    var status: String
    var detail: String
    var database: String
    var createdAt: Date
    var label: String?
    var files: [String]
    var bytes: Int64
    var problem: String?

    init(_ e: CatalogEntry) {
        id = e.id
        status = e.isGood ? "good" : "incomplete"
        detail = e.status.rawValue
        database = e.database
        createdAt = e.createdAt
        label = RemoteCatalog.label(ofID: e.id)
        files = e.files
        bytes = e.bytes
        problem = e.problem
    }
}
