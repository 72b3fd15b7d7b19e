import Foundation
import PGSnapCore

/// A child that turns its stdin into its stdout (age), driven from the calling thread with poll(2).
///
/// Writing all input first and reading output afterwards deadlocks as soon as both pipes fill;
/// a reader thread would call the next stage from another thread. Instead each `push` writes
/// what the child will take and hands on what it has produced, until the input is gone, so the
/// next stage (the file, or the inflater and psql) runs on the caller's thread, in order.
final class ChildFilter {
    /// The child stopped taking input or closed its output early: look at its status.
    struct Stopped: Error {}

    let child: ChildProcess
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
    private var outputEnded = false
    private var finished = false

    /// - Throws: `PGSnapError` when the executable cannot be started.
    init(_ command: ExternalCommand) throws {
        child = try ChildProcess(command, stdin: .pipe, stdout: .pipe, stderr: .pipe)
        for fd in [child.stdinFD, child.stdoutFD] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
    }

    deinit {
        abort()
        buffer.deallocate()
    }

    /// Writes all of `bytes` to the child, passing whatever it outputs meanwhile to `output`.
    ///
    /// - Throws: `Stopped` when the child no longer reads; any error of `output` as is.
    func push(_ bytes: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        var off = 0
        while off < bytes.count {
            var fds = [pollfd(fd: child.stdinFD, events: Int16(POLLOUT), revents: 0),
                       pollfd(fd: outputEnded ? -1 : child.stdoutFD, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, -1)
            if r < 0 {
                if errno == EINTR { continue }
                throw Stopped()
            }
            if fds[1].revents != 0 { try drainAvailable(output) }
            if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { throw Stopped() }
            if fds[0].revents & Int16(POLLOUT) != 0 {
                let n = write(child.stdinFD, bytes.baseAddress! + off, bytes.count - off)
                if n > 0 { off += n } else if n < 0 && errno != EAGAIN && errno != EINTR { throw Stopped() }
            }
        }
    }

    /// Closes the child's input, passes the rest of its output to `output` and waits for it.
    ///
    /// - Throws: any error of `output`; the child is stopped then.
    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws -> Termination {
        child.closeStdin()
        while !outputEnded {
            var fds = [pollfd(fd: child.stdoutFD, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 1, -1)
            if r < 0 && errno != EINTR { break }
            if r > 0 { try drainAvailable(output) }
        }
        finished = true
        return child.wait()
    }

    /// Stops the child at once (a failed run: nothing it would still write is wanted).
    func abort() {
        guard !finished else { return }
        finished = true
        child.closeStdin()
        child.closeStdout()
        child.terminate(grace: 1)
    }

    private func drainAvailable(_ output: (UnsafeRawBufferPointer) throws -> Void) throws {
        while true {
            let n = read(child.stdoutFD, buffer.baseAddress, buffer.count)
            if n > 0 {
                try output(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                continue
            }
            if n == 0 { outputEnded = true }
            else if errno == EINTR { continue }
            else if errno != EAGAIN { outputEnded = true }
            return
        }
    }
}
