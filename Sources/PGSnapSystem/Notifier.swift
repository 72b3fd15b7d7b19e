import Foundation
import PGSnapCore

/// Sends notification requests through the same HTTP transports as the S3 client; never throws.
///
/// A notification must never break the job, nor hold it up for long: the start ping goes out
/// in the background while the job runs, and the result's requests go to all targets at once,
/// each with up to `attempts` tries and a short backoff (0.5 s, 1 s, ...) that must all fit in
/// one `timeout`. So a receiver that never answers delays the run by at most `timeout` seconds
/// (5 by default), however many targets there are (a run shorter than that may also wait for
/// the rest of its start ping's timeout). A target that still fails is reported by
/// `warn` with one line and its URL redacted.
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

    /// Requests on their way in the background (the start ping): `send` waits for them within its own timeout.
    public final class Pending: @unchecked Sendable {
        let group = DispatchGroup()
    }

    /// Starts sending `requests` (one try each, within `timeout`) and returns at once.
    public func start(_ requests: [NotifyRequest]) -> Pending {
        let pending = Pending()
        let deadline = Date().addingTimeInterval(Double(timeout))
        for r in requests {
            pending.group.enter()
            Thread {
                if let problem = deliver(r, tries: 1, deadline: deadline) {
                    warn("warning: could not notify \(r.shown): \(problem); the run's result is unchanged")
                }
                pending.group.leave()
            }.start()
        }
        return pending
    }

    /// Sends every request, concurrently, once `earlier` requests have finished (so a start ping
    /// arrives before the result); returns when each has succeeded or given up, within one
    /// `timeout` of sending.
    public func send(_ requests: [NotifyRequest], after earlier: Pending? = nil) {
        // The start ping's own deadline ends one timeout after the job began: no wait at all for
        // a job longer than that.
        if let earlier { _ = earlier.group.wait(timeout: .now() + .seconds(timeout)) }
        let deadline = Date().addingTimeInterval(Double(timeout))
        if !requests.isEmpty {
            DispatchQueue.concurrentPerform(iterations: requests.count) { i in
                if let problem = deliver(requests[i], tries: attempts, deadline: deadline) {
                    warn("warning: could not notify \(requests[i].shown): \(problem); the run's result is unchanged")
                }
            }
        }
    }

    /// nil when delivered, else why not (after the last try, or when the time is up).
    func deliver(_ r: NotifyRequest, tries: Int, deadline: Date) -> String? {
        var target = r.url.path.isEmpty ? "/" : (URLComponents(url: r.url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? "/")
        if target.isEmpty { target = "/" }
        if let q = r.url.query { target += "?" + q }
        let headers = [("User-Agent", "pgsnap/\(pgsnapVersion)"), ("Content-Type", r.contentType), ("Connection", "close")]
        var problem = "not sent"
        var tried = 0
        for attempt in 1...tries {
            if attempt > 1 {
                let pause = backoff * Double(1 << (attempt - 2))
                // Another try only when it still has time to be answered.
                guard deadline.timeIntervalSinceNow > pause + 0.5 else { break }
                Thread.sleep(forTimeInterval: pause)
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0.1 else { break }
            tried += 1
            switch transport(for: r.url, timeout: left).send(method: r.method, url: r.url, target: target, headers: headers, body: r.body) {
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
        return tried > 1 ? "\(problem) (\(tried) attempts within \(timeout) s)" : problem
    }

    func transport(for url: URL, timeout: TimeInterval) -> HTTPTransport {
        if url.scheme?.lowercased() == "http", let host = url.host {
            return SocketHTTPTransport(host: host, port: UInt16(url.port ?? 80), timeout: timeout)
        }
        return URLSessionTransport(timeout: timeout)
    }
}
