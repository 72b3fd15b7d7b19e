import Foundation
import XCTest

@testable import PGSnapCore

final class CatalogTests: XCTestCase {
    static func manifest(database: String, date: Date, label: String? = nil, attempt: Int = 1, bytes: Int64 = 1000,
                         compression: CompressionAlgorithm = .gzip) -> Manifest {
        let id = SnapshotName.id(database: database, date: date, label: label, attempt: attempt)
        return Manifest(
            id: id, database: database, label: label, createdAt: date.addingTimeInterval(0.25), durationSeconds: 1,
            file: SnapshotName.dumpFile(id: id, compression: compression), compressedBytes: bytes, uncompressedBytes: bytes * 5,
            sha256: String(repeating: "0", count: 64), compression: .init(algorithm: compression, level: 6),
            pgDumpVersion: "17.6", serverVersion: "17.6", host: nil, port: nil, user: nil, migration: nil,
            tableRows: [:], databaseProperties: nil, timings: nil, pgsnapVersion: "0.1.0")
    }

    /// A backup directory as a listing plus what each manifest file decodes to.
    struct FakeDirectory {
        var files: [DirectoryFile] = []
        var manifests: [String: Result<Manifest, PGSnapError>] = [:]

        /// A finished snapshot: dump, manifest and globals file.
        mutating func addGood(_ m: Manifest, dumpSize: Int64? = nil) {
            files.append(DirectoryFile(name: m.file, size: dumpSize ?? m.compressedBytes))
            files.append(DirectoryFile(name: m.id + SnapshotName.manifestSuffix, size: 900))
            files.append(DirectoryFile(name: m.id + SnapshotName.globalsSuffix, size: 40))
            manifests[m.id] = .success(m)
        }

        func build(file: StaticString = #filePath, line: UInt = #line) -> [CatalogEntry] {
            Catalog.build(files: files) { id in
                guard let result = manifests[id] else {
                    XCTFail("unconfigured fake: no manifest for \(id)", file: file, line: line)
                    throw PGSnapError("unconfigured fake: no manifest for \(id)")
                }
                return try result.get()
            }
        }
    }

    static let t0 = utc(2026, 11, 22, 3, 0, 0)

