import Foundation
import XCTest

/// Helpers shared by the torture tests (faults and bad inputs): a tally of injected faults, what
/// `list --json` calls good, processes that outlive pgsnap, bulk data, and a private PostgreSQL
/// server for faults that would break the shared one.
///
/// Every helper takes the server's environment (`env`) so the same code works against the shared
/// server (`[:]`) and a `ThrowawayServer` (`server.env`).
enum Torture {
    // MARK: Fault tally

    private static let tallyLock = NSLock()
    nonisolated(unsafe) private static var tally: [String: Int] = [:]

    /// Records `n` injected faults of `kind` (e.g. "kill -9 pgsnap", "bit flip").
    static func inject(_ kind: String, _ n: Int = 1) {
        tallyLock.lock()
        tally[kind, default: 0] += n
        tallyLock.unlock()
    }

    /// Faults injected so far in this test process.
    static var injected: Int {
        tallyLock.lock()
        defer { tallyLock.unlock() }
        return tally.values.reduce(0, +)
    }

    /// Prints how many faults `caseName` injected (the difference since `before`) and the running total by kind.
    static func printTally(_ caseName: String, since before: Int) {
        tallyLock.lock()
        let kinds = tally.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        let total = tally.values.reduce(0, +)
        tallyLock.unlock()
        print("torture: \(caseName): \(total - before) fault(s) injected; \(total) in total so far (\(kinds))")
    }

    // MARK: Snapshots as pgsnap lists them

    struct Listed {
        var id: String
        var status: String
        var database: String
        var files: [String]
    }

