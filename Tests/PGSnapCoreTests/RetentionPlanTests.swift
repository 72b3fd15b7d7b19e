import Foundation
import XCTest

@testable import PGSnapCore

/// The pure retention plan: which snapshots a policy keeps at a fixed `now`, and why.
///
/// Every case builds catalog entries by hand (no directory, no clock) and checks the set of
/// removed ids, plus the invariants every plan must satisfy (see `plan(_:_:now:)`).
final class RetentionPlanTests: XCTestCase {
    static let now = utc(2026, 11, 22, 12, 0, 0)
    static let day: TimeInterval = 86400
    static let hour: TimeInterval = 3600

    // MARK: - Building entries

    static func manifest(id: String, database: String, createdAt: Date, bytes: Int64 = 1000) -> Manifest {
        Manifest(
            id: id, database: database, label: nil, createdAt: createdAt, durationSeconds: 1,
            file: SnapshotName.dumpFile(id: id, compression: .gzip), compressedBytes: bytes, uncompressedBytes: bytes * 4,
            sha256: String(repeating: "a", count: 64), compression: .init(algorithm: .gzip, level: 6),
            pgDumpVersion: "15.8", serverVersion: "15.8", host: nil, port: nil, user: nil, migration: nil,
            tableRows: ["public.t": 1], databaseProperties: nil, timings: nil, pgsnapVersion: "0.1.0")
    }

    /// A complete snapshot of `database` taken at `date` (the id carries the whole second, the manifest the exact time).
    static func good(_ database: String, _ date: Date, attempt: Int = 1, label: String? = nil) -> CatalogEntry {
        let id = SnapshotName.id(database: database, date: date, label: label, attempt: attempt)
        let m = manifest(id: id, database: database, createdAt: date)
        return CatalogEntry(id: id, status: .good, manifest: m, database: database, createdAt: date,
                            files: [m.file, id + SnapshotName.manifestSuffix], bytes: m.compressedBytes + 800, problem: nil)
    }

    /// A snapshot whose dump no longer matches its manifest.
    static func damaged(_ database: String, _ date: Date) -> CatalogEntry {
        var e = good(database, date)
        e.status = .damaged
        e.problem = "dump is 10 bytes, manifest says 1000"
        return e
    }

    static func invalidManifest(_ database: String, _ date: Date) -> CatalogEntry {
        let id = SnapshotName.id(database: database, date: date, label: nil)
        return CatalogEntry(id: id, status: .invalidManifest, manifest: nil, database: database, createdAt: date,
                            files: [id + ".sql.gz", id + SnapshotName.manifestSuffix], bytes: 50,
                            problem: "manifest \(id).manifest.json is not valid JSON")
    }

    /// A leftover of a failed or running backup; its time comes from its name.
    static func leftover(_ status: CatalogEntry.Status, _ database: String, _ date: Date) -> CatalogEntry {
        let id = SnapshotName.id(database: database, date: date, label: nil)
        let files: [String]
        switch status {
        case .partial: files = [id + ".sql.gz" + SnapshotName.partialSuffix]
        case .dumpWithoutManifest: files = [id + ".sql.gz"]
        case .manifestWithoutDump: files = [id + SnapshotName.manifestSuffix]
        default: fatalError("not a leftover status: \(status)")
        }
        let m = status == .manifestWithoutDump ? manifest(id: id, database: database, createdAt: date) : nil
        return CatalogEntry(id: id, status: status, manifest: m, database: database, createdAt: date, files: files,
                            bytes: 123, problem: "incomplete")
    }

    static func ago(_ seconds: TimeInterval) -> Date { now.addingTimeInterval(-seconds) }

    // MARK: - Running the plan

