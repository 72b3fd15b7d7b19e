import Foundation
import XCTest

/// The input half of pgsnap's torture suite: damaged snapshots, hostile arguments, database names,
/// connection strings, directories and manifests, concurrent runs, and passwords under observation.
///
/// pgsnap promises that no corrupt file, hostile input or concurrent run loses data or leaves
/// something that looks good but is not, and that passwords never leak. Each case below states the
/// fault it injects and the outcome that promise requires. Random choices come from a SplitMix64
/// seeded by `PGSNAP_TORTURE_SEED` (else a fresh seed); the seed is printed, so any failure can be
/// replayed exactly: `PGSNAP_TORTURE_SEED=<seed> swift test --filter IntegrationTests.TortureInputTests`.
///
/// Every pgsnap run here is bounded by a deadline (a hang is a failure of its own, not a stuck
/// suite) and judged by how it ended: a signal, an exit status of 128 or more, or Swift's crash
/// output is always a failure.
final class TortureInputTests: XCTestCase {
    // MARK: - Reproducible randomness

    /// SplitMix64 (Steele, Lea and Flood, 2014): small, fast, and the same sequence everywhere.
    struct SplitMix64: RandomNumberGenerator {
        private var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seed: UInt64 = {
        if let text = ProcessInfo.processInfo.environment["PGSNAP_TORTURE_SEED"], let s = UInt64(text) { return s }
        return UInt64.random(in: 1...UInt64.max)
    }()

    /// This test's own stream: the seed mixed with the test's name, so one test replays alone.
    func makeRNG() -> SplitMix64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        print("TortureInputTests: \(name) seed \(Self.seed) (replay: PGSNAP_TORTURE_SEED=\(Self.seed))")
        return SplitMix64(seed: Self.seed ^ h)
    }

    static func token(_ rng: inout SplitMix64, _ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
    }

    /// A place in `range` drawn as a fraction of it: pg_dump's random `\restrict` key changes the
    /// dump's size by a few bytes from run to run, and a replay should still hit the same spots.
    static func position(_ rng: inout SplitMix64, in range: Range<Int>) -> Int {
        let fraction = Double(rng.next() >> 11) / Double(1 << 53)
        return min(range.lowerBound + Int(fraction * Double(range.count)), range.upperBound - 1)
    }

    // MARK: - Bookkeeping

    /// Short and unique per test instance: keeps names of databases and roles apart between runs.
    let suffix = String(UUID().uuidString.prefix(6)).lowercased()
    var databases: [String] = []
    var roles: [String] = []
    var paths: [String] = []

    override func tearDown() {
        let all = (try? Self.allDatabases()) ?? []
        for d in databases {
            for name in all where name == d || name.hasPrefix(d + "_pre_restore_") || name.hasPrefix(d + "_copy") {
                Self.dropDatabase(name)
            }
        }
        for r in roles {
            _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP ROLE IF EXISTS \(Self.ident(r))"])
        }
        for p in paths {
            chmod(p, 0o700)
            try? FileManager.default.removeItem(atPath: p)
        }
        super.tearDown()
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        paths.append(d)
        return d
    }

    /// A copy of `dir` (files only, as a fault works on it) in a fresh temporary directory.
    func copyOf(_ dir: String) throws -> String {
        let d = try makeDir()
        for name in Harness.entries(dir) where name != ".pgsnap.lock" {
            try FileManager.default.copyItem(atPath: dir + "/" + name, toPath: d + "/" + name)
        }
        return d
    }

    static func ident(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
    static func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
    /// A value for a libpq `key=value` string: single-quoted, `\` and `'` escaped.
    static func kv(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
    /// Everything but RFC 3986's unreserved characters percent-encoded.
    static func pct(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn:
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"))!
    }

    static func allDatabases() throws -> [String] {
        try Harness.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1").split(separator: "\n").map(String.init)
    }

    static func dropDatabase(_ name: String) {
        _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS \(ident(name)) WITH (FORCE)"])
    }

    /// Creates `name` (exactly so: quoted), runs `sql` in it, and drops it (and its copies) afterwards.
    func createDatabase(_ name: String, owner: String? = nil, sql: String? = nil, track: Bool = true) throws {
        Self.dropDatabase(name)
        try Harness.psql("postgres", "CREATE DATABASE \(Self.ident(name))" + (owner.map { " OWNER \(Self.ident($0))" } ?? ""))
        if track { databases.append(name) }
        if let sql { try Harness.psql(name, sql) }
    }

    static func scratchDatabases() -> [String] {
        ((try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-At", "-d", "postgres", "-c",
                                                      "SELECT datname FROM pg_database WHERE datname LIKE 'pgsnap\\_scratch\\_%'"]))?
            .stdout ?? "").split(separator: "\n").map(String.init)
    }

    /// One psql call: every database with its OID (a swap, a scratch or a pre-restore database shows
    /// here) and a hash of every row of every table of `db`. Cheaper than `Harness.fingerprint`.
    static func targetState(_ db: String) throws -> String {
        try Harness.psql(db, """
            SELECT concat_ws(' | ',
              (SELECT string_agg(datname || '=' || oid, ',' ORDER BY datname) FROM pg_database),
              (SELECT md5(coalesce(string_agg(format('%I.%I', n.nspname, c.relname) || '=' ||
                     md5(query_to_xml(format('SELECT x::text AS r FROM %I.%I x ORDER BY 1', n.nspname, c.relname), false, false, '')::text),
                     ',' ORDER BY n.nspname, c.relname), ''))
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'))
            """)
    }

    // MARK: - Running pgsnap, bounded and judged

    struct Run {
        var args: [String]
        var status: Int32
        var signaled: Bool
        var hung: Bool
        var stdout: String
        var stderr: String
        var pid: Int32
        var errorLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
        var shown: String { "pgsnap " + args.map { String($0.prefix(48)).debugDescription }.joined(separator: " ") }
    }

    /// Runs `executable`; `watch` is called about every millisecond while it runs. Killed after `timeout`.
    static func execute(_ executable: String, _ args: [String], env extra: [String: String?], timeout: TimeInterval,
                        watch: ((Int32) -> Void)? = nil) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var e = Harness.env
        for (k, v) in extra { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let pid = p.processIdentifier
        let outData = Box(Data()), errData = Box(Data())
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            outData.set(out.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errData.set(err.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        let deadline = Date().addingTimeInterval(timeout)
        var hung = false
        while p.isRunning {
            watch?(pid)
            if Date() > deadline {
                hung = true
                kill(pid, SIGKILL)
                break
            }
            usleep(watch == nil ? 3_000 : 1_000)
        }
        p.waitUntilExit()
        group.wait()
        return Run(args: args, status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal, hung: hung,
                   stdout: String(decoding: outData.get, as: UTF8.self), stderr: String(decoding: errData.get, as: UTF8.self), pid: pid)
    }

    /// `pgsnap ARGS` with PGSNAP_DIR = `dir` (nil: no PGSNAP_DIR at all), asserted never to hang or crash.
    @discardableResult
    func pgsnap(_ args: [String], dir: String?, env: [String: String?] = [:], timeout: TimeInterval = 180,
                watch: ((Int32) -> Void)? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        var e = env
        if let dir {
            e["PGSNAP_DIR"] = dir
        } else if e["PGSNAP_DIR"] == nil {
            e.updateValue(nil, forKey: "PGSNAP_DIR")
        }
        let r = try Self.execute(Harness.binary, args, env: e, timeout: timeout, watch: watch)
        XCTAssertFalse(r.hung, "\(r.shown) did not finish within \(Int(timeout)) s and was killed; stderr: \(r.stderr)", file: file, line: line)
        if !r.hung { assertNoCrash(r, file: file, line: line) }
        return r
    }

    func assertNoCrash(_ r: Run, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(r.signaled, "\(r.shown) was killed by signal \(r.status); stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.status < 128 || r.status == 130, "\(r.shown) exited \(r.status); stderr: \(r.stderr)", file: file, line: line)
        for crash in ["Fatal error", "Stack dump", "backtrace", "Segmentation", "Illegal instruction", "Current stack trace", "Program crashed"] {
            XCTAssertFalse(r.stderr.contains(crash), "\(r.shown): crash output: \(r.stderr)", file: file, line: line)
        }
    }

    /// The refusal contract: an expected status, exactly one `pgsnap: ` line on stderr, no control
    /// characters echoed (a label must not drive the terminal), nothing on stdout.
    func assertRefused(_ r: Run, _ statuses: Set<Int32>, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(statuses.contains(r.status), "\(context): \(r.shown) exited \(r.status), expected \(statuses.sorted()); stderr: \(r.stderr)",
                      file: file, line: line)
        XCTAssertEqual(r.errorLines.count, 1, "\(context): \(r.shown): stderr must be one line: \(r.stderr.debugDescription)", file: file, line: line)
        XCTAssertTrue(r.errorLines.first?.hasPrefix("pgsnap: ") ?? false, "\(context): \(r.shown): \(r.stderr.debugDescription)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", "\(context): \(r.shown) printed on stdout", file: file, line: line)
        XCTAssertLessThan(r.stderr.utf8.count, 1000, "\(context): \(r.shown): the input must not be echoed whole", file: file, line: line)
        let controls = r.stderr.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7F }
        XCTAssertTrue(controls.isEmpty, "\(context): \(r.shown): control characters \(controls.map(\.value)) reach stderr: \(r.stderr.debugDescription)",
                      file: file, line: line)
    }

    @discardableResult
    func backup(_ args: [String], dir: String?, env: [String: String?] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try pgsnap(["backup"] + args, dir: dir, env: env, file: file, line: line)
        XCTAssertEqual(r.status, 0, "\(r.shown): \(r.stderr)", file: file, line: line)
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(id.isEmpty, "\(r.shown) printed no id", file: file, line: line)
        return id
    }

    // MARK: - Files

    /// Every entry of `dir` but the lock, with its bytes (regular files) or what it is (anything else,
    /// never opened: a FIFO would block): what "verify and restore changed nothing" compares.
    static func contents(_ dir: String) -> [String: Data] {
        var out: [String: Data] = [:]
        for name in Harness.entries(dir) where name != ".pgsnap.lock" {
            let path = dir + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG: out[name] = FileManager.default.contents(atPath: path) ?? Data("<unreadable>".utf8)
            case S_IFLNK: out[name] = Data(("<symlink to \((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")>").utf8)
            default: out[name] = Data("<mode \(String(st.st_mode, radix: 8))>".utf8)
            }
        }
        return out
    }

    func assertUnchanged(_ dir: String, _ before: [String: Data], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        let after = Self.contents(dir)
        XCTAssertEqual(Set(after.keys), Set(before.keys), "\(context): files appeared or vanished in \(dir)", file: file, line: line)
        let changed = before.keys.filter { after[$0] != nil && after[$0] != before[$0] }.sorted()
        XCTAssertEqual(changed, [], "\(context): modified: \(changed)", file: file, line: line)
    }

    func editManifest(_ dir: String, _ id: String, _ edit: (inout [String: Any]) throws -> Void) throws {
        var m = try Harness.manifest(dir: dir, id: id)
        try edit(&m)
        try Harness.writeJSON(m, to: Harness.manifestPath(dir: dir, id: id))
    }

    static func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    func gunzip(_ path: String) throws -> Data {
        let r = try Harness.gunzip(path)
        XCTAssertEqual(r.status, 0, r.stderr)
        return Data(r.stdout.utf8)
    }

    /// `gzip -n` of `plain`: a valid gzip stream, independent of pgsnap's writer.
    func gzip(_ plain: Data) throws -> Data {
        let tmp = NSTemporaryDirectory() + "pgsnap-ti-gz-" + UUID().uuidString + ".sql"
        try plain.write(to: URL(fileURLWithPath: tmp))
        defer { try? FileManager.default.removeItem(atPath: tmp + ".gz") }
        let r = try Harness.run("/bin/gzip", ["-n", "-f", tmp])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try Harness.bytes(tmp + ".gz")
    }

    /// Writes `gz` as the dump of `id` and makes the manifest agree on size and SHA-256 (and, given,
    /// the uncompressed size): damage that only the deep checks can see.
    func reseal(_ dir: String, _ id: String, gz: Data, uncompressed: Int?) throws {
        let path = Harness.dumpPath(dir: dir, id: id)
        try gz.write(to: URL(fileURLWithPath: path))
        let sha = try Harness.sha256sum(path)
        try editManifest(dir, id) { m in
            m["compressed_bytes"] = gz.count
            m["sha256"] = sha
            if let uncompressed { m["uncompressed_bytes"] = uncompressed }
        }
    }

    static func listStatuses(_ r: Run) -> [String: String] {
        guard let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]] else { return [:] }
        var out: [String: String] = [:]
        for row in rows {
            if let id = row["id"] as? String { out[id] = row["status"] as? String ?? "?" }
        }
        return out
    }

