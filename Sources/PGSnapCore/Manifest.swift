import Foundation

/// The JSON record beside each dump. Writing it is the commit point of a snapshot.
public struct Manifest: Encodable, Equatable, Sendable {
    /// 2: directory snapshots (`dump_format` "directory", `files`); plain ones are still written as 1,
    /// so an older pgsnap keeps reading them and names the version it lacks for the others.
    public static let currentFormatVersion = 2
    /// Manifests are small; anything bigger is not one of ours.
    public static let maxBytes = 16 << 20

    public var formatVersion: Int
    public var id: String
    public var database: String
    public var label: String?
    public var createdAt: Date
    public var durationSeconds: Double
    public var file: String
    public var compressedBytes: Int64
    public var uncompressedBytes: Int64
    public var sha256: String
    public var compression: Compression
    /// Who can read the stored file (age); nil: stored as plain compressed SQL.
    public var encryption: Encryption?
    public var dumpFormat: String
    /// A directory snapshot's files (`file` is then the directory); nil for a plain snapshot.
    public var files: [StoredFile]?
    public var pgDumpVersion: String
    public var serverVersion: String
    /// The directory pg_dump was run from, and why it was chosen (`ToolSearch`).
    public var toolDirectory: String?
    /// "dumped" when the dump carries planner statistics (pg_dump --statistics, 18+): restore
    /// then skips its ANALYZE. nil: restore analyzes.
    public var statistics: String?
    public var host: String?
    public var port: String?
    public var user: String?
    public var migration: MigrationState?
    public var migrationAfter: MigrationState?
    /// Rows per table, keyed by the table's qualified name as pg_dump wrote it.
    public var tableRows: [String: Int64]
    /// `pg_database_size` when the snapshot was taken: scales the next snapshot's expected size.
    public var databaseBytes: Int64?
    /// Whether the tables were locked before the snapshot (absent in manifests older than this field).
    public var tableLocking: TableLocking?
    public var databaseProperties: DatabaseProperties?
    /// Roles and tablespaces for `psql -f`: `<id>.globals.sql` of its own (`backup --globals`), or
    /// its run's `<run>.globals.sql`, shared by every snapshot of a whole-server run.
    public var globalsFile: String?
    /// The SHA-256 of `globals_file` (absent in manifests older than this field).
    public var globalsSHA256: String?
    /// The whole-server run (`backup --all-databases --globals`) whose globals this snapshot refers to.
    public var run: String?
    public var timings: Timings?
    public var restoreTest: RestoreTest?
    public var pgsnapVersion: String

