import Foundation
import XCTest

@testable import PGSnapCore
@testable import PGSnapSystem

/// push and pull are a copy between two storages: here the directory and the in-memory storage,
/// so the transfer's rules (manifest last, checked as it streams, nothing kept from a damaged
/// copy, a whole copy not sent again) are shown without S3.
final class TransferTests: XCTestCase {
    /// A directory holding one plain snapshot (the verify tests' dump), and its id.
    func directoryWithSnapshot() throws -> (dir: String, id: String) {
        let dir = try makeTemporaryDirectory(self)
        let memory = try VerifyServiceTests.storage(test: self)
        let local = LocalStorage(try SnapshotDirectory(path: dir, create: false))
        for name in memory.names {
            try local.putSmall(name, bytes: try memory.readSmall(name, limit: 1 << 20))
        }
        return (dir, VerifyServiceTests.id)
    }

    func snapshotFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    func testPushThenPullGivesTheSameBytesAndAWholeCopyIsNotSentAgain() throws {
        let (dir, id) = try directoryWithSnapshot()
        let memory = InMemoryStorage(chunkSize: 5)
        let pushed = try TransferService(session: try VerifyServiceTests.session(directory: dir), remote: memory)
            .push(selector: nil, all: true, wait: nil)
        XCTAssertEqual(pushed.map(\.action), ["uploaded"])
        XCTAssertEqual(memory.names, [id + ".manifest.json", id + ".sql.gz"])
        XCTAssertEqual(try memory.stat(id + ".sql.gz")?.sha256, try sha256sum(dir + "/" + id + ".sql.gz"),
                       "the SHA-256 is recorded with the copy")
        let again = try TransferService(session: try VerifyServiceTests.session(directory: dir), remote: memory)
            .push(selector: nil, all: true, wait: nil)
        XCTAssertEqual(again.map(\.action), ["skipped"])

        let fresh = try makeTemporaryDirectory(self)
        let pulled = try TransferService(session: try VerifyServiceTests.session(directory: fresh), remote: memory)
            .pull(SnapshotSelector(kind: .latest), wait: nil)
        XCTAssertEqual(pulled.action, "downloaded")
        XCTAssertEqual(snapshotFiles(fresh), [id + ".manifest.json", id + ".sql.gz"])
        for name in snapshotFiles(fresh) {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: fresh + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)), name)
        }
    }

    func testADamagedCopyIsNotPulledAndNothingIsKept() throws {
        let (dir, id) = try directoryWithSnapshot()
        let memory = InMemoryStorage()
        _ = try TransferService(session: try VerifyServiceTests.session(directory: dir), remote: memory).push(selector: nil, all: true, wait: nil)
        var bytes = try memory.readSmall(id + ".sql.gz", limit: 1 << 20)
        bytes[bytes.count / 2] ^= 0xFF
        try memory.putSmall(id + ".sql.gz", bytes: bytes)

        let fresh = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try TransferService(session: try VerifyServiceTests.session(directory: fresh), remote: memory)
            .pull(SnapshotSelector(kind: .id(id)), wait: nil)) { error in
            let e = error as? PGSnapError
            XCTAssertEqual(e?.status, .verificationFailed, "\(error)")
            XCTAssertTrue(e?.what.contains("SHA-256") ?? false, "\(error)")
        }
        XCTAssertEqual(snapshotFiles(fresh), [], "nothing that looks like a snapshot is kept")
    }

    /// A directory snapshot in one in-memory storage: three files (one over the 5 MiB a small
    /// write takes), their manifest, and the manifest's bytes.
    func directorySnapshot(in source: InMemoryStorage) throws -> (Manifest, [UInt8]) {
        var m = Manifest(
            id: VerifyServiceTests.id, database: "app", label: nil, createdAt: Date(timeIntervalSince1970: 1_795_000_000), durationSeconds: 1,
            file: VerifyServiceTests.id + ".dir", compressedBytes: 0, uncompressedBytes: 0, sha256: "",
            compression: .init(algorithm: .gzip, level: 6), pgDumpVersion: "15.14", serverVersion: "15.14", host: nil, port: nil,
            user: nil, migration: nil, tableRows: [:], databaseProperties: nil, timings: nil, pgsnapVersion: "0.1.0")
        m.dumpFormat = "directory"
        m.formatVersion = 2
        let contents: [(String, [UInt8])] = [("toc.dat", Array("toc".utf8)), ("3001.dat.gz", [UInt8](repeating: 7, count: 6 << 20)),
                                             ("3002.dat.gz", Array("rows".utf8))]
        m.files = contents.map { StoredFile(name: $0.0, bytes: Int64($0.1.count), sha256: VerifyServiceTests.sha256($0.1)) }
        m.compressedBytes = m.files!.reduce(0) { $0 + $1.bytes }
        m.sha256 = m.files![0].sha256
        for (name, bytes) in contents { try source.putSmall(m.file + "/" + name, bytes: bytes) }
        let manifest = [UInt8](try m.encoded())
        try source.putSmall(m.id + SnapshotName.manifestSuffix, bytes: manifest)
        return (m, manifest)
    }

    func transfer(_ source: SnapshotStorage, _ destination: SnapshotStorage) throws -> SnapshotTransfer {
        SnapshotTransfer(source: source, destination: destination, reporter: Reporter(quiet: true, json: false), next: "fix it", verb: "copied")
    }

    /// The same copy whichever way it goes: a damaged file stops it before the manifest (nothing
    /// that lists as a snapshot; on disk not even the folder's final name), the next run sends
    /// only what is missing, and a file of an earlier copy that the manifest does not name is removed.
    func testADirectorySnapshotResumesFileByFileAndTheManifestComesLast() throws {
        let source = InMemoryStorage(chunkSize: 1 << 16)
        let (m, manifest) = try directorySnapshot(in: source)
        let big = m.file + "/3001.dat.gz"
        let good = try source.readSmall(big, limit: 8 << 20)
        var bad = good
        bad[bad.count - 1] ^= 1
        try source.putSmall(big, bytes: bad)

        for destination: SnapshotStorage in [InMemoryStorage(), LocalStorage(try SnapshotDirectory(path: try makeTemporaryDirectory(self), create: false))] {
            let staging = destination.stagingFolder(for: m.file)
            try destination.putSmall(staging + "/stray.dat.gz", bytes: [1, 2, 3])
            try source.putSmall(big, bytes: bad)
            XCTAssertEqual(try transfer(source, destination).plan(m).stray, [staging + "/stray.dat.gz"], "an earlier copy's file the manifest does not name")
            XCTAssertThrowsError(try transfer(source, destination).copy(m, manifestBytes: manifest)) { error in
                XCTAssertEqual((error as? PGSnapError)?.status, .verificationFailed, "\(error)")
            }
            XCTAssertNil(try destination.size(of: m.id + SnapshotName.manifestSuffix), "no manifest, no snapshot: \(destination.location)")
            XCTAssertFalse(try destination.catalog().contains { $0.isGood }, destination.location)
            XCTAssertNil(try destination.size(of: big), "a damaged file never carries its name: \(destination.location)")
            if destination is LocalStorage {
                XCTAssertEqual(try destination.files(inDirectory: m.file).map(\.name), [], "on disk the folder waits as \(staging)")
                XCTAssertEqual(try destination.files(inDirectory: staging).map(\.name), ["toc.dat"])
            }

            try source.putSmall(big, bytes: good)
            let plan = try transfer(source, destination).plan(m)
            XCTAssertEqual(plan.send.map(\.name), [big, m.file + "/3002.dat.gz"], "the file sent before is not sent again: \(destination.location)")
            XCTAssertEqual(plan.stray, [], "removed by the first run")
            XCTAssertEqual(try transfer(source, destination).copy(m, manifestBytes: manifest), Int64(good.count + 4))
            XCTAssertEqual(try destination.files(inDirectory: m.file).map(\.name), ["3001.dat.gz", "3002.dat.gz", "toc.dat"])
            XCTAssertEqual(try destination.catalog().map { "\($0.id) \($0.status) \($0.problem ?? "")" }, ["\(m.id) good "], destination.location)
            XCTAssertEqual(try destination.readSmall(big, limit: 8 << 20), good)
        }
    }

    /// A whole-server run's globals under the same run name but with other bytes belong to
    /// another server's run: refused before anything is copied, never overwritten.
    func testAnotherRunsGlobalsAreNeverOverwritten() throws {
        let source = try VerifyServiceTests.storage(test: self) { m in
            m.run = "run-20261122T031500Z"
            m.globalsFile = "run-20261122T031500Z.globals.sql"
            m.globalsSHA256 = VerifyServiceTests.sha256(Array("CREATE ROLE app;".utf8))
        }
        let m = try Manifest.decode(bytes: try source.readSmall(VerifyServiceTests.id + SnapshotName.manifestSuffix, limit: 1 << 20), fileName: VerifyServiceTests.id + SnapshotName.manifestSuffix)
        try source.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE app;".utf8))
        let destination = InMemoryStorage()
        try destination.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE other;".utf8))
        XCTAssertThrowsError(try transfer(source, destination).copy(m, manifestBytes: [])) { error in
            XCTAssertTrue("\(error)".contains("two runs are named run-20261122T031500Z"), "\(error)")
        }
        XCTAssertEqual(destination.names, [m.globalsFile!], "nothing was copied")
        XCTAssertEqual(try destination.readSmall(m.globalsFile!, limit: 100), Array("CREATE ROLE other;".utf8))

        // The source's globals damaged, the destination's whole (by the manifest's checksum): not sent, no refusal.
        let whole = InMemoryStorage()
        try whole.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE app;".utf8))
        try source.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE app; -- damaged".utf8))
        XCTAssertEqual(try transfer(source, whole).plan(m).send.map(\.name), [m.file])
        try source.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE app;".utf8))

        // A destination record that cannot be read is never overwritten unread: refused before anything is sent.
        let unreadable = InMemoryStorage()
        try unreadable.putSmall(RunName.recordFile(m.run!), bytes: Array("not json".utf8))
        XCTAssertThrowsError(try transfer(source, unreadable).copy(m, manifestBytes: [])) { error in
            XCTAssertTrue("\(error)".contains("cannot be read"), "\(error)")
        }
        XCTAssertEqual(unreadable.names, [RunName.recordFile(m.run!)], "nothing was copied")
        XCTAssertEqual(try unreadable.readSmall(RunName.recordFile(m.run!), limit: 100), Array("not json".utf8))

        let fresh = InMemoryStorage()
        _ = try transfer(source, fresh).copy(m, manifestBytes: try source.readSmall(m.id + SnapshotName.manifestSuffix, limit: 1 << 20))
        let record = try RunRecord.decode(bytes: try fresh.readSmall(RunName.recordFile(m.run!), limit: 1 << 20), fileName: RunName.recordFile(m.run!))
        XCTAssertEqual(record.snapshots, [m.id], "the run's record names the snapshot, written before its manifest")
    }

    /// A running directory backup removes `.dir.partial` folders nobody holds: a transfer's
    /// staging folder is held (flocked) while the transfer runs, so it stays; once the writer is
    /// gone, it is a leftover like any other.
    func testABackupsCleanupLeavesAHeldStagingFolderAlone() throws {
        let path = try makeTemporaryDirectory(self)
        let dir = try SnapshotDirectory(path: path, create: false)
        var writer: LocalStorage? = LocalStorage(dir)
        let staging = writer!.stagingFolder(for: VerifyServiceTests.id + ".dir")
        try writer!.beginFolder(staging)
        try writer!.putSmall(staging + "/toc.dat", bytes: [1])
        var anHourAgo = [timeval(tv_sec: time(nil) - 3600, tv_usec: 0), timeval(tv_sec: time(nil) - 3600, tv_usec: 0)]
        XCTAssertEqual(utimes(dir.file(staging), &anHourAgo), 0)
        let backup = BackupService(session: try VerifyServiceTests.session(directory: path))

        backup.removeAbandonedPartials(dir)
        XCTAssertEqual(try LocalStorage(dir).files(inDirectory: staging).map(\.name), ["toc.dat"], "a held staging folder is not abandoned")
        XCTAssertThrowsError(try LocalStorage(dir).beginFolder(staging), "a second writer is refused")

        writer = nil
        backup.removeAbandonedPartials(dir)
        XCTAssertEqual(access(dir.file(staging), F_OK), -1, "the writer is gone: the folder is a leftover")
    }

    /// A refused directory copy (here: another run's globals on disk) leaves no empty staging
    /// folder; and a staged folder never replaces a whole snapshot (one with its manifest).
    func testARefusedDirectoryCopyLeavesNothingAndAWholeSnapshotIsNeverReplaced() throws {
        let source = InMemoryStorage(chunkSize: 1 << 16)
        var (m, manifest) = try directorySnapshot(in: source)
        m.run = "run-20261122T031500Z"
        m.globalsFile = "run-20261122T031500Z.globals.sql"
        m.globalsSHA256 = VerifyServiceTests.sha256(Array("CREATE ROLE app;".utf8))
        try source.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE app;".utf8))
        let path = try makeTemporaryDirectory(self)
        let local = LocalStorage(try SnapshotDirectory(path: path, create: false))
        try local.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE other;".utf8))
        XCTAssertThrowsError(try transfer(source, local).copy(m, manifestBytes: manifest)) { error in
            XCTAssertTrue("\(error)".contains("two runs are named"), "\(error)")
        }
        XCTAssertEqual(snapshotFiles(path), [m.globalsFile!], "no staging folder, nothing else")

        try local.putSmall(m.globalsFile!, bytes: Array("CREATE ROLE app;".utf8))
        try local.putSmall(m.file + "/toc.dat", bytes: [1])
        try local.putSmall(m.id + SnapshotName.manifestSuffix, bytes: manifest)
        XCTAssertThrowsError(try transfer(source, local).copy(m, manifestBytes: manifest)) { error in
            XCTAssertTrue("\(error)".contains("already a whole snapshot"), "\(error)")
        }
        XCTAssertEqual(try local.files(inDirectory: m.file).map(\.name), ["toc.dat"], "the whole snapshot's folder is untouched")
    }

    /// push never writes over another snapshot that carries the same id in the bucket (two
    /// machines, one prefix): refused, the bucket's copy untouched.
    func testPushRefusesADifferentSnapshotUnderTheSameID() throws {
        let (dir, id) = try directoryWithSnapshot()
        let memory = InMemoryStorage()
        let name = id + SnapshotName.manifestSuffix
        var other = try Manifest.decode(bytes: try LocalStorage(try SnapshotDirectory(path: dir, create: false)).readSmall(name, limit: 1 << 20),
                                        fileName: name)
        other.sha256 = String(repeating: "0", count: 64)
        let theirs = [UInt8](try other.encoded())
        try memory.putSmall(name, bytes: theirs)
        XCTAssertThrowsError(try TransferService(session: try VerifyServiceTests.session(directory: dir), remote: memory)
            .push(selector: nil, all: true, wait: nil)) { error in
            XCTAssertTrue("\(error)".contains("a different snapshot named \(id)"), "\(error)")
        }
        XCTAssertEqual(memory.names, [name], "nothing was sent")
        XCTAssertEqual(try memory.readSmall(name, limit: 1 << 20), theirs)
    }
}
