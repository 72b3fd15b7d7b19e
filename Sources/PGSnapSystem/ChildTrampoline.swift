import CProcess
import Foundation

/// Children that write to files or to the server rather than to a pipe of pgsnap's (pg_dump
/// `--format directory`, pg_restore) would outlive a pgsnap killed with SIGKILL: pg_dump went on
/// dumping the whole database into a `.partial` directory nobody would use, holding its locks
/// (and, for an encrypted backup, leaving its plain files behind it). A child tethered by a pipe
/// ends by itself (SIGPIPE, end of input).
///
/// So such a child is started through pgsnap itself: `pgsnap MARKER PARENT_PID EXECUTABLE ARGS...`
/// asks the kernel for SIGTERM when pgsnap's starting thread ends (`PR_SET_PDEATHSIG`, kept across
/// exec), then becomes the child with `execv`: same argv, environment and descriptors. Only
/// after `enable`, which pgsnap's `main` calls (a test runner is not pgsnap); every pgsnap thread
/// that starts a child waits for it, so the thread outlives the child.
public enum ChildTrampoline {
    static let marker = "--pgsnap-exec-dying-with-parent"
    /// pgsnap's own executable, once `enable` found it.
    nonisolated(unsafe) private(set) static var executable: String?

    /// Called first thing in `main`: becomes the child when asked to (never returns then), and
    /// otherwise lets `ChildProcess` start untethered children through this executable.
    public static func enable(arguments: [String] = CommandLine.arguments) {
        if arguments.count >= 4, arguments[1] == marker { become(parent: Int32(arguments[2]) ?? -1, argv: Array(arguments[3...])) }
        executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).flatMap {
            access($0, X_OK) == 0 ? $0 : nil
        }
    }

    /// The command to start instead of `command`: through the trampoline when enabled.
    static func wrap(_ command: ExternalCommand) -> (executable: String, arguments: [String]) {
        guard let executable else { return (command.executable, command.arguments) }
        return (executable, [marker, String(getpid()), command.executable] + command.arguments)
    }

    private static func become(parent: Int32, argv: [String]) -> Never {
        _ = pgsnap_die_with_parent(SIGTERM)
        // pgsnap ended before the request above: nothing would tell this child to stop.
        if getppid() != parent { _exit(143) }
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        execv(argv[0], &cArgs)
        let message = "pgsnap: cannot start \(argv[0]): \(String(cString: strerror(errno)))\n"
        StandardStreams.err(message)
        _exit(127)
    }
}
