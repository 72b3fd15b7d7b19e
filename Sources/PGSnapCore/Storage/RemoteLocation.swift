import Foundation

/// Where offsite copies live: `s3://BUCKET[/PREFIX]`. Objects are named `PREFIX/<file name>`,
/// the same names as in the local directory.
public struct RemoteLocation: Equatable, Sendable, CustomStringConvertible {
    public var bucket: String
    /// Without leading or trailing `/`; empty for the bucket's root.
    public var prefix: String

    /// - Throws: `PGSnapError.usage` for anything but a plausible `s3://bucket[/prefix]`.
    public init(parsing text: String) throws {
        guard text.hasPrefix("s3://") else {
            throw PGSnapError.usage("remote '\(oneLine(text, limit: 120))' is not an s3:// URL", next: "Use --remote s3://BUCKET[/PREFIX]")
        }
        let rest = text.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        let prefix = rest.dropFirst(bucket.count).split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        // S3's own rules: 3-63 characters, lower-case letters, digits, '.', '-', starting and ending alphanumeric.
        let ok = (3...63).contains(bucket.count)
            && bucket.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "-" }
            && bucket.first.map { $0.isLetter || $0.isNumber } == true && bucket.last.map { $0.isLetter || $0.isNumber } == true
        guard ok else {
            throw PGSnapError.usage("'\(oneLine(bucket, limit: 80))' is not a valid S3 bucket name",
                                    next: "Bucket names have 3-63 lower-case letters, digits, '.' or '-'")
        }
        guard prefix.utf8.count <= 512, !prefix.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }),
              !prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." })
        else {
            throw PGSnapError.usage("the prefix of remote '\(oneLine(text, limit: 120))' is not usable", next: "Use plain path segments")
        }
        self.bucket = bucket
        self.prefix = prefix
    }

    /// The object key of a snapshot file.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

    /// What to list: every key under the prefix (and nothing of a sibling like `PREFIX-old/`).
    public var listPrefix: String { prefix.isEmpty ? "" : prefix + "/" }

    /// The file name of a listed key, or nil for keys in deeper "folders" (not ours). A directory
    /// snapshot's files are one level down: `<id>.dir/<file>`.
    public func name(ofKey key: String) -> String? {
        guard key.hasPrefix(listPrefix) else { return nil }
        let name = String(key.dropFirst(listPrefix.count))
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 2, parts[0].hasSuffix(SnapshotName.directorySuffix), DirectoryDump.isDumpFileName(String(parts[1])) { return name }
        return name.isEmpty || name.contains("/") ? nil : name
    }

    public var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }
}
