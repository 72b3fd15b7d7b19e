import Foundation
import XCTest

@testable import PGSnapCore

final class SnapshotNameTests: XCTestCase {
    // MARK: labels

    func testValidLabelsAreAccepted() {
        let valid = [
            "pre_migration_000045",
            "a",
            String(repeating: "x", count: 64),
            "v1.2.3",
            "before-deploy",
            "A_Z-0.9",
        ]
        for label in valid {
            XCTAssertNoThrow(try SnapshotName.validateLabel(label), "label \(label.debugDescription)")
        }
    }

    func testInvalidLabelsAreUsageErrors() {
        let invalid: [(why: String, label: String)] = [
            ("empty", ""),
            ("65 characters", String(repeating: "x", count: 65)),
            ("path traversal", "../x"),
            ("slash", "a/b"),
            ("space", "a b"),
            ("single quote", "it's"),
            ("double quote", "say\"hi"),
            ("command substitution", "$(x)"),
            ("backtick", "`x`"),
            ("NUL", "a\u{0}b"),
            ("newline", "a\nb"),
            ("tab", "a\tb"),
            ("leading dash", "-rf"),
            ("leading dot", ".hidden"),
            ("dot dot", ".."),
            ("dot dot inside", "a..b"),
            ("unicode letter", "café"),
            ("unicode digit", "٣"),
            ("emoji", "🙂"),
            ("percent", "50%"),
        ]
        for (why, label) in invalid {
            let error = assertPGSnapError(.usage, why) { try SnapshotName.validateLabel(label) }
            if let error {
                XCTAssertTrue(error.what.hasPrefix("invalid label"), "\(why): \(error)")
                XCTAssertFalse(error.description.contains("\n"), "\(why): the message must stay on one line")
            }
        }
    }

    // MARK: ids

    /// Database names that must survive id formation and parsing, each with and without label and attempt.
    static let databases = [
        "app",
        "my_app_db",
        "__",
        "My Database",
        "café",
        "数据库",
        "-leading-dash",
        ".leading-dot",
        "a/b/../c",
        "release..2",
        "50%_off",
        "x-2",
        "db 2026",
    ]

    func testIDFormationParsesBackToDatabaseAndTime() {
        let date = utc(2026, 11, 22, 3, 15, 0)
        for database in SnapshotNameTests.databases {
            for label in [nil, "pre_migration_000045", "nightly", "a-2"] as [String?] {
                for attempt in [1, 2, 17] {
                    let id = SnapshotName.id(database: database, date: date, label: label, attempt: attempt)
                    let context = "database \(database.debugDescription), label \(label ?? "nil"), attempt \(attempt): \(id)"
                    guard let parsed = SnapshotName.parse(id: id) else {
                        XCTFail("parse returned nil for \(context)")
                        continue
                    }
                    XCTAssertEqual(parsed.id, id, context)
                    XCTAssertEqual(parsed.encodedDatabase, SnapshotName.encodeDatabase(database), context)
                    XCTAssertEqual(parsed.encodedDatabase.removingPercentEncoding, database, context)
                    XCTAssertEqual(parsed.date, date, context)
                }
            }
        }
    }

    /// `pgsnap list` shows these ids; `pgsnap verify <id>` and `restore <id>` must accept them back.
    func testGeneratedIDsAreAcceptedOnTheCommandLine() {
        let date = utc(2026, 11, 22, 3, 15, 0)
        var rejected: [String] = []
        for database in SnapshotNameTests.databases {
            for label in [nil, "pre_migration_000045"] as [String?] {
                for attempt in [1, 2] {
                    let id = SnapshotName.id(database: database, date: date, label: label, attempt: attempt)
                    if (try? SnapshotName.validateID(id)) == nil { rejected.append(id) }
                }
            }
        }
        XCTAssertEqual(rejected, [], "ids that pgsnap generates but validateID rejects")
    }

    func testIDShape() {
        let date = utc(2026, 11, 22, 3, 15, 0)
        XCTAssertEqual(SnapshotName.id(database: "app", date: date, label: nil), "app_20261122T031500Z")
        XCTAssertEqual(SnapshotName.id(database: "app", date: date, label: nil, attempt: 2), "app_20261122T031500Z-2")
        XCTAssertEqual(SnapshotName.id(database: "app", date: date, label: "pre_migration_000045", attempt: 2),
                       "app_20261122T031500Z-2_pre_migration_000045")
        XCTAssertEqual(SnapshotName.dumpFile(id: "app_20261122T031500Z", compression: .gzip), "app_20261122T031500Z.sql.gz")
    }

