import Foundation
import XCTest

@testable import PGSnapCore

final class NotifyTargetTests: XCTestCase {
    func testKindsAndURLs() throws {
        let cases: [(String, NotifyTarget.Kind, String, String)] = [
            ("https://hc-ping.com/5b0f-uuid", .ping, "https://hc-ping.com/5b0f-uuid", "https://hc-ping.com/…"),
            ("http://hc.lan:8000/ping/abc?create=1", .ping, "http://hc.lan:8000/ping/abc?create=1", "http://hc.lan:8000/…"),
            ("json+https://hooks.example.com/x/SECRET", .json, "https://hooks.example.com/x/SECRET", "json+https://hooks.example.com/…"),
            ("JSON+HTTP://10.0.0.5/hook", .json, "http://10.0.0.5/hook", "json+http://10.0.0.5/…"),
            ("slack+https://hooks.slack.com/services/T/B/XYZ", .slack, "https://hooks.slack.com/services/T/B/XYZ", "slack+https://hooks.slack.com/…"),
        ]
        for (text, kind, url, shown) in cases {
            let t = try NotifyTarget(parsing: text, source: "--notify")
            XCTAssertEqual(t.kind, kind, text)
            XCTAssertEqual(t.url.absoluteString, url, text)
            XCTAssertEqual(t.redacted, shown, text)
        }
    }

    func testPingSuffixesGoBeforeTheQuery() throws {
        let t = try NotifyTarget(parsing: "https://hc.example/ping/abc/?create=1", source: "x")
        XCTAssertEqual(t.url(appendingPath: "start").absoluteString, "https://hc.example/ping/abc/start?create=1")
        let plain = try NotifyTarget(parsing: "https://hc-ping.com/abc", source: "x")
        XCTAssertEqual(plain.url(appendingPath: "fail").absoluteString, "https://hc-ping.com/abc/fail")
    }

    func testBadValuesAreUsageErrorsThatNeverEchoTheToken() {
        let secret = "SECRETTOKEN"
        for text in ["", "hc-ping.com/\(secret)", "ftp://h/\(secret)", "https:///\(secret)", "https://u:\(secret)@h/x",
                     "https://h/\(secret)#frag", "https://h/a b\(secret)", "https://h:99999/\(secret)", "slack+ftp://h/\(secret)",
                     // The token before the first "://": not a scheme, so not echoed as one.
                     "hc-ping.com/\(secret)?u=https://h/x", "\(secret)://h/x"] {
            let e = assertPGSnapError(.usage, text) { try NotifyTarget(parsing: text, source: "--notify value 1") }
            XCTAssertFalse(e?.description.lowercased().contains(secret.lowercased()) ?? true, e?.description ?? "")
            XCTAssertTrue(e?.description.hasPrefix("--notify value 1 ") ?? false, e?.description ?? "")
        }
    }

