import Foundation

/// The JSON record beside each dump. Writing it is the commit point of a snapshot.
public struct Manifest: Codable, Equatable, Sendable {
    public static let currentFormatVersion = 1
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
    public var dumpFormat: String
    public var pgDumpVersion: String
    public var serverVersion: String
    public var host: String?
    public var port: String?
    public var user: String?
    public var migration: MigrationState?
    public var migrationAfter: MigrationState?
    /// Rows per table, keyed by the table's qualified name as pg_dump wrote it.
    public var tableRows: [String: Int64]
    /// `pg_database_size` when the snapshot was taken: scales the next snapshot's expected size.
    public var databaseBytes: Int64?
    public var databaseProperties: DatabaseProperties?
    public var globalsFile: String?
    public var timings: Timings?
    public var restoreTest: RestoreTest?
    public var pgsnapVersion: String

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
    }

    public struct Timings: Codable, Equatable, Sendable {
        public var dumpSeconds: Double
        public var compressWaitSeconds: Double
        public var fsyncSeconds: Double
        public init(dumpSeconds: Double, compressWaitSeconds: Double, fsyncSeconds: Double) {
            self.dumpSeconds = dumpSeconds
            self.compressWaitSeconds = compressWaitSeconds
            self.fsyncSeconds = fsyncSeconds
        }
    }

    public struct RestoreTest: Codable, Equatable, Sendable {
        public var at: Date
        public var ok: Bool
        public var seconds: Double
        public var detail: String?
        public init(at: Date, ok: Bool, seconds: Double, detail: String?) {
            self.at = at
            self.ok = ok
            self.seconds = seconds
            self.detail = detail
        }
    }

    public init(
        id: String, database: String, label: String?, createdAt: Date, durationSeconds: Double, file: String,
        compressedBytes: Int64, uncompressedBytes: Int64, sha256: String, compression: Compression,
        pgDumpVersion: String, serverVersion: String, host: String?, port: String?, user: String?,
        migration: MigrationState?, tableRows: [String: Int64], databaseProperties: DatabaseProperties?,
        timings: Timings?, pgsnapVersion: String
    ) {
        self.formatVersion = Manifest.currentFormatVersion
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

    public func encoded() throws -> Data {
        try Manifest.encoder.encode(self) + Data("\n".utf8)
    }

    /// Parses and checks a manifest read from `fileName`.
    ///
    /// - Throws: `PGSnapError` naming the file and what is wrong with it.
    public static func decode(_ data: Data, fileName: String) throws -> Manifest {
        guard data.count <= maxBytes else {
            throw PGSnapError.verification("manifest \(fileName) is \(data.count) bytes, larger than any pgsnap manifest")
        }
        let m: Manifest
        do {
            m = try decoder.decode(Manifest.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw PGSnapError.verification("manifest \(fileName) is missing the field '\(snakeCase(key.stringValue))'")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            let path = ctx.codingPath.map { snakeCase($0.stringValue) }.joined(separator: ".")
            throw PGSnapError.verification("manifest \(fileName) has a wrong type at '\(path)'")
        } catch {
            throw PGSnapError.verification("manifest \(fileName) is not valid JSON")
        }
        guard m.formatVersion >= 1, m.formatVersion <= currentFormatVersion else {
            throw PGSnapError.verification(
                "manifest \(fileName) has format_version \(m.formatVersion); this pgsnap reads up to \(currentFormatVersion)",
                next: "Use a newer pgsnap")
        }
        guard m.file == SnapshotName.dumpFile(id: m.id, compression: m.compression.algorithm),
              fileName == m.id + SnapshotName.manifestSuffix
        else {
            throw PGSnapError.verification("manifest \(fileName) names a dump file or id that does not belong to it")
        }
        guard m.compressedBytes >= 0, m.uncompressedBytes >= 0, m.sha256.count == 64,
              m.sha256.allSatisfy({ $0.isASCII && $0.isHexDigit }), m.tableRows.values.allSatisfy({ $0 >= 0 })
        else {
            throw PGSnapError.verification("manifest \(fileName) has impossible sizes, counts or checksum")
        }
        for table in m.tableRows.keys where QualifiedName.parse(table) == nil {
            throw PGSnapError.verification("manifest \(fileName) has a malformed table name '\(oneLine(table, limit: 80))'")
        }
        return m
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(ISO8601.format(date))
        }
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let s = try c.decode(String.self)
            guard let date = ISO8601.parse(s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 date")
            }
            return date
        }
        return d
    }()
}

/// `compressedBytes` -> `compressed_bytes`: error messages name fields as the file spells them.
func snakeCase(_ key: String) -> String {
    var out = ""
    for ch in key {
        if ch.isUppercase {
            out += "_" + ch.lowercased()
        } else {
            out.append(ch)
        }
    }
    return out
}

/// Database-level state that a plain pg_dump leaves out; captured at backup, re-applied at restore.
public struct DatabaseProperties: Codable, Equatable, Sendable {
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

    public init(owner: String, encoding: String, collate: String, ctype: String, acl: String?, settings: [String], comment: String?, connectionLimit: Int?) {
        self.owner = owner
        self.encoding = encoding
        self.collate = collate
        self.ctype = ctype
        self.acl = acl
        self.settings = settings
        self.comment = comment
        self.connectionLimit = connectionLimit
    }
}

/// UTC ISO 8601 with milliseconds: `2026-11-22T03:15:00.123Z`.
public enum ISO8601 {
    public static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    /// Accepts full ISO 8601 (with or without fraction, any offset) and `YYYY-MM-DD HH:MM[:SS]` taken as UTC.
    public static func parse(_ s: String) -> Date? {
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
}
