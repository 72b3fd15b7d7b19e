import Foundation
import XCTest

@testable import PGSnapCore

/// Whole-server runs' globals: names that never meet a snapshot's, the run record, and the pure
/// rule that keeps a run's globals while any kept snapshot refers to them.
final class RunRetentionTests: XCTestCase {
    static let now = utc(2026, 11, 22, 12, 0, 0)
    static let day: TimeInterval = 86400
    static let sha = String(repeating: "b", count: 64)

    // MARK: - Names

    func testRunNamesAreNeverSnapshotNames() {
        let t = utc(2026, 11, 22, 3, 15, 0)
        XCTAssertEqual(RunName.id(date: t), "run-20261122T031500Z")
        XCTAssertEqual(RunName.id(date: t, attempt: 3), "run-20261122T031500Z-3")
        XCTAssertEqual(RunName.parse("run-20261122T031500Z"), t)
        XCTAssertEqual(RunName.parse("run-20261122T031500Z-3"), t)
        for bad in ["run-20261122T031500Z-1", "run-20261122T031500Z-03", "run-20261122T031500Z-+3", "run-20261122T031500Z-", "run-2026",
                    "run_20261122T031500Z", "run-20261122T031500Zx", "app_20261122T031500Z", "run-20261340T031500Z"] {
            XCTAssertNil(RunName.parse(bad), bad)
        }
        XCTAssertEqual(RunName.run(ofFile: "run-20261122T031500Z.globals.sql"), "run-20261122T031500Z")
        XCTAssertEqual(RunName.run(ofFile: "run-20261122T031500Z-2.run.json"), "run-20261122T031500Z-2")
        XCTAssertEqual(RunName.run(ofFile: "run-20261122T031500Z.globals.sql.partial"), "run-20261122T031500Z")
        XCTAssertNil(RunName.run(ofFile: "run-20261122T031500Z.sql.gz"))
        // Snapshot files, even of databases whose names look like runs, are never a run's, and the reverse.
        for name in ["run-x_20261122T031500Z.globals.sql", "run-20261122T031500Z_20261123T000000Z.globals.sql", "app_20261122T031500Z.globals.sql"] {
            XCTAssertNil(RunName.run(ofFile: name), name)
            XCTAssertNotNil(Catalog.snapshotID(ofFile: name), name)
        }
        for name in ["run-20261122T031500Z.globals.sql", "run-20261122T031500Z.run.json", "run-20261122T031500Z.globals.sql.partial"] {
            XCTAssertNil(Catalog.snapshotID(ofFile: name), "\(name) taken for a snapshot's file")
        }
    }

    // MARK: - The record