    func testClassification() throws {
        var dir = FakeDirectory()
        let good = CatalogTests.manifest(database: "app", date: CatalogTests.t0, label: "nightly")
        dir.addGood(good)
        let damaged = CatalogTests.manifest(database: "app", date: CatalogTests.t0.addingTimeInterval(60))
        dir.addGood(damaged, dumpSize: damaged.compressedBytes - 10)
        let partialID = SnapshotName.id(database: "app", date: CatalogTests.t0.addingTimeInterval(120), label: nil)
        dir.files.append(DirectoryFile(name: partialID + ".sql.gz.partial", size: 512))
        let orphanDumpID = SnapshotName.id(database: "my db", date: CatalogTests.t0.addingTimeInterval(180), label: nil)
        dir.files.append(DirectoryFile(name: orphanDumpID + ".sql.gz", size: 2048))
        let orphanManifest = CatalogTests.manifest(database: "billing", date: CatalogTests.t0.addingTimeInterval(240))
        dir.files.append(DirectoryFile(name: orphanManifest.id + SnapshotName.manifestSuffix, size: 700))
        dir.manifests[orphanManifest.id] = .success(orphanManifest)
        let invalidID = SnapshotName.id(database: "billing", date: CatalogTests.t0.addingTimeInterval(300), label: nil)
        dir.files.append(DirectoryFile(name: invalidID + ".sql.gz", size: 10))
        dir.files.append(DirectoryFile(name: invalidID + SnapshotName.manifestSuffix, size: 3))
        dir.manifests[invalidID] = .failure(.verification("manifest \(invalidID).manifest.json is not valid JSON"))
        // A roles file alone: a backup killed between it and its manifest.
        let rolesOnlyID = SnapshotName.id(database: "app", date: CatalogTests.t0.addingTimeInterval(360), label: nil)
        dir.files.append(DirectoryFile(name: rolesOnlyID + SnapshotName.globalsSuffix, size: 300))
        for foreign in ["notes.txt", "README.md", "app.sql.gz", "backup.sql", "random_name.sql.gz", ".pgsnap.lock",
                        "app_20261122T030000Z.txt", "app_20261122T030000Z.sql.gz.bak", "app_2026.sql.gz", ".pgsnap.lock.partial"] {
            dir.files.append(DirectoryFile(name: foreign, size: 1))
        }

        let entries = dir.build()
        let byID = Dictionary(uniqueKeysWithValues: entries.map { ($0.id, $0) })
        XCTAssertEqual(Set(byID.keys), [good.id, damaged.id, partialID, orphanDumpID, orphanManifest.id, invalidID, rolesOnlyID],
                       "foreign files and the lock file must be ignored")
        let r = try XCTUnwrap(byID[rolesOnlyID])
        XCTAssertEqual(r.status, .partial)
        XCTAssertTrue(r.isLeftover, "listed and pruned like any leftover")
        XCTAssertEqual(r.files, [rolesOnlyID + SnapshotName.globalsSuffix])

        let g = try XCTUnwrap(byID[good.id])
        XCTAssertEqual(g.status, .good)
        XCTAssertTrue(g.isGood)
        XCTAssertFalse(g.isLeftover)
        XCTAssertEqual(g.manifest, good)
        XCTAssertEqual(g.database, "app")
        XCTAssertEqual(g.createdAt, good.createdAt, "time comes from the manifest, not the name")
        XCTAssertEqual(g.files, [good.id + SnapshotName.globalsSuffix, good.id + SnapshotName.manifestSuffix, good.file].sorted())
        XCTAssertEqual(g.bytes, good.compressedBytes + 900 + 40)
        XCTAssertNil(g.problem)

        let d = try XCTUnwrap(byID[damaged.id])
        XCTAssertEqual(d.status, .damaged)
        XCTAssertFalse(d.isGood)
        XCTAssertFalse(d.isLeftover)
        XCTAssertEqual(d.problem, "dump is \(damaged.compressedBytes - 10) bytes, manifest says \(damaged.compressedBytes)")

        let p = try XCTUnwrap(byID[partialID])
        XCTAssertEqual(p.status, .partial)
        XCTAssertTrue(p.isLeftover)
        XCTAssertNil(p.manifest)
        XCTAssertEqual(p.database, "app")
        XCTAssertEqual(p.createdAt, CatalogTests.t0.addingTimeInterval(120), "time of a leftover comes from its name")

        let o = try XCTUnwrap(byID[orphanDumpID])
        XCTAssertEqual(o.status, .dumpWithoutManifest)
        XCTAssertTrue(o.isLeftover)
        XCTAssertEqual(o.database, "my db", "database of a leftover is decoded from its name")
        XCTAssertEqual(o.bytes, 2048)

        let m = try XCTUnwrap(byID[orphanManifest.id])
        XCTAssertEqual(m.status, .manifestWithoutDump)
        XCTAssertTrue(m.isLeftover)
        XCTAssertEqual(m.database, "billing")
        XCTAssertTrue(m.problem?.contains(orphanManifest.file) ?? false, "\(String(describing: m.problem))")

        let i = try XCTUnwrap(byID[invalidID])
        XCTAssertEqual(i.status, .invalidManifest)
        XCTAssertFalse(i.isGood)
        XCTAssertFalse(i.isLeftover)
        XCTAssertNil(i.manifest)
        XCTAssertEqual(i.database, "billing")
        XCTAssertEqual(i.problem, "manifest \(invalidID).manifest.json is not valid JSON")
    }

