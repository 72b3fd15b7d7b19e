import Foundation
import PGSnapCore

/// A directory snapshot: the files are exactly the manifest's, each with its size and SHA-256,
/// every gzip file decompresses in full, every table's rows recount to the manifest's, and
/// `pg_restore --list` reads the table of contents. The first failure names the file.
extension VerifyService {
    func verifyDirectory(_ m: Manifest, in storage: SnapshotStorage, decryption: AgeDecryption?, result: inout VerifyResult,
                         start: DispatchTime) -> VerifyResult {
        let expected = m.files ?? []
        let present: [DirectoryFile]
        do { present = try storage.files(inDirectory: m.file) } catch { return failed(&result, "files", "\(error)") }
        let sizes = Dictionary(present.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        if let missing = expected.first(where: { sizes[$0.name] == nil }) {
            return failed(&result, "files", "\(m.file)/\(missing.name) is missing")
        }
        let expectedNames = Set(expected.map(\.name))
        if let extra = present.first(where: { !expectedNames.contains($0.name) }) {
            return failed(&result, "files", "\(m.file)/\(oneLine(extra.name, limit: 80)) is not part of the snapshot")
        }
        if let odd = present.first(where: { $0.size < 0 }) {
            return failed(&result, "files", "\(m.file)/\(odd.name) is not a regular file")
        }
        // Encrypted and no identity: what the stored files show (size, SHA-256, age header), as for plain snapshots.
        let storedOnly = m.encryption != nil && decryption == nil
        let results = Self.readBack(expected.map(\.name), of: m.file, sizes: sizes, in: storage, inflate: !storedOnly, decryption: decryption)
        result.seconds = seconds(since: start)
        var inflated: Int64 = 0
        for (f, r) in zip(expected, results) {
            if let e = r.error, r.check == "files" { return failed(&result, "files", e) }
            if r.bytes != f.bytes { return failed(&result, "size", "\(m.file)/\(f.name) is \(r.bytes) bytes, manifest says \(f.bytes)") }
            if r.sha256 != f.sha256 { return failed(&result, "checksum", "\(m.file)/\(f.name) has SHA-256 \(r.sha256), manifest says \(f.sha256)") }
            if let e = r.error { return failed(&result, r.check, "\(m.file)/\(e)") }
            if storedOnly, let encryption = m.encryption {
                let problem: String?
                do {
                    problem = Self.ageHeader(try storage.readPrefix(m.file + "/" + f.name, count: 64 << 10), encryption: encryption).problem
                } catch {
                    problem = "\(error)"
                }
                if let problem { return failed(&result, "header", "\(m.file)/\(f.name): \(problem)") }
                continue
            }
            if let table = f.table {
                guard let rows = r.rows else { return failed(&result, "trailer", "\(m.file)/\(f.name) (table \(table)) ends without pg_dump's end-of-data marker") }
                if rows != f.rows { return failed(&result, "row_counts", "table \(table) has \(rows) rows in \(f.name), manifest says \(f.rows.map(String.init) ?? "none")") }
            }
            inflated += r.inflatedBytes
        }
        if storedOnly {
            result.ok = true
            result.contentsChecked = false
            result.detail = "age headers of all \(expected.count) files"
            result.seconds = seconds(since: start)
            return result
        }
        result.uncompressedBytes = inflated
        result.tables = m.tableRows.count
        result.rows = m.tableRows.values.reduce(0, +)
        if inflated != m.uncompressedBytes {
            return failed(&result, "decompression", "the files are \(inflated) bytes uncompressed, manifest says \(m.uncompressedBytes)")
        }
        let toc: [TOCEntry]
        do {
            toc = try tableOfContents(m, in: storage, decryption: decryption)
        } catch {
            return failed(&result, "toc", "\(error)")
        }
        let dataFiles = Set(expected.compactMap { $0.table == nil ? nil : DirectoryDump.dataFileDumpID($0.name) })
        let listed = Set(toc.filter { $0.desc == "TABLE DATA" }.map(\.dumpID))
        if listed != dataFiles {
            return failed(&result, "toc", "the table of contents lists \(listed.count) table data entries, the manifest \(dataFiles.count) data files")
        }
        result.seconds = seconds(since: start)
        result.ok = true
        return result
    }

    /// Every file read once, several at a time, biggest first so the cores finish together.
    static func readBack(_ names: [String], of folder: String, sizes: [String: Int64], in storage: SnapshotStorage, inflate: Bool,
                         decryption: AgeDecryption?) -> [DirectoryReadback.FileResult] {
        let order = names.sorted { (sizes[$0] ?? 0) > (sizes[$1] ?? 0) }
        var results = [DirectoryReadback.FileResult?](repeating: nil, count: order.count)
        results.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            DispatchQueue.concurrentPerform(iterations: order.count) { i in
                let name = order[i]
                var reader = FileReader(name: name, inflate: inflate, decryption: decryption)
                do {
                    try storage.read(folder + "/" + name, size: sizes[name] ?? 0) { reader.consume($0) }
                } catch {
                    reader.result.error = "cannot read \(name): \(error)"
                    (base + i).initialize(to: reader.result)
                    return
                }
                // Also after a file failed to inflate: it was read whole, so its size and SHA-256
                // still say whether it is what the backup wrote (damaged since) or not (written so).
                (base + i).initialize(to: reader.finish())
            }
        }
        let byName = Dictionary(uniqueKeysWithValues: results.compactMap { $0 }.map { ($0.name, $0) })
        return names.map { byName[$0]! }
    }

    /// `pg_restore --list` over the snapshot's `toc.dat`, copied (decrypted when encrypted) from
    /// the storage into a private 0700 directory that is removed afterwards: the same read for a
    /// directory on disk and for a bucket.
    func tableOfContents(_ m: Manifest, in storage: SnapshotStorage, decryption: AgeDecryption?) throws -> [TOCEntry] {
        let stored = (m.files ?? []).first { DirectoryDump.plainName($0.name) == "toc.dat" }?.name ?? "toc.dat"
        let path = try SnapshotDirectory.makePrivateTemporary(prefix: "pgsnap-toc", environment: session.environment, for: "\(m.file)/toc.dat")
        defer { try? SnapshotDirectory.removeTree(path) }
        let sink = try FileSink(creating: path + "/toc.dat")
        let name = m.file + "/" + stored
        let size = try storage.size(of: name) ?? 0
        if let decryption {
            let decryptor = try decryption.decryptor(inner: PlainInflater())
            var finished = false
            defer { if !finished { decryptor.abort() } }
            try storage.read(name, size: size) { try decryptor.feed($0, sink: sink.write) }
            try decryptor.finish(sink: sink.write)
            finished = true
        } else {
            try storage.read(name, size: size) { try sink.write($0) }
        }

        return try DirectoryTOC.list(path, serverMajor: Int(m.pgDumpVersion.prefix { $0.isNumber }), session: session)
    }
}
