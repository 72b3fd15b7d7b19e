import Foundation
import XCTest

/// A value shared between a test and the threads or callbacks it starts.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    var get: T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func update(_ change: (inout T) -> Void) { lock.lock(); change(&value); lock.unlock() }
}

/// Helpers shared by the backup, verify, bad-input and secrets tests: files, /proc, gzip and
/// the shape of pgsnap's error output.
extension Harness {
    /// pg_dump's closing comment: only a dump that ran to the end has it (the `\unrestrict` line may follow).
    static let dumpTrailer = "-- PostgreSQL database dump complete"

    /// The id pgsnap printed on stdout.
    static func snapshotID(_ r: Result) -> String {
        r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func dumpPath(dir: String, id: String) -> String { dir + "/" + id + ".sql.gz" }
    static func manifestPath(dir: String, id: String) -> String { dir + "/" + id + ".manifest.json" }

    /// Names in `dir`, dot files included, sorted; empty when the directory does not exist.
    static func entries(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// Names in `dir` that belong to a snapshot (dump, manifest, partial), i.e. everything but the lock.
    static func snapshotFiles(_ dir: String) -> [String] {
        entries(dir).filter { $0 != ".pgsnap.lock" }
    }

    static func permissions(_ path: String) -> mode_t {
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0, "stat \(path)")
        return st.st_mode & 0o7777
    }

    static func fileSize(_ path: String) throws -> Int64 {
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        return (attrs[.size] as! NSNumber).int64Value
    }

    static func bytes(_ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path))
    }

    /// `sha256sum FILE`'s hex digest: an implementation independent of pgsnap's.
    static func sha256sum(_ path: String) throws -> String {
        let r = try run("/usr/bin/sha256sum", [path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(r.stdout.split(separator: " ").first ?? "")
    }

    /// `gzip -dc FILE` (zcat), which reads every gzip member.
    static func gunzip(_ path: String) throws -> Result {
        try run("/bin/gzip", ["-dc", path])
    }

    /// A dump without its `\restrict` / `\unrestrict` lines, whose random key differs per pg_dump run.
    static func withoutRestrictKeys(_ dump: String) -> String {
        dump.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
    }

    /// Feeds a plain dump to `psql -v ON_ERROR_STOP=1` on `database` through stdin.
    static func psqlStdin(_ database: String, _ sql: Data) throws -> Result {
        try run(pgbin + "/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database], stdin: sql)
    }

    /// Every table of `database` (format('%I.%I'), as pg_dump names them) with its `count(*)`.
    static func rowCounts(_ database: String) throws -> [String: Int] {
        let tables = try psql(database, """
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
            """).split(separator: "\n").map(String.init)
        var out: [String: Int] = [:]
        for t in tables {
            out[t] = Int(try psql(database, "SELECT count(*) FROM \(t)"))
        }
        return out
    }

    /// Parses `verify --json` output: the array of results.
    static func verifyResults(_ r: Result) -> [[String: Any]] {
        guard let data = r.stdout.data(using: .utf8),
              let array = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]]
        else {
            XCTFail("verify --json did not print a JSON array: \(r.stdout) / \(r.stderr)")
            return []
        }
        return array
    }

    static func writeJSON(_ object: Any, to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// Asserts the error contract: the status, exactly one non-empty stderr line starting `pgsnap: `, no crash output.
    static func assertOneErrorLine(_ r: Result, status: Int32, _ context: String = "",
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, status, "\(context): exit status; stderr: \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "\(context): stderr must be one line, got: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(lines.first?.hasPrefix("pgsnap: ") ?? false, "\(context): stderr must start with 'pgsnap: ', got: \(r.stderr)",
                      file: file, line: line)
        for crash in ["Fatal error", "Stack dump", "backtrace", "Segmentation", "Illegal instruction", "Current stack trace"] {
            XCTAssertFalse(r.stderr.contains(crash), "\(context): crash output in stderr: \(r.stderr)", file: file, line: line)
        }
    }

    /// Waits for `condition` by polling every few milliseconds; false when `timeout` passes first.
    static func poll(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(2_000)
        }
        return condition()
    }
}

