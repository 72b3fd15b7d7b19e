import Foundation
import PGSnapCore

/// Sends notification requests through the same HTTP transports as the S3 client; never throws.
///
/// A notification must never break the job, nor hold it up for long: the start ping goes out
/// in the background while the job runs, and the result's requests go to all targets at once,
/// each on its own thread (so a hung receiver never queues another behind it), with up to
/// `attempts` tries and a short backoff (0.5 s, 1 s, ...) that must all fit in one `timeout`.
/// The wait itself is bounded too: whatever a transport does (a DNS lookup that hangs, a
/// receiver that trickles its answer byte by byte), `send` returns at the deadline and gives up
/// on what is still on its way. So a receiver that never answers delays the run by at most
/// `timeout` seconds (5 by default), however many targets there are (a run shorter than that may
/// also wait for the rest of its start ping's timeout). Each target that fails is reported by
/// `warn` with one line, its URL redacted, once per run (a failed start ping and a failed result
/// to the same receiver are one line).
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

    /// Requests on their way, each on its own thread; what each came to once it has.
    public final class Pending: @unchecked Sendable {
        let group = DispatchGroup()
        let deadline: Date
        private let lock = NSLock()
        private var outcomes: [Int: String?] = [:]
        let requests: [NotifyRequest]

        init(_ requests: [NotifyRequest], deadline: Date) {
            self.requests = requests
            self.deadline = deadline
        }

        func finish(_ i: Int, _ problem: String?) { lock.withLock { outcomes[i] = .some(problem) } }

        /// Waits until every request has an outcome or the deadline has passed; then, for each
        /// request, nil when delivered, else why not ("no answer within N s" for one still on its way).
        func wait(timeout: Int) -> [String?] {
            _ = group.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow))
            return lock.withLock {
                requests.indices.map { outcomes[$0] ?? "no answer within \(timeout) s" }
            }
        }
    }

    func launch(_ requests: [NotifyRequest], tries: Int) -> Pending {
        let pending = Pending(requests, deadline: Date().addingTimeInterval(Double(timeout)))
        for (i, r) in requests.enumerated() {
            pending.group.enter()
            Thread {
                pending.finish(i, deliver(r, tries: tries, deadline: pending.deadline))
                pending.group.leave()
            }.start()
        }
        return pending
    }

    /// Starts sending `requests` (one try each, within `timeout`) and returns at once; `send`
    /// reports how they went.
    public func start(_ requests: [NotifyRequest]) -> Pending {
        launch(requests, tries: 1)
    }

    /// Sends every request, concurrently, once `earlier` requests have finished (so a start ping
    /// arrives before the result) or their own deadline has passed; returns within one `timeout`
    /// of sending, with one warning per receiver that did not get what was sent to it.
    public func send(_ requests: [NotifyRequest], after earlier: Pending? = nil) {
        // The start ping's deadline ends one timeout after the job began: no wait at all for a
        // job longer than that.
        let earlierOutcomes = earlier?.wait(timeout: timeout) ?? []
        let outcomes = requests.isEmpty ? [] : launch(requests, tries: attempts).wait(timeout: timeout)
        // One line per receiver (its whole URL, which is never shown), not per host: the result's
        // problem, else the start ping's.
        var warned = Set<NotifyTarget>()
        for (r, problem) in Array(zip(requests, outcomes)) + Array(zip(earlier?.requests ?? [], earlierOutcomes)) {
            guard let problem, warned.insert(r.target).inserted else { continue }
            warn("warning: could not notify \(r.shown): \(problem); the run's result is unchanged")
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
