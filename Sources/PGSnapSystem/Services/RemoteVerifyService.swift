import Foundation
import PGSnapCore

/// `verify --remote`: the local checks (size, SHA-256, full decompression, pg_dump's trailer,
/// row counts) on a dump streamed from the bucket in ranges; nothing is written to disk.
public struct RemoteVerifyService {
    let session: Session
    let remote: S3Storage

    public init(session: Session, remote: S3Storage) {
        self.session = session
        self.remote = remote
    }

    /// - Parameter selector: nil with `all`: every committed snapshot in the listing; unfinished uploads are only reported.
    public func run(selector: SnapshotSelector?, database: String?) throws -> [VerifyResult] {
        let (objects, files) = try remote.listing()
        let entries = RemoteCatalog.build(files: objects)
        let chosen: [CatalogEntry]
        if let selector {
            chosen = [try RemoteCatalog.select(selector, from: entries, location: remote.location)]
        } else {
            // As a local verify --all: an upload still running or killed is not a snapshot; reported, never failed.
            let scope = entries.filter { database == nil || $0.database == database }
            for e in scope where !e.isCommitted {
                session.reporter.info("incomplete  \(e.id): \(e.problem ?? e.status.rawValue) (not a snapshot, not verified)")
            }
            chosen = scope.filter(\.isCommitted)
        }
        var out: [VerifyResult] = []
        for e in chosen {
            out.append(verify(e, files: files))
            if SignalTrap.received != nil { break }
        }
        return out
    }

    func verify(_ entry: CatalogEntry, files: [String: Int64]) -> VerifyResult {
        var r = VerifyResult(id: entry.id, ok: false)
        func failed(_ check: String, _ detail: String) -> VerifyResult {
            r.failedCheck = check
            r.detail = detail
            return r
        }
        guard entry.isGood else { return failed("files", entry.problem ?? entry.status.rawValue) }
        let start = DispatchTime.now()
        let m: Manifest
        do {
            let name = entry.id + SnapshotName.manifestSuffix
            m = try Manifest.decode(bytes: try remote.readSmall(name, limit: Manifest.maxBytes), fileName: name)
        } catch {
            return failed("manifest", "\(error)")
        }
        guard let size = files[m.file], size == m.compressedBytes else {
            return failed("size", "\(m.file) is \(files[m.file].map(String.init) ?? "missing") bytes in the bucket, manifest says \(m.compressedBytes)")
        }
        // A key given is held to the snapshot as everywhere else (its first MiB, one ranged GET).
        do {
            if let decryption = try session.ageDecryption(for: m) {
                let probe = m.identityProbeFile
                try decryption.checkIdentity(prefix: try remote.readPrefix(probe, count: min(AgeDecryptor.probeBytes, Int(files[probe] ?? 0))))
            }
        } catch let e as AgeIdentityMismatch {
            return failed("identity", e.description)
        } catch {
            return failed("age", "\(error)")
        }
        let checked = m.format == .directory ? verifyDirectory(m, result: r, start: start) : verifyPlain(m, size: size, result: r, start: start)
        if checked.ok, let problem = globalsProblem(m, files: files) {
            r = checked
            r.ok = false
            return failed("globals", problem)
        }
        return checked
    }

    /// The globals the snapshot refers to (its own or its run's), streamed from the bucket against
    /// the manifest's checksum; nil when they match or the manifest records no checksum.
    func globalsProblem(_ m: Manifest, files: [String: Int64]) -> String? {
        guard let g = m.globalsFile, let sha = m.globalsSHA256 else { return nil }
        guard let size = files[g] else { return "\(g) is not in \(remote.location)" }
        var hash = SHA256Stream()
        do {
            try remote.read(g, size: size) { hash.update($0) }
        } catch {
            return "\(g) cannot be read: \(error)"
        }
        let got = hash.finalizeHex()
        return got == sha ? nil : "\(g) has SHA-256 \(got) in the bucket, the manifest says \(sha)"
    }

