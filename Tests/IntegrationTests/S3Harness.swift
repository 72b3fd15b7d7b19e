import Foundation
import XCTest

/// The S3 API server `scripts/test` starts (moto, signatures checked; see scripts/s3), and an
/// independent client for looking into the bucket and damaging it: boto3, not pgsnap's own code.
enum S3Harness {
    static var endpoint: String { Harness.require("PGSNAP_TEST_S3_ENDPOINT") }
    static var bucket: String { Harness.require("PGSNAP_TEST_S3_BUCKET") }
    static var keyID: String { Harness.require("PGSNAP_TEST_S3_KEY_ID") }
    static var secret: String { Harness.require("PGSNAP_TEST_S3_SECRET") }

    /// A fresh prefix with a '/' in it (moto's query quirk is exercised on every listing).
    static func newRemote() -> (url: String, prefix: String) {
        let prefix = "it/" + UUID().uuidString.prefix(8).lowercased()
        return ("s3://\(bucket)/\(prefix)", prefix)
    }

    /// pgsnap's environment for the test server: keys in the environment, no profile file, no session token.
    static func env(remote: String, endpoint: String? = nil, secret: String? = nil) -> [String: String?] {
        [
            "AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret ?? self.secret, "AWS_SESSION_TOKEN": nil,
            "AWS_ENDPOINT_URL_S3": endpoint ?? self.endpoint, "AWS_ENDPOINT_URL": nil, "AWS_PROFILE": nil,
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/pgsnap-test-credentials", "PGSNAP_REMOTE": remote,
            // Several parts even from a small test database (S3's floor is 5 MiB).
            "PGSNAP_S3_PART_SIZE": String(5 << 20),
        ]
    }

    static let tool = #"""
        import json, sys, os
        import boto3
        s3 = boto3.client("s3", endpoint_url=os.environ["EP"], region_name="us-east-1",
                          aws_access_key_id=os.environ["KID"], aws_secret_access_key=os.environ["SEC"])
        op, bucket, arg = sys.argv[1], sys.argv[2], sys.argv[3]
        if op == "list":
            keys = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=arg):
                keys += [{"key": o["Key"], "size": o["Size"]} for o in page.get("Contents", [])]
            print(json.dumps(keys))
        elif op == "uploads":
            r = s3.list_multipart_uploads(Bucket=bucket, Prefix=arg)
            print(json.dumps([u["Key"] for u in r.get("Uploads", [])]))
        elif op == "fill":
            # N fake snapshots (a dump and a manifest each), minutes apart: ids app_20261101T000000Z, ...
            import datetime
            t0 = datetime.datetime(2026, 11, 1)
            from concurrent.futures import ThreadPoolExecutor
            def put(i):
                sid = "app_" + (t0 + datetime.timedelta(minutes=i)).strftime("%Y%m%dT%H%M%SZ")
                s3.put_object(Bucket=bucket, Key=arg + "/" + sid + ".sql.gz", Body=b"x" * 10)
                s3.put_object(Bucket=bucket, Key=arg + "/" + sid + ".manifest.json", Body=b"{}")
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(put, range(int(sys.argv[4]))))
            print(json.dumps(int(sys.argv[4])))
        elif op == "put":
            # An object with the UTF-8 text in argv[4] as its body (run records and globals by hand).
            s3.put_object(Bucket=bucket, Key=arg, Body=sys.argv[4].encode())
            print(json.dumps(len(sys.argv[4].encode())))
        elif op == "upload":
            # A local file, byte for byte, as the object (damaged snapshots put straight in the bucket).
            with open(sys.argv[4], "rb") as f:
                s3.put_object(Bucket=bucket, Key=arg, Body=f.read())
            print(json.dumps(os.path.getsize(sys.argv[4])))
        elif op == "start-upload":
            print(json.dumps(s3.create_multipart_upload(Bucket=bucket, Key=arg)["UploadId"]))
        elif op == "head":
            # The first N bytes of an object, as text (an age header).
            body = s3.get_object(Bucket=bucket, Key=arg, Range="bytes=0-%d" % (int(sys.argv[4]) - 1))["Body"].read()
            print(json.dumps(body.decode("latin-1")))
        elif op == "meta":
            print(json.dumps(s3.head_object(Bucket=bucket, Key=arg)["Metadata"]))
        elif op == "truncate":
            body = s3.get_object(Bucket=bucket, Key=arg)["Body"].read()
            s3.put_object(Bucket=bucket, Key=arg, Body=body[: int(sys.argv[4])])
            print(json.dumps(len(body)))
        elif op == "flip":
            body = bytearray(s3.get_object(Bucket=bucket, Key=arg)["Body"].read())
            body[int(sys.argv[4])] ^= 0xFF
            s3.put_object(Bucket=bucket, Key=arg, Body=bytes(body))
            print(json.dumps(len(body)))
        """#

    /// Runs one boto3 operation; returns its JSON answer.
    static func boto(_ args: [String]) throws -> Any {
        let script = NSTemporaryDirectory() + "pgsnap-s3tool-\(getpid()).py"
        if !FileManager.default.fileExists(atPath: script) { try Data(tool.utf8).write(to: URL(fileURLWithPath: script)) }
        let python = Harness.env["PATH"].flatMap { path in
            path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        } ?? "/usr/bin/python3"
        let r = try Harness.run(python, [script] + args, env: ["EP": endpoint, "KID": keyID, "SEC": secret])
        XCTAssertEqual(r.status, 0, "boto3 \(args): \(r.stderr)")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8), options: [.fragmentsAllowed])
    }

    /// Keys and sizes under `prefix/`, from boto3.
    static func objects(_ prefix: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for o in (try boto(["list", bucket, prefix + "/"]) as? [[String: Any]]) ?? [] {
            out[(o["key"] as! String)] = (o["size"] as! NSNumber).intValue
        }
        return out
    }

    static func unfinishedUploads(_ prefix: String) throws -> [String] {
        (try boto(["uploads", bucket, prefix + "/"]) as? [String]) ?? []
    }

    static func metadata(_ key: String) throws -> [String: String] {
        (try boto(["meta", bucket, key]) as? [String: String]) ?? [:]
    }

    /// A loopback port nothing listens on (bound, then closed).
    static func deadEndpoint() -> String {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = FaultProxy.loopback(port: 0)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        close(s)
        return "http://127.0.0.1:\(UInt16(bigEndian: bound.sin_port))"
    }
}
