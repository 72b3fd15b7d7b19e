#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Takes chosen tables' rows out of a plain dump as it streams, so they can be loaded through
/// several COPY sessions at once while psql runs the rest of the script.
///
/// A plain restore through one psql runs at the speed of one server backend; the usual
/// production shape is one huge table whose load is most of the restore. The router passes the
/// script on unchanged except for the COPY blocks of tables `split` chooses: for those it reports
/// the COPY statement (with the dump's own `SET` header, so other sessions parse the rows the same
/// way), then the rows, then the end of the block; the `\.` line itself is not passed on.
///
/// A COPY statement counts only after pg_dump's `-- Data for Name: ...; Type: TABLE DATA;`
/// header (as in `DumpScanner`), so a function body that mentions COPY is never mistaken for
/// data. SQL lines are held until their newline; rows are passed on as they come.
public struct CopyRouter {
    public enum Event {
        /// Bytes for psql, in order.
        case script(UnsafeRawBufferPointer)
        /// A split table's block starts: load `statement` (the COPY line, newline included) after
        /// `header` (the dump's leading SET and set_config statements) in each session.
        case startRows(table: String, statement: String, header: String)
        /// Rows of the current split table: whole lines, possibly cut anywhere between calls.
        case rows(UnsafeRawBufferPointer)
        /// The split table's block ended.
        case endRows
    }

    private enum Mode { case sql, copy(split: Bool) }
    private var mode = Mode.sql
    private let split: (String) -> Bool
    private var line: [UInt8] = []
    /// The dump's leading SET / set_config lines; closed at the first other statement.
    private var header = ""
    private var headerOpen = true
    private var sawDataHeader = false
    private var pendingCopy: [UInt8]?
    /// In a COPY block: how much of a `\.` line has been seen at the start of the current line
    /// (0: at line start, 1: `\`, 2: `\.`), or nil in the middle of a line.
    private var terminator: Int? = 0
    /// Split rows not yet passed on because they may be the start of the `\.` line.
    private var heldBack = 0
    public private(set) var splitTables: [String] = []

    public init(split: @escaping (String) -> Bool) {
        self.split = split
        line.reserveCapacity(4096)
    }

    /// A router for a COPY block's rows alone (a directory dump's data file): it starts in the
    /// rows of a split table, so it reports `.rows` and, at the `\.` line, `.endRows`.
    public static func rowsOnly() -> CopyRouter {
        var r = CopyRouter { _ in true }
        r.mode = .copy(split: true)
        return r
    }

