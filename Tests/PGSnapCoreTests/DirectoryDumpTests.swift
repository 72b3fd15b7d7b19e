import Foundation
import XCTest

@testable import PGSnapCore

/// The pure parts of the directory format: row counting, the table of contents, table
/// selection, the manifest's file list, and how catalogs fold `<id>.dir` into one snapshot.
final class DirectoryDumpTests: XCTestCase {
    // MARK: - Row counting

    func count(_ chunks: [String]) -> Int64? {
        var c = CopyDataCounter()
        for chunk in chunks { Array(chunk.utf8).withUnsafeBytes { c.consume($0) } }
        return c.rows
    }

    func testRowsAreCountedUpToPgDumpsEndMarker() {
        // pg_dump 15 ends a data file with "\.", then two empty lines.
        XCTAssertEqual(count(["1\ta\n2\tb\n\\.\n\n\n"]), 2)
        XCTAssertEqual(count(["\\.\n\n\n"]), 0, "an empty table")
        XCTAssertEqual(count(["\\.\n\n"]), 0, "one empty line after the marker is accepted too")
        // Split anywhere, even inside the marker.
        XCTAssertEqual(count(["1\ta\n2", "\tb\n\\", ".\n", "\n\n"]), 2)
        // A value with an escaped newline and an escaped backslash-dot is one row.
        XCTAssertEqual(count(["a\\nb\n\\\\.\n\\.\n\n\n"]), 2)
    }

    func testDataWithoutTheEndMarkerHasNoRowCount() {
        XCTAssertNil(count(["1\ta\n2\tb\n"]), "cut off before the marker")
        XCTAssertNil(count(["1\ta\n2\tb\n\\."]), "marker without its newline")
        XCTAssertNil(count(["1\ta\n2\tb\\.\n\n"]), "marker not at the start of a line")
        XCTAssertNil(count([""]), "an empty file")
        XCTAssertNil(count(["x\\.\n\n"]))
    }

    // MARK: - Table of contents

    func testTOCLinesSplitByKnownKinds() throws {
        let text = """
            ;
            ; Archive created at 2026-12-01 23:26:38 UTC
            ;
            214; 1259 16384 TABLE public t postgres
            3349; 0 16384 TABLE DATA public t postgres
            3350; 0 16391 TABLE DATA public we ird postgres
            3205; 2606 16390 CONSTRAINT public t t_pkey postgres
            3351; 0 16394 MATERIALIZED VIEW DATA public mv postgres
            3360; 2606 16400 FK CONSTRAINT public orders orders_customer_fkey postgres
            """
        let entries = TOCEntry.parseList(text)
        XCTAssertEqual(entries.map(\.dumpID), [214, 3349, 3350, 3205, 3351, 3360])
        XCTAssertEqual(entries.map(\.desc), ["TABLE", "TABLE DATA", "TABLE DATA", "CONSTRAINT", "MATERIALIZED VIEW DATA", "FK CONSTRAINT"])
        XCTAssertEqual(entries[2].oid, 16391)
        XCTAssertEqual(entries[2].rest, "public we ird postgres")
        XCTAssertNil(TOCEntry.parse("; comment"))
        XCTAssertNil(TOCEntry.parse("x; 0 1 TABLE public t postgres"))
        XCTAssertNil(TOCEntry.parse("12; 0 TABLE public t postgres"), "an oid is missing")
    }

    func testTableSelectionKeepsTheTableAndWhatItNeedsOnly() {
        let entries = TOCEntry.parseList("""
            10; 2615 2200 SCHEMA - app postgres
            11; 1247 16500 TYPE app mood postgres
            12; 1255 16501 FUNCTION app f() postgres
            13; 1259 16384 TABLE app orders postgres
            14; 1259 16390 TABLE app customers postgres
            15; 1259 16395 SEQUENCE app orders_id_seq postgres
            16; 0 16384 TABLE DATA app orders postgres
            17; 0 16390 TABLE DATA app customers postgres
            18; 2604 16600 DEFAULT app orders id postgres
            19; 2606 16601 CONSTRAINT app orders orders_pkey postgres
            20; 2606 16602 CONSTRAINT app customers customers_pkey postgres
            21; 2606 16603 FK CONSTRAINT app orders orders_customer_fkey postgres
            22; 1259 16604 INDEX app orders_created_idx postgres
            23; 1259 16605 VIEW app recent_orders postgres
            24; 0 0 COMMENT app TABLE orders postgres
            25; 0 0 ACL app TABLE customers postgres
            26; 2620 16606 TRIGGER app orders audit postgres
            27; 0 16395 SEQUENCE SET app orders_id_seq postgres
            28; 2604 16607 DEFAULT app orders_archive id postgres
            """)
        let orders = TableSelection.Table(schema: "app", name: "orders", qualified: "app.orders", dataDumpID: 16)
        let kept = Set(TableSelection.useList(entries, tables: [orders]).compactMap { TOCEntry.parse($0)?.dumpID })
        XCTAssertEqual(kept, [10, 11, 12, 13, 15, 16, 18, 19, 24, 26, 27])
        // Not: the other table, its data, key and grant; the foreign key; a plain index; a view;
        // a default of a table whose name only starts like the chosen one's.
        XCTAssertTrue(kept.isDisjoint(with: [14, 17, 20, 21, 22, 23, 25, 28]))
    }

