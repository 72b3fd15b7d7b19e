import Foundation

/// Where to connect, with the same meaning as for pg_dump and psql.
///
/// libpq environment variables apply underneath; `--dbname` may be a plain name, a
/// `postgres://` URI or a `key=value` string; `--host`, `--port`, `--username` override what the
/// string says. `DATABASE_URL` is used only when no database is named otherwise. The password is
/// kept apart so that it can travel in a 0600 passfile and never in argv.
public struct ConnectionSpec: Equatable, Sendable {
    /// libpq keywords other than the password, in the order given.
    public private(set) var parameters: [(key: String, value: String)] = []
    public private(set) var password: String?
    /// The client key's passphrase (libpq's `sslpassword`), kept apart like the password: it goes
    /// to libpq as a keyword and to children in a 0600 service file, never in argv.
    public private(set) var sslPassword: String?

    public static func == (a: ConnectionSpec, b: ConnectionSpec) -> Bool {
        a.password == b.password && a.sslPassword == b.sslPassword && a.parameters.map { [$0.key, $0.value] } == b.parameters.map { [$0.key, $0.value] }
    }

    public init() {}

    /// - Throws: a usage error when `dbname` is a connection string that cannot be parsed.
    public init(dbname: String?, host: String?, port: String?, username: String?, environment: [String: String]) throws {
        if let dbname {
            try absorb(dbname)
        } else if environment["PGDATABASE"] == nil, let url = environment["DATABASE_URL"], !url.isEmpty {
            try absorb(url)
        }
        if let host { set("host", host) }
        if let port {
            guard let p = Int(port), (1...65535).contains(p) else {
                throw PGSnapError.usage("invalid port '\(oneLine(port, limit: 40))'", next: "Give a number from 1 to 65535")
            }
            set("port", String(p))
        }
        if let username { set("user", username) }
    }

    public subscript(key: String) -> String? {
        parameters.last(where: { $0.key == key })?.value
    }

    public mutating func set(_ key: String, _ value: String) {
        if key == "password" {
            password = value
            return
        }
        if key == "sslpassword" {
            sslPassword = value
            return
        }
        parameters.removeAll { $0.key == key }
        parameters.append((key, value))
    }