    /// A database restored under a snapshot's name (a common habit) must not be mistaken for the
    /// original database at the original time when its own leftovers are parsed.
    func testParseOfDatabaseNamedLikeASnapshotID() {
        let original = utc(2026, 11, 22, 3, 15, 0)
        let database = SnapshotName.id(database: "app", date: original, label: nil)  // "app_20261122T031500Z"
        let date = utc(2026, 11, 23, 4, 0, 0)
        let id = SnapshotName.id(database: database, date: date, label: nil)
        let parsed = SnapshotName.parse(id: id)
        XCTAssertEqual(parsed?.encodedDatabase, SnapshotName.encodeDatabase(database), id)
        XCTAssertEqual(parsed?.date, date, id)
    }

    /// A label that reads as a snapshot time would make the id split two ways: refused for new
    /// snapshots (still accepted when reading one), and such ids are known to be ambiguous.
    func testLabelsThatReadAsASnapshotTimeAreRefusedForNewSnapshots() {
        for bad in ["20261206T050000Z", "20261206T050000Z-2", "before_20261206T050000Z", "20261206T050000Z_x"] {
            XCTAssertNoThrow(try SnapshotName.validateLabel(bad), bad)
            XCTAssertThrowsError(try SnapshotName.validateNewLabel(bad), bad)
        }
        for good in ["pre_migration_000045", "before_2026-12-06T0500", "20261206T0500", "x20261206T050000Z"] {
            XCTAssertNoThrow(try SnapshotName.validateNewLabel(good), good)
        }
        // `<id>_pre.globals` + `.sql` would be the roles file of `<id>_pre`.
        for bad in ["pre.globals", "x_y.globals"] {
            XCTAssertNoThrow(try SnapshotName.validateLabel(bad), bad)
            XCTAssertThrowsError(try SnapshotName.validateNewLabel(bad), bad) { e in
                XCTAssertTrue("\(e)".contains("'.globals'"), "\(e)")
            }
        }
        for good in ["pre_globals", "globals", "pre.globals.x", "v1.2"] {
            XCTAssertNoThrow(try SnapshotName.validateNewLabel(good), good)
        }
        let date = utc(2026, 12, 7, 5, 0, 0)
        let ambiguous = SnapshotName.id(database: "app", date: date, label: "20261206T050000Z")
        XCTAssertTrue(SnapshotName.isAmbiguous(id: ambiguous))
        XCTAssertEqual(SnapshotName.parse(id: ambiguous)?.encodedDatabase, "app_20261207T050000Z", "the listing alone misreads it")
        XCTAssertTrue(SnapshotName.isAmbiguous(id: SnapshotName.id(database: "app_20261122T031500Z", date: date, label: nil)))
        XCTAssertFalse(SnapshotName.isAmbiguous(id: SnapshotName.id(database: "app", date: date, label: "pre_migration_45")))
        XCTAssertEqual(SnapshotName.parse(id: SnapshotName.id(database: "app", date: date, label: "pre_migration_45"))?.label, "pre_migration_45")
        XCTAssertNil(SnapshotName.parse(id: SnapshotName.id(database: "app", date: date, label: nil))?.label)
    }

    func testEncodedNamesUseOnlySafeCharactersAndNeverStartWithDashOrDot() {
        var names = SnapshotNameTests.databases
        names += ["", "-", ".", "..", "../../etc/passwd", "a\u{0}b", "line\nbreak", "tab\t", "$(rm -rf ~)", "`x`", "'q'", "\"q\"",
                  "%41", "🙂", "e\u{301}", String(repeating: "é", count: 70)]
        let safe = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%-".unicodeScalars)
        for name in names {
            let encoded = SnapshotName.encodeDatabase(name)
            XCTAssertFalse(encoded.isEmpty, name.debugDescription)
            XCTAssertTrue(encoded.unicodeScalars.allSatisfy { safe.contains($0) }, "\(name.debugDescription) -> \(encoded)")
            XCTAssertFalse(encoded.hasPrefix("-"), "\(name.debugDescription) -> \(encoded)")
            XCTAssertFalse(encoded.hasPrefix("."), "\(name.debugDescription) -> \(encoded)")
            XCTAssertFalse(encoded.contains("/"), "\(name.debugDescription) -> \(encoded)")
            if !name.isEmpty {
                XCTAssertEqual(encoded.removingPercentEncoding, name, "encoding must be reversible: \(encoded)")
            }
        }
    }

