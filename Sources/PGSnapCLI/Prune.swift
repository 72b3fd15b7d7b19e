import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// Retention options shared by `prune` and `backup --prune`.
struct PolicyOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Keep every snapshot younger than this many days.")
    var keepDays = 30
    @Option(parsing: .unconditional, help: "Always keep the newest N good snapshots of each database, whatever their age.")
    var keepLast = 1
    @Option(parsing: .unconditional, help: "Also keep the newest snapshot of each of the last N days (UTC).")
    var keepDaily = 0
    @Option(parsing: .unconditional, help: "Also keep the newest snapshot of each of the last N ISO weeks.")
    var keepWeekly = 0
    @Option(parsing: .unconditional, help: "Also keep the newest snapshot of each of the last N months.")
    var keepMonthly = 0
    @Flag(help: "Allow a policy that keeps nothing by any rule (the newest good snapshot is still kept).")
    var allowEmpty = false

    var policy: RetentionPolicy {
        RetentionPolicy(keepDays: keepDays, keepLast: keepLast, keepDaily: keepDaily, keepWeekly: keepWeekly, keepMonthly: keepMonthly)
    }

    func validate() throws {
        for (name, v) in [("--keep-days", keepDays), ("--keep-last", keepLast), ("--keep-daily", keepDaily),
                          ("--keep-weekly", keepWeekly), ("--keep-monthly", keepMonthly)] where v < 0 {
            throw ValidationError("\(name) must be 0 or more")
        }
        if policy.isEmpty && !allowEmpty {
            throw ValidationError("this policy keeps nothing (--keep-days 0 --keep-last 0, no --keep-daily/weekly/monthly); pass --allow-empty if you mean it")
        }
    }
}

struct LockOptions: ParsableArguments {
    @Option(help: "Wait this long for another pgsnap run's lock (e.g. 30s, 10m); default: fail at once with exit 3.")
    var wait: String?

    var seconds: Double? {
        get throws {
            guard let wait else { return nil }
            guard let s = parseDuration(wait) else { throw ValidationError("--wait '\(oneLine(wait, limit: 40))' is not a duration like 30s, 10m or 1h") }
            return s
        }
    }

    func validate() throws { _ = try seconds }
}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete old snapshots by policy; never the newest good one.",
        discussion: """
            Default: keep everything younger than 30 days and the newest good snapshot of each \
            database. Incomplete leftovers older than 24 h are removed; damaged snapshots are \
            reported and left alone. Ages come from the manifests, never from file times.

            Example (cron): pgsnap prune --keep-days 30 --keep-weekly 8 --quiet

            \(exitStatusHelp)
            """)

    @OptionGroup var policy: PolicyOptions
    @Option(name: snapshotDatabaseNames, help: "Only snapshots of this database (a name or a connection string).")
    var database: String?
    @Flag(help: "Print the plan; delete nothing.")
    var dryRun = false
    @OptionGroup var lock: LockOptions
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup(title: "Notifications") var notify: NotifyOptions

    func run() throws {
        try notify.around("prune", database: database, wholeDirectory: true) { _ in try prune() }
    }

    func prune() throws {
        let database = try snapshotDatabase(database)
        let session = try makeSession(nil, directory, output)
        let result = try PruneService(session: session).run(try remote.snapshotStorage(session, create: false), policy: policy.policy,
                                                            database: database, dryRun: dryRun, wait: try lock.seconds,
                                                            command: remote.commandName("prune"))
        printPrune(result, json: output.json, reporter: session.reporter)
    }
}

