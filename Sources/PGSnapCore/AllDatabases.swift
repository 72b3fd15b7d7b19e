import Foundation

/// The rules of a whole-server run (`backup --all-databases`, `check --all-databases`).
extension ExitStatus {
    /// How bad a status is when several databases each end with one: the run exits with the worst.
    ///
    /// A failed backup (1) outranks a snapshot that failed its check (2), which outranks a
    /// directory lock held by another run (3), which outranks a good snapshot whose offsite copy
    /// failed (6): the lower ones still leave a usable local snapshot or a run to retry. Usage
    /// errors and interruption outrank everything, since the run as a whole did not do its job.
    public var severity: Int {
        switch self {
        case .success: return 0
        case .offsiteCopyFailed: return 1
        case .locked: return 2
        case .verificationFailed: return 3
        case .migrationFailedRestored: return 4
        case .failure: return 5
        case .migrationFailedNotRestored: return 6
        case .usage: return 7
        case .interrupted: return 8
        }
    }

    /// The worst of `statuses` by `severity`; `.success` when there are none.
    public static func worst<S: Sequence>(_ statuses: S) -> ExitStatus where S.Element == ExitStatus {
        statuses.max { $0.severity < $1.severity } ?? .success
    }
}

extension ConnectionSpec {
    /// True for a `postgres://` URI or a libpq `key=value` string; false for a bare database name.
    ///
    /// With `--all-databases`, `-d` may only say how to reach the server: a bare name would read
    /// as "only this database", which is the opposite of what the run does.
    public static func isConnectionString(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") || text.contains("=")
    }
}

/// What happened to one database in `backup --all-databases`: its snapshot, or its error, or both
/// (a snapshot that was taken but whose prune or offsite copy failed).
public struct DatabaseOutcome: Encodable, Equatable, Sendable {
    public var database: String
    /// The snapshot taken, when one was.
    public var id: String?
    /// The one-line error, when anything failed.
    public var error: String?
    /// The exit status that error alone would have given; nil on success.
    public var exitStatus: Int32?

    public init(database: String, id: String?, error: String? = nil, exitStatus: ExitStatus? = nil) {
        self.database = database
        self.id = id
        self.error = error
        self.exitStatus = exitStatus.map(\.rawValue)
    }

    public var status: ExitStatus { exitStatus.flatMap(ExitStatus.init(rawValue:)) ?? .success }
}
