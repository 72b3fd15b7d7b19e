import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

extension RemoteOptions {
    /// What `restore` loads from: files on disk (pg_restore reads a directory, and the SHA-256 is
    /// proven before the load touches anything). With --remote the snapshot the selector means is
    /// pulled first (unless it is already whole locally), checked as it streams, and the restore
    /// gets its exact id; without, the selector as given.
    func onDisk(_ selector: SnapshotSelector, session: Session, wait: Double?) throws -> SnapshotSelector {
        guard wanted else { return selector }
        // The restore will need the key: without one, or with a wrong one, nothing is downloaded.
        let pulled = try TransferService(session: session, remote: try storage(session.environment)).pull(selector, wait: wait, requireIdentity: true)
        return SnapshotSelector(kind: .id(pulled.id))
    }

    /// The drill of the newest snapshot where the command works: the directory, or with --remote
    /// the bucket's, through a private temporary copy.
    func drill(_ service: RestoreService, database: String?, session: Session) throws -> DrillResult {
        guard wanted else { return try service.drill(database: database) }
        return try service.drill(database: database, from: try storage(session.environment))
    }
}

/// `backup --push`: verify the new snapshot locally, then push it. Any failure of either is
/// exit 6: the local snapshot stays (it is good), only the offsite copy is missing.
func pushAfterBackup(_ manifest: Manifest, storage: S3Storage, session: Session, wait: Double?) throws {
    let dir = try session.directory(create: false)
    let entry = try SnapshotSelector(kind: .id(manifest.id)).select(from: try dir.catalog(), directory: dir.path)
    let check = VerifyService(session: session).verify(entry, in: dir)
    guard check.ok else {
        throw PGSnapError.verification("new snapshot \(manifest.id) failed verification (\(check.failedCheck ?? "?"): \(check.detail ?? "")); nothing was pushed",
                                       next: "Investigate before trusting this backup")
    }
    do {
        _ = try TransferService(session: session, remote: storage).push(selector: SnapshotSelector(kind: .id(manifest.id)), all: false, wait: wait)
    } catch let e as PGSnapError where e.status != .interrupted {
        throw PGSnapError(.offsiteCopyFailed, "snapshot \(manifest.id) is good in \(dir.path), but its offsite copy failed: \(e.what)",
                          next: "Run 'pgsnap push \(manifest.id)' when \(storage.location) is reachable")
    }
}
