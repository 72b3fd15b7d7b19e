import Foundation

/// How to reach and sign for S3, from the usual AWS environment variables and shared
/// credentials file, so nobody learns new conventions. The secret is never printed.
public struct S3Settings: Equatable, Sendable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public var region: String
    /// A custom endpoint (MinIO, R2, moto...): addressed path-style. nil: AWS itself.
    public var endpoint: URL?
    /// Where the credentials came from, for messages: "environment" or "profile default in ~/.aws/credentials".
    public var credentialSource: String

    public var description: String { "S3Settings(\(accessKeyID), \(region), \(endpoint?.absoluteString ?? "aws"), \(credentialSource))" }

    /// - Parameter readFile: reads the shared credentials file; nil when it does not exist.
    /// - Throws: `PGSnapError` when no credentials are found or the endpoint is not a URL.
    public static func resolve(environment env: [String: String], readFile: (String) -> String?) throws -> S3Settings {
        func value(_ k: String) -> String? { env[k].flatMap { $0.isEmpty ? nil : $0 } }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        var endpoint: URL?
        if let text = value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL") {
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil,
                  url.user == nil, url.password == nil
            else {
                throw PGSnapError("the S3 endpoint '\(oneLine(text, limit: 120))' is not an http(s) URL",
                                  next: "Set AWS_ENDPOINT_URL_S3 to e.g. http://127.0.0.1:9000")
            }
            endpoint = url
        }
        if let key = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") {
            return S3Settings(accessKeyID: key, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"), region: region,
                              endpoint: endpoint, credentialSource: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        }
        // Foundation expands `~` from the passwd entry, not HOME: follow HOME as every AWS tool does.
        let path = value("AWS_SHARED_CREDENTIALS_FILE") ?? ((value("HOME") ?? "") + "/.aws/credentials")
        let profile = value("AWS_PROFILE") ?? "default"
        guard let text = readFile(path) else {
            throw PGSnapError("no S3 credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set and \(path) does not exist",
                              next: "Set them, or write profile [\(profile)] in \(path)")
        }
        let profiles = parseCredentialsFile(text)
        guard let p = profiles[profile], let key = p["aws_access_key_id"], let secret = p["aws_secret_access_key"], !key.isEmpty, !secret.isEmpty
        else {
            throw PGSnapError("no S3 credentials for profile [\(oneLine(profile, limit: 80))] in \(path)",
                              next: "Add aws_access_key_id and aws_secret_access_key under [\(oneLine(profile, limit: 80))], or set AWS_PROFILE")
        }
        return S3Settings(accessKeyID: key, secretAccessKey: secret, sessionToken: p["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 },
                          region: region, endpoint: endpoint, credentialSource: "profile \(profile) in \(path)")
    }

    /// The INI of `~/.aws/credentials`: `[name]` sections of `key = value`; `#` and `;` start comments.
    public static func parseCredentialsFile(_ text: String) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        var section: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                // ~/.aws/config spells them "[profile x]"; accept that here too.
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
                section = name
                out[name, default: [:]] = out[name] ?? [:]
                continue
            }
            guard let section, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            out[section]![key] = value
        }
        return out
    }
}
