import Foundation

/// HTTP/1.1 over plain TCP for `http://` endpoints (MinIO, Garage, Ceph RGW or moto on a LAN or
/// loopback), with keep-alive connections reused across requests.
///
/// Why not URLSession here too: on Linux its libcurl bridge hops between dispatch queues for
/// every 64 KiB of a body (about 100,000 futex/epoll calls to send 69 MB, strace -c), serialises
/// all tasks on one queue, and copies each body; measured against moto, more parts in flight
/// made it slower. Writing each part straight from its buffer with `send(2)` removes the copies
/// and the hops. `https://` endpoints still go through URLSession, which brings TLS.
final class SocketHTTPTransport: HTTPTransport, @unchecked Sendable {
    let host: String
    let port: UInt16
    let timeout: TimeInterval
    private let lock = NSLock()
    private var idle: [Int32] = []

    init(host: String, port: UInt16, timeout: TimeInterval) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    deinit { for fd in idle { close(fd) } }

    func send(method: String, url: URL, target: String, headers: [(String, String)], body: Data?) -> Result<HTTPResponse, HTTPFailure> {
        // A kept-alive connection the server has since closed fails before any answer: once more on a fresh one.
        if let fd = lock.withLock({ idle.popLast() }) {
            switch exchange(fd, method: method, target: target, headers: headers, body: body) {
            case .success(let r): return .success(r)
            case .failure(let f) where f.beforeResponse: break
            case .failure(let f): return .failure(f.failure)
            }
        }
        let fd: Int32
        switch connect() {
        case .success(let c): fd = c
        case .failure(let f): return .failure(f)
        }
        return exchange(fd, method: method, target: target, headers: headers, body: body).mapError(\.failure)
    }

    struct ExchangeFailure: Error {
        var failure: HTTPFailure
        var beforeResponse: Bool
    }

