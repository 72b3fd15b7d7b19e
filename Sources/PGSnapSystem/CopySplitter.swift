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
///
/// On a server that logs hint bits (data checksums, 18's default, or `wal_log_hints`), every
/// `commitEvery` bytes each session commits what it has loaded and starts a new COPY, and the
/// last of them to commit reads the pages loaded since the previous round (`HintPass`), so that
/// their rows' commit hint bits are set now: left to the first index build, each page would be
/// logged whole again if a checkpoint began in between (measured on 18: the index step 2.0-2.4 s
/// against 1.2-1.5 s), as the load's own WAL makes likely. Commits in between are safe for the
/// same reason as the sessions are: the scratch database is dropped on any failure.
final class CopySplitter {
    private let table: String
    private let commitBytes: Int
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
    /// Bytes dealt since the sessions last committed, and the rounds of commits so far.
    private var dealt = 0
    private var rounds = 0
    private var hints: HintPass?
    private let detail: (String) -> Void
    /// PGSNAP_COPY_COMMIT_BYTES changes it (tests commit every few rows).
    static let commitEvery = 64 << 20
    /// Small enough that the queues stay a few MiB (peak RSS), big enough that a send costs nothing.
    static let blockSize = 256 << 10

    /// One COPY session: a connection, its feeding thread, and the blocks waiting for it.
    final class Feeder: @unchecked Sendable {
        let db: LibPQConnection
        /// Shared by every feeder of one splitter: a block taken by any of them wakes the writer.
        private let condition: NSCondition
        /// Rows, or the end of a round: commit, then start the COPY again.
        enum Item {
            case rows([UInt8])
            case commit(round: Int)
        }
        private var queue: [Item] = []
        private let statement: String
        private let hints: HintPass?
        private var closing = false
        /// Set by `stop` (not by `finish`, which ends the COPY after the queued rows).
        private var stopped = false
        private(set) var rows: Int64?
        private(set) var error: Error?
        private let done = DispatchSemaphore(value: 0)
        static let depth = 3

