import Foundation
import PGSnapCore

/// The outcome of `pgsnap drill`, for its output, metrics and notification.
public struct DrillResult: Encodable, Sendable {
    public var snapshot: String
    public var database: String
    public var ok: Bool
    public var failedCheck: String?
    public var detail: String?
    public var seconds: Double
    public var tables: Int?
    public var rows: Int64?
    public var compressedBytes: Int64?
    public var uncompressedBytes: Int64?
    public var at: Date
}

extension RestoreService {
    /// The restore drill: the snapshot `restore latest` would restore is verified, restored into
    /// a scratch database on the server, its row counts compared with the manifest, the scratch
    /// database dropped, and the result recorded in the manifest (`restore_test`).
    ///
    /// The newest committed snapshot is drilled, good or not: passing over a damaged one would
    /// report a restore that `restore latest` would not do.
    ///
    /// - Parameter database: whose newest snapshot; nil for the newest of any database.
    /// - Throws: `PGSnapError` when there is no snapshot, the directory is locked, the key is
    ///   missing, or the server cannot be reached; a failed check is a result, not an error.
    public func drill(database: String?) throws -> DrillResult {
        let start = DispatchTime.now()
        let dir = try session.directory(create: false)
        let storage = LocalStorage(dir)
        let entry = try SnapshotSelector(kind: .latest, database: database).select(from: try storage.catalog(), directory: storage.location)
        var r = VerifyService(session: session).verify(entry, in: storage)
        if r.failedCheck == "identity" || r.failedCheck == "age" {
            throw PGSnapError(r.detail ?? "cannot decrypt \(entry.id)", next: "Pass --identity (or PGSNAP_AGE_IDENTITY) with the key of the snapshot")
        }
        if r.ok {
            r = try restoreTest(entry, in: dir)
        } else if let m = entry.manifest {
            try record(RestoreTestRecord(ok: false, seconds: seconds(since: start), detail: "\(r.failedCheck ?? "?") check failed: \(r.detail ?? "")",
                                         rows: nil), manifest: m, in: dir)
        }
        let m = entry.manifest
        return DrillResult(snapshot: entry.id, database: entry.database, ok: r.ok, failedCheck: r.failedCheck, detail: r.detail,
                           seconds: r.ok ? (r.seconds ?? seconds(since: start)) : seconds(since: start), tables: r.tables, rows: r.rows,
                           compressedBytes: m?.compressedBytes, uncompressedBytes: m?.uncompressedBytes, at: session.now())
    }

    /// The drill of a bucket's newest snapshot (`drill --remote`), for a server that backs up
    /// straight to the bucket: the snapshot is pulled into a private temporary directory (0700,
    /// checked as it streams), drilled there, and its manifest with the drill's result is put
    /// back in the bucket (one PUT, whole or not at all); the copy is removed whatever happened.
    ///
    /// - Throws: as `drill`, and exit 2 when the bucket's copy does not match its manifest.
    public func drill(database: String?, from remote: SnapshotStorage) throws -> DrillResult {
        let temp = try SnapshotDirectory.makePrivateTemporary(prefix: "pgsnap-drill", environment: session.environment, for: "the drill's copy")
        defer { try? SnapshotDirectory.removeTree(temp) }
        let local = try session.inDirectory(temp)
        let pulled = try TransferService(session: local, remote: remote).pull(SnapshotSelector(kind: .latest, database: database), wait: nil,
                                                                          requireIdentity: true)
        let result = try RestoreService(session: local).drill(database: database)
        let name = pulled.id + SnapshotName.manifestSuffix
        try remote.putSmall(name, bytes: try LocalStorage(try local.directory(create: false)).readSmall(name, limit: Manifest.maxBytes))
        return result
    }

    struct RestoreTestRecord {
        var ok: Bool
        var seconds: Double
        var detail: String?
        var rows: Int64?
    }

    /// A drill that failed before the restore still leaves its proof in the manifest (`list` shows it).
    func record(_ t: RestoreTestRecord, manifest: Manifest, in dir: SnapshotDirectory) throws {
        let lock = try DirectoryLock(directory: dir, mode: .shared, command: "drill", wait: nil)
        defer { withExtendedLifetime(lock) {} }
        var updated = manifest
        updated.restoreTest = .init(at: session.now(), ok: t.ok, seconds: t.seconds, detail: t.detail, rows: t.rows)
        try dir.writeAtomically(try updated.encoded(), to: manifest.id + SnapshotName.manifestSuffix)
    }

    /// node_exporter textfile metrics of the drill, written to a temporary file and renamed.
    public func writeDrillMetrics(_ r: DrillResult, to path: String) throws {
        try writeDrillMetrics(DrillMetrics.text(database: r.database, ok: r.ok, seconds: r.seconds, rows: r.rows, at: r.at), to: path)
    }

    /// A drill that could not run at all (no snapshot, no server) is a failed drill to monitoring too.
    public func writeFailedDrillMetrics(database: String, to path: String) throws {
        try writeDrillMetrics(DrillMetrics.text(database: database, ok: false, seconds: 0, rows: nil, at: session.now()), to: path)
    }

    func writeDrillMetrics(_ text: String, to path: String) throws {
        let dir = try SnapshotDirectory.forWriting(SnapshotDirectory.parent(of: path))
        try dir.writeAtomically(Data(text.utf8), to: (path as NSString).lastPathComponent, mode: 0o644)
    }
}