    /// Comments and grants name a table as SQL would: quoted when its name needs it.
    func testTableSelectionKeepsCommentsAndGrantsOfQuotedNames() {
        let entries = TOCEntry.parseList("""
            13; 1259 16384 TABLE Ledger Entry postgres
            16; 0 16384 TABLE DATA Ledger Entry postgres
            24; 0 0 COMMENT Ledger TABLE "Entry" postgres
            25; 0 0 COMMENT Ledger COLUMN "Entry"."Note" postgres
            26; 0 0 ACL Ledger TABLE "Entry" postgres
            27; 0 0 ACL Ledger COLUMN "Entry"."Note" postgres
            28; 0 0 ACL Ledger TABLE "Entry2" postgres
            29; 1259 16390 TABLE Ledger select postgres
            30; 0 16390 TABLE DATA Ledger select postgres
            31; 0 0 COMMENT Ledger TABLE "select" postgres
            32; 0 0 ACL Ledger TABLE "x""y" postgres
            """)
        let entry = TableSelection.Table(schema: "Ledger", name: "Entry", qualified: "\"Ledger\".\"Entry\"", dataDumpID: 16)
        let keyword = TableSelection.Table(schema: "Ledger", name: "select", qualified: "\"Ledger\".\"select\"", dataDumpID: 30)
        let kept = Set(TableSelection.useList(entries, tables: [entry, keyword]).compactMap { TOCEntry.parse($0)?.dumpID })
        XCTAssertEqual(kept, [13, 16, 24, 25, 26, 27, 29, 30, 31])
        let quote = TableSelection.Table(schema: "Ledger", name: "x\"y", qualified: "\"Ledger\".\"x\"\"y\"", dataDumpID: 99)
        XCTAssertTrue(Set(TableSelection.useList(entries, tables: [quote]).compactMap { TOCEntry.parse($0)?.dumpID }).contains(32))
    }

    /// A table's own sequences (serial or identity) go with it and not with other tables, unless a
    /// chosen table's default uses a serial one; free-standing ones always go. The list as
    /// `pg_restore --list --verbose` printed it for such a dump.
    func testTableSelectionTakesOnlyTheChosenTablesOwnSequences() {
        let text = """
            218; 1259 91124 SEQUENCE public free_seq postgres
            217; 1259 91118 TABLE public orders postgres
            216; 1259 91117 SEQUENCE public orders_id_seq postgres
            ;\tdepends on: 217
            3361; 0 0 SEQUENCE OWNED BY public orders_id_seq postgres
            ;\tdepends on: 216
            215; 1259 91110 TABLE public products postgres
            214; 1259 91109 SEQUENCE public products_id_seq postgres
            ;\tdepends on: 215
            3353; 0 91118 TABLE DATA public orders postgres
            ;\tdepends on: 217
            3351; 0 91110 TABLE DATA public products postgres
            ;\tdepends on: 215
            3362; 0 0 SEQUENCE SET public free_seq postgres
            ;\tdepends on: 218
            3363; 0 0 SEQUENCE SET public orders_id_seq postgres
            ;\tdepends on: 216
            3364; 0 0 SEQUENCE SET public products_id_seq postgres
            ;\tdepends on: 214
            219; 1259 91125 TABLE public b postgres
            ;\tdepends on: 216
            3355; 0 91125 TABLE DATA public b postgres
            ;\tdepends on: 219
            """
        let entries = TOCEntry.parseList(text), dependencies = DirectoryLoadPlan.dependencies(inVerboseList: text)
        func kept(_ table: TableSelection.Table) -> Set<Int> {
            Set(TableSelection.useList(entries, tables: [table], dependencies: dependencies).compactMap { TOCEntry.parse($0)?.dumpID })
        }
        let orders = TableSelection.Table(schema: "public", name: "orders", qualified: "public.orders", dataDumpID: 3353)
        let products = TableSelection.Table(schema: "public", name: "products", qualified: "public.products", dataDumpID: 3351)
        XCTAssertEqual(kept(orders), [218, 217, 216, 3361, 3353, 3362, 3363], "not products' identity sequence or its value")
        XCTAssertEqual(kept(products), [218, 215, 214, 3351, 3362, 3364], "not orders' serial sequence, its owner or its value")
        // b's column default is nextval('orders_id_seq'): that serial sequence and its value come
        // along (CREATE SEQUENCE stands alone), not its OWNED BY orders.id.
        let b = TableSelection.Table(schema: "public", name: "b", qualified: "public.b", dataDumpID: 3355)
        XCTAssertEqual(kept(b), [218, 216, 219, 3355, 3362, 3363])
    }

