import Foundation
import PGSnapCore
import Synchronization

public let pgsnapVersion = "0.1.0"

/// What every command shares: where to connect, how the password travels, the backup directory.
public final class Session {
    public let environment: [String: String]
    public let spec: ConnectionSpec
    public let credentials: Credentials
    public let directoryPath: String
    public let reporter: Reporter
    public let now: () -> Date
    /// `--identity` / `PGSNAP_AGE_IDENTITY`: reads encrypted snapshots; nil when none was given.
    public var ageIdentity: AgeIdentity?
    /// `--pg-bindir`: the PostgreSQL tools to use, overriding `PGSNAP_PG_BINDIR` and the search.
    public var pgBindir: String?

    public init(spec: ConnectionSpec, directory: String, environment: [String: String], reporter: Reporter) throws {
        self.environment = environment
        self.spec = spec
        self.credentials = try Credentials(spec: spec, environment: environment)
        self.directoryPath = directory
        self.reporter = reporter
        // PGSNAP_NOW fixes "now" for tests of retention and health checks; nothing else reads it.
        if let fixed = environment["PGSNAP_NOW"].flatMap(ISO8601.parse) {
            now = { fixed }
        } else {
            now = { Date() }
        }
    }

    public var childEnvironment: [String: String] { credentials.childEnvironment(environment) }

    /// pg_dump, psql, pg_restore and pg_dumpall, found in `ToolSearch`'s order.
    public var tools: PostgresTools {
        PostgresTools(environment: childEnvironment, explicit: pgBindir.map { ($0, "--pg-bindir") })
    }

    public func connect(database: String? = nil) throws -> LibPQConnection {
        do {
            return try LibPQConnection(conninfo: spec.conninfo(), passfile: credentials.passfile, sslPassword: spec.sslPassword, database: database)
        } catch let e as PGSnapError {
            throw PGSnapError(e.status, redactSecrets(e.what, password: credentials.password ?? environment["PGPASSWORD"]), next: e.next)
        }
    }

    /// The conninfo a child gets for `database`: no password in it, ever.
    public func childConninfo(database: String) -> String {
        var s = spec
        s.set("dbname", database)
        return credentials.childConninfo(s)
    }

    /// The same connection, credentials and key, with another backup directory (a drill's private copy).
    public func inDirectory(_ path: String) throws -> Session {
        let s = try Session(spec: spec, directory: path, environment: environment, reporter: reporter)
        s.ageIdentity = ageIdentity
        s.pgBindir = pgBindir
        return s
    }

    /// Ends the writes a killed run left in `storage` (a bucket's unfinished uploads) older than
    /// `grace`, and says how many: prune and a direct backup clean up alike.
    func abortAbandonedWrites(in storage: SnapshotStorage, olderThan grace: TimeInterval) throws {
        let stale = try storage.removeAbandonedWrites(startedBefore: now().addingTimeInterval(-grace))
        if stale > 0 { reporter.info("pgsnap: aborted \(stale) unfinished upload(s) older than \(Int(grace / 3600)) h in \(storage.location)") }
    }

    public func directory(create: Bool) throws -> SnapshotDirectory {
        let dir = try SnapshotDirectory(path: directoryPath, create: create)
        // Plaintext a killed restore decrypted (kill -9 runs no cleanup) goes at the next command
        // that opens the directory, whatever it is, not only at the next directory restore.
        if Self.swept.withLock({ $0.insert(dir.path).inserted }) { DecryptedCopy.removeOrphans(in: dir, reporter: reporter) }
        return dir
    }
    /// Directories already swept in this run.
    private static let swept = Mutex<Set<String>>([])

    public func redact(_ text: String) -> String {
        redactSecrets(text, password: credentials.password ?? environment["PGPASSWORD"])
    }
}

/// Human lines on stderr (stdout stays for results), silenced by --quiet.
public final class Reporter {
    public let quiet: Bool
    public let json: Bool
    /// `--verbose`: also the details (which tools, each restore phase).
    public let verbose: Bool
    public init(quiet: Bool, json: Bool, verbose: Bool = false) {
        self.quiet = quiet
        self.json = json
        self.verbose = verbose
    }

    /// A line only `--verbose` prints.
    public func detail(_ line: String) {
        guard verbose else { return }
        StandardStreams.err(line + "\n")
    }

    public func info(_ line: String) {
        guard !quiet else { return }
        StandardStreams.err(line + "\n")
    }

    public func warn(_ line: String) {
        let flat = flattened(line)
        StderrTail.record("warning: " + flat)
        StandardStreams.err("pgsnap: warning: " + flat + "\n")
    }
}