    // Explicit keys: JSONDecoder's convertFromSnakeCase cost a fifth of reading 10,000 manifests.
    // CaseIterable: a test holds the encoded manifest to exactly these keys, unset ones as null.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case formatVersion = "format_version"
        case id
        case database
        case label
        case createdAt = "created_at"
        case durationSeconds = "duration_seconds"
        case file
        case compressedBytes = "compressed_bytes"
        case uncompressedBytes = "uncompressed_bytes"
        case sha256
        case compression
        case encryption
        case dumpFormat = "dump_format"
        case files
        case pgDumpVersion = "pg_dump_version"
        case serverVersion = "server_version"
        case toolDirectory = "tool_directory"
        case statistics
        case host
        case port
        case user
        case migration
        case migrationAfter = "migration_after"
        case tableRows = "table_rows"
        case databaseBytes = "database_bytes"
        case tableLocking = "table_locking"
        case databaseProperties = "database_properties"
        case globalsFile = "globals_file"
        case globalsSHA256 = "globals_sha256"
        case run
        case timings
        case restoreTest = "restore_test"
        case pgsnapVersion = "pgsnap_version"
    }

    public struct Compression: Codable, Equatable, Sendable {
        public var algorithm: CompressionAlgorithm
        public var level: Int
        public var jobs: Int?
        public init(algorithm: CompressionAlgorithm, level: Int, jobs: Int? = nil) {
            self.algorithm = algorithm
            self.level = level
            self.jobs = jobs
        }
    }

    public struct MigrationState: Codable, Equatable, Sendable {
        public var version: Int64
        public var dirty: Bool
        public init(version: Int64, dirty: Bool) {
            self.version = version
            self.dirty = dirty
        }
        init(json f: JSONFields) throws {
            version = try f.required("version", JSONFields.int64)
            dirty = try f.required("dirty", JSONFields.bool)
        }
    }

    /// How the backup kept a TRUNCATE from slipping in between the snapshot and pg_dump's locks.
    public struct TableLocking: Codable, Equatable, Sendable {
        public enum Mode: String, Codable, Sendable {
            /// Every table locked before the snapshot was taken: no gap.
            case beforeSnapshot = "before_snapshot"
            /// Too many tables for the server's lock table: pg_dump's own locking only, as plain pg_dump.
            case pgDumpOnly = "pg_dump_only"
        }
        public var mode: Mode
        public var tables: Int
        public init(mode: Mode, tables: Int) {
            self.mode = mode
            self.tables = tables
        }
        init(json f: JSONFields) throws {
            mode = try f.required("mode") { JSONFields.string($0).flatMap(Mode.init(rawValue:)) }
            tables = try f.required("tables", JSONFields.int)
        }
    }

    public struct Timings: Codable, Equatable, Sendable {
        enum CodingKeys: String, CodingKey {
        case dumpSeconds = "dump_seconds"
        case compressWaitSeconds = "compress_wait_seconds"
        case fsyncSeconds = "fsync_seconds"
        }
        public var dumpSeconds: Double
        public var compressWaitSeconds: Double
        public var fsyncSeconds: Double
        public init(dumpSeconds: Double, compressWaitSeconds: Double, fsyncSeconds: Double) {
            self.dumpSeconds = dumpSeconds
            self.compressWaitSeconds = compressWaitSeconds
            self.fsyncSeconds = fsyncSeconds
        }
        init(json f: JSONFields) throws {
            dumpSeconds = try f.required("dump_seconds", JSONFields.double)
            compressWaitSeconds = try f.required("compress_wait_seconds", JSONFields.double)
            fsyncSeconds = try f.required("fsync_seconds", JSONFields.double)
        }
    }

    public struct RestoreTest: Codable, Equatable, Sendable {
        public var at: Date
        public var ok: Bool
        public var seconds: Double
        public var detail: String?
        /// Rows the restore loaded and compared (absent in manifests of pgsnap before the drill).
        public var rows: Int64?
        public init(at: Date, ok: Bool, seconds: Double, detail: String?, rows: Int64? = nil) {
            self.at = at
            self.ok = ok
            self.seconds = seconds
            self.detail = detail
            self.rows = rows
        }
        init(json f: JSONFields) throws {
            at = try f.required("at", JSONFields.date)
            ok = try f.required("ok", JSONFields.bool)
            seconds = try f.required("seconds", JSONFields.double)
            detail = try f.optional("detail", JSONFields.string)
            rows = try f.optional("rows", JSONFields.int64)
        }
    }

    public init(
        id: String, database: String, label: String?, createdAt: Date, durationSeconds: Double, file: String,
        compressedBytes: Int64, uncompressedBytes: Int64, sha256: String, compression: Compression,
        pgDumpVersion: String, serverVersion: String, host: String?, port: String?, user: String?,
        migration: MigrationState?, tableRows: [String: Int64], databaseProperties: DatabaseProperties?,
        timings: Timings?, pgsnapVersion: String
    ) {
        self.formatVersion = 1
        self.id = id
        self.database = database
        self.label = label
        self.createdAt = createdAt
        self.durationSeconds = durationSeconds
        self.file = file
        self.compressedBytes = compressedBytes
        self.uncompressedBytes = uncompressedBytes
        self.sha256 = sha256
        self.compression = compression
        self.dumpFormat = "plain"
        self.pgDumpVersion = pgDumpVersion
        self.serverVersion = serverVersion
        self.host = host
        self.port = port
        self.user = user
        self.migration = migration
        self.tableRows = tableRows
        self.databaseProperties = databaseProperties
        self.timings = timings
        self.pgsnapVersion = pgsnapVersion
    }

    /// Maps a parsed manifest by hand (see `JSONValue` for why), field by field as in the file.
    init(json f: JSONFields) throws {
        typealias J = JSONFields
        formatVersion = try f.required("format_version", J.int)
        id = try f.required("id", J.string)
        database = try f.required("database", J.string)
        label = try f.optional("label", J.string)
        createdAt = try f.required("created_at", J.date)
        durationSeconds = try f.required("duration_seconds", J.double)
        file = try f.required("file", J.string)
        compressedBytes = try f.required("compressed_bytes", J.int64)
        uncompressedBytes = try f.required("uncompressed_bytes", J.int64)
        sha256 = try f.required("sha256", J.string)
        guard let c = try f.nested("compression") else { throw JSONFields.Failure.missing("compression") }
        compression = Compression(
            algorithm: try c.required("algorithm") { J.string($0).flatMap(CompressionAlgorithm.init(rawValue:)) },
            level: try c.required("level", J.int), jobs: try c.optional("jobs", J.int))
        encryption = try f.nested("encryption").map(Encryption.init(json:))
        dumpFormat = try f.required("dump_format", J.string)
        files = try f.optional("files", StoredFile.list)
        pgDumpVersion = try f.required("pg_dump_version", J.string)
        serverVersion = try f.required("server_version", J.string)
        toolDirectory = try f.optional("tool_directory", J.string)
        statistics = try f.optional("statistics", J.string)
        host = try f.optional("host", J.string)
        port = try f.optional("port", J.string)
        user = try f.optional("user", J.string)
        migration = try f.nested("migration").map(MigrationState.init(json:))
        migrationAfter = try f.nested("migration_after").map(MigrationState.init(json:))
        databaseBytes = try f.optional("database_bytes", J.int64)
        tableLocking = try f.nested("table_locking").map(TableLocking.init(json:))
        globalsFile = try f.optional("globals_file", J.string)
        globalsSHA256 = try f.optional("globals_sha256", J.string)
        run = try f.optional("run", J.string)
        restoreTest = try f.nested("restore_test").map(RestoreTest.init(json:))
        pgsnapVersion = try f.required("pgsnap_version", J.string)
        tableRows = try f.required("table_rows", J.int64Map)
        databaseProperties = try f.nested("database_properties").map(DatabaseProperties.init(json:))
        timings = try f.nested("timings").map(Timings.init(json:))
    }

    public var format: DumpFormat { DumpFormat(rawValue: dumpFormat) ?? .plain }

    /// A directory snapshot's file list must account for every byte and row the manifest claims:
    /// names pg_dump writes (never a path), a `toc.dat`, sizes that add up, one file per table.
    static func checkDirectoryFiles(_ m: Manifest, fileName: String) throws {
        func bad(_ why: String) -> PGSnapError { PGSnapError.verification("manifest \(fileName) \(why)") }
        guard m.compression.algorithm == .gzip else { throw bad("has a directory snapshot that is not gzip") }
        guard let files = m.files, files.contains(where: { DirectoryDump.plainName($0.name) == "toc.dat" }) else { throw bad("lists no toc.dat for its directory snapshot") }
        var seen = Set<String>()
        var tables: [String: Int64] = [:]
        for f in files {
            guard DirectoryDump.isDumpFileName(f.name), seen.insert(f.name).inserted,
                  f.name.hasSuffix(SnapshotName.encryptedSuffix) == (m.encryption != nil) else { throw bad("lists a bad or repeated file name '\(oneLine(f.name, limit: 80))'") }
            guard f.bytes >= 0, f.sha256.count == 64, f.sha256.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { throw bad("has an impossible size or checksum for \(f.name)") }
            if let table = f.table {
                guard let rows = f.rows, rows >= 0, DirectoryDump.dataFileDumpID(f.name) != nil, tables[table] == nil else { throw bad("has a bad data file entry \(f.name)") }
                tables[table] = rows
            }
        }
        guard files.reduce(Int64(0), { $0 + $1.bytes }) == m.compressedBytes else { throw bad("has file sizes that do not add up to compressed_bytes") }
        guard tables == m.tableRows else { throw bad("has data files that do not match table_rows") }
    }

    /// The manifest as written to disk and printed by `show --json`: every field present, `null` when unset.
    public func encoded() throws -> Data {
        try Manifest.encoder.encode(WithNulls(self)) + Data("\n".utf8)
    }

    /// Parses and checks a manifest read from `fileName`.
    ///
    /// - Throws: `PGSnapError` naming the file and what is wrong with it.
    /// - Parameter summary: skip table rows, database properties and timings (prune, check).
    public static func decode(_ data: Data, fileName: String, summary: Bool = false) throws -> Manifest {
        try decode(bytes: [UInt8](data), fileName: fileName, summary: summary)
    }

    public static func decode(bytes: [UInt8], fileName: String, summary: Bool = false) throws -> Manifest {
        guard bytes.count <= maxBytes else {
            throw PGSnapError.verification("manifest \(fileName) is \(bytes.count) bytes, larger than any pgsnap manifest")
        }
        var m: Manifest
        do {
            m = try Manifest(json: try JSONFields(try JSONValue.parse(bytes)))
        } catch JSONFields.Failure.missing(let field) {
            throw PGSnapError.verification("manifest \(fileName) is missing the field '\(field)'")
        } catch JSONFields.Failure.wrongType(let path) {
            throw PGSnapError.verification("manifest \(fileName) has a wrong type at '\(path)'")
        } catch {
            throw PGSnapError.verification("manifest \(fileName) is not valid JSON")
        }
        guard m.formatVersion >= 1, m.formatVersion <= currentFormatVersion else {
            throw PGSnapError.verification(
                "manifest \(fileName) has format_version \(m.formatVersion); this pgsnap reads up to \(currentFormatVersion)",
                next: "Use a newer pgsnap")
        }
        if let e = m.encryption {
            // Only age is known; a manifest naming another tool (or no key) cannot be restored by us.
            guard e.tool == "age", !e.recipients.isEmpty, e.recipients.allSatisfy({ (try? AgeRecipient.parse($0)) != nil }) else {
                throw PGSnapError.verification("manifest \(fileName) has an encryption record this pgsnap cannot use (tool must be age, with valid recipients)")
            }
        }
        guard let format = DumpFormat(rawValue: m.dumpFormat) else {
            throw PGSnapError.verification("manifest \(fileName) has dump_format '\(oneLine(m.dumpFormat, limit: 40))'; this pgsnap knows plain and directory",
                                           next: "Use a newer pgsnap")
        }
        let expectedFile = format == .directory ? m.id + SnapshotName.directorySuffix
            : SnapshotName.dumpFile(id: m.id, compression: m.compression.algorithm, encrypted: m.encryption != nil)
        guard m.file == expectedFile, fileName == m.id + SnapshotName.manifestSuffix else {
            throw PGSnapError.verification("manifest \(fileName) names a dump file or id that does not belong to it")
        }
        guard m.compressedBytes >= 0, m.uncompressedBytes >= 0, m.sha256.count == 64,
              m.sha256.allSatisfy({ $0.isASCII && $0.isHexDigit }), m.tableRows.values.allSatisfy({ $0 >= 0 })
        else {
            throw PGSnapError.verification("manifest \(fileName) has impossible sizes, counts or checksum")
        }
        if format == .directory {
            guard m.formatVersion >= 2 else { throw PGSnapError.verification("manifest \(fileName) is a directory snapshot with format_version \(m.formatVersion)") }
            try checkDirectoryFiles(m, fileName: fileName)
        } else if m.files != nil {
            throw PGSnapError.verification("manifest \(fileName) lists files but is not a directory snapshot")
        }
        if let label = m.label {
            // A label is printed by list and show: hold it to the rules backup enforces.
            guard (try? SnapshotName.validateLabel(label)) != nil, m.id.hasSuffix("_" + label) else {
                throw PGSnapError.verification("manifest \(fileName) has a label that does not match its id")
            }
        }
        // The globals file is opened, pushed and pulled by name: its own, or its run's, never a path.
        if let g = m.globalsFile {
            let ownOrRun = m.run.map { RunName.parse($0) != nil && RunName.globalsFiles($0).contains(g) }
                ?? [false, true].contains { g == SnapshotName.globalsFile(id: m.id, encrypted: $0) }
            guard ownOrRun else { throw PGSnapError.verification("manifest \(fileName) names a globals file that does not belong to it") }
        } else if m.run != nil {
            throw PGSnapError.verification("manifest \(fileName) names a run but no globals file")
        }
        if m.run != nil && m.globalsSHA256 == nil {
            throw PGSnapError.verification("manifest \(fileName) names a run but not the checksum of its globals")
        }
        if let sha = m.globalsSHA256, !(sha.count == 64 && sha.allSatisfy({ $0.isASCII && $0.isHexDigit })) {
            throw PGSnapError.verification("manifest \(fileName) has an impossible globals checksum")
        }
        for table in m.tableRows.keys where QualifiedName.parse(table) == nil {
            throw PGSnapError.verification("manifest \(fileName) has a malformed table name '\(oneLine(table, limit: 80))'")
        }
        if summary {
            // Checked in full above, so prune and check call a manifest bad exactly when verify and
            // restore do; then dropped: they never look at these, and a catalog of 10,000 stays small.
            m.tableRows = [:]
            m.files = m.files.map { _ in [] }
            m.databaseProperties = nil
            m.timings = nil
        }
        return m
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(ISO8601.format(date))
        }
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }()
}