    func testRequestedTablesResolveAgainstTheManifest() throws {
        let files = [
            StoredFile(name: "3.dat.gz", bytes: 1, sha256: hex, table: "app.orders", rows: 2),
            StoredFile(name: "4.dat.gz", bytes: 1, sha256: hex, table: "public.orders", rows: 2),
            StoredFile(name: "5.dat.gz", bytes: 1, sha256: hex, table: "public.\"Mixed Case\"", rows: 0),
            StoredFile(name: "toc.dat", bytes: 1, sha256: hex),
        ]
        let t = try TableSelection.resolve(["app.orders", "public.\"Mixed Case\"", "APP.ORDERS"], files: files).get()
        XCTAssertEqual(t.map(\.qualified), ["app.orders", "public.\"Mixed Case\""], "unquoted names fold to lower case; duplicates drop")
        XCTAssertEqual(t.map(\.dataDumpID), [3, 5])
        guard case .failure(let ambiguous) = TableSelection.resolve(["orders"], files: files) else { return XCTFail("ambiguous name accepted") }
        XCTAssertEqual(ambiguous.status, .usage)
        guard case .failure(let missing) = TableSelection.resolve(["app.nope"], files: files) else { return XCTFail("missing table accepted") }
        XCTAssertEqual(missing.status, .failure)
        XCTAssertTrue(missing.what.contains("app.nope"))
        guard case .failure(let bad) = TableSelection.resolve(["a.b.c.d"], files: files) else { return XCTFail("bad name accepted") }
        XCTAssertEqual(bad.status, .usage)
    }

    func testQualifiedNameComponents() {
        XCTAssertEqual(QualifiedName.components("public.t"), ["public", "t"])
        XCTAssertEqual(QualifiedName.components("Public.T"), ["public", "t"])
        XCTAssertEqual(QualifiedName.components("\"a.b\".\"c\"\"d\""), ["a.b", "c\"d"])
        XCTAssertNil(QualifiedName.components("a..b"))
        XCTAssertNil(QualifiedName.components("\"unterminated"))
    }

    // MARK: - Manifest

    let hex = String(repeating: "a", count: 64)

    func directoryManifest(files: [StoredFile], rows: [String: Int64]? = nil) -> Manifest {
        let id = "app_20261201T000000Z"
        var m = Manifest(
            id: id, database: "app", label: nil, createdAt: Date(timeIntervalSince1970: 1_796_083_200), durationSeconds: 1,
            file: id + ".dir", compressedBytes: files.reduce(0) { $0 + $1.bytes }, uncompressedBytes: 100, sha256: hex,
            compression: .init(algorithm: .gzip, level: 6, jobs: 2), pgDumpVersion: "15.20", serverVersion: "15.18",
            host: nil, port: nil, user: nil, migration: nil,
            tableRows: rows ?? Dictionary(uniqueKeysWithValues: files.compactMap { f in f.table.map { ($0, f.rows ?? 0) } }),
            databaseProperties: nil, timings: nil, pgsnapVersion: "0.1.0")
        m.formatVersion = 2
        m.dumpFormat = "directory"
        m.files = files
        return m
    }

    func roundTrip(_ m: Manifest) throws -> Manifest {
        try Manifest.decode(try m.encoded(), fileName: m.id + SnapshotName.manifestSuffix)
    }

    func testDirectoryManifestRoundTrips() throws {
        let m = directoryManifest(files: [
            StoredFile(name: "toc.dat", bytes: 10, sha256: hex),
            StoredFile(name: "3.dat.gz", bytes: 20, sha256: hex, table: "public.t", rows: 7),
        ])
        let back = try roundTrip(m)
        XCTAssertEqual(back, m)
        XCTAssertEqual(back.format, .directory)
        // Summaries (prune, check) keep the format but not the heavy list.
        let summary = try Manifest.decode(try m.encoded(), fileName: m.id + SnapshotName.manifestSuffix, summary: true)
        XCTAssertEqual(summary.files, [])
    }

