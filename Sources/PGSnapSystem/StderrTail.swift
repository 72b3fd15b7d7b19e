import Foundation
import PGSnapCore

/// The last problem lines the run printed (errors and warnings: check's problems, verify's FAILED
/// lines), for the failure notification: the one error line alone would say "2 problem(s)" and not which.
public enum StderrTail {
    public static let limit = 10
    nonisolated(unsafe) private static var recording = false
    nonisolated(unsafe) private static var kept: [String] = []
    private static let lock = NSLock()

    public static func start() { lock.withLock { recording = true; kept = [] } }

    public static func record(_ line: String) {
        // Notification warnings are about the notifier, not the run.
        guard !line.hasPrefix("warning: could not notify") else { return }
        lock.withLock {
            guard recording else { return }
            kept.append(oneLine(line, limit: 300))
            if kept.count > limit { kept.removeFirst(kept.count - limit) }
        }
    }

    public static var lines: [String] { lock.withLock { kept } }
}