    /// `pgsnap list --json`; fails the test (and returns []) when it does not exit 0 with a JSON array.
    static func list(_ dir: String, env: [String: String?] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [Listed] {
        let r = try Harness.pgsnap(["list", "--json"], dir: dir, env: env)
        XCTAssertEqual(r.status, 0, "list --json: \(r.stderr)", file: file, line: line)
        guard let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]] else {
            XCTFail("list --json did not print a JSON array: \(r.stdout) \(r.stderr)", file: file, line: line)
            return []
        }
        return rows.map {
            Listed(id: $0["id"] as? String ?? "?", status: $0["status"] as? String ?? "?",
                   database: $0["database"] as? String ?? "?", files: $0["files"] as? [String] ?? [])
        }
    }

    /// Asserts that exactly `expected` are listed as good and that each passes `verify <id>` (exit 0).
    /// Returns the entries that are not good (leftovers), for the caller to judge.
    @discardableResult
    static func assertGood(exactly expected: Set<String>, dir: String, env: [String: String?] = [:], _ context: String,
                           file: StaticString = #filePath, line: UInt = #line) throws -> [Listed] {
        let listed = try list(dir, env: env, file: file, line: line)
        let good = Set(listed.filter { $0.status == "good" }.map(\.id))
        XCTAssertEqual(good, expected, "\(context): good snapshots; listed: \(listed.map { "\($0.id)=\($0.status)" })",
                       file: file, line: line)
        for id in good.sorted() {
            let v = try Harness.pgsnap(["verify", id, "--quiet"], dir: dir, env: env)
            XCTAssertEqual(v.status, 0, "\(context): verify \(id) (listed good): \(v.stderr)", file: file, line: line)
        }
        return listed.filter { $0.status != "good" }
    }

    /// Names in `dir` ending in `.partial`.
    static func partialFiles(_ dir: String) -> [String] {
        Harness.entries(dir).filter { $0.hasSuffix(".partial") }
    }

    // MARK: Processes

    /// Live processes named `comm` whose argv mentions `needle` (a database name, say).
    static func processes(comm: String, mentioning needle: String) -> [Int32] {
        Procfs.snapshot().filter { $0.comm == comm && $0.state != "Z" }.compactMap { e in
            (Procfs.cmdline(e.pid) ?? []).contains { $0.contains(needle) } ? e.pid : nil
        }
    }

    /// Polls (bounded) until no process `comm` mentioning `needle` is left; returns the survivors.
    static func waitUntilGone(comm: String, mentioning needle: String, timeout: TimeInterval = 10) -> [Int32] {
        var left: [Int32] = []
        _ = Harness.poll(timeout: timeout) {
            left = processes(comm: comm, mentioning: needle)
            if !left.isEmpty { usleep(20_000) }
            return left.isEmpty
        }
        return left
    }

    /// The first live direct child of `pid` named `comm` with an argument containing `argument`
    /// (pgsnap also runs short `pg_dump --version` probes), or nil.
    static func child(of pid: Int32, named comm: String, withArgument argument: String) -> Int32? {
        Procfs.children(of: pid).first { c in
            guard let e = Procfs.entry(c), e.comm == comm, e.state != "Z" else { return false }
            return (Procfs.cmdline(c) ?? []).contains { $0.contains(argument) }
        }
    }

    // MARK: Databases

    /// `psql -At -c sql` on `database` with the server `env`; fails the test on error.
    @discardableResult
    static func psql(_ database: String, _ sql: String, env: [String: String?] = [:], user: String? = nil,
                     file: StaticString = #filePath, line: UInt = #line) throws -> String {
        var args = ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql]
        if let user { args += ["-U", user] }
        let r = try Harness.run(Harness.pgbin + "/psql", args, env: env)
        XCTAssertEqual(r.status, 0, "psql failed: \(r.stderr)", file: file, line: line)
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    /// `psql -At -c sql`'s output, or nil on failure; for polling inside `whileRunning`.
    ///
    /// Unlike `Harness.run` it uses no dispatch queue: inside `whileRunning` the outer run's two
    /// blocked pipe readers already hold the global queue's threads (2 cores), and a nested
    /// `Harness.run` can wait a long time for a thread, missing short windows.
    static func query(_ database: String, _ sql: String, env: [String: String?] = [:]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.pgbin + "/psql")
        p.arguments = ["-X", "-q", "-At", "-d", database, "-c", sql]
        var e = Harness.env
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()  // small answers only: they fit in the pipe buffer
        let data = out.fileHandleForReading.readDataToEndOfFile()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    }

    /// Fills `database` with `big(id, a, b)`, about 75 bytes of dump per row (md5 text: gzip halves it),
    /// and a one-row `small`.
    static func fill(_ database: String, rows: Int, env: [String: String?] = [:], user: String? = nil) throws {
        try psql(database, """
            CREATE TABLE big (id int PRIMARY KEY, a text, b text);
            INSERT INTO big SELECT g, md5(g::text), md5((g * 7)::text) || g FROM generate_series(1, \(rows)) g;
            CREATE TABLE small (id int, v text);
            INSERT INTO small VALUES (1, 'one');
            """, env: env, user: user)
    }

    /// Schema (`pg_dump --schema-only`, without `\restrict` keys) plus an md5 of every table's ordered rows.
    static func fingerprint(_ database: String, env: [String: String?] = [:],
                            file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let schema = try Harness.run(Harness.pgbin + "/pg_dump", ["--schema-only", "--no-comments", "-d", database], env: env)
        XCTAssertEqual(schema.status, 0, schema.stderr, file: file, line: line)
        let tables = try psql(database, """
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
            """, env: env, file: file, line: line).split(separator: "\n")
        var content = ""
        for t in tables {
            content += "\(t): " + (try psql(database, "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM \(t) x",
                                            env: env, file: file, line: line)) + "\n"
        }
        return Harness.withoutRestrictKeys(schema.stdout) + "\n" + content
    }

    static func databases(like pattern: String, env: [String: String?] = [:]) throws -> [String] {
        try psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE '\(pattern)' ORDER BY 1", env: env)
            .split(separator: "\n").map(String.init)
    }

    static func dropDatabase(_ name: String, env: [String: String?] = [:]) {
        _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"],
                             env: env)
    }

    // MARK: Files

    static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }
}

/// A PostgreSQL 15 server of one test class's own (`scripts/pg start`), for faults that would break
/// the shared server: immediate shutdown, roles and connection limits.
final class ThrowawayServer {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let dir: String
    let data: String
    /// PGHOST, PGPORT, PGUSER, PGDATABASE of this server: pass to Harness.pgsnap / Torture helpers.
    let env: [String: String?]
    private let runAs: String

