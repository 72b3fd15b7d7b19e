import Foundation
import PGSnapCore

/// One table loaded through several COPY sessions at once: the rows are dealt out in blocks of
/// whole lines (COPY text rows are independent lines) to `jobs` psql sessions, each running the
/// dump's own header and COPY statement, so each server backend parses its share on its own core.
///
/// Used for the big tables of a plain restore (`CopyRouter`) and of a directory restore
/// (`ParallelTableLoad`); only ever into the scratch database, which is dropped on any failure.
final class CopySplitter {
    private let session: Session
    private let table: String
    private var writers: [(child: ChildProcess, tags: CommandTagReader)] = []
    private var block: [UInt8] = []
    private var next = 0
    private var done = false
    static let blockSize = 1 << 20

    /// Starts the sessions; `script` is the header and the COPY statement, newline-terminated.
    init(session: Session, psql: String, environment: [String: String], database: String, jobs: Int, table: String, script: String) throws {
        self.session = session
        self.table = table
        block.reserveCapacity(Self.blockSize + (256 << 10))
        let bytes = Array(script.utf8)
        do {
            for _ in 0..<max(1, jobs) {
                // Not -q: each session's `COPY n` tag is its share of the rows.
                let child = try ChildProcess(ExternalCommand(
                    name: "psql", executable: psql,
                    arguments: ["-X", "--no-password", "-v", "ON_ERROR_STOP=1", "--dbname=\(session.childConninfo(database: database))"],
                    environment: environment), stdin: .pipe, stdout: .pipe, stderr: .pipe)
                writers.append((child, CommandTagReader(fd: child.stdoutFD)))
                try bytes.withUnsafeBytes { try child.writeStdin($0) }
            }
        } catch {
            abort()
            throw error
        }
    }

    deinit { if !done { abort() } }

    /// Rows, cut anywhere: whole lines go out in blocks, the rest waits for its newline.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        block.append(contentsOf: bytes)
        if block.count >= Self.blockSize, let lastNL = block.lastIndex(of: 0x0A) {
            try send(lastNL + 1)
        }
    }

    private func send(_ count: Int) throws {
        guard count > 0 else { return }
        let w = writers[next].child
        do {
            try block.withUnsafeBytes { try w.writeStdin(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        } catch {
            throw failure(w)
        }
        next = (next + 1) % writers.count
        block.removeFirst(count)
    }

    /// Ends every session's COPY and input (each commits its share); returns the rows the server
    /// stored, or nil when a session did not report its count.
    ///
    /// - Throws: `PGSnapError` naming the table when rows are left without a newline or a session failed.
    func finish() throws -> Int64? {
        if !block.isEmpty {
            guard block.last == 0x0A else {
                throw PGSnapError.verification("the rows of \(table) end in the middle of a line", next: "The target was not changed; run 'pgsnap verify' on the snapshot")
            }
            try send(block.count)
        }
        for w in writers {
            do {
                try Array("\\.\n".utf8).withUnsafeBytes { try w.child.writeStdin($0) }
            } catch {
                throw failure(w.child)
            }
            w.child.closeStdin()
        }
        var total: Int64? = 0
        for w in writers {
            let status = w.child.wait()
            let counts = w.tags.copyCounts()
            w.child.closeStdout()
            guard status.succeeded else { throw failure(w.child) }
            total = counts.count == 1 ? total.map { $0 + counts[0] } : nil
        }
        done = true
        return total
    }

    /// Stops every session without letting it commit (terminate first: closing psql's input would commit).
    func abort() {
        done = true
        for w in writers {
            w.child.terminate(grace: 2)
            w.child.closeStdin()
            w.child.closeStdout()
        }
    }

    private func failure(_ child: ChildProcess) -> PGSnapError {
        abort()
        let status = child.wait()
        return PGSnapError("psql failed while loading \(table) (\(status)): \(child.lastErrorLine.map { session.redact(oneLine($0)) } ?? "")",
                           next: "The target was not changed; fix the cause and restore again")
    }
}