/// Hand-edited directory snapshots whose manifests match their files: only reading or loading
/// the data can tell them from good ones.
extension Harness {
    /// Makes snapshot `id`'s manifest promise `rows` for these tables (`table_rows` and each
    /// data file's `rows`).
    static func promiseRows(_ rows: [String: Int], dir: String, id: String) throws {
        var m = try manifest(dir: dir, id: id)
        var tableRows = try XCTUnwrap(m["table_rows"] as? [String: Any])
        for (table, n) in rows { tableRows[table] = n }
        m["table_rows"] = tableRows
        m["files"] = try XCTUnwrap(m["files"] as? [[String: Any]]).map { f in
            var f = f
            if let t = f["table"] as? String, let n = rows[t] { f["rows"] = n }
            return f
        }
        try writeJSON(m, to: manifestPath(dir: dir, id: id))
    }

    /// Makes snapshot `id`'s manifest match its files as they are now on disk: each file's size
    /// and SHA-256, the listing's SHA-256, the total.
    static func resealDirectorySnapshot(dir: String, id: String) throws {
        var m = try manifest(dir: dir, id: id)
        let files = try XCTUnwrap(m["files"] as? [[String: Any]]).map { f -> [String: Any] in
            var f = f
            let path = dir + "/" + id + ".dir/" + (f["name"] as! String)
            f["bytes"] = try fileSize(path)
            f["sha256"] = try sha256sum(path)
            return f
        }
        m["files"] = files
        let listing = files.map { "\($0["sha256"] as! String)  \($0["name"] as! String)\n" }.sorted { $0.split(separator: " ").last! < $1.split(separator: " ").last! }
        let listingPath = dir + "/.listing"
        try Data(listing.joined().utf8).write(to: URL(fileURLWithPath: listingPath))
        m["sha256"] = try sha256sum(listingPath)
        unlink(listingPath)
        m["compressed_bytes"] = files.reduce(Int64(0)) { $0 + ((($1["bytes"] as? NSNumber)?.int64Value) ?? 0) }
        try writeJSON(m, to: manifestPath(dir: dir, id: id))
    }
}


/// What /proc says about processes, for checking pgsnap's children without trusting pgsnap.
enum Procfs {
    /// Stops (SIGSTOP) the psql child of `pid` that loads a scratch database as soon as /proc
    /// shows it, polling for up to two minutes; nil when pgsnap ended or none appeared. The load
    /// is then held wherever it was, whatever the machine's speed.
    static func stopLoadingPsql(of pid: Int32) -> Int32? {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, entry(pid) != nil {
            for child in children(of: pid) where executable(child)?.hasSuffix("/psql") == true {
                guard let argv = cmdline(child), argv.contains(where: { $0.contains("pgsnap_scratch_") }) else { continue }
                kill(child, SIGSTOP)
                return child
            }
            usleep(500)
        }
        return nil
    }

    struct Entry {
        var pid: Int32
        var ppid: Int32
        var comm: String
        var state: Character
    }

    /// One entry per process now; processes vanishing mid-scan are skipped.
    static func snapshot() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var out: [Entry] = []
        for n in names {
            guard let pid = Int32(n), let e = entry(pid) else { continue }
            out.append(e)
        }
        return out
    }

    /// Parses /proc/PID/stat: `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    static func entry(_ pid: Int32) -> Entry? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        let comm = String(text[text.index(after: open)..<close])
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count >= 2, let state = rest[0].first, let ppid = Int32(rest[1]) else { return nil }
        return Entry(pid: pid, ppid: ppid, comm: comm, state: state)
    }

    /// Direct children of `pid`, from /proc/PID/task/*/children (cheaper than scanning all of /proc,
    /// so a short-lived child is more likely to be seen).
    static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var out: [Int32] = []
        for t in tasks {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/task/\(t)/children") else { continue }
            out += String(decoding: data, as: UTF8.self).split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return out
    }

    /// All descendants of `root` (not `root` itself) that still exist.
    static func descendants(of root: Int32) -> [Entry] {
        var out: [Entry] = []
        var queue = [root]
        var visited: Set<Int32> = [root]
        while let p = queue.popLast() {
            for c in children(of: p) where visited.insert(c).inserted {
                guard let e = entry(c) else { continue }
                out.append(e)
                queue.append(c)
            }
        }
        return out
    }

    /// The program `pid` runs (/proc/PID/exe), or nil when it has gone.
    static func executable(_ pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    }

    /// argv of `pid`, or nil when it has gone.
    static func cmdline(_ pid: Int32) -> [String]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        // Each argument ends with NUL; an empty file (zombie, kernel thread) is no argv at all.
        var args = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if args.last == "" { args.removeLast() }
        return args
    }

    /// The environment of `pid` as raw `KEY=VALUE` strings, or nil when it has gone.
    static func environ(_ pid: Int32) -> [String]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// True while `pid` exists and is not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let e = entry(pid) else { return false }
        return e.state != "Z"
    }
}
