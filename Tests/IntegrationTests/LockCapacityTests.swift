import Foundation
import XCTest

/// pgsnap backs up and restores every database plain pg_dump and psql can, on the same server
/// settings (issue 11): on a throwaway server whose lock table is small, a schema of 1,500 tables
/// (each with a primary key) fits pg_dump's locks once but not twice, and not a one-transaction load.
final class LockCapacityTests: XCTestCase {
    static let tables = 1500

    /// The second server scripts/test starts for this (`scripts/pg start DIR max_connections=10
    /// max_locks_per_transaction=64`): 64 x (10 connections + 22 other backends) = 2,048 lock slots.
    static var serverEnv: [String: String?] {
        ["PGHOST": Harness.require("PGSNAP_TEST_SMALL_PGHOST"), "PGPORT": Harness.require("PGSNAP_TEST_SMALL_PGPORT"),
         "PGUSER": "postgres", "PGDATABASE": "postgres"]
    }

    var dirs: [String] = []

    override func tearDown() {
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
    }

    @discardableResult
    func run(_ tool: String, _ args: [String], stdin: Data? = nil) throws -> Harness.Result {
        try Harness.run(Harness.pgbin + "/" + tool, args, env: Self.serverEnv, stdin: stdin)
    }

    func pgsnap(_ args: [String], dir: String) throws -> Harness.Result {
        var e = Self.serverEnv
        e["PGSNAP_DIR"] = dir
        return try Harness.run(Harness.binary, args, env: e)
    }

    @discardableResult
    func sql(_ db: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try run("psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", text])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    /// A database of `tables` tables with a primary key and a row each, created in batches
    /// (one transaction for all would itself run out of lock slots).
    func makeManyTables() throws -> String {
        let db = "many_" + UUID().uuidString.prefix(8).lowercased()
        try sql("postgres", "CREATE DATABASE \(db)")
        var script = "SET synchronous_commit = off;\n"
        for batch in stride(from: 0, to: Self.tables, by: 150) {
            script += "BEGIN;\n"
            for i in batch..<min(batch + 150, Self.tables) {
                script += "CREATE TABLE t\(i) (id int PRIMARY KEY, v text); INSERT INTO t\(i) VALUES (\(i), 'row \(i)');\n"
            }
            script += "COMMIT;\n"
        }
        let r = try run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db], stdin: Data(script.utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        return db
    }

