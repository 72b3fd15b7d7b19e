#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a plain-format pg_dump stream as it flows past and counts the rows of each `COPY ... FROM stdin;` block.
///
/// In COPY text format every row is one line (newlines inside values are escaped as `\n`) and a
/// block ends with a line holding only `\.`, so counting lines is exact. Only a COPY line that
/// follows pg_dump's own `-- Data for Name: ...; Type: TABLE DATA;` header starts a block, so a
/// function body that mentions COPY is not mistaken for data. Costs one memchr per line; keeps
/// only the current line's first bytes.
public struct DumpScanner: Sendable {
    /// Rows per table in dump order.
    public private(set) var tables: [(name: String, rows: Int64)] = []
    public private(set) var bytes: Int64 = 0
    /// COPY blocks whose `\.` has passed: when it reaches `tables.count`, the data section is through.
    public private(set) var copyBlocksEnded = 0

    private var inCopy = false
    private var rows: Int64 = 0
    private var sawDataHeader = false
    /// A COPY statement whose quoted table or column name holds a newline, so far.
    private var pendingCopy: [UInt8]?
    /// The current line's first bytes (all of it in SQL mode, up to `lineCap`).
    private var line: [UInt8] = []
    private var lineLength = 0
    private var tail: [UInt8] = []

    static let lineCap = 1 << 20
    static let tailKeep = 256

    public init() {
        line.reserveCapacity(4096)
    }

    public var rowsByTable: [String: Int64] {
        var out: [String: Int64] = [:]
        for t in tables { out[t.name, default: 0] += t.rows }
        return out
    }

    /// True when the stream ended with pg_dump's completion trailer, outside any COPY block.
    public var sawCompletionTrailer: Bool {
        guard !inCopy else { return false }
        let text = String(decoding: tail, as: UTF8.self)
        return text.contains("-- PostgreSQL database dump complete")
    }

    public mutating func consume(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        let n = buffer.count
        bytes += Int64(n)
        keepTail(buffer)
        var i = 0
        while i < n {
            let found = memchr(base + i, 0x0A, n - i)
            let end = found.map { $0 - UnsafeMutableRawPointer(mutating: base) } ?? n
            let segment = UnsafeRawBufferPointer(start: base + i, count: end - i)
            if inCopy {
                // Only "\." needs recognising: keep two bytes at most.
                if lineLength < 3 {
                    line.append(contentsOf: segment.prefix(3 - lineLength))
                }
            } else if lineLength < DumpScanner.lineCap {
                line.append(contentsOf: segment.prefix(DumpScanner.lineCap - lineLength))
            }
            lineLength += segment.count
            if found == nil { break }
            finishLine()
            i = end + 1
        }
    }

    public mutating func consume(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { consume($0) }
    }

    private mutating func keepTail(_ buffer: UnsafeRawBufferPointer) {
        if buffer.count >= DumpScanner.tailKeep {
            tail = Array(buffer.suffix(DumpScanner.tailKeep))
        } else {
            tail.append(contentsOf: buffer)
            if tail.count > DumpScanner.tailKeep { tail.removeFirst(tail.count - DumpScanner.tailKeep) }
        }
    }

    private mutating func finishLine() {
        defer {
            line.removeAll(keepingCapacity: true)
            lineLength = 0
        }
        if inCopy {
            if lineLength == 2 && line[0] == 0x5C && line[1] == 0x2E {  // "\."
                tables[tables.count - 1].rows = rows
                inCopy = false
                copyBlocksEnded += 1
            } else {
                rows += 1
            }
            return
        }
        if let pending = pendingCopy {
            // A quoted name with a newline in it: the COPY statement goes on past this line.
            pendingCopy = nil
            guard lineLength == line.count else { return }
            startCopy(pending + [0x0A] + line)
            return
        }
        if line.starts(with: DumpScanner.dataHeader) {
            sawDataHeader = DumpScanner.contains(line, DumpScanner.tableDataMarker)
            return
        }
        if line.first == 0x2D || lineLength == 0 { return }  // comment or blank: the header still applies
        defer { sawDataHeader = false }
        guard sawDataHeader, line.starts(with: DumpScanner.copyPrefix), lineLength == line.count else { return }
        startCopy(line)
    }

    /// `COPY name (columns) FROM stdin;`, possibly still open inside a quoted name.
    private mutating func startCopy(_ statement: [UInt8]) {
        let quotes = statement.reduce(0) { $1 == 0x22 ? $0 + 1 : $0 }
        if quotes % 2 == 1 {
            if statement.count < DumpScanner.lineCap { pendingCopy = statement }
            return
        }
        guard statement.count > DumpScanner.copySuffix.count,
              Array(statement.suffix(DumpScanner.copySuffix.count)) == DumpScanner.copySuffix
        else { return }
        let text = String(decoding: statement.dropFirst(DumpScanner.copyPrefix.count), as: UTF8.self)
        guard let (name, _) = QualifiedName.parsePrefix(Substring(text)) else { return }
        tables.append((name, 0))
        rows = 0
        inCopy = true
    }

    static let dataHeader = Array("-- Data for Name: ".utf8)
    static let tableDataMarker = Array("; Type: TABLE DATA;".utf8)
    static let copyPrefix = Array("COPY ".utf8)
    static let copySuffix = Array(" FROM stdin;".utf8)

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }
}
