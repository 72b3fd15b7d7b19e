import Foundation
import XCTest

/// `--notify` / `PGSNAP_NOTIFY` against a real local receiver: what is sent for a good and a
/// failed backup, retries, a hung or absent receiver, `--notify-on`, bad URLs and secrets.
final class NotifyTests: XCTestCase {
    static let token = "0f1e2d3c-tok3n-\(UUID().uuidString.prefix(8))"
    var database = ""
    var dirs: [String] = []
    var receivers: [NotifyReceiver] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        database = try Harness.createDatabase("ntf")
        try Harness.psql(database, "CREATE TABLE t AS SELECT i, md5(i::text) AS a FROM generate_series(1, 500) i")
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

    func receiver(_ answers: [String] = ["200"], tls: (cert: String, key: String)? = nil) throws -> NotifyReceiver {
        let r = try NotifyReceiver(answers: answers, tls: tls)
        receivers.append(r)
        return r
    }

    func assertNoToken(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(text.contains(Self.token), "\(what) contains the notify token: \(text)", file: file, line: line)
        XCTAssertFalse(text.contains("tok3n"), "\(what) contains part of the notify token: \(text)", file: file, line: line)
    }

    func warnings(_ r: Harness.Result) -> [Substring] {
        r.stderr.split(separator: "\n").filter { $0.contains("warning: could not notify") }
    }