    /// Runs the plan and checks what must hold for any input: one decision per entry, in no way
    /// invented or lost; each with at least one reason; files, bytes, status and database carried over.
    func plan(_ entries: [CatalogEntry], _ policy: RetentionPolicy, now: Date = RetentionPlanTests.now,
              file: StaticString = #filePath, line: UInt = #line) -> [RetentionDecision] {
        let decisions = RetentionPlan.make(entries: entries, policy: policy, now: now)
        XCTAssertEqual(decisions.map(\.id).sorted(), entries.map(\.id).sorted(), "one decision per entry", file: file, line: line)
        let byID = Dictionary(entries.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for d in decisions {
            XCTAssertFalse(d.reasons.isEmpty, "\(d.id) (\(d.action)) has no reason", file: file, line: line)
            XCTAssertFalse(d.reasons.contains { $0.trimmingCharacters(in: .whitespaces).isEmpty }, "\(d.id): blank reason",
                           file: file, line: line)
            guard let e = byID[d.id] else { continue }
            XCTAssertEqual(d.database, e.database, file: file, line: line)
            XCTAssertEqual(d.status, e.status, file: file, line: line)
            XCTAssertEqual(d.files, e.files, file: file, line: line)
            XCTAssertEqual(d.bytes, e.bytes, file: file, line: line)
            XCTAssertEqual(d.createdAt, e.createdAt, file: file, line: line)
        }
        return decisions
    }

    func removed(_ decisions: [RetentionDecision]) -> Set<String> {
        Set(decisions.filter { $0.action == .remove }.map(\.id))
    }

    func kept(_ decisions: [RetentionDecision]) -> Set<String> {
        Set(decisions.filter { $0.action == .keep }.map(\.id))
    }

    func decision(_ decisions: [RetentionDecision], _ e: CatalogEntry, file: StaticString = #filePath, line: UInt = #line) -> RetentionDecision? {
        let d = decisions.first { $0.id == e.id }
        XCTAssertNotNil(d, "no decision for \(e.id)", file: file, line: line)
        return d
    }

    // MARK: - Age

    func testAgesEitherSideOfThirtyDays() {
        let s = Self.self
        let newest = s.good("app", s.ago(1 * s.day))
        let justInside = s.good("app", s.ago(29 * s.day + 23 * s.hour))
        let justOutside = s.good("app", s.ago(30 * s.day + 1))
        let ancient = s.good("app", s.ago(400 * s.day))
        let d = plan([ancient, justOutside, newest, justInside], RetentionPolicy(keepDays: 30, keepLast: 0))
        XCTAssertEqual(removed(d), [justOutside.id, ancient.id])
        XCTAssertEqual(kept(d), [newest.id, justInside.id])
    }

    func testTheNewestSurvivesEvenWhenOlderThanThePolicy() {
        let s = Self.self
        let newest = s.good("app", s.ago(30 * s.day + 1))
        let older = s.good("app", s.ago(31 * s.day))
        let d = plan([older, newest], RetentionPolicy(keepDays: 30, keepLast: 0))
        XCTAssertEqual(kept(d), [newest.id])
        XCTAssertEqual(removed(d), [older.id])

        let alone = plan([newest], RetentionPolicy(keepDays: 30, keepLast: 0))
        XCTAssertEqual(kept(alone), [newest.id], "a single old snapshot is the last good copy")
    }

    func testDefaultPolicyIsThirtyDaysAndTheNewest() {
        let s = Self.self
        let recent = s.good("app", s.ago(2 * s.day))
        let old = s.good("app", s.ago(45 * s.day))
        let d = plan([old, recent], RetentionPolicy())
        XCTAssertEqual(kept(d), [recent.id])
        XCTAssertEqual(removed(d), [old.id])
    }

    // MARK: - Keep-last and the always-kept newest

    func testKeepLastWithAllSnapshotsOldKeepsOnlyTheNewestN() {
        let s = Self.self
        let entries = (0..<6).map { s.good("app", s.ago(Double(40 + 10 * $0) * s.day)) }
        let d = plan(entries.shuffled(), RetentionPolicy(keepDays: 30, keepLast: 3))
        XCTAssertEqual(kept(d), Set(entries[0..<3].map(\.id)))
        XCTAssertEqual(removed(d), Set(entries[3...].map(\.id)))
    }

    /// A snapshot dated in the future (a wrong clock) does not take the place of the newest one
    /// dated before now: both are kept, whatever the policy.
    func testASnapshotDatedInTheFutureDoesNotCostTheNewestRealOne() {
        let s = Self.self
        let future = s.good("app", s.ago(-200 * s.day))
        let today = s.good("app", s.ago(2 * s.hour))
        let older = s.good("app", s.ago(3 * s.day))
        let d = plan([older, today, future], RetentionPolicy(keepDays: 0, keepLast: 1))
        XCTAssertEqual(kept(d), [future.id, today.id])
        XCTAssertEqual(removed(d), [older.id])
        // Within the tolerated skew, the newest is simply the newest.
        let soon = s.good("app", s.ago(-60))
        XCTAssertEqual(kept(plan([soon, today], RetentionPolicy(keepDays: 0, keepLast: 1))), [soon.id])
    }

    func testEmptyPolicyStillKeepsTheNewestGoodSnapshotOfEachDatabase() {
        let s = Self.self
        let appNewest = s.good("app", s.ago(100 * s.day))
        let appOlder = s.good("app", s.ago(200 * s.day))
        let billingNewest = s.good("billing", s.ago(5 * s.day))
        let billingOlder = s.good("billing", s.ago(6 * s.day))
        // Newer than the newest good one, but not good: they must not take its place.
        let appDamaged = s.damaged("app", s.ago(50 * s.day))
        let appPartial = s.leftover(.partial, "app", s.ago(2 * s.hour))
        let policy = RetentionPolicy(keepDays: 0, keepLast: 0)
        XCTAssertTrue(policy.isEmpty)
        let d = plan([appOlder, appNewest, billingOlder, billingNewest, appDamaged, appPartial], policy)
        XCTAssertEqual(removed(d), [appOlder.id, billingOlder.id])
        XCTAssertEqual(kept(d), [appNewest.id, billingNewest.id, appDamaged.id, appPartial.id])
    }

    func testOnlyGoodSnapshotsCountTowardKeepLast() {
        let s = Self.self
        let damagedNewest = s.damaged("app", s.ago(40 * s.day))
        let invalidNewer = s.invalidManifest("app", s.ago(41 * s.day))
        let g1 = s.good("app", s.ago(50 * s.day))
        let g2 = s.good("app", s.ago(60 * s.day))
        let g3 = s.good("app", s.ago(70 * s.day))
        let d = plan([g3, g2, g1, invalidNewer, damagedNewest], RetentionPolicy(keepDays: 30, keepLast: 2))
        XCTAssertEqual(removed(d), [g3.id], "the damaged and invalid snapshots must not push g2 out of the newest 2")
        XCTAssertEqual(kept(d), [damagedNewest.id, invalidNewer.id, g1.id, g2.id])
    }

    func testSeveralDatabasesAreHandledIndependently() {
        let s = Self.self
        let app = (0..<4).map { s.good("app", s.ago(Double(40 + $0) * s.day)) }
        // A name that extends another's: it must not share app's buckets or count.
        let appArchive = (0..<3).map { s.good("app_archive", s.ago(Double(45 + $0) * s.day)) }
        let billing = [s.good("billing", s.ago(1 * s.day)), s.good("billing", s.ago(90 * s.day))]
        let d = plan((app + appArchive + billing).shuffled(), RetentionPolicy(keepDays: 30, keepLast: 2))
        XCTAssertEqual(kept(d), [app[0].id, app[1].id, appArchive[0].id, appArchive[1].id, billing[0].id, billing[1].id])
        XCTAssertEqual(removed(d), [app[2].id, app[3].id, appArchive[2].id])
        for x in d {
            let expected = [app, appArchive, billing].first { $0.contains { $0.id == x.id } }?.first?.database
            XCTAssertEqual(x.database, expected)
        }
    }

    // MARK: - Calendar buckets (UTC, ISO weeks)

    /// Snapshots around the 2026/2027 boundary. 2026 starts on a Thursday, so it has an ISO week 53:
    /// Mon 2026-12-28 .. Sun 2027-01-03. 2027-W01 starts Mon 2027-01-04.
    static let boundary: [String: CatalogEntry] = [
        "jan04": good("app", utc(2027, 1, 4, 10)),   // 2027-W01, 2027-01
        "jan01b": good("app", utc(2027, 1, 1, 12)),  // 2026-W53, 2027-01
        "jan01a": good("app", utc(2027, 1, 1, 6)),
        "dec31b": good("app", utc(2026, 12, 31, 23)),  // 2026-W53, 2026-12
        "dec31a": good("app", utc(2026, 12, 31, 1)),
        "dec30": good("app", utc(2026, 12, 30, 12)),  // 2026-W53
        "dec27": good("app", utc(2026, 12, 27, 12)),  // Sunday: 2026-W52
        "dec21": good("app", utc(2026, 12, 21, 12)),  // Monday: 2026-W52
        "nov30": good("app", utc(2026, 11, 30, 12)),  // 2026-W49, 2026-11
        "oct15": good("app", utc(2026, 10, 15, 12)),  // 2026-10
    ]
    static let boundaryNow = utc(2027, 1, 5, 0)

    func gfs(daily: Int = 0, weekly: Int = 0, monthly: Int = 0) -> Set<String> {
        let policy = RetentionPolicy(keepDays: 0, keepLast: 0, keepDaily: daily, keepWeekly: weekly, keepMonthly: monthly)
        let d = plan(Array(Self.boundary.values).shuffled(), policy, now: Self.boundaryNow)
        let names = Dictionary(uniqueKeysWithValues: Self.boundary.map { ($0.value.id, $0.key) })
        return Set(kept(d).map { names[$0]! })
    }

    func testDailyBucketsAcrossTheYearBoundary() {
        XCTAssertEqual(gfs(daily: 3), ["jan04", "jan01b", "dec31b"])
        XCTAssertEqual(gfs(daily: 5), ["jan04", "jan01b", "dec31b", "dec30", "dec27"])
        XCTAssertEqual(gfs(daily: 100), ["jan04", "jan01b", "dec31b", "dec30", "dec27", "dec21", "nov30", "oct15"])
    }

    func testWeeklyBucketsFollowISOWeekRulesIncludingWeek53() {
        // 2026-W53 holds Dec 30, Dec 31 and Jan 1: only its newest (Jan 1, 12:00) is kept for it.
        XCTAssertEqual(gfs(weekly: 2), ["jan04", "jan01b"])
        XCTAssertEqual(gfs(weekly: 3), ["jan04", "jan01b", "dec27"], "Sunday Dec 27 is the newest of 2026-W52")
        XCTAssertEqual(gfs(weekly: 4), ["jan04", "jan01b", "dec27", "nov30"])
    }

    func testMonthlyBucketsAcrossTheYearBoundary() {
        XCTAssertEqual(gfs(monthly: 2), ["jan04", "dec31b"])
        XCTAssertEqual(gfs(monthly: 4), ["jan04", "dec31b", "nov30", "oct15"])
    }

    func testBucketRulesCombine() {
        XCTAssertEqual(gfs(daily: 2, weekly: 3, monthly: 3), ["jan04", "jan01b", "dec27", "dec31b", "nov30"])
    }

    func testBucketReasonsNameTheRule() {
        let policy = RetentionPolicy(keepDays: 0, keepLast: 0, keepWeekly: 3)
        let d = plan(Array(Self.boundary.values), policy, now: Self.boundaryNow)
        let dec27 = decision(d, Self.boundary["dec27"]!)
        XCTAssertEqual(dec27?.action, .keep)
        XCTAssertTrue(dec27?.reasons.contains { $0.contains("week") } ?? false, "\(dec27?.reasons ?? [])")
    }

    func testADamagedSnapshotDoesNotClaimADailyBucket() {
        let s = Self.self
        // If the damaged snapshot counted, its day (Nov 22) would use up one of the two daily buckets.
        let damagedNewest = s.damaged("app", utc(2026, 11, 22, 9))
        let day21 = s.good("app", utc(2026, 11, 21, 20))
        let day20 = s.good("app", utc(2026, 11, 20, 20))
        let day19 = s.good("app", utc(2026, 11, 19, 20))
        let d = plan([damagedNewest, day21, day20, day19], RetentionPolicy(keepDays: 0, keepLast: 0, keepDaily: 2))
        XCTAssertEqual(removed(d), [day19.id])
        XCTAssertEqual(kept(d), [damagedNewest.id, day21.id, day20.id])
    }

    // MARK: - Time zones and DST

    /// Runs `body` with the process time zone set to `tz`, then restores the previous one.
    func withTimeZone<T>(_ tz: String, _ body: () -> T) -> T {
        let previous = getenv("TZ").map { String(cString: $0) }
        setenv("TZ", tz, 1)
        tzset()
        NSTimeZone.resetSystemTimeZone()
        defer {
            if let previous { setenv("TZ", previous, 1) } else { unsetenv("TZ") }
            tzset()
            NSTimeZone.resetSystemTimeZone()
        }
        return body()
    }

    func testThePlanDoesNotDependOnTheProcessTimeZone() {
        // Near midnight UTC on New Year's Eve: local calendars put these on other days, weeks and years.
        let s = Self.self
        let entries = [
            s.good("app", utc(2027, 1, 1, 0, 30)),
            s.good("app", utc(2026, 12, 31, 23, 30)),
            s.good("app", utc(2026, 12, 31, 0, 30)),
            s.good("app", utc(2026, 12, 30, 23, 30)),
            s.good("app", utc(2026, 12, 27, 23, 30)),  // Sunday of W52 in UTC; Monday of W53 east of UTC+1
            s.good("app", utc(2026, 12, 28, 0, 30)),  // Monday of W53 in UTC; Sunday of W52 west of UTC
            s.good("app", utc(2026, 11, 30, 23, 30)),  // November in UTC; December east of UTC+1
        ]
        let policy = RetentionPolicy(keepDays: 0, keepLast: 0, keepDaily: 3, keepWeekly: 3, keepMonthly: 3)
        let now = utc(2027, 1, 2)
        let expected: Set<String> = [
            entries[0].id,  // day 01-01, W53, month 2027-01
            entries[1].id,  // day 12-31, month 2026-12
            entries[3].id,  // day 12-30
            entries[4].id,  // W52
            entries[6].id,  // month 2026-11
        ]
        XCTAssertEqual(withTimeZone("UTC") { kept(plan(entries, policy, now: now)) }, expected)
        for tz in ["Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Los_Angeles", "Asia/Kolkata", "Europe/Berlin",
                   "Australia/Lord_Howe"] {
            let decisions = withTimeZone(tz) { plan(entries, policy, now: now) }
            XCTAssertEqual(kept(decisions), expected, "TZ=\(tz)")
        }
    }

    func testDSTChangeDayIsOneUTCDay() {
        // Europe/Berlin moves to summer time on 2026-03-29 at 01:00 UTC. In local time 00:30Z is
        // Mar 29 01:30 CET and 23:30Z is Mar 30 01:30 CEST; in UTC both are Mar 29.
        let s = Self.self
        let early = s.good("app", utc(2026, 3, 29, 0, 30))
        let late = s.good("app", utc(2026, 3, 29, 23, 30))
        let dayBefore = s.good("app", utc(2026, 3, 28, 23, 30))  // Mar 29 00:30 CET in Berlin
        let policy = RetentionPolicy(keepDays: 0, keepLast: 0, keepDaily: 2)
        for tz in ["Europe/Berlin", "UTC", "America/New_York"] {
            let d = withTimeZone(tz) { plan([early, late, dayBefore], policy, now: utc(2026, 3, 30, 12)) }
            XCTAssertEqual(kept(d), [late.id, dayBefore.id], "TZ=\(tz)")
            XCTAssertEqual(removed(d), [early.id], "TZ=\(tz)")
        }
    }

    func testKeepDaysCountsElapsedSecondsAcrossDST() {
        // 2026-03-29 has 23 hours in Berlin; 30 days are 30 * 86400 s whatever the local clock did.
        let now = utc(2026, 4, 15, 12)
        let inside = Self.good("app", now.addingTimeInterval(-(30 * Self.day - 60)))
        let outside = Self.good("app", now.addingTimeInterval(-(30 * Self.day + 60)))
        let newest = Self.good("app", now.addingTimeInterval(-Self.hour))
        for tz in ["Europe/Berlin", "UTC"] {
            let d = withTimeZone(tz) { plan([newest, inside, outside], RetentionPolicy(keepDays: 30, keepLast: 0), now: now) }
            XCTAssertEqual(removed(d), [outside.id], "TZ=\(tz)")
        }
    }

    // MARK: - Ties

    func testIdenticalTimestampsAreBrokenByIDDeterministically() {
        let s = Self.self
        let t = s.ago(40 * s.day)
        let first = s.good("app", t)
        let second = s.good("app", t, attempt: 2)
        let third = s.good("app", t, attempt: 3)
        let older = s.good("app", s.ago(41 * s.day))
        let entries = [first, second, third, older]
        var results: Set<[String]> = []
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
            let d = plan(order.map { entries[$0] }, RetentionPolicy(keepDays: 0, keepLast: 2))
            XCTAssertEqual(kept(d).count, 2)
            XCTAssertTrue(removed(d).contains(older.id))
            results.insert(kept(d).sorted())
            XCTAssertEqual(d.map(\.id), plan(entries, RetentionPolicy(keepDays: 0, keepLast: 2)).map(\.id),
                           "decision order must not depend on the input order")
        }
        XCTAssertEqual(results.count, 1, "the kept snapshots must not depend on the input order: \(results)")
        // The later attempts were reserved after the first one in the same second: they are the newer ones.
        XCTAssertEqual(results.first.map(Set.init), [second.id, third.id])
    }

