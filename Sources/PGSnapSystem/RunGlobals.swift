import Foundation
import PGSnapCore

/// A whole-server run's roles and tablespaces (`backup --all-databases --globals`): written once,
/// before the first database, as `<run>.globals.sql` with its record `<run>.run.json`; then
/// attached to each snapshot of the run just before that snapshot's manifest is written.
///
/// Nothing lost: a manifest refers to the globals only after `attach` found them on disk with
/// their checksum (or wrote them again) under the backup's lock, which prune cannot take; so a
/// crash at any moment leaves no snapshot that refers to missing globals.
public final class RunGlobals {
    public let run: String
    public let createdAt: Date
    public let sha256: String
    let sql: Data
    /// The snapshots attached so far, in order: a record that went missing is written again from them.
    private var snapshots: [String] = []

    /// Age-encrypted (`--encrypt-to`): `sql` holds the encrypted bytes, named `<run>.globals.sql.age`.
    public let encrypted: Bool
    public var globalsFile: String { RunName.globalsFile(run, encrypted: encrypted) }

    init(run: String, createdAt: Date, sql: Data, sha256: String, encrypted: Bool) {
        self.encrypted = encrypted
        self.run = run
        self.createdAt = createdAt
        self.sql = sql
        self.sha256 = sha256
    }

    /// Names the run after `date` (`run-<time>`, `-2`, `-3`... when taken), writes its globals
    /// (partial file created exclusively, fsync, rename), then its record: from then on the run exists.
    ///
    /// - Throws: `PGSnapError` when a file cannot be written (the partial globals file is removed).
    /// - Parameter encrypted: `sql` is already age-encrypted.
    public static func create(sql: Data, in dir: SnapshotDirectory, at date: Date, encrypted: Bool = false) throws -> RunGlobals {
        for attempt in 1...1000 {
            let run = RunName.id(date: date, attempt: attempt)
            let names = RunName.globalsFiles(run) + [RunName.recordFile(run)]
            if names.contains(where: { access(dir.file($0), F_OK) == 0 || access(dir.file($0 + SnapshotName.partialSuffix), F_OK) == 0 }) { continue }
            let partial = dir.file(RunName.globalsFile(run, encrypted: encrypted) + SnapshotName.partialSuffix)
            let sink: FileSink
            do {
                sink = try FileSink(creating: partial)
            } catch is FileSink.AlreadyExists {
                continue
            }
            var done = false
            defer { if !done { unlink(partial) } }
            try sql.withUnsafeBytes { try sink.write($0) }
            try sink.sync()
            guard rename(partial, dir.file(RunName.globalsFile(run, encrypted: encrypted))) == 0 else { throw SnapshotDirectory.ioError("rename \(partial)") }
            try dir.sync()
            done = true
            let globals = RunGlobals(run: run, createdAt: date, sql: sql, sha256: sink.sha256Hex(), encrypted: encrypted)
            try globals.writeRecord(in: dir, over: nil)
            return globals
        }
        throw PGSnapError("cannot find a free run name in \(dir.path)", next: "Remove leftover run-*.partial files there")
    }

    /// Before snapshot `id`'s manifest is written, under that backup's lock: the globals are on disk
    /// with their checksum and the record names `id`. Either is written again when it went missing
    /// or changed meanwhile (a prune between two databases of a run that outlived the grace period).
    ///
    /// - Throws: `PGSnapError` when a file cannot be written; the manifest is then not written either.
    func attach(_ id: String, in dir: SnapshotDirectory) throws {
        if (try? Self.sha256(ofFile: dir.file(globalsFile))) != sha256 {
            try dir.writeAtomically(sql, to: globalsFile)
        }
        if !snapshots.contains(id) { snapshots.append(id) }
        guard case .valid(let onDisk) = dir.runRecord(run) else { return try writeRecord(in: dir, over: nil) }
        try writeRecord(in: dir, over: onDisk)
    }

    /// The record: what is on disk (if it is this run's), plus every snapshot attached.
    private func writeRecord(in dir: SnapshotDirectory, over existing: RunRecord?) throws {
        let fresh = RunRecord(run: run, createdAt: createdAt, globalsBytes: Int64(sql.count), globalsSHA256: sha256, snapshots: snapshots,
                              pgsnapVersion: pgsnapVersion, encrypted: encrypted)
        let record = (existing.flatMap { try? $0.merged(with: fresh) }) ?? fresh
        try dir.writeAtomically(try record.encoded(), to: RunName.recordFile(run))
    }

    /// SHA-256 of a whole regular file.
    static func sha256(ofFile path: String) throws -> String {
        var hash = SHA256Stream()
        try SnapshotDirectory.readFile(path) { hash.update($0) }
        return hash.finalizeHex()
    }
}

extension SnapshotDirectory {
    /// The run record `<run>.run.json`: `.missing` when there is none, `.invalid` when it cannot be used.
    public func runRecord(_ run: String) -> RunFiles.Record {
        let name = RunName.recordFile(run)
        guard access(file(name), F_OK) == 0 else { return .missing }
        do {
            return .valid(try RunRecord.decode(bytes: try LocalStorage(self).readSmall(name, limit: Manifest.maxBytes), fileName: name))
        } catch {
            return .invalid("\(error)")
        }
    }
}
