import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dump a database with pg_dump into a compressed, checksummed snapshot.",
        discussion: """
            Writes DIR/<db>_<UTC time>[_<label>].sql.gz (zcat-readable) and a .manifest.json \
            beside it. The manifest is written last: a snapshot without one does not exist. With \
            --encrypt-to the file is <id>.sql.gz.age, encrypted by the age command: \
            'age -d -i key.txt FILE | zcat'.

            With --remote s3://BUCKET[/PREFIX] (or --remote and PGSNAP_REMOTE) and no --push, \
            the dump streams through compression and encryption straight into the bucket as a \
            multipart upload, and the manifest is written last: nothing is written to the local \
            disk, for a server whose disk cannot hold a second copy of the database. A killed \
            upload is invisible; the next backup --remote or prune --remote aborts it after 24 h.

            Example: pgsnap backup --dbname app --label pre_migration_000045
            Example: pgsnap backup --dbname app --remote s3://backups/app

            \(exitStatusHelp)
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup var snapshot: SnapshotOptions

    @Option(help: "plain (default: one SQL file, psql-readable) or directory (pg_dump -Fd: one gzip file per table, restored in parallel by pg_restore -j; --jobs sets pg_dump's jobs).")
    var format: DumpFormat = .plain

    @Flag(help: "Also save roles and tablespaces (pg_dumpall --globals-only): beside the snapshot, or with --all-databases once for the whole run (run-<time>.globals.sql), which each of its snapshots refers to.")
    var globals = false

    @Flag(help: "Back up every database on the server that accepts connections, each to its own snapshot; -d may then only be a connection string.")
    var allDatabases = false

    @Flag(help: "After a successful, verified backup, prune this database's snapshots by the policy below.")
    var prune = false

    @OptionGroup(title: "Encryption") var encryption: EncryptionOptions

    @Flag(help: "Back up into the directory, verify, then copy to --remote s3://... (or PGSNAP_REMOTE); exit 6 if only the copy fails. Without --push, --remote writes straight to the bucket.")
    var push = false
    @OptionGroup var remote: RemoteOptions

    @OptionGroup var policy: PolicyOptions
    @OptionGroup var lock: LockOptions
    @OptionGroup(title: "Notifications") var notify: NotifyOptions

    func validate() throws {
        if format == .directory {
            if snapshot.compress != .gzip { throw ValidationError("--format directory stores gzip files (pg_dump -Fd); drop --compress") }
        }
        if remote.wanted && !push {
            // pg_dump -Fd writes files of its own, and a whole-server run keeps its globals in the directory.
            if format == .directory { throw ValidationError("--remote without --push streams one plain-format dump into the bucket; --format directory needs the directory: add --push") }
            if allDatabases { throw ValidationError("--remote without --push streams one database into the bucket; --all-databases needs the directory: add --push") }
        }
        try validateAllDatabases()
    }

    func run() throws {
        // A whole-server run names no database (not even PGDATABASE from an env file).
        try notify.around("backup", database: allDatabases ? nil : connection.dbname, wholeDirectory: allDatabases) { try backup($0) }
    }

    func backup(_ report: NotifyReport) throws {
        if allDatabases { return try runAllDatabases() }
        let session = try makeSession(connection, directory, output)
        var options = snapshot.backupOptions(globals: globals)
        options.format = format
        options.encryptTo = try encryption.recipients(session.environment)
        // Before the backup: a missing bucket name or credentials is a usage problem, found in a second.
        let bucket = push || remote.wanted ? try remote.storage(session.environment) : nil
        let service = BackupService(session: session)
        let manifest: Manifest
        let storage: SnapshotStorage
        if let bucket, !push {
            // --remote alone: straight into the bucket, nothing on the local disk.
            do {
                manifest = try service.run(options, to: bucket)
            } catch let e as PGSnapError where e.status == .usage {
                throw ValidationError(e.description)
            }
            storage = bucket
        } else {
            manifest = try service.run(options, wait: try lock.seconds)
            storage = LocalStorage(try session.directory(create: false))
        }
        report.record(manifest)
        // The offsite copy first: a prune that fails (a lock held past --wait) must not cost it.
        if push, let bucket { try pushAfterBackup(manifest, storage: bucket, session: session, wait: try lock.seconds) }
        // Only a snapshot proven whole may let older ones go.
        if prune { try pruneAfterBackup(manifest, in: storage, policy: policy.policy, session: session, wait: try lock.seconds) }
        if output.json {
            try printJSON(WithNulls(manifest))
        } else {
            session.reporter.info("pgsnap: snapshot \(manifest.id): \(formatBytes(manifest.compressedBytes)) (\(formatBytes(manifest.uncompressedBytes)) dumped), \(manifest.tableRows.count) tables, \(manifest.tableRows.values.reduce(0, +)) rows, \(String(format: "%.1f", manifest.durationSeconds)) s")
            if !output.quiet { printOut(manifest.id) }
        }
    }
}

extension CompressionAlgorithm: ExpressibleByArgument {}
extension DumpFormat: ExpressibleByArgument {}

/// How a snapshot is taken: shared by `backup` and `guard`.
struct SnapshotOptions: ParsableArguments {
    @Option(help: "Label stored in the name and manifest: letters, digits, '.', '_', '-' (max 64).")
    var label: String?

    @Option(help: "gzip (default: any machine can read it), zstd (faster, smaller; zstdcat) or none.")
    var compress: CompressionAlgorithm = .gzip

    @Option(parsing: .unconditional, help: "Compression level: gzip 0-9 (default 6), zstd 1-19 (default 3).")
    var level: Int?

    // Optional so help shows no machine-dependent default (and a 96-core host is not refused).
    @Option(parsing: .unconditional, help: "Compression threads, 1-64 (default: the number of cores).")
    var jobs: Int?

    @Option(parsing: .unconditional, help: "Seconds to wait for a table another session holds locked (default: the session's lock_timeout, e.g. from PGOPTIONS, or 60 when that is 0).")
    var lockWaitTimeout: Double?

    func validate() throws {
        switch (compress, level) {
        case (_, nil): break
        case (.gzip, let l?): guard (0...9).contains(l) else { throw ValidationError("--level for gzip must be 0-9") }
        case (.zstd, let l?): guard (1...19).contains(l) else { throw ValidationError("--level for zstd must be 1-19") }
        case (.none, _): throw ValidationError("--level makes no sense with --compress none")
        }
        if let jobs, !(1...64).contains(jobs) { throw ValidationError("--jobs must be 1-64") }
        if let lockWaitTimeout, !(lockWaitTimeout.isFinite && lockWaitTimeout > 0 && lockWaitTimeout <= 86400) {
            throw ValidationError("--lock-wait-timeout must be more than 0 and at most 86400 seconds")
        }
        if let label {
            do { try SnapshotName.validateNewLabel(label) } catch let e as PGSnapError { throw ValidationError(e.description) }
        }
    }

    func backupOptions(globals: Bool = false) -> BackupOptions {
        BackupOptions(label: label, level: level ?? Codec.defaultLevel(compress), jobs: jobs ?? min(ProcessInfo.processInfo.activeProcessorCount, 64), compression: compress, globals: globals,
                      lockWaitTimeout: lockWaitTimeout)
    }
}
