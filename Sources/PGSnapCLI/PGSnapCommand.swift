import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

public struct PGSnapCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pgsnap",
        abstract: "Safe PostgreSQL snapshots around schema migrations: backup, verify, restore, prune.",
        discussion: ExitStatus.table,
        version: pgsnapVersion,
        subcommands: [Backup.self, List.self, Show.self, Verify.self, Restore.self, Prune.self, Check.self, Preflight.self, Guard.self, Diff.self,
                      Push.self, Pull.self, Drill.self],
        helpNames: [.long])

    public init() {}

    /// Runs the command line; maps every error to one line on stderr and the documented exit code.
    public static func main() {
        SignalTrap.install()
        let code: Int32
        do {
            var command = try parseAsRoot(RemoteOptions.normalise(Array(CommandLine.arguments.dropFirst())))
            try command.run()
            let signalled = SignalTrap.received != nil && !SignalTrap.exitStatusIsTheRunsOwn
            code = UsageFailureNotice.settledStatus ?? (signalled ? ExitStatus.interrupted.rawValue : 0)
        } catch let e as PGSnapError {
            let signalled = SignalTrap.received != nil && !SignalTrap.exitStatusIsTheRunsOwn
            if signalled, let signal = SignalTrap.received, e.description.contains("canceling statement due to user request") {
                // The signal handler cancelled the query the run was waiting on (see CancelRegistry).
                printError("interrupted (signal \(signal)): the query pgsnap was waiting on was cancelled")
            } else {
                printError(e.description)
            }
            code = UsageFailureNotice.settledStatus ?? (signalled ? ExitStatus.interrupted.rawValue : e.status.rawValue)
        } catch let e as ValidationError {
            printError("\(e.message)")
            UsageFailureNotice.send(arguments: Array(CommandLine.arguments.dropFirst()), error: oneLine(e.message))
            code = ExitStatus.usage.rawValue
        } catch {
            // --help and --version exit 0 with their text; parse errors become one line and exit 64.
            if exitCode(for: error) == .success { exit(withError: error) }
            let message = self.message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "invalid usage"
            let line = message.replacingOccurrences(of: "Error: ", with: "") + " (see 'pgsnap --help')"
            printError(line)
            UsageFailureNotice.send(arguments: Array(CommandLine.arguments.dropFirst()), error: oneLine(line))
            code = ExitStatus.usage.rawValue
        }
        Glibc.exit(code)
    }
}

func printError(_ line: String) {
    // One line, whatever a name quoted in it holds (a database or label given with a newline).
    let flat = flattened(line)
    StderrTail.record(flat)
    StandardStreams.err("pgsnap: " + flat + "\n")
}

func printOut(_ text: String) {
    StandardStreams.out(text + "\n")
}

func printJSON<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    e.dateEncodingStrategy = .custom { d, enc in
        var c = enc.singleValueContainer()
        try c.encode(ISO8601.format(d))
    }
    printOut(String(decoding: try e.encode(value), as: UTF8.self))
}
