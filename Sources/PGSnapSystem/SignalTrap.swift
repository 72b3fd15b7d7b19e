import Foundation

/// Live children, so a signal handler can pass Ctrl-C / SIGTERM on to them.
///
/// Foundation starts each child in its own process group, so the terminal's Ctrl-C never reaches
/// pg_dump or psql by itself. Fixed-size C storage: the handler must not allocate.
enum ChildRegistry {
    static let capacity = 32
    nonisolated(unsafe) static let pids: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        p.initialize(repeating: 0, count: capacity)
        return p
    }()
    static let lock = NSLock()

    static func add(_ pid: Int32) {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<capacity where pids[i] == 0 {
            pids[i] = pid
            return
        }
    }

    /// guard's command, leader of its own process group: it gets the signal pgsnap got (SIGINT
    /// stays SIGINT, on which golang-migrate stops after the running migration), and so does
    /// everything it started in its group (the real `migrate` under a wrapper script), as a
    /// terminal's Ctrl-C would. 0 when none runs.
    nonisolated(unsafe) static var commandGroup: Int32 = 0

    static func remove(_ pid: Int32) {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<capacity where pids[i] == pid { pids[i] = 0 }
    }
}

nonisolated(unsafe) private var receivedSignal: Int32 = 0

private func forwardSignal(_ sig: Int32) {
    receivedSignal = sig
    let group = ChildRegistry.commandGroup
    // Foundation makes each child the leader of its own group; should it not, the child alone.
    if group > 0 && kill(-group, sig) != 0 { kill(group, sig) }
    for i in 0..<ChildRegistry.capacity {
        let pid = ChildRegistry.pids[i]
        if pid > 0 && pid != group { kill(pid, SIGTERM) }
    }
    CancelRegistry.cancelAll()
}

/// Installs pgsnap's signal handling once, at start.
///
/// INT, TERM and HUP are recorded and forwarded (as TERM) to the children; the work loop notices,
/// cleans up and exits 130. SIGPIPE gets a no-op handler, not SIG_IGN (which children would
/// inherit across exec), so a write to a dead psql fails with EPIPE instead of killing pgsnap.
public enum SignalTrap {
    public static func install() {
        // Their storage is made now: the handler must not be the first to touch it.
        _ = ChildRegistry.pids
        _ = CancelRegistry.slots
        _ = CancelRegistry.errorBuffer
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { forwardSignal($0) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
        var pipeAction = sigaction()
        pipeAction.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&pipeAction.sa_mask)
        sigaction(SIGPIPE, &pipeAction, nil)
    }

    /// The signal that asked pgsnap to stop, or nil.
    public static var received: Int32? {
        let s = receivedSignal
        return s == 0 ? nil : s
    }

    /// For tests: forget a recorded signal.
    public static func reset() { receivedSignal = 0 }

    /// Set once guard's command has run: from then on the run's own status (0, 4, 5) says what
    /// became of the database, and a later signal does not turn it into 130 ("before its
    /// command runs", in the exit status table).
    nonisolated(unsafe) public static var exitStatusIsTheRunsOwn = false
}
