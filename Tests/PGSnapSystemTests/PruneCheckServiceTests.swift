import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

/// prune and check as services over the in-memory storage: no PostgreSQL, no S3, no files.
/// The same code runs over the backup directory and over a bucket.
final class PruneCheckServiceTests: XCTestCase {
    let now = ISO8601.parse("2026-12-06T03:00:00Z")!

    func session() throws -> PruneService {
        PruneService(session: try Session(spec: ConnectionSpec(), directory: "/nonexistent/pgsnap",
                                          environment: ["PATH": "/usr/bin:/bin", "PGSNAP_NOW": ISO8601.format(now)],
                                          reporter: Reporter(quiet: true, json: false)))
    }

    func checker() throws -> CheckService {
        CheckService(session: try Session(spec: ConnectionSpec(), directory: "/nonexistent/pgsnap",
                                          environment: ["PATH": "/usr/bin:/bin", "PGSNAP_NOW": ISO8601.format(now)],
                                          reporter: Reporter(quiet: true, json: false)))
    }

    /// A snapshot of `database` taken `daysAgo` days before `now`: a dump of `size` bytes and a
    /// manifest that says `claimed` bytes (the same unless the dump is to look damaged).
    @discardableResult
    func add(_ s: InMemoryStorage, _ database: String = "app", daysAgo: Double, size: Int = 100, claimed: Int? = nil,
             manifest: Bool = true) throws -> String {
        let created = now.addingTimeInterval(-daysAgo * 86400)
        let id = SnapshotName.id(database: database, date: created, label: nil)
        let dump = [UInt8](repeating: 7, count: size)
        try s.putSmall(id + ".sql.gz", bytes: dump)
        guard manifest else { return id }
        let m = Manifest(
            id: id, database: database, label: nil, createdAt: created, durationSeconds: 1, file: id + ".sql.gz",
            compressedBytes: Int64(claimed ?? size), uncompressedBytes: 1000, sha256: VerifyServiceTests.sha256(dump),
            compression: .init(algorithm: .gzip, level: 6), pgDumpVersion: "15.14", serverVersion: "15.14", host: nil, port: nil,
            user: nil, migration: nil, tableRows: ["public.t": 3], databaseProperties: nil, timings: nil, pgsnapVersion: "0.1.0")
        try s.putSmall(id + SnapshotName.manifestSuffix, bytes: [UInt8](try m.encoded()))
        return id
    }

    func testPruneRemovesWhatThePolicyDropsManifestAndDumpAlike() throws {
        let s = InMemoryStorage()
        let old = try add(s, daysAgo: 40)
        let kept = try add(s, daysAgo: 10)
        let newest = try add(s, daysAgo: 1)
        let oldManifest = Int64(try s.readSmall(old + ".manifest.json", limit: 1 << 20).count)
        let result = try session().runLocked(s, policy: RetentionPolicy(keepDays: 30, keepLast: 1), database: "app", dryRun: false)
        XCTAssertEqual(result.decisions.filter { $0.action == .remove }.map(\.id), [old])
        XCTAssertTrue([100, 100 + oldManifest].contains(result.removedBytes), "removed \(result.removedBytes) bytes")
        XCTAssertEqual(Set(s.names), [kept + ".sql.gz", kept + ".manifest.json", newest + ".sql.gz", newest + ".manifest.json"])
    }

    func testTheNewestGoodSnapshotSurvivesAnyPolicyEvenWhenNewerOnesAreDamaged() throws {
        let s = InMemoryStorage()
        let good = try add(s, daysAgo: 90)
        let damaged = try add(s, daysAgo: 2, size: 50, claimed: 100)  // the dump is shorter than its manifest says
        let result = try session().runLocked(s, policy: RetentionPolicy(keepDays: 0, keepLast: 0), database: "app", dryRun: false)
        XCTAssertTrue(s.names.contains(good + ".sql.gz") && s.names.contains(good + ".manifest.json"), "\(s.names)")
        XCTAssertEqual(result.decisions.first { $0.id == good }?.action, .keep)
        XCTAssertEqual(result.decisions.first { $0.id == good }?.reasons, ["newest good snapshot of app"])
        // The damaged one is never "the newest good one", and is left for a person, not deleted.
        XCTAssertTrue(s.names.contains(damaged + ".sql.gz"), "\(s.names)")
        XCTAssertTrue(result.decisions.first { $0.id == damaged }?.reasons.first?.contains("left for a person") ?? false, "\(result.decisions)")
    }

    func testDryRunDeletesNothingAndLeftoversWaitADay() throws {
        let s = InMemoryStorage()
        try add(s, daysAgo: 40)
        try add(s, daysAgo: 1)
        let fresh = try add(s, daysAgo: 0.5, manifest: false)  // a backup may still be writing its manifest
        let stale = try add(s, daysAgo: 3, manifest: false)
        let before = s.names
        let dry = try session().runLocked(s, policy: RetentionPolicy(keepDays: 30), database: nil, dryRun: true)
        XCTAssertEqual(s.names, before)
        XCTAssertEqual(Set(dry.decisions.filter { $0.action == .remove }.map(\.id)).count, 2, "\(dry.decisions)")
        _ = try session().runLocked(s, policy: RetentionPolicy(keepDays: 30), database: nil, dryRun: false)
        XCTAssertTrue(s.names.contains(fresh + ".sql.gz"), "a leftover younger than a day was removed")
        XCTAssertFalse(s.names.contains(stale + ".sql.gz"), "a leftover three days old was kept")
    }

    func testCheckNamesAStaleDatabaseAndAShrunkenDump() throws {
        let s = InMemoryStorage()
        try add(s, "app", daysAgo: 3)
        try add(s, "shop", daysAgo: 2, size: 1000)
        try add(s, "shop", daysAgo: 0.5, size: 300)
        let report = try checker().run(s, maxAge: 26 * 3600, minSize: 1, database: nil, metricsFile: nil)
        XCTAssertFalse(report.ok)
        XCTAssertEqual(report.problems.map(\.database), ["app", "shop"])
        XCTAssertTrue(report.problems[0].problem.contains("3.0 days old"), report.problems[0].problem)
        XCTAssertTrue(report.problems[1].problem.contains("shrank"), report.problems[1].problem)
        let empty = try checker().run(InMemoryStorage(), maxAge: 26 * 3600, minSize: 1, database: "app", metricsFile: nil)
        XCTAssertEqual(empty.problems.map(\.problem), ["database \"app\": no good snapshot in memory:"])
    }
}
