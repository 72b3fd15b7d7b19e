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
        guard let password = spec.password ?? environment["PGPASSWORD"], !password.isEmpty else {
            passfile = nil
            directory = nil
            return
        }
        let base = environment["XDG_RUNTIME_DIR"].flatMap { access($0, W_OK) == 0 ? $0 : nil } ?? NSTemporaryDirectory()
        var template = Array((base + "/pgsnap-XXXXXX").utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw PGSnapError("cannot create a private temporary directory in \(base)")
        }
        directory = dir
        let path = dir + "/pgpass"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PGSnapError("cannot create a temporary passfile in \(dir)") }
        let escaped = password.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ":", with: "\\:")
        let line = Array("*:*:*:*:\(escaped)\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        passfile = path
    }

    deinit { cleanup() }

    public func cleanup() {
        if let passfile { unlink(passfile) }
        if let directory { rmdir(directory) }
    }

    /// The child's environment: ours, without PGPASSWORD, with the passfile.
    public func childEnvironment(_ environment: [String: String]) -> [String: String] {
        var env = environment
        env["PGPASSWORD"] = nil
        // pgsnap talks to the bucket itself: pg_dump, psql, pg_restore and age never need the S3 secret.
        for key in Self.s3Secrets { env[key] = nil }
        // Notification URLs carry tokens; no child needs them.
        for key in env.keys where NotifyTarget.isTargetVariable(key) { env[key] = nil }
        if let passfile { env["PGPASSFILE"] = passfile }
        return env
    }

    public var password: String? { spec.password }

    static let s3Secrets = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
}
