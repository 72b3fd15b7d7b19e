/// What differs between PostgreSQL majors, in one place, keyed by `server_version_num` the way
/// pg_dump keys its own queries (`fout->remoteVersion >= 170000`).
///
/// Services ask this table; none of them tests a version itself. A new major that renames a
/// catalogue column or grows a `CREATE DATABASE` option changes this file and its test table only.
public struct ServerCatalogue: Equatable, Sendable {
    /// `server_version_num`, e.g. 170010 for 17.10 (libpq's `PQserverVersion`, read once per connection).
    public let versionNumber: Int

    public init(versionNumber: Int) { self.versionNumber = versionNumber }

    /// 170010 -> 17 (before 10 the major had two parts: 90624 -> 9, close enough to refuse it).
    public var major: Int { versionNumber / 10_000 }

    /// The major of a version as `SHOW server_version` or `pg_dump --version` prints it:
    /// "15.18 (Debian 15.18-0+deb12u1)" -> 15, "18beta1" -> 18, "9.6.24" -> 9. nil when unreadable.
    public static func major(of text: String) -> Int? {
        let digits = text.drop { $0 == " " }.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let n = Int(digits), n > 0 else { return nil }
        return n
    }

    // MARK: - Database properties

    /// The row `DatabaseFacts.properties` reads, with the same ten columns on every major:
    /// owner, encoding, collate, ctype, acl, connection limit, comment, locale provider
    /// ("c" libc, "i" ICU, "b" builtin), the provider's locale, ICU rules.
    ///
    /// 15 added `datlocprovider` and `daticulocale`; 16 added `daticurules`; 17 renamed
    /// `daticulocale` to `datlocale` (which also holds the builtin provider's locale).
    public var databasePropertiesQuery: String {
        let provider: String, locale: String, rules: String
        switch major {
        case ..<15: (provider, locale, rules) = ("'c'", "NULL::text", "NULL::text")
        case 15: (provider, locale, rules) = ("d.datlocprovider::text", "d.daticulocale", "NULL::text")
        case 16: (provider, locale, rules) = ("d.datlocprovider::text", "d.daticulocale", "d.daticurules")
        default: (provider, locale, rules) = ("d.datlocprovider::text", "d.datlocale", "d.daticurules")
        }
        return """
            SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                   d.datacl::text, d.datconnlimit::text, shobj_description(d.oid, 'pg_database'),
                   \(provider), \(locale), \(rules), nullif(t.spcname, 'pg_default'), d.datistemplate::text
            FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = $1
            """
    }

    /// What `CREATE DATABASE` on this server needs to give a database the snapshot's locale
    /// provider, besides LC_COLLATE and LC_CTYPE: empty for libc on 14, which has no providers.
    ///
    /// - Parameter quote: quotes a string literal for this server.
    /// - Throws: `PGSnapError` when this server has no such provider (ICU before 15, builtin before 17).
    public func localeClause(_ p: DatabaseProperties, quote: (String) throws -> String) throws -> String {
        switch p.localeProvider {
        case "i":
            guard major >= 15 else { throw missingProvider("ICU", since: 15) }
            var clause = " LOCALE_PROVIDER icu"
            if let locale = p.iculocale { clause += " ICU_LOCALE \(try quote(locale))" }
            if let rules = p.icuRules {
                guard major >= 16 else { throw missingProvider("ICU rules", since: 16) }
                clause += " ICU_RULES \(try quote(rules))"
            }
            return clause
        case "b":
            guard major >= 17 else { throw missingProvider("the builtin locale provider", since: 17) }
            return " LOCALE_PROVIDER builtin BUILTIN_LOCALE \(try quote(p.builtinLocale ?? "C"))"
        default:
            // Explicit: a cluster whose template0 uses ICU would otherwise hand that on.
            return major >= 15 ? " LOCALE_PROVIDER libc" : ""
        }
    }

    /// Splits the query's provider and locale columns into the manifest's fields.
    public static func localeFields(provider: String?, locale: String?) -> (provider: String?, icu: String?, builtin: String?) {
        switch provider {
        case "i": return ("i", locale, nil)
        case "b": return ("b", nil, locale)
        case "c": return ("c", nil, nil)
        default: return (nil, nil, nil)
        }
    }

    private func missingProvider(_ what: String, since: Int) -> PGSnapError {
        PGSnapError("the snapshot's database uses \(what), which PostgreSQL \(major) does not have (it came in \(since))",
                    next: "Restore onto a PostgreSQL \(since) or newer server; nothing was changed")
    }

    // MARK: - Statistics

    /// Whether pg_dump carries planner statistics in the dump (`--statistics`, PostgreSQL 18):
    /// the server must be able to restore them too, so both must be 18 or newer.
    public func dumpsStatistics(pgDumpMajor: Int) -> Bool {
        major >= 18 && pgDumpMajor >= 18
    }

    // MARK: - Restoring across majors

    /// A snapshot from a newer major cannot be loaded by an older server (unknown syntax,
    /// settings and catalogue objects): refused before anything is created. Older onto newer is
    /// PostgreSQL's own upgrade path and is allowed.
    public func refusalToRestore(snapshotServerVersion: String, snapshot: String) -> PGSnapError? {
        guard let from = Self.major(of: snapshotServerVersion), from > major else { return nil }
        return PGSnapError(
            "snapshot \(snapshot) was taken on PostgreSQL \(from) and this server is PostgreSQL \(major): a dump cannot be restored onto an older major",
            next: "Restore it onto a PostgreSQL \(from) or newer server; nothing was changed")
    }

    // MARK: - Plain dumps' \restrict lines

    /// The first minor of each major whose pg_dump writes `\restrict KEY` / `\unrestrict KEY`
    /// around a plain dump and whose psql reads them (CVE-2025-8714, the August 2025 releases);
    /// every 18 does. Older majors never got them.
    static let restrictSince: [Int: Int] = [13: 22, 14: 19, 15: 14, 16: 10, 17: 6]

    /// Those releases, for messages: "13.22, 14.19, 15.14, 16.10, 17.6 and 18".
    public static var restrictReleases: String {
        restrictSince.sorted { $0.key < $1.key }.map { "\($0.key).\($0.value)" }.joined(separator: ", ") + " and 18"
    }

    /// Whether tools of `version` ("15.20", "16.2 (Debian ...)", "18beta1") know `\restrict`:
    /// pg_dump writes it, psql reads it. nil when the version is unreadable.
    public static func knowsRestrict(_ version: String) -> Bool? {
        guard let major = major(of: version) else { return nil }
        if major >= 18 { return true }
        guard let since = restrictSince[major] else { return false }
        let rest = version.drop { $0 == " " }.drop { $0.isASCII && $0.isNumber }
        guard rest.first == "." else { return false }  // "17beta1": before any minor release
        let minor = rest.dropFirst().prefix { $0.isASCII && $0.isNumber }
        return Int(minor).map { $0 >= since }
    }

    /// Whether a plain dump written by pg_dump `dumpVersion` stops psql `psqlVersion` at its first
    /// line: the dump has `\restrict` and this psql predates it. False when either is unreadable
    /// (the restore then says so if psql does stop).
    public static func psqlCannotRead(dumpVersion: String, psqlVersion: String) -> Bool {
        knowsRestrict(dumpVersion) == true && knowsRestrict(psqlVersion) == false
    }
}