    // MARK: - Leftovers and damaged snapshots

    func testLeftoversAreRemovedOnlyWhenAtLeastADayOld() {
        let s = Self.self
        let newest = s.good("app", s.ago(s.hour))
        var entries = [newest]
        var expectRemoved: Set<String> = []
        var expectKept: Set<String> = [newest.id]
        for (i, status) in [CatalogEntry.Status.partial, .dumpWithoutManifest, .manifestWithoutDump].enumerated() {
            let db = "db\(i)"
            let old = s.leftover(status, db, s.ago(24 * s.hour + 1))
            let exactly = s.leftover(status, db, s.ago(24 * s.hour))
            let recent = s.leftover(status, db, s.ago(23 * s.hour + 59 * 60))
            let fresh = s.leftover(status, db, s.now)
            let ancient = s.leftover(status, db, utc(2020, 1, 1))
            entries += [old, exactly, recent, fresh, ancient]
            expectRemoved.formUnion([old.id, exactly.id, ancient.id])
            expectKept.formUnion([recent.id, fresh.id])
        }
        for policy in [RetentionPolicy(), RetentionPolicy(keepDays: 10_000, keepLast: 100)] {
            let d = plan(entries.shuffled(), policy)
            XCTAssertEqual(removed(d), expectRemoved, "\(policy)")
            XCTAssertEqual(kept(d), expectKept, "\(policy)")
        }
    }

