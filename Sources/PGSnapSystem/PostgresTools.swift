import Foundation
import PGSnapCore

/// Finds pg_dump, psql and pg_dumpall and knows their versions.
///
/// Process does not search PATH: look in PATH, then in /usr/lib/postgresql/<major>/bin (newest
/// first), and name every place looked when a tool is missing.
public struct PostgresTools {
    public var environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    public func searchPath(preferMajor: Int? = nil) -> [String] {
        var dirs: [String] = []
        if let preferMajor { dirs.append("/usr/lib/postgresql/\(preferMajor)/bin") }
        dirs += (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        let versioned = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
        for d in versioned where !dirs.contains(d) { dirs.append(d) }
        return dirs
    }

    /// The executable `name`, preferring one whose major version is at least `serverMajor`.
    ///
    /// - Throws: `PGSnapError` naming where it looked, or that only older versions exist.
    public func locate(_ name: String, serverMajor: Int? = nil) throws -> (path: String, version: String, major: Int) {
        var older: [(String, String)] = []
        var seen = Set<String>()
        for dir in searchPath(preferMajor: serverMajor) where !dir.isEmpty {
            let path = dir + "/" + name
            guard access(path, X_OK) == 0 else { continue }
            let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? path
            if !seen.insert(real).inserted { continue }
            guard let (version, major) = try? version(of: path, name: name) else { continue }
            if let serverMajor, major < serverMajor {
                older.append((path, version))
                continue
            }
            return (path, version, major)
        }
        if let serverMajor, let (path, version) = older.first {
            throw PGSnapError("\(name) \(version) at \(path) is older than the server (major \(serverMajor)); it cannot dump or restore it reliably",
                              next: "Install postgresql-client-\(serverMajor) and put its bin directory first in PATH")
        }
        throw PGSnapError("\(name) not found (looked in \(searchPath(preferMajor: serverMajor).filter { !$0.isEmpty }.joined(separator: ":")))",
                          next: "Install the PostgreSQL client tools (apt-get install postgresql-client) or add them to PATH")
    }

    func version(of path: String, name: String) throws -> (String, Int) {
        let (t, out, _) = try ChildProcess.capture(ExternalCommand(name: name, executable: path, arguments: ["--version"], environment: environment))
        guard t.succeeded else { throw PGSnapError("\(path) --version failed") }
        // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let words = out.split(separator: " ")
        guard let v = words.first(where: { $0.first?.isNumber == true }) else { throw PGSnapError("cannot read \(name) version") }
        let version = String(v.trimmingCharacters(in: .whitespacesAndNewlines))
        return (version, Int(version.split(separator: ".").first ?? "") ?? 0)
    }
}
