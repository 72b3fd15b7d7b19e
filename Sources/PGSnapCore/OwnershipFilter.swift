/// Drops pg_dump's `ALTER ... OWNER TO ...;` lines from a plain dump as it streams, for
/// `restore --no-owner` (what pg_restore --no-owner does for archive formats).
///
/// COPY data passes through untouched: a row that happens to start with "ALTER " is data. So
/// do the lines of a function's or DO block's body and of a string that spans lines: only a
/// line that starts at the top level of SQL (`SQLQuoteState`) can be pg_dump's own statement.
/// SQL lines are held until their newline so a statement is judged whole.
public struct OwnershipFilter: Sendable {
    private var inCopy = false
    private var sawDataHeader = false
    private var line: [UInt8] = []
    private var quotes = SQLQuoteState()
    private var copyLineStart: [UInt8] = []
    private var copyLineLength = 0
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
                if !topLevel || !isOwnerLine() {
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
        if !line.isEmpty && !(quotes.atTopLevel && isOwnerLine()) { try line.withUnsafeBytes { try emit($0) } }
        line.removeAll()
    }

    private func isOwnerLine() -> Bool {
        guard line.starts(with: OwnershipFilter.alter), line.last == 0x3B else { return false }
        return DumpScanner.contains(line, OwnershipFilter.ownerTo)
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
