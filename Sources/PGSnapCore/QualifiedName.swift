/// A table name as pg_dump writes it after `COPY `: dot-separated identifiers, each plain or double-quoted.
///
/// Parsing it, rather than trusting it, keeps a tampered manifest from smuggling SQL into the
/// `SELECT count(*) FROM ONLY <name>` that restore runs.
public enum QualifiedName {
    /// The canonical text of the name at the start of `text` and the rest; nil when malformed.
    public static func parsePrefix(_ text: Substring) -> (name: String, rest: Substring)? {
        var parts: [String] = []
        var i = text.startIndex
        while true {
            guard i < text.endIndex else { return nil }
            if text[i] == "\"" {
                var j = text.index(after: i)
                var ident = "\""
                while true {
                    guard j < text.endIndex else { return nil }
                    if text[j] == "\"" {
                        let k = text.index(after: j)
                        if k < text.endIndex, text[k] == "\"" {
                            ident += "\"\""
                            j = text.index(after: k)
                            continue
                        }
                        j = k
                        break
                    }
                    // A newline is a legal identifier character (pg_dump writes it as is); NUL never is.
                    if text[j] == "\0" { return nil }
                    ident.append(text[j])
                    j = text.index(after: j)
                }
                ident += "\""
                guard ident.count > 2 else { return nil }
                parts.append(ident)
                i = j
            } else {
                var j = i
                while j < text.endIndex, isPlainIdentifierChar(text[j]) { j = text.index(after: j) }
                guard j > i, !(text[i].isASCII && text[i].isNumber) else { return nil }
                parts.append(String(text[i..<j]))
                i = j
            }
            if i < text.endIndex, text[i] == "." {
                i = text.index(after: i)
                continue
            }
            break
        }
        guard parts.count <= 3 else { return nil }
        return (parts.joined(separator: "."), text[i...])
    }

    /// The whole of `text` as a qualified name, or nil.
    public static func parse(_ text: String) -> String? {
        if isPlainASCII(text) { return text }
        guard let (name, rest) = parsePrefix(Substring(text)), rest.isEmpty else { return nil }
        return name
    }

    /// Fast path for the common `schema.table`: 1-3 ASCII identifiers of `[A-Za-z_][A-Za-z0-9_$]*`,
    /// which `parsePrefix` would return unchanged. A manifest holds one per table, prune reads them all.
    static func isPlainASCII(_ text: String) -> Bool {
        var parts = 1, atStart = true
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "."):
                guard !atStart, parts < 3 else { return false }
                parts += 1
                atStart = true
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
                atStart = false
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "$"):
                guard !atStart else { return false }
            default:
                return false
            }
        }
        return !atStart
    }

    static func isPlainIdentifierChar(_ c: Character) -> Bool {
        if c.isASCII { return c.isLetter || c.isNumber || c == "_" || c == "$" }
        return c.isLetter || c.isNumber
    }
}

extension QualifiedName {
    /// The identifiers of a qualified name as the server stores them: quotes removed, doubled
    /// quotes undone, unquoted ones folded to lower case (as the server folds them).
    public static func components(_ text: String) -> [String]? {
        guard let (_, rest) = parsePrefix(Substring(text)), rest.isEmpty else { return nil }
        var parts: [String] = []
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == "\"" {
                var j = text.index(after: i)
                var ident = ""
                while j < text.endIndex {
                    if text[j] == "\"" {
                        let k = text.index(after: j)
                        if k < text.endIndex, text[k] == "\"" {
                            ident.append("\"")
                            j = text.index(after: k)
                            continue
                        }
                        j = k
                        break
                    }
                    ident.append(text[j])
                    j = text.index(after: j)
                }
                parts.append(ident)
                i = j
            } else {
                var j = i
                while j < text.endIndex, text[j] != "." { j = text.index(after: j) }
                parts.append(String(text[i..<j]).lowercased())
                i = j
            }
            if i < text.endIndex, text[i] == "." { i = text.index(after: i) }
        }
        return parts
    }
}
