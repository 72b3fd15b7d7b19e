import Foundation
import XCTest

@testable import PGSnapCore

final class ListingCatalogTests: XCTestCase {
    func testStatusFromTheListingAlone() {
        let good = CatalogTests.manifest(database: "app", date: utc(2026, 12, 1, 3), label: "pre_mig")
        let halfway = CatalogTests.manifest(database: "app", date: utc(2026, 12, 2, 3))
        let orphan = CatalogTests.manifest(database: "app", date: utc(2026, 11, 30, 3))
        let files = [
            DirectoryFile(name: good.file, size: 1000), DirectoryFile(name: good.id + ".manifest.json", size: 900),
            DirectoryFile(name: halfway.file, size: 1000),
            DirectoryFile(name: orphan.id + ".manifest.json", size: 900),
            DirectoryFile(name: "README.txt", size: 5),
        ]
        let entries = ListingCatalog.build(files: files)
        XCTAssertEqual(entries.map(\.id), [halfway.id, good.id, orphan.id])
        XCTAssertEqual(entries.map(\.status), [.dumpWithoutManifest, .good, .manifestWithoutDump])
        XCTAssertEqual(entries.map(\.database), ["app", "app", "app"])
        XCTAssertEqual(entries[1].bytes, 1900)
        XCTAssertNil(entries[1].manifest)

        // latest skips the newer incomplete one; labels come from the id.
        XCTAssertEqual(try ListingCatalog.select(SnapshotSelector(kind: .latest, database: "app"), from: entries, location: "s3://b").id, good.id)
        XCTAssertEqual(try ListingCatalog.select(SnapshotSelector(kind: .label("pre_mig")), from: entries, location: "s3://b").id, good.id)
        assertPGSnapError(.failure) { try ListingCatalog.select(SnapshotSelector(kind: .label("other")), from: entries, location: "s3://b") }
        assertPGSnapError(.failure) { try ListingCatalog.select(SnapshotSelector(kind: .latest, database: "web"), from: entries, location: "s3://b") }
    }

    /// A label is matched whole, as the id holds it after its time field: "migration_45" is not
    /// "pre_migration_45" (a listing has no manifest to ask).
    func testALabelIsMatchedWholeNotAsASuffix() throws {
        let exact = CatalogTests.manifest(database: "app", date: utc(2026, 12, 1, 3), label: "migration_45")
        let longer = CatalogTests.manifest(database: "app", date: utc(2026, 12, 2, 3), label: "pre_migration_45")
        let files = [exact, longer].flatMap { [DirectoryFile(name: $0.file, size: 10), DirectoryFile(name: $0.id + ".manifest.json", size: 9)] }
        let entries = ListingCatalog.build(files: files)
        XCTAssertEqual(try ListingCatalog.select(SnapshotSelector(kind: .label("migration_45")), from: entries, location: "s3://b").id, exact.id)
        XCTAssertEqual(try ListingCatalog.select(SnapshotSelector(kind: .label("pre_migration_45")), from: entries, location: "s3://b").id, longer.id)
        assertPGSnapError(.failure) { try ListingCatalog.select(SnapshotSelector(kind: .label("45")), from: entries, location: "s3://b") }
    }

    func testPushSelection() throws {
        var dir = CatalogTests.FakeDirectory()
        let a1 = CatalogTests.manifest(database: "a", date: utc(2026, 12, 1))
        let a2 = CatalogTests.manifest(database: "a", date: utc(2026, 12, 2))
        let b1 = CatalogTests.manifest(database: "b", date: utc(2026, 11, 1))
        let broken = CatalogTests.manifest(database: "a", date: utc(2026, 12, 3))
        for m in [a1, a2, b1] { dir.addGood(m) }
        dir.addGood(broken, dumpSize: 10)
        let entries = dir.build()
        XCTAssertEqual(try PushSelection.choose(from: entries, selector: nil, all: false, directory: "d").map(\.id), [a2.id, b1.id])
        XCTAssertEqual(try PushSelection.choose(from: entries, selector: nil, all: true, directory: "d").map(\.id), [a2.id, a1.id, b1.id])
        XCTAssertEqual(try PushSelection.choose(from: entries, selector: SnapshotSelector(kind: .id(a1.id)), all: false, directory: "d").map(\.id), [a1.id])
        assertPGSnapError(.verificationFailed) { try PushSelection.choose(from: entries, selector: SnapshotSelector(kind: .id(broken.id)), all: false, directory: "d") }

        let local = [DirectoryFile(name: a1.id + ".globals.sql", size: 40)]
        var remote: [String: Int64] = [a1.file: 1000, a1.id + ".manifest.json": 900]
        var withGlobals = a1
        XCTAssertTrue(PushSelection.isWhole(a1, localFiles: local, remoteFiles: remote))
        withGlobals.globalsFile = a1.id + ".globals.sql"
        XCTAssertFalse(PushSelection.isWhole(withGlobals, localFiles: local, remoteFiles: remote))
        remote[a1.id + ".globals.sql"] = 40
        XCTAssertTrue(PushSelection.isWhole(withGlobals, localFiles: local, remoteFiles: remote))
        remote[a1.file] = 999
        XCTAssertFalse(PushSelection.isWhole(a1, localFiles: local, remoteFiles: remote))
        remote[a1.file] = 1000
        remote[a1.id + ".manifest.json"] = nil
        XCTAssertFalse(PushSelection.isWhole(a1, localFiles: local, remoteFiles: remote))
    }
}
