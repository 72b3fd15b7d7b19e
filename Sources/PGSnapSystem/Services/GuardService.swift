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
}

/// The deploy-script step: preflight, backup + verify, run the migration, restore if it fails.
public struct GuardService {
    let session: Session
    public init(session: Session) { self.session = session }

    /// - Throws: `PGSnapError` with exit 2 (preflight or verification), 4 (failed, restored), 5 (failed, not restored).
    public func run(command: [String], preflight: PreflightOptions, backup: BackupOptions, autoRestore: Bool,
                    restoreHint: (String) -> String) throws -> GuardResult {
        // A mistyped command should cost nothing, not a full backup.
        let executable = try resolve(command[0])
        let pre = try PreflightService(session: session).run(preflight)
        let failed = pre.checks.filter { !$0.ok }
        for c in pre.checks { session.reporter.info("preflight \(c.ok ? "ok  " : "FAIL") \(c.name): \(c.value)\(c.detail.map { " (\($0))" } ?? "")") }
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
        session.reporter.info("pgsnap: snapshot \(manifest.id) taken and verified; running: \(command.map(shellQuote).joined(separator: " "))")

        let status = try runCommand(executable, command)
        let after = try? DatabaseFacts.migrationState(try session.connect(database: database))
        var result = GuardResult(snapshot: manifest.id, commandStatus: "\(status)", migrationBefore: manifest.migration,
                                 migrationAfter: after ?? nil, restored: false)
        let dirtyAfter = (after ?? nil)?.dirty == true
        if status.succeeded && !dirtyAfter {
            var updated = manifest
            updated.migrationAfter = after ?? nil
            try dir.writeAtomically(try updated.encoded(), to: manifest.id + SnapshotName.manifestSuffix)
            return result
        }
        let why = status.succeeded ? "left schema_migrations dirty at \((after ?? nil)?.version ?? 0)" : "failed (\(status))"
        let hint = restoreHint(manifest.id)
        guard autoRestore else {
            result.restoreCommand = hint
            throw PGSnapError(.migrationFailedNotRestored, "the command \(why); the database was NOT restored",
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
            throw PGSnapError(.migrationFailedNotRestored, "the command \(why) and the automatic restore failed too: \(error)",
                              next: "Restore by hand: \(hint)")
        }
        throw PGSnapError(.migrationFailedRestored, "the command \(why); database \"\(database)\" was restored from \(manifest.id)",
                          next: "The failed state is kept as \"\(result.previousDatabase ?? "-")\" for inspection")
    }

    /// Runs the user's command with our stdio; no shell. Signals reach it through the trap; it is
    /// the user's own program, so it is not ended when pgsnap is killed (a migration tool decides
    /// itself how to stop).
    func runCommand(_ path: String, _ argv: [String]) throws -> Termination {
        let child = try ChildProcess(ExternalCommand(name: argv[0], executable: path, arguments: Array(argv.dropFirst()), environment: session.environment),
                                     stdin: .inherit, stdout: .inherit, stderr: .inherit, diesWithPgsnap: false)
        return child.wait()
    }

    func resolve(_ name: String) throws -> String {
        if name.contains("/") {
            guard access(name, X_OK) == 0 else { throw PGSnapError("command \(name) is not executable", next: "Nothing was run") }
            return name
        }
        for dir in (session.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") where access("\(dir)/\(name)", X_OK) == 0 {
            return "\(dir)/\(name)"
        }
        throw PGSnapError("command \(name) not found in PATH", next: "Nothing was run")
    }
}

/// Quotes an argument for display in a copy-pasteable command line.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }), s.allSatisfy(\.isASCII) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
