import Foundation
import PGSnapCore

/// The `age` command: found in PATH, run with an argv array. Its format, not ours: `age -d` reads
/// a snapshot without pgsnap.
public struct AgeTool: Equatable, Sendable {
    public let path: String

    /// Looks `age` up in PATH.
    ///
    /// - Throws: exit 1 naming the Debian package, so it is raised before anything is written.
    public static func locate(environment: [String: String]) throws -> AgeTool {
        let dirs = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for dir in dirs where !dir.isEmpty {
            let candidate = dir + "/age"
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return AgeTool(path: candidate)
            }
        }
        throw PGSnapError("the age command is not installed (looked in PATH: \(dirs.joined(separator: ":")))",
                          next: "Install it (Debian/Ubuntu: apt-get install age) and run again; nothing was written")
    }

    /// Public keys only in argv: they are not secret, and age takes them nowhere else without a file.
    public func encrypt(to recipients: [AgeRecipient], environment: [String: String]) -> ExternalCommand {
        ExternalCommand(name: "age", executable: path, arguments: recipients.flatMap { ["-r", $0.text] }, environment: environment)
    }

    /// The identity's path in argv, never its contents.
    public func decrypt(with identity: AgeIdentity, environment: [String: String]) -> ExternalCommand {
        ExternalCommand(name: "age", executable: path, arguments: ["-d", "-i", identity.path], environment: environment)
    }
}

/// An age identity file (`--identity`), checked like ssh checks a private key: readable by its owner only.
public struct AgeIdentity: Equatable, Sendable {
    public let path: String

    /// The same rules for every command that takes `--identity` (or PGSNAP_AGE_IDENTITY), checked
    /// before anything else is read: a key that is not there is the operation failing (exit 1), as a
    /// key that does not match is; a key file others can read is refused as ssh refuses one (64).
    ///
    /// - Throws: exit 1 when the file is missing, not a regular file or unreadable; a usage error when
    ///   it is readable by group or others.
    public init(path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw PGSnapError("cannot read identity file \(path): \(String(cString: strerror(errno)))",
                              next: "Check --identity (or PGSNAP_AGE_IDENTITY); nothing was read")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw PGSnapError("cannot read identity file \(path): not a regular file", next: "Check --identity (or PGSNAP_AGE_IDENTITY); nothing was read")
        }
        let mode = st.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw PGSnapError.usage("identity file \(path) is readable by group or others (mode \(String(mode, radix: 8)))",
                                    next: "Run 'chmod 600 \(path)' and try again")
        }
        guard access(path, R_OK) == 0 else {
            throw PGSnapError("cannot read identity file \(path): \(String(cString: strerror(errno)))",
                              next: "Run pgsnap as the file's owner; nothing was read")
        }
        self.path = path
    }
}

/// The no-key-matched case, told apart from damage: it is the operator's key that is wrong (1), not the snapshot (2).
public struct AgeIdentityMismatch: Error, CustomStringConvertible {
    public let identity: String
    public let recipients: [String]
    /// age's words when it could not use the identity file at all (not an identity, a public key,
    /// a passphrase and no terminal): the key's problem, not the snapshot's.
    public var unusable: String? = nil
    public var description: String {
        if let unusable {
            return "age cannot use the identity in \(identity): \(unusable). Give an age identity file (age-keygen) or an SSH private key without a passphrase; the snapshot was not judged"
        }
        return "no identity in \(identity) matches the snapshot's recipients (\(recipients.joined(separator: ", "))). Use the identity of one of those public keys"
    }
    public var error: PGSnapError { PGSnapError(.failure, description) }
}

/// What reading an encrypted snapshot needs: the tool, the key, and whom to name when the key does not fit.
public struct AgeDecryption {
    public var tool: AgeTool
    public var identity: AgeIdentity
    public var recipients: [String]
    public var environment: [String: String]

    public init(tool: AgeTool, identity: AgeIdentity, recipients: [String], environment: [String: String]) {
        self.tool = tool
        self.identity = identity
        self.recipients = recipients
        self.environment = environment
    }

    func decryptor(inner: DumpInflater) throws -> AgeDecryptor {
        try AgeDecryptor(tool: tool, identity: identity, recipients: recipients, environment: environment, inner: inner)
    }

