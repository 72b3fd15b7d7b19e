/// Drops pg_dump's `ALTER ... OWNER TO ...;` lines from a plain dump as it streams, for
/// `restore --no-owner` (what pg_restore --no-owner does for archive formats).
///
/// COPY data passes through untouched: a row that happens to start with "ALTER " is data. So
/// do the lines of a function's or DO block's body and of a string that spans lines: only a
/// line that starts at the top level of SQL (`SQLQuoteState`) can be pg_dump's own statement.
/// SQL lines are held until their newline so a statement is judged whole; an `ALTER` whose
/// quoted name holds a newline (pg_dump writes `ALTER TABLE public."a` and `b" OWNER TO r;`)
/// is held until its quote closes (at most `heldLimit` bytes: no owner statement is longer).
public struct OwnershipFilter: Sendable {
    private var inCopy = false
    private var sawDataHeader = false
    private var line: [UInt8] = []
    private var quotes = SQLQuoteState()
    private var copyLineStart: [UInt8] = []
    private var copyLineLength = 0
    /// An ALTER statement still inside a quoted name, with the newlines it spans.
    private var held: [UInt8] = []
    static let heldLimit = 1 << 20
    public private(set) var dropped = 0

    public init() {}

    public mutating func process(_ buffer: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var start = 0
        var i = 0
        let n = buffer.count
        while i < n {
            if inCopy {
                // Pass through; only watch for the "\." line that ends the block.
                let b = buffer[i]
                if b == 0x0A {
                    let ended = copyLineLength == 2 && copyLineStart == [0x5C, 0x2E]
                    copyLineLength = 0
                    copyLineStart.removeAll(keepingCapacity: true)
                    if ended {
                        try emit(UnsafeRawBufferPointer(rebasing: buffer[start...i]))
                        start = i + 1
                        inCopy = false
                    }
                } else {
                    if copyLineLength < 3 { copyLineStart.append(b) }
                    copyLineLength += 1
                }
                i += 1
                continue
            }
            if buffer[i] == 0x0A {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start..<i]))
                let topLevel = quotes.atTopLevel
                if topLevel { noteSQLLine() }
                quotes.feed(line: line)
                if !held.isEmpty {
                    held.append(0x0A)
                    held += line
                    if quotes.atTopLevel || held.count > Self.heldLimit {
                        if quotes.atTopLevel && Self.isOwnerStatement(held) {
                            dropped += 1
                        } else {
                            held.append(0x0A)
                            try held.withUnsafeBytes { try emit($0) }
                        }
                        held.removeAll(keepingCapacity: false)
                    }
                } else if topLevel && !quotes.atTopLevel && line.starts(with: OwnershipFilter.alter) {
                    held = line
                } else if !topLevel || !Self.isOwnerStatement(line) {
                    line.append(0x0A)
                    try line.withUnsafeBytes { try emit($0) }
                } else {
                    dropped += 1
                }
                line.removeAll(keepingCapacity: true)
                start = i + 1
            }
            i += 1
        }
        if start < n {
            if inCopy {
                try emit(UnsafeRawBufferPointer(rebasing: buffer[start..<n]))
            } else {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start..<n]))
            }
        }
    }

    /// Emits a last line without a newline, if any.
    public mutating func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !held.isEmpty {
            // A quote never closed: not a statement of pg_dump's to drop. The held lines' last
            // newline was read; an unterminated last line follows it.
            held.append(0x0A)
            held += line
            try held.withUnsafeBytes { try emit($0) }
            held.removeAll()
        } else if !line.isEmpty && !(quotes.atTopLevel && Self.isOwnerStatement(line)) {
            try line.withUnsafeBytes { try emit($0) }
        }
        line.removeAll()
    }

    private static func isOwnerStatement(_ statement: [UInt8]) -> Bool {
        guard statement.starts(with: OwnershipFilter.alter), statement.last == 0x3B else { return false }
        return DumpScanner.contains(statement, OwnershipFilter.ownerTo)
    }

    private mutating func noteSQLLine() {
        if line.starts(with: DumpScanner.dataHeader) {
            sawDataHeader = DumpScanner.contains(line, DumpScanner.tableDataMarker)
            return
        }
        if line.first == 0x2D || line.isEmpty { return }
        if sawDataHeader, line.starts(with: DumpScanner.copyPrefix), line.count > DumpScanner.copySuffix.count,
           Array(line.suffix(DumpScanner.copySuffix.count)) == DumpScanner.copySuffix
        {
            inCopy = true
        }
        sawDataHeader = false
    }

    static let alter = Array("ALTER ".utf8)
    static let ownerTo = Array(" OWNER TO ".utf8)
}
