import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// `restore --remote`: pull the snapshot the selector means (unless it is already whole
/// locally), then hand the usual restore its exact id.
func pullForRestore(_ remote: RemoteOptions, session: Session, selector: SnapshotSelector, wait: Double?) throws -> SnapshotSelector {
    let storage = try remote.storage(session.environment)
    // The restore will need the key: without one, or with a wrong one, nothing is downloaded.
    let pulled = try TransferService(session: session, remote: storage).pull(selector, wait: wait, requireIdentity: true)
    return SnapshotSelector(kind: .id(pulled.id))
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
