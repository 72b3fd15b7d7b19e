import Foundation
import XCTest

/// `prune`, `check`, `backup --prune` and the directory lock, end to end: real snapshots of real
/// databases, ages forged in the manifests (`created_at`) or through PGSNAP_NOW, and files on disk
/// as the only evidence of what was removed.
final class PruneCheckLockTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    override class func tearDown() {
        if let big = bigDatabaseName { Harness.dropDatabase(big) }
        bigDatabaseName = nil
        super.tearDown()
    }

    // MARK: - Fixtures

    /// A database with one small table.
    func makeDatabase(_ prefix: String, rows: Int = 100) throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        try Harness.psql(db, "CREATE TABLE items AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, \(rows)) i")
        return db
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    /// About a million rows: long enough a backup (seconds) to find it running by its `.partial` file.
    static var bigDatabaseName: String?
    func bigDatabase() throws -> String {
        if let big = Self.bigDatabaseName { return big }
        let db = try Harness.createDatabase("big")
        Self.bigDatabaseName = db
        try Harness.psql(db, "CREATE TABLE items AS SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 1000000) i")
        return db
    }

    /// `pgsnap backup -d DB` that must succeed; returns the id it printed.
    @discardableResult
    func backup(_ db: String, dir: String, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try Harness.pgsnap(["backup", "-d", db] + extra, dir: dir)
        XCTAssertEqual(r.status, 0, "backup of \(db) failed: \(r.stderr)", file: file, line: line)
        let id = Harness.snapshotID(r)
        XCTAssertTrue(FileManager.default.fileExists(atPath: Harness.manifestPath(dir: dir, id: id)), "no manifest for '\(id)'",
                      file: file, line: line)
        return id
    }

    static func iso(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    static func parseISO(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)
    }

    /// The UTC name stamp pgsnap uses in ids: `20261122T031500Z`.
    static func nameStamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }

    /// Rewrites `created_at` in a snapshot's manifest, everything else untouched: the age prune and check see.
    func setCreatedAt(dir: String, id: String, _ date: Date) throws {
        var m = try Harness.manifest(dir: dir, id: id)
        XCTAssertNotNil(m["created_at"] as? String, "manifest of \(id) has no created_at")
        m["created_at"] = Self.iso(date)
        try Harness.writeJSON(m, to: Harness.manifestPath(dir: dir, id: id))
    }

    func createdAt(dir: String, id: String) throws -> Date {
        let m = try Harness.manifest(dir: dir, id: id)
        return try XCTUnwrap((m["created_at"] as? String).flatMap(Self.parseISO), "created_at of \(id)")
    }

    func compressedBytes(dir: String, id: String) throws -> Int64 {
        let m = try Harness.manifest(dir: dir, id: id)
        return try XCTUnwrap((m["compressed_bytes"] as? NSNumber)?.int64Value, "compressed_bytes of \(id)")
    }

    /// The files of snapshot `id` that pgsnap writes: its dump and its manifest.
    static func snapshotFiles(_ id: String) -> Set<String> { [id + ".sql.gz", id + ".manifest.json"] }

    func exists(_ dir: String, _ name: String) -> Bool {
        FileManager.default.fileExists(atPath: dir + "/" + name)
    }

    /// Names and sizes of everything but the lock file: what a "nothing changed" assertion compares.
    func listing(_ dir: String) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for name in Harness.snapshotFiles(dir) {
            out[name] = (try? Harness.fileSize(dir + "/" + name)) ?? -1
        }
        return out
    }

    /// `prune --json` / `prune --json --dry-run` output: decisions by id.
    func decisions(_ r: Result, file: StaticString = #filePath, line: UInt = #line) -> [String: [String: Any]] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any],
              let list = object["decisions"] as? [[String: Any]]
        else {
            XCTFail("prune --json did not print an object with decisions: \(r.stdout) / \(r.stderr)", file: file, line: line)
            return [:]
        }
        var out: [String: [String: Any]] = [:]
        for d in list {
            guard let id = d["id"] as? String else {
                XCTFail("decision without id: \(d)", file: file, line: line)
                continue
            }
            XCTAssertNil(out[id], "two decisions for \(id)", file: file, line: line)
            out[id] = d
        }
        return out
    }

    func assertDecision(_ ds: [String: [String: Any]], _ id: String, action: String, status: String = "good",
                        file: StaticString = #filePath, line: UInt = #line) {
        guard let d = ds[id] else {
            XCTFail("no decision for \(id); got \(ds.keys.sorted())", file: file, line: line)
            return
        }
        XCTAssertEqual(d["action"] as? String, action, "\(id): \(d)", file: file, line: line)
        XCTAssertEqual(d["status"] as? String, status, "\(id): \(d)", file: file, line: line)
        let reasons = d["reasons"] as? [String] ?? []
        XCTAssertFalse(reasons.isEmpty, "\(id) has no reason: \(d)", file: file, line: line)
        XCTAssertFalse(reasons.contains { $0.isEmpty }, "\(id) has an empty reason: \(d)", file: file, line: line)
    }

    /// The line of human output that mentions `id` as a whole word (ids of one second differ only by `-2`, `-3`).
    func lineNaming(_ id: String, in text: String) -> String? {
        text.split(separator: "\n").map(String.init).first { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).contains { $0 == id }
        }
    }

    /// True when `text` holds `number` not as part of a longer number.
    func mentions(_ text: String, number: Int32) -> Bool {
        text.range(of: "(^|[^0-9])\(number)([^0-9]|$)", options: .regularExpression) != nil
    }

    typealias Result = Harness.Result

    /// Waits (bounded) for a `.partial` file in `dir`: the backup holds its lock and is dumping.
    func waitForPartial(_ dir: String, timeout: TimeInterval = 60) -> String? {
        var found: String?
        _ = Harness.poll(timeout: timeout) {
            found = Harness.entries(dir).first { $0.hasSuffix(".partial") }
            return found != nil
        }
        return found
    }

    /// True when process `pid` has `dir`/.pgsnap.lock open.
    func hasLockFileOpen(_ pid: Int32, dir: String) -> Bool {
        let fdDir = "/proc/\(pid)/fd"
        let lockSuffix = "/" + (dir as NSString).lastPathComponent + "/.pgsnap.lock"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + fd), target.hasSuffix(lockSuffix) {
                return true
            }
        }
        return false
    }

    static let day: TimeInterval = 86400

    /// node_exporter textfile lines `name{labels} value`, comments skipped; each series once.
    func parseMetrics(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Double] {
        var values: [String: Double] = [:]
        for l in text.split(separator: "\n") where !l.hasPrefix("#") {
            let parts = l.split(separator: " ")
            XCTAssertEqual(parts.count, 2, "metric line: \(l)", file: file, line: line)
            guard parts.count == 2, let v = Double(parts[1]) else { continue }
            XCTAssertNil(values[String(parts[0])], "duplicate series \(parts[0])", file: file, line: line)
            values[String(parts[0])] = v
        }
        return values
    }

    // MARK: - prune

    /// The newest snapshot damaged in place (same size, so the catalogue calls it good): pruning
    /// would leave only it. Prune (and its dry run) refuses, exit 2, naming it; nothing is removed.
    func testPruneRemovesNothingWhenTheNewestGoodSnapshotFailsItsChecksum() throws {
        let db = try makeDatabase("prunebad")
        let dir = try makeDir()
        let ids = try (0..<3).map { _ in try backup(db, dir: dir) }
        let now = Date()
        try setCreatedAt(dir: dir, id: ids[0], now.addingTimeInterval(-40 * Self.day))
        try setCreatedAt(dir: dir, id: ids[1], now.addingTimeInterval(-35 * Self.day))
        let path = dir + "/" + ids[2] + ".sql.gz"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: path))
        let before = listing(dir)

        for args in [["prune", "--dry-run"], ["prune"]] {
            let r = try Harness.pgsnap(args, dir: dir)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("nothing was pruned: \(ids[2]), the newest good snapshot of \"\(db)\"") && r.stderr.contains("fails its checksum"),
                          r.stderr)
            XCTAssertEqual(listing(dir), before, "\(args) removed something")
        }
    }

    func testPruneRemovesOldSnapshotsAndDryRunDeletesNothing() throws {
        let db = try makeDatabase("prune")
        let dir = try makeDir()
        let ids = try (0..<4).map { _ in try backup(db, dir: dir) }
        XCTAssertEqual(Set(ids).count, 4)
        let now = Date()
        try setCreatedAt(dir: dir, id: ids[0], now.addingTimeInterval(-40 * Self.day))
        try setCreatedAt(dir: dir, id: ids[1], now.addingTimeInterval(-(30 * Self.day + 3600)))
        try setCreatedAt(dir: dir, id: ids[2], now.addingTimeInterval(-(29 * Self.day)))
        let old = [ids[0], ids[1]], kept = [ids[2], ids[3]]

        // --dry-run: the plan on stdout, every file untouched.
        let before = listing(dir)
        let dry = try Harness.pgsnap(["prune", "--dry-run"], dir: dir)
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(listing(dir), before, "--dry-run must delete nothing")
        for id in old {
            let line = try XCTUnwrap(lineNaming(id, in: dry.stdout), "dry run does not mention \(id): \(dry.stdout)")
            XCTAssertTrue(line.hasPrefix("remove"), line)
            XCTAssertTrue(line.contains("(") && !line.contains("()"), "a reason is shown: \(line)")
        }
        for id in kept {
            let line = try XCTUnwrap(lineNaming(id, in: dry.stdout), "dry run does not mention \(id): \(dry.stdout)")
            XCTAssertTrue(line.hasPrefix("keep"), line)
            XCTAssertTrue(line.contains("(") && !line.contains("()"), "a reason is shown: \(line)")
        }

        // --json --dry-run: decisions with reasons, still nothing deleted.
        let plan = try Harness.pgsnap(["prune", "--dry-run", "--json"], dir: dir)
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertEqual(listing(dir), before)
        let ds = decisions(plan)
        XCTAssertEqual(Set(ds.keys), Set(ids))
        for id in old { assertDecision(ds, id, action: "remove") }
        for id in kept { assertDecision(ds, id, action: "keep") }
        for id in ids {
            XCTAssertEqual(Set(ds[id]?["files"] as? [String] ?? []), Self.snapshotFiles(id), "files of \(id)")
        }

        // The real thing: both files of each old snapshot gone, the rest untouched.
        let r = try Harness.pgsnap(["prune", "--json"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let done = decisions(r)
        for id in old { assertDecision(done, id, action: "remove") }
        for id in kept { assertDecision(done, id, action: "keep") }
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(ids[2]).union(Self.snapshotFiles(ids[3])))
        for id in kept {
            XCTAssertEqual(before[id + ".sql.gz"], try Harness.fileSize(Harness.dumpPath(dir: dir, id: id)))
        }

        // Nothing left to do: a second prune removes nothing.
        let again = try Harness.pgsnap(["prune", "--json"], dir: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(Set(decisions(again).values.compactMap { $0["action"] as? String }), ["keep"])
    }

    func testTheNewestSnapshotSurvivesAnyPolicy() throws {
        let db = try makeDatabase("newest")
        let dir = try makeDir()
        let ids = try (0..<3).map { _ in try backup(db, dir: dir) }
        let future = ["PGSNAP_NOW": Self.iso(Date().addingTimeInterval(400 * Self.day))]
        let before = listing(dir)

        let refused = try Harness.pgsnap(["prune", "--keep-days", "0", "--keep-last", "0"], dir: dir, env: future)
        Harness.assertOneErrorLine(refused, status: 64, "empty policy without --allow-empty")
        XCTAssertTrue(refused.stderr.contains("--allow-empty"), refused.stderr)
        XCTAssertEqual(listing(dir), before, "a refused prune deletes nothing")

        let r = try Harness.pgsnap(["prune", "--keep-days", "0", "--keep-last", "0", "--allow-empty", "--json"], dir: dir, env: future)
        XCTAssertEqual(r.status, 0, r.stderr)
        assertDecision(decisions(r), ids[2], action: "keep")
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(ids[2]), "only the newest is left")

        for policy in [["--keep-days", "0", "--keep-last", "0", "--allow-empty"], ["--keep-days", "1", "--keep-last", "1"], []] {
            let p = try Harness.pgsnap(["prune"] + policy, dir: dir, env: ["PGSNAP_NOW": Self.iso(Date().addingTimeInterval(4000 * Self.day))])
            XCTAssertEqual(p.status, 0, "\(policy): \(p.stderr)")
            XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(ids[2]), "\(policy): the last good snapshot must stay")
        }
    }

    func testLeftoversAreRemovedWhenOldAndKeptWhenRecent() throws {
        let db = try makeDatabase("left")
        let dir = try makeDir()
        let noDumpOld = try backup(db, dir: dir)
        let noDumpRecent = try backup(db, dir: dir)
        let good = try backup(db, dir: dir)
        try FileManager.default.removeItem(atPath: Harness.dumpPath(dir: dir, id: noDumpOld))
        try FileManager.default.removeItem(atPath: Harness.dumpPath(dir: dir, id: noDumpRecent))
        try setCreatedAt(dir: dir, id: noDumpOld, Date(timeIntervalSince1970: 1_577_923_200))  // 2020-01-02

        let stamp = Self.nameStamp(Date())
        let oldPartial = "\(db)_20200101T000000Z.sql.gz.partial"
        let oldDump = "\(db)_20200101T010000Z.sql.gz"
        let recentPartial = "\(db)_\(stamp)_inflight.sql.gz.partial"
        let recentDump = "\(db)_\(stamp)_orphan.sql.gz"
        for name in [oldPartial, oldDump, recentPartial, recentDump] {
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(repeating: 0x1f, count: 300)))
        }

        let plan = try Harness.pgsnap(["prune", "--dry-run", "--json"], dir: dir)
        XCTAssertEqual(plan.status, 0, plan.stderr)
        let ds = decisions(plan)
        assertDecision(ds, "\(db)_20200101T000000Z", action: "remove", status: "partial")
        assertDecision(ds, "\(db)_20200101T010000Z", action: "remove", status: "dump_without_manifest")
        assertDecision(ds, noDumpOld, action: "remove", status: "manifest_without_dump")
        assertDecision(ds, "\(db)_\(stamp)_inflight", action: "keep", status: "partial")
        assertDecision(ds, "\(db)_\(stamp)_orphan", action: "keep", status: "dump_without_manifest")
        assertDecision(ds, noDumpRecent, action: "keep", status: "manifest_without_dump")
        assertDecision(ds, good, action: "keep")

        let r = try Harness.pgsnap(["prune"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)),
                       Self.snapshotFiles(good).union([recentPartial, recentDump, noDumpRecent + ".manifest.json"]))

        // Two days later the recent leftovers are old too; the good snapshot stays.
        let later = try Harness.pgsnap(["prune"], dir: dir, env: ["PGSNAP_NOW": Self.iso(Date().addingTimeInterval(2 * Self.day))])
        XCTAssertEqual(later.status, 0, later.stderr)
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(good))
    }

    /// A whole-server run's record, as the README documents it.
    static func runRecord(_ run: String, snapshots: [String], sha: String = String(repeating: "b", count: 64)) throws -> Data {
        try JSONSerialization.data(withJSONObject: [
            "format_version": 1, "run": run, "created_at": "2020-01-01T00:00:00.000Z", "globals_file": run + ".globals.sql",
            "globals_bytes": 5, "globals_sha256": sha, "snapshots": snapshots, "pgsnap_version": "0.1.0",
        ] as [String: Any])
    }

    /// Runs' globals that nothing refers to: one that names no snapshot yet is in flight for 24 h,
    /// a leftover of a killed run goes after that, one whose snapshots are gone goes at once, an
    /// unreadable record is left for a person; none is ever listed or verified as a snapshot.
    func testRunGlobalsNothingRefersToAndAnUnreadableRecord() throws {
        let db = try makeDatabase("runs")
        let dir = try makeDir()
        let good = try backup(db, dir: dir)
        let recent = "run-" + Self.nameStamp(Date()), gone = "run-20200101T000000Z", broken = "run-20200101T000000Z-2"
        let killed = "run-20200101T000000Z-3"
        func write(_ name: String, _ data: Data) {
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + name, contents: data, attributes: [.posixPermissions: 0o600]), name)
        }
        for run in [recent, gone, broken] { write(run + ".globals.sql", Data("CREATE ROLE x;\n".utf8)) }
        write(recent + ".run.json", try Self.runRecord(recent, snapshots: []))
        write(gone + ".run.json", try Self.runRecord(gone, snapshots: ["\(db)_20200101T000001Z"]))
        write(broken + ".run.json", Data("{ not json".utf8))
        write(killed + ".globals.sql.partial", Data("CREATE".utf8))

        let list = try Harness.pgsnap(["list", "--json"], dir: dir)
        XCTAssertEqual(list.status, 0, list.stderr)
        let ids = ((try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8))) as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        XCTAssertEqual(ids, [good], "a run's files are not snapshots")
        let verify = try Harness.pgsnap(["verify", "--all"], dir: dir)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertFalse(verify.stderr.contains("run-"), verify.stderr)

        let r = try Harness.pgsnap(["prune", "--json"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any])
        var action: [String: String] = [:]
        for d in object["runs"] as? [[String: Any]] ?? [] { action[d["run"] as? String ?? "?"] = d["action"] as? String }
        XCTAssertEqual(action, [recent: "keep", gone: "remove", broken: "keep", killed: "remove"], r.stdout)
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)),
                       Self.snapshotFiles(good).union([recent + ".globals.sql", recent + ".run.json", broken + ".globals.sql", broken + ".run.json"]))

        // Two days later the run that never named a snapshot goes too; the unreadable one is still left alone.
        let later = try Harness.pgsnap(["prune"], dir: dir, env: ["PGSNAP_NOW": Self.iso(Date().addingTimeInterval(2 * Self.day))])
        XCTAssertEqual(later.status, 0, later.stderr)
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(good).union([broken + ".globals.sql", broken + ".run.json"]))
    }

    // MARK: - backup --prune

    func testBackupWithPruneCreatesTheNewSnapshotAndRemovesOldOnes() throws {
        let db = try makeDatabase("bprune")
        let dir = try makeDir()
        let old1 = try backup(db, dir: dir)
        let old2 = try backup(db, dir: dir)
        try setCreatedAt(dir: dir, id: old1, Date().addingTimeInterval(-40 * Self.day))
        try setCreatedAt(dir: dir, id: old2, Date().addingTimeInterval(-35 * Self.day))

        let r = try Harness.pgsnap(["backup", "-d", db, "--prune"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let id = Harness.snapshotID(r)
        XCTAssertFalse([old1, old2].contains(id))
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(id), "the new snapshot, and only it")
        XCTAssertEqual(try compressedBytes(dir: dir, id: id), try Harness.fileSize(Harness.dumpPath(dir: dir, id: id)))
    }

    func testAFailingBackupWithPruneRemovesNothing() throws {
        let gone = try makeDatabase("bgone")
        let other = try makeDatabase("bother")
        let dir = try makeDir()
        var ids: [String] = []
        for db in [gone, other] {
            for days in [40.0, 35.0] {
                let id = try backup(db, dir: dir)
                try setCreatedAt(dir: dir, id: id, Date().addingTimeInterval(-days * Self.day))
                ids.append(id)
            }
        }
        Harness.dropDatabase(gone)
        let before = listing(dir)

        let r = try Harness.pgsnap(["backup", "-d", gone, "--prune"], dir: dir)
        Harness.assertOneErrorLine(r, status: 1, "backup of a dropped database")
        XCTAssertEqual(listing(dir), before, "a failed backup must not prune anything, of any database")

        // The same prune after a successful backup of the other database does remove (the forgery works).
        let ok = try Harness.pgsnap(["backup", "-d", other, "--prune"], dir: dir)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertFalse(exists(dir, ids[2] + ".manifest.json"))
        XCTAssertFalse(exists(dir, ids[3] + ".manifest.json"))
        XCTAssertTrue(exists(dir, ids[0] + ".manifest.json"), "--prune only touches the database backed up")
        XCTAssertTrue(exists(dir, ids[1] + ".manifest.json"))
    }

    // MARK: - Locking

    func testPruneDuringABackupExitsThreeNamingTheHolder() throws {
        let big = try bigDatabase()
        let dir = try makeDir()
        var prune: Result?
        var partialSeen = false
        let b = try Harness.pgsnap(["backup", "-d", big], dir: dir) { pid in
            guard self.waitForPartial(dir) != nil else { return }
            partialSeen = true
            // Stopped, the backup holds its lock for as long as we need: no race with its end.
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            prune = try? Harness.pgsnap(["prune"], dir: dir)
            if let p = prune {
                XCTAssertTrue(self.mentions(p.stderr, number: pid), "the holder's pid \(pid) is named: \(p.stderr)")
            }
        }
        XCTAssertTrue(partialSeen, "the backup never showed a .partial file")
        XCTAssertEqual(b.status, 0, "the backup must complete: \(b.stderr)")
        let p = try XCTUnwrap(prune)
        Harness.assertOneErrorLine(p, status: 3, "prune while a backup runs")
        XCTAssertTrue(p.stderr.contains("backup"), "the holder's command is named: \(p.stderr)")
        let id = Harness.snapshotID(b)
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(id))
    }

    /// `backup --prune --push` whose prune cannot get the directory's lock within --wait (another
    /// backup holds it, stopped): the offsite copy was made first and is whole in the bucket; the
    /// exit status is the lock's (3). The prune went first and the push never ran.
    func testAPruneThatCannotLockDoesNotCostTheOffsiteCopy() throws {
        let big = try bigDatabase()
        let small = try makeDatabase("pushfirst")
        let dir = try makeDir()
        let s3 = S3Harness.env(remote: S3Harness.newRemote().url)
        var result: Result?
        var partialSeen = false
        let b = try Harness.pgsnap(["backup", "-d", big], dir: dir) { pid in
            guard self.waitForPartial(dir) != nil else { return }
            partialSeen = true
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            result = try? Harness.pgsnap(["backup", "-d", small, "--prune", "--push", "--wait", "1s", "--quiet"], dir: dir, env: s3)
            if let r = result {
                XCTAssertTrue(self.mentions(r.stderr, number: pid), "the holder's pid \(pid) is named: \(r.stderr)")
                XCTAssertFalse(r.stderr.contains("pid=\(r.pid) "), "the run names itself as the holder: \(r.stderr)")
            }
        }
        XCTAssertTrue(partialSeen, "the backup never showed a .partial file")
        XCTAssertEqual(b.status, 0, b.stderr)
        let r = try XCTUnwrap(result)
        Harness.assertOneErrorLine(r, status: 3, "the prune after the push")
        let id = try XCTUnwrap(Harness.snapshotFiles(dir).first { $0.hasPrefix(small + "_") && $0.hasSuffix(".manifest.json") }?
            .dropLast(".manifest.json".count)).description
        let remote = try Harness.pgsnap(["verify", "--remote", id], dir: dir, env: s3)
        XCTAssertEqual(remote.status, 0, "the offsite copy: \(remote.stderr)")
    }

    /// A directory that has seen many backups and no prune (nightly backups without --prune): the
    /// holder named must still be the backup running now, not one that finished weeks ago.
    func testTheHolderIsNamedAfterManyEarlierBackups() throws {
        let tiny = try Harness.createDatabase("tiny")
        databases.append(tiny)
        let big = try bigDatabase()
        let dir = try makeDir()
        for i in 0..<60 {
            let r = try Harness.pgsnap(["backup", "-d", tiny, "--quiet", "--jobs", "1"], dir: dir)
            XCTAssertEqual(r.status, 0, "backup \(i): \(r.stderr)")
            if r.status != 0 { return }
        }
        var prune: Result?
        var holder: Int32 = 0
        let b = try Harness.pgsnap(["backup", "-d", big], dir: dir) { pid in
            holder = pid
            guard self.waitForPartial(dir) != nil else { return }
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            prune = try? Harness.pgsnap(["prune"], dir: dir)
        }
        XCTAssertEqual(b.status, 0, b.stderr)
        let p = try XCTUnwrap(prune, "the backup never showed a .partial file")
        Harness.assertOneErrorLine(p, status: 3, "prune while a backup runs")
        XCTAssertTrue(mentions(p.stderr, number: holder), "the running holder's pid \(holder) is named: \(p.stderr)")
    }

    func testPruneWithWaitWaitsForTheBackupThenSucceeds() throws {
        let big = try bigDatabase()
        let small = try makeDatabase("waitsmall")
        let dir = try makeDir()
        let old = try backup(small, dir: dir)
        let newest = try backup(small, dir: dir)
        try setCreatedAt(dir: dir, id: old, Date().addingTimeInterval(-40 * Self.day))

        let prune = Box<Result?>(nil)
        let prunePID = Box<Int32>(0)
        let pruneDone = DispatchGroup()
        var waitedOnLock = false
        let b = try Harness.pgsnap(["backup", "-d", big], dir: dir) { pid in
            guard self.waitForPartial(dir) != nil else { return }
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            pruneDone.enter()
            Thread {
                let r = try? Harness.pgsnap(["prune", "--wait", "5m", "--json"], dir: dir) { prunePID.set($0) }
                prune.set(r)
                pruneDone.leave()
            }.start()
            // The prune has opened the lock file and is still running: it is waiting for the lock.
            waitedOnLock = Harness.poll(timeout: 30) {
                let p = prunePID.get
                return p != 0 && self.hasLockFileOpen(p, dir: dir)
            }
            XCTAssertTrue(waitedOnLock, "the prune never opened the lock file")
            XCTAssertNil(prune.get, "the prune finished while the backup held the lock: \(String(describing: prune.get))")
            XCTAssertTrue(self.exists(dir, old + ".manifest.json"), "nothing is removed while the backup holds the lock")
        }
        XCTAssertEqual(b.status, 0, "the backup must complete: \(b.stderr)")
        let bigID = Harness.snapshotID(b)
        XCTAssertEqual(pruneDone.wait(timeout: .now() + 120), .success, "the prune did not finish after the backup")
        let p = try XCTUnwrap(prune.get)
        XCTAssertEqual(p.status, 0, p.stderr)
        let ds = decisions(p)
        // The prune saw the backup's finished snapshot: it ran after the backup committed.
        assertDecision(ds, bigID, action: "keep")
        assertDecision(ds, old, action: "remove")
        assertDecision(ds, newest, action: "keep")
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(bigID).union(Self.snapshotFiles(newest)))
    }

    /// SIGTERM while `--wait` waits for the lock: exit 130 and says so (it said "It did not
    /// finish in time; try again later", as if the wait had run out).
    func testASignalDuringTheWaitForTheLockIsAnInterruption() throws {
        let dir = try makeDir()
        let holder = try HeldProcess("/usr/bin/flock", ["-x", dir + "/.pgsnap.lock", "/bin/cat"])
        defer { holder.stop() }
        XCTAssertTrue(Harness.poll(timeout: 30) { FileManager.default.fileExists(atPath: dir + "/.pgsnap.lock") })
        let r = try Harness.pgsnap(["prune", "--wait", "10m"], dir: dir) { pid in
            XCTAssertTrue(Harness.poll(timeout: 30) { self.hasLockFileOpen(pid, dir: dir) }, "prune never opened the lock file")
            kill(pid, SIGTERM)
        }
        Harness.assertOneErrorLine(r, status: 130, "SIGTERM while waiting")
        XCTAssertTrue(r.stderr.contains("interrupted while waiting for the lock") && !r.stderr.contains("did not finish in time"), r.stderr)
    }

    func testTwoBackupsOfDifferentDatabasesShareTheLock() throws {
        let big = try bigDatabase()
        let small = try makeDatabase("shared")
        let dir = try makeDir()
        var smallResult: Result?
        let b = try Harness.pgsnap(["backup", "-d", big], dir: dir) { pid in
            guard self.waitForPartial(dir) != nil else { return }
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            // No --wait: a shared lock must be granted at once while the other backup holds it.
            smallResult = try? Harness.pgsnap(["backup", "-d", small], dir: dir)
        }
        XCTAssertEqual(b.status, 0, b.stderr)
        let s = try XCTUnwrap(smallResult, "the second backup did not run while the first held its lock")
        XCTAssertEqual(s.status, 0, "second backup: \(s.stderr)")
        let bigID = Harness.snapshotID(b), smallID = Harness.snapshotID(s)
        XCTAssertTrue(bigID.hasPrefix(big + "_"), bigID)
        XCTAssertTrue(smallID.hasPrefix(small + "_"), smallID)
        XCTAssertEqual(Set(Harness.snapshotFiles(dir)), Self.snapshotFiles(bigID).union(Self.snapshotFiles(smallID)))
        for id in [bigID, smallID] {
            XCTAssertEqual(try compressedBytes(dir: dir, id: id), try Harness.fileSize(Harness.dumpPath(dir: dir, id: id)), id)
        }
        let check = try Harness.pgsnap(["check"], dir: dir)
        XCTAssertEqual(check.status, 0, check.stderr)
    }

    func testALockHeldByAKilledProcessDoesNotBlock() throws {
        let big = try bigDatabase()
        let dir = try makeDir()
        var partial: String?
        let b = try Harness.pgsnap(["backup", "-d", big], dir: dir) { pid in
            partial = self.waitForPartial(dir)
            kill(pid, SIGKILL)
        }
        XCTAssertEqual(b.status, SIGKILL, "the backup was killed: \(b.stderr)")
        let leftover = try XCTUnwrap(partial, "the backup never showed a .partial file")

        let r = try Harness.pgsnap(["prune", "--json"], dir: dir)
        XCTAssertEqual(r.status, 0, "no --wait: the dead holder's lock must be gone: \(r.stderr)")
        // The killed run's leftover is recent, so it is kept as possibly in flight.
        XCTAssertTrue(exists(dir, leftover), "recent leftover \(leftover) kept")
        let ds = decisions(r)
        assertDecision(ds, String(leftover.dropLast(".sql.gz.partial".count)), action: "keep", status: "partial")

        let again = try Harness.pgsnap(["prune"], dir: dir, env: ["PGSNAP_NOW": Self.iso(Date().addingTimeInterval(2 * Self.day))])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(exists(dir, leftover), "the leftover is removed once it is old")
    }

    // MARK: - check

    func testCheckPassesForAFreshSnapshotAndQuietPrintsNothing() throws {
        let db = try makeDatabase("fresh")
        let dir = try makeDir()
        try backup(db, dir: dir)
        let plain = try Harness.pgsnap(["check"], dir: dir)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stderr.contains(db), "the healthy database is reported: \(plain.stderr)")

        let metrics = try makeDir() + "/pgsnap.prom"
        for args in [["check", "--quiet"], ["check", "--quiet", "--database", db, "--max-age", "1h", "--metrics-file", metrics]] {
            let r = try Harness.pgsnap(args, dir: dir)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(args): stdout")
            XCTAssertEqual(r.stderr, "", "\(args): stderr")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: metrics))
    }

    func testCheckReportsAStaleSnapshotWithItsAge() throws {
        let db = try makeDatabase("stale")
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        let threeDaysLater = ["PGSNAP_NOW": Self.iso(try createdAt(dir: dir, id: id).addingTimeInterval(3 * Self.day))]

        for args in [["check"], ["check", "--quiet", "--database", db]] {
            let r = try Harness.pgsnap(args, dir: dir, env: threeDaysLater)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "")
            let line = r.stderr.split(separator: "\n").map(String.init).first { $0.contains(db) && $0.contains(id) }
            let l = try XCTUnwrap(line, "\(args): no stderr line names \(db): \(r.stderr)")
            XCTAssertTrue(l.hasPrefix("pgsnap: "), l)
            XCTAssertTrue(l.contains("3.0 days") || l.contains("72.0 h") || l.contains("3 days"), "the age is given: \(l)")
            for line in r.stderr.split(separator: "\n") { XCTAssertTrue(line.hasPrefix("pgsnap: "), String(line)) }
        }
        let lenient = try Harness.pgsnap(["check", "--max-age", "4d"], dir: dir, env: threeDaysLater)
        XCTAssertEqual(lenient.status, 0, "3 days old is within --max-age 4d: \(lenient.stderr)")
        let strict = try Harness.pgsnap(["check", "--max-age", "71h"], dir: dir, env: threeDaysLater)
        XCTAssertEqual(strict.status, 2, strict.stderr)
    }

    /// A backup taken with a clock 30 days ahead: check said "-720.0 h old", exit 0, and stayed
    /// green while later backups stopped. Now it is a problem, and freshness goes by the newest
    /// snapshot dated before now.
    func testASnapshotDatedInTheFutureIsAProblemAndDoesNotCountAsFresh() throws {
        let db = try makeDatabase("future")
        let dir = try makeDir()
        let old = try backup(db, dir: dir)
        let ahead = try backup(db, dir: dir)
        try setCreatedAt(dir: dir, id: old, Date().addingTimeInterval(-3 * Self.day))
        try setCreatedAt(dir: dir, id: ahead, Date().addingTimeInterval(30 * Self.day))
        let r = try Harness.pgsnap(["check", "--max-age", "26h"], dir: dir)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("1 good snapshot(s) dated in the future (newest \(ahead)") && r.stderr.contains("days ahead"), r.stderr)
        XCTAssertTrue(r.stderr.contains("newest good snapshot \(old) is 3.0 days old"), "freshness from the snapshot dated before now: \(r.stderr)")
        // A few seconds ahead (two hosts' clocks) is not a problem.
        try setCreatedAt(dir: dir, id: ahead, Date().addingTimeInterval(60))
        let skewed = try Harness.pgsnap(["check", "--max-age", "26h"], dir: dir)
        XCTAssertEqual(skewed.status, 0, skewed.stderr)
    }

    func testCheckMinSize() throws {
        let db = try makeDatabase("minsize")
        let dir = try makeDir()
        let id = try backup(db, dir: dir)
        let size = try compressedBytes(dir: dir, id: id)
        XCTAssertEqual(size, try Harness.fileSize(Harness.dumpPath(dir: dir, id: id)))

        let exact = try Harness.pgsnap(["check", "--min-size", String(size)], dir: dir)
        XCTAssertEqual(exact.status, 0, exact.stderr)
        let r = try Harness.pgsnap(["check", "--min-size", String(size + 1)], dir: dir)
        XCTAssertEqual(r.status, 2, r.stderr)
        let line = r.stderr.split(separator: "\n").first { $0.contains(db) && $0.contains(String(size)) }
        XCTAssertNotNil(line, "a line names \(db) and its size \(size): \(r.stderr)")
    }

    /// The newest snapshot damaged (cut short), an older good one fresh enough: `restore latest`
    /// would refuse the newest, so check fails (exit 2) naming it, also with --quiet.
    /// A damaged older snapshot is left alone by prune, and said so on stderr even with --quiet
    /// (the nightly prune is what someone reads), every night until a person deals with it;
    /// the exit status stays 0 (the pruning itself went well).
    func testPruneWarnsOfTheDamagedSnapshotItKeeps() throws {
        let db = try makeDatabase("prunebad")
        let dir = try makeDir()
        let older = try backup(db, dir: dir)
        try backup(db, dir: dir)
        XCTAssertEqual(truncate(dir + "/" + older + ".sql.gz", 1000), 0)
        let before = listing(dir)
        for args in [["prune", "--quiet"], ["prune", "--json"]] {
            let r = try Harness.pgsnap(args, dir: dir)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("pgsnap: warning: kept \(older) (damaged: ") && r.stderr.contains("pgsnap verify \(older)"), "\(args): \(r.stderr)")
            XCTAssertEqual(listing(dir), before, "\(args)")
        }
        let dry = try Harness.pgsnap(["prune", "--dry-run"], dir: dir)
        XCTAssertFalse(dry.stderr.contains("warning"), "the dry run's plan says it already: \(dry.stderr)")
        XCTAssertTrue(try XCTUnwrap(lineNaming(older, in: dry.stdout)).hasPrefix("keep"), dry.stdout)
    }

    func testCheckFailsWhenTheNewestSnapshotIsDamaged() throws {
        let db = try makeDatabase("newestbad")
        let dir = try makeDir()
        try backup(db, dir: dir)
        let newest = try backup(db, dir: dir)
        XCTAssertEqual(try Harness.pgsnap(["check"], dir: dir).status, 0)
        XCTAssertEqual(truncate(dir + "/" + newest + ".sql.gz", 1000), 0)

        for args in [["check"], ["check", "--quiet", "--database", db]] {
            let r = try Harness.pgsnap(args, dir: dir)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("newest snapshot \(newest) is damaged") && r.stderr.contains("'restore latest' would refuse it"), r.stderr)
        }
        let restore = try Harness.pgsnap(["restore", "latest", "-d", db, "--target", db + "_never", "--yes"], dir: dir)
        XCTAssertEqual(restore.status, 2, "what check warned of: \(restore.stderr)")
    }

    func testCheckReportsASnapshotLessThanHalfThePrevious() throws {
        let db = try makeDatabase("shrink", rows: 50_000)
        let dir = try makeDir()
        let bigID = try backup(db, dir: dir)
        try Harness.psql(db, "TRUNCATE items")
        let smallID = try backup(db, dir: dir)
        XCTAssertLessThan(try compressedBytes(dir: dir, id: smallID) * 2, try compressedBytes(dir: dir, id: bigID),
                          "fixture: the second snapshot must be less than half the first")

        let r = try Harness.pgsnap(["check"], dir: dir)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertNotNil(r.stderr.split(separator: "\n").first { $0.contains(db) && ($0.contains("half") || $0.contains("shr")) },
                        "a line names \(db) and the shrink: \(r.stderr)")

        // The same size again is no shrink: healthy.
        try backup(db, dir: dir)
        let ok = try Harness.pgsnap(["check"], dir: dir)
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    func testCheckFailsForAnEmptyDirectoryAndAnUnknownDatabase() throws {
        let empty = try makeDir()
        let r = try Harness.pgsnap(["check"], dir: empty)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertFalse(r.stderr.isEmpty)
        for line in r.stderr.split(separator: "\n") { XCTAssertTrue(line.hasPrefix("pgsnap: "), String(line)) }
        let quiet = try Harness.pgsnap(["check", "--quiet"], dir: empty)
        XCTAssertEqual(quiet.status, 2, "--quiet does not hide problems: \(quiet.stderr)")
        XCTAssertFalse(quiet.stderr.isEmpty)

        let db = try makeDatabase("known")
        let dir = try makeDir()
        try backup(db, dir: dir)
        let unknown = try Harness.pgsnap(["check", "--database", "nosuchdb"], dir: dir)
        XCTAssertEqual(unknown.status, 2, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("nosuchdb"), unknown.stderr)
        let known = try Harness.pgsnap(["check", "--database", db], dir: dir)
        XCTAssertEqual(known.status, 0, known.stderr)
    }

    /// A metrics file that cannot be written is one more problem, beside what the check found:
    /// the "no good snapshot" line, the exit status and --json's problems stay.
    func testAnUnwritableMetricsFileDoesNotHideTheCheck() throws {
        let empty = try makeDir()
        let missing = empty + "/no/such/dir/pgsnap.prom"
        let r = try Harness.pgsnap(["check", "--metrics-file", missing], dir: empty)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("no snapshots in"), r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot write --metrics-file \(missing): its directory \(empty)/no/such/dir does not exist"), r.stderr)
        XCTAssertFalse(r.stderr.contains("Check --dir"), "the backup directory is not the problem: \(r.stderr)")
        let json = try Harness.pgsnap(["check", "--metrics-file", missing, "--json"], dir: empty)
        XCTAssertEqual(json.status, 2, json.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let problems = try XCTUnwrap(report["problems"] as? [[String: Any]]).compactMap { $0["problem"] as? String }
        XCTAssertEqual(problems.count, 2, "\(problems)")

        // A good directory, an unwritable metrics file: the check's own result is still printed.
        let db = try makeDatabase("mfail")
        let dir = try makeDir()
        try backup(db, dir: dir)
        let good = try Harness.pgsnap(["check", "--metrics-file", missing], dir: dir)
        XCTAssertEqual(good.status, 2, good.stderr)
        XCTAssertTrue(good.stderr.contains("cannot write --metrics-file"), good.stderr)
        XCTAssertFalse(good.stderr.contains("no good snapshot"), good.stderr)
    }

    func testCheckWritesMetricsPerDatabase() throws {
        let a = try makeDatabase("ma"), b = try makeDatabase("mb", rows: 5000)
        let dir = try makeDir()
        try backup(a, dir: dir)
        let aNewest = try backup(a, dir: dir)
        let bNewest = try backup(b, dir: dir)
        let metricsDir = try makeDir()
        let metrics = metricsDir + "/pgsnap.prom"

        let r = try Harness.pgsnap(["check", "--metrics-file", metrics], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertEqual(Harness.entries(metricsDir), ["pgsnap.prom"], "written atomically, no temp file left")

        let values = parseMetrics(text)
        for (db, id, count) in [(a, aNewest, 2.0), (b, bNewest, 1.0)] {
            let label = "{database=\"\(db)\"}"
            let created = try createdAt(dir: dir, id: id).timeIntervalSince1970
            let ts = try XCTUnwrap(values["pgsnap_last_success_timestamp_seconds" + label], "timestamp of \(db): \(text)")
            XCTAssertLessThan(abs(ts - created), 1, "\(db): \(ts) vs created_at \(created)")
            let size = try XCTUnwrap(values["pgsnap_last_size_bytes" + label], "size of \(db): \(text)")
            XCTAssertEqual(size, Double(try compressedBytes(dir: dir, id: id)), db)
            XCTAssertEqual(size, Double(try Harness.fileSize(Harness.dumpPath(dir: dir, id: id))), db)
            XCTAssertEqual(values["pgsnap_snapshots" + label], count, db)
        }
        XCTAssertEqual(values.count, 6, "three metrics for each of two databases: \(text)")
        XCTAssertNotEqual(try compressedBytes(dir: dir, id: aNewest), try compressedBytes(dir: dir, id: bNewest),
                          "fixture: the two databases must differ in size so the labels matter")

        // A forged created_at shows up as is: the metric comes from the manifest.
        let forged = Date(timeIntervalSince1970: 1_700_000_000)
        try setCreatedAt(dir: dir, id: bNewest, forged)
        let again = try Harness.pgsnap(["check", "--metrics-file", metrics, "--max-age", "100000d"], dir: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        let text2 = try String(contentsOfFile: metrics, encoding: .utf8)
        XCTAssertEqual(parseMetrics(text2)["pgsnap_last_success_timestamp_seconds{database=\"\(b)\"}"], 1_700_000_000, text2)
    }
}
