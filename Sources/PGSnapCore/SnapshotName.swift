import Foundation

/// How snapshots are named on disk: `<database>_<UTC timestamp>[-<n>][_<label>]`, the id, plus a suffix.
///
/// Names sort by database then time, say what they hold, and never leave the backup directory:
/// anything outside `[A-Za-z0-9._-]` in a database name is percent-encoded, and so is a leading
/// `-` or `.`, so a file never starts with a dash (shell options) or a dot (hidden).
public enum SnapshotName {
    public static let manifestSuffix = ".manifest.json"
    public static let partialSuffix = ".partial"
    public static let globalsSuffix = ".globals.sql"
    public static let maxLabelLength = 64

    /// Checks a user-supplied label.
    ///
    /// - Throws: a usage error naming the rule the label breaks.
    public static func validateLabel(_ label: String) throws {
        let allowed = label.unicodeScalars.allSatisfy { isPlain($0) }
        guard !label.isEmpty, label.unicodeScalars.count <= maxLabelLength, allowed,
              !label.contains(".."), label.first != "-", label.first != "."
        else {
            throw PGSnapError.usage(
                "invalid label '\(oneLine(label, limit: 80))': use 1-\(maxLabelLength) letters, digits, '.', '_' or '-', not starting with '-' or '.' and without '..'",
                next: "For example: --label pre_migration_000045")
        }
    }

    static func isPlain(_ s: Unicode.Scalar) -> Bool {
        (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "." || s == "_" || s == "-"
    }

    /// The database name as it appears in file names.
    public static func encodeDatabase(_ name: String) -> String {
        var out = ""
        for (i, byte) in Array(name.utf8).enumerated() {
            let s = Unicode.Scalar(byte)
            let leadingSpecial = i == 0 && (s == "-" || s == ".")
            if byte < 0x80 && isPlain(s) && !leadingSpecial {
                out.unicodeScalars.append(s)
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out.isEmpty ? "%00" : out
    }

    public static func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }

    /// The id for attempt `n` (1 = no suffix) of a snapshot started at `date`.
    public static func id(database: String, date: Date, label: String?, attempt: Int = 1) -> String {
        var id = encodeDatabase(database) + "_" + timestamp(date)
        if attempt > 1 { id += "-\(attempt)" }
        if let label { id += "_" + label }
        return id
    }

    public static func dumpFile(id: String, compression: CompressionAlgorithm) -> String {
        id + compression.fileSuffix
    }

    /// An id given on the command line: it must be a plain file-name stem, never a path.
    public static func validateID(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 512, !id.contains("/"), id != ".", id != "..",
              id.unicodeScalars.allSatisfy({ isPlain($0) || $0 == "%" }), id.first != "-"
        else {
            throw PGSnapError.usage("invalid snapshot id '\(oneLine(id, limit: 80))'", next: "Run 'pgsnap list' to see the ids")
        }
    }

    /// Parts recovered from a file name, for leftovers that have no manifest.
    public struct Parsed: Equatable, Sendable {
        public var id: String
        public var encodedDatabase: String
        public var date: Date
    }

    /// Splits `<db>_<YYYYMMDDTHHMMSSZ>[-n][_label]` at the last field that is a timestamp:
    /// database names may hold underscores and even a timestamp (a kept `app_pre_restore_<time>`
    /// copy being backed up), labels usually do not. Nil when the stem is not a pgsnap id.
    public static func parse(id: String) -> Parsed? {
        let parts = id.components(separatedBy: "_")
        guard parts.count >= 2 else { return nil }
        for i in stride(from: parts.count - 1, through: 1, by: -1) {
            var stamp = Substring(parts[i])
            if let dash = stamp.firstIndex(of: "-") {
                guard Int(stamp[stamp.index(after: dash)...]) != nil else { continue }
                stamp = stamp[..<dash]
            }
            if stamp.count == 16, let date = parseTimestamp(String(stamp)) {
                return Parsed(id: id, encodedDatabase: parts[..<i].joined(separator: "_"), date: date)
            }
        }
        return nil
    }

    public static func parseTimestamp(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.date(from: s)
    }
}

public enum CompressionAlgorithm: String, Codable, Sendable, CaseIterable {
    case gzip, zstd, none

    public var fileSuffix: String {
        switch self {
        case .gzip: return ".sql.gz"
        case .zstd: return ".sql.zst"
        case .none: return ".sql"
        }
    }
}
