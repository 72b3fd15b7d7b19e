import Crypto
import Foundation

/// AWS credentials as SigV4 needs them. `description` never shows the secret.
public struct AWSCredentials: Equatable, Sendable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "AWSCredentials(\(accessKeyID), secret hidden)" }
}

/// One HTTP request as the signer sees it: the URI path already percent-encoded once (S3 does
/// not encode it again), the query as decoded pairs, and the headers to sign.
public struct SigV4Request: Equatable, Sendable {
    public var method: String
    /// e.g. `/bucket/key%3Aname`; `/` for the service root.
    public var encodedPath: String
    public var query: [(String, String)]
    public var headers: [(String, String)]
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    public var payloadHash: String

    public init(method: String, encodedPath: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String) {
        self.method = method
        self.encodedPath = encodedPath
        self.query = query
        self.headers = headers
        self.payloadHash = payloadHash
    }

    public static func == (a: SigV4Request, b: SigV4Request) -> Bool {
        a.method == b.method && a.encodedPath == b.encodedPath && a.payloadHash == b.payloadHash
            && a.query.elementsEqual(b.query, by: ==) && a.headers.elementsEqual(b.headers, by: ==)
    }
}

/// AWS Signature Version 4 for S3 (header form). Pure: same inputs, same signature; the caller
/// supplies the time, so tests pin it and compare with botocore's signer.
public struct SigV4Signer: Sendable {
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    public var region: String
    public var service: String

    public init(region: String, service: String = "s3") {
        self.region = region
        self.service = service
    }

    /// The headers to add to `request`: `x-amz-date`, `x-amz-content-sha256`, the session token
    /// when there is one, and `Authorization`. The request's own headers must already hold `host`.
    public func sign(_ request: SigV4Request, credentials: AWSCredentials, date: Date) -> [(String, String)] {
        let stamp = SigV4Signer.amzDate(date)
        var added: [(String, String)] = [("x-amz-date", stamp), ("x-amz-content-sha256", request.payloadHash)]
        if let token = credentials.sessionToken, !token.isEmpty { added.append(("x-amz-security-token", token)) }
        var full = request
        full.headers += added
        let canonical = canonicalRequest(full)
        let scope = credentialScope(stamp)
        let toSign = stringToSign(canonicalRequest: canonical, amzDate: stamp)
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: signingKey(secret: credentials.secretAccessKey, day: String(stamp.prefix(8)))))
        let auth = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders(full)), Signature=\(signature)"
        return added + [("Authorization", auth)]
    }

    public func canonicalRequest(_ r: SigV4Request) -> String {
        [r.method.uppercased(), r.encodedPath.isEmpty ? "/" : r.encodedPath, canonicalQuery(r.query),
         canonicalHeaders(r.headers), signedHeaders(r), r.payloadHash].joined(separator: "\n")
    }

    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        let hash = hex(SHA256.hash(data: Data(canonicalRequest.utf8)))
        return ["AWS4-HMAC-SHA256", amzDate, credentialScope(amzDate), hash].joined(separator: "\n")
    }

    func credentialScope(_ amzDate: String) -> String { "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request" }

    func signingKey(secret: String, day: String) -> SymmetricKey {
        var key = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    /// Pairs encoded (RFC 3986 unreserved characters kept, `/` encoded too) and sorted by key, then value.
    public func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (SigV4Signer.uriEncode($0.0, keepSlash: false), SigV4Signer.uriEncode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Lower-cased names, values trimmed with inner runs of spaces folded, sorted, one per line, a blank line after.
    func canonicalHeaders(_ headers: [(String, String)]) -> String {
        var byName: [String: [String]] = [:]
        for (k, v) in headers {
            let folded = v.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            byName[k.lowercased(), default: []].append(folded.trimmingCharacters(in: .whitespaces))
        }
        return byName.keys.sorted().map { "\($0):\(byName[$0]!.joined(separator: ","))\n" }.joined()
    }

    func signedHeaders(_ r: SigV4Request) -> String {
        Set(r.headers.map { $0.0.lowercased() }).sorted().joined(separator: ";")
    }

    /// `20130524T000000Z`.
    public static func amzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }

    /// Percent-encodes every byte outside `A-Za-z0-9-._~` (and `/` when `keepSlash`), upper-case hex, as AWS requires.
    public static func uriEncode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            let c = Unicode.Scalar(b)
            if (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || c == "-" || c == "." || c == "_" || c == "~"
                || (keepSlash && c == "/") {
                out.unicodeScalars.append(c)
            } else {
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }
}

/// Hex and base64 digests S3 requests need.
public enum S3Digest {
    public static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String { hex(SHA256.hash(data: bytes)) }
    public static func sha256Hex(_ data: Data) -> String { hex(SHA256.hash(data: data)) }
    public static func md5Base64(_ bytes: UnsafeRawBufferPointer) -> String { Data(Insecure.MD5.hash(data: bytes)).base64EncodedString() }
    /// One MD5 pass, both spellings: `Content-MD5` (base64) and the ETag S3 answers with (hex).
    public static func md5(_ bytes: UnsafeRawBufferPointer) -> (base64: String, hex: String) {
        let digest = Insecure.MD5.hash(data: bytes)
        return (Data(digest).base64EncodedString(), hex(digest))
    }
}

func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
