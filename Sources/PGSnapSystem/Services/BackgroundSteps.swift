import Foundation
import PGSnapCore

/// Steps on a thread of their own beside the big tables' load: the children they start are
/// stopped, and the thread waited for, when the load fails (the scratch database is dropped next).
final class BackgroundSteps: @unchecked Sendable {
    private let lock = NSLock()
    private let done = DispatchGroup()
    private var children: [ChildProcess] = []
    private var stopped = false
    private var failure: Error?

    func run(_ body: @escaping @Sendable () throws -> Void) {
        done.enter()
        Thread { [self] in
            do { try body() } catch { lock.withLock { failure = error } }
            done.leave()
        }.start()
    }

    /// Starts a child the steps wait for, unless the load has already failed.
    func start(_ command: ExternalCommand) throws -> ChildProcess {
        try lock.withLock {
            guard !stopped else { throw PGSnapError(.interrupted, "restore stopped") }
            let child = try ChildProcess(command, stdin: .null, stdout: .null, stderr: .pipe)
            children.append(child)
            return child
        }
    }

    /// Throws the steps' failure as soon as there is one (the load checks between pieces).
    func throwIfFailed() throws {
        if let failure = lock.withLock({ failure }) { throw failure }
    }

    /// Waits for the steps; rethrows the first failure.
    func wait() throws {
        done.wait()
        try throwIfFailed()
    }

    /// The load failed (or all is done): no new child, the running ones terminated, the thread waited for.
    func stop() {
        let running = lock.withLock { stopped = true; return children }
        for c in running { _ = c.terminate(grace: 2) }
        done.wait()
    }
}