        init(db: LibPQConnection, condition: NSCondition, statement: String, hints: HintPass?) {
            self.db = db
            self.condition = condition
            self.statement = statement
            self.hints = hints
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
                    f.queue.append(.rows(bytes))
                    condition.broadcast()
                    return nil
                }
                condition.wait()
            }
        }

        /// Ends a round on every feeder, after what each has queued (whatever their queues' depth).
        static func endRound(_ round: Int, on feeders: [Feeder]) {
            guard let condition = feeders.first?.condition else { return }
            condition.lock()
            for f in feeders { f.queue.append(.commit(round: round)) }
            condition.broadcast()
            condition.unlock()
        }

        /// Stops feeding and cancels the COPY (the thread then ends; earlier rounds stay committed in
        /// the scratch database, which the caller drops).
        func stop() {
            condition.lock()
            closing = true
            stopped = true
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
                var stored: Int64 = 0
                while true {
                    condition.lock()
                    while queue.isEmpty && !closing { condition.wait() }
                    let item = queue.isEmpty ? nil : queue.removeFirst()
                    condition.broadcast()
                    condition.unlock()
                    guard let item else { break }
                    switch item {
                    case .rows(let bytes):
                        try bytes.withUnsafeBytes { try db.putCopyData($0) }
                    case .commit(let round):
                        stored += try db.endCopy()
                        if let hints, hints.committed(round: round, on: db) { hints.run(on: db, round: round) }
                        // Stopped meanwhile (a cancel that hit the hint pass was ignored there).
                        if condition.withLock({ stopped }) { throw PGSnapError("the load was stopped") }
                        try db.beginCopy(statement)
                    }
                }
                stored += try db.endCopy()
                condition.lock()
                rows = stored
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
        detail = { [reporter = session.reporter] in reporter.detail($0) }
        block.reserveCapacity(Self.blockSize + (256 << 10))
        let sessions = max(1, jobs)
        commitBytes = session.environment["PGSNAP_COPY_COMMIT_BYTES"].flatMap(Int.init).map { max(1, $0) } ?? Self.commitEvery
        do {
            for i in 0..<sessions {
                let db = try session.connect(database: database)
                if i == 0, sessions > 1 { hints = try HintPass.make(table: table, sessions: sessions, server: db) }
                // The load sessions' settings (RestoreService.loadSettings), then the dump's own.
                try db.execute(settings.sorted { $0.key < $1.key }.map { "SET \($0.key) = '\($0.value)';" }.joined(separator: "\n") + "\n" + header)
                try db.beginCopy(statement)
                feeders.append(Feeder(db: db, condition: condition, statement: statement, hints: hints))
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
                dealt += nl + 1 - start
                start = nl + 1
                // Between whole rows only: never inside a long row's pieces (pinned is nil here).
                if dealt >= commitBytes, hints != nil {
                    dealt = 0
                    rounds += 1
                    Feeder.endRound(rounds, on: feeders)
                }
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
        if let hints, rounds > 0 {
            let (passes, failed) = hints.counts
            detail("pgsnap: \(table): loaded in \(rounds + 1) commits a session, its pages read behind the load in \(passes) pass(es)"
                   + (failed.isEmpty ? "" : ", \(failed.count) failed (first: \(oneLine(failed[0])))") + " (the server logs hint bits)")
        }
        return total
    }

    /// Stops every session: the COPY in progress is rolled back; what earlier rounds committed goes
    /// with the scratch database, which every failure drops.
    func abort() {
        finished = true
        for f in feeders { f.stop() }
    }

    private func failure(_ error: Error?) -> PGSnapError {
        if rounds > 0 { detail("pgsnap: \(table): the load stopped after \(rounds) round(s) of commits in the scratch database") }
        let reason = (error as? PGSnapError)?.what ?? error.map { "\($0)" } ?? "a session stopped"
        return PGSnapError("loading \(table) failed: \(oneLine(reason))", next: "The target was not changed; fix the cause and restore again")
    }
}

/// The pages a split load has filled since the previous round, read once every session has
/// committed the round (by the last of them to commit): reading a row whose insert has committed
/// sets its commit hint bit while the page is still recent. Only a help: the rows are the same
/// whatever it does, so a failure here is ignored (a lost connection fails the next COPY).
final class HintPass: @unchecked Sendable {
    private let relation: String
    private let sessions: Int
    private let lock = NSLock()
    private var commits: [Int: Int] = [:]
    /// The table's size in blocks when the first session committed each round: every row below
    /// it is committed once the round is; above it, a faster session may be loading the next.
    private var frontiers: [Int: Int64] = [:]
    private var nextBlock: Int64 = 0
    private var passes = 0
    private var failures: [String] = []

    /// Passes run, and the errors of those that failed.
    var counts: (passes: Int, failed: [String]) { lock.withLock { (passes, failures) } }

    private init(relation: String, sessions: Int) {
        self.relation = relation
        self.sessions = sessions
    }

    /// Nil unless the server logs hint bits (data checksums or `wal_log_hints`: without, the
    /// passes cost the load more than the first index build saves, measured on 15), can scan a
    /// range of pages (14+), and `table` is a whole well-formed name (it goes into SQL text).
    static func make(table: String, sessions: Int, server db: LibPQConnection) throws -> HintPass? {
        guard db.serverVersionNumber >= 140000,
              let (name, rest) = QualifiedName.parsePrefix(Substring(table)), rest.isEmpty,
              try db.scalar("SELECT current_setting('data_checksums') = 'on' OR current_setting('wal_log_hints') = 'on'") == "t",
              // A range of pages can be read alone only in a heap (another access method would
              // scan the whole table on every pass).
              try db.scalar("SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = $1::regclass", [name]) == "heap"
        else { return nil }
        return HintPass(relation: name, sessions: sessions)
    }

    /// Counts one session's commit of `round` (the first notes the table's size); true for the
    /// last session to commit it.
    func committed(round: Int, on db: LibPQConnection) -> Bool {
        let n = lock.withLock {
            commits[round, default: 0] += 1
            return commits[round]!
        }
        if n == 1, let size = try? blocks(db) { lock.withLock { frontiers[round] = size } }
        guard n == sessions else { return false }
        lock.withLock { commits[round] = nil }
        return true
    }

    private func blocks(_ db: LibPQConnection) throws -> Int64? {
        try db.scalar("SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint", [relation]).flatMap { Int64($0) }
    }

    /// Reads the pages added since the last pass (a TID range scan, 14+), after making the
    /// sessions' asynchronous commits durable: a hint bit is not set for a commit not yet flushed.
    /// `local`: the WAL on this server's disk is what a hint bit waits for, not a standby.
    func run(on db: LibPQConnection, round: Int) {
        do {
            try db.execute("BEGIN; SET LOCAL synchronous_commit = local; SELECT pg_current_xact_id(); COMMIT;")
            guard let end = try blocks(db) else { return }
            // Pages above the round's frontier may hold the next round's rows: read again next time.
            let start: Int64 = lock.withLock {
                let from = nextBlock
                nextBlock = max(nextBlock, min(end, frontiers.removeValue(forKey: round) ?? end))
                passes += 1
                return from
            }
            guard end > start else { return }
            _ = try db.query("SELECT count(*) FROM \(relation) WHERE ctid >= '(\(start),0)'::tid AND ctid < '(\(end),0)'::tid")
        } catch {
            // See the type's comment; the COPY that follows must not start in a failed transaction.
            lock.withLock { failures.append("\(error)") }
            try? db.execute("ROLLBACK")
        }
    }
}
