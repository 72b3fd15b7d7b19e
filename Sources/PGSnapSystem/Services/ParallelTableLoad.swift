import Foundation
import PGSnapCore

/// Loads one big table's rows through several COPY sessions at once.
///
/// `pg_restore -j` runs one job per table, so a database whose data is mostly one table (the
/// usual shape: one huge events table) loads at the speed of one server backend. Rows in COPY
/// text format are independent lines, so the table's data (its gzip file inflated with ISA-L,
/// the COPY statement and session settings from `pg_restore -f -`) is dealt out in blocks of whole
/// lines to `jobs` COPY sessions, each running the dump's own COPY statement with the dump's own
/// session settings. Only in the
/// scratch database, before any index or constraint exists (post-data runs after); the row
/// counts afterwards are what proves the load, as for every restore.
struct ParallelTableLoad {
    let session: Session
    let pgRestore: String
    let environment: [String: String]
    /// The load sessions' settings (`RestoreService.loadSettings`).
    let settings: [String: String]
    let scratch: String
    let jobs: Int

    /// Data files this big (compressed) are split; smaller tables are left to pg_restore -j.
    /// PGSNAP_PARALLEL_COPY_MIN_BYTES lowers it (tests send every table of a corpus this way).
    static let minimumBytes: Int64 = 16 << 20

    /// The TABLE DATA entries worth splitting, biggest first.
    static func candidates(_ m: Manifest, jobs: Int, environment: [String: String]) -> [StoredFile] {
        guard jobs >= 2 else { return [] }
        let minimum = environment["PGSNAP_PARALLEL_COPY_MIN_BYTES"].flatMap(Int64.init).map { max(0, $0) } ?? minimumBytes
        return (m.files ?? []).filter { $0.table != nil && $0.bytes >= minimum }.sorted { $0.bytes > $1.bytes }
    }

    /// - Parameters:
    ///   - path: the (plain) directory dump.
    ///   - dumpID: the table's TABLE DATA entry.
    ///   - dir: where the one-line use-list is written (0600, removed afterwards).
    ///   - shouldStop: called between pieces; throws to end the load early (another step failed).
    /// - Returns: the rows the sessions' COPY commands stored, as the server counted them; nil,
    ///   with nothing loaded, when the dump's COPY statement names another table (pg_dump
    ///   --load-via-partition-root: the root routes the rows, and another table may get them).
    func load(path: String, dumpID: Int, dataFile: String, table: String, dir: SnapshotDirectory,
              shouldStop: () throws -> Void = {}) throws -> Int64? {
        // The rows come from the data file itself, inflated with ISA-L (a third of the CPU of
        // pg_restore's zlib, on cores the server's parsing needs); pg_restore gives the statement.
        let start = try Self.copyStart(path: path, dumpID: dumpID, table: table, dir: dir, pgRestore: pgRestore, environment: environment,
                                       session: session)
        guard Self.copies(start.statement, into: table) else { return nil }
        var ok = false
        let splitter = try CopySplitter(session: session, database: scratch, jobs: jobs, table: table, header: start.header,
                                        statement: start.statement, settings: settings)
        // The scratch database is dropped on failure: stopping the sessions is enough.
        defer { if !ok { splitter.abort() } }
        var rows = CopyRouter.rowsOnly()
        var ended = false
        try GzipStreamInflater.inflate(file: path + "/" + dataFile) { piece in
            guard !ended else { return }  // pg_dump's blank lines after the `\.` line
            if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; the target was not changed") }
            try shouldStop()
            try rows.consume(piece) { event in
                switch event {
                case .rows(let bytes): try splitter.write(bytes)
                case .endRows: ended = true
                case .script, .startRows: break
                }
            }
        }
        guard ended else {
            throw PGSnapError.verification("\(path)/\(dataFile) ends before the end of its rows (no \\. line)",
                                           next: "The target was not changed; run 'pgsnap verify' on the snapshot")
        }
        // Each session ends its COPY, then its input: it commits its share.
        let stored = try splitter.finish()
        ok = true
        return stored
    }

    /// Whether a dump's COPY statement loads `table` (as pg_dump quotes it; a quoted name may hold
    /// spaces): not for a partition pg_dump wrote through its root (--load-via-partition-root, and
    /// hash partitions of an enum).
    static func copies(_ statement: String, into table: String) -> Bool {
        statement.hasPrefix("COPY \(table) ")
    }

    /// The dump's SET header and COPY statement of one TABLE DATA entry, as `pg_restore -f -`
    /// prints them (a plain script like pg_dump's: `CopyRouter` finds them as in a plain
    /// restore); pg_restore is stopped there, before the rows.
    static func copyStart(path: String, dumpID: Int, table: String, dir: SnapshotDirectory, pgRestore: String,
                          environment: [String: String], session: Session) throws -> (statement: String, header: String) {
        let listName = ".pgsnap-use-list-\(getpid())-\(dumpID)"
        try dir.writeAtomically(Data("\(dumpID);\n".utf8), to: listName)
        let useList = dir.file(listName)
        defer { unlink(useList) }
        let reader = try ChildProcess(ExternalCommand(
            name: "pg_restore", executable: pgRestore,
            arguments: ["--file=-", "--section=data", "--use-list=\(useList)", path], environment: environment),
            stdin: .null, stdout: .pipe, stderr: .pipe)
        var ok = false
        defer { if !ok { _ = reader.terminate(grace: 2) } }
        var router = CopyRouter { _ in true }
        var start: (statement: String, header: String)?
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { buffer.deallocate() }
        while start == nil {
            let n = read(reader.stdoutFD, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            try router.consume(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) { event in
                if case .startRows(_, let statement, let header) = event, start == nil { start = (statement, header) }
            }
        }
        guard let start else {
            let status = reader.wait()
            throw PGSnapError("pg_restore did not deliver the COPY statement of \(table) (\(status))\(reader.lastErrorLine.map { ": " + session.redact(oneLine($0)) } ?? "")",
                              next: "The target was not changed; run 'pgsnap verify' on the snapshot")
        }
        _ = reader.terminate(grace: 2)
        ok = true
        if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; the target was not changed") }
        return start
    }
}