    /// A snapshot labelled `....globals` (refused for new snapshots, made before) and stored
    /// uncompressed: its dump's name is also the roles file of the same id without `.globals`.
    /// With its manifest in the listing the file is its dump, so the snapshot is good (it was two
    /// leftovers, which prune removed after a day, newest or not); a roles file whose snapshot has
    /// no manifest stays a leftover of its own id.
    func testADumpNamedLikeARolesFileBelongsToTheSnapshotWithTheManifest() throws {
        var dir = FakeDirectory()
        let labelled = CatalogTests.manifest(database: "app", date: CatalogTests.t0, label: "pre.globals", compression: .none)
        XCTAssertEqual(labelled.file, SnapshotName.id(database: "app", date: CatalogTests.t0, label: "pre") + SnapshotName.globalsSuffix)
        dir.addGood(labelled)
        let lone = SnapshotName.id(database: "app", date: CatalogTests.t0.addingTimeInterval(60), label: "pre")
        dir.files.append(DirectoryFile(name: lone + SnapshotName.globalsSuffix, size: 40))
        let entries = dir.build()
        XCTAssertEqual(entries.map(\.id), [lone, labelled.id])
        XCTAssertEqual(entries.map(\.status), [.partial, .good])
        XCTAssertTrue(entries[1].files.contains(labelled.file), "\(entries[1].files)")
        let listed = ListingCatalog.build(files: dir.files)
        XCTAssertEqual(listed.first { $0.id == labelled.id }?.status, .good)
        // Encrypted and uncompressed: `.globals` + `.sql.age` reads as `.globals.sql.age`.
        XCTAssertEqual(Catalog.snapshotID(ofFile: labelled.id + ".sql.age", manifests: [labelled.id]), labelled.id)
        XCTAssertEqual(Catalog.snapshotID(ofFile: labelled.id + ".sql.age", manifests: []), SnapshotName.id(database: "app", date: CatalogTests.t0, label: "pre"))
        XCTAssertEqual(Catalog.snapshotID(ofFile: lone + SnapshotName.globalsSuffix, manifests: [labelled.id]), lone)
    }

    func testStatusRawValuesAreStable() {
        let expected: [(CatalogEntry.Status, String)] = [
            (.good, "good"), (.damaged, "damaged"), (.partial, "partial"), (.dumpWithoutManifest, "dump_without_manifest"),
            (.manifestWithoutDump, "manifest_without_dump"), (.invalidManifest, "invalid_manifest"),
        ]
        for (status, raw) in expected { XCTAssertEqual(status.rawValue, raw) }
    }

    func testManifestIsOnlyReadForIDsThatHaveOne() {
        var dir = FakeDirectory()
        dir.files.append(DirectoryFile(name: "app_20261122T030000Z.sql.gz", size: 5))
        dir.files.append(DirectoryFile(name: "app_20261122T040000Z.sql.gz.partial", size: 5))
        // The fake fails the test if asked for a manifest that is not in the listing.
        XCTAssertEqual(dir.build().map(\.status), [.partial, .dumpWithoutManifest])
    }

    func testOrderIsNewestFirstAndIndependentOfTheListing() {
        var dir = FakeDirectory()
        let times = [0, 3600, 7200, 7200, 7200, 86400].map { CatalogTests.t0.addingTimeInterval(TimeInterval($0)) }
        dir.addGood(CatalogTests.manifest(database: "app", date: times[0]))
        dir.addGood(CatalogTests.manifest(database: "app", date: times[1]))
        dir.addGood(CatalogTests.manifest(database: "app", date: times[2]))
        dir.addGood(CatalogTests.manifest(database: "billing", date: times[3]))
        dir.addGood(CatalogTests.manifest(database: "zeta", date: times[4]))
        dir.addGood(CatalogTests.manifest(database: "app", date: times[5]))
        let reference = dir.build()
        XCTAssertEqual(reference.count, 6)
        for (a, b) in zip(reference, reference.dropFirst()) {
            XCTAssertGreaterThanOrEqual(a.createdAt, b.createdAt, "\(a.id) before \(b.id)")
        }
        // Three snapshots share one instant: the tie is broken by id, the same way every time.
        let tied = reference.filter { $0.createdAt == reference[1].createdAt }.map(\.id)
        XCTAssertEqual(tied.count, 3)
        XCTAssertTrue(tied == tied.sorted() || tied == tied.sorted().reversed(), "\(tied)")
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<50 {
            var shuffled = dir
            shuffled.files.shuffle(using: &generator)
            XCTAssertEqual(shuffled.build().map(\.id), reference.map(\.id))
        }
        XCTAssertEqual(Catalog.sorted(reference.reversed()).map(\.id), reference.map(\.id))
    }

