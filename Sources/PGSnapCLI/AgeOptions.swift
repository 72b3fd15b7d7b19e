import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// `backup`'s encryption to public keys: the machine taking backups never holds the key that reads them.
struct EncryptionOptions: ParsableArguments {
    @Option(name: .customLong("encrypt-to"),
            help: ArgumentHelp("Encrypt with age to this public key (age1..., or an SSH public key line); repeatable: any one matching identity decrypts. Default: PGSNAP_AGE_RECIPIENTS (separated by commas or newlines).",
                               valueName: "recipient"))
    var encryptTo: [String] = []

    @Option(name: .customLong("encrypt-to-file"),
            help: ArgumentHelp("Encrypt to every public key in this age recipients file (one per line, # comments); repeatable.", valueName: "file"))
    var encryptToFiles: [String] = []

    /// The recipients, each once, in the order given; empty: not encrypted.
    ///
    /// - Throws: a usage error for a malformed `--encrypt-to` key (the command line); exit 1 for
    ///   what the machine holds (a recipients file missing, unreadable, empty or malformed, or
    ///   PGSNAP_AGE_RECIPIENTS): called inside the run, so the nightly job's notification says so.
    func recipients(_ env: [String: String]) throws -> [AgeRecipient] {
        var all: [AgeRecipient] = []
        /// A problem with the machine's configuration: a failed run, not a usage error.
        func configured<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as PGSnapError where e.status == .usage { throw PGSnapError(e.what, next: e.next) }
        }
        if encryptTo.isEmpty && encryptToFiles.isEmpty, let list = env["PGSNAP_AGE_RECIPIENTS"], !list.isEmpty {
            all = try configured { try AgeRecipient.parseList(list, source: "PGSNAP_AGE_RECIPIENTS") }
            if all.isEmpty { throw PGSnapError("PGSNAP_AGE_RECIPIENTS holds no recipient", next: "Unset it, or give age1... public keys; nothing was backed up") }
        }
        all += try encryptTo.map(AgeRecipient.parse)
        for file in encryptToFiles {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw PGSnapError("cannot read recipients file \(file)", next: "Check --encrypt-to-file; nothing was backed up")
            }
            let found = try configured { try AgeRecipient.parseFile(String(decoding: data, as: UTF8.self), source: file) }
            if found.isEmpty { throw PGSnapError("recipients file \(file) holds no recipient", next: "Add age1... public keys, one per line; nothing was backed up") }
            all += found
        }
        var seen = Set<AgeRecipient>()
        return all.filter { seen.insert($0).inserted }
    }

    /// The command line only: a malformed key is a usage error before anything runs.
    func validate() throws {
        do { _ = try encryptTo.map(AgeRecipient.parse) } catch let e as PGSnapError { throw ValidationError(e.description) }
        if encryptToFiles.contains(where: { $0.isEmpty || $0.contains("\0") }) { throw ValidationError("--encrypt-to-file must be a file path") }
    }
}

/// The key that reads encrypted snapshots, taken alike by every command that reads one: verify,
/// restore, diff, show, pull, preflight and guard. Loaded first thing in `run()`, so a missing or
/// loose key file is refused before anything is read; each command then proves the key on the
/// snapshot it reads (`Session.proveIdentity`) before going further.
struct IdentityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("age identity file that decrypts encrypted snapshots (default: PGSNAP_AGE_IDENTITY); must be readable by its owner only.",
                               valueName: "file"))
    var identity: String?

    /// - Throws: exit 1 when the file is missing or unreadable, a usage error when others can read it.
    func load(_ env: [String: String]) throws -> AgeIdentity? {
        guard let path = identity ?? env["PGSNAP_AGE_IDENTITY"].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        return try AgeIdentity(path: path)
    }

    func validate() throws {
        if let identity, identity.isEmpty || identity.contains("\0") { throw ValidationError("--identity must be a file path") }
    }
}
