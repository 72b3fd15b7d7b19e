import Foundation
import PGSnapCore

/// How a child ended. pg_dump killed by a signal often *exits* 1 ("terminated by user"), so
/// callers judge by the status and the signal flag, not by the reason alone.
public enum Termination: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public var succeeded: Bool { self == .exited(0) }
    public var description: String {
        switch self {
        case .exited(let code): return "exit status \(code)"
        case .signaled(let sig): return "killed by signal \(sig)"
        }
    }
}

/// A command to run: an executable and its argv, never a shell line.
public struct ExternalCommand: Equatable, Sendable {
    public var name: String
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]

    public init(name: String, executable: String, arguments: [String], environment: [String: String]) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }
}

/// A running child with pipes. The only type in pgsnap that touches Foundation's `Process`.
public final class ChildProcess {
    public enum Stream { case pipe, inherit, null }

    public let command: ExternalCommand
    private let process = Process()
    private let exited = DispatchSemaphore(value: 0)
    private var termination: Termination?
    private let stderrTail = TailBuffer(limit: 16 << 10)
    private var stderrThread: Thread?
    private let stderrDone = DispatchSemaphore(value: 0)
    /// Read end of the child's stdout, when piped.
    public private(set) var stdoutFD: Int32 = -1
    /// Write end of the child's stdin, when piped.
    public private(set) var stdinFD: Int32 = -1

    public var pid: Int32 { process.processIdentifier }

