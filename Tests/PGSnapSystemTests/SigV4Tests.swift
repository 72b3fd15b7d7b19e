import Foundation
import XCTest

import PGSnapSigV4

/// The signer against AWS's published S3 examples, and request by request against botocore.
final class SigV4Tests: XCTestCase {
    static let docCredentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let docDate = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    struct DocCase {
        var name: String
        var request: SigV4Request
        var signature: String
    }

    /// "Signature Calculations for the Authorization Header" (AWS S3 API reference): bucket
    /// examplebucket, region us-east-1, the four worked examples with their published signatures.
    static let docCases: [DocCase] = [
        DocCase(name: "GET object with a range",
                request: SigV4Request(method: "GET", encodedPath: "/test.txt",
                                      headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
                                      payloadHash: SigV4Signer.emptyPayloadHash),
                signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        DocCase(name: "PUT object, '$' in the key, storage class and Date headers",
                request: SigV4Request(method: "PUT", encodedPath: "/" + SigV4Signer.uriEncode("test$file.text", keepSlash: true),
                                      headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                                                ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                                      payloadHash: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
                signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
        DocCase(name: "GET bucket lifecycle: a query key without a value",
                request: SigV4Request(method: "GET", encodedPath: "/", query: [("lifecycle", "")],
                                      headers: [("Host", "examplebucket.s3.amazonaws.com")], payloadHash: SigV4Signer.emptyPayloadHash),
                signature: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        DocCase(name: "list objects: query pairs sorted",
                request: SigV4Request(method: "GET", encodedPath: "/", query: [("prefix", "J"), ("max-keys", "2")],
                                      headers: [("Host", "examplebucket.s3.amazonaws.com")], payloadHash: SigV4Signer.emptyPayloadHash),
                signature: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ]

    func testPublishedExamples() {
        let signer = SigV4Signer(region: "us-east-1")
        for c in Self.docCases {
            let added = signer.sign(c.request, credentials: Self.docCredentials, date: Self.docDate)
            let auth = added.first { $0.0 == "Authorization" }?.1 ?? ""
            XCTAssertTrue(auth.hasSuffix("Signature=\(c.signature)"), "\(c.name): \(auth)")
            XCTAssertTrue(auth.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders="),
                          c.name)
            XCTAssertFalse(auth.contains(Self.docCredentials.secretAccessKey), c.name)
        }
    }

    func testCanonicalRequestOfTheRangeExample() {
        var r = Self.docCases[0].request
        r.headers += [("x-amz-date", "20130524T000000Z"), ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash)]
        XCTAssertEqual(SigV4Signer(region: "us-east-1").canonicalRequest(r), """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
    }

    func testURIEncoding() {
        let cases: [(String, Bool, String)] = [
            ("a/b c", true, "a/b%20c"),
            ("a/b c", false, "a%2Fb%20c"),
            ("plain-._~AZaz09", false, "plain-._~AZaz09"),
            ("db%C3%A9_x", true, "db%25C3%25A9_x"),
            ("é+=&?*", false, "%C3%A9%2B%3D%26%3F%2A"),
            ("", false, ""),
        ]
        for (input, keepSlash, expected) in cases {
            XCTAssertEqual(SigV4Signer.uriEncode(input, keepSlash: keepSlash), expected, input)
        }
    }

    func testSessionTokenIsSignedAndFoldedHeadersAreCanonical() {
        let creds = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "tok/en+=")
        let r = SigV4Request(method: "GET", encodedPath: "/b/k", headers: [("Host", "h:9000"), ("X-Amz-Meta-Note", "  two   spaces  ")],
                             payloadHash: SigV4Signer.emptyPayloadHash)
        let added = SigV4Signer(region: "eu-west-1").sign(r, credentials: creds, date: Self.docDate)
        XCTAssertEqual(added.first { $0.0 == "x-amz-security-token" }?.1, "tok/en+=")
        let auth = added.first { $0.0 == "Authorization" }!.1
        XCTAssertTrue(auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-note;x-amz-security-token,"), auth)
        XCTAssertTrue(SigV4Signer(region: "eu-west-1").canonicalRequest(r).contains("\nx-amz-meta-note:two spaces\n"))
    }

    // MARK: botocore

    struct BotoCase {
        var method: String
        var host: String
        var rawPath: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var body: String
        var credentials: AWSCredentials
        var region: String
    }

    static let botoCases: [BotoCase] = {
        let k = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        let t = AWSCredentials(accessKeyID: "ASIAEXAMPLE", secretAccessKey: "s3cr3t/with+chars=", sessionToken: "FQoGZXIvYXdz/token+=")
        return [
            BotoCase(method: "GET", host: "127.0.0.1:9000", rawPath: "/bucket/app_20261201T203500Z.sql.gz", query: [],
                     headers: [("Range", "bytes=0-8388607")], body: "", credentials: k, region: "us-east-1"),
            BotoCase(method: "GET", host: "127.0.0.1:9000", rawPath: "/bucket",
                     query: [("list-type", "2"), ("prefix", "nightly/eu/"), ("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")],
                     headers: [], body: "", credentials: k, region: "us-east-1"),
            BotoCase(method: "PUT", host: "s3.eu-central-1.amazonaws.com", rawPath: "/bucket/pre fix/d%C3%A9mo_20261201T203500Z_pre-mig.sql.gz",
                     query: [("partNumber", "3"), ("uploadId", "2~abc/def+ghi=")],
                     headers: [("Content-MD5", "XUFAKrxLKna5cZ2REBfFkg==")], body: "part three body", credentials: t, region: "eu-central-1"),
            BotoCase(method: "POST", host: "mybucket.s3.amazonaws.com", rawPath: "/p/app_20261201T203500Z.sql.gz", query: [("uploads", "")],
                     headers: [("x-amz-meta-sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                               ("Content-Type", "application/octet-stream")],
                     body: "", credentials: k, region: "us-east-1"),
            BotoCase(method: "POST", host: "127.0.0.1:9000", rawPath: "/bucket/k", query: [("uploadId", "abc")],
                     headers: [("Content-Type", "application/xml")],
                     body: "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"x\"</ETag></Part></CompleteMultipartUpload>",
                     credentials: t, region: "us-east-1"),
            BotoCase(method: "DELETE", host: "127.0.0.1:9000", rawPath: "/bucket/a*b(c)!'~", query: [], headers: [], body: "",
                     credentials: k, region: "ap-southeast-2"),
        ]
    }()

    /// botocore builds each URL itself (its own percent-encoding of path and query) and signs
    /// with `botocore.auth.S3SigV4Auth` (SigV4Auth as botocore applies it to S3: no path
    /// normalisation) at the same fixed time; the Authorization headers must be identical.
    func testSignaturesMatchBotocore() throws {
        let script = #"""
            import datetime, json, sys
            import botocore.auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            from botocore.utils import percent_encode
            botocore.auth.get_current_datetime = lambda *a, **k: datetime.datetime(2026, 12, 1, 20, 35, 0)
            out = []
            for c in json.load(open(sys.argv[1])):
                url = "http://" + c["host"] + percent_encode(c["path"], safe="/~")
                req = AWSRequest(method=c["method"], url=url, data=c["body"].encode(), headers=dict(c["headers"]),
                                 params=dict(c["query"]) if c["query"] else None)
                creds = Credentials(c["key"], c["secret"], c["token"])
                botocore.auth.S3SigV4Auth(creds, "s3", c["region"]).add_auth(req)
                out.append(req.headers["Authorization"])
            print(json.dumps(out))
            """#
        let dir = NSTemporaryDirectory() + "pgsnap-sigv4-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(script.utf8).write(to: URL(fileURLWithPath: dir + "/sign.py"))
        let input: [[String: Any]] = Self.botoCases.map { c in
            ["method": c.method, "host": c.host, "path": c.rawPath, "query": c.query.map { [$0.0, $0.1] },
             "headers": c.headers.map { [$0.0, $0.1] }, "body": c.body, "key": c.credentials.accessKeyID,
             "secret": c.credentials.secretAccessKey, "token": c.credentials.sessionToken as Any, "region": c.region]
        }
        try JSONSerialization.data(withJSONObject: input).write(to: URL(fileURLWithPath: dir + "/cases.json"))
        let python = try XCTUnwrap(Self.findInPath("python3"), "python3 is not on PATH (scripts/lib/deps.sh installs it)")
        let r = try runTool(python, [dir + "/sign.py", dir + "/cases.json"])
        XCTAssertEqual(r.status, 0, "botocore signer failed (is botocore installed? scripts/lib/deps.sh installs it)")
        let theirs = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String])
        XCTAssertEqual(theirs.count, Self.botoCases.count)

        let date = Date(timeIntervalSince1970: 1_796_157_300)  // 2026-12-01T20:35:00Z
        for (i, c) in Self.botoCases.enumerated() {
            let request = SigV4Request(
                method: c.method, encodedPath: SigV4Signer.uriEncode(c.rawPath, keepSlash: true), query: c.query,
                headers: [("host", c.host)] + c.headers,
                payloadHash: Data(c.body.utf8).withUnsafeBytes { S3Digest.sha256Hex($0) })
            let ours = SigV4Signer(region: c.region).sign(request, credentials: c.credentials, date: date).first { $0.0 == "Authorization" }?.1
            XCTAssertEqual(ours, i < theirs.count ? theirs[i] : nil, "\(c.method) \(c.rawPath)")
        }
    }

    static func findInPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