    func testGoodBackupPingsStartAndSuccessAndPostsJSON() throws {
        let rx = try receiver()
        let dir = try makeDir()
        let r = try Harness.pgsnap(["backup", "-d", database,
                                    "--notify", "\(rx.base)/ping/\(Self.token)",
                                    "--notify", "json+\(rx.base)/hook/\(Self.token)",
                                    "--notify", "slack+\(rx.base)/slack/\(Self.token)"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let id = Harness.snapshotID(r)
        let reqs = rx.requests
        XCTAssertEqual(reqs.map { "\($0.method) \($0.path)" }.sorted(), [
            "GET /ping/\(Self.token)/start", "POST /hook/\(Self.token)", "POST /ping/\(Self.token)",
        ].sorted(), "chat hears of failures only by default")
        XCTAssertEqual(reqs.first?.path, "/ping/\(Self.token)/start", "the start ping comes first")
        let success = try XCTUnwrap(reqs.first { $0.method == "POST" && $0.path == "/ping/\(Self.token)" })
        XCTAssertTrue(success.body.contains("backup of \"\(database)\" succeeded"), success.body)
        XCTAssertTrue(success.body.contains("snapshot: \(id)"), success.body)
        XCTAssertEqual(success.headers["user-agent"]?.hasPrefix("pgsnap/"), true)

        let m = try Harness.manifest(dir: dir, id: id)
        let doc = try XCTUnwrap(reqs.first { $0.path == "/hook/\(Self.token)" }?.json)
        XCTAssertEqual(doc["version"] as? Int, 1)
        XCTAssertEqual(doc["event"] as? String, "backup.success")
        XCTAssertEqual(doc["status"] as? String, "success")
        XCTAssertEqual(doc["exit_code"] as? Int, 0)
        XCTAssertEqual(doc["database"] as? String, database)
        XCTAssertEqual(doc["snapshot"] as? String, id)
        XCTAssertEqual(doc["compressed_bytes"] as? Int, m["compressed_bytes"] as? Int)
        XCTAssertEqual(doc["rows"] as? Int, 500)
        XCTAssertTrue(doc["error"] is NSNull, "\(doc)")
        XCTAssertEqual(doc["host"] as? String, ProcessInfo.processInfo.hostName)
        XCTAssertNotNil(doc["duration_seconds"] as? Double)

        assertNoToken(r.stdout, "stdout")
        assertNoToken(r.stderr, "stderr")
        for f in Harness.entries(dir) { assertNoToken(String(decoding: try Harness.bytes(dir + "/" + f), as: UTF8.self), f) }
    }

    func testFailedBackupPingsFailAndTellsChatWithTheSameExitStatus() throws {
        let rx = try receiver()
        let dir = try makeDir()
        let missing = "no_such_db_\(UUID().uuidString.prefix(6).lowercased())"
        let plain = try Harness.pgsnap(["backup", "-d", missing], dir: dir)
        Harness.assertOneErrorLine(plain, status: 1, "backup of a missing database")
        let env = ["PGSNAP_NOTIFY": "\(rx.base)/ping/\(Self.token) slack+\(rx.base)/slack/\(Self.token)  json+\(rx.base)/hook/\(Self.token)"]
        let r = try Harness.pgsnap(["backup", "-d", missing], dir: dir, env: env)
        XCTAssertEqual(r.status, plain.status, "notifying changed the exit status")
        XCTAssertEqual(r.stderr, plain.stderr, "notifying changed what is printed")
        let errorLine = plain.stderr.trimmingCharacters(in: .newlines).replacingOccurrences(of: "pgsnap: ", with: "")

        let reqs = rx.requests
        XCTAssertEqual(reqs.map { "\($0.method) \($0.path)" }.sorted(), [
            "GET /ping/\(Self.token)/start", "POST /hook/\(Self.token)", "POST /ping/\(Self.token)/fail", "POST /slack/\(Self.token)",
        ].sorted())
        let fail = try XCTUnwrap(reqs.first { $0.path == "/ping/\(Self.token)/fail" })
        XCTAssertTrue(fail.body.contains("backup of \"\(missing)\" FAILED"), fail.body)
        XCTAssertTrue(fail.body.contains("(exit 1)"), fail.body)
        XCTAssertTrue(fail.body.contains("error: \(errorLine)"), fail.body)
        let chat = try XCTUnwrap(reqs.first { $0.path == "/slack/\(Self.token)" }?.json)
        XCTAssertEqual(chat.keys.sorted(), ["text"])
        let text = try XCTUnwrap(chat["text"] as? String)
        XCTAssertTrue(text.contains(missing) && text.contains("FAILED") && text.contains(errorLine), text)
        let doc = try XCTUnwrap(reqs.first { $0.path == "/hook/\(Self.token)" }?.json)
        XCTAssertEqual(doc["event"] as? String, "backup.failure")
        XCTAssertEqual(doc["exit_code"] as? Int, 1)
        XCTAssertEqual(doc["error"] as? String, errorLine)
        XCTAssertEqual(doc["database"] as? String, missing)
        XCTAssertTrue(doc["snapshot"] is NSNull)
        XCTAssertEqual(Harness.snapshotFiles(dir), [])
    }

    /// A recipients file gone from the machine fails the run like anything else at night: exit 1
    /// and a failure notification, not a usage error before the notifications are set up.
    func testAMissingRecipientsFileIsAFailureThatIsReported() throws {
        let rx = try receiver()
        let dir = try makeDir()
        let r = try Harness.pgsnap(["backup", "-d", database, "--encrypt-to-file", dir + "/gone.txt", "--notify", "json+\(rx.base)/hook/\(Self.token)"],
                                   dir: dir)
        Harness.assertOneErrorLine(r, status: 1, "a missing recipients file")
        let doc = try XCTUnwrap(rx.requests.compactMap(\.json).last, "no notification")
        XCTAssertEqual(doc["event"] as? String, "backup.failure")
        XCTAssertEqual(doc["exit_code"] as? Int, 1)
        XCTAssertTrue((doc["error"] as? String)?.contains("cannot read recipients file") ?? false, "\(doc)")
        XCTAssertEqual(Harness.snapshotFiles(dir), [])
    }

    func testRetriesAfterA500() throws {
        let rx = try receiver(["500", "500", "200"])
        let r = try Harness.pgsnap(["backup", "-d", database, "--notify", "json+\(rx.base)/hook/\(Self.token)"], dir: try makeDir())
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(warnings(r), [], "the third attempt was answered 200")
        XCTAssertEqual(rx.requests.map(\.path), Array(repeating: "/hook/\(Self.token)", count: 3))
        XCTAssertEqual(Set(rx.requests.map(\.body)).count, 1, "every attempt sends the same document")
    }

    func testAReceiverThatKeepsFailingGivesOneWarningAndTheBackupSucceeds() throws {
        let rx = try receiver(["503"])
        let r = try Harness.pgsnap(["backup", "-d", database, "--notify", "json+\(rx.base)/hook/\(Self.token)"], dir: try makeDir(),
                                   env: ["PGSNAP_NOTIFY_ATTEMPTS": "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(rx.requests.count, 2, "PGSNAP_NOTIFY_ATTEMPTS bounds the attempts")
        let w = warnings(r)
        XCTAssertEqual(w.count, 1, r.stderr)
        XCTAssertEqual(w.first.map(String.init), "pgsnap: warning: could not notify json+http://127.0.0.1:\(rx.port)/…: HTTP 503 (2 attempts within 5 s); the run's result is unchanged")
        assertNoToken(r.stderr, "stderr")
    }

    /// systemd stops a backup with SIGTERM: the run still says so, with its exit code 130.
    func testATerminatedBackupSendsAFailureWith130() throws {
        try Harness.psql(database, "CREATE TABLE big AS SELECT i, md5(i::text) AS a, md5((i * 7)::text) AS b FROM generate_series(1, 200000) i")
        let rx = try receiver()
        let dir = try makeDir()
        var terminated = false
        let r = try Harness.pgsnap(["backup", "-d", database, "--level", "9", "--jobs", "1", "--notify", "json+\(rx.base)/hook/\(Self.token)"],
                                   dir: dir) { pid in
            let dumping = Harness.poll(timeout: 60) {
                guard Procfs.isAlive(pid) else { return true }
                return Harness.entries(dir).contains { $0.hasSuffix(".partial") }
                    && Procfs.descendants(of: pid).contains { $0.ppid == pid && $0.comm == "pg_dump" }
            }
            if dumping && Procfs.isAlive(pid) { terminated = kill(pid, SIGTERM) == 0 }
        }
        XCTAssertTrue(terminated, "never saw pg_dump running; stderr: \(r.stderr)")
        XCTAssertEqual(r.status, 130, r.stderr)
        let doc = try XCTUnwrap(rx.requests.first?.json)
        XCTAssertEqual(doc["event"] as? String, "backup.failure")
        XCTAssertEqual(doc["exit_code"] as? Int, 130)
        XCTAssertTrue((doc["error"] as? String ?? "").contains("interrupted"), "\(doc)")
        XCTAssertEqual(Harness.snapshotFiles(dir), [])
    }

    /// A signal while the result is being sent (systemd stopping a job whose receiver hangs):
    /// the exit status stays the one the targets were told, 0, not 130, and the snapshot stays.
    func testASignalWhileTheResultIsSentKeepsTheStatusItAnnounced() throws {
        let rx = try receiver(["hang"])
        let dir = try makeDir()
        var terminated = false
        let r = try Harness.pgsnap(["backup", "-d", database, "--notify", "json+\(rx.base)/hook/\(Self.token)"], dir: dir,
                                   env: ["PGSNAP_NOTIFY_TIMEOUT": "8"]) { pid in
            let sending = Harness.poll(timeout: 60) {
                !Procfs.isAlive(pid) || rx.requests.contains { $0.json?["event"] as? String == "backup.success" }
            }
            if sending && Procfs.isAlive(pid) { terminated = kill(pid, SIGTERM) == 0 }
        }
        XCTAssertTrue(terminated, "pgsnap was gone before its result was sent; stderr: \(r.stderr)")
        XCTAssertEqual(r.status, 0, r.stderr)
        let id = Harness.snapshotID(r)
        XCTAssertFalse(id.isEmpty, r.stdout)
        XCTAssertEqual(try Harness.pgsnap(["verify", id], dir: dir).status, 0)
    }

    func testA404IsNotRetried() throws {
        let rx = try receiver(["404"])
        let r = try Harness.pgsnap(["backup", "-d", database, "--notify", "json+\(rx.base)/hook/\(Self.token)"], dir: try makeDir())
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(rx.requests.count, 1, "a wrong URL stays wrong: no retry")
        XCTAssertEqual(warnings(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("HTTP 404; the run's result is unchanged"), r.stderr)
    }

    /// A receiver that accepts and never answers: the timeout is the budget of all attempts, so
    /// the one attempt that hangs uses it up and no second one is made.
    func testAHungReceiverIsGivenUpAfterTheTimeout() throws {
        let rx = try receiver(["hang"])
        let r = try Harness.pgsnap(["backup", "-d", database, "--notify", "json+\(rx.base)/hook/\(Self.token)"], dir: try makeDir(),
                                   env: ["PGSNAP_NOTIFY_TIMEOUT": "1", "PGSNAP_NOTIFY_ATTEMPTS": "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(rx.requests.count, 1, "a hung attempt leaves no time for another")
        XCTAssertEqual(warnings(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("could not notify json+http://127.0.0.1:\(rx.port)/…: ") && !r.stderr.contains("attempts"), r.stderr)
    }

    func testReceiverDownTheBackupStillSucceeds() throws {
        let rx = try receiver()
        let port = rx.port
        rx.stop()
        let dir = try makeDir()
        let r = try Harness.pgsnap(["backup", "-d", database, "--notify", "http://127.0.0.1:\(port)/ping/\(Self.token)"], dir: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(Harness.snapshotID(r).isEmpty)
        // The start ping (one attempt) and the success ping (three) failed: one line for the receiver.
        XCTAssertEqual(warnings(r).count, 1, r.stderr)
        XCTAssertTrue(warnings(r).allSatisfy { $0.contains("connection refused") && $0.contains("http://127.0.0.1:\(port)/…") }, r.stderr)
        XCTAssertFalse(r.stderr.contains("(start)"), r.stderr)
        assertNoToken(r.stderr, "stderr")
    }

    /// A receiver that answers a byte at a time, never finishing its header: every read gets
    /// something, so only a deadline on the whole request gives up on it. The run ends, with
    /// one warning, and the other receiver got its document.
    func testATricklingReceiverIsGivenUpAtTheDeadline() throws {
        let slow = try receiver(["trickle"])
        let good = try receiver()
        let r = try Harness.pgsnap(["backup", "-d", database, "--notify", "json+\(slow.base)/hook/\(Self.token)",
                                    "--notify", "json+\(good.base)/hook/\(Self.token)"], dir: try makeDir(),
                                   env: ["PGSNAP_NOTIFY_TIMEOUT": "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(warnings(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("could not notify json+http://127.0.0.1:\(slow.port)/…: no answer within 2 s"), r.stderr)
        XCTAssertEqual(good.requests.first?.json?["event"] as? String, "backup.success", "\(good.requests)")
    }

    /// More hung receivers than cores: each target has its own thread, so the one that answers
    /// still hears of the failure (targets sent one after another would find the time used up).
    func testHungReceiversDoNotHoldBackTheOthers() throws {
        let hung = try (0..<max(2, ProcessInfo.processInfo.activeProcessorCount)).map { _ in try receiver(["hang"]) }
        let good = try receiver()
        let targets = (hung + [good]).flatMap { ["--notify", "slack+\($0.base)/slack/\(Self.token)"] }
        let r = try Harness.pgsnap(["backup", "-d", "no_such_database_ntf"] + targets, dir: try makeDir(),
                                   env: ["PGSNAP_NOTIFY_TIMEOUT": "2"])
        XCTAssertNotEqual(r.status, 0, r.stderr)
        XCTAssertEqual(warnings(r).count, hung.count, r.stderr)
        for h in hung { XCTAssertEqual(h.requests.count, 1, "each hung receiver got its one attempt") }
        let text = try XCTUnwrap(good.requests.first?.json?["text"] as? String, "\(good.requests)")
        XCTAssertTrue(text.contains("no_such_database_ntf") && text.contains("FAILED"), text)
    }

    /// The job's own ping URL in PGSNAP_BACKUP_NOTIFY (a systemd env file), beside the shared
    /// chat webhook in PGSNAP_NOTIFY: neither is in pgsnap's argv, and other commands do not use it.
    func testACommandsOwnVariableAddsItsTargets() throws {
        let rx = try receiver()
        let dir = try makeDir()
        let env = ["PGSNAP_BACKUP_NOTIFY": "\(rx.base)/backup-ping/\(Self.token)", "PGSNAP_NOTIFY": "json+\(rx.base)/hook/\(Self.token)"]
        let b = try Harness.pgsnap(["backup", "-d", database], dir: dir, env: env)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertEqual(Set(rx.requests.map(\.path)),
                       ["/backup-ping/\(Self.token)/start", "/backup-ping/\(Self.token)", "/hook/\(Self.token)"], "\(rx.requests.map(\.path))")
        let v = try Harness.pgsnap(["verify", "--database", database], dir: dir, env: env)
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertEqual(rx.requests.filter { $0.path.hasPrefix("/backup-ping") }.count, 2, "verify does not ping backup's check")
        let bad = try Harness.pgsnap(["backup", "-d", database], dir: dir, env: ["PGSNAP_BACKUP_NOTIFY": "hc-ping.com/\(Self.token)"])
        XCTAssertEqual(bad.status, 0, "a bad PGSNAP_BACKUP_NOTIFY is a warning: \(bad.stderr)")
        XCTAssertTrue(bad.stderr.contains("warning: PGSNAP_BACKUP_NOTIFY word 1"), bad.stderr)
        assertNoToken(bad.stderr, "stderr")
    }

    func testNotifyOnFailureAndAlways() throws {
        let rx = try receiver()
        let targets = ["--notify", "\(rx.base)/ping/\(Self.token)", "--notify", "slack+\(rx.base)/slack/\(Self.token)"]
        var r = try Harness.pgsnap(["backup", "-d", database, "--notify-on", "failure"] + targets, dir: try makeDir())
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(rx.requests.count, 0, "--notify-on failure: a success sends nothing")
        r = try Harness.pgsnap(["backup", "-d", database] + targets, dir: try makeDir(), env: ["PGSNAP_NOTIFY_ON": "always"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(rx.requests.map { "\($0.method) \($0.path)" }.sorted(), [
            "GET /ping/\(Self.token)/start", "POST /ping/\(Self.token)", "POST /slack/\(Self.token)",
        ].sorted())
        let text = try XCTUnwrap(rx.requests.first { $0.path.hasPrefix("/slack") }?.json?["text"] as? String)
        XCTAssertTrue(text.contains("succeeded") && text.contains(database), text)
    }

    func testOtherCommandsNotifyToo() throws {
        let rx = try receiver()
        let dir = try makeDir()
        XCTAssertEqual(try Harness.pgsnap(["backup", "-d", database, "-q"], dir: dir).status, 0)
        let hook = "json+\(rx.base)/hook/\(Self.token)"
        for args in [["verify", "latest"], ["check", "-d", database], ["prune", "-d", database]] {
            let r = try Harness.pgsnap(args + ["--notify", hook], dir: dir)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        }
        // An empty directory fails check with exit 2: the failure says so.
        let r = try Harness.pgsnap(["check", "-d", database, "--notify", hook], dir: try makeDir())
        XCTAssertEqual(r.status, 2, r.stderr)
        // A cron push whose bucket cannot be reached (it sent nothing).
        let push = try Harness.pgsnap(["push", "--notify", hook, "--quiet"], dir: dir,
                                      env: S3Harness.env(remote: S3Harness.newRemote().url, endpoint: S3Harness.deadEndpoint()).merging(["PGSNAP_S3_ATTEMPTS": "1"]) { $1 })
        XCTAssertEqual(push.status, 1, push.stderr)
        let docs = rx.requests.compactMap(\.json)
        XCTAssertEqual(docs.map { $0["event"] as? String ?? "?" }, ["verify.success", "check.success", "prune.success", "check.failure", "push.failure"])
        XCTAssertEqual(docs.last?["exit_code"] as? Int, 1)
        XCTAssertEqual(docs.last?["error"] as? String, push.stderr.split(separator: "\n").last.map { String($0.dropFirst("pgsnap: ".count)) })
        let checkFailure = docs[3]
        XCTAssertEqual(checkFailure["exit_code"] as? Int, 2)
        // The one error line says "1 problem(s)"; which problem is in the tail.
        let tail = checkFailure["stderr_tail"] as? [String] ?? []
        XCTAssertTrue(tail.contains { $0.contains("\"\(database)\": no good snapshot in") }, "\(tail)")

        // Without -d, check covers every database of the directory: PGDATABASE (an env file's
        // libpq setting) does not name the run.
        let all = try Harness.pgsnap(["check", "--notify", hook], dir: try makeDir(), env: ["PGDATABASE": "not_the_one"])
        XCTAssertEqual(all.status, 2, all.stderr)
        let doc = try XCTUnwrap(rx.requests.compactMap(\.json).last)
        XCTAssertEqual(doc["event"] as? String, "check.failure")
        XCTAssertTrue(doc["database"] is NSNull, "\(doc)")
        XCTAssertFalse("\(doc)".contains("not_the_one"), "\(doc)")
    }

    func testBadNotifyValuesAreUsageErrorsThatDoNotEchoTheToken() throws {
        let dir = try makeDir()
        for (args, env) in [
            (["--notify", "ftp://example.com/\(Self.token)"], [:]),
            (["--notify", "https://user:\(Self.token)@example.com/x"], [:]),
            (["--notify", "json+https:///\(Self.token)"], [:]),
            (["--notify", "http://example.com/a b\(Self.token)"], [:]),
            (["--notify-on", "sometimes"], [:]),
        ] as [([String], [String: String?])] {
            let r = try Harness.pgsnap(["backup", "-d", database] + args, dir: dir, env: env)
            Harness.assertOneErrorLine(r, status: 64, "\(args) \(env)")
            assertNoToken(r.stderr, "stderr for \(args) \(env)")
        }
        XCTAssertEqual(Harness.snapshotFiles(dir), [], "a usage error took a backup")
    }

    /// A cron line or environment file whose options do not parse or validate fails (64) before
    /// the command starts: its targets (the environment's, and a valid --notify on the line) are
    /// still told, once, with the error line; nothing is taken. A command that does not notify
    /// (list) and --help send nothing. It was exit 64 every hour and nobody told.
    func testAJobWhoseOptionsAreWrongStillTellsItsTargets() throws {
        let rx = try receiver()
        let hook = "json+\(rx.base)/hook/\(Self.token)"
        let ping = "\(rx.base)/ping/\(Self.token)"
        let dir = try makeDir()
        for (args, env, command, names) in [
            (["check", "--max-age", "26hours"], ["PGSNAP_NOTIFY": hook], "check", "26hours"),
            (["backup", "-d", database, "--frobnicate"], ["PGSNAP_BACKUP_NOTIFY": hook], "backup", "--frobnicate"),
            (["prune", "--keep-days", "0", "--keep-last", "0", "--notify", hook], [:], "prune", "--allow-empty"),
            (["verify", "--notify=\(hook)", "--notify", "ftp://x/\(Self.token)"], [:], "verify", "--notify value"),
        ] as [([String], [String: String?], String, String)] {
            let before = rx.requests.count
            let r = try Harness.pgsnap(args, dir: dir, env: env)
            Harness.assertOneErrorLine(r, status: 64, "\(args)")
            XCTAssertTrue(r.stderr.contains(names), r.stderr)
            assertNoToken(r.stderr, "stderr for \(args)")
            let sent = rx.requests.dropFirst(before)
            XCTAssertEqual(sent.map(\.path), ["/hook/\(Self.token)"], "\(args): told once")
            let doc = try XCTUnwrap(sent.first?.json, "\(args)")
            XCTAssertEqual(doc["event"] as? String, "\(command).failure", "\(args)")
            XCTAssertEqual(doc["exit_code"] as? Int, 64, "\(args)")
            XCTAssertEqual(doc["error"] as? String, r.stderr.split(separator: "\n").last.map { String($0.dropFirst("pgsnap: ".count)) }, "\(args)")
        }
        // A ping target hears /fail; a failure inside the command is still told once, by the command.
        let before = rx.requests.count
        let bad = try Harness.pgsnap(["check", "--max-age", "soon"], dir: dir, env: ["PGSNAP_CHECK_NOTIFY": ping])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertEqual(rx.requests.dropFirst(before).map(\.path), ["/ping/\(Self.token)/fail"])
        let empty = try Harness.pgsnap(["check", "--database", "nope"], dir: try makeDir(), env: ["PGSNAP_CHECK_NOTIFY": ping])
        XCTAssertEqual(empty.status, 2, empty.stderr)
        XCTAssertEqual(rx.requests.dropFirst(before + 1).map(\.path).filter { $0.hasSuffix("/fail") }, ["/ping/\(Self.token)/fail"])
        let quiet = rx.requests.count
        for args in [["list", "--frobnicate"], ["backup", "--help"], ["--frobnicate"]] {
            let r = try Harness.pgsnap(args, dir: dir, env: ["PGSNAP_NOTIFY": hook, "PGSNAP_LIST_NOTIFY": hook])
            XCTAssertEqual(r.status, args == ["backup", "--help"] ? 0 : 64, "\(args): \(r.stderr)")
        }
        XCTAssertEqual(rx.requests.count, quiet, "nothing sent for list, --help or no command")
        XCTAssertEqual(Harness.snapshotFiles(dir), [], "a usage error took a backup")
    }

    /// A typo in the environment file of a nightly job (one word of PGSNAP_NOTIFY, or
    /// PGSNAP_NOTIFY_ON) is a warning: the backup is taken and the other targets are told (it
    /// was exit 64, no backup, and nobody told).
    func testBadNotifyWordsInTheEnvironmentAreWarningsAndTheJobRuns() throws {
        let rx = try receiver()
        let good = "json+http://127.0.0.1:\(rx.port)/hook/\(Self.token)"
        for env in [
            ["PGSNAP_NOTIFY": "\(good) http://[bad/\(Self.token)"],
            ["PGSNAP_NOTIFY": "not-a-url-\(Self.token) \(good)", "PGSNAP_NOTIFY_ON": "never"],
        ] as [[String: String?]] {
            let before = rx.requests.compactMap(\.json).count
            let dir = try makeDir()
            let r = try Harness.pgsnap(["backup", "-d", database], dir: dir, env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertFalse(Harness.snapshotID(r).isEmpty)
            XCTAssertTrue(r.stderr.contains("pgsnap: warning: PGSNAP_NOTIFY word ") && r.stderr.contains("so it is ignored; the job runs"), r.stderr)
            XCTAssertEqual(r.stderr.contains("PGSNAP_NOTIFY_ON must be failure or always; the default applies"), env["PGSNAP_NOTIFY_ON"] != nil, r.stderr)
            assertNoToken(r.stderr, "stderr for \(env)")
            let docs = rx.requests.compactMap(\.json).dropFirst(before)
            XCTAssertEqual(docs.last?["event"] as? String, "backup.success", "the good target was told: \(docs)")
        }
    }

    /// https through URLSession and the system CA store: the test CA is added to the store only
    /// for the one pgsnap process, in a private mount namespace (production trusts what the
    /// system trusts; Foundation on Linux ignores SSL_CERT_FILE and CURL_CA_BUNDLE).
    func testHTTPSWithACATheSystemTrusts() throws {
        let work = try makeDir()
        func openssl(_ args: [String]) throws {
            let r = try Harness.run("/usr/bin/openssl", args)
            XCTAssertEqual(r.status, 0, "openssl \(args): \(r.stderr)")
        }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", work + "/ca.key", "-out", work + "/ca.pem", "-days", "2", "-subj", "/CN=pgsnap test CA"])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", work + "/srv.key", "-out", work + "/srv.csr", "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: work + "/ext.cnf", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", work + "/srv.csr", "-CA", work + "/ca.pem", "-CAkey", work + "/ca.key", "-CAcreateserial",
                     "-out", work + "/srv.pem", "-days", "2", "-extfile", work + "/ext.cnf"])
        let bundle = try Harness.bytes("/etc/ssl/certs/ca-certificates.crt") + Harness.bytes(work + "/ca.pem")
        try bundle.write(to: URL(fileURLWithPath: work + "/bundle.pem"))
        let rx = try receiver(tls: (work + "/srv.pem", work + "/srv.key"))
        let url = "https://127.0.0.1:\(rx.port)/ping/\(Self.token)"
        let dir = try makeDir()

        // Untrusted: the backup succeeds, the start and success pings fail with one warning for
        // the receiver, nothing is sent.
        var r = try Harness.pgsnap(["backup", "-d", database, "--notify", url], dir: dir, env: ["PGSNAP_NOTIFY_ATTEMPTS": "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(warnings(r).count, 1, r.stderr)
        XCTAssertTrue(warnings(r).allSatisfy { $0.contains("TLS failed (SSL certificate problem") }, r.stderr)
        XCTAssertEqual(rx.requests.count, 0, "a request went to a server whose certificate is not trusted")

        r = try Harness.run("/usr/bin/unshare", ["-m", "--", "/bin/sh", "-c",
                                                  "mount --bind \"$1\" /etc/ssl/certs/ca-certificates.crt && shift && exec \"$@\"",
                                                  "sh", work + "/bundle.pem", Harness.binary, "backup", "-d", database, "--notify", url],
                            env: ["PGSNAP_DIR": dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(warnings(r), [], r.stderr)
        XCTAssertEqual(rx.requests.map { "\($0.method) \($0.path)" }, ["GET /ping/\(Self.token)/start", "POST /ping/\(Self.token)"])
        assertNoToken(r.stderr + r.stdout, "output")
    }
}