    private func exchange(_ fd: Int32, method: String, target: String, headers: [(String, String)], body: Data?) -> Result<HTTPResponse, ExchangeFailure> {
        var keep = false
        defer {
            if keep { lock.withLock { idle.append(fd) } } else { close(fd) }
        }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        let length = body?.count ?? 0
        if length > 0 || method == "PUT" || method == "POST" { head += "Content-Length: \(length)\r\n" }
        head += "\r\n"
        let pace = Pace(timeout: timeout)
        if let e = sendAll(fd, Data(head.utf8), pace) ?? body.flatMap({ sendAll(fd, $0, pace) }) {
            return .failure(ExchangeFailure(failure: e, beforeResponse: true))
        }
        var reader = Reader(fd: fd, pace: Pace(timeout: timeout))
        guard let headText = reader.readHead() else {
            return .failure(ExchangeFailure(failure: reader.failure ?? HTTPFailure(text: "connection closed before a response", transient: true),
                                            beforeResponse: reader.received == 0))
        }
        let lines = headText.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            return .failure(ExchangeFailure(failure: HTTPFailure(text: "not an HTTP response", transient: false), beforeResponse: false))
        }
        var h: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            h[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var bodyData = Data()
        var reusable = h["connection"]?.lowercased() != "close" && !lines[0].hasPrefix("HTTP/1.0")
        if method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
            // No body.
        } else if h["transfer-encoding"]?.lowercased().contains("chunked") == true {
            guard let d = reader.readChunked() else { return .failure(ExchangeFailure(failure: reader.failure ?? cut, beforeResponse: false)) }
            bodyData = d
        } else if let n = h["content-length"].flatMap(Int.init) {
            guard let d = reader.read(exactly: n) else { return .failure(ExchangeFailure(failure: reader.failure ?? cut, beforeResponse: false)) }
            bodyData = d
        } else {
            bodyData = reader.readToEnd()
            reusable = false
        }
        keep = reusable
        return .success(HTTPResponse(status: status, headers: h, body: bodyData))
    }

    private var cut: HTTPFailure { HTTPFailure(text: "connection closed mid-response", transient: true) }

    var hostHeader: String { port == 80 ? host : "\(host):\(port)" }

    private func connect() -> Result<Int32, HTTPFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, String(port), &hints, &list)
        guard rc == 0, let first = list else { return .failure(HTTPFailure(text: "host not found (DNS)", transient: true)) }
        defer { freeaddrinfo(list) }
        var lastError = ECONNREFUSED
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd < 0 { continue }
            // Whole seconds and the rest: a timeout under a second must not become 0, which means none.
            let bounded = max(timeout, 0.05)
            var tv = timeval(tv_sec: Int(bounded), tv_usec: Int((bounded - bounded.rounded(.down)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return .success(fd) }
            lastError = errno
            close(fd)
        }
        return .failure(SocketHTTPTransport.failure(lastError))
    }

    static func failure(_ code: Int32) -> HTTPFailure {
        switch code {
        case ECONNREFUSED: return HTTPFailure(text: "connection refused", transient: true)
        case ECONNRESET, EPIPE: return HTTPFailure(text: "connection reset", transient: true)
        case EAGAIN, ETIMEDOUT: return HTTPFailure(text: "timed out", transient: true)
        case ENETUNREACH, EHOSTUNREACH: return HTTPFailure(text: "network unreachable", transient: true)
        default: return HTTPFailure(text: String(cString: strerror(code)), transient: true)
        }
    }

    /// The socket timeouts bound each read and write, not an exchange: a server that answers
    /// a byte every 0.2 s (or reads our part that slowly) held a cron job and its lock for
    /// ever. Past five timeouts (10 minutes by default: S3 may keep a large completion's
    /// answer open for minutes with a space now and then), an exchange must average at least
    /// `minimumRate`.
    final class Pace {
        static let minimumRate = 1024.0
        let started = DispatchTime.now()
        let grace: Double
        var bytes = 0
        init(timeout: Double) { grace = 5 * timeout }

        /// Counts `n` more bytes; a failure once the exchange is behind the floor.
        func moved(_ n: Int) -> HTTPFailure? {
            bytes += n
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            guard elapsed > grace + Double(bytes) / Self.minimumRate else { return nil }
            return HTTPFailure(text: "timed out: \(bytes) bytes in \(Int(elapsed)) s, under 1 KiB/s", transient: true)
        }
    }

    private func sendAll(_ fd: Int32, _ data: Data, _ pace: Pace) -> HTTPFailure? {
        data.withUnsafeBytes { raw -> HTTPFailure? in
            var off = 0
            while off < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR && SignalTrap.received == nil { continue }
                    return SocketHTTPTransport.failure(errno)
                }
                off += n
                if let slow = pace.moved(n) { return slow }
            }
            return nil
        }
    }

    /// Buffered reads of one response.
    struct Reader {
        let fd: Int32
        let pace: Pace
        var buffer = [UInt8]()
        var start = 0
        var received = 0
        var failure: HTTPFailure?
        var eof = false

        init(fd: Int32, pace: Pace) {
            self.fd = fd
            self.pace = pace
        }

        mutating func fill() -> Bool {
            if start > 0 && start == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            var chunk = [UInt8](repeating: 0, count: 256 << 10)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                // Ctrl-C interrupts a wait for a slow server (a socket with a timeout is not restarted).
                if n < 0 && errno == EINTR && SignalTrap.received == nil { continue }
                if n < 0 {
                    failure = SocketHTTPTransport.failure(errno)
                    return false
                }
                if n == 0 {
                    eof = true
                    return false
                }
                received += n
                buffer += chunk[0..<n]
                if let slow = pace.moved(n) {
                    failure = slow
                    return false
                }
                return true
            }
        }

        mutating func readHead() -> String? {
            while true {
                if let r = find(Array("\r\n\r\n".utf8)) {
                    let text = String(decoding: buffer[start..<r], as: UTF8.self)
                    start = r + 4
                    return text
                }
                if buffer.count - start > 64 << 10 {
                    failure = HTTPFailure(text: "response head too large", transient: false)
                    return nil
                }
                if !fill() { return nil }
            }
        }

        mutating func find(_ needle: [UInt8]) -> Int? {
            guard buffer.count - start >= needle.count else { return nil }
            var i = start
            while i <= buffer.count - needle.count {
                if buffer[i] == needle[0] && buffer[i..<(i + needle.count)].elementsEqual(needle) { return i }
                i += 1
            }
            return nil
        }

        mutating func read(exactly n: Int) -> Data? {
            while buffer.count - start < n {
                if !fill() { return nil }
            }
            let d = Data(buffer[start..<(start + n)])
            start += n
            return d
        }

        mutating func readLine() -> String? {
            while true {
                if let r = find([13, 10]) {
                    let s = String(decoding: buffer[start..<r], as: UTF8.self)
                    start = r + 2
                    return s
                }
                if !fill() { return nil }
            }
        }

        mutating func readChunked() -> Data? {
            var out = Data()
            while true {
                guard let line = readLine(), let size = Int(line.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
                if size == 0 {
                    // Trailers, up to the blank line.
                    while let t = readLine() { if t.isEmpty { return out } }
                    return nil
                }
                guard let d = read(exactly: size), readLine() != nil else { return nil }
                out += d
            }
        }

        mutating func readToEnd() -> Data {
            while fill() {}
            let d = Data(buffer[start...])
            start = buffer.count
            return d
        }
    }
}
