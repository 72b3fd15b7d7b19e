import Foundation
import XCTest

/// Wrong input, wrong places and interruptions: the documented exit code, one `pgsnap: ` line on
/// stderr, no crash, and no file where none belongs.
final class BadInputTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    func makeDatabase(_ prefix: String = "bad") throws -> String {
        let db = try Harness.createDatabase(prefix)
        databases.append(db)
        return db
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    /// `pgsnap list | head -1`: a reader that goes away is not a crash (Foundation's
    /// FileHandle.write trapped on EPIPE: exit 132 and a backtrace).
    func testAReaderThatWentAwayIsNotACrash() throws {
        let dir = try makeDir()
        for args in [["list", "--json"], ["list"], ["check", "--json"]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Harness.binary)
            p.arguments = args
            var e = Harness.env
            e["PGSNAP_DIR"] = dir
            p.environment = e
            let out = Pipe(), err = Pipe()
            try out.fileHandleForReading.close()  // nobody will read: every write is EPIPE
            p.standardOutput = out
            p.standardError = err
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .exit, "\(args): \(stderr)")
            XCTAssertLessThan(p.terminationStatus, 126, "\(args): \(stderr)")
            XCTAssertFalse(stderr.contains("Fatal error") || stderr.contains("Crash") || stderr.contains("backtrace"), "\(args): \(stderr)")
        }
    }

    func testInvalidLabelsAreUsageErrorsAndWriteNothing() throws {
        let db = try makeDatabase()
        try Harness.psql(db, "CREATE TABLE t AS SELECT 1 AS x")
        let parent = try makeDir()
        let dir = parent + "/snapshots"
        let canary = "/tmp/pwned"
        try? FileManager.default.removeItem(atPath: canary)
        let labels = ["../evil", "a/b", "a b", "$(touch /tmp/pwned)", String(repeating: "a", count: 10_000), "a\nb", "line\nbreak"]
        for label in labels {
            let r = try Harness.pgsnap(["backup", "-d", db, "--label", label], dir: dir)
            let shown = String(label.prefix(40))
            Harness.assertOneErrorLine(r, status: 64, "label \(shown.debugDescription)")
            XCTAssertTrue(r.stderr.contains("invalid label"), "label \(shown.debugDescription): \(r.stderr)")
            XCTAssertTrue(r.stdout.isEmpty, "label \(shown.debugDescription) printed: \(r.stdout)")
            XCTAssertLessThan(r.stderr.utf8.count, 1000, "the 10,000-character label must not be echoed whole")
        }
        XCTAssertEqual(Harness.entries(parent), [], "a rejected backup wrote files (or created the directory)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: canary), "the label was run by a shell")
        XCTAssertFalse(FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "evil.sql.gz"))
    }

    /// A legal 63-byte database name of non-ASCII letters (three bytes each in a file name) and a
    /// label the rules accept: the snapshot's files could not be named. A usage error before
    /// anything is dumped, in every format, naming the limit; nothing is written; without the
    /// label it works.
    func testFileNamesTooLongForTheFileSystemAreRefusedBeforeTheDump() throws {
        let name = String(repeating: "é", count: 31) + "x"
        XCTAssertEqual(name.utf8.count, 63)
        try Harness.psql("postgres", "CREATE DATABASE \"\(name)\"")
        databases.append(name)
        try Harness.psql(name, "CREATE TABLE t AS SELECT 1 AS x")
        let dir = try makeDir()
        let label = String(repeating: "L", count: 34)
        for extra in [[], ["--format", "directory"]] {
            let r = try Harness.pgsnap(["backup", "-d", name, "--label", label] + extra, dir: dir)
            Harness.assertOneErrorLine(r, status: 64, "a 63-byte name with a 34-character label \(extra)")
            XCTAssertTrue(r.stderr.contains("more than the 255 a file system allows") && r.stderr.contains("shorter --label"), r.stderr)
            XCTAssertEqual(Harness.snapshotFiles(dir), [], "\(extra) wrote files")
        }
        let ok = try Harness.pgsnap(["backup", "-d", name, "-q"], dir: dir)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try Harness.pgsnap(["verify", "latest", "-d", name, "-q"], dir: dir).status, 0)
    }

    func testMissingDatabaseIsNamed() throws {
        let dir = try makeDir()
        let name = "no_such_db_\(UUID().uuidString.prefix(8).lowercased())"
        let r = try Harness.pgsnap(["backup", "-d", name], dir: dir)
        Harness.assertOneErrorLine(r, status: 1, "missing database")
        XCTAssertTrue(r.stderr.contains(name), r.stderr)
        XCTAssertTrue(r.stderr.contains("does not exist"), r.stderr)
        XCTAssertEqual(Harness.snapshotFiles(dir), [], "a failed backup left files")
    }

    func testUnreachableServerGivesAHint() throws {
        let db = try makeDatabase()
        let dir = try makeDir()
        let r = try Harness.pgsnap(["backup", "-d", db, "-h", "127.0.0.1", "-p", "1"], dir: dir)
        Harness.assertOneErrorLine(r, status: 1, "unreachable server")
        XCTAssertTrue(r.stderr.contains("127.0.0.1"), r.stderr)
        XCTAssertTrue(r.stderr.contains("Is the server running"), "no hint: \(r.stderr)")
        XCTAssertEqual(Harness.snapshotFiles(dir), [])
    }

    func testDirThatIsAFileOrCannotBeCreated() throws {
        let db = try makeDatabase()
        let parent = try makeDir()
        let file = parent + "/plain-file"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))

        let r = try Harness.run(Harness.binary, ["backup", "-d", db, "--dir", file])
        Harness.assertOneErrorLine(r, status: 1, "--dir is a file")
        XCTAssertTrue(r.stderr.contains("not a directory"), r.stderr)

        for bad in [file + "/sub", "/proc/pgsnap-\(UUID().uuidString.prefix(6))", parent + "/missing/parent"] {
            let r = try Harness.run(Harness.binary, ["backup", "-d", db, "--dir", bad])
            Harness.assertOneErrorLine(r, status: 1, "--dir \(bad)")
            XCTAssertTrue(r.stderr.contains(bad), "the message should name \(bad): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: bad))
        }
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "keep me")
        XCTAssertEqual(Harness.entries(parent), ["plain-file"])
    }

    func testUnknownAndMalformedSnapshotIds() throws {
        let dir = try makeDir()
        for command in ["show", "verify"] {
            let unknown = try Harness.pgsnap([command, "nosuchdb_20260101T000000Z"], dir: dir)
            Harness.assertOneErrorLine(unknown, status: 1, "\(command) unknown id")
            XCTAssertTrue(unknown.stderr.contains("pgsnap list"), unknown.stderr)

            let traversal = try Harness.pgsnap([command, "../../etc/passwd"], dir: dir)
            Harness.assertOneErrorLine(traversal, status: 64, "\(command) ../../etc/passwd")
            XCTAssertFalse(traversal.stdout.contains("root:"), "printed /etc/passwd: \(traversal.stdout)")
        }
        let restore = try Harness.pgsnap(["restore", "../../etc/passwd", "--yes"], dir: dir)
        Harness.assertOneErrorLine(restore, status: 64, "restore ../../etc/passwd")
        XCTAssertEqual(Harness.entries(dir), [])
    }

    func testBadLevelAndBadConnectionStringAreUsageErrors() throws {
        let db = try makeDatabase()
        let parent = try makeDir()
        let dir = parent + "/snapshots"
        let level = try Harness.pgsnap(["backup", "-d", db, "--level", "10"], dir: dir)
        Harness.assertOneErrorLine(level, status: 64, "--level 10")
        XCTAssertTrue(level.stderr.contains("--level"), level.stderr)

        for bad in ["0", "-1", "nan", "90000", "soon"] {
            let wait = try Harness.pgsnap(["backup", "-d", db, "--lock-wait-timeout", bad], dir: dir)
            Harness.assertOneErrorLine(wait, status: 64, "--lock-wait-timeout \(bad)")
            XCTAssertTrue(wait.stderr.contains("--lock-wait-timeout"), wait.stderr)
        }

        let conn = try Harness.pgsnap(["backup", "-d", "host='unterminated"], dir: dir)
        Harness.assertOneErrorLine(conn, status: 64, "bad connection string")
        XCTAssertTrue(conn.stderr.contains("connection string"), conn.stderr)
        XCTAssertEqual(Harness.entries(parent), [], "a usage error wrote files")
    }

    /// With PATH useless pgsnap still looks in /usr/lib/postgresql/<server major>/bin, which exists on
    /// this machine, so the observable behaviour is a good backup made with that pg_dump. Where it does
    /// not exist, the error must name pg_dump and the places searched.
    func testPgDumpFoundWithoutPathOrMissingIsNamed() throws {
        let db = try makeDatabase()
        try Harness.psql(db, "CREATE TABLE t AS SELECT 1 AS x")
        let dir = try makeDir()
        let major = (Int(try Harness.psql(db, "SHOW server_version_num")) ?? 0) / 10000
        let versioned = "/usr/lib/postgresql/\(major)/bin/pg_dump"

        let r = try Harness.pgsnap(["backup", "-d", db], dir: dir, env: ["PATH": "/nonexistent"])
        if FileManager.default.isExecutableFile(atPath: versioned) {
            XCTAssertEqual(r.status, 0, r.stderr)
            let m = try Harness.manifest(dir: dir, id: Harness.snapshotID(r))
            let version = try Harness.run(versioned, ["--version"])
            let recorded = try XCTUnwrap(m["pg_dump_version"] as? String)
            XCTAssertTrue(version.stdout.contains(" \(recorded)"), "manifest says \(recorded), \(versioned) says \(version.stdout)")
            let verify = try Harness.pgsnap(["verify", "latest"], dir: dir)
            XCTAssertEqual(verify.status, 0, verify.stderr)
        } else {
            Harness.assertOneErrorLine(r, status: 1, "pg_dump missing")
            XCTAssertTrue(r.stderr.contains("pg_dump not found"), r.stderr)
            XCTAssertTrue(r.stderr.contains("/nonexistent"), "should say where it looked: \(r.stderr)")
            XCTAssertEqual(Harness.snapshotFiles(dir), [])
        }
    }

    func testInterruptStopsPgDumpAndRemovesThePartialFile() throws {
        let db = try makeDatabase("sigint")
        try Harness.psql(db, "CREATE TABLE t AS SELECT i, md5(i::text) AS a, md5((i * 7)::text) AS b FROM generate_series(1, 200000) i")
        let dir = try makeDir()
        var dumpers: [Int32] = []
        var interrupted = false
        // Level 9 on one thread keeps the dump running long enough to be caught mid-way.
        let r = try Harness.pgsnap(["backup", "-d", db, "--level", "9", "--jobs", "1"], dir: dir) { pid in
            _ = Harness.poll(timeout: 60) {
                guard Procfs.isAlive(pid) else { return true }
                let partial = Harness.entries(dir).contains { $0.hasSuffix(".partial") }
                let running = Procfs.descendants(of: pid).filter { e in
                    e.ppid == pid && e.comm == "pg_dump" && (Procfs.cmdline(e.pid) ?? []).contains { $0.hasPrefix("--snapshot") }
                }
                if partial && !running.isEmpty {
                    dumpers = running.map(\.pid)
                    return true
                }
                return false
            }
            if !dumpers.isEmpty {
                interrupted = kill(pid, SIGINT) == 0
            }
        }
        XCTAssertTrue(interrupted, "never saw pg_dump running with a .partial file; stderr: \(r.stderr)")
        XCTAssertEqual(r.status, 130, r.stderr)
        XCTAssertTrue(r.stderr.contains("interrupted"), r.stderr)
        for l in r.stderr.split(separator: "\n") {
            XCTAssertTrue(l.hasPrefix("pgsnap: "), "stderr line: \(l)")
        }
        XCTAssertEqual(Harness.snapshotFiles(dir), [], "left behind after Ctrl-C")
        for p in dumpers {
            if let e = Procfs.entry(p), e.comm == "pg_dump" {
                XCTAssertEqual(e.state, "Z", "pg_dump \(p) still running after pgsnap exited (parent now \(e.ppid))")
            }
        }
        let list = try Harness.pgsnap(["list", "--json"], dir: dir)
        XCTAssertEqual(list.status, 0, list.stderr)
        let listed = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [Any]
        XCTAssertEqual(listed?.count, 0, "no snapshot should exist: \(list.stdout)")
    }
}
