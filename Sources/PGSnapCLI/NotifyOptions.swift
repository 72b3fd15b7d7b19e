import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

extension NotifyOn: ExpressibleByArgument {}

/// `--notify` and `--notify-on`, shared by backup, prune, check, verify, drill and push.
struct NotifyOptions: ParsableArguments {
    @Option(name: .customLong("notify"), help: ArgumentHelp(
        "Tell URL how the run went (repeatable; added to the URLs in PGSNAP_<COMMAND>_NOTIFY, e.g. PGSNAP_BACKUP_NOTIFY, and PGSNAP_NOTIFY): a healthchecks.io-style ping URL (https://hc-ping.com/<uuid>: /start, success, /fail), json+https://... (a JSON document) or slack+https://... (Slack-compatible text). Plain http:// is sent unencrypted.",
        valueName: "url"))
    var notify: [String] = []

    @Option(help: ArgumentHelp(
        "failure (only failures, to every target) or always (successes to chat too). Default (or PGSNAP_NOTIFY_ON): pings hear of start, success and failure; JSON of success and failure; chat of failures.",
        valueName: "when"))
    var notifyOn: NotifyOn?

    func validate() throws {
        _ = try settings(ProcessInfo.processInfo.environment, warn: { _ in })
    }

    /// - Parameter warn: told of each word of the environment that is not a target and of a
    ///   PGSNAP_NOTIFY_ON it does not know: warnings, not errors (the job runs, the other targets
    ///   are told). A bad `--notify` value is a usage error, as any bad option.
    func settings(_ env: [String: String], command: String? = nil, warn: @escaping (String) -> Void) throws -> (targets: [NotifyTarget], on: NotifyOn?) {
        do {
            let targets = try NotifyTarget.parseAll(options: notify, environment: env, command: command) { e in
                warn("\(e.what), so it is ignored; the job runs and the other targets are told. \(e.next ?? "")")
            }
            var on = notifyOn
            if on == nil, let text = env["PGSNAP_NOTIFY_ON"], !text.isEmpty {
                if let v = NotifyOn(rawValue: text) {
                    on = v
                } else {
                    warn("PGSNAP_NOTIFY_ON must be failure or always; the default applies")
                }
            }
            return (targets, on)
        } catch let e as PGSnapError {
            throw ValidationError(e.description)
        }
    }

    /// Runs a command between its start ping and its result notification.
    ///
    /// The result is sent only once `body` has returned (the snapshot is committed) or thrown
    /// (the failure is known); the error is rethrown unchanged, so the exit status is too.
    ///
    /// - Parameters:
    ///   - database: the database the run is about, as the user named it (a connection string is
    ///     reduced to its dbname).
    ///   - wholeDirectory: the command covers every database of the backup directory unless one
    ///     is named (check, prune, verify): PGDATABASE does not name the run then.
    func around(_ command: String, database: String?, wholeDirectory: Bool = false, _ body: (NotifyReport) throws -> Void) throws {
        let env = ProcessInfo.processInfo.environment
        let (targets, on) = try settings(env, command: command, warn: { printError("warning: " + $0) })
        UsageFailureNotice.commandNotifies = true
        let report = NotifyReport()
        guard !targets.isEmpty else { return try body(report) }
        let notifier = Notifier(environment: env, warn: { printError($0) })
        let started = Date()
        var n = RunNotification(event: .start, command: command,
                                database: wholeDirectory && database == nil ? nil : Self.databaseName(database, env), host: ProcessInfo.processInfo.hostName,
                             startedAt: started, finishedAt: started, pgsnapVersion: pgsnapVersion)
        // In the background: a receiver that hangs must not hold up the job's start.
        let startPing = notifier.start(NotificationPlan.requests(for: n, targets: targets, notifyOn: on))
        StderrTail.start()
        func finish(_ event: RunNotification.Event, exitCode: Int32, error: String?) {
            // What the targets are told is the exit status: a signal while they are told (a
            // receiver that hangs) does not turn it into 130 after the fact.
            UsageFailureNotice.settledStatus = exitCode
            n.event = event
            n.exitCode = exitCode
            n.error = error
            n.database = report.database ?? n.database
            n.snapshot = report.snapshot
            n.compressedBytes = report.compressedBytes
            n.uncompressedBytes = report.uncompressedBytes
            n.rows = report.rows
            n.stderrTail = StderrTail.lines
            n.finishedAt = Date()
            n.durationSeconds = n.finishedAt.timeIntervalSince(started)
            notifier.send(NotificationPlan.requests(for: n, targets: targets, notifyOn: on), after: startPing)
        }
        do {
            try body(report)
        } catch {
            let (code, line) = failureSummary(error)
            finish(.failure, exitCode: code, error: line)
            throw error
        }
        // A command that stopped on a signal without throwing still exits 130 (PGSnapCommand.main).
        if SignalTrap.received != nil {
            finish(.failure, exitCode: ExitStatus.interrupted.rawValue, error: "interrupted by a signal")
        } else {
            finish(.success, exitCode: 0, error: nil)
        }
    }

    /// `app` from `app` or `postgres://u:p@h/app`; else PGDATABASE; nil when none is named.
    static func databaseName(_ value: String?, _ env: [String: String]) -> String? {
        guard let value, !value.isEmpty else { return env["PGDATABASE"].flatMap { $0.isEmpty ? nil : $0 } }
        return (try? ConnectionSpec(dbname: value, host: nil, port: nil, username: nil, environment: [:]))?["dbname"]
    }
}

/// What a command made, filled in as it goes, for its result notification.
final class NotifyReport {
    var database: String?
    var snapshot: String?
    var compressedBytes: Int64?
    var uncompressedBytes: Int64?
    var rows: Int64?

    func record(_ m: Manifest) {
        database = m.database
        snapshot = m.id
        compressedBytes = m.compressedBytes
        uncompressedBytes = m.uncompressedBytes
        rows = m.tableRows.values.reduce(0, +)
    }
}

/// The exit code and the one line `PGSnapCommand.main()` will print for `error`.
func failureSummary(_ error: Error) -> (Int32, String) {
    switch error {
    case let e as PGSnapError:
        return (SignalTrap.received != nil ? ExitStatus.interrupted.rawValue : e.status.rawValue, oneLine(e.description))
    case let e as ValidationError:
        return (ExitStatus.usage.rawValue, oneLine(e.message))
    default:
        return (ExitStatus.failure.rawValue, oneLine(String(describing: error)))
    }
}