    func testRecordRoundTripsMergesAndRefusesAnotherRunsGlobals() throws {
        let run = "run-20261122T031500Z"
        let r = RunRecord(run: run, createdAt: utc(2026, 11, 22, 3, 15, 0, millisecond: 250), globalsBytes: 42, globalsSHA256: Self.sha,
                          snapshots: ["a_20261122T031501Z"], pgsnapVersion: "0.1.0")
        let back = try RunRecord.decode(bytes: [UInt8](try r.encoded()), fileName: RunName.recordFile(run))
        XCTAssertEqual(back, r)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.encoded()) as? [String: Any])
        XCTAssertEqual(Set(object.keys), Set(RunRecord.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(object["globals_file"] as? String, run + ".globals.sql")

        let merged = try r.adding("b_20261122T031502Z").merged(with: r.adding("c_20261122T031503Z").adding("a_20261122T031501Z"))
        XCTAssertEqual(merged.snapshots, ["a_20261122T031501Z", "b_20261122T031502Z", "c_20261122T031503Z"])
        var other = r
        other.globalsSHA256 = String(repeating: "c", count: 64)
        assertPGSnapError(.failure, "two runs under one name") { try r.merged(with: other) }

        func rejected(_ why: String, fileName: String = RunName.recordFile(run), _ change: (inout [String: Any]) -> Void) {
            var o = object
            change(&o)
            let bytes = [UInt8](try! JSONSerialization.data(withJSONObject: o))
            let e = assertPGSnapError(.verificationFailed, why) { try RunRecord.decode(bytes: bytes, fileName: fileName) }
            XCTAssertTrue(e?.description.contains(fileName) ?? true, "\(why): \(String(describing: e))")
        }
        rejected("another run's file name", fileName: "run-20261122T031501Z.run.json") { _ in }
        rejected("globals as a path") { $0["globals_file"] = "../../etc/passwd" }
        rejected("sha256 not hex") { $0["globals_sha256"] = String(repeating: "z", count: 64) }
        rejected("a path among the snapshots") { $0["snapshots"] = ["../x_20261122T031501Z"] }
        rejected("missing snapshots") { $0["snapshots"] = nil }
        rejected("format_version 2") { $0["format_version"] = 2 }
    }

    func testManifestsMayNameOnlyTheirOwnOrTheirRunsGlobals() throws {
        func manifest(_ change: (inout Manifest) -> Void) -> Data {
            var m = RetentionPlanTests.manifest(id: "app_20261122T031500Z", database: "app", createdAt: utc(2026, 11, 22, 3, 15, 0))
            change(&m)
            return try! m.encoded()
        }
        let name = "app_20261122T031500Z.manifest.json"
        let run = "run-20261122T031459Z"
        XCTAssertNoThrow(try Manifest.decode(manifest { $0.globalsFile = "app_20261122T031500Z.globals.sql" }, fileName: name))
        XCTAssertNoThrow(try Manifest.decode(manifest { $0.run = run; $0.globalsFile = run + ".globals.sql"; $0.globalsSHA256 = Self.sha }, fileName: name))
        for (why, data) in [("a path", manifest { $0.globalsFile = "../../etc/passwd" }),
                            ("another snapshot's", manifest { $0.globalsFile = "app_20261123T000000Z.globals.sql" }),
                            ("a run's without naming the run", manifest { $0.globalsFile = run + ".globals.sql"; $0.globalsSHA256 = Self.sha }),
                            ("another run's", manifest { $0.run = run; $0.globalsFile = "run-20261122T000000Z.globals.sql"; $0.globalsSHA256 = Self.sha }),
                            ("a run without globals", manifest { $0.run = run }),
                            ("a run without checksum", manifest { $0.run = run; $0.globalsFile = run + ".globals.sql" }),
                            ("a checksum that is not one", manifest { $0.globalsFile = "app_20261122T031500Z.globals.sql"; $0.globalsSHA256 = "x" })] {
            assertPGSnapError(.verificationFailed, why) { try Manifest.decode(data, fileName: name) }
        }
    }

    // MARK: - Retention

    /// A snapshot of a run: its manifest names the run's globals.
    static func snapshot(_ database: String, _ date: Date, run: String?) -> CatalogEntry {
        var e = RetentionPlanTests.good(database, date)
        var m = e.manifest!
        m.run = run
        m.globalsFile = run.map { RunName.globalsFile($0) }
        m.globalsSHA256 = run.map { _ in Self.sha }
        e.manifest = m
        return e
    }

    static func files(_ run: String, record: Bool = true) -> [DirectoryFile] {
        [DirectoryFile(name: RunName.globalsFile(run), size: 100)] + (record ? [DirectoryFile(name: RunName.recordFile(run), size: 300)] : [])
    }

    static func record(_ run: String, _ ids: [String]) -> RunFiles.Record {
        .valid(RunRecord(run: run, createdAt: RunName.parse(run)!, globalsBytes: 100, globalsSHA256: sha, snapshots: ids, pgsnapVersion: "0.1.0"))
    }

    func decisions(_ runs: [RunFiles], _ entries: [CatalogEntry], removing: Set<String> = []) -> [String: RunDecision] {
        Dictionary(uniqueKeysWithValues: RunRetention.plan(runs: runs, entries: entries, removing: removing, now: Self.now, grace: Self.day)
            .map { ($0.run, $0) })
    }

    func testGlobalsAreKeptWhileAnyKeptSnapshotOfAnyDatabaseRefersToThem() {
        let old = utc(2026, 10, 1, 3, 0, 0)
        let run = RunName.id(date: old)
        let a = Self.snapshot("a", old.addingTimeInterval(1), run: run), b = Self.snapshot("b", old.addingTimeInterval(2), run: run)
        let runs = [RunFiles(run: run, files: Self.files(run), record: Self.record(run, [a.id, b.id]))]

        // A prune of database a alone: b still refers to them.
        let one = decisions(runs, [a, b], removing: [a.id])[run]!
        XCTAssertEqual(one.action, .keep)
        XCTAssertTrue(one.reasons.joined().contains(b.id), "\(one.reasons)")
        // The last one goes: they go with it, record first.
        let all = decisions(runs, [a, b], removing: [a.id, b.id])[run]!
        XCTAssertEqual(all.action, .remove)
        XCTAssertEqual(RunRetention.deletionOrder(all.files), [RunName.recordFile(run), RunName.globalsFile(run)])
        // Kept in any state: a damaged snapshot is left for a person, and so are the globals it needs.
        var damaged = b
        damaged.status = .damaged
        XCTAssertEqual(decisions(runs, [a, damaged], removing: [a.id])[run]?.action, .keep)
    }

    func testTheRecordAloneOrTheManifestsAloneAreEnough() {
        let old = utc(2026, 10, 1, 3, 0, 0)
        let run = RunName.id(date: old)
        let a = Self.snapshot("a", old.addingTimeInterval(1), run: run)
        // The bucket: a listing's entries carry no manifest, the record names them.
        var listed = a
        listed.manifest = nil
        XCTAssertEqual(decisions([RunFiles(run: run, files: Self.files(run), record: Self.record(run, [a.id]))], [listed])[run]?.action, .keep)
        // A record lost by hand: the manifests still say it.
        XCTAssertEqual(decisions([RunFiles(run: run, files: Self.files(run, record: false), record: .missing)], [a])[run]?.action, .keep)
        // Neither: nothing refers to it.
        XCTAssertEqual(decisions([RunFiles(run: run, files: Self.files(run), record: Self.record(run, []))], [listed])[run]?.action, .remove)
    }

    func testARecentRunThatNamesNoSnapshotYetIsInFlightAndAnUnreadableRecordIsLeftAlone() {
        let recent = Self.now.addingTimeInterval(-3600), old = Self.now.addingTimeInterval(-2 * Self.day)
        let fresh = RunName.id(date: recent), stale = RunName.id(date: old), broken = RunName.id(date: old, attempt: 2)
        let leftover = RunName.id(date: old, attempt: 3)
        let runs = [RunFiles(run: fresh, files: Self.files(fresh), record: Self.record(fresh, [])),
                    RunFiles(run: stale, files: Self.files(stale), record: Self.record(stale, [])),
                    RunFiles(run: broken, files: Self.files(broken), record: .invalid("not valid JSON")),
                    RunFiles(run: leftover, files: [DirectoryFile(name: RunName.globalsFile(leftover) + ".partial", size: 5)], record: .missing)]
        let d = decisions(runs, [])
        XCTAssertEqual(d[fresh]?.action, .keep, "\(d[fresh]!.reasons)")
        XCTAssertTrue(d[fresh]!.reasons.joined().contains("in flight"))
        XCTAssertEqual(d[stale]?.action, .remove)
        XCTAssertEqual(d[broken]?.action, .keep)
        XCTAssertTrue(d[broken]!.reasons.joined().contains("cannot be read"))
        XCTAssertEqual(d[leftover]?.action, .remove)
        XCTAssertTrue(d[leftover]!.reasons.joined().contains("incomplete run"))

        // Without a record, a kept manifest that cannot be read might be one of the run's: left alone.
        let unreadable = RetentionPlanTests.invalidManifest("a", old)
        let orphan = RunFiles(run: stale, files: Self.files(stale, record: false), record: .missing)
        XCTAssertEqual(decisions([orphan], [unreadable])[stale]?.action, .keep)
        XCTAssertEqual(decisions([orphan], [unreadable], removing: [unreadable.id])[stale]?.action, .remove)
    }

    func testRunsAreGroupedFromAListing() {
        let files = [DirectoryFile(name: "run-20261122T031500Z.globals.sql", size: 10), DirectoryFile(name: "run-20261122T031500Z.run.json", size: 20),
                     DirectoryFile(name: "run-20261123T031500Z.globals.sql.partial", size: 3),
                     DirectoryFile(name: "app_20261122T031501Z.sql.gz", size: 99), DirectoryFile(name: "app_20261122T031501Z.globals.sql", size: 9)]
        let runs = RunFiles.group(files)
        XCTAssertEqual(runs.map(\.run), ["run-20261122T031500Z", "run-20261123T031500Z"])
        XCTAssertEqual(runs[0].files.map(\.name), ["run-20261122T031500Z.globals.sql", "run-20261122T031500Z.run.json"])
        XCTAssertTrue(runs[0].hasRecord)
        XCTAssertFalse(runs[1].hasRecord)
    }

    /// `--encrypt-to` stores the globals as `.globals.sql.age` (role password hashes): the same
    /// rules hold for the encrypted name, and only for the names of its own snapshot or run.
    func testEncryptedGlobalsAreNamedGroupedAndRetainedLikePlainOnes() throws {
        let run = "run-20261122T031459Z"
        let name = "app_20261122T031500Z.manifest.json"
        func manifest(_ change: (inout Manifest) -> Void) -> Data {
            var m = RetentionPlanTests.manifest(id: "app_20261122T031500Z", database: "app", createdAt: utc(2026, 11, 22, 3, 15, 0))
            change(&m)
            return try! m.encoded()
        }
        XCTAssertNoThrow(try Manifest.decode(manifest { $0.globalsFile = "app_20261122T031500Z.globals.sql.age" }, fileName: name))
        XCTAssertNoThrow(try Manifest.decode(manifest { $0.run = run; $0.globalsFile = run + ".globals.sql.age"; $0.globalsSHA256 = Self.sha }, fileName: name))
        assertPGSnapError(.verificationFailed, "another snapshot's encrypted globals") {
            try Manifest.decode(manifest { $0.globalsFile = "app_20261123T000000Z.globals.sql.age" }, fileName: name)
        }

        XCTAssertEqual(Catalog.snapshotID(ofFile: "app_20261122T031500Z.globals.sql.age"), "app_20261122T031500Z")
        XCTAssertEqual(RunName.run(ofFile: run + ".globals.sql.age"), run)
        XCTAssertEqual(RunName.run(ofFile: run + ".globals.sql.age.partial"), run)

        let record = RunRecord(run: run, createdAt: RunName.parse(run)!, globalsBytes: 100, globalsSHA256: Self.sha, snapshots: ["app_20261122T031500Z"],
                               pgsnapVersion: "0.1.0", encrypted: true)
        let decoded = try RunRecord.decode(bytes: [UInt8](try record.encoded()), fileName: RunName.recordFile(run))
        XCTAssertEqual(decoded.globalsFile, run + ".globals.sql.age")
        // The plain and the encrypted globals of one run name are two different runs.
        let plain = RunRecord(run: run, createdAt: RunName.parse(run)!, globalsBytes: 100, globalsSHA256: Self.sha, pgsnapVersion: "0.1.0")
        XCTAssertThrowsError(try plain.merged(with: decoded))

        var e = RetentionPlanTests.good("app", utc(2026, 11, 22, 3, 15, 0))
        var m = e.manifest!
        m.run = nil
        m.globalsFile = RunName.globalsFile(run, encrypted: true)
        m.globalsSHA256 = Self.sha
        e.manifest = m
        let files = [DirectoryFile(name: RunName.globalsFile(run, encrypted: true), size: 100)]
        let d = decisions(RunFiles.group(files).map { var r = $0; r.record = .missing; return r }, [e])
        XCTAssertEqual(d[run]?.action, .keep, "\(d)")
        let gone = decisions(RunFiles.group(files).map { var r = $0; r.record = .missing; return r }, [e], removing: [e.id])
        XCTAssertEqual(gone[run]?.action, .remove, "\(gone)")
    }
}
