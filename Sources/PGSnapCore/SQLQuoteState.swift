/// Where a line of pg_dump's plain script starts: at the top level of SQL, or inside a quoted
/// string, a quoted identifier or a dollar-quoted body (a function's, a DO block's) that an
/// earlier line opened. Lines are fed whole, in order; COPY data is not fed.
///
/// pg_dump writes standard-conforming strings ('it''s'), so a backslash escapes nothing
/// outside E'...'; `--` to the end of the line is a comment at the top level only.
struct SQLQuoteState: Sendable {
    private enum Inside: Sendable, Equatable {
        case nothing, string(escapes: Bool), identifier, dollar([UInt8])
    }
    private var inside = Inside.nothing

    /// Whether the next line starts at the top level.
    var atTopLevel: Bool { inside == .nothing }

    mutating func feed<C: RandomAccessCollection>(line: C) where C.Element == UInt8, C.Index == Int {
        var i = line.startIndex
        let end = line.endIndex
        while i < end {
            let b = line[i]
            switch inside {
            case .string(let escapes):
                if escapes && b == 0x5C { i += 2; continue }
                if b == 0x27 {
                    if i + 1 < end && line[i + 1] == 0x27 { i += 2; continue }
                    inside = .nothing
                }
            case .identifier:
                if b == 0x22 { inside = .nothing }  // "" inside reopens at once: same state after the pair
            case .dollar(let tag):
                if b == 0x24, Self.matches(tag, line, at: i) {
                    i += tag.count
                    inside = .nothing
                    continue
                }
            case .nothing:
                switch b {
                case 0x2D where i + 1 < end && line[i + 1] == 0x2D:
                    return  // comment to the end of the line
                case 0x27:
                    let previous = i > line.startIndex ? line[i - 1] : 0
                    inside = .string(escapes: previous == 0x45 || previous == 0x65)  // E'...'
                case 0x22:
                    inside = .identifier
                case 0x24:
                    // $tag$ opens a body unless the $ continues an identifier or is a parameter ($1).
                    let previous = i > line.startIndex ? line[i - 1] : 0
                    if !Self.isIdentifierByte(previous), let tag = Self.dollarTag(line, at: i) {
                        inside = .dollar(tag)
                        i += tag.count
                        continue
                    }
                default:
                    break
                }
            }
            i += 1
        }
    }

    /// `$$` or `$name$` starting at `i`, or nil.
    private static func dollarTag<C: RandomAccessCollection>(_ line: C, at i: Int) -> [UInt8]? where C.Element == UInt8, C.Index == Int {
        var j = i + 1
        while j < line.endIndex {
            let b = line[j]
            if b == 0x24 { return Array(line[i...j]) }
            // A tag is an identifier without $ that does not start with a digit.
            guard isIdentifierByte(b) && b != 0x24 && !(j == i + 1 && b >= 0x30 && b <= 0x39) else { return nil }
            j += 1
        }
        return nil
    }

    private static func matches<C: RandomAccessCollection>(_ tag: [UInt8], _ line: C, at i: Int) -> Bool where C.Element == UInt8, C.Index == Int {
        guard i + tag.count <= line.endIndex else { return false }
        return line[i..<(i + tag.count)].elementsEqual(tag)
    }

    private static func isIdentifierByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x24 || b >= 0x80
    }
}
