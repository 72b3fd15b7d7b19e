import Foundation
import PGSnapCore

/// A directory snapshot: the files are exactly the manifest's, each with its size and SHA-256,
/// every gzip file decompresses in full, every table's rows recount to the manifest's, and
/// `pg_restore --list` reads the table of contents. The first failure names the file.
extension VerifyService {
    func verifyDirectory(_ m: Manifest, in dir: SnapshotDirectory, decryption: AgeDecryption?, result: inout VerifyResult,
                         start: DispatchTime) -> VerifyResult {
        let path = dir.file(m.file)
        let expected = m.files ?? []
        let present: [DirectoryFile]
        do { present = try SnapshotDirectory.files(in: path) } catch { return failed(&result, "files", "\(error)") }
        let presentNames = Set(present.map(\.name))
        if let missing = expected.first(where: { !presentNames.contains($0.name) }) {
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
        let results = DirectoryReadback.read(directory: path, names: expected.map(\.name), inflate: !storedOnly, sync: false,
                                             decryption: decryption)
        result.seconds = seconds(since: start)
        var inflated: Int64 = 0
        for (f, r) in zip(expected, results) {
            if let e = r.error, r.check == "files" { return failed(&result, "files", e) }
            if r.bytes != f.bytes { return failed(&result, "size", "\(m.file)/\(f.name) is \(r.bytes) bytes, manifest says \(f.bytes)") }
            if r.sha256 != f.sha256 { return failed(&result, "checksum", "\(m.file)/\(f.name) has SHA-256 \(r.sha256), manifest says \(f.sha256)") }
            if let e = r.error { return failed(&result, r.check, "\(m.file)/\(e)") }
            if storedOnly, let encryption = m.encryption {
                let problem: String?
                do { problem = try Self.ageHeader(path + "/" + f.name, encryption: encryption).problem } catch { problem = "\(error)" }
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
            var tocPath = path
            var decrypted: String?
            defer { if let decrypted { try? SnapshotDirectory.removeTree(decrypted) } }
            if let decryption {
                // pg_restore --list reads toc.dat alone: only it is decrypted, beside the snapshot.
                decrypted = try DecryptedCopy.make(m, dir: dir, decryption: decryption, reporter: session.reporter,
                                                   only: ["toc.dat" + SnapshotName.encryptedSuffix])
                tocPath = decrypted!
            }
            toc = try DirectoryTOC.list(tocPath, serverMajor: Int(m.pgDumpVersion.prefix { $0.isNumber }), session: session)
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
}
