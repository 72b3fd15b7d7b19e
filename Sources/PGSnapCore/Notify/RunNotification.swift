import Foundation

/// What a run tells its notification targets: how it started or ended, and what it made.
public struct RunNotification: Equatable, Sendable {
    public enum Event: String, Equatable, Sendable {
        case start
        case success
        case failure
    }

    public var event: Event
    /// backup, prune, check, verify or drill.
    public var command: String
    public var exitCode: Int32
    public var database: String?
    public var snapshot: String?
    public var compressedBytes: Int64?
    public var uncompressedBytes: Int64?
    public var rows: Int64?
    public var durationSeconds: Double
    public var host: String
    /// The one-line error the run printed (already free of passwords), on failure.
    public var error: String?
    /// The last lines the run printed on stderr before its error (check's problems, verify's
    /// FAILED lines), at most ten, each one line.
    public var stderrTail: [String] = []
    public var startedAt: Date
    public var finishedAt: Date
    public var pgsnapVersion: String

    public init(event: Event, command: String, exitCode: Int32 = 0, database: String? = nil, snapshot: String? = nil,
                compressedBytes: Int64? = nil, uncompressedBytes: Int64? = nil, rows: Int64? = nil, durationSeconds: Double = 0,
                host: String, error: String? = nil, startedAt: Date, finishedAt: Date, pgsnapVersion: String) {
        self.event = event
        self.command = command
        self.exitCode = exitCode
        self.database = database
        self.snapshot = snapshot
        self.compressedBytes = compressedBytes
        self.uncompressedBytes = uncompressedBytes
        self.rows = rows
        self.durationSeconds = durationSeconds
        self.host = host
        self.error = error
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.pgsnapVersion = pgsnapVersion
    }

    /// `backup of "app"` or `backup`: how messages name the run.
    var subject: String {
        database.map { "\(command) of \"\($0)\"" } ?? command
    }

    /// The short plain-text body of a ping (healthchecks shows it in the check's log).
    public var pingText: String {
        var lines: [String]
        switch event {
        case .start: lines = ["pgsnap \(subject) started on \(host)"]
        case .success: lines = ["pgsnap \(subject) succeeded on \(host)"]
        case .failure: lines = ["pgsnap \(subject) FAILED on \(host) (exit \(exitCode))"]
        }
        if let error { lines.append("error: \(error)") }
        if event == .failure && !stderrTail.isEmpty { lines += ["last lines of stderr:"] + stderrTail.map { "  " + $0 } }
        if let snapshot { lines.append("snapshot: \(snapshot)") }
        if let size = sizeText { lines.append("size: \(size)") }
        if let rows { lines.append("rows: \(rows)") }
        if event != .start { lines.append("duration: \(String(format: "%.1f", durationSeconds)) s") }
        lines.append("pgsnap \(pgsnapVersion)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line for a chat channel.
    public var chatText: String {
        var s: String
        switch event {
        case .start: s = "pgsnap \(subject) started on \(host)"
        case .success: s = "pgsnap \(subject) succeeded on \(host)"
        case .failure: s = "pgsnap \(subject) FAILED on \(host) (exit \(exitCode)): \(error ?? "no message")"
        }
        var details: [String] = []
        if let snapshot { details.append("snapshot \(snapshot)") }
        if let size = sizeText { details.append(size) }
        if let rows { details.append("\(rows) rows") }
        if event != .start { details.append(String(format: "%.1f s", durationSeconds)) }
        if !details.isEmpty { s += " (" + details.joined(separator: ", ") + ")" }
        if event == .failure && !stderrTail.isEmpty { s += "\n" + stderrTail.suffix(5).joined(separator: "\n") }
        return s
    }

    var sizeText: String? {
        guard let c = compressedBytes else { return nil }
        return formatBytes(c) + (uncompressedBytes.map { " (\(formatBytes($0)) dumped)" } ?? "")
    }

    /// The webhook document, version 1. Its keys are documented in README ("Being told when it
    /// fails") and only ever added to: every key is always present, unknown values are null.
    public var jsonDocument: Data {
        func orNull(_ v: Any?) -> Any { v ?? NSNull() }
        let object: [String: Any] = [
            "version": 1,
            "event": "\(command).\(event.rawValue)",
            "command": command,
            "status": event.rawValue,
            "exit_code": Int(exitCode),
            "database": orNull(database),
            "snapshot": orNull(snapshot),
            "compressed_bytes": orNull(compressedBytes),
            "uncompressed_bytes": orNull(uncompressedBytes),
            "rows": orNull(rows),
            "duration_seconds": (durationSeconds * 1000).rounded() / 1000,
            "host": host,
            "error": orNull(error),
            "stderr_tail": event == .failure ? stderrTail : [],
            "started_at": ISO8601.format(startedAt),
            "finished_at": ISO8601.format(finishedAt),
            "pgsnap_version": pgsnapVersion,
            "text": chatText,
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    /// Slack, Mattermost, Rocket.Chat and Discord's `/slack` endpoint all take `{"text": ...}`.
    public var slackDocument: Data {
        (try? JSONSerialization.data(withJSONObject: ["text": chatText], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}

/// `1.5 MiB`: sizes as every message shows them.
public func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024 && i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f", v) + " " + units[i]
}