    /// Starts the child. stderr is always drained on a thread into a bounded tail (a full pipe would hang it)
    /// unless inherited.
    ///
    /// - Throws: `PGSnapError` when the executable cannot be started.
    public init(_ command: ExternalCommand, stdin: Stream = .null, stdout: Stream = .pipe, stderr: Stream = .pipe,
                diesWithPgsnap: Bool = true) throws {
        self.command = command
        // Tethered by no pipe it reads or writes, the child would outlive a killed pgsnap.
        let start = diesWithPgsnap && stdin != .pipe && stdout != .pipe
            ? ChildTrampoline.wrap(command) : (executable: command.executable, arguments: command.arguments)
        process.executableURL = URL(fileURLWithPath: start.executable)
        process.arguments = start.arguments
        process.environment = command.environment
        var inPipe: Pipe?, outPipe: Pipe?, errPipe: Pipe?
        switch stdin {
        case .pipe: inPipe = Pipe(); process.standardInput = inPipe
        case .null: process.standardInput = FileHandle.nullDevice
        case .inherit: break
        }
        switch stdout {
        case .pipe: outPipe = Pipe(); process.standardOutput = outPipe
        case .null: process.standardOutput = FileHandle.nullDevice
        case .inherit: break
        }
        switch stderr {
        case .pipe: errPipe = Pipe(); process.standardError = errPipe
        case .null: process.standardError = FileHandle.nullDevice
        case .inherit: break
        }
        process.terminationHandler = { [weak self] p in
            guard let self else { return }
            self.termination = p.terminationReason == .uncaughtSignal ? .signaled(p.terminationStatus) : .exited(p.terminationStatus)
            self.exited.signal()
        }
        do {
            try process.run()
        } catch {
            throw PGSnapError("cannot start \(command.name) (\(command.executable)): \(error.localizedDescription)",
                              next: "Check that PostgreSQL client tools are installed")
        }
        ChildRegistry.add(process.processIdentifier)
        if let inPipe {
            stdinFD = fcntl(inPipe.fileHandleForWriting.fileDescriptor, F_DUPFD_CLOEXEC, 0)
            ChildProcess.widen(stdinFD)
            try? inPipe.fileHandleForWriting.close()
            try? inPipe.fileHandleForReading.close()
        }
        if let outPipe {
            stdoutFD = fcntl(outPipe.fileHandleForReading.fileDescriptor, F_DUPFD_CLOEXEC, 0)
            ChildProcess.widen(stdoutFD)
            try? outPipe.fileHandleForReading.close()
            try? outPipe.fileHandleForWriting.close()
        }
        if let errPipe {
            let fd = fcntl(errPipe.fileHandleForReading.fileDescriptor, F_DUPFD_CLOEXEC, 0)
            try? errPipe.fileHandleForReading.close()
            try? errPipe.fileHandleForWriting.close()
            let tail = stderrTail, done = stderrDone
            let t = Thread {
                var buf = [UInt8](repeating: 0, count: 8192)
                while true {
                    let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n > 0 { buf.withUnsafeBytes { tail.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
                    else if n == 0 || errno != EINTR { break }
                }
                close(fd)
                done.signal()
            }
            t.start()
            stderrThread = t
        } else {
            stderrDone.signal()
        }
    }

    /// A 1 MiB pipe instead of 64 KiB: fewer wake-ups per megabyte between pg_dump/psql and us.
    static func widen(_ fd: Int32) {
        let F_SETPIPE_SZ: Int32 = 1031  // Linux; not exported by Glibc's module
        _ = fcntl(fd, F_SETPIPE_SZ, 1 << 20)
    }

    deinit {
        closeStdin()
        if stdoutFD >= 0 { close(stdoutFD) }
    }

    /// Closes our end of the child's stdin. Never call this to abort psql: EOF commits (see terminate).
    public func closeStdin() {
        if stdinFD >= 0 {
            close(stdinFD)
            stdinFD = -1
        }
    }

    public func closeStdout() {
        if stdoutFD >= 0 {
            close(stdoutFD)
            stdoutFD = -1
        }
    }

    /// Writes all of `bytes` to the child's stdin.
    ///
    /// - Throws: `PGSnapError` when the child has closed its input (EPIPE): it has exited, look at its status.
    public func writeStdin(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = write(stdinFD, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw PGSnapError("\(command.name) stopped reading its input (\(String(cString: strerror(errno))))")
            }
            off += n
        }
    }

    /// Waits for the child and for its stderr to be drained.
    @discardableResult
    public func wait() -> Termination {
        exited.wait()
        exited.signal()
        stderrDone.wait()
        stderrDone.signal()
        ChildRegistry.remove(pid)
        return termination!
    }

    public var isRunning: Bool { process.isRunning }

    /// SIGTERM, then SIGKILL if it is still running after `grace` seconds; then waits.
    @discardableResult
    public func terminate(grace: Double = 5) -> Termination {
        if process.isRunning {
            kill(pid, SIGTERM)
            if exited.wait(timeout: .now() + grace) == .timedOut {
                kill(pid, SIGKILL)
            } else {
                exited.signal()
            }
        }
        return wait()
    }

    /// The child's stderr tail, each line trimmed, empty lines dropped.
    public var stderrLines: [String] {
        String(decoding: stderrTail.bytes, as: UTF8.self).split(whereSeparator: \.isNewline).map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
    }

    /// The most telling line of stderr (`ToolErrorLine`): the cause, else the last line.
    public var lastErrorLine: String? { ToolErrorLine.pick(stderrLines) }

    /// Runs a command to completion and returns all of its stdout, or nil for it when it was
    /// longer than `limit` (the caller then refuses rather than work from a cut-off list).
    public static func captureAll(_ command: ExternalCommand, limit: Int) throws -> (Termination, [UInt8]?, ChildProcess) {
        let child = try ChildProcess(command, stdout: .pipe)
        var out = [UInt8]()
        var overflow = false
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(child.stdoutFD, $0.baseAddress, $0.count) }
            if n > 0 {
                if out.count + n <= limit { out.append(contentsOf: buf[0..<n]) } else { overflow = true }
            } else if n == 0 || errno != EINTR { break }
        }
        let t = child.wait()
        return (t, overflow ? nil : out, child)
    }

    /// Runs a short command to completion and returns its stdout (small outputs only).
    public static func capture(_ command: ExternalCommand) throws -> (Termination, String, ChildProcess) {
        let child = try ChildProcess(command, stdout: .pipe)
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(child.stdoutFD, $0.baseAddress, $0.count) }
            if n > 0 { if out.count < 1 << 20 { out.append(contentsOf: buf[0..<n]) } }
            else if n == 0 || errno != EINTR { break }
        }
        let t = child.wait()
        return (t, String(decoding: out, as: UTF8.self), child)
    }
}

/// The last `limit` bytes written to it; thread-safe.
final class TailBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [UInt8] = []
    private let limit: Int
    init(limit: Int) { self.limit = limit }
    func append(_ b: UnsafeRawBufferPointer) {
        lock.lock()
        storage.append(contentsOf: b)
        if storage.count > limit * 2 { storage.removeFirst(storage.count - limit) }
        lock.unlock()
    }
    var bytes: [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return Array(storage.suffix(limit))
    }
}