/// Database-level state that a plain pg_dump leaves out; captured at backup, re-applied at restore.
public struct DatabaseProperties: Codable, Equatable, Sendable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case owner
        case encoding
        case collate
        case ctype
        case acl
        case settings
        case comment
        case connectionLimit = "connection_limit"
        case roleSettings = "role_settings"
        case localeProvider = "locale_provider"
        case iculocale = "icu_locale"
        case icuRules = "icu_rules"
        case builtinLocale = "builtin_locale"
        case tablespace
        case isTemplate = "is_template"
    }
    public var owner: String
    public var encoding: String
    public var collate: String
    public var ctype: String
    /// `datacl` as the server prints it, e.g. `{=Tc/postgres,postgres=CTc/postgres,app=c/postgres}`.
    public var acl: String?
    /// `ALTER DATABASE ... SET` settings for all roles, as `name=value` strings.
    public var settings: [String]
    public var comment: String?
    public var connectionLimit: Int?
    /// `ALTER ROLE r IN DATABASE ... SET` settings, by role name: kept under the database's oid,
    /// so a database restored anew would lose them.
    public var roleSettings: [String: [String]]?
    /// `datlocprovider` ("c" libc, "i" ICU, "b" builtin) and that provider's locale and rules:
    /// fixed when a database is created (`ServerCatalogue.localeClause`).
    public var localeProvider: String?
    public var iculocale: String?
    /// `daticurules` (16+).
    public var icuRules: String?
    /// `datlocale` of the builtin provider (17+): "C", "C.UTF-8", "PG_UNICODE_FAST".
    public var builtinLocale: String?
    /// The database's default tablespace, when not pg_default: fixed when it is created, too.
    public var tablespace: String?
    /// Whether the database is a template (`IS_TEMPLATE true`), made one again after a restore as
    /// pg_dump --create does; nil in manifests of older pgsnap (unknown).
    public var isTemplate: Bool?

    public init(owner: String, encoding: String, collate: String, ctype: String, acl: String?, settings: [String], comment: String?,
                connectionLimit: Int?, roleSettings: [String: [String]]? = nil, localeProvider: String? = nil, iculocale: String? = nil,
                icuRules: String? = nil, builtinLocale: String? = nil, tablespace: String? = nil, isTemplate: Bool? = nil) {
        self.isTemplate = isTemplate
        self.icuRules = icuRules
        self.builtinLocale = builtinLocale
        self.roleSettings = roleSettings
        self.localeProvider = localeProvider
        self.iculocale = iculocale
        self.tablespace = tablespace
        self.owner = owner
        self.encoding = encoding
        self.collate = collate
        self.ctype = ctype
        self.acl = acl
        self.settings = settings
        self.comment = comment
        self.connectionLimit = connectionLimit
    }

    init(json f: JSONFields) throws {
        owner = try f.required("owner", JSONFields.string)
        encoding = try f.required("encoding", JSONFields.string)
        collate = try f.required("collate", JSONFields.string)
        ctype = try f.required("ctype", JSONFields.string)
        acl = try f.optional("acl", JSONFields.string)
        settings = try f.required("settings", JSONFields.strings)
        comment = try f.optional("comment", JSONFields.string)
        connectionLimit = try f.optional("connection_limit", JSONFields.int)
        roleSettings = try f.optional("role_settings", JSONFields.stringsMap)
        localeProvider = try f.optional("locale_provider", JSONFields.string)
        iculocale = try f.optional("icu_locale", JSONFields.string)
        icuRules = try f.optional("icu_rules", JSONFields.string)
        builtinLocale = try f.optional("builtin_locale", JSONFields.string)
        tablespace = try f.optional("tablespace", JSONFields.string)
        isTemplate = try f.optional("is_template", JSONFields.bool)
    }
}

