import Foundation
import PGSnapCore

/// Hands a password to libpq and to children without argv or PGPASSWORD: a 0600 passfile in a
/// 0700 private directory, removed when pgsnap is done.
public final class Credentials {
    public let spec: ConnectionSpec
    /// Path of the passfile, when a password is known.
    public let passfile: String?
    private let directory: String?

    /// - Parameter environment: pgsnap's environment; `PGPASSWORD` there is moved into the passfile.
    public init(spec: ConnectionSpec, environment: [String: String]) throws {
        self.spec = spec
        let password = (spec.password ?? environment["PGPASSWORD"]).flatMap { $0.isEmpty ? nil : $0 }
        // sslpassword reaches children through a service file of pgsnap's; a connection that
        // names its own service cannot take a second one (libpq reads one), and the only other
        // way is the children's command lines, which anyone on the machine can read.
        if spec["service"] != nil, spec.sslPassword != nil {
            throw PGSnapError.usage("the connection names a service and gives sslpassword: pgsnap passes sslpassword to pg_dump and psql in a service file of its own, and libpq reads only one",
                                    next: "Put sslpassword in that service's entry of your pg_service.conf, or connect without service=")
        }
        let sslPassword = spec.sslPassword
        let base = environment["XDG_RUNTIME_DIR"].flatMap { access($0, W_OK) == 0 ? $0 : nil } ?? NSTemporaryDirectory()
        Self.removeOrphans(in: base)
        guard password != nil || sslPassword != nil else {
            passfile = nil
            serviceFile = nil
            directory = nil
            return
        }
        // Host and pid in the name let a later run tell a killed run's files from a live one's.
        let dir = try SnapshotDirectory.makePrivateDirectory(prefix: "pgsnap", in: base, for: "the password file")
        directory = dir
        func privateFile(_ name: String, _ text: String) throws -> String {
            let path = dir + "/" + name
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw PGSnapError("cannot create a temporary \(name) file in \(dir)") }
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            return path
        }
        passfile = try password.map { p in
            try privateFile("pgpass", "*:*:*:*:" + p.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ":", with: "\\:") + "\n")
        }
        serviceFile = try sslPassword.map { try privateFile("pg_service.conf", "[\(Self.service)]\nsslpassword=\($0)\n") }
    }

    deinit { cleanup() }

    /// The private directories of runs that were killed (kill -9 runs no cleanup): ours by owner
    /// and host, their pid gone. They hold a password. Also those named before the host was
    /// (`pgsnap-<pid>-XXXXXX`), by pid alone.
    static func removeOrphans(in base: String) {
        SnapshotDirectory.removeOrphanedTemporaries(prefix: "pgsnap", in: base)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix("pgsnap-") {
            let parts = name.split(separator: "-")
            let dir = base + "/" + name
            guard parts.count == 3, parts[2].count == 6, let pid = Int32(parts[1]), SnapshotDirectory.isOrphanedPrivateDirectory(dir, pid: pid)
            else { continue }
            for file in ["pgpass", "pg_service.conf"] { unlink(dir + "/" + file) }
            rmdir(dir)
        }
    }

    public func cleanup() {
        if let passfile { unlink(passfile) }
        if let serviceFile { unlink(serviceFile) }
        if let directory { rmdir(directory) }
    }

    /// The service file holding sslpassword for children, when there is one.
    public let serviceFile: String?
    /// Its one service, which children's connection strings name.
    static let service = "pgsnap"

    /// A child's connection string: the spec's (no password, no sslpassword), plus the service
    /// that holds sslpassword.
    public func childConninfo(_ spec: ConnectionSpec) -> String {
        var s = spec.conninfo()
        if serviceFile != nil { s += " service=" + Self.service }
        return s
    }

    /// The child's environment: ours, without PGPASSWORD, with the passfile.
    public func childEnvironment(_ environment: [String: String]) -> [String: String] {
        var env = environment
        env["PGPASSWORD"] = nil
        // pgsnap reads it (a default connection, password and all); pg_dump, psql and age do not.
        env["DATABASE_URL"] = nil
        // pgsnap talks to the bucket itself: pg_dump, psql, pg_restore and age never need the S3 secret.
        for key in Self.s3Secrets { env[key] = nil }
        // Notification URLs carry tokens; no child needs them.
        for key in env.keys where NotifyTarget.isTargetVariable(key) { env[key] = nil }
        if let passfile { env["PGPASSFILE"] = passfile }
        if let serviceFile { env["PGSERVICEFILE"] = serviceFile }
        return env
    }

    public var password: String? { spec.password }

    static let s3Secrets = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
}
