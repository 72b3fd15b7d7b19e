import Foundation
import PGSnapCore
import Synchronization

/// Finds pg_dump, psql, pg_restore and pg_dumpall for a server, and knows their versions.
///
/// Process does not search PATH: the places and their order are `ToolSearch`'s; this only lists
/// the installed majors, runs `--version` and names every place looked when nothing fits.
public struct PostgresTools {
    public var environment: [String: String]
    /// `--pg-bindir` / `PGSNAP_PG_BINDIR`, and which of the two gave it.
    public var explicit: (directory: String, source: String)?

    public struct Located: Sendable {
        public var path: String
        public var version: String
        public var major: Int
        /// Why this directory: "PATH", "--pg-bindir", "the Debian/PGDG layout for the server's major 17", ...
        public var reason: String
        public var directory: String { (path as NSString).deletingLastPathComponent }
    }

    public init(environment: [String: String], explicit: (directory: String, source: String)? = nil) {
        self.environment = environment
        self.explicit = explicit ?? environment["PGSNAP_PG_BINDIR"].flatMap { $0.isEmpty ? nil : ($0, "PGSNAP_PG_BINDIR") }
    }

    public func search(serverMajor: Int?) -> ToolSearch {
        let installed = ToolSearch.majors(inLayout: (try? FileManager.default.contentsOfDirectory(atPath: ToolSearch.layoutRoot)) ?? [])
        return ToolSearch(explicit: explicit, serverMajor: serverMajor, installedMajors: installed, path: environment["PATH"])
    }

    /// The executable `name` whose major is at least `serverMajor`, from the first place that has one.
    ///
    /// - Throws: `PGSnapError` naming where it looked, or that only older versions exist (with the package to install).
    public func locate(_ name: String, serverMajor: Int? = nil) throws -> Located {
        let places = search(serverMajor: serverMajor).places
        var older: [(String, String)] = []
        var seen = Set<String>()
        for place in places {
            let path = place.directory + "/" + name
            guard access(path, X_OK) == 0 else { continue }
            let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? path
            if !seen.insert(real).inserted { continue }
            guard let (version, major) = try? version(of: path, name: name) else { continue }
            if let serverMajor, major < serverMajor {
                older.append((path, version))
                continue
            }
            return Located(path: path, version: version, major: major, reason: place.reason)
        }
        if let serverMajor, let (path, version) = older.first {
            throw ToolSearch.tooOld(name, version: version, path: path, serverMajor: serverMajor)
        }
        if let explicit {
            throw PGSnapError("\(name) not found in \(explicit.directory) (\(explicit.source))",
                              next: "Point \(explicit.source) at the bin directory of the PostgreSQL\(serverMajor.map { " \($0)" } ?? "") client tools")
        }
        throw PGSnapError("\(name) not found (looked in \(places.map(\.directory).joined(separator: ":")))",
                          next: "Install the PostgreSQL client tools (apt-get install postgresql-client\(serverMajor.map { "-\($0)" } ?? "")), add them to PATH or pass --pg-bindir")
    }

    func version(of path: String, name: String) throws -> (String, Int) {
        if let known = Self.versions.withLock({ $0[path] }) { return known }
        let (t, out, _) = try ChildProcess.capture(ExternalCommand(name: name, executable: path, arguments: ["--version"], environment: environment))
        guard t.succeeded else { throw PGSnapError("\(path) --version failed") }
        // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let words = out.split(separator: " ")
        guard let v = words.first(where: { $0.first?.isNumber == true }) else { throw PGSnapError("cannot read \(name) version") }
        let version = String(v.trimmingCharacters(in: .whitespacesAndNewlines))
        let found = (version, Int(version.split(separator: ".").first ?? "") ?? 0)
        Self.versions.withLock { $0[path] = found }
        return found
    }

    /// Each executable's version, asked once per run: a directory restore locates pg_restore for
    /// every step, and each `--version` is a process start on the way to the load.
    private static let versions = Mutex<[String: (String, Int)]>([:])
}