    static func pruneActions(_ r: Run) -> [String: String] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any],
              let ds = o["decisions"] as? [[String: Any]] else { return [:] }
        var out: [String: String] = [:]
        for d in ds {
            if let id = d["id"] as? String { out[id] = d["action"] as? String ?? "?" }
        }
        return out
    }

    static func iso(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    // MARK: - 5. Corruption matrix

    /// One way of damaging a copy of the backup directory, and what pgsnap must make of it.
    struct Fault {
        var name: String
        /// The check `verify` must name: exactly one where the fault determines it.
        var checks: Set<String>
        var restoreStatuses: Set<Int32> = [2]
        /// Restore gets past size and SHA-256 and loads a scratch database before it can tell.
        var loads = false
        /// `list` sees it without reading the dump (sizes, missing files, manifest): it must not say good.
        var listSeesIt = false
        var apply: (String) throws -> Void
    }

    /// Faults: 50 single-bit flips and 20 truncations of the dump at seeded random offsets, garbage
    /// appended, the dump swapped for another snapshot's, the manifest's compressed_bytes, sha256 and
    /// a table_rows count edited (JSON kept valid), dump deleted, manifest deleted, another snapshot's
    /// manifest renamed into place; and damage a re-hashing tool would hide from size and SHA-256:
    /// a truncated dump resealed (size and sha256 made to match), a dump with one COPY row removed or
    /// without pg_dump's trailer recompressed and resealed, a gzip dump labelled zstd or none.
    ///
    /// Expected for every fault: `verify <id>` exits 2 naming the failed check (exactly where the
    /// fault determines it); `restore <id> --yes -d <db>` onto the existing target refuses (2: the
    /// snapshot fails its checks; 1 or 2 where no manifest is left to restore from), the target is
    /// unchanged (OIDs, rows, and for the faults that reach a scratch database the full fingerprint),
    /// no scratch or pre-restore database is left, and verify and restore modified no file.
    func testCorruptionMatrixEveryFaultIsCaughtNamedAndChangesNothing() throws {
        var rng = makeRNG()
        let db = "ti_c_" + suffix, other = "ti_co_" + suffix
        try createDatabase(db, sql: """
            CREATE TABLE t AS SELECT i, md5(i::text) AS a, (i * 7) % 1000 AS b FROM generate_series(1, 12000) i;
            CREATE TABLE "Odd Name" (x text);
            INSERT INTO "Odd Name" VALUES ('a'), (NULL), (E'multi\\nline');
            CREATE TABLE e (id int);
            """)
        try createDatabase(other, sql: "CREATE TABLE t AS SELECT i, md5(i::text) AS a FROM generate_series(1, 3000) i")
        let master = try makeDir()
        let id = try backup(["--dbname=\(db)"], dir: master)
        let otherID = try backup(["--dbname=\(other)"], dir: master)
        let d = id + ".sql.gz", mf = id + ".manifest.json"
        let otherDump = otherID + ".sql.gz", otherManifest = otherID + ".manifest.json"
        let dump = try Harness.bytes(master + "/" + d)
        let otherSize = try Harness.bytes(master + "/" + otherDump).count
        XCTAssertGreaterThan(dump.count, 100_000, "the dump should be a few hundred KB")
        let manifest = try Harness.manifest(dir: master, id: id)
        XCTAssertEqual((manifest["table_rows"] as? [String: Any])?["public.t"] as? Int, 12000)
        let plain = try gunzip(master + "/" + d)
        XCTAssertEqual((manifest["uncompressed_bytes"] as? NSNumber)?.intValue, plain.count)
        let text = String(decoding: plain, as: UTF8.self)
        XCTAssertEqual(Data(text.utf8), plain, "the dump is not plain UTF-8; the row and trailer faults need it")

        let control = try pgsnap(["verify", "--all"], dir: master)
        XCTAssertEqual(control.status, 0, "the undamaged snapshots must verify: \(control.stderr)")
        // Every manifest edit below goes through JSONSerialization: unchanged, that rewrite must still verify.
        let rewritten = try copyOf(master)
        try editManifest(rewritten, id) { _ in }
        let rewrittenVerify = try pgsnap(["verify", id], dir: rewritten)
        XCTAssertEqual(rewrittenVerify.status, 0, "a re-serialized but unchanged manifest must verify: \(rewrittenVerify.stderr)")

        func path(_ w: String, _ name: String) -> String { w + "/" + name }
        var faults: [Fault] = []
        for n in 1...50 {
            let offset = Self.position(&rng, in: 0..<dump.count)
            let mask = UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            faults.append(Fault(name: "bit flip \(n): byte \(offset) ^ 0x\(String(mask, radix: 16))", checks: ["checksum"]) { w in
                var b = dump
                b[b.startIndex + offset] ^= mask
                try b.write(to: URL(fileURLWithPath: path(w, d)))
            })
        }
        for n in 1...20 {
            let length = Self.position(&rng, in: 0..<dump.count)
            faults.append(Fault(name: "truncation \(n): \(length) of \(dump.count) bytes", checks: ["size"], listSeesIt: true) { w in
                try Data(dump.prefix(length)).write(to: URL(fileURLWithPath: path(w, d)))
            })
        }
        let garbage = Data((0..<Int.random(in: 1...4096, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        faults.append(Fault(name: "\(garbage.count) bytes of garbage appended", checks: ["size"], listSeesIt: true) { w in
            try (dump + garbage).write(to: URL(fileURLWithPath: path(w, d)))
        })
        faults.append(Fault(name: "dump replaced by \(otherID)'s dump (renamed)", checks: otherSize == dump.count ? ["checksum"] : ["size"],
                            listSeesIt: otherSize != dump.count) { w in
            try FileManager.default.removeItem(atPath: path(w, d))
            try FileManager.default.moveItem(atPath: path(w, otherDump), toPath: path(w, d))
        })
        let sizeDelta = Int.random(in: 1...1000, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
        faults.append(Fault(name: "manifest compressed_bytes \(sizeDelta > 0 ? "+" : "")\(sizeDelta)", checks: ["size"], listSeesIt: true) { w in
            try self.editManifest(w, id) { $0["compressed_bytes"] = dump.count + sizeDelta }
        })
        let shaIndex = Int.random(in: 0..<64, using: &rng)
        faults.append(Fault(name: "manifest sha256 digit \(shaIndex) changed", checks: ["checksum"]) { w in
            try self.editManifest(w, id) { m in
                var hex = Array(m["sha256"] as? String ?? "")
                hex[shaIndex] = hex[shaIndex] == "0" ? "1" : "0"
                m["sha256"] = String(hex)
            }
        })
        let rowDelta = Int.random(in: 1...50, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
        faults.append(Fault(name: "manifest table_rows public.t \(rowDelta > 0 ? "+" : "")\(rowDelta) (size and sha256 intact)",
                            checks: ["row_counts"], loads: true) { w in
            try self.editManifest(w, id) { m in
                var rows = m["table_rows"] as? [String: Any] ?? [:]
                rows["public.t"] = 12000 + rowDelta
                m["table_rows"] = rows
            }
        })
        faults.append(Fault(name: "dump deleted", checks: ["files"], listSeesIt: true) { w in
            try FileManager.default.removeItem(atPath: path(w, d))
        })
        // Without a manifest there is no snapshot to restore: 1 (cannot be restored at all) or 2 (fails its checks).
        faults.append(Fault(name: "manifest deleted", checks: ["files"], restoreStatuses: [1, 2], listSeesIt: true) { w in
            try FileManager.default.removeItem(atPath: path(w, mf))
        })
        faults.append(Fault(name: "manifest replaced by \(otherID)'s manifest (renamed)", checks: ["manifest"], listSeesIt: true) { w in
            try FileManager.default.removeItem(atPath: path(w, mf))
            try FileManager.default.moveItem(atPath: path(w, otherManifest), toPath: path(w, mf))
        })
        for n in 1...3 {
            let length = Self.position(&rng, in: 64..<(dump.count - 64))
            faults.append(Fault(name: "resealed truncation \(n): \(length) of \(dump.count) bytes, size and sha256 updated",
                                checks: ["decompression"], loads: true) { w in
                try self.reseal(w, id, gz: Data(dump.prefix(length)), uncompressed: nil)
            })
        }
        var lines = text.components(separatedBy: "\n")
        let copyLine = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("COPY public.t ") }, "no COPY block for public.t")
        let copyEnd = try XCTUnwrap(lines[copyLine...].firstIndex(of: "\\."), "unterminated COPY block")
        let removedRow = Int.random(in: (copyLine + 1)..<copyEnd, using: &rng)
        lines.remove(at: removedRow)
        let rowRemoved = Data(lines.joined(separator: "\n").utf8)
        let rowRemovedGz = try gzip(rowRemoved)
        faults.append(Fault(name: "COPY row \(removedRow - copyLine) of public.t removed, recompressed and resealed", checks: ["row_counts"], loads: true) { w in
            try self.reseal(w, id, gz: rowRemovedGz, uncompressed: rowRemoved.count)
        })
        let trailer = try XCTUnwrap(text.range(of: Harness.dumpTrailer), "the dump has no trailer")
        let noTrailer = Data(text[..<trailer.lowerBound].utf8)
        let noTrailerGz = try gzip(noTrailer)
        faults.append(Fault(name: "pg_dump's trailer cut off, recompressed and resealed", checks: ["trailer"], loads: true) { w in
            try self.reseal(w, id, gz: noTrailerGz, uncompressed: noTrailer.count)
        })
        for (algorithm, fileSuffix) in [("zstd", ".sql.zst"), ("none", ".sql")] {
            faults.append(Fault(name: "gzip dump labelled \(algorithm) (renamed to \(fileSuffix), manifest edited)", checks: ["decompression"], loads: true) { w in
                try FileManager.default.moveItem(atPath: path(w, d), toPath: path(w, id + fileSuffix))
                try self.editManifest(w, id) { m in
                    m["file"] = id + fileSuffix
                    var c = m["compression"] as? [String: Any] ?? [:]
                    c["algorithm"] = algorithm
                    m["compression"] = c
                }
            })
        }

        var fingerprint = try Harness.fingerprint(db)
        var state = try Self.targetState(db)
        var injected = 0
        var restoreStatuses: [Int32: Int] = [:]
        for (n, fault) in faults.enumerated() {
            let context = "fault \(n + 1)/\(faults.count) [\(fault.name)]"
            let work = try copyOf(master)
            try fault.apply(work)
            injected += 1
            let before = Self.contents(work)

            if fault.listSeesIt {
                let list = try pgsnap(["list", "--json"], dir: work)
                XCTAssertEqual(list.status, 0, "\(context): list: \(list.stderr)")
                XCTAssertNotEqual(Self.listStatuses(list)[id], "good", "\(context): list calls the damaged snapshot good")
            }

            let v = try pgsnap(["verify", id], dir: work)
            XCTAssertEqual(v.status, 2, "\(context): verify must exit 2: \(v.stderr)")
            XCTAssertTrue(fault.checks.contains { v.stderr.contains("\($0) check failed") },
                          "\(context): verify must name the \(fault.checks.sorted().joined(separator: " or ")) check: \(v.stderr)")
            XCTAssertTrue(v.errorLines.allSatisfy { $0.hasPrefix("pgsnap: ") }, "\(context): verify stderr: \(v.stderr)")

            let r = try pgsnap(["restore", id, "--yes", "--dbname=\(db)"], dir: work)
            restoreStatuses[r.status, default: 0] += 1
            XCTAssertTrue(fault.restoreStatuses.contains(r.status),
                          "\(context): restore exited \(r.status), expected \(fault.restoreStatuses.sorted()): \(r.stderr)")
            XCTAssertTrue(r.errorLines.allSatisfy { $0.hasPrefix("pgsnap: ") }, "\(context): restore stderr: \(r.stderr)")
            XCTAssertTrue(r.errorLines.last?.contains(id) ?? false, "\(context): the refusal must name the snapshot: \(r.stderr)")

            if fault.loads {
                let now = try Harness.fingerprint(db)
                XCTAssertEqual(now, fingerprint, "\(context): the target's fingerprint changed")
                fingerprint = now
            }
            let nowState = try Self.targetState(db)
            XCTAssertEqual(nowState, state, "\(context): the target, or the set of databases (scratch? pre-restore?), changed")
            state = nowState
            assertUnchanged(work, before, context)
            try? FileManager.default.removeItem(atPath: work)
        }
        XCTAssertEqual(try Harness.fingerprint(db), fingerprint, "the target changed over the matrix")
        XCTAssertEqual(Self.scratchDatabases(), [], "scratch databases left behind")
        XCTAssertEqual(injected, 85)
        print("TortureInputTests: corruption matrix: \(injected) faults injected into copies of \(id) (\(dump.count) bytes); "
              + "restore exit statuses \(restoreStatuses.sorted { $0.key < $1.key }.map { "\($0.key)x\($0.value)" }.joined(separator: " "))")
    }

    // MARK: - 6. Hostile input

    /// Fault: labels and ids with `../`, `/`, control characters (\u{1}, \u{7f}, ESC sequences; NUL
    /// itself cannot be passed: execve's argv strings end at the first NUL, so Process cannot send
    /// one), newlines, quotes, `$(touch …)`, backticks, `;` and `|`, 10,000 characters, empty, a
    /// leading `-` or `.`, `..`, non-ASCII; given to every command that takes a label or an id.
    ///
    /// Expected: exit 64, one `pgsnap: ` line on stderr without the control characters, nothing on
    /// stdout, no directory or file created anywhere, nothing executed. Ids that are well-formed but
    /// match nothing (percent-encoded `../`) are exit 1, one line, and change nothing.
    func testHostileLabelsAndIdsAreUsageErrorsThatTouchNothing() throws {
        var rng = makeRNG()
        let db = "ti_h_" + suffix
        try createDatabase(db, sql: "CREATE TABLE t AS SELECT 1 AS x")
        let token = "tq" + Self.token(&rng, 10)
        let pwned = "/tmp/pgsnap-pwned-\(UUID().uuidString)"
        let ran = "/tmp/pgsnap-guard-ran-\(UUID().uuidString)"
        let parent = try makeDir()
        let absent = parent + "/snapshots"
        let empty = try makeDir()
        let hostile: [String] = [
            "../\(token)", "../../\(token)/x", "a/\(token)", "/\(token)", "\(token)/", ".", "..",
            "\(token)\u{01}x", "\(token)\u{7F}x", "\(token)\u{1B}[2J\u{1B}]0;owned\u{07}",
            "\(token)\nsecond line", "\(token)\r\nx", "\(token)'q", "\(token)\"q",
            "$(touch \(pwned))", "`touch \(pwned)`", "\(token);touch \(pwned)", "\(token)|touch \(pwned)",
            String(repeating: "A", count: 10_000), "", " \(token)", "\(token) x", "-\(token)", "données\(token)",
        ]
        let labelOnly = [".\(token)", "\(token)..x", String(repeating: "a", count: 65), "%2e%2e%2f\(token)"]

        // Labels: backup (the directory must not even be created), in both option spellings.
        for (n, value) in (hostile + labelOnly).enumerated() {
            let context = "label #\(n) \(String(value.prefix(30)).debugDescription)"
            assertRefused(try pgsnap(["backup", "--dbname=\(db)", "--label=\(value)"], dir: absent), [64], context)
            if !value.hasPrefix("-") && !value.isEmpty {
                assertRefused(try pgsnap(["backup", "--dbname=\(db)", "--label", value], dir: absent), [64], context)
            }
        }
        // Ids: verify, restore and show, in an existing empty directory.
        for (n, value) in hostile.enumerated() {
            let context = "id #\(n) \(String(value.prefix(30)).debugDescription)"
            assertRefused(try pgsnap(["verify", value], dir: empty), [64], context)
            assertRefused(try pgsnap(["restore", value, "--yes", "--dbname=\(db)"], dir: empty), [64], context)
            assertRefused(try pgsnap(["show", value], dir: empty), [64], context)
        }
        // A seeded sample through the other commands, with no directory at all.
        var sample = hostile
        sample.shuffle(using: &rng)
        for value in sample.prefix(6) {
            let context = "sampled \(String(value.prefix(30)).debugDescription)"
            assertRefused(try pgsnap(["guard", "--dbname=\(db)", "--label=\(value)", "--", "/usr/bin/touch", ran], dir: absent), [64], context)
            assertRefused(try pgsnap(["restore", "--label=\(value)", "--dbname=\(db)", "--yes"], dir: absent), [64], context)
            assertRefused(try pgsnap(["diff", value, "--dbname=\(db)"], dir: absent), [64], context)
            assertRefused(try pgsnap(["verify", value, "--restore-test", "--dbname=\(db)"], dir: empty), [64], context)
            assertRefused(try pgsnap(["show", value], dir: absent), [64], context)
            assertRefused(try pgsnap(["restore", value, "--yes", "--dbname=\(db)"], dir: absent), [64], context)
        }
        // A usage error is found before any I/O (STYLE.md: validate() before anything is touched), so a
        // missing directory must not turn a malformed id into "directory does not exist" (exit 1).
        assertRefused(try pgsnap(["verify", "../../etc/passwd"], dir: absent), [64], "verify of a malformed id with no backup directory")

        // Well-formed ids that match nothing: exit 1, one line; the real snapshot and its files untouched.
        let real = try makeDir()
        let realID = try backup(["--dbname=\(db)"], dir: real)
        let realFiles = Self.contents(real)
        for value in ["%2e%2e%2f%2e%2e%2f\(token)", "..%2f\(token)", ".\(token)", "\(token)..x", "\(realID)%00"] {
            for args in [["verify", value], ["show", value], ["restore", value, "--yes", "--dbname=\(db)"]] {
                let r = try pgsnap(args, dir: real)
                assertRefused(r, [1], "unknown id \(value)")
                XCTAssertTrue(r.stderr.contains("No snapshot with id"), r.stderr)
            }
        }
        assertUnchanged(real, realFiles, "unknown ids")

        XCTAssertEqual(Harness.entries(parent), [], "a refused command created \(absent) or wrote beside it")
        XCTAssertEqual(Harness.entries(empty), [], "a refused command wrote into the empty backup directory")
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "a label or id was run by a shell")
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran), "guard ran its command despite a usage error")
        let cwd = FileManager.default.currentDirectoryPath
        for place in Set(["/", "/tmp", NSTemporaryDirectory(), cwd, (parent as NSString).deletingLastPathComponent]) {
            let leaked = Harness.entries(place).filter { $0.contains(token) }
            XCTAssertEqual(leaked, [], "files named after hostile input in \(place)")
        }
    }

    /// Fault: databases whose names hold a space, a quote, a double quote, non-ASCII, `%`, `/`, a
    /// leading `-` and a leading `..` (created with quoted identifiers), each with an awkwardly named
    /// table too.
    ///
    /// Expected: `backup --dbname=<name>` works; the id holds no `/` and starts with neither `-` nor
    /// `.`; every file lands in the backup directory and nowhere else; `list --json` and `show` give
    /// the real name, `list --database <name>` finds exactly it; verify passes; diff works;
    /// `restore <id> --target "<name>_copy"` gives an identical copy; for two of them a restore in
    /// place (`--yes`) works and keeps `<name>_pre_restore_<time>`.
    func testAwkwardDatabaseNamesBackUpListVerifyAndRestore() throws {
        let names = ["my db_\(suffix)", "it's_\(suffix)", "données_\(suffix)", "-leading_\(suffix)", "say \"hi\"_\(suffix)",
                     "100%_\(suffix)", "a/b_\(suffix)", ".._\(suffix)"]
        let replaceInPlace: Set<String> = [names[0], names[3]]
        let parent = try makeDir()
        let dir = parent + "/snapshots"
        for name in names {
            try createDatabase(name, sql: """
                CREATE TABLE items AS SELECT i, md5(i::text) AS h FROM generate_series(1, 500) i;
                CREATE TABLE "Ödd ""quoted"" table" (v text);
                INSERT INTO "Ödd ""quoted"" table" VALUES ('x'), (E'tab\\there');
                """)
        }
        for name in names {
            let context = "database \(name.debugDescription)"
            let id = try backup(["--dbname=\(name)"], dir: dir)
            XCTAssertFalse(id.contains("/"), "\(context): id \(id) contains '/'")
            XCTAssertFalse(id.hasPrefix("-") || id.hasPrefix("."), "\(context): id \(id) starts with '-' or '.'")
            XCTAssertTrue(id.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }, "\(context): id \(id.debugDescription)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: Harness.dumpPath(dir: dir, id: id)), "\(context): no dump \(id).sql.gz")
            XCTAssertTrue(FileManager.default.fileExists(atPath: Harness.manifestPath(dir: dir, id: id)), "\(context): no manifest")

            let list = try pgsnap(["list", "--json"], dir: dir)
            XCTAssertEqual(list.status, 0, list.stderr)
            let rows = (try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8))) as? [[String: Any]] ?? []
            let row = rows.first { $0["id"] as? String == id }
            XCTAssertEqual(row?["database"] as? String, name, "\(context): list shows another name")
            XCTAssertEqual(row?["status"] as? String, "good", context)
            let filtered = try pgsnap(["list", "--json", "--database=\(name)"], dir: dir)
            XCTAssertEqual(Array(Self.listStatuses(filtered).keys), [id], "\(context): list --database: \(filtered.stdout) \(filtered.stderr)")
            let show = try pgsnap(["show", id, "--json"], dir: dir)
            XCTAssertEqual(show.status, 0, show.stderr)
            XCTAssertEqual(((try? JSONSerialization.jsonObject(with: Data(show.stdout.utf8))) as? [String: Any])?["database"] as? String, name, context)

            let verify = try pgsnap(["verify", id], dir: dir)
            XCTAssertEqual(verify.status, 0, "\(context): verify: \(verify.stderr)")
            let diff = try pgsnap(["diff", id, "--dbname=\(name)"], dir: dir)
            XCTAssertEqual(diff.status, 0, "\(context): diff: \(diff.stderr)")
            XCTAssertTrue(diff.stdout.contains("live database \"\(name)\""), "\(context): diff: \(diff.stdout)")

            let copy = name + "_copy"
            let restore = try pgsnap(["restore", id, "--target=\(copy)"], dir: dir)
            XCTAssertEqual(restore.status, 0, "\(context): restore --target: \(restore.stderr)")
            XCTAssertEqual(try Harness.rowCounts(copy), try Harness.rowCounts(name), "\(context): the copy differs")
            XCTAssertEqual(try Harness.rowCounts(copy)["public.\"Ödd \"\"quoted\"\" table\""], 2, context)

            if replaceInPlace.contains(name) {
                try Harness.psql(name, "DELETE FROM items WHERE i > 100")
                let inPlace = try pgsnap(["restore", id, "--yes", "--dbname=\(name)"], dir: dir)
                XCTAssertEqual(inPlace.status, 0, "\(context): restore in place: \(inPlace.stderr)")
                XCTAssertEqual(try Harness.rowCounts(name)["public.items"], 500, context)
                let kept = try Self.allDatabases().filter { $0.hasPrefix(name + "_pre_restore_") }
                XCTAssertEqual(kept.count, 1, "\(context): previous database kept: \(kept)")
                if let k = kept.first { XCTAssertEqual(try Harness.rowCounts(k)["public.items"], 100, context) }
            }
        }
        XCTAssertEqual(Harness.entries(parent), ["snapshots"], "files outside the backup directory")
        for f in Harness.entries(dir) where f != ".pgsnap.lock" {
            XCTAssertFalse(f.hasPrefix("-") || f.hasPrefix("."), "file name \(f)")
            XCTAssertEqual(Harness.permissions(dir + "/" + f), 0o600, f)
        }
        XCTAssertEqual(Self.scratchDatabases(), [])
    }

    /// Fault: connection strings with odd escapes. Good ones: key=value with a quoted socket path and
    /// a quoted name with a space; a URI with a percent-encoded name and socket directory; a TCP URI
    /// with a percent-encoded quote; spaces around `=`; a backslash-escaped quote unquoted.
    /// Malformed ones: unterminated quote, port 99999 and 0 and non-numeric (with a password in the
    /// URI), `=x`, unterminated IPv6, a query parameter without `=`, bad percent-encoding, a keyword
    /// with `-`, an unterminated password value.
    ///
    /// Expected: the good ones back up the right database; the malformed ones exit 64 with one line
    /// from every command that connects, echo no password, create no directory, run nothing.
    func testOddConnectionStrings() throws {
        var rng = makeRNG()
        let myDB = "my db_\(suffix)", quoteDB = "it's_\(suffix)"
        try createDatabase(myDB, sql: "CREATE TABLE t AS SELECT 1 AS x")
        try createDatabase(quoteDB, sql: "CREATE TABLE t AS SELECT 2 AS x")
        let socket = Harness.require("PGHOST"), tcp = Harness.tcpPort
        let dir = try makeDir()
        let good: [(String, String)] = [
            ("host=\(Self.kv(socket)) dbname=\(Self.kv(myDB))", myDB),
            ("postgres:///\(Self.pct(myDB))?host=\(Self.pct(socket))", myDB),
            ("postgresql://postgres@127.0.0.1:\(tcp)/\(Self.pct(quoteDB))", quoteDB),
            ("dbname = \(Self.kv(quoteDB))   host = \(socket)", quoteDB),
            ("dbname=it\\'s_\(suffix) host=\(socket)", quoteDB),
        ]
        for (conn, expected) in good {
            let id = try backup(["--dbname", conn], dir: dir)
            XCTAssertEqual(try Harness.manifest(dir: dir, id: id)["database"] as? String, expected, "--dbname \(conn)")
            let v = try pgsnap(["verify", id], dir: dir)
            XCTAssertEqual(v.status, 0, "--dbname \(conn): verify: \(v.stderr)")
        }

        let pw = "pw" + Self.token(&rng, 10)
        let parent = try makeDir()
        let absent = parent + "/snapshots"
        let marker = "/tmp/pgsnap-guard-ran-\(UUID().uuidString)"
        let malformed = [
            "host='unterminated", "postgres://u:\(pw)@h:99999/db", "=x", "postgres://[::1/db", "postgres://h/db?sslmode",
            "postgres://h/%zz", "dbname=x bad-key=1", "postgres://u:\(pw)@h:0/db", "postgres://u:\(pw)@h:port/db",
            "dbname='x' password='\(pw)", "postgres://u:\(pw)@h/db?=v",
        ]
        for conn in malformed {
            for args in [["backup", "--dbname", conn], ["preflight", "--dbname", conn], ["diff", "latest", "--dbname", conn],
                         ["restore", "latest", "--target", "x", "--dbname", conn], ["guard", "--dbname", conn, "--", "/usr/bin/touch", marker]] {
                let r = try pgsnap(args, dir: absent)
                assertRefused(r, [64], "malformed \(conn.debugDescription)")
                XCTAssertFalse(r.stderr.contains(pw), "\(r.shown) echoes the password: \(r.stderr)")
            }
        }
        for port in ["99999", "abc", "", "0", "-1"] {
            assertRefused(try pgsnap(["backup", "--dbname=\(myDB)", "--port=\(port)"], dir: absent), [64], "--port \(port.debugDescription)")
        }
        XCTAssertEqual(Harness.entries(parent), [], "a usage error created the backup directory")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "guard ran its command despite a usage error")
    }

    /// Fault: `--dir` that is a regular file (for every command that reads the directory), a symlink to
    /// a directory elsewhere, a dangling symlink, a symlink loop, an unwritable (0500) directory, and
    /// an empty path.
    ///
    /// Expected: a file is exit 1 naming "not a directory", file untouched; a symlink to a directory
    /// is allowed (backup, list, verify, restore work and the files land in the target, the link stays
    /// a link); dangling or looping links are exit 1 and nothing is created at the far end; `--dir ''`
    /// is 64. An unwritable directory is exit 1 and stays empty, except as root: root bypasses
    /// permission bits, so there the backup succeeds and that is asserted as what happens.
    func testHostileBackupDirectories() throws {
        let db = "ti_d_" + suffix
        try createDatabase(db, sql: "CREATE TABLE t AS SELECT i FROM generate_series(1, 100) i")
        let root = try makeDir()

        let file = root + "/plain-file"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))
        for args in [["list"], ["verify", "--all"], ["verify", "latest"], ["prune"], ["check"], ["show", "latest"],
                     ["restore", "latest", "--dbname=\(db)", "--yes"], ["diff", "latest", "--dbname=\(db)"], ["backup", "--dbname=\(db)"]] {
            let r = try pgsnap(args + ["--dir", file], dir: nil)
            assertRefused(r, [1], "--dir regular file")
            XCTAssertTrue(r.stderr.contains("not a directory"), "\(r.shown): \(r.stderr)")
        }
        let preflight = try pgsnap(["preflight", "--dbname=\(db)", "--dir", file], dir: nil)
        XCTAssertEqual(preflight.status, 2, "preflight must fail with a regular file as --dir: \(preflight.stderr)")
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "keep me")

        let elsewhere = try makeDir()
        let link = root + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: elsewhere)
        let id = try backup(["--dbname=\(db)", "--dir", link], dir: nil)
        XCTAssertEqual(Set(Harness.snapshotFiles(elsewhere)), [id + ".sql.gz", id + ".manifest.json"], "files must land in the link's target")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), elsewhere, "the link must stay a link")
        let listed = try pgsnap(["list", "--json", "--dir", link], dir: nil)
        XCTAssertEqual(Self.listStatuses(listed), [id: "good"], listed.stderr)
        XCTAssertEqual(try pgsnap(["verify", id, "--dir", link], dir: nil).status, 0)
        let copy = db + "_copy"
        let restored = try pgsnap(["restore", id, "--target=\(copy)", "--dir", link], dir: nil)
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try Harness.rowCounts(copy), ["public.t": 100])

        let farEnd = root + "/nowhere/deeper"
        let dangling = root + "/dangling"
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: farEnd)
        let loop = root + "/loop"
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: loop)
        for path in [dangling, loop] {
            for args in [["backup", "--dbname=\(db)"], ["list"], ["prune"]] {
                let r = try pgsnap(args + ["--dir", path], dir: nil)
                assertRefused(r, [1], "--dir \(path)")
                XCTAssertTrue(r.stderr.contains(path), "\(r.shown) should name \(path): \(r.stderr)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/nowhere"), "the dangling link's target was created")

        assertRefused(try pgsnap(["backup", "--dbname=\(db)", "--dir", ""], dir: nil), [64], "--dir ''")

        let readOnly = root + "/read-only"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: false)
        chmod(readOnly, 0o500)
        let r = try pgsnap(["backup", "--dbname=\(db)", "--dir", readOnly], dir: nil)
        if geteuid() == 0 {
            // Root is not bound by permission bits (CAP_DAC_OVERRIDE): access(W_OK) says yes and the write works.
            XCTAssertEqual(r.status, 0, "as root the 0500 directory is writable: \(r.stderr)")
            XCTAssertEqual(Harness.snapshotFiles(readOnly).count, 2, "\(Harness.entries(readOnly))")
            print("TortureInputTests: running as root, so a chmod 500 --dir is writable; the backup succeeded there (observed, as expected for root)")
        } else {
            assertRefused(r, [1], "--dir chmod 500")
            XCTAssertTrue(r.stderr.contains("not writable"), r.stderr)
            XCTAssertEqual(Harness.entries(readOnly), [])
        }
    }

    /// Fault: manifests that are hostile: not JSON, empty, cut in half, 20 MB, wrong types
    /// (`"compressed_bytes": "x"`, `"table_rows": []`, 1e300), impossible values (negative size or
    /// count, non-hex sha256), an unknown format_version, a `file` of `../../etc/passwd`, the id of
    /// another snapshot, an unparsable date, a top-level array and null, 100,000 levels of nesting, a
    /// missing field, invalid UTF-8, a raw NUL, and a table_rows key `public.t; DROP DATABASE <victim>`.
    ///
    /// Expected: `list` shows each as invalid_manifest, never good; `verify <id>` and `verify --all`
    /// exit 2 naming the manifest check; `restore` refuses with 2; show, check and prune neither crash
    /// nor delete (prune leaves them for a person even when they are months old); no file changes;
    /// the victim database and the target are untouched.
    func testHostileManifestsAreInvalidNeverGoodAndHarmless() throws {
        let db = "ti_m_" + suffix, victim = "ti_victim_" + suffix
        try createDatabase(db, sql: "CREATE TABLE t AS SELECT i, md5(i::text) AS a FROM generate_series(1, 100) i")
        try createDatabase(victim, sql: "CREATE TABLE keep AS SELECT 42 AS x")
        let master = try makeDir()
        let base = try backup(["--dbname=\(db)"], dir: master)
        let baseManifest = try Harness.manifest(dir: master, id: base)
        let dump = try Harness.bytes(Harness.dumpPath(dir: master, id: base))

        /// The base manifest as if it belonged to `id`, then edited.
        func manifest(_ id: String, _ edit: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
            var m = baseManifest
            m["id"] = id
            m["file"] = id + ".sql.gz"
            edit(&m)
            return try Self.json(m)
        }
        let variants: [(String, (String) throws -> Data)] = [
            ("not JSON", { _ in Data("this is not json {".utf8) }),
            ("empty file", { _ in Data() }),
            ("JSON cut in half", { id in let full = try manifest(id); return Data(full.prefix(full.count / 2)) }),
            ("20 MB", { id in try manifest(id) { $0["padding"] = String(repeating: "x", count: 20 << 20) } }),
            ("compressed_bytes \"x\"", { id in try manifest(id) { $0["compressed_bytes"] = "x" } }),
            ("table_rows []", { id in try manifest(id) { $0["table_rows"] = [Any]() } }),
            ("compressed_bytes 1e300", { id in try manifest(id) { $0["compressed_bytes"] = 1e300 } }),
            ("compressed_bytes -1", { id in try manifest(id) { $0["compressed_bytes"] = -1 } }),
            ("negative row count", { id in try manifest(id) { $0["table_rows"] = ["public.t": -5] } }),
            ("sha256 not hex", { id in try manifest(id) { $0["sha256"] = String(repeating: "z", count: 64) } }),
            ("format_version 3 (newer than this pgsnap)", { id in try manifest(id) { $0["format_version"] = 3 } }),
            ("format_version 2 but plain", { id in try manifest(id) { $0["format_version"] = 2; $0["files"] = [["name": "toc.dat", "bytes": 0, "sha256": String(repeating: "0", count: 64)]] } }),
            ("file ../../etc/passwd", { id in try manifest(id) { $0["file"] = "../../../../../../etc/passwd" } }),
            ("id of another snapshot", { id in try manifest(id) { $0["id"] = base } }),
            ("created_at yesterday", { id in try manifest(id) { $0["created_at"] = "yesterday" } }),
            ("sha256 missing", { id in try manifest(id) { $0["sha256"] = nil } }),
            ("top-level array", { _ in Data("[1, 2, 3]".utf8) }),
            ("null", { _ in Data("null".utf8) }),
            ("100,000 levels of nesting", { _ in Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8) }),
            ("invalid UTF-8 in the label", { id in
                let text = try manifest(id) { $0["label"] = "LABELPLACEHOLDER" }
                var bytes = [UInt8](text)
                let needle = [UInt8]("LABELPLACEHOLDER".utf8)
                let at = (0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle }!
                bytes.replaceSubrange(at..<(at + needle.count), with: [0xFF, 0xFE, 0xC0, 0x80])
                return Data(bytes)
            }),
            ("raw NUL byte", { id in var d = try manifest(id); d.insert(0, at: 1); return d }),
            ("table_rows key 'public.t; DROP DATABASE victim'", { id in
                try manifest(id) { $0["table_rows"] = ["public.t": 100, "public.t; DROP DATABASE \(Self.ident(victim))": 1] }
            }),
        ]
        let zoo = try makeDir()
        var ids: [(id: String, variant: String)] = []
        for (n, v) in variants.enumerated() {
            let vid = base + "_v\(n + 1)"
            try dump.write(to: URL(fileURLWithPath: Harness.dumpPath(dir: zoo, id: vid)))
            try v.1(vid).write(to: URL(fileURLWithPath: Harness.manifestPath(dir: zoo, id: vid)))
            ids.append((vid, v.0))
        }
        let files = Self.contents(zoo)
        let state = try Self.targetState(db)

        let list = try pgsnap(["list", "--json"], dir: zoo)
        XCTAssertEqual(list.status, 0, list.stderr)
        let statuses = Self.listStatuses(list)
        for (vid, variant) in ids {
            XCTAssertEqual(statuses[vid], "invalid_manifest", "manifest '\(variant)': list says \(statuses[vid] ?? "nothing")")
        }
        let text = try pgsnap(["list"], dir: zoo)
        XCTAssertEqual(text.status, 0, text.stderr)
        for l in text.stdout.split(separator: "\n") where l.contains(base) {
            XCTAssertFalse(l.contains(" good"), "list shows a hostile manifest as good: \(l)")
        }
        let all = try pgsnap(["verify", "--all", "--json"], dir: zoo)
        XCTAssertEqual(all.status, 2, all.stderr)
        let results = (try? JSONSerialization.jsonObject(with: Data(all.stdout.utf8))) as? [[String: Any]] ?? []
        for (vid, variant) in ids {
            let result = results.first { $0["id"] as? String == vid }
            XCTAssertEqual(result?["failed_check"] as? String, "manifest", "manifest '\(variant)': verify --all: \(String(describing: result))")
        }
        for (vid, variant) in ids {
            let v = try pgsnap(["verify", vid], dir: zoo)
            XCTAssertEqual(v.status, 2, "manifest '\(variant)': verify: \(v.stderr)")
            XCTAssertTrue(v.stderr.contains("manifest check failed"), "manifest '\(variant)': \(v.stderr)")
            assertRefused(try pgsnap(["restore", vid, "--yes", "--dbname=\(db)"], dir: zoo), [2], "manifest '\(variant)': restore")
            let show = try pgsnap(["show", vid], dir: zoo)
            XCTAssertNotEqual(show.status, 0, "manifest '\(variant)': show: \(show.stdout)")
        }
        let check = try pgsnap(["check", "--database=\(db)"], dir: zoo)
        XCTAssertEqual(check.status, 2, "no good snapshot: check must fail: \(check.stderr)")
        let later = ["PGSNAP_NOW": Self.iso(Date().addingTimeInterval(200 * 86400))]
        for args in [["prune", "--dry-run", "--json"], ["prune", "--json"]] {
            let p = try pgsnap(args, dir: zoo, env: later)
            XCTAssertEqual(p.status, 0, "\(p.shown): \(p.stderr)")
            let actions = Self.pruneActions(p)
            for (vid, variant) in ids {
                XCTAssertEqual(actions[vid], "keep", "\(p.shown): a snapshot with an unreadable manifest ('\(variant)') is left for a person")
            }
        }
        assertUnchanged(zoo, files, "hostile manifests")
        XCTAssertEqual(try Self.targetState(db), state, "the target changed")
        XCTAssertEqual(try Harness.psql(victim, "SELECT x FROM keep"), "42", "the victim database was touched")
        XCTAssertEqual(Self.scratchDatabases(), [])
    }

    /// Fault: the newest snapshot's manifest is damaged only in table_rows (a negative count, a wrong
    /// type, a name that is not a table name) while an older, good snapshot is past the retention age.
    ///
    /// Expected: every command judges that manifest alike. list, verify and restore reject it, so
    /// check must not count it as a fresh good snapshot (exit 2: the newest good one is 40 days old)
    /// and prune must keep the older snapshot, the newest good one and the only restorable copy.
    func testPruneAndCheckNeverTrustAManifestThatListAndRestoreReject() throws {
        let db = "ti_pc_" + suffix
        try createDatabase(db, sql: "CREATE TABLE t AS SELECT i FROM generate_series(1, 100) i")
        let damages: [(String, Any)] = [("a negative row count", ["public.t": -1]), ("table_rows []", [Any]()),
                                        ("a table name that is SQL", ["public.t; DROP TABLE t": 1])]
        for (n, (what, rows)) in damages.enumerated() {
            let context = "newest manifest with \(what)"
            let dir = try makeDir()
            let older = try backup(["--dbname=\(db)"], dir: dir)
            let newer = try backup(["--dbname=\(db)"], dir: dir)
            try editManifest(dir, older) { $0["created_at"] = Self.iso(Date().addingTimeInterval(-40 * 86400)) }
            try editManifest(dir, newer) { $0["table_rows"] = rows }
            let list = try pgsnap(["list", "--json"], dir: dir)
            XCTAssertEqual(Self.listStatuses(list), [older: "good", newer: "invalid_manifest"], "\(context): \(list.stdout)")
            let v = try pgsnap(["verify", newer], dir: dir)
            XCTAssertTrue(v.status == 2 && v.stderr.contains("manifest check failed"), "\(context): verify: \(v.stderr)")

            let check = try pgsnap(["check", "--database=\(db)"], dir: dir)
            XCTAssertEqual(check.status, 2, "\(context): check must not report the rejected snapshot as fresh and good: \(check.stderr)")
            let prune = try pgsnap(["prune"], dir: dir)
            XCTAssertEqual(prune.status, 0, prune.stderr)
            XCTAssertTrue(FileManager.default.fileExists(atPath: Harness.manifestPath(dir: dir, id: older))
                          && FileManager.default.fileExists(atPath: Harness.dumpPath(dir: dir, id: older)),
                          "\(context): prune deleted \(older), the only restorable snapshot: \(prune.stderr)")
            // 'latest' is the rejected one: refused, naming the older snapshot, which restores on purpose.
            let latest = try pgsnap(["restore", "latest", "--dbname=\(db)", "--target=\(db)_copy\(n)"], dir: dir)
            XCTAssertEqual(latest.status, 2, "\(context): 'restore latest' must refuse the rejected newest snapshot: \(latest.stderr)")
            XCTAssertTrue(latest.stderr.contains("pgsnap restore \(older)"), "\(context): must name the older snapshot: \(latest.stderr)")
            // Told the server, the command says it too: pasted elsewhere it must not reach another cluster.
            let host = Harness.env["PGHOST"] ?? "", port = Harness.env["PGPORT"] ?? ""
            let told = try pgsnap(["restore", "latest", "--dbname=\(db)", "-h", host, "-p", port, "--target=\(db)_copy\(n)"], dir: dir)
            XCTAssertEqual(told.status, 2, told.stderr)
            XCTAssertTrue(told.stderr.contains("pgsnap restore \(older) --dir \(dir) -h \(host) -p \(port) --target"), "\(context): \(told.stderr)")
            let restore = try pgsnap(["restore", older, "--dbname=\(db)", "--target=\(db)_copy\(n)"], dir: dir)
            XCTAssertEqual(restore.status, 0, "\(context): after prune, the older snapshot must still restore: \(restore.stderr)")
        }
    }

    /// Fault: manifests that parse but carry hostile text: a table_rows key that is a valid quoted
    /// identifier holding `; DROP DATABASE`, an owner, settings and comment with SQL in them, and a label
    /// with a newline, a forged "good" row and an ANSI escape.
    ///
    /// Expected: the injected SQL is data, never code (the victim database survives, the target is not
    /// created on failure, no scratch database is left); the quoted-key manifest fails verify's
    /// row_counts check; `list` and `show` print one line per snapshot and no escape sequence, so a
    /// manifest cannot forge a good snapshot on the screen.
    func testManifestTextIsNeverCodeNorScreenControl() throws {
        let db = "ti_x_" + suffix, victim = "ti_xv_" + suffix
        try createDatabase(db, sql: "CREATE TABLE t AS SELECT i FROM generate_series(1, 50) i")
        try createDatabase(victim, sql: "CREATE TABLE keep AS SELECT 42 AS x")
        let dir = try makeDir()
        let id = try backup(["--dbname=\(db)"], dir: dir)
        let original = try Harness.bytes(Harness.manifestPath(dir: dir, id: id))
        func restoreManifest() throws { try original.write(to: URL(fileURLWithPath: Harness.manifestPath(dir: dir, id: id))) }
        func victimIntact(_ context: String) throws {
            XCTAssertEqual(try Harness.psql(victim, "SELECT x FROM keep"), "42", "\(context): the victim database was touched")
            XCTAssertEqual(Self.scratchDatabases(), [], "\(context): scratch database left")
        }

        try editManifest(dir, id) { m in
            var rows = m["table_rows"] as? [String: Any] ?? [:]
            rows["\"public\".\"t; DROP DATABASE \(victim)\""] = 1
            m["table_rows"] = rows
        }
        let v = try pgsnap(["verify", id], dir: dir)
        XCTAssertEqual(v.status, 2, v.stderr)
        XCTAssertTrue(v.stderr.contains("row_counts check failed"), v.stderr)
        let target1 = db + "_copy1"
        let r1 = try pgsnap(["restore", id, "--target=\(target1)"], dir: dir)
        XCTAssertNotEqual(r1.status, 0, "a manifest naming a table the dump lacks must not restore: \(r1.stderr)")
        XCTAssertFalse(try Self.allDatabases().contains(target1), "the failed restore created its target")
        try victimIntact("quoted table_rows key")

        try restoreManifest()
        try editManifest(dir, id) { m in
            var p = m["database_properties"] as? [String: Any] ?? [:]
            p["owner"] = "nobody\"; DROP DATABASE \"\(victim)\"; --"
            m["database_properties"] = p
        }
        let r2 = try pgsnap(["restore", id, "--target=\(db)_copy2"], dir: dir)
        XCTAssertEqual(r2.status, 1, "an owner that does not exist must refuse: \(r2.stderr)")
        try victimIntact("owner")

        try restoreManifest()
        let comment = "x'); DROP DATABASE \(victim); --"
        try editManifest(dir, id) { m in
            var p = m["database_properties"] as? [String: Any] ?? [:]
            p["settings"] = ["work_mem=64kB'; DROP DATABASE \(victim); --"]
            p["comment"] = comment
            m["database_properties"] = p
        }
        let target3 = db + "_copy3"
        let r3 = try pgsnap(["restore", id, "--target=\(target3)"], dir: dir)
        XCTAssertTrue([0, 1].contains(r3.status), r3.stderr)
        if r3.status == 0 {
            XCTAssertEqual(try Harness.psql("postgres", "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = \(Self.literal(target3))"),
                           comment, "the comment is stored as text")
        } else {
            XCTAssertFalse(try Self.allDatabases().contains(target3), "the failed restore created its target")
        }
        try victimIntact("settings and comment")

        try restoreManifest()
        let forged = "x\n\(db)_20991231T000000Z  good    2099-12-31 00:00:00  -      9.0 GiB  -\u{1B}[31m"
        try editManifest(dir, id) { $0["label"] = forged }
        let list = try pgsnap(["list"], dir: dir)
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertEqual(list.stdout.split(separator: "\n").count, 2,
                       "a manifest's label forges an extra row in list (header + 1 snapshot expected): \(list.stdout.debugDescription)")
        XCTAssertFalse(list.stdout.contains("\u{1B}"), "list prints a manifest's escape sequence: \(list.stdout.debugDescription)")
        let show = try pgsnap(["show", id], dir: dir)
        XCTAssertFalse(show.stdout.contains("\u{1B}"), "show prints a manifest's escape sequence: \(show.stdout.debugDescription)")
        XCTAssertFalse(show.stdout.split(separator: "\n").contains { $0.hasPrefix("\(db)_20991231") },
                       "show prints a forged line from the label: \(show.stdout.debugDescription)")
    }

    /// Fault: files in the backup directory that are not what their names say: the dump a symlink to
    /// a good copy elsewhere, the manifest a symlink to a good copy elsewhere, the dump a FIFO.
    ///
    /// Expected: links are never followed out of the directory (list: not good; verify: exit 2
    /// naming files; restore: 2); a FIFO is reported, not waited on: verify exits 2 within seconds
    /// (a FIFO that no one writes would otherwise block verify, and cron's verify with it, forever).
    func testLinksAndFifosInTheDirectoryAreNotFollowedNorWaitedOn() throws {
        let db = "ti_l_" + suffix
        try createDatabase(db, sql: "CREATE TABLE t AS SELECT i FROM generate_series(1, 50) i")
        let master = try makeDir()
        let id = try backup(["--dbname=\(db)"], dir: master)
        let outside = try makeDir()
        for f in [id + ".sql.gz", id + ".manifest.json"] {
            try FileManager.default.copyItem(atPath: master + "/" + f, toPath: outside + "/" + f)
        }
        for (name, status) in [(id + ".sql.gz", "manifest_without_dump"), (id + ".manifest.json", "dump_without_manifest")] {
            let w = try copyOf(master)
            try FileManager.default.removeItem(atPath: w + "/" + name)
            try FileManager.default.createSymbolicLink(atPath: w + "/" + name, withDestinationPath: outside + "/" + name)
            let before = Self.contents(w)
            let list = try pgsnap(["list", "--json"], dir: w)
            XCTAssertEqual(Self.listStatuses(list)[id], status, "\(name) as a symlink: \(list.stdout)")
            let v = try pgsnap(["verify", id], dir: w)
            XCTAssertEqual(v.status, 2, v.stderr)
            XCTAssertTrue(v.stderr.contains("files check failed"), "\(name) as a symlink: \(v.stderr)")
            assertRefused(try pgsnap(["restore", id, "--yes", "--dbname=\(db)"], dir: w), [2], "\(name) as a symlink")
            assertUnchanged(w, before, "\(name) as a symlink")
        }
        let w = try copyOf(master)
        try FileManager.default.removeItem(atPath: w + "/" + id + ".sql.gz")
        XCTAssertEqual(mkfifo(w + "/" + id + ".sql.gz", 0o600), 0)
        assertRefused(try pgsnap(["restore", id, "--yes", "--dbname=\(db)"], dir: w, timeout: 20), [2], "dump is a FIFO")
        let v = try pgsnap(["verify", id], dir: w, timeout: 10)
        XCTAssertFalse(v.hung, "verify of a snapshot whose dump is a FIFO blocked (open() waits for a writer; SIGTERM does not stop it)")
        if !v.hung {
            XCTAssertEqual(v.status, 2, v.stderr)
            XCTAssertTrue(v.stderr.contains("files check failed"), v.stderr)
        }
    }

    // MARK: - 7. Concurrency

    /// A database of a few hundred thousand rows (a restore takes seconds) and one snapshot of it,
    /// shared by the concurrency cases; dropped in the class tearDown.
    static var big: (db: String, dir: String, id: String, fingerprint: String)?

    func bigFixture() throws -> (db: String, dir: String, id: String, fingerprint: String) {
        if let b = Self.big { return b }
        let db = "ti_big_" + suffix
        try createDatabase(db, sql: """
            CREATE TABLE items AS SELECT i, md5(i::text) AS a, md5((i * 7)::text) AS b FROM generate_series(1, 300000) i;
            CREATE TABLE small (id int PRIMARY KEY, v text);
            INSERT INTO small VALUES (1, 'one'), (2, 'two');
            """, track: false)
        let dir = try Harness.tempDir()
        let id = try backup(["--dbname=\(db)"], dir: dir)
        let b = (db, dir, id, try Harness.fingerprint(db))
        Self.big = b
        return b
    }

    override class func tearDown() {
        if let b = big {
            for name in (try? allDatabases()) ?? [] where name == b.db || name.hasPrefix(b.db + "_") {
                dropDatabase(name)
            }
            try? FileManager.default.removeItem(atPath: b.dir)
            big = nil
        }
        super.tearDown()
    }

    static func holdsLockFile(_ pid: Int32, dir: String) -> Bool {
        let fds = "/proc/\(pid)/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + fd), target.hasSuffix("/.pgsnap.lock") {
                return true
            }
        }
        return false
    }

    static func mentions(_ text: String, pid: Int32) -> Bool {
        text.range(of: "pid=\(pid)([^0-9]|$)", options: .regularExpression) != nil
    }

    /// Fault: prune (and a restore) started while a backup holds the directory's shared lock; the backup
    /// is paused with SIGSTOP once its `.partial` file exists, so the overlap is certain.
    ///
    /// Expected: prune and restore exit 3 with one line naming the holder (its pid, "backup") and
    /// remove nothing, not even the running backup's `.partial`; `prune --wait` started meanwhile
    /// waits, then runs after the backup committed (it sees the new snapshot) and removes only what
    /// the policy says; the backup completes and verifies.
    func testPruneDuringABackupIsRefusedOrWaitsAndTheBackupSurvives() throws {
        let big = try bigFixture()
        let small = "ti_ps_" + suffix
        try createDatabase(small, sql: "CREATE TABLE t AS SELECT 1 AS x")
        let dir = try makeDir()
        let old = try backup(["--dbname=\(small)"], dir: dir)
        let newest = try backup(["--dbname=\(small)"], dir: dir)
        try editManifest(dir, old) { $0["created_at"] = Self.iso(Date().addingTimeInterval(-40 * 86400)) }

        var prune: Run?, restore: Run?
        var filesDuring: [String: Data] = [:], filesAfterRefusals: [String: Data] = [:]
        var backupPID: Int32 = 0
        var sawPartial = false, pruneWaited = false
        let waiting = Box<Run?>(nil), waitingPID = Box<Int32>(0)
        let waitingDone = DispatchGroup()
        let b = try pgsnap(["backup", "--dbname=\(big.db)"], dir: dir, watch: { pid in
            guard !sawPartial, Harness.entries(dir).contains(where: { $0.hasSuffix(".partial") }) else { return }
            sawPartial = true
            backupPID = pid
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            filesDuring = Self.contents(dir)
            prune = try? Self.execute(Harness.binary, ["prune"], env: ["PGSNAP_DIR": dir], timeout: 60)
            restore = try? Self.execute(Harness.binary, ["restore", newest, "--target=\(small)_copy"], env: ["PGSNAP_DIR": dir], timeout: 60)
            filesAfterRefusals = Self.contents(dir)
            waitingDone.enter()
            Thread {
                waiting.set(try? Self.execute(Harness.binary, ["prune", "--wait", "2m", "--json"], env: ["PGSNAP_DIR": dir], timeout: 180,
                                              watch: { waitingPID.set($0) }))
                waitingDone.leave()
            }.start()
            pruneWaited = Harness.poll(timeout: 30) { waitingPID.get != 0 && Self.holdsLockFile(waitingPID.get, dir: dir) }
            XCTAssertNil(waiting.get, "prune --wait finished while the backup held the lock")
        })
        XCTAssertTrue(sawPartial, "never saw the backup's .partial file")
        XCTAssertTrue(pruneWaited, "prune --wait never opened the lock file")
        XCTAssertEqual(b.status, 0, "the backup must complete: \(b.stderr)")
        let bigID = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let p = try XCTUnwrap(prune)
        assertRefused(p, [3], "prune during a backup")
        XCTAssertTrue(Self.mentions(p.stderr, pid: backupPID) && p.stderr.contains("backup"), "prune must name the holder (pid \(backupPID), backup): \(p.stderr)")
        let r = try XCTUnwrap(restore)
        assertRefused(r, [3], "restore during a backup")
        XCTAssertEqual(filesAfterRefusals, filesDuring, "a refused prune or restore changed the directory")
        XCTAssertTrue(filesDuring.keys.contains { $0.hasSuffix(".partial") } && filesDuring.keys.contains(old + ".manifest.json"))
        XCTAssertFalse(try Self.allDatabases().contains(small + "_copy"), "the refused restore created its target")

        XCTAssertEqual(waitingDone.wait(timeout: .now() + 180), .success, "prune --wait did not finish")
        let w = try XCTUnwrap(waiting.get)
        XCTAssertEqual(w.status, 0, "prune --wait: \(w.stderr)")
        let actions = Self.pruneActions(w)
        XCTAssertEqual(actions[bigID], "keep", "prune --wait must run after the backup committed and keep it: \(w.stdout)")
        XCTAssertEqual(actions[old], "remove", w.stdout)
        XCTAssertEqual(actions[newest], "keep", w.stdout)
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)),
                       [bigID + ".sql.gz", bigID + ".manifest.json", newest + ".sql.gz", newest + ".manifest.json"])
        let v = try pgsnap(["verify", bigID], dir: dir)
        XCTAssertEqual(v.status, 0, "the backup taken during the prunes must verify: \(v.stderr)")
    }

    /// Fault: two restores of the same snapshot onto the same existing target, started together.
    ///
    /// Expected: one exits 3 (one line naming the holder's restore), the other succeeds; the target
    /// ends up equal to the snapshot; exactly one `<db>_pre_restore_*` appears and holds the state
    /// from before; no scratch database is left.
    func testTwoRestoresOfOneTargetOneWinsOneIsLockedOut() throws {
        let big = try bigFixture()
        try Harness.psql(big.db, "DELETE FROM items WHERE i % 3 = 0; CREATE TABLE added_later (x int); INSERT INTO added_later VALUES (1)")
        let modified = try Harness.fingerprint(big.db)
        let previousBefore = Set(try Self.allDatabases().filter { $0.hasPrefix(big.db + "_pre_restore_") })

        let results = Box<[Run]>([])
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for _ in 0..<2 {
            done.enter()
            Thread {
                go.wait()
                if let r = try? Self.execute(Harness.binary, ["restore", big.id, "--yes", "--dbname=\(big.db)"], env: ["PGSNAP_DIR": big.dir], timeout: 300) {
                    results.update { $0.append(r) }
                }
                done.leave()
            }.start()
        }
        go.signal()
        go.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 320), .success, "the restores did not finish")
        let runs = results.get.sorted { $0.status < $1.status }
        XCTAssertEqual(runs.map(\.status), [0, 3], "one restore must win, the other be locked out: \(runs.map { "\($0.status): \($0.stderr)" })")
        for r in runs { assertNoCrash(r) }
        if runs.count == 2 {
            assertRefused(runs[1], [3], "the second restore")
            // Started together, the loser may look at the lock file before the winner has written who it
            // is (flock, then truncate and write): it may then name no one, but never anyone else.
            if runs[1].stderr.contains("pid=") {
                XCTAssertTrue(runs[1].stderr.contains("restore") && Self.mentions(runs[1].stderr, pid: runs[0].pid),
                              "the refusal names a holder other than the winning restore (pid \(runs[0].pid)): \(runs[1].stderr)")
            }
        }
        XCTAssertEqual(try Harness.fingerprint(big.db), big.fingerprint, "the target must equal the snapshot")
        let previous = Set(try Self.allDatabases().filter { $0.hasPrefix(big.db + "_pre_restore_") }).subtracting(previousBefore)
        XCTAssertEqual(previous.count, 1, "exactly one previous database: \(previous.sorted())")
        if let p = previous.first { XCTAssertEqual(try Harness.fingerprint(p), modified, "\(p) must hold the state from before") }
        XCTAssertEqual(Self.scratchDatabases(), [])
    }

    /// Fault: a backup, a `verify --restore-test` and a prune started while a restore holds the lock
    /// alone: each starts as soon as the restore's scratch database appears in pg_database, and the
    /// restore (a few hundred thousand rows) is checked to be still running afterwards.
    ///
    /// Expected: all three exit 3 with one line naming the restore; the backup leaves no file (not even
    /// a `.partial`); nothing in the directory changes; the restore completes and the target equals
    /// the snapshot.
    func testCommandsStartedDuringARestoreAreLockedOut() throws {
        let big = try bigFixture()
        let other = "ti_bo_" + suffix
        try createDatabase(other, sql: "CREATE TABLE t AS SELECT 1 AS x")
        try Harness.psql(big.db, "UPDATE small SET v = 'changed'")
        let files = Self.contents(big.dir)
        var during: [Run] = []
        var sawScratch = false, stillRestoring = false
        // --jobs 1: one psql session, slow enough for the overlap (the split load may finish first).
        let r = try pgsnap(["restore", big.id, "--yes", "--jobs", "1", "--dbname=\(big.db)"], dir: big.dir, watch: { pid in
            guard !sawScratch, !Self.scratchDatabases().isEmpty else { return }
            sawScratch = true
            // The backup runs against the restore as it is; the slower two with the restore paused
            // (SIGSTOP), so that it cannot finish under them.
            if let run = try? Self.execute(Harness.binary, ["backup", "--dbname=\(other)"], env: ["PGSNAP_DIR": big.dir], timeout: 60) {
                during.append(run)
            }
            stillRestoring = Procfs.isAlive(pid)
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            for args in [["verify", big.id, "--restore-test"], ["prune"]] {
                if let run = try? Self.execute(Harness.binary, args, env: ["PGSNAP_DIR": big.dir], timeout: 60) { during.append(run) }
            }
        })
        XCTAssertTrue(sawScratch, "never saw the restore's scratch database")
        XCTAssertTrue(stillRestoring, "the restore finished before the other commands ran: no overlap was tested")
        XCTAssertEqual(during.count, 3)
        for run in during {
            assertNoCrash(run)
            assertRefused(run, [3], "\(run.args.first ?? "") during a restore")
            XCTAssertTrue(run.stderr.contains("restore") && Self.mentions(run.stderr, pid: r.pid), "must name the restore (pid \(r.pid)): \(run.stderr)")
        }
        XCTAssertEqual(r.status, 0, "the restore must complete: \(r.stderr)")
        assertUnchanged(big.dir, files, "commands refused during a restore")
        XCTAssertEqual(try Harness.fingerprint(big.db), big.fingerprint, "the target must equal the snapshot")
        XCTAssertEqual(Self.scratchDatabases(), [])
    }

    // MARK: - 8. Secrets

    /// Descendants of `root` from one scan of /proc, following each process's ppid.
    static func descendantsByPPID(of root: Int32) -> [Int32] {
        let all = Procfs.snapshot()
        var children: [Int32: [Int32]] = [:]
        for e in all { children[e.ppid, default: []].append(e.pid) }
        var out: [Int32] = []
        var queue = [root]
        while let p = queue.popLast() {
            for c in children[p] ?? [] where !out.contains(c) {
                out.append(c)
                queue.append(c)
            }
        }
        return out
    }

    /// What was seen of one pgsnap run's descendants.
    struct Observation {
        var children: [(pid: Int32, exe: String, argv: [String], environ: [String])] = []
        var passfiles: Set<String> = []
        var modes: [(String, mode_t, mode_t)] = []
    }

    /// Fault: a role whose scram password holds `:@/'"\` and a space, given to pgsnap through
    /// PGPASSWORD, a URI (percent-encoded) and a key=value string; every command that connects over
    /// TCP (backup, verify --restore-test, restore to a new name and in place, guard with a command
    /// that succeeds and one that fails, preflight, diff) and the error paths (no such database, wrong
    /// password, unreachable port).
    ///
    /// Expected, sampled from /proc while each runs: no descendant has the password (or either half of
    /// it) in argv or environ, none has PGPASSWORD, each pg tool gets PGPASSFILE naming a 0600 file in
    /// a 0700 directory; at least one child is seen for the long-running commands; the password is in
    /// no stdout or stderr line, no file of the backup directory (dumps decompressed too); the
    /// passfile's directory is gone after each run and the private runtime directory is empty.
    func testPasswordsNeverLeakThroughArgvEnvironOutputOrFiles() throws {
        var rng = makeRNG()
        let halfA = "Pa" + Self.token(&rng, 8), halfB = "Zb" + Self.token(&rng, 8)
        let password = "\(halfA):@/'\"\\ \(halfB)"
        let role = "ti_secret_" + suffix, db = "ti_sec_" + suffix
        try Harness.psql("postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE \(Self.ident(role)) LOGIN CREATEDB PASSWORD \(Self.literal(password))")
        roles.append(role)
        XCTAssertEqual(try Harness.psql("postgres", "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = \(Self.literal(role))"), "t")
        try createDatabase(db, owner: role)
        try Harness.psql(db, """
            SET ROLE \(Self.ident(role));
            CREATE TABLE big AS SELECT i, md5(i::text) AS a, md5((i * 3)::text) AS b FROM generate_series(1, 150000) i;
            CREATE TABLE notes (id int, body text);
            INSERT INTO notes VALUES (1, 'nothing secret here');
            """)
        let port = Harness.tcpPort
        let tcp = ["-h", "127.0.0.1", "-p", port, "-U", role]
        func uri(_ pw: String, port otherPort: String? = nil, database: String? = nil) -> String {
            "postgres://\(Self.pct(role)):\(Self.pct(pw))@127.0.0.1:\(otherPort ?? port)/\(Self.pct(database ?? db))"
        }
        let viaEnv: [String: String?] = ["PGPASSWORD": password]
        let viaURI: [String: String?] = ["PGPASSWORD": nil, "PGHOST": nil, "PGUSER": nil, "PGPORT": nil, "PGDATABASE": nil]
        let wrong = "Wr" + Self.token(&rng, 8) + ":@/'\" " + "Wq" + Self.token(&rng, 8)
        let secrets = [password, Self.pct(password), halfA, halfB, wrong, Self.pct(wrong), String(wrong.prefix(10)), String(wrong.suffix(10))]
        let binary = URL(fileURLWithPath: Harness.binary).resolvingSymlinksInPath().path
        let dir = try makeDir()

        func leaks(_ text: String) -> [String] { secrets.filter { text.contains($0) } }

        @discardableResult
        func observe(_ what: String, _ args: [String], env: [String: String?], expect: Set<Int32>, child: String?,
                     file: StaticString = #filePath, line: UInt = #line) throws -> Run {
            let runtime = try makeDir()
            chmod(runtime, 0o700)
            var e = env
            e["XDG_RUNTIME_DIR"] = runtime
            var seen = Observation()
            var recorded = Set<String>()
            var passes = 0
            let r = try pgsnap(args, dir: dir, env: e, timeout: 240, watch: { pid in
                // Every pass reads the kernel's children lists (cheap, so short-lived children are caught);
                // every fifth pass also walks all of /proc by ppid, which needs no kernel option.
                passes += 1
                var found = Procfs.descendants(of: pid).map(\.pid)
                if passes % 5 == 1 { found += Self.descendantsByPPID(of: pid) }
                for descendant in Set(found) {
                    // Between fork and exec a child is a copy of pgsnap: judge it once it runs another program.
                    // Right after exec, /proc shows the new exe before the new argv and environment are in
                    // place (both read empty): such a child is looked at again on the next pass.
                    guard let exe = Procfs.executable(descendant), exe != binary, !recorded.contains("\(descendant) \(exe)"),
                          let argv = Procfs.cmdline(descendant), !argv.isEmpty,
                          let environ = Procfs.environ(descendant), !environ.isEmpty else { continue }
                    recorded.insert("\(descendant) \(exe)")
                    seen.children.append((descendant, exe, argv, environ))
                    for v in environ where v.hasPrefix("PGPASSFILE=") {
                        let path = String(v.dropFirst("PGPASSFILE=".count))
                        seen.passfiles.insert(path)
                        var st = stat(), dst = stat()
                        if stat(path, &st) == 0, stat((path as NSString).deletingLastPathComponent, &dst) == 0 {
                            seen.modes.append((path, st.st_mode & 0o777, dst.st_mode & 0o777))
                        }
                    }
                }
            }, file: file, line: line)
            let context = "\(what) (\(r.shown))"
            XCTAssertTrue(expect.contains(r.status), "\(context): exit \(r.status), expected \(expect.sorted()): \(r.stderr)", file: file, line: line)
            if let child {
                XCTAssertTrue(seen.children.contains { $0.exe.hasSuffix(child) },
                              "\(context): never observed \(child) running; saw \(seen.children.map(\.exe))", file: file, line: line)
            }
            for c in seen.children {
                XCTAssertEqual(leaks(c.argv.joined(separator: " ")), [], "\(context): the argv of \(c.exe) holds the password", file: file, line: line)
                XCTAssertEqual(leaks(c.environ.joined(separator: "\n")), [], "\(context): the environment of \(c.exe) holds the password", file: file, line: line)
                XCTAssertFalse(c.environ.contains { $0.hasPrefix("PGPASSWORD=") }, "\(context): \(c.exe) was given PGPASSWORD", file: file, line: line)
                if c.exe.contains("/postgresql/") {
                    XCTAssertTrue(c.environ.contains { $0.hasPrefix("PGPASSFILE=") }, "\(context): \(c.exe) has no PGPASSFILE", file: file, line: line)
                }
            }
            for (path, fileMode, dirMode) in seen.modes {
                XCTAssertEqual(fileMode, 0o600, "\(context): passfile \(path) mode", file: file, line: line)
                XCTAssertEqual(dirMode, 0o700, "\(context): passfile directory mode", file: file, line: line)
            }
            XCTAssertEqual(leaks(r.stdout), [], "\(context): stdout holds the password: \(r.stdout)", file: file, line: line)
            XCTAssertEqual(leaks(r.stderr), [], "\(context): stderr holds the password: \(r.stderr)", file: file, line: line)
            for p in seen.passfiles {
                XCTAssertFalse(FileManager.default.fileExists(atPath: (p as NSString).deletingLastPathComponent),
                               "\(context): the passfile directory of \(p) is still there", file: file, line: line)
            }
            XCTAssertEqual(Harness.entries(runtime), [], "\(context): left in the runtime directory", file: file, line: line)
            print("TortureInputTests: secrets: \(what): exit \(r.status), children seen: \(Set(seen.children.map { ($0.exe as NSString).lastPathComponent }).sorted())")
            return r
        }

        let first = try observe("backup, password in PGPASSWORD", ["backup"] + tcp + ["-d", db], env: viaEnv, expect: [0], child: "/pg_dump")
        let id1 = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let second = try observe("backup, password in the URI", ["backup", "--dbname", uri(password)], env: viaURI, expect: [0], child: "/pg_dump")
        let id2 = second.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try Harness.manifest(dir: dir, id: id2)["user"] as? String, role)
        try observe("verify --restore-test", ["verify", id1, "--restore-test"] + tcp + ["-d", db], env: viaEnv, expect: [0], child: "/psql")
        try observe("restore to a new name", ["restore", id1, "--target=\(db)_copy", "--dbname", uri(password)], env: viaURI, expect: [0], child: "/psql")
        let conninfo = "host=127.0.0.1 port=\(port) user=\(Self.kv(role)) dbname=\(Self.kv(db)) password=\(Self.kv(password))"
        try observe("restore in place, password in a key=value string", ["restore", id2, "--yes", "--dbname", conninfo], env: viaURI, expect: [0], child: "/psql")
        XCTAssertEqual(try Harness.rowCounts(db)["public.big"], 150000)
        try observe("guard -- /bin/true", ["guard", "--dbname", uri(password), "--", "/bin/true"], env: viaURI, expect: [0], child: "/pg_dump")
        let failed = try observe("guard -- /bin/false", ["guard", "--dbname", uri(password), "--", "/bin/false"], env: viaURI, expect: [5], child: "/pg_dump")
        XCTAssertTrue(failed.stderr.contains("pgsnap restore"), "guard must print the restore command: \(failed.stderr)")
        try observe("preflight", ["preflight"] + tcp + ["-d", db], env: viaEnv, expect: [0, 2], child: nil)
        try observe("diff", ["diff", id1, "--dbname", uri(password)], env: viaURI, expect: [0], child: nil)
        try observe("no such database", ["backup", "--dbname", uri(password, database: "no_such_\(suffix)")], env: viaURI, expect: [1], child: nil)
        try observe("wrong password in PGPASSWORD", ["restore", id1, "--target=\(db)_copy9"] + tcp + ["-d", db], env: ["PGPASSWORD": wrong], expect: [1], child: nil)
        try observe("wrong password in the URI", ["verify", id1, "--restore-test", "--dbname", uri(wrong)], env: viaURI, expect: [1], child: nil)
        try observe("unreachable port", ["backup", "--dbname", uri(password, port: "1")], env: viaURI, expect: [1], child: nil)

        for f in Harness.entries(dir) {
            let bytes = try Harness.bytes(dir + "/" + f)
            XCTAssertEqual(leaks(String(decoding: bytes, as: UTF8.self)), [], "\(f) holds the password")
            if f.hasSuffix(".sql.gz") {
                XCTAssertEqual(leaks(String(decoding: try gunzip(dir + "/" + f), as: UTF8.self)), [], "the dump \(f) holds the password")
            }
        }
        XCTAssertEqual(Self.scratchDatabases(), [])
    }
}
