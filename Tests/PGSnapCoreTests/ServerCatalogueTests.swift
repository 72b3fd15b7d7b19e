import PGSnapCore
import XCTest

/// The catalogue differences between majors, one row per major.
final class ServerCatalogueTests: XCTestCase {
    let quote: (String) -> String = { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }

    func props(_ provider: String?, icu: String? = nil, rules: String? = nil, builtin: String? = nil) -> DatabaseProperties {
        DatabaseProperties(owner: "o", encoding: "UTF8", collate: "C", ctype: "C", acl: nil, settings: [], comment: nil, connectionLimit: nil,
                           localeProvider: provider, iculocale: icu, icuRules: rules, builtinLocale: builtin)
    }

    func testMajorFromVersionNumberAndText() {
        XCTAssertEqual(ServerCatalogue(versionNumber: 140_015).major, 14)
        XCTAssertEqual(ServerCatalogue(versionNumber: 150_018).major, 15)
        XCTAssertEqual(ServerCatalogue(versionNumber: 170_010).major, 17)
        XCTAssertEqual(ServerCatalogue(versionNumber: 180_006).major, 18)
        for (text, major) in [("15.18 (Debian 15.18-0+deb12u1)", 15), ("17.10", 17), ("18beta1", 18), ("9.6.24", 9), ("16.2", 16)] {
            XCTAssertEqual(ServerCatalogue.major(of: text), major, text)
        }
        XCTAssertNil(ServerCatalogue.major(of: "?"))
        XCTAssertNil(ServerCatalogue.major(of: ""))
    }

    /// Each major reads the locale columns it has: 14 none, 15 daticulocale, 16 plus daticurules, 17+ datlocale.
    func testPropertiesQueryPerMajor() {
        let expected: [(Int, [String], [String])] = [
            (140_000, ["'c'", "NULL::text, NULL::text"], ["datlocprovider", "daticulocale", "datlocale", "daticurules"]),
            (150_000, ["d.datlocprovider::text, d.daticulocale, NULL::text"], ["datlocale", "daticurules"]),
            (160_000, ["d.datlocprovider::text, d.daticulocale, d.daticurules"], ["datlocale"]),
            (170_000, ["d.datlocprovider::text, d.datlocale, d.daticurules"], ["daticulocale"]),
            (180_000, ["d.datlocprovider::text, d.datlocale, d.daticurules"], ["daticulocale"]),
        ]
        for (version, present, absent) in expected {
            let q = ServerCatalogue(versionNumber: version).databasePropertiesQuery
            for p in present { XCTAssertTrue(q.contains(p), "\(version): \(p) missing from \(q)") }
            for a in absent { XCTAssertFalse(q.contains(a), "\(version): \(a) must not be read") }
        }
    }

    /// What CREATE DATABASE gets for each provider on each major; what a major lacks is refused.
    func testLocaleClausePerMajorAndProvider() throws {
        struct Row { let major: Int; let p: DatabaseProperties; let clause: String? }
        let rows: [Row] = [
            Row(major: 14, p: props(nil), clause: ""),
            Row(major: 14, p: props("c"), clause: ""),
            Row(major: 14, p: props("i", icu: "en-US"), clause: nil),
            Row(major: 15, p: props("c"), clause: " LOCALE_PROVIDER libc"),
            Row(major: 15, p: props(nil), clause: " LOCALE_PROVIDER libc"),
            Row(major: 15, p: props("i", icu: "en-US"), clause: " LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"),
            Row(major: 15, p: props("i", icu: "en-US", rules: "&a < b"), clause: nil),
            Row(major: 16, p: props("i", icu: "und", rules: "&a < b"), clause: " LOCALE_PROVIDER icu ICU_LOCALE 'und' ICU_RULES '&a < b'"),
            Row(major: 16, p: props("b", builtin: "C"), clause: nil),
            Row(major: 17, p: props("b", builtin: "C.UTF-8"), clause: " LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"),
            Row(major: 17, p: props("i", icu: "de-DE"), clause: " LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'"),
            Row(major: 18, p: props("b", builtin: "PG_UNICODE_FAST"), clause: " LOCALE_PROVIDER builtin BUILTIN_LOCALE 'PG_UNICODE_FAST'"),
            Row(major: 18, p: props("c"), clause: " LOCALE_PROVIDER libc"),
        ]
        for row in rows {
            let catalogue = ServerCatalogue(versionNumber: row.major * 10_000)
            if let clause = row.clause {
                XCTAssertEqual(try catalogue.localeClause(row.p, quote: quote), clause, "\(row.major) \(row.p.localeProvider ?? "nil")")
            } else {
                XCTAssertThrowsError(try catalogue.localeClause(row.p, quote: quote), "\(row.major) \(row.p.localeProvider ?? "nil")") { e in
                    XCTAssertTrue("\(e)".contains("PostgreSQL \(row.major) does not have"), "\(e)")
                    XCTAssertTrue("\(e)".contains("nothing was changed"), "\(e)")
                }
            }
        }
    }