    func testDirectoryManifestsThatDoNotAddUpAreRefused() throws {
        let toc = StoredFile(name: "toc.dat", bytes: 10, sha256: hex)
        let data = StoredFile(name: "3.dat.gz", bytes: 20, sha256: hex, table: "public.t", rows: 7)
        var cases: [(String, Manifest)] = []
        var m = directoryManifest(files: [toc, data])
        m.compressedBytes += 1
        cases.append(("sizes", m))
        cases.append(("rows", directoryManifest(files: [toc, data], rows: ["public.t": 8])))
        cases.append(("no toc", directoryManifest(files: [data])))
        cases.append(("path", directoryManifest(files: [toc, StoredFile(name: "../x", bytes: 0, sha256: hex)])))
        cases.append(("repeated", directoryManifest(files: [toc, toc])))
        cases.append(("bad checksum", directoryManifest(files: [toc, StoredFile(name: "x", bytes: 0, sha256: "zz")])))
        m = directoryManifest(files: [toc, data])
        m.formatVersion = 1
        cases.append(("format 1", m))
        m = directoryManifest(files: [toc, data])
        m.file = m.id + ".sql.gz"
        cases.append(("file", m))
        m = directoryManifest(files: [toc, data])
        m.encryption = Encryption(recipients: [try AgeRecipient.parse("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")])
        cases.append(("encrypted without .age names", m))
        m = directoryManifest(files: [toc, data])
        m.dumpFormat = "tar"
        cases.append(("unknown format", m))
        for (what, bad) in cases {
            XCTAssertThrowsError(try roundTrip(bad), what) { error in
                XCTAssertEqual((error as? PGSnapError)?.status, .verificationFailed, what)
            }
        }
    }

    // MARK: - Catalogs

    func testLocalCatalogSeesADirectorySnapshotAsOne() throws {
        let m = directoryManifest(files: [StoredFile(name: "toc.dat", bytes: 10, sha256: hex)])
        let good = Catalog.build(files: [DirectoryFile(name: m.file, size: 10), DirectoryFile(name: m.id + SnapshotName.manifestSuffix, size: 900)],
                                 loadManifest: { _ in m })
        XCTAssertEqual(good.map(\.status), [.good])
        XCTAssertEqual(good.first?.files, [m.file, m.id + SnapshotName.manifestSuffix])
        let short = Catalog.build(files: [DirectoryFile(name: m.file, size: 9), DirectoryFile(name: m.id + SnapshotName.manifestSuffix, size: 900)],
                                  loadManifest: { _ in m })
        XCTAssertEqual(short.map(\.status), [.damaged], "a file deleted or cut short shows in the directory's total")
        let partial = Catalog.build(files: [DirectoryFile(name: m.file + SnapshotName.partialSuffix, size: 5)], loadManifest: { _ in m })
        XCTAssertEqual(partial.map(\.status), [.partial])
        let orphan = Catalog.build(files: [DirectoryFile(name: m.file, size: 10)], loadManifest: { _ in m })
        XCTAssertEqual(orphan.map(\.status), [.dumpWithoutManifest])
    }

    func testRemoteListingFoldsDirectoryObjects() throws {
        let remote = try RemoteLocation(parsing: "s3://bucket/nightly")
        XCTAssertEqual(remote.name(ofKey: "nightly/app_20261201T000000Z.dir/toc.dat"), "app_20261201T000000Z.dir/toc.dat")
        XCTAssertNil(remote.name(ofKey: "nightly/other/toc.dat"), "only <id>.dir folders are ours")
        XCTAssertNil(remote.name(ofKey: "nightly/app_20261201T000000Z.dir/a/b"))
        let id = "app_20261201T000000Z"
        let files = [DirectoryFile(name: id + ".dir/toc.dat", size: 10), DirectoryFile(name: id + ".dir/3.dat.gz", size: 20),
                     DirectoryFile(name: id + ".manifest.json", size: 900)]
        let entries = ListingCatalog.build(files: files)
        XCTAssertEqual(entries.map(\.status), [.good])
        XCTAssertEqual(entries.first?.files.count, 3, "every object is listed, so prune deletes every one")
        XCTAssertEqual(ListingCatalog.build(files: Array(files.prefix(2))).map(\.status), [.dumpWithoutManifest])
        let folded = ListingCatalog.folded(Dictionary(uniqueKeysWithValues: files.map { ($0.name, $0.size) }))
        XCTAssertEqual(folded[id + ".dir"], 30)
        XCTAssertEqual(folded[id + ".dir/toc.dat"], 10)
    }
}
