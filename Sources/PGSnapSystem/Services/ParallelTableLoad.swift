import Foundation
import PGSnapCore

/// Loads one big table's rows through several COPY sessions at once.
///
/// `pg_restore -j` runs one job per table, so a database whose data is mostly one table (the
/// usual shape: one huge events table) loads at the speed of one server backend. Rows in COPY
/// text format are independent lines, so the table's data, read back by `pg_restore -f -`
/// (which decompresses it), is dealt out in blocks of whole lines to `jobs` psql sessions, each
/// running the dump's own COPY statement with the dump's own session settings. Only in the
/// scratch database, before any index or constraint exists (post-data runs after); the row
/// counts afterwards are what proves the load, as for every restore.
struct ParallelTableLoad {
    let session: Session
    let pgRestore: String
    let psql: String
    let environment: [String: String]
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
    func load(path: String, dumpID: Int, table: String, dir: SnapshotDirectory) throws {
        let listName = ".pgsnap-use-list-\(getpid())-\(dumpID)"
        try dir.writeAtomically(Data("\(dumpID);\n".utf8), to: listName)
        let useList = dir.file(listName)
        defer { unlink(useList) }
        let reader = try ChildProcess(ExternalCommand(
            name: "pg_restore", executable: pgRestore,
            arguments: ["--file=-", "--section=data", "--use-list=\(useList)", path], environment: environment),
            stdin: .null, stdout: .pipe, stderr: .pipe)
        var writers: [ChildProcess] = []
        var ok = false
        defer {
            if !ok {
                // The scratch database is dropped on failure: stopping the sessions is enough.
                for w in writers { w.terminate(grace: 2) }
                reader.terminate(grace: 2)
            }
        }
        var preamble: [String] = []
        var copy: String?
        var next = 0
        var ended = false
        let blockSize = 1 << 20
        var head: [UInt8] = []   // pg_restore's output before the COPY line
        var copyStart: String?
        var block: [UInt8] = []  // rows not yet sent: whole lines first, a partial line last
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { buffer.deallocate() }

        func send(_ count: Int) throws {
            guard count > 0 else { return }
            try block.withUnsafeBytes { try writers[next].writeStdin(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            next = (next + 1) % writers.count
            block.removeFirst(count)
        }
        func startWriters(_ statement: String) throws {
            let script = Array((preamble.joined() + statement).utf8)
            for _ in 0..<jobs {
                let w = try ChildProcess(ExternalCommand(
                    name: "psql", executable: psql,
                    arguments: ["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--dbname=\(session.childConninfo(database: scratch))"],
                    environment: environment), stdin: .pipe, stdout: .null, stderr: .pipe)
                writers.append(w)
                try script.withUnsafeBytes { try w.writeStdin($0) }
            }
        }

        while !ended {
            let n = read(reader.stdoutFD, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; the target was not changed") }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            var scanFrom = max(0, block.count - 3)
            if copy == nil {
                head.append(contentsOf: chunk)
                var lineStart = 0
                while copy == nil, let nl = head[lineStart...].firstIndex(of: 0x0A) {
                    let text = String(decoding: head[lineStart...nl], as: UTF8.self)
                    lineStart = nl + 1
                    if let partial = copyStart {
                        // A quoted name with a newline in it spans lines (pg_dump writes it as is).
                        copyStart = partial + text
                    } else if text.hasPrefix("SET ") || text.hasPrefix("SELECT pg_catalog.set_config(") {
                        preamble.append(text)
                    } else if text.hasPrefix("COPY ") {
                        copyStart = text
                    }
                    if let statement = copyStart, statement.hasSuffix(" FROM stdin;\n") {
                        copy = statement
                        try startWriters(statement)
                    }
                }
                guard copy != nil else {
                    head.removeFirst(lineStart)
                    continue
                }
                block = Array(head[lineStart...])
                head = []
                scanFrom = 0
            } else {
                block.append(contentsOf: chunk)
            }
            // The end of the rows: a line that is exactly "\." (a value never is: COPY escapes it).
            var end: Int?
            block.withUnsafeBufferPointer { b in
                var i = scanFrom
                while i + 2 < b.count {
                    if b[i] == 0x5C, b[i + 1] == 0x2E, b[i + 2] == 0x0A, i == 0 || b[i - 1] == 0x0A {
                        end = i
                        return
                    }
                    i += 1
                }
            }
            if let end {
                try send(end)
                ended = true
            } else if block.count >= blockSize, let lastNL = block.lastIndex(of: 0x0A) {
                try send(lastNL + 1)
            }
        }
        guard copy != nil, ended else {
            let status = reader.wait()
            throw PGSnapError("pg_restore did not deliver the rows of \(table) (\(status))\(reader.lastErrorLine.map { ": " + session.redact(oneLine($0)) } ?? "")",
                              next: "The target was not changed; run 'pgsnap verify' on the snapshot")
        }
        // Each session ends its COPY, then its input: it commits its share.
        for w in writers {
            try Array("\\.\n".utf8).withUnsafeBytes { try w.writeStdin($0) }
            w.closeStdin()
        }
        for w in writers {
            let status = w.wait()
            guard status.succeeded else {
                throw PGSnapError("psql failed while loading \(table) (\(status)): \(w.lastErrorLine.map { session.redact(oneLine($0)) } ?? "")",
                                  next: "The target was not changed; fix the cause and restore again")
            }
        }
        reader.closeStdout()
        let status = reader.wait()
        guard status.succeeded || status == .signaled(SIGPIPE) else {
            throw PGSnapError("pg_restore failed while reading \(table) (\(status)): \(reader.lastErrorLine.map { session.redact(oneLine($0)) } ?? "")",
                              next: "The target was not changed; run 'pgsnap verify' on the snapshot")
        }
        ok = true
    }
}