    func testLeftoversDoNotCountAsTheNewestGoodSnapshot() {
        let s = Self.self
        let onlyGood = s.good("app", s.ago(90 * s.day))
        let newerLeftover = s.leftover(.dumpWithoutManifest, "app", s.ago(2 * s.day))
        let d = plan([onlyGood, newerLeftover], RetentionPolicy(keepDays: 0, keepLast: 0))
        XCTAssertEqual(kept(d), [onlyGood.id])
        XCTAssertEqual(removed(d), [newerLeftover.id])
    }

    func testDamagedAndInvalidSnapshotsAreNeverRemoved() {
        let s = Self.self
        let newest = s.good("app", s.ago(s.hour))
        let damagedOld = s.damaged("app", utc(2019, 5, 1))
        let invalidOld = s.invalidManifest("app", utc(2019, 5, 2))
        let damagedRecent = s.damaged("app", s.ago(10 * s.hour))
        let onlyDamaged = s.damaged("lonely", utc(2018, 1, 1))
        for policy in [RetentionPolicy(), RetentionPolicy(keepDays: 0, keepLast: 0), RetentionPolicy(keepDays: 1, keepLast: 1, keepDaily: 1)] {
            let d = plan([newest, damagedOld, invalidOld, damagedRecent, onlyDamaged], policy)
            XCTAssertEqual(removed(d), [], "\(policy)")
            for e in [damagedOld, invalidOld, damagedRecent, onlyDamaged] {
                let reasons = decision(d, e)?.reasons.joined(separator: "; ") ?? ""
                XCTAssertTrue(reasons.contains(e.status.rawValue), "the reason names the state: \(reasons)")
            }
        }
    }

