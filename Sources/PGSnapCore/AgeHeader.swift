import Foundation

/// The plaintext header of an age file: which kinds of key it was encrypted to.
///
/// What it can prove without the identity is limited, and `check` says so: an SSH stanza carries a
/// 4-byte tag of its public key (SHA-256 of the key blob), so SSH recipients are matched one by
/// one; an X25519 stanza carries only an ephemeral share, so `age1` recipients can only be counted.
public struct AgeHeader: Equatable, Sendable {
    public static let versionLine = "age-encryption.org/v1"
    /// age wraps stanza bodies at 64 columns; a shorter line ends the body.
    static let bodyColumns = 64

    public struct Stanza: Equatable, Sendable {
        public var type: String
        public var arguments: [String]
    }

    public var stanzas: [Stanza]

    /// Parses the header at the start of `bytes` (the first few KB of the file are enough).
    ///
    /// - Returns: nil when `bytes` does not start with a complete age v1 header.
    public static func parse(_ bytes: [UInt8]) -> AgeHeader? {
        var lines: [Substring] = []
        var start = 0
        // The header ends at the "--- " line; the binary payload after it is never split into lines.
        for i in bytes.indices where bytes[i] == 0x0A {
            let line = String(decoding: bytes[start..<i], as: UTF8.self)[...]
            lines.append(line)
            start = i + 1
            if line.hasPrefix("--- ") { break }
        }
        guard lines.first == Substring(versionLine), lines.last?.hasPrefix("--- ") == true else { return nil }
        var stanzas: [Stanza] = []
        var i = 1
        while i < lines.count - 1 {
            let line = lines[i]
            guard line.hasPrefix("-> ") else { return nil }
            let parts = line.dropFirst(3).split(separator: " ").map(String.init)
            guard let type = parts.first else { return nil }
            stanzas.append(Stanza(type: type, arguments: Array(parts.dropFirst())))
            i += 1
            // Body lines: full 64-column lines, then one shorter (possibly empty) final line.
            while i < lines.count - 1 {
                let body = lines[i]
                i += 1
                if body.utf8.count < bodyColumns { break }
            }
        }
        return AgeHeader(stanzas: stanzas)
    }

    /// What the header shows about the recipients, checked against the manifest's.
    public struct Check: Equatable, Sendable {
        /// Empty when everything that can be checked matches.
        public var problems: [String]
        /// One line: what was checked, honestly.
        public var summary: String
    }

    /// - Parameter sha256: SHA-256 of a byte string (Core does not link a crypto library).
    public func check(against recipients: [AgeRecipient], sha256: ([UInt8]) -> [UInt8]) -> Check {
        var problems: [String] = []
        // age may add a random "grease" stanza that no key unwraps; it says nothing about recipients.
        let real = stanzas.filter { !$0.type.hasSuffix("-grease") }
        let x25519Stanzas = real.filter { $0.type == AgeRecipient.Kind.x25519.rawValue }.count
        let x25519Wanted = recipients.filter { $0.kind == .x25519 }.count
        if x25519Stanzas != x25519Wanted {
            problems.append("the age header has \(x25519Stanzas) X25519 stanza(s), the manifest lists \(x25519Wanted) age1 recipient(s)")
        }
        var sshMatched = 0
        for kind in [AgeRecipient.Kind.sshEd25519, .sshRSA] {
            let tags = real.filter { $0.type == kind.rawValue }.compactMap(\.arguments.first).sorted()
            let wanted = recipients.filter { $0.kind == kind }.compactMap { r in r.sshWireKey.map { AgeHeader.sshTag(sha256($0)) } }.sorted()
            if tags != wanted {
                problems.append("the age header's \(kind.rawValue) stanzas (tags \(tags.joined(separator: ","))) do not match the manifest's \(kind.rawValue) recipients (tags \(wanted.joined(separator: ",")))")
            } else {
                sshMatched += tags.count
            }
        }
        let known = Set([AgeRecipient.Kind.x25519, .sshEd25519, .sshRSA].map(\.rawValue))
        for s in real where !known.contains(s.type) {
            problems.append("the age header has a \(oneLine(s.type, limit: 40)) stanza that no manifest recipient explains")
        }
        var parts: [String] = []
        if x25519Wanted > 0 { parts.append("\(x25519Stanzas) X25519 stanza(s) for \(x25519Wanted) age1 recipient(s) (counted only: an X25519 stanza does not name its key)") }
        if sshMatched > 0 { parts.append("\(sshMatched) SSH recipient(s) matched by key tag") }
        return Check(problems: problems, summary: "age header: " + (parts.isEmpty ? "no recipients" : parts.joined(separator: "; ")))
    }

    /// age's SSH stanza tag: the first 4 bytes of SHA-256 of the key blob, base64 without padding.
    static func sshTag(_ digest: [UInt8]) -> String {
        var s = Data(digest.prefix(4)).base64EncodedString()
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }
}