    /// - Parameter prefix: the first bytes of the stored file (a MiB is plenty: age's header and first chunk).
    /// - Throws: `AgeIdentityMismatch` when no key in the identity file opens the file these bytes start.
    public func checkIdentity(prefix: [UInt8]) throws {
        try AgeDecryptor.checkIdentity(tool: tool, identity: identity, recipients: recipients, prefix: prefix, environment: environment)
    }
}

/// The encryption stage of a backup: compressed bytes in, `age -r ...` in between, the file out.
///
/// Owns the age child: its exit status decides, so a killed or failing age never passes for a
/// finished file.
public final class AgeEncryptor: ByteSink {
    private let filter: ChildFilter
    private let sink: ByteSink

    /// - Throws: `PGSnapError` when age cannot be started.
    public init(tool: AgeTool, recipients: [AgeRecipient], environment: [String: String], sink: ByteSink) throws {
        filter = try ChildFilter(tool.encrypt(to: recipients, environment: environment))
        self.sink = sink
    }

    public var pid: Int32 { filter.child.pid }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            try filter.push(bytes, output: sink.write)
        } catch is ChildFilter.Stopped {
            throw failure(filter.child.terminate(grace: 1))
        }
    }

    /// Closes age's input and writes the rest of its output.
    ///
    /// - Throws: `PGSnapError` when age did not exit 0, or the sink's error.
    public func finish() throws {
        let status = try filter.finish(output: sink.write)
        guard status.succeeded else { throw failure(status) }
    }

    /// Stops age; for a backup that failed elsewhere.
    public func abort() { filter.abort() }

    private func failure(_ status: Termination) -> PGSnapError {
        let line = filter.child.lastErrorLine.map { ": " + oneLine($0) } ?? ""
        return PGSnapError("age failed while encrypting (\(status))\(line)", next: "Nothing was kept; fix the cause and run the backup again")
    }
}

/// The decryption stage of verify and restore: stored bytes in, `age -d -i FILE` in between, the inflater out.
public final class AgeDecryptor: DumpInflater {
    private let filter: ChildFilter
    private let inner: DumpInflater
    private let identity: AgeIdentity
    private let recipients: [String]

    public init(tool: AgeTool, identity: AgeIdentity, recipients: [String], environment: [String: String], inner: DumpInflater) throws {
        filter = try ChildFilter(tool.decrypt(with: identity, environment: environment))
        self.inner = inner
        self.identity = identity
        self.recipients = recipients
    }

    public func feed(_ bytes: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        do {
            try filter.push(bytes) { try inner.feed($0, sink: sink) }
        } catch is ChildFilter.Stopped {
            throw failure(filter.child.terminate(grace: 1))
        }
    }

    public func finish() throws {
        try finish(sink: { _ in })
    }

    public func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let status = try filter.finish { try inner.feed($0, sink: sink) }
        guard status.succeeded else { throw failure(status) }
        try inner.finish(sink: sink)
    }

    /// Stops age; for a read that ended early.
    public func abort() { filter.abort() }

    private func failure(_ status: Termination) -> Error {
        let lines = filter.child.stderrLines
        if lines.contains(where: { $0.contains("no identity matched") }) {
            return AgeIdentityMismatch(identity: identity.path, recipients: recipients)
        }
        // age's own words: "failed to decrypt and authenticate payload chunk" for changed or cut ciphertext.
        let line = lines.first(where: { $0.hasPrefix("age: error:") }).map { oneLine(String($0.dropFirst("age: error: ".count))) } ?? "\(status)"
        // The identity file itself ("reading ...: unknown identity type", "could not read passphrase",
        // "/dev/tty is not available"): the ciphertext was never looked at.
        if Self.isIdentityProblem(line) {
            return AgeIdentityMismatch(identity: identity.path, recipients: recipients, unusable: line)
        }
        return PGSnapError.verification("age could not decrypt the snapshot (\(status)): \(line)")
    }

    static func isIdentityProblem(_ line: String) -> Bool {
        let l = line.lowercased()
        // age names an identity file it reads: `reading "key.txt": ...`.
        return l.hasPrefix("reading \"") || l.contains("identit") || l.contains("passphrase") || l.contains("/dev/tty") || l.contains("private key")
    }

    /// How much of a stored file proves an identity: the header and the first payload chunk.
    public static let probeBytes = 1 << 20

    /// Runs `age -d` over `prefix`, the first bytes of a stored file (from disk or a ranged GET),
    /// only: a wrong identity is then known before anything else is read or created. Anything
    /// but a key mismatch is left to the full read.
    ///
    /// - Throws: `AgeIdentityMismatch`.
    public static func checkIdentity(tool: AgeTool, identity: AgeIdentity, recipients: [String], prefix: [UInt8],
                                     environment: [String: String]) throws {
        let probe = try AgeDecryptor(tool: tool, identity: identity, recipients: recipients, environment: environment, inner: PlainInflater())
        do {
            if !prefix.isEmpty { try prefix.withUnsafeBytes { try probe.feed($0, sink: { _ in }) } }
            try probe.finish()
        } catch let e as AgeIdentityMismatch {
            throw e
        } catch {
            // A file longer than the probe ends "truncated" here; the real read judges the rest.
        }
    }
}