    func testOptionsAddToTheEnvironment() throws {
        let env = ["PGSNAP_NOTIFY": " https://a.example/1\thttps://b.example/2\n json+https://c.example/3 "]
        XCTAssertEqual(try NotifyTarget.parseAll(options: [], environment: env).map(\.url.host), ["a.example", "b.example", "c.example"])
        XCTAssertEqual(try NotifyTarget.parseAll(options: ["https://d.example/4", "https://a.example/1"], environment: env).map(\.url.host),
                       ["d.example", "a.example", "b.example", "c.example"], "the same URL twice is told once")
        XCTAssertEqual(try NotifyTarget.parseAll(options: [], environment: [:]), [])
        let e = assertPGSnapError(.usage) { try NotifyTarget.parseAll(options: [], environment: ["PGSNAP_NOTIFY": "https://a.example/1 oops"]) }
        XCTAssertTrue(e?.description.hasPrefix("PGSNAP_NOTIFY word 2 ") ?? false, e?.description ?? "")
        // A run skips such a word and tells the others; a --notify value stays an error.
        var skipped: [String] = []
        XCTAssertEqual(try NotifyTarget.parseAll(options: [], environment: ["PGSNAP_NOTIFY": "https://a.example/1 http://[bad/TOKEN"],
                                                 skipping: { skipped.append($0.description) }).map(\.url.host), ["a.example"])
        XCTAssertEqual(skipped.count, 1)
        XCTAssertTrue(skipped.allSatisfy { $0.hasPrefix("PGSNAP_NOTIFY word 2 ") && !$0.contains("TOKEN") }, "\(skipped)")
        assertPGSnapError(.usage) { try NotifyTarget.parseAll(options: ["oops"], environment: [:], skipping: { _ in }) }
        let mine = ["PGSNAP_BACKUP_NOTIFY": "https://e.example/5 https://a.example/1"].merging(env) { a, _ in a }
        XCTAssertEqual(try NotifyTarget.parseAll(options: ["https://d.example/4"], environment: mine, command: "backup").map(\.url.host),
                       ["d.example", "e.example", "a.example", "b.example", "c.example"], "options, the command's own variable, then PGSNAP_NOTIFY")
        XCTAssertEqual(try NotifyTarget.parseAll(options: [], environment: mine, command: "verify").count, 3, "another command's variable is not read")
        XCTAssertTrue(NotifyTarget.isTargetVariable("PGSNAP_NOTIFY") && NotifyTarget.isTargetVariable("PGSNAP_DRILL_NOTIFY"))
        XCTAssertFalse(NotifyTarget.isTargetVariable("PGSNAP_NOTIFY_TIMEOUT") || NotifyTarget.isTargetVariable("PGSNAP_NOTIFY_ON"))
    }
}

final class NotificationPlanTests: XCTestCase {
    let ping = try! NotifyTarget(parsing: "https://hc-ping.com/abc", source: "x")
    let json = try! NotifyTarget(parsing: "json+https://hook.example/j", source: "x")
    let slack = try! NotifyTarget(parsing: "slack+https://hooks.slack.com/s", source: "x")

    func note(_ event: RunNotification.Event) -> RunNotification {
        RunNotification(event: event, command: "backup", exitCode: event == .failure ? 1 : 0, database: "app", snapshot: event == .success ? "app_20261206T031500Z" : nil,
                        compressedBytes: event == .success ? 1536 : nil, uncompressedBytes: event == .success ? 4096 : nil, rows: event == .success ? 42 : nil,
                        durationSeconds: 2.25, host: "db1", error: event == .failure ? "database \"app\" does not exist" : nil,
                        startedAt: utc(2026, 12, 6, 3, 15), finishedAt: utc(2026, 12, 6, 3, 15, 2), pgsnapVersion: "0.1.0")
    }

    func testWhoHearsOfWhat() {
        let table: [(NotifyOn?, RunNotification.Event, [NotifyTarget.Kind])] = [
            (nil, .start, [.ping]), (nil, .success, [.ping, .json]), (nil, .failure, [.ping, .json, .slack]),
            (.failure, .start, []), (.failure, .success, []), (.failure, .failure, [.ping, .json, .slack]),
            (.always, .start, [.ping]), (.always, .success, [.ping, .json, .slack]), (.always, .failure, [.ping, .json, .slack]),
        ]
        for (on, event, kinds) in table {
            let got = NotificationPlan.requests(for: note(event), targets: [ping, json, slack], notifyOn: on).map(\.target.kind)
            XCTAssertEqual(got, kinds, "\(String(describing: on)) \(event)")
        }
    }

    func testPingRequests() throws {
        let start = try XCTUnwrap(NotificationPlan.requests(for: note(.start), targets: [ping], notifyOn: nil).first)
        XCTAssertEqual([start.method, start.url.absoluteString, start.shown], ["GET", "https://hc-ping.com/abc/start", "https://hc-ping.com/… (start)"])
        XCTAssertEqual(start.body, Data())
        let ok = try XCTUnwrap(NotificationPlan.requests(for: note(.success), targets: [ping], notifyOn: nil).first)
        XCTAssertEqual([ok.method, ok.url.absoluteString], ["POST", "https://hc-ping.com/abc"])
        XCTAssertEqual(String(decoding: ok.body, as: UTF8.self), """
            pgsnap backup of "app" succeeded on db1
            snapshot: app_20261206T031500Z
            size: 1.5 KiB (4.0 KiB dumped)
            rows: 42
            duration: 2.2 s
            pgsnap 0.1.0

            """)
        let fail = try XCTUnwrap(NotificationPlan.requests(for: note(.failure), targets: [ping], notifyOn: nil).first)
        XCTAssertEqual([fail.method, fail.url.absoluteString, fail.shown], ["POST", "https://hc-ping.com/abc/fail", "https://hc-ping.com/… (fail)"])
        XCTAssertEqual(String(decoding: fail.body, as: UTF8.self), """
            pgsnap backup of "app" FAILED on db1 (exit 1)
            error: database "app" does not exist
            duration: 2.2 s
            pgsnap 0.1.0

            """)
    }

