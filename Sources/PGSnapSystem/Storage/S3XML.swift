import Foundation

/// The few fields pgsnap reads from S3's XML answers. S3's XML is flat and regular, so plain
/// tag scanning is enough and keeps libxml2 out of the binary.
enum S3XML {
    /// The text of every `<tag>...</tag>`, entities decoded, in order.
    static func values(_ tag: String, in text: Substring) -> [String] {
        var out: [String] = []
        var rest = text[...]
        let open = "<\(tag)>", close = "</\(tag)>"
        while let a = rest.range(of: open), let b = rest.range(of: close, range: a.upperBound..<rest.endIndex) {
            out.append(unescape(String(rest[a.upperBound..<b.lowerBound])))
            rest = rest[b.upperBound...]
        }
        return out
    }

    static func value(_ tag: String, in text: Substring) -> String? { values(tag, in: text).first }

    /// The inner text of every `<tag>...</tag>` block, not decoded, for nested fields.
    static func blocks(_ tag: String, in text: String) -> [Substring] {
        var out: [Substring] = []
        var rest = text[...]
        let open = "<\(tag)>", close = "</\(tag)>"
        while let a = rest.range(of: open), let b = rest.range(of: close, range: a.upperBound..<rest.endIndex) {
            out.append(rest[a.upperBound..<b.lowerBound])
            rest = rest[b.upperBound...]
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";") {
                let entity = s[s.index(after: i)..<semi]
                var decoded: String?
                switch entity {
                case "amp": decoded = "&"
                case "lt": decoded = "<"
                case "gt": decoded = ">"
                case "quot": decoded = "\""
                case "apos": decoded = "'"
                default:
                    if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) { decoded = String(u) }
                    else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let u = Unicode.Scalar(v) { decoded = String(u) }
                }
                if let decoded {
                    out += decoded
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
