import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List snapshots, newest first; incomplete leftovers are shown as such.",
        discussion: "Example: pgsnap list -d app\n\n\(exitStatusHelp)")

    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @Option(name: snapshotDatabaseNames, help: "Only snapshots of this database (a name or a connection string).")
    var database: String?
    @OptionGroup var remote: RemoteOptions

    func run() throws {
        let database = try snapshotDatabase(database)
        let session = try makeSession(nil, directory, output)
        let storage = try remote.snapshotStorage(session, create: false)
        let entries = try storage.catalog().filter { database == nil || $0.database == database }
        if output.json {
            try printJSON(WithNulls(entries.map(ListedSnapshot.init)))
            return
        }
        if entries.isEmpty {
            output.reporter.info("pgsnap: no snapshots in \(storage.location)")
            return
        }
        var rows = [["ID", "STATUS", "CREATED (UTC)", "LABEL", "SIZE", "MIGRATION"]]
        for e in entries {
            rows.append([oneLine(e.id, limit: 200), statusText(e), ISO8601.format(e.createdAt).replacingOccurrences(of: "T", with: " ").prefix(19) + "",
                         e.manifest?.label ?? "-", formatBytes(e.bytes), migrationText(e.manifest)])
        }
        printOut(table(rows))
        for e in entries where !e.isGood {
            output.reporter.info("  \(e.id): \(e.problem ?? e.status.rawValue)")
        }
    }
}

func statusText(_ e: CatalogEntry) -> String {
    if e.isGood, let t = e.manifest?.restoreTest { return t.ok ? "good, restore-tested" : "good, RESTORE TEST FAILED" }
    return e.status.rawValue
}

func migrationText(_ m: Manifest?) -> String {
    guard let m, let before = m.migration else { return "-" }
    var s = "\(before.version)\(before.dirty ? " (dirty)" : "")"
    if let after = m.migrationAfter { s += " -> \(after.version)\(after.dirty ? " (dirty)" : "")" }
    return s
}

func table(_ rows: [[String]]) -> String {
    var widths = [Int](repeating: 0, count: rows.first?.count ?? 0)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
        r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}

/// `list --json` rows: the snapshot's own fields at the top level (as restic's `snapshots --json`),
/// so `jq '.[].label'` works, plus the full manifest nested; leftovers carry what is known of them.
/// Printed through `WithNulls`: every field in every row, `null` when unknown (README: "JSON output").
struct ListedSnapshot: Encodable {
    var id: String
    var status: String
    var database: String
    var label: String?
    var createdAt: Date
    var file: String?
    var compressedBytes: Int64?
    var uncompressedBytes: Int64?
    var sha256: String?
    var compression: String?
    var migration: Manifest.MigrationState?
    var migrationAfter: Manifest.MigrationState?
    var restoreTested: Bool?
    var files: [String]
    var bytes: Int64
    var problem: String?
    var manifest: Manifest?

    init(_ e: CatalogEntry) {
        id = e.id
        status = e.status.rawValue
        database = e.database
        createdAt = e.createdAt
        files = e.files
        bytes = e.bytes
        problem = e.problem
        manifest = e.manifest
        if let m = e.manifest {
            label = m.label
            file = m.file
            compressedBytes = m.compressedBytes
            uncompressedBytes = m.uncompressedBytes
            sha256 = m.sha256
            compression = m.compression.algorithm.rawValue
            migration = m.migration
            migrationAfter = m.migrationAfter
            restoreTested = m.restoreTest?.ok
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one snapshot's manifest.",
        discussion: """
            Reads the manifest only; with --identity (or PGSNAP_AGE_IDENTITY) an encrypted \
            snapshot's key is proven first: exit 1 when it does not open it.

            Example: pgsnap show latest -d app

            \(exitStatusHelp)
            """)

    @Argument(help: "Snapshot id, or 'latest'.")
    var snapshot: String = "latest"
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @Option(name: snapshotDatabaseNames, help: "With 'latest': the newest snapshot of this database (a name or a connection string).")
    var database: String?
    @OptionGroup(title: "Encryption") var identity: IdentityOptions

    func run() throws {
        let selector = try parseSelector(snapshot, label: nil, before: nil, database: try snapshotDatabase(database))
        let session = try makeSession(nil, directory, output)
        session.ageIdentity = try identity.load(session.environment)
        let dir = try session.directory(create: false)
        let entry = try selector.select(from: try dir.catalog(), directory: dir.path)
        guard let m = entry.manifest else {
            throw PGSnapError("snapshot \(entry.id) is \(entry.status.rawValue): \(entry.problem ?? "")", next: "It cannot be restored; 'pgsnap prune' removes leftovers")
        }
        // With a key: "does this key open it?" answered before anything is printed.
        if entry.isGood { try session.proveIdentity(for: m, in: dir) }
        if output.json {
            printOut(String(decoding: try m.encoded(), as: UTF8.self).trimmingCharacters(in: .newlines))
            return
        }
        var lines: [(String, String)] = [
            ("id", m.id), ("status", statusText(entry)), ("database", oneLine(m.database, limit: 200)), ("label", m.label ?? "-"),
            ("created", ISO8601.format(m.createdAt)), ("file", m.file),
            ("size", "\(formatBytes(m.compressedBytes)) compressed, \(formatBytes(m.uncompressedBytes)) dumped"),
            ("sha256", m.sha256), ("compression", "\(m.compression.algorithm.rawValue) level \(m.compression.level)"),
            ("pg_dump", oneLine(m.pgDumpVersion, limit: 200) + (m.toolDirectory.map { " from \(oneLine($0, limit: 200))" } ?? "")),
            ("server", "PostgreSQL " + oneLine(m.serverVersion, limit: 200)),
            ("statistics", m.statistics == "dumped" ? "in the dump (pg_dump --statistics)" : "ANALYZE at restore"),
            ("migration", migrationText(m)),
            ("duration", String(format: "%.2f s", m.durationSeconds)),
        ]
        if let t = m.restoreTest {
            lines.append(("restore test", "\(t.ok ? "passed" : "FAILED") at \(ISO8601.format(t.at)) in \(String(format: "%.1f", t.seconds)) s"))
        }
        // Saturating: a hand-edited manifest may hold counts near Int64.max.
        let total = m.tableRows.values.reduce(Int64(0)) { a, b in let (s, o) = a.addingReportingOverflow(b); return o ? .max : s }
        lines.append(("tables", "\(m.tableRows.count), \(total) rows"))
        for (k, v) in lines { printOut(k.padding(toLength: 13, withPad: " ", startingAt: 0) + v) }
        for (t, n) in m.tableRows.sorted(by: { $0.key < $1.key }) { printOut("  \(oneLine(t, limit: 200)): \(n)") }
    }
}
