import Foundation
import XCTest

/// `pgsnap drill` on a real server: restores, compares, drops, records, notifies.
final class DrillTests: XCTestCase {
    var database = ""
    var dirs: [String] = []
    var receivers: [NotifyReceiver] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        database = try Harness.createDatabase("drl")
        try Harness.psql(database, """
            CREATE TABLE t AS SELECT i, md5(i::text) AS a FROM generate_series(1, 3000) i;
            CREATE TABLE small (id int primary key, note text);
            INSERT INTO small VALUES (1, 'one'), (2, 'two');
            """)
    }

    override func tearDown() {
        for r in receivers { r.stop() }
        Harness.dropDatabase(database)
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    func scratchDatabases() throws -> [String] { try Harness.databases(like: "pgsnap_scratch%") }

    func metrics(_ path: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }

    func testDrillRestoresRecordsAndCleansUp() throws {
        let rx = try NotifyReceiver()
        receivers.append(rx)
        let dir = try makeDir()
        let b = try Harness.pgsnap(["backup", "-d", database], dir: dir)
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = Harness.snapshotID(b)
        let before = try scratchDatabases()
        let prom = dir + "/drill.prom"
        let r = try Harness.pgsnap(["drill", "-d", database, "--metrics-file", prom, "--notify", "json+\(rx.base)/hook/secret"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("ok  drill \(id): restored 2 tables, 3002 rows"), r.stderr)
        XCTAssertEqual(try scratchDatabases(), before, "the drill left a scratch database")

        let m = try Harness.manifest(dir: dir, id: id)
        let proof = try XCTUnwrap(m["restore_test"] as? [String: Any], "\(m)")
        XCTAssertEqual(proof["ok"] as? Bool, true)
        XCTAssertEqual(proof["rows"] as? Int, 3002)
        XCTAssertNotNil(proof["seconds"] as? Double)

        let label = "{database=\"\(database)\"}"
        let values = try metrics(prom)
        XCTAssertEqual(values["pgsnap_restore_drill_success\(label)"], "1", "\(values)")
        XCTAssertEqual(values["pgsnap_restore_drill_rows\(label)"], "3002")
        XCTAssertNotNil(values["pgsnap_restore_drill_seconds\(label)"].flatMap(Double.init))
        let stamp = try XCTUnwrap(values["pgsnap_restore_drill_timestamp_seconds\(label)"].flatMap(Double.init))
        XCTAssertLessThan(abs(stamp - Date().timeIntervalSince1970), 3600, "the timestamp is not now-ish: \(stamp)")
        XCTAssertEqual(Harness.permissions(prom) & 0o777, 0o644)

        let doc = try XCTUnwrap(rx.requests.first?.json)
        XCTAssertEqual(doc["event"] as? String, "drill.success")
        XCTAssertEqual(doc["snapshot"] as? String, id)
        XCTAssertEqual(doc["rows"] as? Int, 3002)
        XCTAssertEqual(doc["database"] as? String, database)

        let list = try Harness.pgsnap(["list"], dir: dir)
        XCTAssertTrue(list.stdout.contains("restore-tested"), list.stdout)
    }

    func testDrillOfADamagedSnapshotFailsNotifiesAndLeavesNothing() throws {
        let rx = try NotifyReceiver()
        receivers.append(rx)
        let dir = try makeDir()
        let b = try Harness.pgsnap(["backup", "-d", database], dir: dir)
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = Harness.snapshotID(b)
        // Same size, different bytes: only the checksum and decompression can tell.
        let path = Harness.dumpPath(dir: dir, id: id)
        var bytes = try Harness.bytes(path)
        for i in stride(from: bytes.count / 2, to: min(bytes.count / 2 + 64, bytes.count - 16), by: 1) { bytes[i] ^= 0x5a }
        try bytes.write(to: URL(fileURLWithPath: path))
        let before = try scratchDatabases()
        let prom = dir + "/drill.prom"

        let r = try Harness.pgsnap(["drill", "--database", database, "--metrics-file", prom,
                                    "--notify", "json+\(rx.base)/hook/secret", "--notify", "slack+\(rx.base)/slack/secret"], dir: dir)
        Harness.assertOneErrorLine(r, status: 2, "drill of a damaged snapshot")
        XCTAssertTrue(r.stderr.contains("restore drill of \(id) failed: checksum check"), r.stderr)
        XCTAssertEqual(try scratchDatabases(), before, "the drill left a scratch database")

        let proof = try XCTUnwrap(try Harness.manifest(dir: dir, id: id)["restore_test"] as? [String: Any])
        XCTAssertEqual(proof["ok"] as? Bool, false)
        XCTAssertTrue((proof["detail"] as? String ?? "").contains("checksum"), "\(proof)")
        XCTAssertEqual(try metrics(prom)["pgsnap_restore_drill_success{database=\"\(database)\"}"], "0")

        let doc = try XCTUnwrap(rx.requests.first { $0.path == "/hook/secret" }?.json)
        XCTAssertEqual(doc["event"] as? String, "drill.failure")
        XCTAssertEqual(doc["exit_code"] as? Int, 2)
        XCTAssertTrue((doc["error"] as? String ?? "").contains("checksum"), "\(doc)")
        let text = try XCTUnwrap(rx.requests.first { $0.path == "/slack/secret" }?.json?["text"] as? String)
        XCTAssertTrue(text.contains("drill of \"\(database)\"") && text.contains("FAILED"), text)
    }

    /// A snapshot whose bytes are whole but whose load fails on this server (a table's owner
    /// role was dropped since the backup): the failure comes after the scratch database exists,
    /// and the drill still drops it, exits 2 and says so in the manifest, metrics and notification.
    func testADrillWhoseLoadFailsDropsItsScratchDatabase() throws {
        let rx = try NotifyReceiver()
        receivers.append(rx)
        let role = "drl_gone_\(UUID().uuidString.prefix(8).lowercased())"
        try Harness.psql(database, "CREATE ROLE \(role); CREATE TABLE owned (i int); INSERT INTO owned VALUES (1); ALTER TABLE owned OWNER TO \(role)")
        let dir = try makeDir()
        let b = try Harness.pgsnap(["backup", "-d", database], dir: dir)
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = Harness.snapshotID(b)
        try Harness.psql(database, "REASSIGN OWNED BY \(role) TO CURRENT_USER; DROP OWNED BY \(role); DROP ROLE \(role)")
        let before = try scratchDatabases()
        let prom = dir + "/drill.prom"

        let r = try Harness.pgsnap(["drill", "-d", database, "--quiet", "--metrics-file", prom, "--notify", "json+\(rx.base)/hook/secret"], dir: dir)
        Harness.assertOneErrorLine(r, status: 2, "drill whose load fails")
        XCTAssertTrue(r.stderr.contains("restore drill of \(id) failed: restore_test check") && r.stderr.contains(role), r.stderr)
        XCTAssertEqual(try scratchDatabases(), before, "the drill left its scratch database")
        let proof = try XCTUnwrap(try Harness.manifest(dir: dir, id: id)["restore_test"] as? [String: Any])
        XCTAssertEqual(proof["ok"] as? Bool, false)
        XCTAssertEqual(try metrics(prom)["pgsnap_restore_drill_success{database=\"\(database)\"}"], "0")
        let doc = try XCTUnwrap(rx.requests.first?.json)
        XCTAssertEqual(doc["event"] as? String, "drill.failure")
        XCTAssertEqual(doc["exit_code"] as? Int, 2)
        XCTAssertTrue((doc["error"] as? String ?? "").contains(role), "\(doc)")
    }

    func testDrillWithNoSnapshotFailsAndSaysSoInTheMetrics() throws {
        let dir = try makeDir()
        XCTAssertEqual(try Harness.pgsnap(["backup", "-d", database, "-q"], dir: dir).status, 0)
        let prom = dir + "/drill.prom"
        let other = "never_backed_up"
        let r = try Harness.pgsnap(["drill", "-d", other, "--metrics-file", prom], dir: dir)
        Harness.assertOneErrorLine(r, status: 1, "drill with no snapshot")
        XCTAssertTrue(r.stderr.contains("No snapshot matches 'latest'"), r.stderr)
        XCTAssertEqual(try metrics(prom)["pgsnap_restore_drill_success{database=\"\(other)\"}"], "0")
    }
}