extension Manifest {
    /// The stored file whose first bytes prove an identity: the dump, or for a directory snapshot
    /// its table of contents (the first file pg_restore reads).
    public var identityProbeFile: String {
        format == .directory ? file + "/toc.dat" + SnapshotName.encryptedSuffix : file
    }
}

extension Session {
    /// The identity given (`--identity`, PGSNAP_AGE_IDENTITY) against an encrypted snapshot, before
    /// anything else of it is read: every command that reads a snapshot calls this first, so a wrong
    /// key is the same one line, exit 1, everywhere. Nothing happens for a plain snapshot or without an identity.
    ///
    /// - Parameter firstBytes: up to `count` bytes from the start of a stored file, by name.
    /// - Throws: exit 1 when no key in the identity file opens the snapshot, or when age is not installed.
    public func proveIdentity(for m: Manifest, firstBytes: (_ name: String, _ count: Int) throws -> [UInt8]) throws {
        guard let decryption = try ageDecryption(for: m) else { return }
        do {
            try decryption.checkIdentity(prefix: try firstBytes(m.identityProbeFile, AgeDecryptor.probeBytes))
        } catch let e as AgeIdentityMismatch {
            throw e.error
        }
    }

    /// `proveIdentity` for a snapshot in the backup directory.
    public func proveIdentity(for m: Manifest, in dir: SnapshotDirectory) throws {
        try proveIdentity(for: m) { name, count in try SnapshotDirectory.readPrefix(dir.file(name), count: count) }
    }

    /// How to read `m`'s dump: nil for a plain snapshot, or an encrypted one without an identity.
    ///
    /// - Throws: when age is not installed.
    public func ageDecryption(for m: Manifest) throws -> AgeDecryption? {
        guard let e = m.encryption, let identity = ageIdentity else { return nil }
        return AgeDecryption(tool: try AgeTool.locate(environment: environment), identity: identity, recipients: e.recipients,
                             environment: childEnvironment)
    }

    /// For an encrypted snapshot that is about to be loaded: the identity is required.
    ///
    /// - Throws: a usage error naming the recipients that can decrypt it.
    public func requireAgeDecryption(for m: Manifest) throws -> AgeDecryption? {
        guard let e = m.encryption else { return nil }
        guard let d = try ageDecryption(for: m) else {
            throw PGSnapError.usage("snapshot \(m.id) is encrypted with age; only the identity of one of its recipients can read it (\(e.recipientList))",
                                    next: "Pass --identity FILE (or set PGSNAP_AGE_IDENTITY)")
        }
        return d
    }
}

extension AgeTool {
    /// A small file (roles and tablespaces) encrypted whole to `recipients`.
    ///
    /// - Throws: `PGSnapError` when age fails.
    public func encrypt(_ bytes: [UInt8], to recipients: [AgeRecipient], environment: [String: String]) throws -> [UInt8] {
        let out = CollectingSink()
        let encryptor = try AgeEncryptor(tool: self, recipients: recipients, environment: environment, sink: out)
        do {
            try bytes.withUnsafeBytes { try encryptor.write($0) }
            try encryptor.finish()
        } catch {
            encryptor.abort()
            throw error
        }
        return out.bytes
    }
}

/// Output kept in memory: only for files known to be small.
final class CollectingSink: ByteSink {
    private(set) var bytes: [UInt8] = []
    func write(_ data: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: data) }
}