    mutating func absorb(_ text: String) throws {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            for (k, v) in try ConnectionSpec.parseURI(text) { set(k, v) }
        } else if text.contains("=") {
            for (k, v) in try ConnectionSpec.parseKeyValue(text) { set(k, v) }
        } else {
            set("dbname", text)
        }
    }

    /// A libpq `key=value` string without the password, for the child's `--dbname` and libpq.
    public func conninfo(extra: [(String, String)] = []) -> String {
        (parameters + extra.map { (key: $0.0, value: $0.1) }).map { "\($0.key)=\(ConnectionSpec.quote($0.value))" }
            .joined(separator: " ")
    }

    /// The connection to print in a command for a person to run: `conninfo()` without the
    /// secrets libpq finds elsewhere (the password: PGPASSWORD, ~/.pgpass) or that must not be
    /// shown (sslpassword, the client key's passphrase).
    public var printableConninfo: String {
        conninfo()
    }

    /// What may be shown to a person: every parameter, the password replaced.
    public var redacted: String {
        var parts = parameters.map { "\($0.key)=\($0.value)" }
        if password != nil { parts.append("password=********") }
        if sslPassword != nil { parts.append("sslpassword=********") }
        return parts.isEmpty ? "(libpq defaults)" : parts.joined(separator: " ")
    }

    static func quote(_ value: String) -> String {
        if !value.isEmpty, !value.contains(where: { $0.isWhitespace || $0 == "'" || $0 == "\\" || $0 == "=" }) {
            return value
        }
        return "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// Parses libpq's `key = value` form, with single-quoted values and backslash escapes.
    public static func parseKeyValue(_ text: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        var chars = Array(text)[...]
        func skipSpace() { while let c = chars.first, c.isWhitespace { chars = chars.dropFirst() } }
        func bad(_ why: String) -> PGSnapError {
            PGSnapError.usage("cannot parse the connection string: \(why)", next: "Use key=value pairs, e.g. \"host=db1 dbname=app\", or a postgres:// URI")
        }
        while true {
            skipSpace()
            guard !chars.isEmpty else { break }
            var key = ""
            while let c = chars.first, c != "=", !c.isWhitespace {
                key.append(c)
                chars = chars.dropFirst()
            }
            skipSpace()
            guard chars.first == "=" else { throw bad("missing '=' after '\(oneLine(key, limit: 40))'") }
            chars = chars.dropFirst()
            skipSpace()
            var value = ""
            if chars.first == "'" {
                chars = chars.dropFirst()
                var closed = false
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if c == "\\" {
                        guard let n = chars.first else { break }
                        value.append(n)
                        chars = chars.dropFirst()
                    } else if c == "'" {
                        closed = true
                        break
                    } else {
                        value.append(c)
                    }
                }
                guard closed else { throw bad("unterminated quoted value") }
            } else {
                while let c = chars.first, !c.isWhitespace {
                    chars = chars.dropFirst()
                    if c == "\\" {
                        guard let n = chars.first else { break }
                        value.append(n)
                        chars = chars.dropFirst()
                    } else {
                        value.append(c)
                    }
                }
            }
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0 == "_" }) else { throw bad("invalid keyword '\(oneLine(key, limit: 40))'") }
            out.append((key, value))
        }
        return out
    }

    /// Parses `postgres[ql]://[user[:password]@][host][:port][/dbname][?k=v&...]`, percent-decoding each part.
    public static func parseURI(_ text: String) throws -> [(String, String)] {
        func bad(_ why: String) -> PGSnapError {
            PGSnapError.usage("cannot parse the connection URI: \(why)", next: "Use postgres://user@host:5432/dbname?sslmode=require (percent-encode special characters)")
        }
        func decode(_ s: Substring) throws -> String {
            guard let d = String(s).removingPercentEncoding else { throw bad("invalid percent-encoding") }
            return d
        }
        var rest = Substring(text)
        rest = rest.hasPrefix("postgresql://") ? rest.dropFirst("postgresql://".count) : rest.dropFirst("postgres://".count)
        var out: [(String, String)] = []
        var query: Substring?
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path: Substring?
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = try decode(userinfo[..<colon])
                if !user.isEmpty { out.append(("user", user)) }
                out.append(("password", try decode(userinfo[userinfo.index(after: colon)...])))
            } else if !userinfo.isEmpty {
                out.append(("user", try decode(userinfo)))
            }
        }
        if !rest.isEmpty {
            var host = rest
            var port: Substring?
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { throw bad("unterminated IPv6 address") }
                let after = host.index(after: close)
                if after < host.endIndex {
                    guard host[after] == ":" else { throw bad("unexpected text after IPv6 address") }
                    port = host[host.index(after: after)...]
                }
                host = host[host.index(after: host.startIndex)..<close]
            } else if let colon = host.lastIndex(of: ":") {
                port = host[host.index(after: colon)...]
                host = host[..<colon]
            }
            if !host.isEmpty { out.append(("host", try decode(host))) }
            if let port, !port.isEmpty {
                guard let p = Int(port), (1...65535).contains(p) else { throw bad("invalid port '\(oneLine(String(port), limit: 20))'") }
                out.append(("port", String(p)))
            }
        }
        if let path, !path.isEmpty { out.append(("dbname", try decode(path))) }
        if let query, !query.isEmpty {
            for pair in query.split(separator: "&") {
                guard let eq = pair.firstIndex(of: "=") else { throw bad("query parameter without '='") }
                let key = try decode(pair[..<eq])
                guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0 == "_" }) else { throw bad("invalid parameter name") }
                out.append((key, try decode(pair[pair.index(after: eq)...])))
            }
        }
        return out
    }
}

/// Replaces anything that looks like a password inside free text (a URI's userinfo, `password=...`).
public func redactSecrets(_ text: String, password: String?) -> String {
    var out = text
    if let password, password.count >= 1 {
        out = out.replacingOccurrences(of: password, with: "********")
    }
    // postgres://user:secret@host, and any scheme's (pgx://, a migration tool's URL); up to the
    // last @ before the path, as URL parsers split a password holding a raw @
    if let regex = try? NSRegularExpression(pattern: "([A-Za-z][A-Za-z0-9+.-]*://[^:/@\\s]*:)[^/\\s]*@") {
        out = regex.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: "$1********@")
    }
    // password=..., also PGPASSWORD=... in a command's arguments
    if let regex = try? NSRegularExpression(pattern: "(password\\s*=\\s*)('(?:[^'\\\\]|\\\\.)*'|\\S+)", options: [.caseInsensitive]) {
        out = regex.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: "$1********")
    }
    return out
}