    func testTheJSONDocumentIsStable() throws {
        let r = try XCTUnwrap(NotificationPlan.requests(for: note(.failure), targets: [json], notifyOn: nil).first)
        XCTAssertEqual(r.contentType, "application/json")
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), """
            {"command":"backup","compressed_bytes":null,"database":"app","duration_seconds":2.25,"error":"database \\"app\\" does not exist",\
            "event":"backup.failure","exit_code":1,"finished_at":"2026-12-06T03:15:02.000Z","host":"db1","pgsnap_version":"0.1.0","rows":null,\
            "snapshot":null,"started_at":"2026-12-06T03:15:00.000Z","status":"failure","stderr_tail":[],\
            "text":"pgsnap backup of \\"app\\" FAILED on db1 (exit 1): database \\"app\\" does not exist (2.2 s)","uncompressed_bytes":null,"version":1}
            """)
    }

    func testAFailureCarriesTheLastLinesOfStderr() throws {
        var n = note(.failure)
        n.stderrTail = ["database \"app\": newest good snapshot is 3.0 days old (max 26 h)", "database \"b\": no good snapshot"]
        let ping = try XCTUnwrap(NotificationPlan.requests(for: n, targets: [ping], notifyOn: nil).first)
        XCTAssertTrue(String(decoding: ping.body, as: UTF8.self).contains("""
            error: database "app" does not exist
            last lines of stderr:
              database "app": newest good snapshot is 3.0 days old (max 26 h)
              database "b": no good snapshot

            """), String(decoding: ping.body, as: UTF8.self))
        XCTAssertTrue(n.chatText.hasSuffix("(2.2 s)\ndatabase \"app\": newest good snapshot is 3.0 days old (max 26 h)\ndatabase \"b\": no good snapshot"), n.chatText)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: n.jsonDocument) as? [String: Any])
        XCTAssertEqual(doc["stderr_tail"] as? [String], n.stderrTail)
        n.event = .success
        XCTAssertFalse(n.pingText.contains("stderr"), n.pingText)
    }

    func testSlackGetsOnlyText() throws {
        let r = try XCTUnwrap(NotificationPlan.requests(for: note(.success), targets: [slack], notifyOn: .always).first)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.body) as? [String: String])
        XCTAssertEqual(o, ["text": "pgsnap backup of \"app\" succeeded on db1 (snapshot app_20261206T031500Z, 1.5 KiB (4.0 KiB dumped), 42 rows, 2.2 s)"])
    }
}

final class DrillMetricsTests: XCTestCase {
    func testMetricsText() {
        let text = DrillMetrics.text(database: "a\"b", ok: false, seconds: 12.5, rows: nil, at: utc(2026, 12, 6))
        XCTAssertTrue(text.contains("pgsnap_restore_drill_success{database=\"a\\\"b\"} 0\n"), text)
        XCTAssertTrue(text.contains("pgsnap_restore_drill_seconds{database=\"a\\\"b\"} 12.500\n"), text)
        XCTAssertTrue(text.contains("pgsnap_restore_drill_timestamp_seconds{database=\"a\\\"b\"} 1796515200\n"), text)
        XCTAssertFalse(text.contains("_rows"), text)
        XCTAssertTrue(DrillMetrics.text(database: "app", ok: true, seconds: 1, rows: 7, at: utc(2026, 12, 6)).contains("pgsnap_restore_drill_rows{database=\"app\"} 7\n"))
    }
}
