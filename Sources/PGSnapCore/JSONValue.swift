import Foundation

/// A strict RFC 8259 JSON reader for manifests.
///
/// Why not JSONDecoder: `prune` and `check` read every manifest in the directory, and
/// JSONDecoder's per-key Codable machinery made 10,000 manifests take over a second. This
/// reader parses a manifest in microseconds; `Manifest.decode` maps it by hand, for every
/// command alike, so prune and verify always agree on what is a valid manifest.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    /// The number as written, checked against the JSON grammar; converted on use.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    struct Invalid: Error {}

    /// Nesting deeper than any manifest: a hostile file must not exhaust the stack.
    static let maxDepth = 64

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var p = Parser(bytes: bytes)
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw Invalid() }
        return value
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for b in literal.utf8 {
                guard i < bytes.count, bytes[i] == b else { throw Invalid() }
                i += 1
            }
        }

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < JSONValue.maxDepth, i < bytes.count else { throw Invalid() }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func object(depth: Int) throws -> JSONValue {
            i += 1
            var out: [String: JSONValue] = [:]
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(out) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw Invalid() }
                let key = try string()
                skipSpace()
                try expect(":")
                skipSpace()
                out[key] = try value(depth: depth + 1)
                skipSpace()
                guard i < bytes.count else { throw Invalid() }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(out) }
                throw Invalid()
            }
        }

        mutating func array(depth: Int) throws -> JSONValue {
            i += 1
            var out: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
            while true {
                skipSpace()
                out.append(try value(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw Invalid() }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(out) }
                throw Invalid()
            }
        }

        mutating func string() throws -> String {
            i += 1
            var out: [UInt8] = []
            var start = i
            while true {
                guard i < bytes.count else { throw Invalid() }
                let b = bytes[i]
                if b == UInt8(ascii: "\"") {
                    defer { i += 1 }
                    if out.isEmpty {  // no escapes: straight from the input
                        guard let s = String(validating: bytes[start..<i], as: UTF8.self) else { throw Invalid() }
                        return s
                    }
                    out.append(contentsOf: bytes[start..<i])
                    guard let s = String(validating: out, as: UTF8.self) else { throw Invalid() }
                    return s
                }
                guard b >= 0x20 else { throw Invalid() }  // raw control characters are not JSON
                if b != UInt8(ascii: "\\") { i += 1; continue }
                out.append(contentsOf: bytes[start..<i])
                i += 1
                guard i < bytes.count else { throw Invalid() }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        try expect("\\u")
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw Invalid() }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw Invalid() }  // lone low surrogate
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default: throw Invalid()
                }
                start = i
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count else { throw Invalid() }
            var v: UInt32 = 0
            for b in bytes[i..<i + 4] {
                guard let d = hexDigit(b) else { throw Invalid() }
                v = v << 4 | d
            }
            i += 4
            return v
        }

        func hexDigit(_ b: UInt8) -> UInt32? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        mutating func number() throws -> String {
            let start = i
            func digits() -> Int {
                let from = i
                while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
                return i - from
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            let intStart = i
            let n = digits()
            guard n > 0, !(n > 1 && bytes[intStart] == UInt8(ascii: "0")) else { throw Invalid() }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw Invalid() }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw Invalid() }
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }
    }
}

/// Reads the fields of one JSON object, naming each failure by its path as the file spells it.
struct JSONFields {
    enum Failure: Error {
        case missing(String)
        case wrongType(String)
    }

    let object: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String = "") throws {
        guard case .object(let o) = value else { throw Failure.wrongType(path.isEmpty ? "(top level)" : path) }
        object = o
        self.path = path
    }

    func at(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// A field that must be present and not null.
    func required<T>(_ key: String, _ convert: (JSONValue) -> T?) throws -> T {
        guard let v = object[key] else { throw Failure.missing(at(key)) }
        guard let t = convert(v) else { throw Failure.wrongType(at(key)) }
        return t
    }

    /// A field that may be absent or null, but has the right type when given.
    func optional<T>(_ key: String, _ convert: (JSONValue) -> T?) throws -> T? {
        guard let v = object[key], v != .null else { return nil }
        guard let t = convert(v) else { throw Failure.wrongType(at(key)) }
        return t
    }

    func nested(_ key: String) throws -> JSONFields? {
        guard let v = object[key], v != .null else { return nil }
        return try JSONFields(v, path: at(key))
    }

    static func string(_ v: JSONValue) -> String? {
        if case .string(let s) = v { return s }
        return nil
    }

    static func bool(_ v: JSONValue) -> Bool? {
        if case .bool(let b) = v { return b }
        return nil
    }

    static func double(_ v: JSONValue) -> Double? {
        if case .number(let n) = v, let d = Double(n), d.isFinite { return d }
        return nil
    }

    /// Integers written plainly or as an exact float (`5`, `5.0`, `5e3`); nothing out of range.
    static func int64(_ v: JSONValue) -> Int64? {
        guard case .number(let n) = v else { return nil }
        if let i = Int64(n) { return i }
        guard let d = Double(n), d.rounded() == d, d >= -9.2e18, d <= 9.2e18 else { return nil }
        return Int64(d)
    }

    static func int(_ v: JSONValue) -> Int? { int64(v).flatMap { Int(exactly: $0) } }

    static func strings(_ v: JSONValue) -> [String]? {
        guard case .array(let a) = v else { return nil }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard case .string(let s) = e else { return nil }
            out.append(s)
        }
        return out
    }

    static func int64Map(_ v: JSONValue) -> [String: Int64]? {
        guard case .object(let o) = v else { return nil }
        var out: [String: Int64] = [:]
        out.reserveCapacity(o.count)
        for (k, e) in o {
            guard let n = int64(e) else { return nil }
            out[k] = n
        }
        return out
    }

    static func stringsMap(_ v: JSONValue) -> [String: [String]]? {
        guard case .object(let o) = v else { return nil }
        var out: [String: [String]] = [:]
        for (k, e) in o {
            guard let list = strings(e) else { return nil }
            out[k] = list
        }
        return out
    }

    static func date(_ v: JSONValue) -> Date? {
        guard case .string(let s) = v else { return nil }
        return ISO8601.parse(s)
    }
}