/// UTC ISO 8601 with milliseconds: `2026-11-22T03:15:00.123Z`.
///
/// The manifest's own form is written and read by hand: formatters built per call made a
/// catalog of 10,000 snapshots take seconds. Other spellings go through Foundation.
public enum ISO8601 {
    public static func format(_ date: Date) -> String {
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        var t = time_t((ms / 1000).rounded(.down))
        let millis = Int(ms - Double(t) * 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), millis)
    }

    /// Accepts full ISO 8601 (with or without fraction, any offset) and `YYYY-MM-DD HH:MM[:SS]` taken as UTC.
    public static func parse(_ s: String) -> Date? {
        if let d = parseUTC(s) { return d }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return d }
        let p = DateFormatter()
        p.locale = Locale(identifier: "en_US_POSIX")
        p.timeZone = TimeZone(identifier: "UTC")
        for format in ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd"] {
            p.dateFormat = format
            if let d = p.date(from: s) { return d }
        }
        return nil
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff...]Z` only.
    static func parseUTC(_ s: String) -> Date? {
        let b = Array(s.utf8)
        guard b.count >= 20, b.last == UInt8(ascii: "Z"), b[4] == 0x2D, b[7] == 0x2D, b[10] == UInt8(ascii: "T"),
              b[13] == 0x3A, b[16] == 0x3A
        else { return nil }
        func num(_ from: Int, _ count: Int) -> Int? { decimal(b, from, count) }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let sec = num(17, 2)
        else { return nil }
        var fraction = 0.0
        if b.count > 20 {
            guard b[19] == 0x2E, b.count > 21, b.count <= 30, let digits = num(20, b.count - 21) else { return nil }
            fraction = Double(digits) / pow(10, Double(b.count - 21))
        } else if b.count != 20 {
            return nil
        }
        return utcDate(year: y, month: mo, day: d, hour: h, minute: mi, second: sec, fraction: fraction)
    }
}
