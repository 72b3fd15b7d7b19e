import Foundation
import PGSnapCore

/// One table loaded through several COPY sessions at once: the rows are dealt out in blocks of
/// whole lines (COPY text rows are independent lines) to `jobs` libpq sessions, each running the
/// dump's own SET header and COPY statement, so each server backend parses its share on its own core.
///
/// Each session is fed by its own thread from a queue a few blocks deep, straight from pgsnap's
/// memory (no psql in between: on two cores its copying cost as much as it saved). A block goes
/// to the session with the shortest queue, not in turn: a backend waiting to extend the table
/// or to write WAL does not hold the next block back from one that is ready for it. Used for the
/// big tables of a plain restore (`CopyRouter`) and of a directory restore (`ParallelTableLoad`);
/// only ever into the scratch database, which is dropped on any failure.
final class CopySplitter {
    private let table: String
    private var feeders: [Feeder] = []
    private var block: [UInt8] = []
    /// Shared by the feeders: see `Feeder.enqueue`.
    private let condition = NSCondition()
    private var finished = false
    /// The session a row longer than a block is streamed to, piece by piece, until its newline:
    /// memory stays a block whatever the row's size (a 160 MB text value was buffered whole, and
    /// searched again for its end on every piece).
    private var pinned: Feeder?
    private var longRows = 0
    /// Small enough that the queues stay a few MiB (peak RSS), big enough that a send costs nothing.
    static let blockSize = 256 << 10

    /// One COPY session: a connection, its feeding thread, and the blocks waiting for it.
    final class Feeder: @unchecked Sendable {
        let db: LibPQConnection
        /// Shared by every feeder of one splitter: a block taken by any of them wakes the writer.
        private let condition: NSCondition
        private var queue: [[UInt8]] = []
        private var closing = false
        private(set) var rows: Int64?
        private(set) var error: Error?
        private let done = DispatchSemaphore(value: 0)
        static let depth = 3

        init(db: LibPQConnection, condition: NSCondition) {
            self.db = db
            self.condition = condition
            let thread = Thread { [self] in
                self.run()
                self.done.signal()
            }
            thread.name = "pgsnap-copy"
            thread.start()
        }

        /// Queues a block on the feeder among `feeders` (sharing one condition) with the
        /// shortest queue; waits while every queue is full. False once a session has failed.
        static func enqueue(_ bytes: [UInt8], on feeders: [Feeder]) -> Feeder? {
            guard let condition = feeders.first?.condition else { return nil }
            condition.lock()
            defer { condition.unlock() }
            while true {
                if let failed = feeders.first(where: { $0.error != nil }) { return failed }
                if let f = feeders.lazy.filter({ $0.queue.count < depth }).min(by: { $0.queue.count < $1.queue.count }) {
                    f.queue.append(bytes)
                    condition.broadcast()
                    return nil
                }
                condition.wait()
            }
        }

        /// Stops feeding and cancels the COPY (the thread then ends; nothing is committed).
        func stop() {
            condition.lock()
            closing = true
            queue.removeAll()
            condition.broadcast()
            condition.unlock()
            db.cancel()
        }

        /// Ends the COPY after the queued blocks and waits for the server's count.
        func finish() throws -> Int64 {
            condition.lock()
            closing = true
            condition.broadcast()
            condition.unlock()
            done.wait()
            done.signal()
            if let error { throw error }
            return rows ?? 0
        }

