import Foundation
import PGSnapCore

/// An encrypted directory snapshot decrypted for pg_restore, which needs plain, seekable files:
/// a private 0700 directory beside the snapshot (`.pgsnap-decrypted-<pid>-<id>`, a dot name the
/// catalog ignores), removed by the caller whatever happens, and by the next restore if a kill
/// -9 left it behind.
enum DecryptedCopy {
    static let prefix = ".pgsnap-decrypted-"

    /// - Returns: the directory's path.
    /// - Throws: `PGSnapError` for too little space, or a file age cannot decrypt (nothing is left behind).
    static func make(_ m: Manifest, dir: SnapshotDirectory, decryption: AgeDecryption, reporter: Reporter,
                     only names: [String]? = nil) throws -> String {
        removeOrphans(in: dir, reporter: reporter)
        let files = (m.files ?? []).filter { names?.contains($0.name) ?? true }
        let bytes = files.reduce(Int64(0)) { $0 + $1.bytes }
        let path = dir.file(prefix + "\(getpid())-" + m.id)
        if let free = dir.freeBytes(), free < bytes + (64 << 20) {
            throw PGSnapError("decrypting \(m.id) for pg_restore needs \(formatBytes(bytes + (64 << 20))) free in \(dir.path) (its files, \(formatBytes(bytes)), and 64 MiB to spare), which has \(formatBytes(free))",
                              next: "Free space there and restore again; nothing was changed")
        }
        if names == nil { reporter.info("pgsnap: decrypting \(files.count) file(s) of \(m.id) (\(formatBytes(bytes))) into \(path) for pg_restore; removed afterwards") }
        try? SnapshotDirectory.removeTree(path)
        guard mkdir(path, 0o700) == 0 else { throw SnapshotDirectory.ioError("create \(path)") }
        var ok = false
        defer { if !ok { try? SnapshotDirectory.removeTree(path) } }
        var results = [Error?](repeating: nil, count: files.count)
        results.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            DispatchQueue.concurrentPerform(iterations: files.count) { i in
                let name = files[i].name
                do {
                    try decryptOne(dir.file(m.file) + "/" + name, to: path + "/" + DirectoryDump.plainName(name), decryption: decryption)
                    (base + i).initialize(to: nil)
                } catch {
                    (base + i).initialize(to: error)
                }
            }
        }
        if let failure = results.compactMap({ $0 }).first {
            if let e = failure as? AgeIdentityMismatch { throw e.error }
            if let e = failure as? PGSnapError, e.status == .verificationFailed {
                throw PGSnapError.verification("snapshot \(m.id) is corrupt: \(e.what)", next: "Nothing was changed; choose another snapshot")
            }
            throw failure
        }
        ok = true
        return path
    }

    static func decryptOne(_ source: String, to destination: String, decryption: AgeDecryption) throws {
        let sink = try FileSink(creating: destination)
        let decryptor = try decryption.decryptor(inner: PlainInflater())
        var finished = false
        defer { if !finished { decryptor.abort() } }
        try SnapshotDirectory.readFile(source) { try decryptor.feed($0, sink: sink.write) }
        try decryptor.finish(sink: sink.write)
        finished = true
    }

    /// Decrypted copies and pg_restore use-lists whose pgsnap is gone (killed): plain data must
    /// not outlive its restore.
    static func removeOrphans(in dir: SnapshotDirectory, reporter: Reporter) {
        let useList = ".pgsnap-use-list-"
        for f in (try? SnapshotDirectory.files(in: dir.path)) ?? [] where f.name.hasPrefix(prefix) || f.name.hasPrefix(useList) {
            let rest = f.name.dropFirst(f.name.hasPrefix(prefix) ? prefix.count : useList.count)
            guard let pid = Int32(rest.prefix { $0.isNumber }), pid != getpid(), kill(pid, 0) != 0 && errno == ESRCH else { continue }
            if f.name.hasPrefix(useList) {
                unlink(dir.file(f.name))
                continue
            }
            reporter.info("pgsnap: removing \(dir.file(f.name)), decrypted files left by an interrupted restore (pid \(pid))")
            try? SnapshotDirectory.removeTree(dir.file(f.name))
        }
    }
}
