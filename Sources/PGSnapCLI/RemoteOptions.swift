import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// `--remote [s3://BUCKET[/PREFIX]]`: with a URL it names the bucket, without one it means
/// PGSNAP_REMOTE. ArgumentParser has no option with an optional value, so the command line is
/// rewritten before parsing: `--remote s3://x` becomes `--remote --remote-url s3://x`.
struct RemoteOptions: ParsableArguments {
    @Flag(name: .long, help: "Work on the offsite copy: --remote s3://BUCKET[/PREFIX], or just --remote with PGSNAP_REMOTE set.")
    var remote = false

    @Option(name: .customLong("remote-url"), help: .hidden)
    var remoteURL: String?

    /// The bucket to use, from the command line or PGSNAP_REMOTE.
    ///
    /// - Throws: `ValidationError` when neither names one or the URL is not usable.
    func location(_ env: [String: String]) throws -> RemoteLocation {
        guard let text = remoteURL ?? env["PGSNAP_REMOTE"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ValidationError("no remote: pass --remote s3://BUCKET[/PREFIX] or set PGSNAP_REMOTE")
        }
        do { return try RemoteLocation(parsing: text) } catch let e as PGSnapError { throw ValidationError(e.description) }
    }

    var wanted: Bool { remote || remoteURL != nil }

    func storage(_ env: [String: String]) throws -> S3Storage {
        try S3Storage(remote: try location(env), environment: env)
    }

    /// Where the command works: the bucket with --remote, else the backup directory. The only
    /// place a command tells local from remote.
    ///
    /// - Parameter create: make the backup directory when it is missing (commands that write).
    func snapshotStorage(_ session: Session, create: Bool) throws -> SnapshotStorage {
        if wanted { return try storage(session.environment) }
        return LocalStorage(try session.directory(create: create))
    }

    /// Metric names for `check --metrics-file`: the offsite copy's health is its own series.
    var metricsPrefix: String { wanted ? "pgsnap_remote" : "pgsnap" }

    /// How a lock names the run to another one that waits for it.
    func commandName(_ command: String) -> String { wanted ? command + " --remote" : command }

    /// `--remote s3://x` and `--remote=s3://x` -> `--remote --remote-url s3://x`; nothing else changes.
    static func normalise(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" {
                out += args[i...]
                break
            }
            if a == "--remote", i + 1 < args.count, args[i + 1].hasPrefix("s3://") {
                out += ["--remote", "--remote-url", args[i + 1]]
                i += 2
                continue
            }
            if a.hasPrefix("--remote=") {
                out += ["--remote", "--remote-url", String(a.dropFirst("--remote=".count))]
                i += 1
                continue
            }
            out.append(a)
            i += 1
        }
        return out
    }
}
