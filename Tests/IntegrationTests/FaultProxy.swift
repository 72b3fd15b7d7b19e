import Foundation
import XCTest

/// A TCP proxy on loopback between pgsnap and moto that can break chosen HTTP requests: reset the
/// connection, answer 503, or hold the request unanswered (to kill pgsnap at a known point).
///
/// Each forwarded request gets `Connection: close` so every request arrives on a connection of
/// its own and can be judged by its request line.
final class FaultProxy: @unchecked Sendable {
    enum Action {
        case forward
        /// RST at once, after reading the request head.
        case reset
        /// `503 Service Unavailable` with an S3 SlowDown body, after reading the whole request.
        case unavailable
        /// Read the request, never answer until the proxy stops.
        case stall
        /// Run the closure (another client's request, say), then forward.
        case after(() -> Void)
        /// Read the request, then answer a header that never ends, a byte every 0.2 s: every
        /// read gets something, so no socket timeout fires.
        case trickle
        /// Forward the request whole, read the answer to its end, then reset the connection: the
        /// request took effect, its answer never arrives.
        case answerLost
    }

    /// Decides per request: its request line ("PUT /bucket/key?partNumber=2&uploadId=... HTTP/1.1") and its number (0-based).
    let rule: (String, Int) -> Action
    let upstreamPort: UInt16
    private(set) var port: UInt16 = 0
    private var listener: Int32 = -1
    private let lock = NSLock()
    private var count = 0
    private var openSockets: Set<Int32> = []
    private var seenLines: [String] = []
    /// Signalled once per stalled request.
    let stalled = DispatchSemaphore(value: 0)

    init(upstream: String, rule: @escaping (String, Int) -> Action) throws {
        guard let url = URL(string: upstream), let p = url.port else { throw NSError(domain: "FaultProxy", code: 1) }
        upstreamPort = UInt16(p)
        self.rule = rule
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = FaultProxy.loopback(port: 0)
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0, listen(listener, 64) == 0 else { throw NSError(domain: "FaultProxy", code: 2) }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        port = UInt16(bigEndian: bound.sin_port)
        let fd = listener
        Thread.detachNewThread { [self] in
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                track(c)
                Thread.detachNewThread { self.serve(c) }
            }
        }
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }
    /// Request lines seen so far, in arrival order.
    var requests: [String] { lock.withLock { seenLines } }

    func stop() {
        lock.withLock {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            for s in openSockets { shutdown(s, Int32(SHUT_RDWR)) }
        }
    }

    deinit { stop() }

    private func track(_ s: Int32) { lock.withLock { _ = openSockets.insert(s) } }
    private func untrack(_ s: Int32) { lock.withLock { _ = openSockets.remove(s) } }

    static func loopback(port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return a
    }

    private func serve(_ client: Int32) {
        defer {
            untrack(client)
            close(client)
        }
        // The request head.
        var head = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        var rest = [UInt8]()
        while true {
            let n = recv(client, &buf, buf.count, 0)
            if n <= 0 { return }
            head += buf[0..<n]
            if let r = FaultProxy.find(head, Array("\r\n\r\n".utf8)) {
                rest = Array(head[(r + 4)...])
                head = Array(head[..<(r + 4)])
                break
            }
        }
        let text = String(decoding: head, as: UTF8.self)
        let line = String(text.prefix { $0 != "\r" })
        let index: Int = lock.withLock {
            seenLines.append(line)
            count += 1
            return count - 1
        }
        let bodyLength = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        switch rule(line, index) {
        case .reset:
            var l = linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        case .unavailable:
            drain(client, have: rest.count, length: bodyLength)
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            let response = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            FaultProxy.sendAll(client, Array(response.utf8))
        case .stall:
            drain(client, have: rest.count, length: bodyLength)
            stalled.signal()
            // Until pgsnap dies (EOF) or the proxy stops (shutdown).
            while recv(client, &buf, buf.count, 0) > 0 {}
        case .forward:
            forward(client, head: text, rest: rest)
        case .trickle:
            drain(client, have: rest.count, length: bodyLength)
            FaultProxy.sendAll(client, Array("HTTP/1.1 200 OK\r\nX-Slow: ".utf8))
            while send(client, "x", 1, Int32(MSG_NOSIGNAL)) == 1 { usleep(200_000) }
        case .after(let first):
            first()
            forward(client, head: text, rest: rest)
        case .answerLost:
            forwardDroppingTheAnswer(client, head: text, rest: rest, bodyLength: bodyLength)
        }
    }

    private func drain(_ s: Int32, have: Int, length: Int) {
        var left = length - have
        var buf = [UInt8](repeating: 0, count: 65536)
        while left > 0 {
            let n = recv(s, &buf, min(buf.count, left), 0)
            if n <= 0 { return }
            left -= n
        }
    }

    /// A connection to the upstream with the request's head (as `Connection: close`) and the
    /// body bytes read with it sent; nil when it cannot connect. The caller untracks and closes it.
    private func upstream(head: String, rest: [UInt8]) -> Int32? {
        let up = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        track(up)
        var addr = FaultProxy.loopback(port: upstreamPort)
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(up, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else {
            untrack(up)
            close(up)
            return nil
        }
        let lines = head.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("connection:") && !$0.isEmpty }
        FaultProxy.sendAll(up, Array((lines.joined(separator: "\r\n") + "\r\nConnection: close\r\n\r\n").utf8) + rest)
        return up
    }

    private func forward(_ client: Int32, head: String, rest: [UInt8]) {
        guard let up = upstream(head: head, rest: rest) else { return }
        defer {
            untrack(up)
            close(up)
        }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            FaultProxy.pump(from: client, to: up)
            done.signal()
        }
        FaultProxy.pump(from: up, to: client)
        shutdown(client, Int32(SHUT_RDWR))
        shutdown(up, Int32(SHUT_RDWR))
        done.wait()
    }

    private func forwardDroppingTheAnswer(_ client: Int32, head: String, rest: [UInt8], bodyLength: Int) {
        guard let up = upstream(head: head, rest: rest) else { return }
        defer {
            untrack(up)
            close(up)
        }
        var left = bodyLength - rest.count
        var buf = [UInt8](repeating: 0, count: 65536)
        while left > 0 {
            let n = recv(client, &buf, min(buf.count, left), 0)
            if n <= 0 { return }
            FaultProxy.sendAll(up, Array(buf[0..<n]))
            left -= n
        }
        // The whole answer, so the request has been carried out, then nothing of it.
        while recv(up, &buf, buf.count, 0) > 0 {}
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(client, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    static func pump(from a: Int32, to b: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(a, &buf, buf.count, 0)
            if n <= 0 { return }
            if !sendAll(b, Array(buf[0..<n])) { return }
        }
    }

    @discardableResult
    static func sendAll(_ s: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(s, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}