        private func run() {
            do {
                while true {
                    condition.lock()
                    while queue.isEmpty && !closing { condition.wait() }
                    let item = queue.isEmpty ? nil : queue.removeFirst()
                    condition.broadcast()
                    condition.unlock()
                    guard let item else { break }
                    try item.withUnsafeBytes { try db.putCopyData($0) }
                }
                let n = try db.endCopy()
                condition.lock()
                rows = n
                condition.unlock()
            } catch {
                condition.lock()
                self.error = error
                queue.removeAll()
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    /// Connects `jobs` sessions to `database` and starts the COPY in each.
    ///
    /// - Parameter header: the dump's SET statements; `statement` the COPY line, newline-terminated.
    init(session: Session, database: String, jobs: Int, table: String, header: String, statement: String,
         settings: [String: String]) throws {
        self.table = table
        block.reserveCapacity(Self.blockSize + (256 << 10))
        do {
            for _ in 0..<max(1, jobs) {
                let db = try session.connect(database: database)
                // The load sessions' settings (RestoreService.loadSettings), then the dump's own.
                try db.execute(settings.sorted { $0.key < $1.key }.map { "SET \($0.key) = '\($0.value)';" }.joined(separator: "\n") + "\n" + header)
                try db.beginCopy(statement)
                feeders.append(Feeder(db: db, condition: condition))
            }
        } catch {
            abort()
            throw failure(error)
        }
    }

    deinit { if !finished { abort() } }

    /// Rows, cut anywhere: whole lines go out in blocks of about `blockSize` (however big the
    /// pieces that arrive), the rest waits for its newline; a row longer than a block goes to one
    /// session as it arrives.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var bytes = bytes
        if let p = pinned {
            guard let nl = bytes.firstIndex(of: 0x0A) else { return try send(Array(bytes), to: [p]) }
            try send(Array(bytes[...nl]), to: [p])
            pinned = nil
            bytes = UnsafeRawBufferPointer(rebasing: bytes[(nl + 1)...])
        }
        block.append(contentsOf: bytes)
        var start = 0
        while block.count - start >= Self.blockSize {
            // The last newline in the next block's worth.
            if let nl = block[start..<(start + Self.blockSize)].lastIndex(of: 0x0A) {
                try send(Array(block[start...nl]), to: feeders)
                start = nl + 1
                continue
            }
            // None: a row longer than a block. What there is of it goes to one session, and the
            // rest follows it there as it arrives (above); the sessions take turns for such rows.
            let p = feeders[longRows % feeders.count]
            longRows += 1
            pinned = p
            let rest = block[start...].firstIndex(of: 0x0A)
            try send(Array(block[start...(rest ?? block.count - 1)]), to: [p])
            if let rest {
                pinned = nil
                start = rest + 1
            } else {
                start = block.count
            }
        }
        if start > 0 { block.removeFirst(start) }
    }

    /// Queues `bytes` on the least busy of `to` (one session for a long row's pieces).
    private func send(_ bytes: [UInt8], to: [Feeder]) throws {
        guard !bytes.isEmpty else { return }
        if let failed = Feeder.enqueue(bytes, on: to) {
            abort()
            throw failure(failed.error)
        }
    }

    /// Ends every session's COPY (each commits its share); returns the rows the server stored.
    ///
    /// - Throws: `PGSnapError` naming the table when rows are left without a newline or a session failed.
    func finish() throws -> Int64 {
        if pinned != nil || !block.isEmpty {
            guard pinned == nil, block.last == 0x0A else {
                abort()
                throw PGSnapError.verification("the rows of \(table) end in the middle of a line", next: "The target was not changed; run 'pgsnap verify' on the snapshot")
            }
            try send(block, to: feeders)
            block.removeAll()
        }
        var total: Int64 = 0
        for f in feeders {
            do {
                total += try f.finish()
            } catch {
                abort()
                throw failure(error)
            }
        }
        finished = true
        return total
    }

    /// Stops every session without committing: closing the connections rolls their COPY back.
    func abort() {
        finished = true
        for f in feeders { f.stop() }
    }

    private func failure(_ error: Error?) -> PGSnapError {
        let detail = (error as? PGSnapError)?.what ?? error.map { "\($0)" } ?? "a session stopped"
        return PGSnapError("loading \(table) failed: \(oneLine(detail))", next: "The target was not changed; fix the cause and restore again")
    }
}