    func testDistinctDatabasesGetDistinctEncodings() {
        let names = ["a b", "a%20b", "a_b", "a-b", "-a", "%2Da", ".a", "%2Ea", "é", "%C3%A9"]
        let encoded = names.map(SnapshotName.encodeDatabase)
        XCTAssertEqual(Set(encoded).count, names.count, "\(zip(names, encoded).map { "\($0) -> \($1)" })")
    }

    func testIDsOfOneDatabaseSortByTime() {
        let dates = [
            utc(2026, 1, 1, 0, 0, 0),
            utc(2026, 1, 1, 0, 0, 1),
            utc(2026, 1, 1, 0, 1, 0),
            utc(2026, 1, 1, 9, 59, 59),
            utc(2026, 1, 1, 10, 0, 0),
            utc(2026, 1, 2, 0, 0, 0),
            utc(2026, 9, 30, 23, 59, 59),
            utc(2026, 10, 1, 0, 0, 0),
            utc(2027, 1, 1, 0, 0, 0),
        ]
        for database in ["app", "my_db", "café", "-x"] {
            for label in [nil, "zzz", "AAA"] as [String?] {
                // Labels alternate so that a label can never decide the order.
                let ids = dates.enumerated().map { i, d in
                    SnapshotName.id(database: database, date: d, label: i.isMultiple(of: 2) ? label : nil)
                }
                XCTAssertEqual(ids.sorted(), ids, "database \(database), label \(label ?? "nil")")
            }
        }
    }

    func testParseRejectsStemsThatAreNotIDs() {
        for stem in ["app", "", "app_", "app_2026", "app_20261322T031500Z", "app_20261122T031500", "app_20261122-031500Z",
                     "app_20261122T031500Z-x", "notes", "_20261122"] {
            XCTAssertNil(SnapshotName.parse(id: stem), stem)
        }
    }

    func testValidateIDAcceptsIDsAndRejectsPaths() {
        for id in ["app_20261122T031500Z", "app_20261122T031500Z-2_pre_migration_000045", "caf%C3%A9_20261122T031500Z",
                   "%2Dx_20261122T031500Z"] {
            XCTAssertNoThrow(try SnapshotName.validateID(id), id)
        }
        let invalid: [(why: String, id: String)] = [
            ("empty", ""),
            ("absolute path", "/etc/passwd"),
            ("relative path", "backups/app_20261122T031500Z"),
            ("parent", ".."),
            ("parent path", "../app_20261122T031500Z"),
            // "app..x" is accepted: a database named "release..2" yields such an id, and without a "/" it cannot leave the directory.
            ("leading dash", "-rf"),
            ("space", "app 20261122T031500Z"),
            ("NUL", "app\u{0}"),
            ("newline", "app\n"),
            ("unicode", "café_20261122T031500Z"),
            ("too long", String(repeating: "a", count: 513)),
        ]
        for (why, id) in invalid {
            let error = assertPGSnapError(.usage, why) { try SnapshotName.validateID(id) }
            if let error {
                XCTAssertTrue(error.description.contains("Run 'pgsnap list'"), "\(why): \(error)")
                XCTAssertFalse(error.description.contains("\n"), "\(why): the message must stay on one line")
            }
        }
    }

    func testTimestampRoundTrip() {
        let date = utc(2026, 11, 22, 3, 15, 9)
        XCTAssertEqual(SnapshotName.timestamp(date), "20261122T031509Z")
        XCTAssertEqual(SnapshotName.parseTimestamp("20261122T031509Z"), date)
        // Sub-second parts are dropped, never rounded up into the next second.
        XCTAssertEqual(SnapshotName.timestamp(date.addingTimeInterval(0.999)), "20261122T031509Z")
    }
}
