import Foundation

/// One HTTP request a notification becomes.
public struct NotifyRequest: Equatable, Sendable {
    public var target: NotifyTarget
    public var method: String
    public var url: URL
    public var contentType: String
    public var body: Data

    /// `https://hc-ping.com/… (fail)`: what a warning may show.
    public var shown: String {
        let suffix: String
        switch (target.kind, method) {
        case (.ping, "GET"): suffix = " (start)"
        case (.ping, _) where url.path.hasSuffix("/fail"): suffix = " (fail)"
        default: suffix = ""
        }
        return target.redacted + suffix
    }
}

/// Which targets hear of an event, and how: pure, so every rule has a table test.
///
/// Defaults (no `--notify-on`): pings get start, success and failure (a missing success is
/// what a dead-man's switch alarms on); JSON webhooks get success and failure; chat gets
/// failures only. `--notify-on failure` sends failures only, to every kind; `--notify-on always`
/// sends successes to chat too. The start ping goes to pings only, and never with `failure`.
public enum NotificationPlan {
    public static func wants(_ kind: NotifyTarget.Kind, _ event: RunNotification.Event, notifyOn: NotifyOn?) -> Bool {
        switch (event, kind, notifyOn) {
        case (.failure, _, _): return true
        case (.start, .ping, nil), (.start, .ping, .always?): return true
        case (.start, _, _): return false
        case (.success, _, .failure?): return false
        case (.success, .slack, nil): return false
        case (.success, _, _): return true
        }
    }

    public static func requests(for n: RunNotification, targets: [NotifyTarget], notifyOn: NotifyOn?) -> [NotifyRequest] {
        targets.filter { wants($0.kind, n.event, notifyOn: notifyOn) }.map { request(for: n, to: $0) }
    }

    static func request(for n: RunNotification, to t: NotifyTarget) -> NotifyRequest {
        switch t.kind {
        case .ping:
            switch n.event {
            case .start: return NotifyRequest(target: t, method: "GET", url: t.url(appendingPath: "start"), contentType: "text/plain; charset=utf-8", body: Data())
            case .success: return NotifyRequest(target: t, method: "POST", url: t.url, contentType: "text/plain; charset=utf-8", body: Data(n.pingText.utf8))
            case .failure: return NotifyRequest(target: t, method: "POST", url: t.url(appendingPath: "fail"), contentType: "text/plain; charset=utf-8", body: Data(n.pingText.utf8))
            }
        case .json:
            return NotifyRequest(target: t, method: "POST", url: t.url, contentType: "application/json", body: n.jsonDocument)
        case .slack:
            return NotifyRequest(target: t, method: "POST", url: t.url, contentType: "application/json", body: n.slackDocument)
        }
    }
}
