import Foundation

/// A public key a snapshot is encrypted to, as `age -r` takes it: an X25519 key (`age1...`) or an
/// SSH public key (`ssh-ed25519 AAAA...`, `ssh-rsa AAAA...`).
///
/// Checked here, before anything is written, so a typo is a usage error and not a backup that
/// nobody can read: the bech32 checksum of `age1` keys, the key blob of SSH keys.
public struct AgeRecipient: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case x25519 = "X25519"
        case sshEd25519 = "ssh-ed25519"
        case sshRSA = "ssh-rsa"
    }

    public let kind: Kind
    /// The key as age takes it: `age1...`, or `ssh-ed25519 <base64>` without the comment.
    public let text: String

    public var description: String { text }

    /// The SSH wire-format key (the decoded base64 blob); nil for X25519.
    public var sshWireKey: [UInt8]? {
        guard kind != .x25519, let blob = text.split(separator: " ").last else { return nil }
        return Data(base64Encoded: String(blob)).map { [UInt8]($0) }
    }

    /// Parses one recipient.
    ///
    /// - Throws: a usage error saying what is wrong with it (never echoing more than its start).
    public static func parse(_ raw: String) throws -> AgeRecipient {
        let s = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = oneLine(s, limit: 24)
        if s.lowercased().hasPrefix("age1") {
            guard s.count == 62, s == s.lowercased() || s == s.uppercased(), bech32Valid(s.lowercased()) else {
                throw PGSnapError.usage("recipient '\(shown)' is not a valid age public key (age1 followed by 58 bech32 characters, checksum included)",
                                        next: "Copy the 'Public key:' line printed by age-keygen, or run 'age-keygen -y key.txt'")
            }
            return AgeRecipient(kind: .x25519, text: s.lowercased())
        }
        let fields = s.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if let type = fields.first, let kind = Kind(rawValue: String(type)), kind != .x25519 {
            guard fields.count >= 2, let blob = Data(base64Encoded: String(fields[1])), sshKeyType(blob) == kind.rawValue else {
                throw PGSnapError.usage("recipient '\(shown)' is not a valid \(kind.rawValue) public key",
                                        next: "Give the whole line of the .pub file, e.g. --encrypt-to \"$(cat ~/.ssh/id_ed25519.pub)\"")
            }
            return AgeRecipient(kind: kind, text: "\(kind.rawValue) \(fields[1])")
        }
        if s.hasPrefix("AGE-SECRET-KEY-") {
            throw PGSnapError.usage("that is an age identity (a secret key), not a recipient",
                                    next: "Give its public key ('age-keygen -y key.txt') to --encrypt-to, and keep the identity off this machine")
        }
        throw PGSnapError.usage("recipient '\(shown)' is not an age public key (age1...) or an SSH public key (ssh-ed25519 / ssh-rsa)",
                                next: "Use the public key printed by age-keygen, or an SSH .pub line")
    }

    /// Recipients in age's recipients-file form: one per line, blank lines and `#` comments skipped.
    ///
    /// - Throws: a usage error naming the line (of `source`) that is wrong.
    public static func parseFile(_ text: String, source: String) throws -> [AgeRecipient] {
        var out: [AgeRecipient] = []
        for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("#") { continue }
            do {
                out.append(try parse(t))
            } catch let e as PGSnapError {
                throw PGSnapError.usage("\(source) line \(i + 1): \(e.what)", next: e.next)
            }
        }
        return out
    }

    /// `PGSNAP_AGE_RECIPIENTS`: recipients separated by commas or newlines.
    public static func parseList(_ text: String, source: String) throws -> [AgeRecipient] {
        var out: [AgeRecipient] = []
        for item in text.split(whereSeparator: { $0 == "," || $0.isNewline }) {
            let t = item.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            do {
                out.append(try parse(t))
            } catch let e as PGSnapError {
                throw PGSnapError.usage("\(source): \(e.what)", next: e.next)
            }
        }
        return out
    }

    /// The key type named at the start of an SSH wire-format blob (a length-prefixed string).
    static func sshKeyType(_ blob: Data) -> String? {
        let b = [UInt8](blob)
        guard b.count >= 4 else { return nil }
        let n = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
        guard n > 0, n <= 64, b.count >= 4 + n else { return nil }
        let type = String(decoding: b[4..<(4 + n)], as: UTF8.self)
        // An ed25519 key is exactly its type string and a 32-byte key; an RSA key carries e and n.
        if type == Kind.sshEd25519.rawValue && b.count != 4 + n + 4 + 32 { return nil }
        if type == Kind.sshRSA.rawValue && b.count < 4 + n + 64 { return nil }
        return type
    }

    static let bech32Charset = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)

    /// BIP 173 bech32 checksum over a lower-case string `hrp1data`.
    static func bech32Valid(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let sep = b.lastIndex(of: UInt8(ascii: "1")), sep > 0, b.count - sep - 1 >= 6 else { return false }
        var values: [UInt32] = []
        for c in b[(sep + 1)...] {
            guard let v = bech32Charset.firstIndex(of: c) else { return false }
            values.append(UInt32(v))
        }
        let hrp = b[..<sep]
        var expanded = hrp.map { UInt32($0 >> 5) }
        expanded.append(0)
        expanded += hrp.map { UInt32($0 & 31) }
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var chk: UInt32 = 1
        for v in expanded + values {
            let top = chk >> 25
            chk = (chk & 0x1ff_ffff) << 5 ^ v
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 { chk ^= generator[i] }
        }
        return chk == 1
    }
}

/// The `encryption` record of a manifest: who can read the stored file.
public struct Encryption: Codable, Equatable, Sendable {
    public var tool: String
    public var recipients: [String]

    public init(recipients: [AgeRecipient]) {
        tool = "age"
        self.recipients = recipients.map(\.text)
    }

    init(json f: JSONFields) throws {
        tool = try f.required("tool", JSONFields.string)
        recipients = try f.required("recipients", JSONFields.strings)
    }

    /// The recipients, listed for a person who has to find the matching key.
    public var recipientList: String { recipients.joined(separator: ", ") }
}
