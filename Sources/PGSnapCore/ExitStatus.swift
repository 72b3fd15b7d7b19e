/// The one table of exit codes. Every command's help repeats it; scripts and cron rely on it.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    case failure = 1
    case verificationFailed = 2
    case locked = 3
    case migrationFailedRestored = 4
    case migrationFailedNotRestored = 5
    case offsiteCopyFailed = 6
    case usage = 64
    case interrupted = 130

    public var meaning: String {
        switch self {
        case .success: return "success (--all-databases: every database; else the worst of their codes)"
        case .failure: return "the operation failed (the message says what and what to do next)"
        case .verificationFailed: return "a snapshot or a check failed verification (nothing was changed)"
        case .locked: return "another pgsnap run holds the lock on the backup directory"
        case .migrationFailedRestored: return "guard: the command failed and the database was restored"
        case .migrationFailedNotRestored: return "guard: the command failed and the database was NOT restored"
        case .offsiteCopyFailed: return "backup --push: the local snapshot is good; the offsite copy failed (run 'pgsnap push')"
        case .usage: return "usage error: bad option or argument, nothing was done"
        case .interrupted: return "interrupted (Ctrl-C / SIGTERM): children stopped, partial files removed (guard: only before its command runs)"
        }
    }

    /// The table as printed in README and in every command's help.
    public static var table: String {
        "EXIT STATUS\n" + allCases.map { "  \(String($0.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0)) \($0.meaning)" }
            .joined(separator: "\n")
    }
}
