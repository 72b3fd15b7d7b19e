import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy good local snapshots to S3-compatible storage (manifest last; skips what is already there).",
        discussion: """
            Without an argument: the newest good snapshot of each database. The dump goes up as a \
            multipart upload (parts of 8-64 MiB, Content-MD5 on each, size checked after \
            completion, SHA-256 in the object metadata); the manifest is written last, so a \
            half-finished push never looks like a snapshot and the next push completes it.

            Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), else the \
            profile AWS_PROFILE (default "default") in AWS_SHARED_CREDENTIALS_FILE (default \
            $HOME/.aws/credentials). Region: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. \
            Other providers: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (path-style addressing).

            Example: pgsnap push --remote s3://acme-backups/pgsnap

            \(exitStatusHelp)
            """)

    @Argument(help: "Snapshot id, or 'latest' (the newest good snapshot; with --database, of that database).")
    var snapshot: String?
    @Flag(help: "Every good local snapshot.")
    var all = false
    @Flag(help: "Upload again what the bucket already holds (to replace a copy damaged there); its manifest is removed first and written last.")
    var force = false
    @Option(name: snapshotDatabaseNames, help: "With 'latest': the newest snapshot of this database (a name or a connection string).")
    var database: String?
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var lock: LockOptions
    @OptionGroup(title: "Notifications") var notify: NotifyOptions

    func validate() throws {
        if all && snapshot != nil { throw ValidationError("give either a snapshot or --all, not both") }
    }

    /// A cron `push` beside the nightly backup fails as quietly as a backup would: it notifies too.
    func run() throws {
        try notify.around("push", database: database, wholeDirectory: true) { _ in try push() }
    }

    func push() throws {
        let env = ProcessInfo.processInfo.environment
        let storage = try remote.storage(env)
        let session = try makeSession(nil, directory, output)
        let database = try snapshotDatabase(database)
        let selector = try snapshot.map { try parseSelector($0, label: nil, before: nil, database: database) }
            ?? (database.map { SnapshotSelector(kind: .latest, database: $0) })
        let results = try TransferService(session: session, remote: storage).push(selector: selector, all: all, wait: try lock.seconds, force: force)
        if output.json {
            try printJSON(results)
        } else if !output.quiet {
            for r in results { printOut("\(r.id) \(r.action)") }
        }
    }
}

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a snapshot from S3-compatible storage into the backup directory, checked as it streams.",
        discussion: """
            Size and SHA-256 are checked against the remote manifest while the dump streams in; \
            it is written as .partial and renamed, the manifest last, exactly like a backup. A \
            snapshot already whole locally is not downloaded again. Credentials as for 'push'. \
            With --identity (or PGSNAP_AGE_IDENTITY) an encrypted snapshot's key is proven on \
            its first MiB in the bucket before anything is downloaded.

            Example (a new machine):
              pgsnap pull latest --database app --remote s3://acme-backups/pgsnap \\
                --dir /var/backups/pgsnap

            \(exitStatusHelp)
            """)

    @Argument(help: "Snapshot id, or 'latest'.")
    var snapshot: String = "latest"
    @Option(help: "The newest good snapshot with this label.")
    var label: String?
    @Option(name: snapshotDatabaseNames, help: "With 'latest' or --label: of this database (a name or a connection string).")
    var database: String?
    @OptionGroup(title: "Encryption") var identity: IdentityOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var lock: LockOptions

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let session = try makeSession(nil, directory, output)
        session.ageIdentity = try identity.load(session.environment)
        let storage = try remote.storage(env)
        let selector = try parseSelector(label == nil ? snapshot : nil, label: label, before: nil, database: try snapshotDatabase(database))
        let result = try TransferService(session: session, remote: storage).pull(selector, wait: try lock.seconds)
        if output.json {
            try printJSON(result)
        } else if !output.quiet {
            printOut(result.id)
        }
    }
}
