import Foundation
import XCTest

/// One restore test's world: its databases, roles and backup directory, all removed at tear-down.
///
/// Databases go first (including `<db>_pre_restore_*` and any `pgsnap_scratch_*` left behind), then
/// roles, because a role cannot be dropped while a database's ACL still names it.
final class RestoreFixture {
    let dir: String
    private(set) var databases: [String] = []
    private(set) var roles: [String] = []

    init() throws {
        dir = try Harness.tempDir()
    }

    /// A fresh database this fixture drops again.
    func database(_ prefix: String) throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        return db
    }

    /// Registers a database the test creates by other means (a `--target` copy).
    func track(database name: String) { databases.append(name) }

    /// A uniquely named role this fixture drops again.
    func role(_ prefix: String) -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        roles.append(name)
        return name
    }

    func cleanUp() {
        for db in databases {
            for previous in (try? RestoreFixture.previousDatabases(of: db)) ?? [] { Harness.dropDatabase(previous) }
            Harness.dropDatabase(db)
        }
        // A failed test may leave scratch databases; they must not fail the next test's checks.
        for scratch in (try? RestoreFixture.scratchDatabases()) ?? [] { Harness.dropDatabase(scratch) }
        for role in roles {
            _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP ROLE IF EXISTS \"\(role)\""])
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// `pgsnap backup -d db`; returns the new snapshot's id.
    func backup(_ db: String, label: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        var args = ["backup", "-d", db]
        if let label { args += ["--label", label] }
        let r = try Harness.pgsnap(args, dir: dir)
        XCTAssertEqual(r.status, 0, "backup failed: \(r.stderr)", file: file, line: line)
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(id.hasPrefix(db + "_"), "unexpected snapshot id '\(id)'", file: file, line: line)
        return id
    }

    /// `pgsnap ARGS` against this fixture's backup directory.
    @discardableResult
    func pgsnap(_ args: [String], env: [String: String?] = [:], whileRunning: ((Int32) -> Void)? = nil) throws -> Harness.Result {
        try Harness.pgsnap(args, dir: dir, env: env, whileRunning: whileRunning)
    }

    /// Path of the snapshot's dump file, as its manifest names it.
    func dumpPath(_ id: String) throws -> String {
        let m = try Harness.manifest(dir: dir, id: id)
        return dir + "/" + (m["file"] as! String)
    }

    static func scratchDatabases() throws -> [String] {
        try Harness.databases(like: "pgsnap\\_scratch\\_%")
    }

    /// The `<db>_pre_restore_<UTC time>` databases a restore kept aside.
    static func previousDatabases(of db: String) throws -> [String] {
        let escaped = db.replacingOccurrences(of: "_", with: "\\_")
        return try Harness.databases(like: "\(escaped)\\_pre\\_restore\\_%")
    }

    static func exists(_ db: String) throws -> Bool {
        try Harness.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = '\(db)'") == "1"
    }
}

/// A psql session held open on a database (stdin is a pipe we keep), visible in pg_stat_activity.
///
/// It runs `sql` once (e.g. `BEGIN; LOCK TABLE ...` to hold locks), with `env` over the test's
/// environment (another server's PGHOST and PGPORT).
final class HeldSession {
    let process = Process()
    private let input = Pipe()
    let applicationName: String
    let database: String

    init(database: String, applicationName: String, env extra: [String: String?] = [:], sql: String = "SELECT 1;") throws {
        self.database = database
        self.applicationName = applicationName
        process.executableURL = URL(fileURLWithPath: Harness.pgbin + "/psql")
        process.arguments = ["-X", "-q", "-d", database]
        var env = Harness.env
        for (k, v) in extra { env[k] = v }
        env["PGAPPNAME"] = applicationName
        process.environment = env
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The only write: once the server may have terminated the session, a write could raise SIGPIPE here.
        try input.fileHandleForWriting.write(contentsOf: Data((sql + "\n").utf8))
    }

    /// Polls pg_stat_activity (bounded) until the session is there.
    func waitUntilConnected(timeout: TimeInterval = 30) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let n = try Harness.psql("postgres", """
                SELECT count(*) FROM pg_stat_activity WHERE datname = '\(database)' AND application_name = '\(applicationName)'
                """)
            if n != "0" { return true }
            usleep(20_000)
        }
        return false
    }

    /// Closes psql's stdin (it exits at EOF) and reaps it.
    func close() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
    }
}

/// A process that runs until its stdin is closed (`cat`, or `flock ... cat` holding a lock).
final class HeldProcess {
    let process = Process()
    private let input = Pipe()
    var pid: Int32 { process.processIdentifier }

    init(_ executable: String, _ arguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = input
        try process.run()
    }

    /// Closes its stdin and reaps it.
    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
