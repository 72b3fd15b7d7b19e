import Foundation
import PGSnapCore

public struct GuardResult: Encodable {
    public var snapshot: String
    public var commandStatus: String
    public var migrationBefore: Manifest.MigrationState?
    public var migrationAfter: Manifest.MigrationState?
    public var restored: Bool
    public var restoreCommand: String?
    public var previousDatabase: String?
    /// Whether the command succeeded and left schema_migrations clean (exit 0); false with exit 4 or 5.
    public var ok = false
    /// Set when the manifest could not record the migration's new state (the migration itself succeeded).
    public var manifestNotUpdated: String?
}

/// The deploy-script step: preflight, backup + verify, run the migration, restore if it fails.
public struct GuardService {
    let session: Session
    public init(session: Session) { self.session = session }

    /// - Parameter outcome: told the result once the command has run, before exit 4 or 5 is
    ///   thrown too (`guard --json` prints it either way).
    /// - Throws: `PGSnapError` with exit 2 (preflight or verification), 4 (failed, restored), 5 (failed, not restored).
    public func run(command: [String], preflight: PreflightOptions, backup: BackupOptions, autoRestore: Bool,
                    restoreHint: (String) -> String, outcome: (GuardResult) -> Void = { _ in }) throws -> GuardResult {
        // A mistyped command should cost nothing, not a full backup.
        let executable = try resolve(command[0])
        let pre = try PreflightService(session: session).run(preflight)
        let failed = pre.checks.filter { !$0.ok }
        for c in pre.checks { session.reporter.info("preflight \(c.ok ? "ok  " : "FAIL") \(c.name): \(c.value)\(c.detail.map { " (\($0))" } ?? "")") }
        // The lock alone is the deploy script's exit 3 ("another run holds it"), as for preflight.
        if let lock = PreflightCheck.onlyLockHeld(pre.checks) {
            throw PGSnapError(.locked, "preflight: \(lock.detail ?? lock.value); nothing was run",
                              next: "Run guard again when that run has finished")
        }
        guard failed.isEmpty, let database = pre.database else {
            throw PGSnapError.verification("preflight failed: " + failed.map { "\($0.name): \($0.detail ?? $0.value)" }.joined(separator: "; "),
                                           next: "Nothing was run")
        }
        var options = backup
        if options.label == nil {
            options.label = pre.migration.map { String(format: "pre_migration_%06lld", $0.version + 1) } ?? "pre_guard"
        }
        let manifest = try BackupService(session: session).run(options)
        let dir = try session.directory(create: false)
        // Encrypted: the key that would roll back is proven before the command may change anything.
        try session.proveIdentity(for: manifest, in: dir)
        let entry = try SnapshotSelector(kind: .id(manifest.id)).select(from: try dir.catalog(), directory: dir.path)
        let check = VerifyService(session: session).verify(entry, in: dir)
        guard check.ok else {
            throw PGSnapError.verification("snapshot \(manifest.id) failed verification (\(check.failedCheck ?? "?")); the command was not run")
        }
        // Its arguments may hold the database's URL with a password (migrate -database "$DATABASE_URL").
        session.reporter.info("pgsnap: snapshot \(manifest.id) taken and verified; running: \(session.redact(command.map(shellQuote).joined(separator: " ")))")

        // A Ctrl-C or SIGTERM during the backup's checks (which read the whole snapshot without
        // stopping for it) must not let the command start: 130, nothing run.
        if SignalTrap.received != nil {
            throw PGSnapError(.interrupted, "guard interrupted before the command ran; nothing was run (snapshot \(manifest.id) is kept)")
        }
        let status: Termination
        do {
            status = try runCommand(executable, command)
            SignalTrap.exitStatusIsTheRunsOwn = true
        } catch {
            throw PGSnapError("cannot start \(command[0]): \((error as? PGSnapError)?.what ?? "\(error)"); the database was not changed",
                              next: "Fix the command (its #! line, its permissions) and run guard again; snapshot \(manifest.id) is kept")
        }
        // Once the command has run, the exit status says what became of the database, also after
        // Ctrl-C (which reached the command): 0, 4 or 5, not 130. A signal only rules out the
        // automatic restore (the user asked pgsnap to stop); a second one interrupts what is left.
        let interrupted = SignalTrap.received
        SignalTrap.reset()
        let after: Manifest.MigrationState?
        let hint = restoreHint(manifest.id)
        var result = GuardResult(snapshot: manifest.id, commandStatus: "\(status)", migrationBefore: manifest.migration,
                                 migrationAfter: nil, restored: false)
        do {
            after = try DatabaseFacts.migrationState(try session.connect(database: database))
        } catch {
            // Unknown is not "not dirty": a migration that marked itself dirty and lost the
            // server would otherwise pass. Not restored either: the command may have succeeded.
            result.restoreCommand = hint
            outcome(result)
            throw PGSnapError(.migrationFailedNotRestored,
                              "the command \(status.succeeded ? "succeeded" : "failed (\(status))") but schema_migrations could not be read afterwards (\((error as? PGSnapError)?.what ?? "\(error)")); the database was NOT restored",
                              next: "Check the migration's state; to roll back run: \(hint)")
        }
        result.migrationAfter = after
        let dirtyAfter = after?.dirty == true
        if status.succeeded && !dirtyAfter {
            result.ok = true
            var updated = manifest
            updated.migrationAfter = after
            do {
                try dir.writeAtomically(try updated.encoded(), to: manifest.id + SnapshotName.manifestSuffix)
            } catch {
                // The migration succeeded: exit 0 says so; only the record of it is missing.
                let why = session.redact(oneLine((error as? PGSnapError)?.what ?? "\(error)"))
                result.manifestNotUpdated = why
                session.reporter.warn("the migration succeeded, but the manifest of \(manifest.id) could not record it (\(why)); the snapshot is intact")
            }
            outcome(result)
            return result
        }
        let why = (interrupted.map { "was interrupted (signal \($0)) and " } ?? "")
            + (status.succeeded ? "left schema_migrations dirty at \(after?.version ?? 0)" : "failed (\(status))")
        guard autoRestore, interrupted == nil else {
            result.restoreCommand = hint
            outcome(result)
            throw PGSnapError(.migrationFailedNotRestored, "the command \(why); the database was NOT restored\(autoRestore ? " (interrupted: no automatic restore)" : "")",
                              next: "To roll back run: \(hint)")
        }
        session.reporter.info("pgsnap: the command \(why); restoring \(manifest.id)")
        do {
            let r = try RestoreService(session: session).restore(
                SnapshotSelector(kind: .id(manifest.id)),
                options: RestoreOptions(target: database, terminateConnections: true, dropPrevious: false, assumeYes: true, confirm: nil))
            result.restored = true
            result.previousDatabase = r.previousDatabase
        } catch {
            result.restoreCommand = hint
            outcome(result)
            throw PGSnapError(.migrationFailedNotRestored, "the command \(why) and the automatic restore failed too: \(error)",
                              next: "Restore by hand: \(hint)")
        }
        outcome(result)
        throw PGSnapError(.migrationFailedRestored, "the command \(why); database \"\(database)\" was restored from \(manifest.id)",
                          next: "The failed state is kept as \"\(result.previousDatabase ?? "-")\" for inspection")
    }