    func testLocaleFieldsSplitTheProviderLocale() {
        XCTAssertTrue(ServerCatalogue.localeFields(provider: "i", locale: "en") == ("i", "en", nil))
        XCTAssertTrue(ServerCatalogue.localeFields(provider: "b", locale: "C.UTF-8") == ("b", nil, "C.UTF-8"))
        XCTAssertTrue(ServerCatalogue.localeFields(provider: "c", locale: nil) == ("c", nil, nil))
        XCTAssertTrue(ServerCatalogue.localeFields(provider: nil, locale: nil) == (nil, nil, nil))
    }

    /// Statistics travel in the dump only when both server and pg_dump are 18 or newer.
    func testStatisticsAreDumpedFrom18() {
        for (server, pgDump, expected) in [(14, 18, false), (15, 15, false), (16, 18, false), (17, 18, false), (18, 18, true), (18, 19, true), (19, 19, true)] {
            XCTAssertEqual(ServerCatalogue(versionNumber: server * 10_000).dumpsStatistics(pgDumpMajor: pgDump), expected, "\(server)/\(pgDump)")
        }
    }

    /// Older onto newer is the upgrade path; newer onto older is refused naming both majors.
    func testRestoreAcrossMajors() throws {
        for (snapshot, server) in [("15.18 (Debian 15.18-0+deb12u1)", 18), ("16.2", 17), ("17.10", 17), ("14.1", 15)] {
            XCTAssertNil(ServerCatalogue(versionNumber: server * 10_000).refusalToRestore(snapshotServerVersion: snapshot, snapshot: "s"), "\(snapshot) -> \(server)")
        }
        let refusal = try XCTUnwrap(ServerCatalogue(versionNumber: 150_018).refusalToRestore(snapshotServerVersion: "18.6", snapshot: "app_x"))
        XCTAssertEqual(refusal.description,
                       "snapshot app_x was taken on PostgreSQL 18 and this server is PostgreSQL 15: a dump cannot be restored onto an older major. Restore it onto a PostgreSQL 18 or newer server; nothing was changed")
        // A manifest whose version cannot be read is not refused on a guess.
        XCTAssertNil(ServerCatalogue(versionNumber: 150_018).refusalToRestore(snapshotServerVersion: "?", snapshot: "s"))
    }
}

final class LoadSettingsTests: XCTestCase {
    func testMaintenanceWorkMem() {
        for (text, kb) in [("256MB", 262_144), ("1MB", 1024), ("1024kB", 1024), ("2GB", 2_097_152), ("64GB", 67_108_864)] {
            XCTAssertEqual(LoadSettings.maintenanceWorkMemKB(text), kb, text)
        }
        for bad in ["", "MB", "256", "256mb", "0MB", "-5MB", "012MB", "1023kB", "65GB", "99999999GB", "1.5GB", " 1GB", "12XB"] {
            XCTAssertNil(LoadSettings.maintenanceWorkMemKB(bad), bad)
        }
        XCTAssertNotNil(LoadSettings.maintenanceWorkMemKB(LoadSettings.defaultMaintenanceWorkMem))
    }
}

/// Which plain dumps carry `\restrict` and which psql reads them (CVE-2025-8714's releases).
final class RestrictLinesTests: XCTestCase {
    func testWhichVersionsKnowRestrict() {
        let cases: [(String, Bool?)] = [
            ("15.20 (Debian 15.20-0+deb12u1)", true), ("15.14", true), ("15.13", false), ("16.2", false), ("16.10", true),
            ("17.5", false), ("17.6", true), ("17.10", true), ("18.0", true), ("14.1", false), ("14.19", true),
            ("13.22", true), ("12.22", false), ("17beta2", false), ("", nil), ("unknown", nil),
        ]
        for (version, expected) in cases { XCTAssertEqual(ServerCatalogue.knowsRestrict(version), expected, version) }
    }

    func testAnOlderPsqlCannotReadANewerDump() {
        XCTAssertTrue(ServerCatalogue.psqlCannotRead(dumpVersion: "15.20", psqlVersion: "16.2"))
        XCTAssertTrue(ServerCatalogue.psqlCannotRead(dumpVersion: "18.6", psqlVersion: "14.1"))
        XCTAssertFalse(ServerCatalogue.psqlCannotRead(dumpVersion: "16.2", psqlVersion: "14.1"), "no \\restrict in the dump")
        XCTAssertFalse(ServerCatalogue.psqlCannotRead(dumpVersion: "15.20", psqlVersion: "17.10"))
        XCTAssertFalse(ServerCatalogue.psqlCannotRead(dumpVersion: "15.20", psqlVersion: "weird"), "unreadable: let psql say")
    }
}
