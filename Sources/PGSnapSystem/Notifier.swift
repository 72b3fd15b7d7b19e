import Foundation
import PGSnapCore

/// Sends notification requests through the same HTTP transports as the S3 client; never throws.
///
/// A notification must never break the job: each request gets `attempts` tries of at most
/// `timeout` seconds each, with a short backoff between them (0.5 s, 1 s, ...), and all targets
/// are sent at once, so a receiver that never answers delays the run by at most about
/// `attempts × timeout` plus the backoff (3 × 5 s + 1.5 s by default) however many targets there
/// are. A target that still fails is reported by `warn` with one line and its URL redacted.
public struct Notifier: Sendable {
    public var timeout: Int
    public var attempts: Int
    public var backoff: Double
    let warn: @Sendable (String) -> Void

    /// - Parameter environment: `PGSNAP_NOTIFY_TIMEOUT` (seconds per attempt, 1-60, default 5) and
    ///   `PGSNAP_NOTIFY_ATTEMPTS` (1-10, default 3); other values fall back to the defaults.
    public init(environment: [String: String], warn: @escaping @Sendable (String) -> Void) {
        timeout = environment["PGSNAP_NOTIFY_TIMEOUT"].flatMap { Int($0) }.flatMap { (1...60).contains($0) ? $0 : nil } ?? 5
        attempts = environment["PGSNAP_NOTIFY_ATTEMPTS"].flatMap { Int($0) }.flatMap { (1...10).contains($0) ? $0 : nil } ?? 3
        backoff = 0.5
        self.warn = warn
    }

    /// Sends every request, concurrently; returns when each has succeeded or given up.
    ///
    /// - Parameter attempts: fewer tries than configured (the start ping gets one: it must not hold up the job).
    public func send(_ requests: [NotifyRequest], attempts: Int? = nil) {
        guard !requests.isEmpty else { return }
        let tries = min(attempts ?? self.attempts, self.attempts)
        DispatchQueue.concurrentPerform(iterations: requests.count) { i in
            if let problem = deliver(requests[i], tries: tries) {
                warn("warning: could not notify \(requests[i].shown): \(problem); the run's result is unchanged")
            }
        }
    }

    /// nil when delivered, else why not (after the last try).
    func deliver(_ r: NotifyRequest, tries: Int) -> String? {
        let transport = self.transport(for: r.url)
        var target = r.url.path.isEmpty ? "/" : (URLComponents(url: r.url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? "/")
        if target.isEmpty { target = "/" }
        if let q = r.url.query { target += "?" + q }
        let headers = [("User-Agent", "pgsnap/\(pgsnapVersion)"), ("Content-Type", r.contentType), ("Connection", "close")]
        var problem = "not sent"
        for attempt in 1...tries {
            if attempt > 1 { Thread.sleep(forTimeInterval: backoff * Double(1 << (attempt - 2))) }
            switch transport.send(method: r.method, url: r.url, target: target, headers: headers, body: r.body) {
            case .success(let response) where (200..<300).contains(response.status):
                return nil
            case .success(let response):
                problem = "HTTP \(response.status)"
                // Only a busy or broken server may answer differently next time; a 404 (a wrong URL,
                // a deleted check) or a redirect will not.
                guard response.status >= 500 || response.status == 408 || response.status == 429 else { return problem }
            case .failure(let f):
                problem = f.text
                if !f.transient { return problem }
            }
        }
        return tries > 1 ? "\(problem) (\(tries) attempts)" : problem
    }

    func transport(for url: URL) -> HTTPTransport {
        if url.scheme?.lowercased() == "http", let host = url.host {
            return SocketHTTPTransport(host: host, port: UInt16(url.port ?? 80), timeout: TimeInterval(timeout))
        }
        return URLSessionTransport(timeout: TimeInterval(timeout))
    }
}
