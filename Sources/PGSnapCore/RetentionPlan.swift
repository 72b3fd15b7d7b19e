import Foundation

/// What to keep: the runbook's "remove backups after 30 days", plus restic-style GFS buckets.
public struct RetentionPolicy: Equatable, Sendable {
    public var keepDays: Int
    public var keepLast: Int
    public var keepDaily: Int
    public var keepWeekly: Int
    public var keepMonthly: Int
    /// Incomplete leftovers younger than this may belong to a backup in flight.
    public var leftoverGrace: TimeInterval

    public init(keepDays: Int = 30, keepLast: Int = 1, keepDaily: Int = 0, keepWeekly: Int = 0, keepMonthly: Int = 0,
                leftoverGrace: TimeInterval = RetentionPolicy.defaultLeftoverGrace) {
        self.keepDays = keepDays
        self.keepLast = keepLast
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.leftoverGrace = leftoverGrace
    }

    /// A day: a leftover (or an unfinished upload) younger than this may be a backup still running.
    public static let defaultLeftoverGrace: TimeInterval = 24 * 3600

    /// A policy that keeps nothing by any rule; only the always-kept newest snapshot would survive it.
    public var isEmpty: Bool { keepDays == 0 && keepLast == 0 && keepDaily == 0 && keepWeekly == 0 && keepMonthly == 0 }
}

/// One line of a prune plan.
public struct RetentionDecision: Equatable, Sendable, Codable {
    public enum Action: String, Codable, Sendable { case keep, remove }
    public var id: String
    public var database: String
    public var status: CatalogEntry.Status
    public var createdAt: Date
    public var action: Action
    public var reasons: [String]
    public var files: [String]
    public var bytes: Int64
}

/// Decides, never acts: snapshots + policy + now -> keep/remove with reasons (restic's ApplyPolicy).
///
/// Ages come from the manifest's `created_at` (file times change under copies and rsync).
/// Calendar buckets are UTC days, ISO weeks and months, so the plan is the same in any local
/// timezone and on DST change days. The newest good snapshot of each database is always kept,
/// whatever the policy: retention never deletes the last good copy.
public enum RetentionPlan {
    /// How far in the future a snapshot's date may be before it counts as a wrong clock's.
    public static let clockSkew: TimeInterval = 300

    public static func make(entries: [CatalogEntry], policy: RetentionPolicy, now: Date) -> [RetentionDecision] {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var decisions: [RetentionDecision] = []
        let byDatabase = Dictionary(grouping: entries, by: \.database)
        for database in byDatabase.keys.sorted() {
            let all = Catalog.sorted(byDatabase[database]!)
            let good = all.filter(\.isGood)
            var reasons: [String: [String]] = [:]
            func keep(_ e: CatalogEntry, _ why: String) { reasons[e.id, default: []].append(why) }

            if let newest = good.first { keep(newest, "newest good snapshot of \(database)") }
            // A snapshot dated in the future (a host with a wrong clock) is not the newest one
            // that truly exists: the newest dated before now is kept too (check says the same).
            if let dated = good.first(where: { $0.createdAt.timeIntervalSince(now) <= Self.clockSkew }), dated.id != good.first?.id {
                keep(dated, "newest good snapshot of \(database) dated before now (a newer one is dated in the future)")
            }
            for e in good.prefix(policy.keepLast) { keep(e, "one of the newest \(policy.keepLast)") }
            for e in good where policy.keepDays > 0 && now.timeIntervalSince(e.createdAt) < Double(policy.keepDays) * 86400 {
                keep(e, "younger than \(policy.keepDays) days")
            }
            func buckets(_ n: Int, _ name: String, _ key: (Date) -> String) {
                guard n > 0 else { return }
                var seen: [String] = []
                for e in good {
                    let k = key(e.createdAt)
                    if seen.contains(k) { continue }
                    guard seen.count < n else { break }
                    seen.append(k)
                    keep(e, "newest of \(name) \(k)")
                }
            }
            buckets(policy.keepDaily, "day", { d in
                let c = calendar.dateComponents([.year, .month, .day], from: d)
                return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
            })
            buckets(policy.keepWeekly, "week", { d in
                let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d)
                return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!)
            })
            buckets(policy.keepMonthly, "month", { d in
                let c = calendar.dateComponents([.year, .month], from: d)
                return String(format: "%04d-%02d", c.year!, c.month!)
            })

            for e in all {
                var d = RetentionDecision(id: e.id, database: database, status: e.status, createdAt: e.createdAt,
                                          action: .keep, reasons: [], files: e.files, bytes: e.bytes)
                switch e.status {
                case .good:
                    if let why = reasons[e.id] {
                        d.reasons = why
                    } else {
                        d.action = .remove
                        d.reasons = ["older than \(policy.keepDays) days and kept by no other rule"]
                    }
                case .partial, .dumpWithoutManifest, .manifestWithoutDump:
                    if now.timeIntervalSince(e.createdAt) >= policy.leftoverGrace {
                        d.action = .remove
                        d.reasons = ["incomplete (\(e.status.rawValue)) and older than \(Int(policy.leftoverGrace / 3600)) h"]
                    } else {
                        d.reasons = ["incomplete (\(e.status.rawValue)) but recent: a backup may be in flight"]
                    }
                case .damaged, .invalidManifest:
                    d.reasons = ["\(e.status.rawValue): left for a person to inspect (\(e.problem ?? ""))"]
                }
                decisions.append(d)
            }
        }
        return decisions
    }

    /// Order in which a removal deletes files: manifest first, so a crash leaves a leftover, never
    /// a manifest pointing at nothing.
    public static func deletionOrder(_ files: [String]) -> [String] {
        files.sorted { a, b in
            let am = a.hasSuffix(SnapshotName.manifestSuffix), bm = b.hasSuffix(SnapshotName.manifestSuffix)
            if am != bm { return am }
            return a < b
        }
    }
}

/// Parses `26h`, `30m`, `2d`, `90s`, `1w` or plain seconds.
public func parseDuration(_ text: String) -> TimeInterval? {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800]
    guard let last = text.last else { return nil }
    let unit = units[last]
    let number = unit == nil ? Substring(text) : text.dropLast()
    // Digits with an optional fraction only: Double() would also take "inf", "1e400", "0x10", "-0".
    let parts = number.split(separator: ".", omittingEmptySubsequences: false)
    guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
          let n = Double(number) else { return nil }
    let seconds = n * (unit ?? 1)
    return seconds.isFinite ? seconds : nil
}