    public mutating func consume(_ buffer: UnsafeRawBufferPointer, _ emit: (Event) throws -> Void) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        let n = buffer.count
        var i = 0
        var scriptStart = 0  // start of bytes that pass on to psql unbuffered (COPY rows of unsplit tables)
        while i < n {
            switch mode {
            case .sql:
                guard let found = memchr(base + i, 0x0A, n - i) else {
                    line.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i..<n]))
                    i = n
                    continue
                }
                let end = found - UnsafeMutableRawPointer(mutating: base)
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i...end]))
                i = end + 1
                try finishLine(emit)
                scriptStart = i
            case .copy(let isSplit):
                // Rows: only the line starts matter, to find the `\.` line.
                var j = i
                var ended: Int?  // index just past the terminator's newline
                while j < n {
                    guard let state = terminator else {
                        guard let found = memchr(base + j, 0x0A, n - j) else { j = n; break }
                        j = found - UnsafeMutableRawPointer(mutating: base) + 1
                        terminator = 0
                        continue
                    }
                    let b = buffer[j]
                    j += 1
                    switch (state, b) {
                    case (0, 0x5C): terminator = 1
                    case (1, 0x2E): terminator = 2
                    case (2, 0x0A): ended = j
                    case (_, 0x0A): terminator = 0
                    default: terminator = nil
                    }
                    if ended != nil { break }
                }
                if isSplit {
                    if let ended {
                        // The `\.` line started `heldBack + (bytes of it in this buffer)` before its newline.
                        let inThis = min(3, ended - i)
                        let terminatorStart = ended - inThis
                        try emitRows(buffer, from: i, to: terminatorStart, emit)
                        heldBack = 0
                        try emit(.endRows)
                        i = ended
                        scriptStart = i
                        mode = .sql
                        terminator = 0
                    } else {
                        // Hold back a possible `\` or `\.` at the end: it may be the terminator.
                        let hold = terminator.map { min($0, n - i) } ?? 0
                        try emitRows(buffer, from: i, to: n - hold, emit)
                        heldBack += hold
                        i = n
                    }
                } else if let ended {
                    i = ended
                    mode = .sql
                    terminator = 0
                    try emitScript(buffer, from: scriptStart, to: i, emit)
                    scriptStart = i
                } else {
                    i = n
                }
            }
        }
        if case .copy(split: false) = mode {
            try emitScript(buffer, from: scriptStart, to: n, emit)
        }
    }

    /// Rows from `from` to `to`, after any held-back bytes that turned out to be rows.
    private mutating func emitRows(_ buffer: UnsafeRawBufferPointer, from: Int, to: Int,
                                   _ emit: (Event) throws -> Void) throws {
        if heldBack > 0 && to > from {
            // Not the terminator after all: the held `\` (and `.`) are the start of a row.
            let held: [UInt8] = heldBack == 1 ? [0x5C] : [0x5C, 0x2E]
            heldBack = 0
            try held.withUnsafeBytes { try emit(.rows($0)) }
        }
        if to > from { try emit(.rows(UnsafeRawBufferPointer(rebasing: buffer[from..<to]))) }
    }

    private func emitScript(_ buffer: UnsafeRawBufferPointer, from: Int, to: Int, _ emit: (Event) throws -> Void) throws {
        if to > from { try emit(.script(UnsafeRawBufferPointer(rebasing: buffer[from..<to]))) }
    }

    private mutating func finishLine(_ emit: (Event) throws -> Void) throws {
        defer { line.removeAll(keepingCapacity: true) }
        if var pending = pendingCopy {
            // A quoted name with a newline in it: the statement goes on.
            pending += line
            pendingCopy = nil
            try startCopy(pending, emit)
            return
        }
        if headerOpen {
            if line.starts(with: Self.set) || line.starts(with: Self.setConfig) {
                header += String(decoding: line, as: UTF8.self)
            } else if !(line.first == 0x2D || line.first == 0x0A || line.first == 0x5C) {
                headerOpen = false
            }
        }
        if line.starts(with: Self.dataHeader) {
            sawDataHeader = DumpScanner.contains(line, Self.tableDataMarker)
        } else if !(line.first == 0x2D || line.first == 0x0A) {
            let isCopy = sawDataHeader && line.starts(with: Self.copyPrefix)
            sawDataHeader = false
            if isCopy {
                try startCopy(line, emit)
                return
            }
        }
        try line.withUnsafeBytes { try emit(.script($0)) }
    }

    /// `COPY name (columns) FROM stdin;\n`, possibly still open inside a quoted name.
    private mutating func startCopy(_ statement: [UInt8], _ emit: (Event) throws -> Void) throws {
        let quotes = statement.reduce(0) { $1 == 0x22 ? $0 + 1 : $0 }
        if quotes % 2 == 1 {
            pendingCopy = statement
            return
        }
        let body = statement.last == 0x0A ? statement.dropLast() : statement[...]
        let text = String(decoding: body.dropFirst(Self.copyPrefix.count), as: UTF8.self)
        terminator = 0
        heldBack = 0
        if body.count > Self.copySuffix.count, Array(body.suffix(Self.copySuffix.count)) == Self.copySuffix,
           let (name, _) = QualifiedName.parsePrefix(Substring(text)), split(name) {
            splitTables.append(name)
            mode = .copy(split: true)
            try emit(.startRows(table: name, statement: String(decoding: statement, as: UTF8.self), header: header))
            return
        }
        mode = .copy(split: false)
        try statement.withUnsafeBytes { try emit(.script($0)) }
    }

    static let set = Array("SET ".utf8)
    static let setConfig = Array("SELECT pg_catalog.set_config(".utf8)
    static let dataHeader = Array("-- Data for Name: ".utf8)
    static let tableDataMarker = Array("; Type: TABLE DATA;".utf8)
    static let copyPrefix = Array("COPY ".utf8)
    static let copySuffix = Array(" FROM stdin;".utf8)
}
