import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a snapshot: exactly as it was, or on any failure, nothing changed.",
        discussion: """
            Restores into a scratch database, checks every table's row count against the \
            manifest, then renames the current database to <name>_pre_restore_<UTC time> and \
            the scratch database into its place in one transaction. The previous database is \
            kept unless --drop-previous.

            A directory snapshot (backup --format directory) is loaded by pg_restore with \
            --jobs parallel jobs; with --table only the named tables (with their schemas, types, \
            sequences, defaults, constraints and triggers, not their foreign keys or other \
            indexes) go into a new database given by --target, for copying rows back by hand.

            Example (3 a.m.):
              pgsnap restore latest --dbname app --terminate-connections --yes

            Example (one table back, next to the live database):
              pgsnap restore ID --table public.orders --target orders_copy

            \(exitStatusHelp)
            """)

    @Argument(help: "Snapshot id, or 'latest' (the newest good snapshot of the -d/--dbname database, else PGDATABASE's, else --target's; with -d or PGDATABASE, --target names only where it goes).")
    var snapshot: String?
    @Option(help: "The newest good snapshot with this label.")
    var label: String?
    @Option(help: "The newest snapshot taken before this time (ISO 8601, or '2026-11-20 14:00' UTC).")
    var before: String?
    @Option(help: "Restore under this database name instead of the snapshot's own.")
    var target: String?
    @Flag(help: "Disconnect other sessions of the target database before the swap.")
    var terminateConnections = false
    @Flag(help: "Drop the previous database after a successful swap instead of keeping it.")
    var dropPrevious = false
    @Flag(help: "Skip the dump's ALTER ... OWNER TO statements: objects are owned by the restoring user.")
    var noOwner = false
    @Flag(help: "Replace an existing database without asking (required when there is no terminal).")
    var yes = false
    @Option(parsing: .unconditional, help: "Parallel sessions, 1-64 (default: the number of cores): pg_restore jobs of a directory snapshot, COPY sessions for a plain snapshot's big tables, ANALYZE.")
    var jobs: Int?
    @Option(help: ArgumentHelp("maintenance_work_mem of the load sessions, for index and constraint builds (1MB-64GB).", valueName: "size"))
    var maintenanceWorkMem: String = LoadSettings.defaultMaintenanceWorkMem
    @Flag(help: "Do not ANALYZE tables left without planner statistics after the load (a PostgreSQL 18 snapshot carries its own).")
    var noAnalyze = false
    @Option(help: ArgumentHelp("Only this table of a directory snapshot, into a new --target database; repeatable.", valueName: "schema.table"))
    var table: [String] = []
    @OptionGroup(title: "Encryption") var identity: IdentityOptions
    @OptionGroup var lock: LockOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var remote: RemoteOptions

    func validate() throws {
        if let target, target.isEmpty || target.utf8.count > 63 || target.contains("\0") {
            throw ValidationError("--target must be a database name of 1-63 bytes")
        }
        if let jobs, !(1...64).contains(jobs) { throw ValidationError("--jobs must be 1-64") }
        if LoadSettings.maintenanceWorkMemKB(maintenanceWorkMem) == nil {
            throw ValidationError("--maintenance-work-mem '\(oneLine(maintenanceWorkMem, limit: 40))' is not a size from 1MB to 64GB (e.g. 256MB, 2GB)")
        }
        if !table.isEmpty && target == nil { throw ValidationError("--table writes the tables into a new database: add --target NEW_DATABASE") }
    }

    func run() throws {
        let session = try makeSession(connection, directory, output)
        session.ageIdentity = try identity.load(session.environment)
        let service = RestoreService(session: session)
        var selector = try parseSelector(snapshot, label: label, before: before,
                                         database: snapshot == nil || snapshot == "latest" || label != nil ? service.defaultDatabase(target: target) : nil)
        let interactive = isatty(STDIN_FILENO) == 1 && isatty(STDERR_FILENO) == 1
        var options = RestoreOptions(
            target: target, wait: try lock.seconds, terminateConnections: terminateConnections, dropPrevious: dropPrevious, assumeYes: yes,
            noOwner: noOwner, jobs: jobs, tables: table,
            confirm: interactive ? { question in
                StandardStreams.err(question)
                let answer = readAnswer()?.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() ?? ""
                return answer == "y" || answer == "yes"
            } : nil)
        options.analyze = !noAnalyze
        options.maintenanceWorkMem = maintenanceWorkMem
        // Only what -d itself says (a connection string's dbname too), not PGDATABASE's default.
        options.namedDatabase = connection.dbname == nil ? nil : (try? snapshotDatabase(connection.dbname))
        selector = try remote.onDisk(selector, session: session, wait: try lock.seconds)
        let result: RestoreResult
        do {
            result = try service.restore(selector, options: options)
        } catch let e as PGSnapError where e.status == .usage {
            throw ValidationError(e.description)
        }
        if output.json {
            try printJSON(result)
            return
        }
        session.reporter.info("pgsnap: restored \(result.snapshot) into \"\(result.target)\": \(result.tablesChecked) tables, \(result.rowsChecked) rows checked, \(String(format: "%.1f", result.durationSeconds)) s")
        if let p = result.previousDatabase {
            session.reporter.info("pgsnap: the database as it was before the restore is kept as \"\(p)\" (drop it when you no longer need it)")
        }
    }
}

/// One line from the terminal, or nil at end of input or when a signal arrives: readLine()
/// restarts its read after Ctrl-C (SA_RESTART), so the question held the directory lock until
/// someone typed, and a later "y" went on to restore.
func readAnswer() -> String? {
    var line: [UInt8] = []
    while SignalTrap.received == nil {
        var fds = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        let ready = poll(&fds, 1, 200)
        if ready < 0 && errno != EINTR { return nil }
        guard ready > 0 else { continue }
        var byte: UInt8 = 0
        let n = read(STDIN_FILENO, &byte, 1)
        if n < 0 && errno == EINTR { continue }
        guard n == 1 else { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
        if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
        line.append(byte)
    }
    return nil
}