    /// Two backups in one second: the `-2` is the newer even when its manifest cannot be read
    /// (its time then comes from its name, whole seconds, the good one's has milliseconds), so
    /// `latest` lands on it and refuses, instead of quietly taking the one before it.
    func testTheSecondBackupOfASecondIsNewerWhateverItsManifest() throws {
        var dir = FakeDirectory()
        let first = CatalogTests.manifest(database: "app", date: CatalogTests.t0)
        let second = CatalogTests.manifest(database: "app", date: CatalogTests.t0, attempt: 2)
        dir.addGood(first)
        dir.addGood(second)
        dir.manifests[second.id] = .failure(PGSnapError("manifest is not valid JSON"))
        let entries = dir.build()
        XCTAssertEqual(entries.map(\.id), [second.id, first.id])
        XCTAssertFalse(entries[0].isGood)
        XCTAssertEqual(try SnapshotSelector(kind: .latest, database: "app").select(from: entries, directory: "./backups").id, second.id)
        // created_at at .9996 s is written rounded to the next second's millisecond: the id's
        // second still orders them.
        var late = CatalogTests.manifest(database: "app", date: CatalogTests.t0)
        late.createdAt = CatalogTests.t0.addingTimeInterval(0.9996)
        var rounded = FakeDirectory()
        rounded.addGood(late)
        rounded.addGood(second)
        rounded.manifests[second.id] = .failure(PGSnapError("manifest is not valid JSON"))
        XCTAssertEqual(rounded.build().map(\.id), [second.id, late.id])
        // A label that holds a time is not the id's time: ordered by created_at as before.
        var labelled = FakeDirectory()
        let older = CatalogTests.manifest(database: "app", date: CatalogTests.t0, label: "before_20300101T000000Z-9")
        let newer = CatalogTests.manifest(database: "app", date: CatalogTests.t0.addingTimeInterval(60), label: "x")
        labelled.addGood(older)
        labelled.addGood(newer)
        XCTAssertEqual(labelled.build().map(\.id), [newer.id, older.id])
    }

    // MARK: SnapshotSelector

    /// app: good 00:00 (nightly), good 01:00 (pre_migration_000045), damaged 02:00 (nightly), partial 03:00;
    /// billing: good 00:30, good 04:00 (nightly).
    static func sampleCatalog() -> (entries: [CatalogEntry], ids: [String: String]) {
        var dir = FakeDirectory()
        var ids: [String: String] = [:]
        let t0 = CatalogTests.t0
        let app0 = manifest(database: "app", date: t0, label: "nightly")
        let app1 = manifest(database: "app", date: t0.addingTimeInterval(3600), label: "pre_migration_000045")
        let app2 = manifest(database: "app", date: t0.addingTimeInterval(7200), label: "nightly")
        let bill0 = manifest(database: "billing", date: t0.addingTimeInterval(1800))
        let bill1 = manifest(database: "billing", date: t0.addingTimeInterval(14400), label: "nightly")
        dir.addGood(app0)
        dir.addGood(app1)
        dir.addGood(app2, dumpSize: 1)
        dir.addGood(bill0)
        dir.addGood(bill1)
        let partial = SnapshotName.id(database: "app", date: t0.addingTimeInterval(10800), label: nil)
        dir.files.append(DirectoryFile(name: partial + ".sql.gz.partial", size: 1))
        ids = ["app0": app0.id, "app1": app1.id, "app2": app2.id, "bill0": bill0.id, "bill1": bill1.id, "partial": partial]
        return (dir.build(), ids)
    }