    func tempDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    func testBackupAndRestoreOfMoreTablesThanFitTwiceInTheLockTable() throws {
        let db = try makeManyTables()
        // What plain tools do on this server: pg_dump succeeds, a one-transaction load does not.
        let plain = try run("pg_dump", ["-d", db])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        try sql("postgres", "CREATE DATABASE \(db)_one_tx")
        // From a file, not our stdin: psql stops at the error, and writing on would raise SIGPIPE here.
        let dumpFile = try tempDir() + "/plain.sql"
        try Data(plain.stdout.utf8).write(to: URL(fileURLWithPath: dumpFile))
        let oneTx = try run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", db + "_one_tx", "-f", dumpFile])
        XCTAssertTrue(oneTx.stderr.contains("out of shared memory"), "precondition: psql -1 should run out of locks: \(oneTx.stderr)")
        try sql("postgres", "DROP DATABASE \(db)_one_tx")

        let dir = try tempDir()
        let backup = try pgsnap(["backup", "-d", db], dir: dir)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let warnings = backup.stderr.split(separator: "\n").filter { $0.hasPrefix("pgsnap: warning: ") }
        XCTAssertEqual(warnings.count, 1, backup.stderr)
        XCTAssertTrue(warnings.first?.contains("\(Self.tables) tables") ?? false, backup.stderr)
        XCTAssertTrue(warnings.first?.contains("max_locks_per_transaction") ?? false, backup.stderr)
        let id = Harness.snapshotID(backup)
        let locking = try XCTUnwrap(try Harness.manifest(dir: dir, id: id)["table_locking"] as? [String: Any])
        XCTAssertEqual(locking["mode"] as? String, "pg_dump_only")
        XCTAssertEqual(locking["tables"] as? Int, Self.tables)

        let copy = db + "_copy"
        let restore = try pgsnap(["restore", id, "--target", copy], dir: dir)
        XCTAssertEqual(restore.status, 0, restore.stderr)
        XCTAssertEqual(try sql(copy, "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"), "\(Self.tables)")
        XCTAssertEqual(try sql(copy, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE i.indisprimary AND c.relnamespace = 'public'::regnamespace"), "\(Self.tables)")
        XCTAssertEqual(try sql(copy, "SELECT v FROM t1499"), "row 1499")
        for name in [db, copy] { try sql("postgres", "DROP DATABASE \(name) WITH (FORCE)") }
    }

    /// When even pg_dump's own locks do not fit (another session holds as many), the error names the cause.
    func testOutOfLockSlotsNamesTheSettingAndTheTableCount() throws {
        let db = try makeManyTables()
        // Two sessions hold 2,500 of the (about 2,048 plus slack) slots; pg_dump's 1,500 no longer fit.
        let held = [Self.tables, 1000]
        let holders = try held.map { n in
            try HeldSession(database: db, applicationName: "lock_holder", env: Self.serverEnv,
                            sql: "BEGIN; LOCK TABLE \((0..<n).map { "t\($0)" }.joined(separator: ", ")) IN ACCESS SHARE MODE;")
        }
        defer { holders.forEach { $0.close() } }
        XCTAssertTrue(Harness.poll(timeout: 60) {
            (try? self.sql("postgres", "SELECT count(*) >= \(held.reduce(0, +)) FROM pg_locks WHERE mode = 'AccessShareLock'")) == "t"
        }, "the holders never took their locks")
        let plain = try run("pg_dump", ["-d", db])
        XCTAssertNotEqual(plain.status, 0, "precondition: plain pg_dump should run out of locks too")

        let dir = try tempDir()
        let r = try pgsnap(["backup", "-d", db, "--quiet"], dir: dir)
        XCTAssertEqual(r.status, 1, r.stderr)
        let errors = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("pgsnap: warning: ") }
        XCTAssertEqual(errors.count, 1, r.stderr)
        let line = String(errors.first ?? "")
        XCTAssertTrue(line.hasPrefix("pgsnap: "), line)
        XCTAssertTrue(line.contains("max_locks_per_transaction"), line)
        XCTAssertTrue(line.contains("\(Self.tables) tables"), line)
        XCTAssertEqual(Harness.snapshotFiles(dir), [], "a failed backup left files")
        holders.forEach { $0.close() }
        try sql("postgres", "DROP DATABASE \(db) WITH (FORCE)")
    }

    /// A directory restore with a big table needs about two connections a job: on this server
    /// (max_connections 10) --jobs 8 failed with pg_restore's "could not write to the
    /// communication channel". It now runs with the jobs that fit, and says so.
    func testJobsAreCappedToTheServersFreeConnections() throws {
        let db = "conns_" + UUID().uuidString.prefix(8).lowercased()
        try sql("postgres", "CREATE DATABASE \(db)")
        defer { _ = try? run("psql", ["-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS \(db) WITH (FORCE)"]) }
        try sql(db, "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 50000) g; ALTER TABLE big ADD PRIMARY KEY (id)")
        for i in 0..<6 { try sql(db, "CREATE TABLE small\(i) AS SELECT generate_series(1, 10) AS id") }
        let dir = try tempDir()
        let b = try pgsnap(["backup", "-d", db, "--format", "directory", "--jobs", "2"], dir: dir)
        XCTAssertEqual(b.status, 0, b.stderr)
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let copy = db + "_copy"
        defer { _ = try? run("psql", ["-X", "-q", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS \(copy) WITH (FORCE)"]) }
        var e = Self.serverEnv
        e["PGSNAP_DIR"] = dir
        e["PGSNAP_PARALLEL_COPY_MIN_BYTES"] = "0"
        let r = try Harness.run(Harness.binary, ["restore", id, "--target", copy, "--jobs", "8"], env: e)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("job(s) instead of 8: the server has"), r.stderr)
        XCTAssertEqual(try sql(copy, "SELECT count(*) FROM big"), "50000")
    }
}
