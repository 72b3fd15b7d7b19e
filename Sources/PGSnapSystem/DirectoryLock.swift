import Foundation
import PGSnapCore

/// One `flock` per backup directory on `DIR/.pgsnap.lock`. Backups share it; prune and restore
/// take it alone. The kernel drops it when the holder dies, so no lock ever needs clearing by hand.
public final class DirectoryLock {
    public enum Mode { case shared, exclusive }
    private let fd: Int32

    /// - Parameter wait: seconds to wait for the lock; nil fails at once.
    /// - Throws: `PGSnapError` with exit status 3 naming the holder.
    public init(directory: SnapshotDirectory, mode: Mode, command: String, wait: Double?) throws {
        let path = directory.file(".pgsnap.lock")
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SnapshotDirectory.ioError("open lock file \(path)") }
        let op = mode == .shared ? LOCK_SH : LOCK_EX
        let deadline = Date().addingTimeInterval(wait ?? 0)
        var delay = 0.01
        while flock(fd, op | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let e = SnapshotDirectory.ioError("lock \(path)")
                close(fd)
                throw e
            }
            if SignalTrap.received != nil {
                close(fd)
                throw PGSnapError(.interrupted, "interrupted while waiting for the lock on \(directory.path)")
            }
            if Date() >= deadline {
                let holder = DirectoryLock.describeHolder(fd)
                close(fd)
                // preflight, verify --restore-test and drill only look: they have no --wait.
                let waits = !["preflight", "verify --restore-test", "drill"].contains(command)
                throw PGSnapError(.locked, "another pgsnap run holds the lock on \(directory.path)\(holder)",
                                  next: wait != nil ? "It did not finish in time; try again later"
                                      : waits ? "Try again later or pass --wait 10m" : "Try again when it has finished")
            }
            usleep(useconds_t(delay * 1_000_000))
            delay = min(delay * 2, 0.5)
        }
        let host = ProcessInfo.processInfo.hostName
        let info = "pid=\(getpid()) host=\(host) started=\(ISO8601.format(Date())) command=\(command)\(mode == .shared ? " (shared)" : "")\n"
        // The file only says who holds the lock, for the message of a run that finds it taken.
        // Shared holders each add a line; finished holders' lines are dropped as we go.
        let keep = mode == .shared ? DirectoryLock.liveLines(fd) : []
        let text = keep.joined() + info
        ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Lines of the lock file whose process is still alive (other hosts' lines are kept).
    static func liveLines(_ fd: Int32) -> [String] {
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        let n = pread(fd, &buf, buf.count, 0)
        guard n > 0 else { return [] }
        let host = ProcessInfo.processInfo.hostName
        return String(decoding: buf[0..<n], as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard let pid = fields.first(where: { $0.hasPrefix("pid=") }).flatMap({ Int32($0.dropFirst(4)) }) else { return nil }
            let sameHost = fields.contains { $0 == "host=\(host)" }
            if sameHost && kill(pid, 0) != 0 && errno == ESRCH { return nil }
            return String(line) + "\n"
        }.suffix(200)
    }

    static func describeHolder(_ fd: Int32) -> String {
        // Not this run's own earlier lines (its backup's and push's shared locks, let go before
        // `backup --prune` waits): the holder is another run.
        let me = "pid=\(getpid()) host=\(ProcessInfo.processInfo.hostName) "
        let live = liveLines(fd)
        let others = live.filter { !$0.hasPrefix(me) }
        let lines = (others.isEmpty ? live : others).suffix(3).map { $0.trimmingCharacters(in: .newlines) }
        return lines.isEmpty ? "" : " (" + oneLine(lines.joined(separator: "; "), limit: 400) + ")"
    }
}
