import Foundation
import Synchronization
import XCTest

/// Runs the built `pgsnap` binary and PostgreSQL's own tools against the throwaway server that
/// `scripts/test` starts (its settings arrive in PGHOST, PGPORT, PGSNAP_BIN, ...).
///
/// A missing server is a failure, never a skip: CI must exercise the real thing.
enum Harness {
    static let env = ProcessInfo.processInfo.environment

    static func require(_ key: String) -> String {
        guard let v = env[key], !v.isEmpty else {
            // Not a skip: every test that needs it fails, naming the cause. Not a crash either,
            // so the unit tests still run on their own.
            XCTFail("\(key) is not set: run the integration tests through scripts/test, which starts PostgreSQL")
            return "/nonexistent/\(key)-is-not-set"
        }
        return v
    }

    static var binary: String { require("PGSNAP_BIN") }
    static var repo: String { require("PGSNAP_REPO") }
    static var pgbin: String { env["PGSNAP_TEST_PGBIN"] ?? "/usr/lib/postgresql/15/bin" }
    static var tcpPort: String { require("PGSNAP_TEST_TCP_PORT") }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var pid: Int32
    }

    /// A no-op SIGPIPE handler, installed once: writing stdin to a child that already exited
    /// (psql that could not connect) then throws EPIPE instead of killing the whole test process
    /// with signal 13. A handler, not SIG_IGN: handlers reset at exec, so children are unaffected.
    static let sigpipeHandled: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        sigaction(SIGPIPE, &action, nil)
    }()

    /// Runs `executable` with `args`, environment = ours + `env` (nil values remove a variable).
    @discardableResult
    static func run(_ executable: String, _ args: [String], env extra: [String: String?] = [:], stdin: Data? = nil,
                    whileRunning: ((Int32) -> Void)? = nil) throws -> Result {
        _ = sigpipeHandled
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var e = env
        for (k, v) in extra { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : inp
        try p.run()
        // Both pipes drained at once (a child filling one while we wait on the other would hang).
        let collected = Mutex<(out: Data, err: Data)>((Data(), Data()))
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            collected.withLock { $0.out = data }
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            collected.withLock { $0.err = data }
            group.leave()
        }
        if let stdin {
            try inp.fileHandleForWriting.write(contentsOf: stdin)
            try inp.fileHandleForWriting.close()
        }
        whileRunning?(p.processIdentifier)
        p.waitUntilExit()
        group.wait()
        let (outData, errData) = collected.withLock { $0 }
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self), pid: p.processIdentifier)
    }

    /// `pgsnap ARGS` with the backup directory `dir`.
    @discardableResult
    static func pgsnap(_ args: [String], dir: String, env extra: [String: String?] = [:], stdin: Data? = nil,
                       whileRunning: ((Int32) -> Void)? = nil) throws -> Result {
        var e = extra
        e["PGSNAP_DIR"] = dir
        return try run(binary, args, env: e, stdin: stdin, whileRunning: whileRunning)
    }

    /// psql -X -v ON_ERROR_STOP=1 -At against `database`; returns stdout, fails the test on error.
    @discardableResult
    static func psql(_ database: String, _ sql: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try run(pgbin + "/psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql])
        XCTAssertEqual(r.status, 0, "psql failed: \(r.stderr)", file: file, line: line)
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    static func psqlFile(_ database: String, _ path: String) throws {
        let r = try run(pgbin + "/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", path])
        XCTAssertEqual(r.status, 0, "psql -f \(path) failed: \(r.stderr)")
    }

    /// A fresh, uniquely named database; dropped again by `dropDatabase`.
    static func createDatabase(_ prefix: String = "t") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
        try psql("postgres", "CREATE DATABASE \"\(name)\"")
        return name
    }

    /// The host's tag in the names of pgsnap's private temporary directories (FNV-1a of the host name, hex).
    static var hostTag: String {
        var h: UInt32 = 2166136261
        for b in ProcessInfo.processInfo.hostName.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        return String(h, radix: 16)
    }

    static func dropDatabase(_ name: String) {
        // A template cannot be dropped as it is (a test's own template database).
        _ = try? run(pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "ALTER DATABASE \"\(name)\" IS_TEMPLATE false"])
        _ = try? run(pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"])
    }

    static func databases(like pattern: String) throws -> [String] {
        try psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE '\(pattern)' ORDER BY 1")
            .split(separator: "\n").map(String.init)
    }

    /// A private, empty backup directory.
    static func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "pgsnap-it-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Schema and content of `database`: `pg_dump --schema-only` plus every table's rows, ordered, hashed.
    static func fingerprint(_ database: String) throws -> String {
        let schema = try run(pgbin + "/pg_dump", ["--schema-only", "--no-comments", "-d", database])
        XCTAssertEqual(schema.status, 0, schema.stderr)
        let tables = try psql(database, """
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r') AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
            """).split(separator: "\n")
        var content = ""
        for t in tables {
            content += "\(t): " + (try psql(database, "SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM \(t) x")) + "\n"
        }
        // \restrict keys differ per dump run; everything else must match.
        let schemaText = schema.stdout.split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
        return schemaText + "\n" + content
    }

    static func manifest(dir: String, id: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + id + ".manifest.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}
