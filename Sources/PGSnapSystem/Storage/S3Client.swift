import Foundation
import PGSnapCore
import PGSnapSigV4

/// The handful of S3 calls pgsnap makes, signed with SigV4, retried with bounded backoff on
/// transient trouble, and turned into one-line `PGSnapError`s that never hold a secret.
final class S3Client: @unchecked Sendable {
    let settings: S3Settings
    let location: RemoteLocation
    let signer: SigV4Signer
    let credentials: AWSCredentials
    let transport: HTTPTransport
    /// `scheme://host[:port]` (custom endpoints) or the bucket host (AWS).
    let base: String
    /// A custom endpoint's own path (`http://gw/s3` -> `/s3`), before the bucket; usually empty.
    let basePath: String
    let hostHeader: String
    /// Path-style `/bucket/key` (custom endpoints, dotted buckets) or virtual-host `/key`.
    let pathStyle: Bool
    let attempts: Int
    let firstDelay: Double

    /// For messages: the endpoint, never a credential.
    var endpointText: String { base + basePath }

    init(settings: S3Settings, location: RemoteLocation, environment: [String: String]) {
        self.settings = settings
        self.location = location
        signer = SigV4Signer(region: settings.region)
        credentials = AWSCredentials(accessKeyID: settings.accessKeyID, secretAccessKey: settings.secretAccessKey,
                                     sessionToken: settings.sessionToken)
        // Bounded: a dead endpoint costs seconds, not a cron job's whole night.
        attempts = environment["PGSNAP_S3_ATTEMPTS"].flatMap(Int.init).map { max(1, min($0, 10)) } ?? 5
        firstDelay = 0.25
        let timeout = environment["PGSNAP_S3_TIMEOUT"].flatMap(Double.init).map { max(1, min($0, 3600)) } ?? 120
        let plain = settings.endpoint.map { $0.scheme?.lowercased() == "http" } ?? false
        if plain, environment["PGSNAP_S3_TRANSPORT"] != "urlsession", let e = settings.endpoint, let host = e.host {
            transport = SocketHTTPTransport(host: host, port: UInt16(e.port ?? 80), timeout: timeout)
        } else {
            transport = URLSessionTransport(timeout: timeout)
        }
        if let endpoint = settings.endpoint {
            var b = "\(endpoint.scheme!.lowercased())://\(endpoint.host!)"
            var host = endpoint.host!
            if let port = endpoint.port {
                b += ":\(port)"
                host += ":\(port)"
            }
            let path = endpoint.path.hasSuffix("/") ? String(endpoint.path.dropLast()) : endpoint.path
            base = b
            basePath = path.split(separator: "/").map { SigV4Signer.uriEncode(String($0), keepSlash: false) }.map { "/" + $0 }.joined()
            hostHeader = host
            pathStyle = true
        } else if location.bucket.contains(".") {
            // A dotted bucket breaks the wildcard TLS certificate of virtual-host style.
            hostHeader = "s3.\(settings.region).amazonaws.com"
            base = "https://" + hostHeader
            basePath = ""
            pathStyle = true
        } else {
            hostHeader = "\(location.bucket).s3.\(settings.region).amazonaws.com"
            base = "https://" + hostHeader
            basePath = ""
            pathStyle = false
        }
    }

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Sends one signed request; retries transient failures; returns any response the caller
    /// must judge (2xx, and the statuses in `accept`), throws for the rest.
    ///
    /// - Parameter key: the object key, nil for bucket-level calls.
    func request(_ method: String, key: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
                 body: Data? = nil, accept: Set<Int> = [], evenWhenInterrupted: Bool = false, what: String) throws -> Response {
        var path = basePath + (pathStyle ? "/" + SigV4Signer.uriEncode(location.bucket, keepSlash: false) : "")
        if let key { path += "/" + SigV4Signer.uriEncode(key, keepSlash: true) }
        if path.isEmpty { path = "/" }
        let queryText = signer.canonicalQuery(query)
        // The request target is sent exactly as signed: no URL type re-encodes it on the way.
        let target = path + (queryText.isEmpty ? "" : "?" + queryText)
        guard let url = URL(string: base + target) else {
            throw PGSnapError("cannot build an S3 URL for \(what)", next: "Check AWS_ENDPOINT_URL_S3")
        }
        let payloadHash = (body ?? Data()).withUnsafeBytes { S3Digest.sha256Hex($0) }
        var delay = firstDelay
        var lastCause = ""
        for attempt in 1...attempts {
            if SignalTrap.received != nil && !evenWhenInterrupted { throw PGSnapError(.interrupted, "interrupted during \(what)") }
            var headers: [(String, String)] = [("host", hostHeader)] + extra
            headers += signer.sign(SigV4Request(method: method, encodedPath: path, query: query, headers: headers, payloadHash: payloadHash),
                                   credentials: credentials, date: Date())
            // URLSession sets Host itself from the URL (the same value, it is signed above).
            // identity: curl offers gzip by default, and a store that honoured it would hand back
            // a .sql.gz decompressed, which no size or SHA-256 check would then match.
            let sent = headers.filter { $0.0 != "host" } + [("Accept-Encoding", "identity")]
            switch transport.send(method: method, url: url, target: target, headers: sent, body: body) {
            case .failure(let f):
                lastCause = f.text
                guard f.transient else { throw failure(what, cause: f.text) }
            case .success(let r):
                let response = Response(status: r.status, headers: r.headers, body: r.body)
                if (200..<300).contains(r.status) || accept.contains(r.status) {
                    // CompleteMultipartUpload can answer 200 with an error in the body.
                    if r.status == 200, method == "POST", let code = S3XML.value("Code", in: response.text[...]),
                       response.text.contains("<Error>") {
                        lastCause = "\(code) after 200 OK"
                        if code == "InternalError" || code == "SlowDown" { break }
                        throw s3Error(what, status: r.status, code: code)
                    }
                    return response
                }
                let code = S3XML.value("Code", in: response.text[...])
                if [500, 502, 503, 504].contains(r.status) || code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" {
                    lastCause = "HTTP \(r.status)" + (code.map { " \($0)" } ?? "")
                } else {
                    throw s3Error(what, status: r.status, code: code)
                }
            }
            if attempt < attempts {
                // Jittered so parts in flight do not retry in lock step.
                usleep(useconds_t(delay * Double.random(in: 0.75...1.25) * 1_000_000))
                delay = min(delay * 2, 4)
            }
        }
        throw failure(what, cause: "\(lastCause) (\(attempts) attempts)")
    }

    func failure(_ what: String, cause: String) -> PGSnapError {
        PGSnapError("S3 at \(endpointText) failed during \(what): \(redact(cause))",
                    next: "Check the endpoint (AWS_ENDPOINT_URL_S3) and the network, then run the command again")
    }

    /// An S3 error answer as one line naming the S3 error code; no retry for these.
    func s3Error(_ what: String, status: Int, code: String?) -> PGSnapError {
        let c = code ?? (status == 403 ? "AccessDenied" : status == 404 ? "NotFound" : "HTTP \(status)")
        let remote = location.description
        switch c {
        case "SignatureDoesNotMatch":
            return PGSnapError("S3 at \(endpointText) rejected the signature (SignatureDoesNotMatch): the secret access key does not match key \(settings.accessKeyID)",
                               next: "Check AWS_SECRET_ACCESS_KEY (credentials from \(settings.credentialSource))")
        case "InvalidAccessKeyId":
            return PGSnapError("S3 at \(endpointText) does not know access key \(settings.accessKeyID) (InvalidAccessKeyId)",
                               next: "Check AWS_ACCESS_KEY_ID (credentials from \(settings.credentialSource))")
        case "ExpiredToken", "TokenRefreshRequired", "InvalidToken":
            return PGSnapError("S3 at \(endpointText) refused the session token (\(c))", next: "Get fresh credentials and set AWS_SESSION_TOKEN")
        case "NoSuchBucket":
            return PGSnapError("bucket \(location.bucket) does not exist at \(endpointText) (NoSuchBucket)", next: "Create it, or fix --remote / PGSNAP_REMOTE")
        case "AccessDenied", "AllAccessDisabled", "AccountProblem":
            return PGSnapError("S3 at \(endpointText) denied \(what) in \(remote) (\(c))",
                               next: "Grant key \(settings.accessKeyID) s3:GetObject, PutObject, ListBucket, ListBucketMultipartUploads, DeleteObject and AbortMultipartUpload on \(remote)")
        default:
            return PGSnapError("S3 at \(endpointText) refused \(what) (\(redact(c)), HTTP \(status))", next: "Check --remote \(remote) and the credentials")
        }
    }

    /// Belt and braces: a server echoing a request back must not put a secret in our output.
    func redact(_ text: String) -> String {
        var t = text
        for secret in [settings.secretAccessKey, settings.sessionToken ?? ""] where secret.count >= 4 {
            t = t.replacingOccurrences(of: secret, with: "****")
        }
        return oneLine(t, limit: 300)
    }

    // MARK: Calls

    struct Object {
        var key: String
        var size: Int64
    }

    /// ListObjectsV2 pages of up to 1,000 keys under `prefix`, one request each.
    func listObjects(prefix: String) throws -> [Object] {
        var out: [Object] = []
        var token: String?
        repeat {
            var q: [(String, String)] = [("list-type", "2"), ("max-keys", "1000")]
            if !prefix.isEmpty { q.append(("prefix", prefix)) }
            if let token { q.append(("continuation-token", token)) }
            let r = try request("GET", key: nil, query: q, what: "listing \(location)")
            let text = r.text
            for block in S3XML.blocks("Contents", in: text) {
                guard let key = S3XML.value("Key", in: block), let size = S3XML.value("Size", in: block).flatMap(Int64.init) else { continue }
                out.append(Object(key: key, size: size))
            }
            token = S3XML.value("IsTruncated", in: text[...]) == "true" ? S3XML.value("NextContinuationToken", in: text[...]) : nil
        } while token != nil
        return out
    }

    /// HEAD: size and metadata, or nil when the object does not exist.
    func head(_ key: String) throws -> (size: Int64, metadata: [String: String])? {
        let r = try request("HEAD", key: key, accept: [404], what: "reading the size of \(key)")
        if r.status == 404 { return nil }
        var meta: [String: String] = [:]
        for (k, v) in r.headers where k.hasPrefix("x-amz-meta-") { meta[String(k.dropFirst(11))] = v }
        return (Int64(r.headers["content-length"] ?? "") ?? -1, meta)
    }

    func get(_ key: String, range: ClosedRange<Int64>? = nil) throws -> Data {
        var h: [(String, String)] = []
        if let range { h.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        return try request("GET", key: key, headers: h, what: "downloading \(key)").body
    }

    /// At most the first `count` bytes (a ranged GET): a small file read whole without trusting
    /// the object's size. Empty for an empty object (S3 answers 416 to any range of one).
    func getPrefix(_ key: String, count: Int64) throws -> Data {
        let r = try request("GET", key: key, headers: [("range", "bytes=0-\(max(0, count - 1))")], accept: [416], what: "downloading \(key)")
        return r.status == 416 ? Data() : r.body
    }

    func put(_ key: String, body: Data, metadata: [String: String] = [:]) throws {
        let md5 = body.withUnsafeBytes { S3Digest.md5Base64($0) }
        var h: [(String, String)] = [("content-md5", md5), ("content-type", "application/octet-stream")]
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { h.append(("x-amz-meta-" + k, v)) }
        _ = try request("PUT", key: key, headers: h, body: body, what: "uploading \(key)")
    }

    func delete(_ key: String) throws {
        _ = try request("DELETE", key: key, accept: [404], what: "deleting \(key)")
    }

    func createMultipartUpload(_ key: String, metadata: [String: String]) throws -> String {
        var h: [(String, String)] = [("content-type", "application/octet-stream")]
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { h.append(("x-amz-meta-" + k, v)) }
        let r = try request("POST", key: key, query: [("uploads", "")], headers: h, what: "starting the upload of \(key)")
        guard let id = S3XML.value("UploadId", in: r.text[...]), !id.isEmpty else {
            throw PGSnapError("S3 at \(endpointText) gave no upload id for \(key)", next: "Check that the endpoint is S3-compatible")
        }
        return id
    }

    /// Uploads one part with its Content-MD5 (S3 rejects a part damaged on the way); returns its ETag.
    func uploadPart(_ key: String, uploadID: String, number: Int, body: Data) throws -> String {
        let md5 = body.withUnsafeBytes { S3Digest.md5($0) }
        let r = try request("PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                            headers: [("content-md5", md5.base64)], body: body, what: "uploading part \(number) of \(key)")
        guard let etag = r.headers["etag"], !etag.isEmpty else {
            throw PGSnapError("S3 at \(endpointText) gave no ETag for part \(number) of \(key)", next: "Run the command again")
        }
        // For a plain (unencrypted) part the ETag is its MD5: a second check that what arrived is what we sent.
        let hexMD5 = md5.hex
        let bare = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        if bare.count == 32, bare.lowercased() != hexMD5 {
            throw PGSnapError("S3 at \(endpointText) stored part \(number) of \(key) with MD5 \(bare), sent \(hexMD5)", next: "Run the command again")
        }
        return etag
    }

    /// - Parameter onlyIfAbsent: `If-None-Match: *`, S3's conditional write (2024; moto has it).
    /// - Returns: false when the server refused because the key holds an object (412).
    @discardableResult
    func completeMultipartUpload(_ key: String, uploadID: String, etags: [String], onlyIfAbsent: Bool = false) throws -> Bool {
        var xml = "<CompleteMultipartUpload>"
        for (i, e) in etags.enumerated() { xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(S3XML.escape(e))</ETag></Part>" }
        xml += "</CompleteMultipartUpload>"
        var headers = [("content-type", "application/xml")]
        if onlyIfAbsent { headers.append(("if-none-match", "*")) }
        let r = try request("POST", key: key, query: [("uploadId", uploadID)], headers: headers, body: Data(xml.utf8),
                            accept: onlyIfAbsent ? [412] : [], what: "completing the upload of \(key)")
        return r.status != 412
    }

    func abortMultipartUpload(_ key: String, uploadID: String) throws {
        // Also after Ctrl-C: the cleanup of an interrupted push (S3 keeps and bills unfinished uploads).
        _ = try request("DELETE", key: key, query: [("uploadId", uploadID)], accept: [404], evenWhenInterrupted: true,
                        what: "aborting the upload of \(key)")
    }

    struct Upload {
        var key: String
        var uploadID: String
        var initiated: Date?
    }

    /// Unfinished multipart uploads under `prefix` (one page of 1,000 is plenty for cleanup).
    func listMultipartUploads(prefix: String) throws -> [Upload] {
        var q: [(String, String)] = [("uploads", "")]
        if !prefix.isEmpty { q.append(("prefix", prefix)) }
        let r = try request("GET", key: nil, query: q, what: "listing unfinished uploads in \(location)")
        return S3XML.blocks("Upload", in: r.text).compactMap { b in
            guard let k = S3XML.value("Key", in: b), let id = S3XML.value("UploadId", in: b) else { return nil }
            return Upload(key: k, uploadID: id, initiated: S3XML.value("Initiated", in: b).flatMap(ISO8601.parse))
        }
    }
}
