import Foundation
import PGSnapCore
import PGSnapSystem

/// A command line that does not parse or validate (a typo in a cron job's options, in its
/// environment file) fails before the command's own notifications start: its targets still hear
/// of the failure (exit 64), or an hourly check fails every hour and nobody is told. The targets
/// are those of the environment (PGSNAP_<COMMAND>_NOTIFY, PGSNAP_NOTIFY) and any `--notify`
/// value on the line that is itself valid; a bad one is what the usage error names.
enum UsageFailureNotice {
    /// The commands that notify (`NotifyOptions.around`).
    static let commands: Set<String> = ["backup", "prune", "check", "verify", "drill", "push"]
    /// Set once a command's own notifications have taken over (its result is sent whatever
    /// the error, usage errors of its body included).
    nonisolated(unsafe) static var commandNotifies = false
    /// The exit status a command's result notification announced, once it is being sent.
    nonisolated(unsafe) static var settledStatus: Int32?

    static func send(arguments: [String], error line: String) {
        guard !commandNotifies, let command = arguments.first(where: { !$0.hasPrefix("-") }), commands.contains(command) else { return }
        let env = ProcessInfo.processInfo.environment
        var options: [String] = []
        var on: NotifyOn? = nil
        for (i, a) in arguments.enumerated() {
            let next = i + 1 < arguments.count ? arguments[i + 1] : nil
            if a == "--notify", let next { options.append(next) }
            if a.hasPrefix("--notify=") { options.append(String(a.dropFirst("--notify=".count))) }
            if a == "--notify-on", let next { on = NotifyOn(rawValue: next) }
            if a.hasPrefix("--notify-on=") { on = NotifyOn(rawValue: String(a.dropFirst("--notify-on=".count))) }
        }
        on = on ?? env["PGSNAP_NOTIFY_ON"].flatMap { NotifyOn(rawValue: $0) }
        // The valid --notify values (a bad one is what failed), with the environment's, each once.
        let valid = options.filter { (try? NotifyTarget(parsing: $0, source: "--notify")) != nil }
        guard let targets = try? NotifyTarget.parseAll(options: valid, environment: env, command: command, skipping: { _ in }),
              !targets.isEmpty else { return }
        let now = Date()
        let n = RunNotification(event: .failure, command: command, exitCode: ExitStatus.usage.rawValue, host: ProcessInfo.processInfo.hostName,
                                error: line, startedAt: now, finishedAt: now, pgsnapVersion: pgsnapVersion)
        Notifier(environment: env, warn: { printError($0) }).send(NotificationPlan.requests(for: n, targets: targets, notifyOn: on))
    }
}
