import Foundation
import XCTest

@testable import PGSnapCore

final class ManifestTests: XCTestCase {
    static let id = "app_20261122T031500Z_pre_migration_000045"
    static let fileName = id + ".manifest.json"

    /// A manifest as pgsnap writes it, with every optional field present.
    static let golden = #"""
        {
          "compressed_bytes" : 123456,
          "compression" : {
            "algorithm" : "gzip",
            "jobs" : 4,
            "level" : 6
          },
          "created_at" : "2026-11-22T03:15:00.123Z",
          "database" : "app",
          "database_properties" : {
            "acl" : "{=Tc/postgres,postgres=CTc/postgres,app=c/postgres}",
            "collate" : "C.UTF-8",
            "comment" : "main database",
            "connection_limit" : -1,
            "ctype" : "C.UTF-8",
            "encoding" : "UTF8",
            "owner" : "app",
            "settings" : [
              "search_path=app, public",
              "work_mem=64MB"
            ]
          },
          "dump_format" : "plain",
          "duration_seconds" : 12.5,
          "file" : "app_20261122T031500Z_pre_migration_000045.sql.gz",
          "format_version" : 1,
          "globals_file" : "app_20261122T031500Z_pre_migration_000045.globals.sql",
          "host" : "db1.internal",
          "id" : "app_20261122T031500Z_pre_migration_000045",
          "label" : "pre_migration_000045",
          "migration" : {
            "dirty" : false,
            "version" : 45
          },
          "migration_after" : {
            "dirty" : true,
            "version" : 46
          },
          "pg_dump_version" : "17.6",
          "pgsnap_version" : "0.1.0",
          "port" : "5432",
          "restore_test" : {
            "at" : "2026-11-22T03:20:00Z",
            "ok" : true,
            "seconds" : 40.25
          },
          "server_version" : "17.6",
          "sha256" : "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "table_rows" : {
            "public.\"Mixed Case\"" : 0,
            "public.campaign_events" : 98000,
            "public.campaigns" : 1200
          },
          "timings" : {
            "compress_wait_seconds" : 0.75,
            "dump_seconds" : 11.5,
            "fsync_seconds" : 0.25
          },
          "uncompressed_bytes" : 987654,
          "user" : "backup"
        }
        """#

    /// The smallest manifest: only the required fields.
    static let minimal = #"""
        {"format_version":1,"id":"app_20261122T031500Z","database":"app","created_at":"2026-11-22T03:15:00Z",
         "duration_seconds":1,"file":"app_20261122T031500Z.sql.gz","compressed_bytes":0,"uncompressed_bytes":0,
         "sha256":"0000000000000000000000000000000000000000000000000000000000000000",
         "compression":{"algorithm":"gzip","level":6},"dump_format":"plain","pg_dump_version":"17.6",
         "server_version":"17.6","table_rows":{},"pgsnap_version":"0.1.0"}
        """#

    static func sample(createdAt: Date = utc(2026, 11, 22, 3, 15, 0, millisecond: 125)) -> Manifest {
        var m = Manifest(
            id: id, database: "app", label: "pre_migration_000045", createdAt: createdAt, durationSeconds: 12.5,
            file: id + ".sql.gz", compressedBytes: 123_456, uncompressedBytes: 987_654,
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            compression: .init(algorithm: .gzip, level: 6, jobs: 4), pgDumpVersion: "17.6", serverVersion: "17.6",
            host: "db1.internal", port: "5432", user: "backup", migration: .init(version: 45, dirty: false),
            tableRows: ["public.campaigns": 1200, "public.campaign_events": 98_000, "public.\"Mixed Case\"": 0,
                        "public.accountEvents": 3, "\"a\"\"b\".\"c d\"": 7, "public.café": 1],
            databaseProperties: .init(owner: "app", encoding: "UTF8", collate: "C.UTF-8", ctype: "C.UTF-8",
                                      acl: "{=Tc/postgres,postgres=CTc/postgres,app=c/postgres}",
                                      settings: ["search_path=app, public"], comment: "it's \"ours\"", connectionLimit: 10),
            timings: .init(dumpSeconds: 11.5, compressWaitSeconds: 0.75, fsyncSeconds: 0.25), pgsnapVersion: "0.1.0")
        m.globalsFile = id + ".globals.sql"
        m.migrationAfter = .init(version: 46, dirty: true)
        m.restoreTest = .init(at: utc(2026, 11, 22, 3, 20, 0, millisecond: 500), ok: false, seconds: 40.25,
                              detail: "table public.campaigns has 1199 rows")
        return m
    }

    // MARK: round trips

    func testEncodeDecodeRoundTrip() throws {
        let full = ManifestTests.sample()
        var bare = Manifest(
            id: "my_db_20261122T031500Z", database: "my_db", label: nil, createdAt: utc(2026, 11, 22, 3, 15, 0),
            durationSeconds: 0, file: "my_db_20261122T031500Z.sql", compressedBytes: 0, uncompressedBytes: 0,
            sha256: String(repeating: "a", count: 64), compression: .init(algorithm: .none, level: 0),
            pgDumpVersion: "15.14", serverVersion: "15.14", host: nil, port: nil, user: nil, migration: nil, tableRows: [:],
            databaseProperties: nil, timings: nil, pgsnapVersion: "0.1.0")
        bare.durationSeconds = 0.001
        for m in [full, bare] {
            let data = try m.encoded()
            let back = try Manifest.decode(data, fileName: m.id + SnapshotName.manifestSuffix)
            XCTAssertEqual(back, m, String(decoding: data, as: UTF8.self))
        }
    }

    func testEncodedFormUsesSnakeCaseAndKeepsTableNamesVerbatim() throws {
        let data = try ManifestTests.sample().encoded()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["format_version", "created_at", "duration_seconds", "compressed_bytes", "uncompressed_bytes", "sha256",
                    "pg_dump_version", "server_version", "table_rows", "database_properties", "globals_file",
                    "migration_after", "restore_test", "pgsnap_version", "dump_format"] {
            XCTAssertNotNil(object[key], "missing key \(key) in \(object.keys.sorted())")
        }
        XCTAssertNil(object["createdAt"])
        XCTAssertEqual(object["format_version"] as? Int, 1, "plain snapshots stay at format 1 so older pgsnap reads them")
        XCTAssertEqual(object["created_at"] as? String, "2026-11-22T03:15:00.125Z")
        let tables = try XCTUnwrap(object["table_rows"] as? [String: Any])
        XCTAssertEqual(Set(tables.keys), Set(ManifestTests.sample().tableRows.keys), "table names are data, not keys to convert")
        XCTAssertEqual(data.last, UInt8(ascii: "\n"))
    }

    /// One shape for every manifest: each field of `CodingKeys` is written, `null` when unset, so a
    /// field added later is covered without a change here; nested objects and table names are untouched.
    func testEveryFieldIsWrittenAndUnsetOnesAreNull() throws {
        var bare = Manifest(
            id: "my_db_20261122T031500Z", database: "my_db", label: nil, createdAt: utc(2026, 11, 22, 3, 15, 0),
            durationSeconds: 0, file: "my_db_20261122T031500Z.sql", compressedBytes: 0, uncompressedBytes: 0,
            sha256: String(repeating: "a", count: 64), compression: .init(algorithm: .none, level: 0),
            pgDumpVersion: "15.14", serverVersion: "15.14", host: nil, port: nil, user: nil, migration: nil, tableRows: [:],
            databaseProperties: .init(owner: "o", encoding: "UTF8", collate: "C", ctype: "C", acl: nil, settings: [], comment: nil,
                                      connectionLimit: nil),
            timings: nil, pgsnapVersion: "0.1.0")
        bare.durationSeconds = 0.5
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: try bare.encoded()) as? [String: Any])
        XCTAssertEqual(Set(object.keys), Set(Manifest.CodingKeys.allCases.map(\.rawValue)))
        for key in ["label", "host", "migration", "migration_after", "encryption", "files", "globals_file", "timings", "restore_test"] {
            XCTAssertTrue(object[key] is NSNull, "\(key) must be null: \(String(describing: object[key]))")
        }
        let properties = try XCTUnwrap(object["database_properties"] as? [String: Any])
        XCTAssertEqual(Set(properties.keys), Set(DatabaseProperties.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertTrue(properties["acl"] is NSNull && properties["role_settings"] is NSNull, "\(properties)")
        XCTAssertTrue((object["compression"] as? [String: Any])?["jobs"] is NSNull, "nested optionals are null too")
        XCTAssertEqual(object["created_at"] as? String, "2026-11-22T03:15:00.000Z", "dates keep the manifest's own form")

        // The full sample has the same keys, and its table names are written as they are, never converted.
        let full = try XCTUnwrap(try JSONSerialization.jsonObject(with: try ManifestTests.sample().encoded()) as? [String: Any])
        XCTAssertEqual(Set(full.keys), Set(object.keys))
        XCTAssertEqual(Set((full["table_rows"] as? [String: Any] ?? [:]).keys), Set(ManifestTests.sample().tableRows.keys))
        XCTAssertEqual(try Manifest.decode(try bare.encoded(), fileName: bare.id + SnapshotName.manifestSuffix), bare, "nulls read back as unset")
    }

    /// Re-writing a manifest (as restore-test does) must not drift its timestamps.
    func testReencodingIsStable() throws {
        let first = try Manifest.decode(Data(ManifestTests.golden.utf8), fileName: ManifestTests.fileName).encoded()
        let second = try Manifest.decode(first, fileName: ManifestTests.fileName).encoded()
        XCTAssertEqual(String(decoding: second, as: UTF8.self), String(decoding: first, as: UTF8.self))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: first) as? [String: Any])
        XCTAssertEqual(object["created_at"] as? String, "2026-11-22T03:15:00.123Z")
    }

    // MARK: golden fixture

    func testGoldenFixtureDecodes() throws {
        let m = try Manifest.decode(Data(ManifestTests.golden.utf8), fileName: ManifestTests.fileName)
        XCTAssertEqual(m.formatVersion, 1)
        XCTAssertEqual(m.id, ManifestTests.id)
        XCTAssertEqual(m.database, "app")
        XCTAssertEqual(m.label, "pre_migration_000045")
        XCTAssertEqual(m.createdAt.timeIntervalSince1970, utc(2026, 11, 22, 3, 15, 0, millisecond: 123).timeIntervalSince1970,
                       accuracy: 1e-6)
        XCTAssertEqual(m.durationSeconds, 12.5)
        XCTAssertEqual(m.file, "app_20261122T031500Z_pre_migration_000045.sql.gz")
        XCTAssertEqual(m.compressedBytes, 123_456)
        XCTAssertEqual(m.uncompressedBytes, 987_654)
        XCTAssertEqual(m.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(m.compression, .init(algorithm: .gzip, level: 6, jobs: 4))
        XCTAssertEqual(m.dumpFormat, "plain")
        XCTAssertEqual(m.pgDumpVersion, "17.6")
        XCTAssertEqual(m.serverVersion, "17.6")
        XCTAssertEqual(m.host, "db1.internal")
        XCTAssertEqual(m.port, "5432")
        XCTAssertEqual(m.user, "backup")
        XCTAssertEqual(m.migration, .init(version: 45, dirty: false))
        XCTAssertEqual(m.migrationAfter, .init(version: 46, dirty: true))
        XCTAssertEqual(m.tableRows, ["public.\"Mixed Case\"": 0, "public.campaign_events": 98_000, "public.campaigns": 1200])
        XCTAssertEqual(m.databaseProperties, .init(
            owner: "app", encoding: "UTF8", collate: "C.UTF-8", ctype: "C.UTF-8",
            acl: "{=Tc/postgres,postgres=CTc/postgres,app=c/postgres}", settings: ["search_path=app, public", "work_mem=64MB"],
            comment: "main database", connectionLimit: -1))
        XCTAssertEqual(m.globalsFile, "app_20261122T031500Z_pre_migration_000045.globals.sql")
        XCTAssertEqual(m.timings, .init(dumpSeconds: 11.5, compressWaitSeconds: 0.75, fsyncSeconds: 0.25))
        XCTAssertEqual(m.restoreTest, .init(at: utc(2026, 11, 22, 3, 20, 0), ok: true, seconds: 40.25, detail: nil))
        XCTAssertEqual(m.pgsnapVersion, "0.1.0")
    }

    func testMinimalFixtureDecodesWithOptionalFieldsAbsent() throws {
        let m = try Manifest.decode(Data(ManifestTests.minimal.utf8), fileName: "app_20261122T031500Z.manifest.json")
        XCTAssertEqual(m.createdAt, utc(2026, 11, 22, 3, 15, 0))
        XCTAssertNil(m.label)
        XCTAssertNil(m.host)
        XCTAssertNil(m.migration)
        XCTAssertNil(m.databaseProperties)
        XCTAssertNil(m.restoreTest)
        XCTAssertNil(m.compression.jobs)
        XCTAssertEqual(m.tableRows, [:])
    }

    // MARK: rejected manifests

    /// The golden fixture with one change applied.
    static func mutated(_ change: (inout [String: Any]) -> Void) -> Data {
        var object = try! JSONSerialization.jsonObject(with: Data(golden.utf8)) as! [String: Any]
        change(&object)
        return try! JSONSerialization.data(withJSONObject: object)
    }

    func testDecodeErrors() {
        let name = ManifestTests.fileName
        let cases: [(why: String, data: Data, fileName: String, mentions: [String])] = [
            ("not JSON", Data("this is not json".utf8), name, ["not valid JSON"]),
            ("empty file", Data(), name, []),
            ("truncated JSON", Data(ManifestTests.golden.utf8.prefix(200)), name, []),
            ("JSON array", Data("[1,2,3]".utf8), name, []),
            ("missing sha256", ManifestTests.mutated { $0["sha256"] = nil }, name, ["missing", "sha256"]),
            ("missing compressed_bytes", ManifestTests.mutated { $0["compressed_bytes"] = nil }, name, ["missing"]),
            ("missing format_version", ManifestTests.mutated { $0["format_version"] = nil }, name, ["missing"]),
            ("compressed_bytes is a string", ManifestTests.mutated { $0["compressed_bytes"] = "123456" }, name, ["wrong type"]),
            ("table_rows is a list", ManifestTests.mutated { $0["table_rows"] = ["public.campaigns"] }, name, ["wrong type"]),
            ("sha256 is null", ManifestTests.mutated { $0["sha256"] = NSNull() }, name, ["sha256"]),
            ("row count is a string", ManifestTests.mutated { $0["table_rows"] = ["public.campaigns": "many"] }, name,
             ["wrong type"]),
            ("created_at is not a date", ManifestTests.mutated { $0["created_at"] = "yesterday" }, name, []),
            ("unknown compression", ManifestTests.mutated { $0["compression"] = ["algorithm": "lz4", "level": 1] }, name, []),
            ("format_version 99", ManifestTests.mutated { $0["format_version"] = 99 }, name, ["format_version 99"]),
            ("format_version 0", ManifestTests.mutated { $0["format_version"] = 0 }, name, ["format_version 0"]),
            ("file name of another snapshot", Data(ManifestTests.golden.utf8), "app_20261123T000000Z.manifest.json", []),
            ("file name without suffix", Data(ManifestTests.golden.utf8), ManifestTests.id, []),
            ("dump file outside the directory", ManifestTests.mutated { $0["file"] = "../../etc/passwd" }, name, []),
            ("dump file of another snapshot",
             ManifestTests.mutated { $0["file"] = "app_20261123T000000Z_pre_migration_000045.sql.gz" }, name, []),
            ("dump suffix does not match compression", ManifestTests.mutated { $0["file"] = ManifestTests.id + ".sql" }, name, []),
            ("sha256 of 63 hex digits", ManifestTests.mutated { $0["sha256"] = String(repeating: "a", count: 63) }, name, []),
            ("sha256 of 65 hex digits", ManifestTests.mutated { $0["sha256"] = String(repeating: "a", count: 65) }, name, []),
            ("sha256 not hex", ManifestTests.mutated { $0["sha256"] = String(repeating: "g", count: 64) }, name, []),
            ("sha256 empty", ManifestTests.mutated { $0["sha256"] = "" }, name, []),
            ("negative compressed_bytes", ManifestTests.mutated { $0["compressed_bytes"] = -1 }, name, []),
            ("negative uncompressed_bytes", ManifestTests.mutated { $0["uncompressed_bytes"] = -5 }, name, []),
            ("negative row count", ManifestTests.mutated { $0["table_rows"] = ["public.campaigns": -1] }, name, []),
            ("SQL in a table name", ManifestTests.mutated { $0["table_rows"] = ["public.x; DROP DATABASE y": 1] }, name,
             ["malformed table name"]),
            ("comment in a table name", ManifestTests.mutated { $0["table_rows"] = ["public.x --": 1] }, name,
             ["malformed table name"]),
            ("empty table name", ManifestTests.mutated { $0["table_rows"] = ["": 1] }, name, ["malformed table name"]),
            ("larger than 16 MiB", Data(count: Manifest.maxBytes + 1), name, ["\(Manifest.maxBytes + 1) bytes"]),
            ("valid JSON padded past 16 MiB",
             Data(ManifestTests.golden.utf8) + Data(repeating: UInt8(ascii: " "), count: Manifest.maxBytes), name, []),
        ]
        for c in cases {
            let error = assertPGSnapError(.verificationFailed, c.why) { try Manifest.decode(c.data, fileName: c.fileName) }
            guard let error else { continue }
            XCTAssertTrue(error.description.contains("manifest \(c.fileName)"), "\(c.why): message must name the file: \(error)")
            XCTAssertFalse(error.description.contains("\n"), "\(c.why): one line: \(error)")
            for text in c.mentions {
                XCTAssertTrue(error.description.contains(text), "\(c.why): expected '\(text)' in: \(error)")
            }
        }
    }

    /// A person reads the message, then searches the file: the field must be named as the file spells it.
    func testErrorsNameTheFieldAsWrittenInTheFile() {
        let cases: [(why: String, data: Data, field: String)] = [
            ("missing compressed_bytes", ManifestTests.mutated { $0["compressed_bytes"] = nil }, "'compressed_bytes'"),
            ("missing format_version", ManifestTests.mutated { $0["format_version"] = nil }, "'format_version'"),
            ("compressed_bytes is a string", ManifestTests.mutated { $0["compressed_bytes"] = "123456" }, "'compressed_bytes'"),
            ("connection_limit is a string",
             ManifestTests.mutated { object in
                 var p = object["database_properties"] as! [String: Any]
                 p["connection_limit"] = "ten"
                 object["database_properties"] = p
             }, "'database_properties.connection_limit'"),
        ]
        for c in cases {
            let error = assertPGSnapError(.verificationFailed, c.why) { try Manifest.decode(c.data, fileName: ManifestTests.fileName) }
            XCTAssertTrue(error?.description.contains(c.field) ?? true, "\(c.why): expected \(c.field) in: \(String(describing: error))")
        }
    }

    /// Only the 64 ASCII hex digits that a SHA-256 is printed as; lookalikes are a tampered or broken manifest.
    func testSha256MustBeASCIIHex() {
        let lookalikes: [(why: String, sha: String)] = [
            ("fullwidth digits", String(repeating: "\u{FF10}", count: 64)),
            ("fullwidth letters", String(repeating: "\u{FF41}", count: 64)),
        ]
        for c in lookalikes {
            let data = ManifestTests.mutated { $0["sha256"] = c.sha }
            assertPGSnapError(.verificationFailed, c.why) { try Manifest.decode(data, fileName: ManifestTests.fileName) }
        }
    }

    func testMaliciousTableNameIsShownOnOneLine() {
        let data = ManifestTests.mutated { $0["table_rows"] = ["x\n; DROP DATABASE y": 1] }
        let error = assertPGSnapError(.verificationFailed) { try Manifest.decode(data, fileName: ManifestTests.fileName) }
        XCTAssertEqual(error?.description,
                       "manifest \(ManifestTests.fileName) has a malformed table name 'x ; DROP DATABASE y'")
    }

    func testExactly16MiBIsNotRejectedForSize() {
        // At the limit the size check passes; the padding is plain JSON whitespace.
        var data = Data(ManifestTests.golden.utf8)
        data.append(Data(repeating: UInt8(ascii: " "), count: Manifest.maxBytes - data.count))
        XCTAssertEqual(data.count, Manifest.maxBytes)
        XCTAssertNoThrow(try Manifest.decode(data, fileName: ManifestTests.fileName))
    }
}
