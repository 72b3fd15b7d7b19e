import Foundation

/// How the files of a whole-server run (`backup --all-databases --globals`) are named:
/// `run-<UTC time>[-<n>]`, its roles and tablespaces `<run>.globals.sql`, its record `<run>.run.json`.
///
/// A run id never holds `_`, and every snapshot id does (`<database>_<time>`), so a run's files are
/// never taken for a snapshot's, whatever the databases are called.
public enum RunName {
    public static let prefix = "run-"
    public static let recordSuffix = ".run.json"

    /// The id for attempt `n` (1 = no suffix) of a run started at `date`.
    public static func id(date: Date, attempt: Int = 1) -> String {
        prefix + SnapshotName.timestamp(date) + (attempt > 1 ? "-\(attempt)" : "")
    }

    /// The time in a run id, or nil when `run` is not one.
    public static func parse(_ run: String) -> Date? {
        guard run.hasPrefix(prefix) else { return nil }
        let rest = run.dropFirst(prefix.count)
        let stamp = rest.prefix(16)
        let tail = rest.dropFirst(16)
        let digits = tail.dropFirst()
        guard tail.isEmpty || (tail.hasPrefix("-") && (1...4).contains(digits.count) && digits.allSatisfy({ $0 >= "0" && $0 <= "9" })
                               && digits.first != "0" && Int(digits)! > 1)
        else { return nil }
        return SnapshotName.parseTimestamp(String(stamp))
    }

    public static func globalsFile(_ run: String, encrypted: Bool = false) -> String {
        run + (encrypted ? SnapshotName.encryptedGlobalsSuffix : SnapshotName.globalsSuffix)
    }
    /// Both names a run's globals may have: plain, or age-encrypted (`--encrypt-to`).
    public static func globalsFiles(_ run: String) -> [String] { [globalsFile(run), globalsFile(run, encrypted: true)] }
    public static func recordFile(_ run: String) -> String { run + recordSuffix }

    /// The run a file of the backup directory (or bucket) belongs to: its globals, its record, or
    /// either of those while being written (`.partial`); nil for anything else.
    public static func run(ofFile name: String) -> String? {
        var stem = name
        if stem.hasSuffix(SnapshotName.partialSuffix) { stem.removeLast(SnapshotName.partialSuffix.count) }
        for suffix in [SnapshotName.globalsSuffix, SnapshotName.encryptedGlobalsSuffix, recordSuffix] where stem.hasSuffix(suffix) {
            let run = String(stem.dropLast(suffix.count))
            return parse(run) == nil ? nil : run
        }
        return nil
    }
}

/// `<run>.run.json`: the commit point of a whole-server run's globals, written once they are on
/// disk, and the list of the run's snapshots, which grows as each is committed.
///
/// Every snapshot of the run refers to the globals by name and checksum in its own manifest
/// (`run`, `globals_file`, `globals_sha256`); the record says the same from the run's side, so
/// that a bucket's retention can tell which snapshots refer to the globals from one small GET
/// per run instead of reading every manifest. A snapshot's id is added before its manifest is
/// written: a record may name a snapshot that never finished, never the other way round.
public struct RunRecord: Encodable, Equatable, Sendable {
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var run: String
    public var createdAt: Date
    public var globalsFile: String
    public var globalsBytes: Int64
    public var globalsSHA256: String
    /// The snapshots of the run, in the order they were taken.
    public var snapshots: [String]
    public var pgsnapVersion: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case formatVersion = "format_version"
        case run
        case createdAt = "created_at"
        case globalsFile = "globals_file"
        case globalsBytes = "globals_bytes"
        case globalsSHA256 = "globals_sha256"
        case snapshots
        case pgsnapVersion = "pgsnap_version"
    }

    public init(run: String, createdAt: Date, globalsBytes: Int64, globalsSHA256: String, snapshots: [String] = [], pgsnapVersion: String,
                encrypted: Bool = false) {
        self.formatVersion = RunRecord.currentFormatVersion
        self.run = run
        self.createdAt = createdAt
        self.globalsFile = RunName.globalsFile(run, encrypted: encrypted)
        self.globalsBytes = globalsBytes
        self.globalsSHA256 = globalsSHA256
        self.snapshots = snapshots
        self.pgsnapVersion = pgsnapVersion
    }

    /// The record with `id` among its snapshots (once).
    public func adding(_ id: String) -> RunRecord {
        var r = self
        if !r.snapshots.contains(id) { r.snapshots.append(id) }
        return r
    }

    /// Two copies of one run's record (local and remote) as one: every snapshot either names.
    ///
    /// - Throws: `PGSnapError` when they describe different globals (two runs under one name).
    public func merged(with other: RunRecord) throws -> RunRecord {
        guard other.run == run, other.globalsSHA256 == globalsSHA256, other.globalsBytes == globalsBytes, other.globalsFile == globalsFile else {
            throw PGSnapError("two different runs are named \(run): their globals differ (SHA-256 \(globalsSHA256) and \(other.globalsSHA256))",
                              next: "Keep each server's snapshots under its own --dir and remote prefix")
        }
        return other.snapshots.reduce(self) { $0.adding($1) }
    }

    public func encoded() throws -> Data {
        try Manifest.encoder.encode(WithNulls(self)) + Data("\n".utf8)
    }

    /// Parses and checks a run record read from `fileName`.
    ///
    /// - Throws: `PGSnapError.verification` naming the file and what is wrong with it.
    public static func decode(bytes: [UInt8], fileName: String) throws -> RunRecord {
        func bad(_ why: String) -> PGSnapError { PGSnapError.verification("run record \(fileName) \(why)") }
        guard bytes.count <= Manifest.maxBytes else { throw bad("is \(bytes.count) bytes, larger than any run record") }
        var r: RunRecord
        do {
            let f = try JSONFields(try JSONValue.parse(bytes))
            typealias J = JSONFields
            r = RunRecord(run: try f.required("run", J.string), createdAt: try f.required("created_at", J.date),
                          globalsBytes: try f.required("globals_bytes", J.int64), globalsSHA256: try f.required("globals_sha256", J.string),
                          snapshots: try f.required("snapshots", J.strings), pgsnapVersion: try f.required("pgsnap_version", J.string))
            r.formatVersion = try f.required("format_version", J.int)
            r.globalsFile = try f.required("globals_file", J.string)
        } catch JSONFields.Failure.missing(let field) {
            throw bad("is missing the field '\(field)'")
        } catch JSONFields.Failure.wrongType(let path) {
            throw bad("has a wrong type at '\(path)'")
        } catch {
            throw bad("is not valid JSON")
        }
        guard r.formatVersion >= 1, r.formatVersion <= currentFormatVersion else {
            throw PGSnapError.verification("run record \(fileName) has format_version \(r.formatVersion); this pgsnap reads up to \(currentFormatVersion)",
                                           next: "Use a newer pgsnap")
        }
        guard RunName.parse(r.run) != nil, fileName == RunName.recordFile(r.run), RunName.globalsFiles(r.run).contains(r.globalsFile) else {
            throw bad("names a run or globals file that does not belong to it")
        }
        guard r.globalsBytes >= 0, r.globalsSHA256.count == 64, r.globalsSHA256.allSatisfy({ $0.isASCII && $0.isHexDigit }) else {
            throw bad("has an impossible size or checksum")
        }
        guard r.snapshots.allSatisfy({ (try? SnapshotName.validateID($0)) != nil && SnapshotName.parse(id: $0) != nil }) else {
            throw bad("lists something that is not a snapshot id")
        }
        return r
    }
}
