import Foundation
import PGSnapCore
import Synchronization

/// Ends the sessions of the database being renamed aside while `ALTER DATABASE … RENAME` waits
/// for them, for `--terminate-connections`.
///
/// The rename holds the database's lock and then waits up to 5 s for its other sessions to
/// leave; a new connection blocks on that lock before it counts as a session. So sessions ended
/// from a second connection during that wait are gone for good, and a pool that reconnects at
/// once (terminated between pgsnap's own terminate and the rename, it was back and counted) no
/// longer makes every attempt fail. By the database's oid, not its name: once the rename commits
/// the name belongs to the restored database, whose sessions are never touched; and it is stopped
/// before the commit in any case.
final class SwapTerminator: @unchecked Sendable {
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - connection: its own session (not the one renaming, which is busy waiting).
    ///   - oid: the database being renamed aside.
    ///   - except: the renaming session's backend pid.
    init(connection: LibPQConnection, oid: String, except: String) {
        let thread = Thread { [self] in
            while !self.stopped.load(ordering: .acquiring) {
                // A session this role may not end fails the call: the rename then fails as before,
                // naming the clients; nothing else depends on this loop.
                _ = try? connection.query("""
                    SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity
                    WHERE datid = $1::oid AND pid <> $2::int AND \(DatabaseFacts.clientBackend)
                    """, [oid, except])
                usleep(20_000)
            }
            self.done.signal()
        }
        thread.name = "pgsnap-swap-terminator"
        thread.start()
    }

    /// Stops the loop and waits for its last call to return (idempotent).
    func stop() {
        if stopped.exchange(true, ordering: .acquiringAndReleasing) { return }
        done.wait()
    }
}
