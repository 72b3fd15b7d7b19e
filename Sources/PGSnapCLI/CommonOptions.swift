import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// Where to connect: the same options and environment variables as pg_dump and psql.
struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customShort("h"), .long], help: "Database server host or socket directory (default: PGHOST).")
    var host: String?

    @Option(name: [.customShort("p"), .long], help: "Database server port (default: PGPORT).")
    var port: String?

    @Option(name: [.customShort("U"), .long], help: "Database user name (default: PGUSER).")
    var username: String?

    @Option(name: [.customShort("d"), .long],
            help: "Database name or connection string (postgres://... or key=value). Default: PGDATABASE, then DATABASE_URL.")
    var dbname: String?

    @Option(name: .customLong("pg-bindir"), help: ArgumentHelp(
        "PostgreSQL client tools to use (default: PGSNAP_PG_BINDIR, then /usr/lib/postgresql/<server major>/bin, newer majors there, PATH).",
        valueName: "dir"))
    var pgBindir: String?

    func validate() throws {
        if let pgBindir, pgBindir.isEmpty || pgBindir.contains("\0") { throw ValidationError("--pg-bindir must be a directory path") }
    }

    func spec(_ env: [String: String]) throws -> ConnectionSpec {
        try ConnectionSpec(dbname: dbname, host: host, port: port, username: username, environment: env)
    }
}

struct DirectoryOptions: ParsableArguments {
    @Option(name: .long, help: "Backup directory (default: PGSNAP_DIR, then ./backups).")
    var dir: String?

    func path(_ env: [String: String]) -> String {
        dir ?? env["PGSNAP_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./backups"
    }

    func validate() throws {
        if let dir, dir.isEmpty || dir.contains("\0") { throw ValidationError("--dir must be a directory path") }
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Machine-readable JSON on stdout.")
    var json = false

    @Flag(name: [.customShort("q"), .long], help: "Print nothing on success; problems still go to stderr.")
    var quiet = false

    @Flag(name: [.customShort("v"), .long], help: "Also print details: which PostgreSQL tools and why, each restore phase.")
    var verbose = false

    var reporter: Reporter { Reporter(quiet: quiet || json, json: json, verbose: verbose && !quiet && !json) }
}

/// - Parameter c: nil for commands that never connect (list, prune, check).
func makeSession(_ c: ConnectionOptions?, _ d: DirectoryOptions, _ o: OutputOptions) throws -> Session {
    let env = sessionEnvironment()
    do {
        let session = try Session(spec: try c?.spec(env) ?? ConnectionSpec(), directory: d.path(env), environment: env, reporter: o.reporter)
        session.pgBindir = c?.pgBindir
        return session
    } catch let e as PGSnapError where e.status == .usage {
        throw ValidationError(e.description)
    }
}

func parseSelector(_ text: String?, label: String?, before: String?, database: String?) throws -> SnapshotSelector {
    var beforeDate: Date?
    if let before {
        guard let d = ISO8601.parse(before) else {
            throw ValidationError("--before '\(oneLine(before, limit: 60))' is not a time; use ISO 8601 or '2026-11-20 14:00' (UTC)")
        }
        beforeDate = d
    }
    if let label {
        if text != nil { throw ValidationError("give either a snapshot (ID or 'latest') or --label, not both") }
        do { try SnapshotName.validateLabel(label) } catch let e as PGSnapError { throw ValidationError(e.description) }
        return SnapshotSelector(kind: .label(label), database: database, before: beforeDate)
    }
    let t = text ?? "latest"
    if t == "latest" { return SnapshotSelector(kind: .latest, database: database, before: beforeDate) }
    // An id names one snapshot; --before chooses among them: silently ignoring it could restore
    // a snapshot taken after the time the user meant.
    if beforeDate != nil { throw ValidationError("give either a snapshot ID or --before (with 'latest' or --label), not both") }
    do { try SnapshotName.validateID(t) } catch let e as PGSnapError { throw ValidationError(e.description) }
    return SnapshotSelector(kind: .id(t), database: database, before: beforeDate)
}

let exitStatusHelp = ExitStatus.table

/// The environment services (and so every child, `guard`'s migration command included) see:
/// without the notification URLs, whose tokens only `NotifyOptions` needs.
func sessionEnvironment() -> [String: String] {
    ProcessInfo.processInfo.environment.filter { !NotifyTarget.isTargetVariable($0.key) }
}

/// `-d/--dbname` in commands that only read the backup directory (list, show, prune, check):
/// the same option as in backup and restore, naming the database whose snapshots are meant.
/// `--database` is the older spelling and stays accepted.
let snapshotDatabaseNames: NameSpecification = [.customShort("d"), .customLong("dbname"), .customLong("database")]

/// The database a `-d` value names: itself, or the dbname inside a connection string, as backup reads it.
///
/// - Throws: `ValidationError` for a connection string that cannot be parsed or names no database.
func snapshotDatabase(_ value: String?) throws -> String? {
    guard let value else { return nil }
    let spec: ConnectionSpec
    do {
        spec = try ConnectionSpec(dbname: value, host: nil, port: nil, username: nil, environment: [:])
    } catch let e as PGSnapError {
        throw ValidationError(e.description)
    }
    guard let name = spec["dbname"], !name.isEmpty else {
        throw ValidationError("-d/--dbname '\(oneLine(spec.redacted, limit: 80))' names no database")
    }
    return name
}