    // MARK: - Reasons

    func testReasonsSayWhy() {
        let s = Self.self
        let newest = s.good("app", s.ago(40 * s.day))
        let young = s.good("app", s.ago(35 * s.day))  // kept by keep-last
        let old = s.good("app", s.ago(50 * s.day))
        let d = plan([newest, young, old], RetentionPolicy(keepDays: 30, keepLast: 2))
        let n = decision(d, newest)
        XCTAssertTrue(n?.reasons.contains { $0.contains("newest") } ?? false, "\(n?.reasons ?? [])")
        let o = decision(d, old)
        XCTAssertEqual(o?.action, .remove)
        XCTAssertTrue(o?.reasons.contains { $0.contains("30 days") } ?? false, "\(o?.reasons ?? [])")
        let recent = plan([s.good("app", s.ago(s.day)), s.good("app", s.ago(2 * s.day))], RetentionPolicy(keepDays: 30, keepLast: 0))
        for x in recent {
            XCTAssertTrue(x.reasons.contains { $0.contains("30 days") }, "\(x.reasons)")
        }
    }

    func testEmptyInputGivesAnEmptyPlan() {
        XCTAssertEqual(plan([], RetentionPolicy()), [])
    }

    // MARK: - Policy and deletion order

    func testIsEmpty() {
        XCTAssertTrue(RetentionPolicy(keepDays: 0, keepLast: 0).isEmpty)
        XCTAssertFalse(RetentionPolicy(keepDays: 0, keepLast: 1).isEmpty)
        XCTAssertFalse(RetentionPolicy(keepDays: 1, keepLast: 0).isEmpty)
        XCTAssertFalse(RetentionPolicy(keepDays: 0, keepLast: 0, keepDaily: 1).isEmpty)
        XCTAssertFalse(RetentionPolicy(keepDays: 0, keepLast: 0, keepWeekly: 1).isEmpty)
        XCTAssertFalse(RetentionPolicy(keepDays: 0, keepLast: 0, keepMonthly: 1).isEmpty)
    }

