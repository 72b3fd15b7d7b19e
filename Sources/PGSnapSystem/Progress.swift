import Foundation
import PGSnapCore

/// A live status line on a terminal's stderr; silent when stderr is not a TTY or with --quiet/--json.
final class Progress {
    private let enabled: Bool
    private let verb: String
    private let total: Int64?
    private let start = Date()
    private var last = Date.distantPast

    init(reporter: Reporter, verb: String, total: Int64?) {
        enabled = !reporter.quiet && !reporter.json && isatty(STDERR_FILENO) == 1
        self.verb = verb
        self.total = total
    }

    func update(bytesIn: Int64, bytesOut: Int64) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.25 else { return }
        last = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        var line = "\r\(verb) \(formatBytes(bytesIn)) -> \(formatBytes(bytesOut))  \(formatBytes(Int64(Double(bytesIn) / elapsed)))/s  \(String(format: "%.0f", elapsed))s"
        if let total, total > 0 { line += String(format: "  %.0f%%", min(100, Double(bytesIn) * 100 / Double(total))) }
        StandardStreams.err(line + "\u{1B}[K")
    }

    func done() {
        guard enabled, last != .distantPast else { return }
        StandardStreams.err("\r\u{1B}[K")
    }
}