    /// A plain dump streamed from the bucket: size, SHA-256, decompression, trailer, row counts.
    func verifyPlain(_ m: Manifest, size: Int64, result: VerifyResult, start: DispatchTime) -> VerifyResult {
        var r = result
        func failed(_ check: String, _ detail: String) -> VerifyResult {
            r.failedCheck = check
            r.detail = detail
            return r
        }
        // Encrypted at rest: the bucket holds age ciphertext, checked as stored (size, SHA-256);
        // its contents are checked after 'pgsnap pull' by 'pgsnap verify --identity'.
        let encrypted = m.encryption != nil
        var scanner = DumpScanner()
        var hash = SHA256Stream()
        var count: Int64 = 0
        var decompressError: Error?
        do {
            let inflater = try Codec.inflater(m.compression.algorithm)
            let progress = Progress(reporter: session.reporter, verb: "verified", total: size)
            try remote.read(m.file, size: size) { chunk in
                hash.update(chunk)
                count += Int64(chunk.count)
                progress.update(bytesIn: count, bytesOut: scanner.bytes)
                guard decompressError == nil, !encrypted else { return }
                do { try inflater.feed(chunk) { scanner.consume($0) } } catch { decompressError = error }
            }
            progress.done()
            if decompressError == nil && !encrypted {
                do { try inflater.finish() } catch { decompressError = error }
            }
        } catch {
            return failed("files", "\(error)")
        }
        r.uncompressedBytes = scanner.bytes
        r.tables = scanner.tables.count
        r.rows = scanner.tables.reduce(0) { $0 + $1.rows }
        r.seconds = seconds(since: start)
        if count != m.compressedBytes { return failed("size", "read \(count) bytes, manifest says \(m.compressedBytes)") }
        let sha = hash.finalizeHex()
        if sha != m.sha256 { return failed("checksum", "SHA-256 is \(sha), manifest says \(m.sha256)") }
        if encrypted {
            r.ok = true
            r.contentsChecked = false
            r.uncompressedBytes = nil
            r.tables = nil
            r.rows = nil
            r.detail = "encrypted: size and SHA-256 checked in the bucket; pull it and run 'pgsnap verify --identity' for the contents"
            return r
        }
        if let decompressError { return failed("decompression", "\(decompressError)") }
        if scanner.bytes != m.uncompressedBytes {
            return failed("decompression", "dump is \(scanner.bytes) bytes uncompressed, manifest says \(m.uncompressedBytes)")
        }
        if !scanner.sawCompletionTrailer { return failed("trailer", "the dump does not end with pg_dump's completion trailer") }
        let counted = scanner.rowsByTable
        if counted != m.tableRows {
            let diff = Set(counted.keys).union(m.tableRows.keys).sorted().first { counted[$0] != m.tableRows[$0] }!
            return failed("row_counts", "table \(diff) has \(counted[diff].map(String.init) ?? "no") rows in the dump, manifest says \(m.tableRows[diff].map(String.init) ?? "none")")
        }
        r.ok = true
        return r
    }

    /// Each `<id>.dir/<file>` streamed from the bucket: size, SHA-256, gunzip, rows per table.
    /// (The table of contents is read by pg_restore only after 'pgsnap pull'.)
    func verifyDirectory(_ m: Manifest, result: VerifyResult, start: DispatchTime) -> VerifyResult {
        var r = result
        func failed(_ check: String, _ detail: String) -> VerifyResult {
            r.failedCheck = check
            r.detail = detail
            return r
        }
        var inflatedTotal: Int64 = 0
        for f in m.files ?? [] {
            let name = m.file + "/" + f.name
            // Encrypted at rest: size and SHA-256 only, as for a plain encrypted snapshot.
            var reader = FileReader(name: f.name, inflate: m.encryption == nil, decryption: nil)
            do {
                try remote.read(name, size: f.bytes) { reader.consume($0) }
            } catch {
                return failed("files", "\(error)")
            }
            let got = reader.finish()
            if got.bytes != f.bytes { return failed("size", "\(name) is \(got.bytes) bytes in the bucket, manifest says \(f.bytes)") }
            if got.sha256 != f.sha256 { return failed("checksum", "\(name) has SHA-256 \(got.sha256) in the bucket, manifest says \(f.sha256)") }
            if let e = got.error { return failed(got.check, e) }
            if let table = f.table, m.encryption == nil {
                guard let rows = got.rows else { return failed("trailer", "\(name) (table \(table)) ends without pg_dump's end-of-data marker") }
                if rows != f.rows { return failed("row_counts", "table \(table) has \(rows) rows in \(name), manifest says \(f.rows.map(String.init) ?? "none")") }
            }
            inflatedTotal += got.inflatedBytes
        }
        if m.encryption != nil {
            r.ok = true
            r.contentsChecked = false
            r.detail = "encrypted: size and SHA-256 of every file checked in the bucket; pull it and run 'pgsnap verify --identity' for the contents"
            return r
        }
        if inflatedTotal != m.uncompressedBytes {
            return failed("decompression", "the files are \(inflatedTotal) bytes uncompressed, manifest says \(m.uncompressedBytes)")
        }
        r.uncompressedBytes = inflatedTotal
        r.tables = m.tableRows.count
        r.rows = m.tableRows.values.reduce(0, +)
        r.seconds = seconds(since: start)
        r.ok = true
        return r
    }
}
