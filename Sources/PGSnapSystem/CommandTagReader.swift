import Foundation

/// Drains psql's stdout on a thread and keeps the row count of every `COPY n` command tag, in order.
///
/// The server counts the rows each COPY stored; paired with the COPY statements the dump scanner
/// saw (same order: psql runs the script top to bottom and stops at the first error), they prove
/// the load without a `count(*)` scan of every table afterwards. Everything else psql prints
/// (other command tags, the few rows pg_dump's own SELECTs return) is read and dropped.
final class CommandTagReader: @unchecked Sendable {
    private let fd: Int32
    private var counts: [Int64] = []
    private var line: [UInt8] = []
    private let done = DispatchSemaphore(value: 0)
    /// Markers psql has printed (`SELECT 'pgsnap:sync:N'` with -A -t), and whether output ended.
    private let progress = NSCondition()
    private var lastMarker = 0
    private var ended = false

    /// Reads a duplicate of `fd`, closed when the child's output ends: whoever owns `fd` may
    /// close it at any time without pulling it from under this thread.
    init(fd: Int32) {
        self.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        let thread = Thread { [self] in
            self.drain()
            close(self.fd)
            self.progress.lock()
            self.ended = true
            self.progress.broadcast()
            self.progress.unlock()
            self.done.signal()
        }
        thread.name = "pgsnap-psql-stdout"
        thread.start()
    }

    /// Waits for EOF (psql has exited) and returns the COPY row counts.
    func copyCounts() -> [Int64] {
        done.wait()
        done.signal()
        return counts
    }

    private func drain() {
        guard fd >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            for b in buffer[0..<n] {
                if b == 0x0A {
                    finishLine()
                } else if line.count < 64 {
                    line.append(b)
                }
            }
        }
        finishLine()
    }

    /// The statement that makes psql print marker `n` once it has run everything before it.
    static func syncStatement(_ n: Int) -> String { "SELECT 'pgsnap:sync:\(n)';\n" }

    /// Waits until psql has printed marker `n`; false when its output ended first (it failed or exited).
    func waitForMarker(_ n: Int) -> Bool {
        progress.lock()
        defer { progress.unlock() }
        while lastMarker < n && !ended { progress.wait() }
        return lastMarker >= n
    }

    private func finishLine() {
        defer { line.removeAll(keepingCapacity: true) }
        if let count = Self.copyCount(line) {
            counts.append(count)
        } else if line.starts(with: Self.marker), let n = Int(String(decoding: line.dropFirst(Self.marker.count), as: UTF8.self)) {
            progress.lock()
            lastMarker = max(lastMarker, n)
            progress.broadcast()
            progress.unlock()
        }
    }

    static let marker = Array("pgsnap:sync:".utf8)

    /// `COPY 1234` -> 1234; anything else -> nil.
    static func copyCount(_ line: [UInt8]) -> Int64? {
        let prefix = Array("COPY ".utf8)
        guard line.count > prefix.count, line.count <= 25, Array(line.prefix(prefix.count)) == prefix else { return nil }
        let digits = line.dropFirst(prefix.count)
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(String(decoding: digits, as: UTF8.self))
    }
}
