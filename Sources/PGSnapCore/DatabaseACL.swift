import Foundation

/// One item of a database's ACL as PostgreSQL prints it (`grantee=privileges/grantor`, an empty
/// grantee for PUBLIC, names in double quotes when they need them), read without the server:
/// a role it names may not exist on the server a snapshot is restored to, where casting the text
/// to `aclitem` fails, and `restore --no-owner` gives the snapshot owner's part to another role.
public struct DatabaseACLItem: Equatable, Sendable {
    public struct Privilege: Equatable, Sendable {
        public var name: String
        public var grantOption: Bool
    }
    /// nil: PUBLIC.
    public var grantee: String?
    public var privileges: [Privilege]
    public var grantor: String

    /// The privileges of a database and their letters (`aclitem`'s output).
    static let letters: [Character: String] = ["C": "CREATE", "T": "TEMPORARY", "c": "CONNECT"]

    /// Parses one item; nil when it is not a database ACL item.
    public static func parse(_ text: String) -> DatabaseACLItem? {
        var rest = Substring(text)
        func name() -> String? {
            if rest.first == "\"" {
                rest.removeFirst()
                var out = ""
                while let ch = rest.first {
                    rest.removeFirst()
                    if ch == "\"" {
                        guard rest.first == "\"" else { return out }
                        rest.removeFirst()
                    }
                    out.append(ch)
                }
                return nil
            }
            let bare = rest.prefix { $0 != "=" && $0 != "/" }
            rest = rest.dropFirst(bare.count)
            return String(bare)
        }
        guard let grantee = name(), rest.first == "=" else { return nil }
        rest.removeFirst()
        var privileges: [Privilege] = []
        while let ch = rest.first, ch != "/" {
            rest.removeFirst()
            if ch == "*", !privileges.isEmpty {
                privileges[privileges.count - 1].grantOption = true
                continue
            }
            guard let privilege = letters[ch] else { return nil }
            privileges.append(Privilege(name: privilege, grantOption: false))
        }
        guard rest.first == "/" else { return nil }
        rest.removeFirst()
        guard let grantor = name(), !grantor.isEmpty, rest.isEmpty else { return nil }
        return DatabaseACLItem(grantee: grantee.isEmpty ? nil : grantee, privileges: privileges, grantor: grantor)
    }

    /// The roles it names.
    public var roles: [String] { [grantee, grantor].compactMap { $0 } }

    /// With the role `from` read as `to` (restore --no-owner: the snapshot owner's part goes to the new owner).
    public func renaming(_ from: String, to: String) -> DatabaseACLItem {
        var item = self
        if item.grantee == from { item.grantee = to }
        if item.grantor == from { item.grantor = to }
        return item
    }
}
