import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct MigrationCheckOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Fail unless schema_migrations is at least at this version.")
    var requireMigration: Int64?
    @Flag(help: "Do not fail when schema_migrations is dirty.")
    var allowDirty = false
    @Option(parsing: .unconditional, help: "Most other sessions allowed on the database.")
    var maxConnections = 0

    func validate() throws {
        if let requireMigration, requireMigration < 0 { throw ValidationError("--require-migration must be a version, 0 or more") }
        if maxConnections < 0 { throw ValidationError("--max-connections must be 0 or more") }
    }

    var options: PreflightOptions {
        PreflightOptions(requireMigration: requireMigration, allowDirty: allowDirty, maxConnections: maxConnections)
    }
}

struct Preflight: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The pre-migration checklist: connection, tool versions, schema_migrations, sessions, disk, lock.",
        discussion: """
            With --identity (or PGSNAP_AGE_IDENTITY) the key is also proven on the database's newest \
            snapshot, when it is encrypted: the key a rollback would need.

            Example: pgsnap preflight -d app --require-migration 44

            \(exitStatusHelp)
            """)

    @OptionGroup var checks: MigrationCheckOptions
    @OptionGroup(title: "Encryption") var identity: IdentityOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let session = try makeSession(connection, directory, output)
        session.ageIdentity = try identity.load(session.environment)
        var options = checks.options
        options.proveIdentity = session.ageIdentity != nil
        let result = try PreflightService(session: session).run(options)
        if output.json { try printJSON(result.checks) }
        for c in result.checks where !output.json {
            let line = "\(c.ok ? "ok  " : "FAIL") \(c.name.padding(toLength: 17, withPad: " ", startingAt: 0)) \(c.value)\(c.detail.map { "  (\($0))" } ?? "")"
            if c.ok { session.reporter.info(line) } else { printError(line) }
        }
        let failed = result.checks.filter { !$0.ok }
        // Another run holding the lock is exit 3, as for every command; any other failed check 2.
        if let lock = PreflightCheck.onlyLockHeld(result.checks) {
            throw PGSnapError(.locked, "preflight failed: lock (\(lock.detail ?? "held"))", next: "Run preflight again when that run has finished")
        }
        if !failed.isEmpty {
            throw PGSnapError.verification("preflight failed: \(failed.map(\.name).joined(separator: ", "))", next: "Fix these before migrating")
        }
    }
}

struct Guard: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Preflight, back up and verify, run the migration command, restore if it fails.",
        discussion: """
            The command runs without a shell, with pgsnap's stdin/stdout/stderr. The snapshot \
            is labelled pre_migration_<next version> (pre_guard without schema_migrations) \
            unless --label is given. With --encrypt-to (or PGSNAP_AGE_RECIPIENTS) it is encrypted \
            as by backup; --identity (or PGSNAP_AGE_IDENTITY) is then proven on it before the \
            command runs, and --auto-restore needs it.

            What guard's exit status says about the migration:
              0  the command succeeded; the manifest records the new migration version
              4  the command failed; the database was restored from the new snapshot
              5  the command failed; the database was NOT restored: see the printed command

            Example:
              pgsnap guard -d app --auto-restore -- \\
                migrate -path ./migrations -database "$DATABASE_URL" up

            \(exitStatusHelp)
            """)

    @OptionGroup var checks: MigrationCheckOptions
    @Flag(help: "Restore the snapshot automatically when the command fails or leaves schema_migrations dirty.")
    var autoRestore = false
    /// --label defaults to pre_migration_<next version>, or pre_guard without schema_migrations.
    @OptionGroup var snapshot: SnapshotOptions
    @OptionGroup(title: "Encryption") var encryption: EncryptionOptions
    @OptionGroup(title: "Encryption") var identity: IdentityOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @Argument(parsing: .postTerminator, help: "The migration command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the migration command after --, e.g. pgsnap guard -- migrate up") }
    }

    func run() throws {
        let session = try makeSession(connection, directory, output)
        session.ageIdentity = try identity.load(session.environment)
        var backup = snapshot.backupOptions()
        backup.encryptTo = try encryption.recipients(session.environment)
        // The rollback must be able to read what is about to be written: refused before anything is done.
        if autoRestore, !backup.encryptTo.isEmpty, session.ageIdentity == nil {
            throw ValidationError("--auto-restore would restore a snapshot encrypted to \(backup.encryptTo.map(\.text).joined(separator: ", ")), and no key reads it: pass --identity FILE (or set PGSNAP_AGE_IDENTITY), or drop --auto-restore; nothing was done")
        }
        var base = ["pgsnap", "restore"]
        let env = ProcessInfo.processInfo.environment
        let result = try GuardService(session: session).run(
            command: command, preflight: checks.options,
            backup: backup,
            autoRestore: autoRestore,
            restoreHint: { id in
                base += [id, "--dir", directory.path(env), "--yes", "--terminate-connections"]
                // The connection as given (-d, -h, -p, -U), without the password: runnable as printed,
                // libpq then finds the password where it did for this run (PGPASSWORD, ~/.pgpass).
                let conninfo = session.spec.printableConninfo
                if !conninfo.isEmpty { base += ["--dbname", conninfo] }
                if !backup.encryptTo.isEmpty { base += ["--identity", session.ageIdentity?.path ?? "KEY_FILE"] }
                return base.map(shellQuote).joined(separator: " ")
            },
            outcome: { result in if output.json { try? printJSON(result) } })
        session.reporter.info("pgsnap: migration succeeded: \(migrationLine(result.migrationBefore, result.migrationAfter)); snapshot \(result.snapshot) kept")
    }
}

func migrationLine(_ a: Manifest.MigrationState?, _ b: Manifest.MigrationState?) -> String {
    func f(_ m: Manifest.MigrationState?) -> String { m.map { "\($0.version)\($0.dirty ? " (dirty)" : "")" } ?? "none" }
    return "\(f(a)) -> \(f(b))"
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the live database with a snapshot's manifest: tables added, dropped, row counts.",
        discussion: """
            Reads the manifest only, so an encrypted snapshot needs no key; with --identity (or \
            PGSNAP_AGE_IDENTITY) the key is first proven on the snapshot, as verify and restore do.

            Example (after a migration): pgsnap diff latest -d app

            \(exitStatusHelp)
            """)

    @Argument(help: "Snapshot id, or 'latest'.")
    var snapshot: String = "latest"
    @OptionGroup(title: "Encryption") var identity: IdentityOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let session = try makeSession(connection, directory, output)
        session.ageIdentity = try identity.load(session.environment)
        let database = RestoreService(session: session).defaultDatabase(target: nil)
        let selector = try parseSelector(snapshot, label: nil, before: nil, database: snapshot == "latest" ? database : nil)
        let report = try DiffService(session: session).run(selector)
        if output.json {
            try printJSON(report)
            return
        }
        printOut("snapshot \(report.snapshot) vs live database \"\(report.database)\"")
        printOut("migration: \(migrationLine(report.migrationBefore, report.migrationNow))")
        var rows = [["TABLE", "SNAPSHOT", "NOW", "CHANGE"]]
        for t in report.tables {
            rows.append([t.table, t.snapshotRows.map(String.init) ?? "-", t.liveRows.map(String.init) ?? "-", t.change])
        }
        printOut(table(rows))
    }
}