    /// Runs the user's command with our stdio; no shell. Signals reach it through the trap; it is
    /// the user's own program, so it is not ended when pgsnap is killed (a migration tool decides
    /// itself how to stop).
    func runCommand(_ path: String, _ argv: [String]) throws -> Termination {
        let child = try ChildProcess(ExternalCommand(name: argv[0], executable: path, arguments: Array(argv.dropFirst()), environment: session.environment),
                                     stdin: .inherit, stdout: .inherit, stderr: .inherit, diesWithPgsnap: false)
        // A signal goes to its whole process group, as the signal pgsnap got (see ChildRegistry).
        ChildRegistry.commandGroup = child.pid
        defer { ChildRegistry.commandGroup = 0 }
        if let signal = SignalTrap.received, kill(-child.pid, signal) != 0 { kill(child.pid, signal) }
        return child.wait()
    }

    func resolve(_ name: String) throws -> String {
        if name.contains("/") {
            guard Self.isExecutableFile(name) else { throw PGSnapError("command \(name) is not an executable file", next: "Nothing was run") }
            try checkInterpreter(name)
            return name
        }
        for dir in (session.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") where Self.isExecutableFile("\(dir)/\(name)") {
            try checkInterpreter("\(dir)/\(name)")
            return "\(dir)/\(name)"
        }
        throw PGSnapError("command \(name) not found in PATH", next: "Nothing was run")
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    /// A script whose `#!` names a missing interpreter, or that has no `#!` line at all (the
    /// kernel runs neither), would fail only after the backup.
    func checkInterpreter(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 256)) ?? Data()
        guard head.starts(with: Array("#!".utf8)) else {
            if head.starts(with: [0x7F, 0x45, 0x4C, 0x46]) { return }  // an ELF program
            throw PGSnapError("command \(path) is neither a program nor a script with a #! line, so it cannot be started",
                              next: "Add a #! line (e.g. #!/bin/sh) as its first line; nothing was run")
        }
        let line = String(decoding: head.dropFirst(2).prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        guard let interpreter = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init), !interpreter.isEmpty else {
            throw PGSnapError("command \(path) has an empty #! line", next: "Fix its #! line; nothing was run")
        }
        guard Self.isExecutableFile(interpreter) else {
            throw PGSnapError("command \(path) names \(interpreter) in its #! line, which is not an executable file", next: "Fix its #! line; nothing was run")
        }
        // `#!/usr/bin/env ruby` (bin/rails): the program env looks up in PATH must be there too
        // (env -S and env's other options before it are skipped).
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if (interpreter as NSString).lastPathComponent == "env",
           let program = words.dropFirst().first(where: { !$0.hasPrefix("-") && !$0.contains("=") }), !program.contains("/"),
           !(session.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains(where: { Self.isExecutableFile("\($0)/\(program)") }) {
            throw PGSnapError("command \(path) runs \(program) through \(interpreter) in its #! line, and \(program) is not in PATH", next: "Install \(program) or fix PATH; nothing was run")
        }
    }
}

/// Quotes an argument for display in a copy-pasteable command line.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }), s.allSatisfy(\.isASCII) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