    /// - Throws: `Failure` with scripts/pg's output when the server does not start.
    init() throws {
        var template = Array("/tmp/pgsF-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure(description: "mkdtemp: \(String(cString: strerror(errno)))") }
        dir = String(cString: made)
        let r = try ThrowawayServer.launch([Harness.repo + "/scripts/pg", "start", dir])
        guard r.status == 0 else {
            _ = try? Harness.run("/bin/bash", [Harness.repo + "/scripts/pg", "stop", dir])
            throw Failure(description: "scripts/pg start \(dir) failed: \(r.stdout)")
        }
        var values: [String: String] = [:]
        let text = (try? String(contentsOfFile: dir + "/env", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("export ") {
            let kv = line.dropFirst("export ".count)
            guard let eq = kv.firstIndex(of: "=") else { continue }
            var v = String(kv[kv.index(after: eq)...])
            if v == "''" { v = "" }
            values[String(kv[..<eq])] = v
        }
        guard let host = values["PGHOST"], let port = values["PGPORT"], let data = values["PGSNAP_TEST_PGDATA"] else {
            throw Failure(description: "scripts/pg wrote no usable \(dir)/env: \(text)")
        }
        self.data = data
        runAs = values["PGSNAP_TEST_RUNAS"] ?? ""
        env = ["PGHOST": host, "PGPORT": port, "PGUSER": "postgres", "PGDATABASE": "postgres",
               "PGPASSWORD": nil, "PGPASSFILE": nil, "PGOPTIONS": nil, "DATABASE_URL": nil]
    }

    /// Runs a command that leaves a daemon behind (the postmaster), from `/`, with every descriptor
    /// above 2 closed first; its output (stdout and stderr together) is returned as `stdout`.
    ///
    /// Foundation's Process learns that a child ended when the socket it hands the child is closed;
    /// a postmaster that inherited that socket would make `Harness.run` wait as long as the server
    /// runs. Output goes to a file, not a pipe read on a dispatch queue, so this can also be called
    /// inside `whileRunning` without waiting for a thread.
    static func launch(_ argv: [String]) throws -> Harness.Result {
        let script = #"cd / && for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@""#
        let log = NSTemporaryDirectory() + "pgsnap-torture-launch-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: log, contents: nil), let out = FileHandle(forWritingAtPath: log) else {
            throw Failure(description: "cannot create \(log)")
        }
        defer { unlink(log) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script, "pgsnap-torture-launch"] + argv
        p.environment = Harness.env
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = out
        try p.run()
        try? out.close()
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return Harness.Result(status: p.terminationStatus, stdout: text, stderr: text, pid: p.processIdentifier)
    }

    /// Stops the server and removes its directory.
    func stop() {
        _ = try? Harness.run("/bin/bash", [Harness.repo + "/scripts/pg", "stop", dir])
    }

    /// `pg_ctl -D data ARGS`, as the server's OS user when we are root.
    @discardableResult
    func pgCtl(_ args: [String]) throws -> Harness.Result {
        let pgCtl = [Harness.pgbin + "/pg_ctl", "-D", data] + args
        return try ThrowawayServer.launch(runAs.isEmpty ? pgCtl : ["runuser", "-u", runAs, "--"] + pgCtl)
    }

    /// `pg_ctl stop -m immediate`: every backend dies at once, as in a crash.
    func stopImmediately() throws {
        let r = try pgCtl(["stop", "-m", "immediate", "-w"])
        if r.status != 0 { throw Failure(description: "pg_ctl stop -m immediate failed: \(r.stdout)") }
    }

    /// Starts the server again (crash recovery after an immediate stop) and waits until it accepts connections.
    func start() throws {
        let r = try pgCtl(["-l", dir + "/server.log", "-w", "-t", "60", "start"])
        if r.status != 0 { throw Failure(description: "pg_ctl start failed: \(r.stdout)") }
    }
}
