/// Where pgsnap looks for pg_dump, psql, pg_restore and pg_dumpall, in order, with the reason
/// for each place: pure, so the order is a table test and `preflight` can say why.
///
/// 1. `--pg-bindir DIR` / `PGSNAP_PG_BINDIR`: that directory only.
/// 2. The Debian/PGDG layout for the server's major, `/usr/lib/postgresql/<major>/bin`.
/// 3. Newer majors in that layout, newest first (pg_dump reads older servers).
/// 4. `PATH`.
/// 5. Older majors in the layout last: never used, but named when nothing new enough exists.
public struct ToolSearch: Sendable {
    public struct Place: Equatable, Sendable {
        public var directory: String
        public var reason: String
        public init(directory: String, reason: String) {
            self.directory = directory
            self.reason = reason
        }
    }

    public static let layoutRoot = "/usr/lib/postgresql"

    /// The directory given by option or environment, and which of the two gave it.
    public var explicit: (directory: String, source: String)?
    public var serverMajor: Int?
    /// Majors with a `<layoutRoot>/<major>/bin` directory.
    public var installedMajors: [Int]
    public var path: String?

    public init(explicit: (directory: String, source: String)?, serverMajor: Int?, installedMajors: [Int], path: String?) {
        self.explicit = explicit
        self.serverMajor = serverMajor
        self.installedMajors = installedMajors
        self.path = path
    }

    public var places: [Place] {
        if let explicit { return [Place(directory: explicit.directory, reason: explicit.source)] }
        var places: [Place] = []
        func add(_ dir: String, _ reason: String) {
            if !dir.isEmpty, !places.contains(where: { $0.directory == dir }) { places.append(Place(directory: dir, reason: reason)) }
        }
        let newestFirst = installedMajors.sorted(by: >)
        if let serverMajor {
            if installedMajors.contains(serverMajor) {
                add(Self.layoutDirectory(serverMajor), "the Debian/PGDG layout for the server's major \(serverMajor)")
            }
            for m in newestFirst where m > serverMajor { add(Self.layoutDirectory(m), "the newest installed tools new enough for the server (\(m))") }
        } else {
            for m in newestFirst { add(Self.layoutDirectory(m), "the newest installed tools (\(m))") }
        }
        for dir in (path ?? "/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: true) { add(String(dir), "PATH") }
        if let serverMajor {
            for m in newestFirst where m < serverMajor { add(Self.layoutDirectory(m), "installed, but older than the server") }
        }
        return places
    }

    public static func layoutDirectory(_ major: Int) -> String { "\(layoutRoot)/\(major)/bin" }

    /// The majors a layout listing holds: names that are numbers.
    public static func majors(inLayout names: [String]) -> [Int] {
        names.compactMap { Int($0) }.filter { $0 > 0 }.sorted()
    }

    /// The one-line refusal when only older tools exist: names both majors and what to install.
    public static func tooOld(_ name: String, version: String, path: String, serverMajor: Int) -> PGSnapError {
        PGSnapError("\(name) \(version) at \(path) is older than the server (PostgreSQL \(serverMajor)); \(name) must be at least the server's major",
                    next: "Install postgresql-client-\(serverMajor) (the PGDG apt repository has every major) or pass --pg-bindir with PostgreSQL \(serverMajor) tools")
    }
}