    func testSelectorPicks() throws {
        let (entries, ids) = CatalogTests.sampleCatalog()
        let t0 = CatalogTests.t0
        let cases: [(why: String, selector: SnapshotSelector, expected: String)] = [
            ("latest of all databases", .init(kind: .latest), "bill1"),
            ("latest per database is the newest committed, damaged or not", .init(kind: .latest, database: "app"), "app2"),
            ("latest per other database", .init(kind: .latest, database: "billing"), "bill1"),
            ("latest before a time", .init(kind: .latest, database: "billing", before: t0.addingTimeInterval(3600)), "bill0"),
            ("before is exclusive", .init(kind: .latest, database: "app", before: t0.addingTimeInterval(3600.25)), "app0"),
            ("label", .init(kind: .label("pre_migration_000045")), "app1"),
            ("label does not skip damaged", .init(kind: .label("nightly"), database: "app"), "app2"),
            ("label across databases", .init(kind: .label("nightly")), "bill1"),
            ("label before", .init(kind: .label("nightly"), before: t0.addingTimeInterval(14400)), "app2"),
            ("label before the damaged one", .init(kind: .label("nightly"), before: t0.addingTimeInterval(7200)), "app0"),
            ("id of a good snapshot", .init(kind: .id(ids["app1"]!)), "app1"),
            ("id of a damaged snapshot", .init(kind: .id(ids["app2"]!)), "app2"),
            ("id of a leftover", .init(kind: .id(ids["partial"]!)), "partial"),
        ]
        for c in cases {
            let picked = try c.selector.select(from: entries, directory: "./backups")
            XCTAssertEqual(picked.id, ids[c.expected], c.why)
        }
    }

    /// `latest` skips what was never committed (the partial), never what was committed and is damaged.
    func testLatestSkipsOnlyUncommittedLeftovers() throws {
        let (entries, ids) = CatalogTests.sampleCatalog()
        let app = entries.filter { $0.database == "app" }
        XCTAssertEqual(app.first?.status, .partial, "the newest app entry is a leftover")
        XCTAssertEqual(app.dropFirst().first?.status, .damaged)
        let picked = try SnapshotSelector(kind: .latest, database: "app").select(from: entries, directory: "./backups")
        XCTAssertEqual(picked.id, ids["app2"])
        XCTAssertFalse(picked.isGood)
    }

    /// What `latest` passed over is said: an unfinished backup newer than the pick, in its scope only.
    func testUnfinishedBackupsNewerThanThePickAreNamedInScopeOnly() throws {
        let (entries, ids) = CatalogTests.sampleCatalog()
        let t0 = CatalogTests.t0
        let cases: [(why: String, selector: SnapshotSelector, passedOver: [String])] = [
            ("latest of app: the newer partial", .init(kind: .latest, database: "app"), ["partial"]),
            ("another database's partial is not this one's", .init(kind: .latest, database: "billing"), []),
            ("latest of all: the pick is newer than the partial", .init(kind: .latest), []),
            ("--before excludes a later partial", .init(kind: .latest, database: "app", before: t0.addingTimeInterval(9000)), []),
            ("a label: the partial has none", .init(kind: .label("nightly"), database: "app"), []),
            ("an explicit id passes over nothing", .init(kind: .id(ids["app1"]!)), []),
        ]
        for c in cases {
            let picked = try c.selector.select(from: entries, directory: "./backups")
            XCTAssertEqual(c.selector.newerUnfinished(than: picked, among: entries).map(\.id), c.passedOver.map { ids[$0]! }, c.why)
            XCTAssertEqual(c.selector.passedOverLine(picked, among: entries) != nil, !c.passedOver.isEmpty, c.why)
        }
        let app = SnapshotSelector(kind: .latest, database: "app")
        let line = try XCTUnwrap(app.passedOverLine(try app.select(from: entries, directory: "./backups"), among: entries))
        // A second backup begun in the same second as the pick is newer, though its name's time is not.
        var dir = FakeDirectory()
        let first = CatalogTests.manifest(database: "app", date: t0)
        dir.addGood(first)
        let second = SnapshotName.id(database: "app", date: t0, label: nil, attempt: 2)
        dir.files.append(DirectoryFile(name: second + ".sql.gz.partial", size: 1))
        let same = dir.build()
        let picked = try app.select(from: same, directory: "./backups")
        XCTAssertEqual(picked.id, first.id)
        XCTAssertEqual(app.newerUnfinished(than: picked, among: same).map(\.id), [second])
        XCTAssertTrue(line.contains(ids["partial"]!) && line.contains("using \(ids["app2"]!)") && line.contains("database \"app\""), line)
    }