    func testDeletionOrderPutsTheManifestFirst() {
        let id = "app_20261122T031500Z_pre_migration_000045"
        let cases: [[String]] = [
            [id + ".sql.gz", id + ".manifest.json"],
            [id + ".globals.sql", id + ".sql.gz", id + ".manifest.json"],
            [id + ".manifest.json", id + ".sql.zst", id + ".globals.sql"],
            [id + ".sql", id + ".sql.gz.partial", id + ".manifest.json"],
        ]
        for files in cases {
            for input in [files, files.reversed()] {
                let order = RetentionPlan.deletionOrder(input)
                XCTAssertEqual(order.first, id + ".manifest.json", "\(input)")
                XCTAssertEqual(order.sorted(), input.sorted(), "nothing added or lost: \(input)")
                XCTAssertEqual(order, RetentionPlan.deletionOrder(order.reversed()), "deterministic")
            }
        }
        let noManifest = [id + ".sql.gz.partial"]
        XCTAssertEqual(RetentionPlan.deletionOrder(noManifest), noManifest)
        XCTAssertEqual(RetentionPlan.deletionOrder([]), [])
    }

    /// The plan drives `prune`: a good snapshot's manifest must go before its dump in practice too.
    func testRemovedGoodSnapshotsListTheirManifestFirst() {
        let s = Self.self
        let d = plan([s.good("app", s.ago(s.day)), s.good("app", s.ago(90 * s.day))], RetentionPolicy())
        let r = d.filter { $0.action == .remove }
        XCTAssertEqual(r.count, 1)
        for x in r {
            XCTAssertEqual(RetentionPlan.deletionOrder(x.files).first, x.id + SnapshotName.manifestSuffix)
        }
    }
}
