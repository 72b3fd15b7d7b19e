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
    /// The globals of an encrypted backup (`--encrypt-to`): role password hashes are secrets too.
    public static let encryptedGlobalsSuffix = ".globals.sql.age"
    /// The two names a snapshot's own globals file may have.
    public static func globalsFile(id: String, encrypted: Bool) -> String { id + (encrypted ? encryptedGlobalsSuffix : globalsSuffix) }
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

    /// A label for a new snapshot: `validateLabel`, and no `_`-separated field that reads as a
    /// snapshot time (`20261206T050000Z`, `...Z-2`): its id would then split two ways, and a
    /// listing without manifests could file it under another database.
    public static func validateNewLabel(_ label: String) throws {
        try validateLabel(label)
        // `<id>.globals` + `.sql` is another snapshot's roles file name.
        if label.hasSuffix(".globals") {
            throw PGSnapError.usage("invalid label '\(oneLine(label, limit: 80))': a label ending in '.globals' would name the snapshot's dump like a roles file",
                                    next: "Use another ending, e.g. --label \(label.dropLast(".globals".count))_globals")
        }
        for field in label.split(separator: "_") where isStamp(Array(field.utf8)[...]) {
            throw PGSnapError.usage("invalid label '\(oneLine(label, limit: 80))': '\(field)' reads as a snapshot time, which would make the snapshot's id ambiguous",
                                    next: "Write the time another way, e.g. --label before_2026-12-06T0500")
        }
    }

    /// The time of an id's time field, `YYYYMMDDTHHMMSSZ` optionally followed by `-n`; nil for
    /// any other field.
    static func stampDate(_ field: ArraySlice<UInt8>) -> Date? {
        var end = field.endIndex
        if let dash = field.firstIndex(of: UInt8(ascii: "-")) {
            guard Int(String(decoding: field[(dash + 1)...], as: UTF8.self)) != nil else { return nil }
            end = dash
        }
        return end - field.startIndex == 16 ? parseTimestamp(Array(field[field.startIndex..<end])) : nil
    }

    static func isStamp(_ field: ArraySlice<UInt8>) -> Bool { stampDate(field) != nil }

    /// Whether more than one field of `id` reads as a snapshot time, so the listing alone cannot
    /// tell its database from its label (a database or label holding a time): its manifest can.
    public static func isAmbiguous(id: String) -> Bool {
        Array(id.utf8).split(separator: UInt8(ascii: "_")).filter { isStamp($0) }.count > 1
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

    /// `20261122T031500Z`. By hand: a DateFormatter per call made listing 10,000 snapshots take seconds.
    public static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }

    /// The id for attempt `n` (1 = no suffix) of a snapshot started at `date`.
    public static func id(database: String, date: Date, label: String?, attempt: Int = 1) -> String {
        var id = encodeDatabase(database) + "_" + timestamp(date)
        if attempt > 1 { id += "-\(attempt)" }
        if let label { id += "_" + label }
        return id
    }

    /// The longest name a file of snapshot `id` gets (its manifest while it is written).
    public static func longestFileName(id: String) -> Int {
        id.utf8.count + ([manifestSuffix, globalsSuffix + encryptedSuffix] + dumpSuffixes).map { $0.utf8.count }.max()! + partialSuffix.utf8.count
    }

    /// File systems' limit on one file name (NAME_MAX), in bytes.
    public static let maxFileName = 255

    /// Refuses, before anything is dumped, an id whose files could not be named.
    ///
    /// - Throws: a usage error: a database name of non-ASCII letters takes three bytes per byte
    ///   in a file name (`%C3%A9`), and a label adds its own length.
    public static func validateLength(id: String, label: String?) throws {
        let longest = longestFileName(id: id)
        guard longest > maxFileName else { return }
        throw PGSnapError.usage("snapshot \(oneLine(id, limit: 80)) would need file names of \(longest) bytes, more than the \(maxFileName) a file system allows",
                                next: label == nil ? "The database name is too long for a file name (its non-ASCII letters take 3 bytes each): back it up under a shorter name" : "Use a shorter --label")
    }

    /// `.age` after the compression suffix: the stored file is age's format (`age -d` first).
    public static let encryptedSuffix = ".age"

    public static func dumpFile(id: String, compression: CompressionAlgorithm, encrypted: Bool = false) -> String {
        id + compression.fileSuffix + (encrypted ? encryptedSuffix : "")
    }

    /// A directory snapshot (`pg_dump -Fd`): `<id>.dir/`, a directory the catalog treats as one dump.
    public static let directorySuffix = ".dir"

    /// Every suffix a dump can have, longest first.
    public static let dumpSuffixes: [String] = (CompressionAlgorithm.allCases
        .flatMap { [$0.fileSuffix + encryptedSuffix, $0.fileSuffix] } + [directorySuffix])
        .sorted { $0.count > $1.count }

    /// An id given on the command line: it must be a plain file-name stem, never a path.
    public static func validateID(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 512, !id.contains("/"), id != ".", id != "..",
              id.unicodeScalars.allSatisfy({ isPlain($0) || $0 == "%" }), id.first != "-"
        else {
            // oneLine trims: say so when the spaces are what is wrong, or the id would look valid.
            let spaced = id.first?.isWhitespace == true || id.last?.isWhitespace == true
            throw PGSnapError.usage("invalid snapshot id '\(oneLine(id, limit: 80))'\(spaced ? " (with spaces around it)" : "")",
                                    next: "Run 'pgsnap list' to see the ids")
        }
    }

    /// Parts recovered from a file name, for leftovers that have no manifest.
    public struct Parsed: Equatable, Sendable {
        public var id: String
        public var encodedDatabase: String
        public var date: Date
        /// What follows the time field, if anything.
        public var label: String? = nil
        /// `n` of a `-n` after the time (a second backup in the same second), else 1.
        public var attempt: Int = 1
    }

    /// Splits `<db>_<YYYYMMDDTHHMMSSZ>[-n][_label]` at the last field that is a timestamp:
    /// database names may hold underscores and even a timestamp (a kept `app_pre_restore_<time>`
    /// copy being backed up), labels usually do not. Nil when the stem is not a pgsnap id.
    public static func parse(id: String) -> Parsed? {
        // Over bytes, not `components(separatedBy:)`: a catalog parses every file name.
        let b = Array(id.utf8)
        var fieldEnd = b.count
        var u = b.count - 1
        while u >= 0 {
            defer { u -= 1 }
            guard b[u] == UInt8(ascii: "_") else { continue }
            let field = b[(u + 1)..<fieldEnd]
            let labelStart = fieldEnd + 1
            fieldEnd = u
            if let date = stampDate(field) {
                let attempt = field.firstIndex(of: UInt8(ascii: "-")).flatMap { Int(String(decoding: field[($0 + 1)...], as: UTF8.self)) } ?? 1
                return Parsed(id: id, encodedDatabase: String(decoding: b[0..<u], as: UTF8.self), date: date,
                              label: labelStart < b.count ? String(decoding: b[labelStart...], as: UTF8.self) : nil, attempt: attempt)
            }
        }
        return nil
    }

    public static func parseTimestamp(_ s: String) -> Date? { parseTimestamp(Array(s.utf8)) }

    static func parseTimestamp(_ b: [UInt8]) -> Date? {
        guard b.count == 16, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z") else { return nil }
        func num(_ from: Int, _ count: Int) -> Int? { decimal(b, from, count) }
        guard let y = num(0, 4), let mo = num(4, 2), let d = num(6, 2), let h = num(9, 2), let mi = num(11, 2), let sec = num(13, 2)
        else { return nil }
        return utcDate(year: y, month: mo, day: d, hour: h, minute: mi, second: sec)
    }
}

/// The unsigned decimal number in `bytes[from..<from+count]`, or nil if any byte is not a digit.
func decimal(_ bytes: [UInt8], _ from: Int, _ count: Int) -> Int? {
    var v = 0
    for i in from..<(from + count) {
        guard bytes[i] >= 0x30, bytes[i] <= 0x39 else { return nil }
        v = v * 10 + Int(bytes[i] - 0x30)
    }
    return v
}

/// A UTC calendar time as a Date, or nil when a field is out of range (2026-02-30 is nil).
func utcDate(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, fraction: Double = 0) -> Date? {
    guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
    else { return nil }
    var tm = tm()
    tm.tm_year = Int32(year - 1900)
    tm.tm_mon = Int32(month - 1)
    tm.tm_mday = Int32(day)
    tm.tm_hour = Int32(hour)
    tm.tm_min = Int32(minute)
    tm.tm_sec = Int32(second)
    let t = timegm(&tm)
    // timegm normalises (Feb 30 -> Mar 2): reject what it had to change.
    guard tm.tm_mday == Int32(day), tm.tm_mon == Int32(month - 1) else { return nil }
    return Date(timeIntervalSince1970: Double(t) + fraction)
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