    func testRefusalNamesTheDamagedSnapshotAndTheOlderGoodOneWithItsCommand() throws {
        let (entries, ids) = CatalogTests.sampleCatalog()
        let damaged = try XCTUnwrap(entries.first { $0.id == ids["app2"] })
        let command = { (id: String) in "pgsnap restore \(id) -d app" }
        let latest = SnapshotSelector(kind: .latest, database: "app")
        let e1 = latest.refusal(damaged, check: "size", detail: "file is 1 bytes, manifest says 1000", among: entries, command: command)
        XCTAssertEqual(e1.status, .verificationFailed)
        XCTAssertEqual(e1.description, """
            the newest snapshot for database "app" is damaged: snapshot \(ids["app2"]!) failed the size check (file is 1 bytes, manifest says 1000). \
            Nothing was changed and no older snapshot was used in its place. To restore the next older complete one, \(ids["app1"]!) \
            (its checksum is checked before anything is changed), on purpose: \
            pgsnap restore \(ids["app1"]!) -d app
            """)
        // A label's fallback is the next older snapshot with the same label.
        let label = SnapshotSelector(kind: .label("nightly"), database: "app")
        let e2 = label.refusal(damaged, check: "checksum", detail: "SHA-256 differs", among: entries, command: command)
        XCTAssertTrue(e2.description.hasPrefix("the newest snapshot with label 'nightly' for database \"app\" is damaged"), e2.description)
        XCTAssertTrue(e2.description.hasSuffix("pgsnap restore \(ids["app0"]!) -d app"), e2.description)
        // Nothing older: say so, and never suggest a snapshot out of scope.
        let before = SnapshotSelector(kind: .label("nightly"), database: "app")
        let oldest = try XCTUnwrap(entries.first { $0.id == ids["app0"] })
        let e3 = before.refusal(oldest, check: "checksum", detail: "x", among: entries, command: command)
        XCTAssertTrue(e3.description.contains("there is no older good snapshot"), e3.description)
        // An explicit id is refused without any fallback.
        let byID = SnapshotSelector(kind: .id(ids["app2"]!))
        let e4 = byID.refusal(damaged, check: "size", detail: "x", among: entries, command: command)
        XCTAssertFalse(e4.description.contains(ids["app1"]!), e4.description)
        XCTAssertEqual(e4.status, .verificationFailed)
    }

    func testNoMatchSaysWhatAndWhatToDoNext() {
        let (entries, _) = CatalogTests.sampleCatalog()
        let cases: [(selector: SnapshotSelector, mentions: [String])] = [
            (.init(kind: .latest, database: "shop"), ["'latest'", "for database \"shop\"", "./backups"]),
            (.init(kind: .latest, database: "app", before: CatalogTests.t0),
             ["'latest'", "for database \"app\"", "before 2026-11-22T03:00:00.000Z", "./backups"]),
            (.init(kind: .label("nope")), ["label 'nope'", "./backups"]),
            (.init(kind: .label("nightly"), database: "shop"), ["label 'nightly'", "for database \"shop\""]),
            (.init(kind: .id("app_20991231T000000Z")), ["app_20991231T000000Z", "./backups"]),
        ]
        for c in cases {
            let error = assertPGSnapError(.failure, c.selector.text) { try c.selector.select(from: entries, directory: "./backups") }
            guard let error else { continue }
            XCTAssertTrue(error.description.contains("Run 'pgsnap list"), "\(error)")
            for text in c.mentions {
                XCTAssertTrue(error.description.contains(text), "expected '\(text)' in: \(error)")
            }
        }
        let empty = assertPGSnapError(.failure) { try SnapshotSelector(kind: .latest).select(from: [], directory: "/srv/backups") }
        XCTAssertEqual(empty?.description, "No snapshot matches 'latest' in /srv/backups. Run 'pgsnap list --dir /srv/backups'")
    }
}

/// A small deterministic generator (SplitMix64) so shuffles are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
