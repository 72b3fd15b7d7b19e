import Foundation

/// Where a notification goes, parsed from `--notify URL` or one word of `PGSNAP_NOTIFY`.
///
/// - `https://...` / `http://...`: a healthchecks.io-style ping URL (`/start`, success, `/fail`).
/// - `json+https://...` / `json+http://...`: a webhook that receives the JSON document.
/// - `slack+https://...` / `slack+http://...`: a Slack-compatible `{"text": ...}` webhook.
///
/// The URL carries a token (a check's UUID, a webhook's secret path), so only `redacted` is
/// ever shown: scheme, host and port.
public struct NotifyTarget: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case ping
        case json
        case slack
    }

    public var kind: Kind
    /// The http(s) URL requests go to (the `json+` / `slack+` prefix removed).
    public var url: URL

    /// - Parameter source: how to name the value in an error (`--notify value 2`), never the value itself.
    /// - Throws: `PGSnapError` (usage) naming what is wrong without echoing the token.
    public init(parsing text: String, source: String) throws {
        func bad(_ why: String) -> PGSnapError {
            PGSnapError.usage("\(source) \(why)",
                              next: "Use a URL like https://hc-ping.com/<uuid>, json+https://HOST/PATH or slack+https://hooks.slack.com/services/...")
        }
        guard !text.isEmpty, text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f }) else {
            throw bad("is empty or holds spaces or control characters")
        }
        guard let sep = text.range(of: "://") else { throw bad("is not a URL (no scheme://)") }
        let scheme = text[..<sep.lowerBound].lowercased()
        let kind: Kind
        let httpScheme: String
        switch scheme {
        case "http", "https": (kind, httpScheme) = (.ping, scheme)
        case "json+http", "json+https": (kind, httpScheme) = (.json, String(scheme.dropFirst(5)))
        case "slack+http", "slack+https": (kind, httpScheme) = (.slack, String(scheme.dropFirst(6)))
        default:
            // Never echoed: what comes before the first "://" may be the token itself
            // ("hc-ping.com/<uuid>?u=https://...", or a token pasted in front).
            throw bad("does not start with a scheme pgsnap knows: http(s)://, json+http(s):// or slack+http(s)://")
        }
        let rest = text[sep.upperBound...]
        guard let url = URL(string: httpScheme + "://" + rest),
              let c = URLComponents(url: url, resolvingAgainstBaseURL: false), let host = c.host, !host.isEmpty else {
            throw bad("is not a valid \(scheme) URL")
        }
        if c.user != nil || c.password != nil { throw bad("holds user:password@, which pgsnap does not send; put the token in the path") }
        if c.fragment != nil { throw bad("holds a #fragment") }
        if let port = c.port, !(1...65535).contains(port) { throw bad("has an impossible port") }
        self.kind = kind
        self.url = url
    }

    /// The variable that holds one command's own targets: `PGSNAP_BACKUP_NOTIFY` for backup.
    public static func commandVariable(_ command: String) -> String {
        "PGSNAP_\(command.uppercased())_NOTIFY"
    }

    /// `PGSNAP_NOTIFY` and every command's own `PGSNAP_<COMMAND>_NOTIFY`: the variables that hold
    /// URLs with tokens, which no child and no service sees.
    public static func isTargetVariable(_ name: String) -> Bool {
        name == "PGSNAP_NOTIFY" || (name.hasPrefix("PGSNAP_") && name.hasSuffix("_NOTIFY"))
    }

    /// Every target of a run: the `--notify` values, then the words of the command's own variable
    /// (`PGSNAP_BACKUP_NOTIFY`, ...), then those of `PGSNAP_NOTIFY`, each URL once.
    ///
    /// Added, not overridden: a systemd env file sets the chat webhook for every job in
    /// `PGSNAP_NOTIFY` and one job's ping URL in that job's variable (never in its options, which
    /// are pgsnap's argv and visible in `ps`).
    ///
    /// - Parameters:
    ///   - command: whose own variable to read; nil for none.
    ///   - skipping: given a word of a variable that is not a target, instead of throwing: a typo
    ///     in the environment file of a nightly job must not stop its backups (nor the other
    ///     targets hearing of them). `--notify` values are checked as every option is.
    /// - Throws: `PGSnapError` (usage) for the first value that is not a target.
    public static func parseAll(options: [String], environment: [String: String], command: String? = nil,
                                skipping: ((PGSnapError) -> Void)? = nil) throws -> [NotifyTarget] {
        func words(_ name: String) throws -> [NotifyTarget] {
            try (environment[name] ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
                .enumerated().compactMap { i, word in
                    do {
                        return try NotifyTarget(parsing: String(word), source: "\(name) word \(i + 1)")
                    } catch let e as PGSnapError where skipping != nil {
                        skipping?(e)
                        return nil
                    }
                }
        }
        let all = try options.enumerated().map { try NotifyTarget(parsing: $1, source: "--notify value \($0 + 1)") }
            + (command.map { try words(commandVariable($0)) } ?? []) + words("PGSNAP_NOTIFY")
        var seen = Set<NotifyTarget>()
        return all.filter { seen.insert($0).inserted }
    }

    /// `https://hc-ping.com/…`: what a message may show; path and query hold the token.
    public var redacted: String {
        let prefix = kind == .ping ? "" : kind.rawValue + "+"
        let c = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let port = c?.port.map { ":\($0)" } ?? ""
        return "\(prefix)\(url.scheme ?? "?")://\(c?.host ?? "?")\(port)/…"
    }

    /// The ping URL with `/start` or `/fail` after its path (a query, as in `?create=1`, stays last).
    public func url(appendingPath suffix: String) -> URL {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url }
        var path = c.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        c.percentEncodedPath = path + "/" + suffix
        return c.url ?? url
    }
}

/// `--notify-on`: which results reach a target.
public enum NotifyOn: String, CaseIterable, Sendable {
    /// Only failures (pings then get no start and no success either).
    case failure
    /// Successes and failures, chat webhooks included.
    case always
}
