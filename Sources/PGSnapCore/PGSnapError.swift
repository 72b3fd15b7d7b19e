/// Every runtime failure pgsnap reports: what failed, and what to do next, on one line.
public struct PGSnapError: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    public var what: String
    public var next: String?

    public init(_ what: String, next: String? = nil) {
        self.init(.failure, what, next: next)
    }

    public init(_ status: ExitStatus, _ what: String, next: String? = nil) {
        self.status = status
        self.what = what
        self.next = next
    }

    public var description: String {
        guard let next, !next.isEmpty else { return what }
        // Tool messages often end with their own period ("PQgetCopyData() failed.").
        return what.hasSuffix(".") ? "\(what) \(next)" : "\(what). \(next)"
    }

    public static func usage(_ what: String, next: String? = nil) -> PGSnapError {
        PGSnapError(.usage, what, next: next)
    }
    public static func verification(_ what: String, next: String? = nil) -> PGSnapError {
        PGSnapError(.verificationFailed, what, next: next)
    }
}

/// `text` with line breaks as spaces, nothing cut: a message line that quotes a name given with
/// a newline stays one line.
public func flattened(_ text: String) -> String {
    guard text.contains(where: \.isNewline) else { return text }
    return String(text.map { $0.isNewline ? " " : $0 })
}

/// Text from outside (pg_dump's stderr, file names) made safe for a one-line message.
public func oneLine(_ text: String, limit: Int = 400) -> String {
    var out = ""
    for ch in text.unicodeScalars {
        if ch == "\n" || ch == "\r" || ch == "\t" { out.unicodeScalars.append(" ") }
        else if ch.value < 0x20 || ch.value == 0x7f { out += "?" }
        else { out.unicodeScalars.append(ch) }
        if out.count >= limit { out += "…"; break }
    }
    return out.trimmingCharacters(in: .whitespaces)
}

import Foundation
