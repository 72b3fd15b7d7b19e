import Foundation
import PGSnapCore

/// Reads the files of a directory dump while pg_dump is still writing them, so that the
/// read-back (size, SHA-256, gunzip, row count) runs on the core pg_dump leaves idle instead of
/// after it: inotify says when a file appears, grows and is closed.
///
/// Only a help: `results()` returns a file's result only when its tail saw it created once,
/// read it to the end after its close, and the size read equals the size on disk now. Every other
/// file (a missed event, a queue overflow, a file rewritten) is read again from the start by the
/// caller, so the check is never weaker than a read after pg_dump exits.
final class DirectoryTail: @unchecked Sendable {
    private let inotify: Int32
    private let path: String
    private let lock = NSLock()
    private var tails: [String: FileTail] = [:]
    private var spoiled: Set<String> = []
    private var stopping = false
    private let monitorDone = DispatchSemaphore(value: 0)
    /// Written to by `results()` to wake the monitor at once (not at its next poll timeout).
    private var wake: [Int32] = [-1, -1]
    private let group = DispatchGroup()

    /// nil when inotify is not available: the caller reads everything afterwards.
    init?(directory path: String) {
        inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard inotify >= 0 else { return nil }
        self.path = path
        guard inotify_add_watch(inotify, path, UInt32(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE)) >= 0, pipe(&wake) == 0 else {
            close(inotify)
            return nil
        }
        for fd in wake { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        Thread { [self] in monitor() }.start()
    }

    deinit {
        close(inotify)
        close(wake[0])
        close(wake[1])
    }

    private func monitor() {
        defer { monitorDone.signal() }
        let size = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, 1000)
            let n = ready > 0 && fds[0].revents != 0 ? read(inotify, buffer, size) : 0
            if n <= 0 {
                if lock.withLock({ stopping }) { return }
                continue
            }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let nameStart = buffer + offset + MemoryLayout<inotify_event>.size
                let name = event.len > 0 ? String(cString: nameStart.assumingMemoryBound(to: CChar.self)) : ""
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
                handle(mask: event.mask, name: name)
            }
        }
    }

    private func handle(mask: UInt32, name: String) {
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            // Events were lost: every tail keeps going (they also wake on a timer), and
            // anything uncertain is read again afterwards.
            lock.withLock { for t in tails.values { t.poke() } }
            return
        }
        guard !name.isEmpty, DirectoryDump.isDumpFileName(name) else { return }
        if mask & UInt32(IN_CREATE) != 0 {
            let tail: FileTail? = lock.withLock {
                if tails[name] != nil {
                    spoiled.insert(name)
                    return nil
                }
                let t = FileTail(path: path + "/" + name, name: name)
                tails[name] = t
                return t
            }
            if let tail {
                group.enter()
                DispatchQueue.global().async { [group] in
                    tail.run()
                    group.leave()
                }
            }
        }
        let tail = lock.withLock { tails[name] }
        if mask & UInt32(IN_CLOSE_WRITE) != 0 { tail?.markClosed() } else if mask & UInt32(IN_MODIFY) != 0 { tail?.poke() }
    }

    /// After pg_dump has exited: stops watching, lets every tail read to the end, and returns
    /// the results that can be trusted, by file name.
    func results() -> [String: DirectoryReadback.FileResult] {
        lock.withLock { stopping = true }
        var byte: UInt8 = 1
        _ = write(wake[1], &byte, 1)
        monitorDone.wait()
        monitorDone.signal()  // a second call (a failed backup's cleanup) returns at once
        // pg_dump is gone: whatever is on disk now is final.
        lock.withLock { for t in tails.values { t.markClosed() } }
        group.wait()
        var out: [String: DirectoryReadback.FileResult] = [:]
        lock.withLock {
            for (name, t) in tails where !spoiled.contains(name) {
                var st = stat()
                guard let r = t.result, r.error == nil, t.sawClose, lstat(path + "/" + name, &st) == 0,
                      (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) == r.bytes else { continue }
                out[name] = r
            }
        }
        return out
    }
}

/// One file followed from its creation to its close.
private final class FileTail: @unchecked Sendable {
    let path: String
    let name: String
    private let condition = NSCondition()
    private var generation = 0
    private var closed = false
    /// Closed (by pg_dump, not only because the run ended) before the last read began.
    private(set) var sawClose = false
    private(set) var result: DirectoryReadback.FileResult?

    init(path: String, name: String) {
        self.path = path
        self.name = name
    }

    func poke() {
        condition.lock()
        generation += 1
        condition.signal()
        condition.unlock()
    }

    func markClosed() {
        condition.lock()
        closed = true
        generation += 1
        condition.signal()
        condition.unlock()
    }

    func run() {
        guard case .success(let fd) = SnapshotDirectory.openRegular(path) else { return }
        defer { close(fd) }
        fchmod(fd, 0o600)
        var reader = FileReader(name: name, inflate: true, decryption: nil)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            condition.lock()
            let wasClosed = closed, seen = generation
            condition.unlock()
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            if n > 0 {
                reader.consume(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                continue
            }
            // At the end of what is written so far: done if it was closed before this read.
            if wasClosed { break }
            condition.lock()
            while generation == seen && !closed { _ = condition.wait(until: Date().addingTimeInterval(0.2)) }
            condition.unlock()
        }
        sawClose = true
        result = reader.finish(syncing: fd)
    }
}