func printPrune(_ result: PruneResult, json: Bool, reporter: Reporter) {
    // Kept for a person, who must hear of it: nothing else in a nightly prune's output would say.
    if !result.dryRun {
        for d in result.decisions where d.status == .damaged || d.status == .invalidManifest {
            reporter.warn("kept \(d.id) (\(d.reasons.joined(separator: "; "))); run 'pgsnap verify \(d.id)', then delete it by hand")
        }
    }
    if json {
        try? printJSON(result)
        return
    }
    let removals = result.decisions.filter { $0.action == .remove }
    let verb = result.dryRun ? "would remove" : "removed"
    for d in result.decisions {
        let line = "\(d.action == .keep ? "keep  " : (result.dryRun ? "remove" : "removed")) \(d.id)  (\(d.reasons.joined(separator: "; ")))"
        if result.dryRun { printOut(line) } else if d.action == .remove { reporter.info("pgsnap: " + line) }
    }
    for r in result.runs {
        let line = "\(r.action == .keep ? "keep  " : (result.dryRun ? "remove" : "removed")) \(r.run) globals  (\(r.reasons.joined(separator: "; ")))"
        if result.dryRun { printOut(line) } else if r.action == .remove { reporter.info("pgsnap: " + line) }
    }
    let runRemovals = result.runs.filter { $0.action == .remove }
    let bytes = result.removedBytes > 0 ? result.removedBytes : removals.reduce(0) { $0 + $1.bytes } + runRemovals.reduce(0) { $0 + $1.bytes }
    let runs = runRemovals.isEmpty ? "" : " and the globals of \(runRemovals.count) run(s)"
    reporter.info("pgsnap: \(verb) \(removals.count) snapshot(s)\(runs), \(formatBytes(bytes)); kept \(result.decisions.count - removals.count)")
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Health check for cron and monitoring: is the newest good snapshot fresh and big enough?",
        discussion: """
            Exit 0 when the newest good snapshot of each database is younger than --max-age, \
            not smaller than --min-size and not less than half the previous one; exit 2 \
            otherwise, one line per problem on stderr. With --all-databases, every database \
            on the server (libpq's connection settings, or -d as a connection string) must have \
            one: a database never backed up is a problem by name.

            Example (hourly cron):
              pgsnap check --max-age 26h --quiet \\
                --metrics-file /var/lib/node_exporter/pgsnap.prom

            \(exitStatusHelp)
            """)

    @Option(parsing: .unconditional, help: "Maximum age of the newest good snapshot (e.g. 26h, 2d).")
    var maxAge = "26h"
    @Option(parsing: .unconditional, help: "Minimum compressed size in bytes of the newest snapshot.")
    var minSize: Int64 = 1
    @Option(name: snapshotDatabaseNames, help: "Only this database (a name or a connection string), and complain if it has no snapshot.")
    var database: String?
    @Flag(help: "Connect to the server and check every database on it that accepts connections; -d may then only be a connection string.")
    var allDatabases = false
    @Option(help: "Also write node_exporter textfile metrics here (atomically).")
    var metricsFile: String?
    @OptionGroup var directory: DirectoryOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var remote: RemoteOptions
    @OptionGroup(title: "Notifications") var notify: NotifyOptions

    func validate() throws {
        guard parseDuration(maxAge) != nil else { throw ValidationError("--max-age '\(oneLine(maxAge, limit: 40))' is not a duration like 26h or 2d") }
        guard minSize >= 0 else { throw ValidationError("--min-size must be 0 or more") }
        if allDatabases { try requireConnectionStringOnly(database) }
    }

    func run() throws {
        try notify.around("check", database: allDatabases ? nil : database, wholeDirectory: true) { _ in try check() }
    }

    func check() throws {
        let database = allDatabases ? nil : try snapshotDatabase(database)
        let session = allDatabases ? try serverSession(self.database, directory, output) : try makeSession(nil, directory, output)
        let storage = try remote.snapshotStorage(session, create: false)
        let report = allDatabases ? try allDatabasesReport(session: session, storage: storage)
            : try CheckService(session: session).run(storage, maxAge: parseDuration(maxAge)!, minSize: minSize, database: database,
                                                     metricsFile: metricsFile, metricsPrefix: remote.metricsPrefix)
        if output.json { try printJSON(report) }
        for p in report.problems { printError(p.problem) }
        if !report.ok {
            throw PGSnapError.verification("\(report.problems.count) problem(s) with the snapshots in \(storage.location)",
                                           next: "Check the backup job's log (cron mail) and run 'pgsnap list'")
        }
        if !output.json {
            for d in report.databases {
                session.reporter.info("ok  \(d.database): newest \(d.newest ?? "-"), \(String(format: "%.1f", (d.ageSeconds ?? 0) / 3600)) h old, \(formatBytes(d.newestBytes ?? 0))")
            }
        }
    }
}
