import Foundation
import XCTest

@testable import PGSnapCore

final class S3SettingsTests: XCTestCase {
    func noFile(_ path: String) -> String? {
        XCTFail("the credentials file \(path) must not be read when the environment has keys")
        return nil
    }

    func testEnvironmentWinsAndRegionAndEndpointFollowTheAWSConventions() throws {
        let s = try S3Settings.resolve(environment: [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sec", "AWS_SESSION_TOKEN": "tok",
            "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        ], readFile: noFile)
        XCTAssertEqual(s.accessKeyID, "AKID")
        XCTAssertEqual(s.secretAccessKey, "sec")
        XCTAssertEqual(s.sessionToken, "tok")
        XCTAssertEqual(s.region, "eu-west-1")
        XCTAssertEqual(s.endpoint?.absoluteString, "http://127.0.0.1:9000")
        XCTAssertFalse(s.description.contains("sec"))

        let t = try S3Settings.resolve(environment: [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sec", "AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "http://ignored:1", "AWS_ENDPOINT_URL_S3": "https://s3.example.com",
        ], readFile: noFile)
        XCTAssertEqual(t.region, "ap-south-1")
        XCTAssertEqual(t.endpoint?.absoluteString, "https://s3.example.com")
        XCTAssertNil(t.sessionToken)

        let u = try S3Settings.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sec"], readFile: noFile)
        XCTAssertEqual(u.region, "us-east-1")
        XCTAssertNil(u.endpoint)

        for bad in ["ftp://x", "not a url", "http://user:pw@host"] {
            assertPGSnapError(.failure, bad) {
                try S3Settings.resolve(environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_ENDPOINT_URL_S3": bad], readFile: noFile)
            }
        }
    }

    func testSharedCredentialsFileUnderHOMEWithAWSPROFILE() throws {
        let file = """
            # comment
            [default]
            aws_access_key_id = AKIADEFAULT
            aws_secret_access_key = defaultsecret

            [profile backups]
            AWS_ACCESS_KEY_ID=AKIABACKUPS
            aws_secret_access_key = back/up+secret=
            aws_session_token = tok
            """
        var asked: [String] = []
        let read: (String) -> String? = { path in
            asked.append(path)
            return path == "/home/ops/.aws/credentials" || path == "/etc/pgsnap/creds" ? file : nil
        }
        let d = try S3Settings.resolve(environment: ["HOME": "/home/ops"], readFile: read)
        XCTAssertEqual(d.accessKeyID, "AKIADEFAULT")
        XCTAssertEqual(d.credentialSource, "profile default in /home/ops/.aws/credentials")
        let b = try S3Settings.resolve(environment: ["HOME": "/home/ops", "AWS_PROFILE": "backups"], readFile: read)
        XCTAssertEqual(b.accessKeyID, "AKIABACKUPS")
        XCTAssertEqual(b.secretAccessKey, "back/up+secret=")
        XCTAssertEqual(b.sessionToken, "tok")
        let f = try S3Settings.resolve(environment: ["HOME": "/nowhere", "AWS_SHARED_CREDENTIALS_FILE": "/etc/pgsnap/creds"], readFile: read)
        XCTAssertEqual(f.accessKeyID, "AKIADEFAULT")
        XCTAssertEqual(asked, ["/home/ops/.aws/credentials", "/home/ops/.aws/credentials", "/etc/pgsnap/creds"])

        let missingProfile = assertPGSnapError(.failure) {
            try S3Settings.resolve(environment: ["HOME": "/home/ops", "AWS_PROFILE": "nope"], readFile: read)
        }
        XCTAssertEqual(missingProfile?.description,
                       "no S3 credentials for profile [nope] in /home/ops/.aws/credentials. Add aws_access_key_id and aws_secret_access_key under [nope], or set AWS_PROFILE")
        let none = assertPGSnapError(.failure) { try S3Settings.resolve(environment: ["HOME": "/nowhere"], readFile: read) }
        XCTAssertTrue(none?.description.contains("/nowhere/.aws/credentials does not exist") ?? false, none?.description ?? "")
        // Only half the pair in the environment: the file decides, not half a credential.
        let half = try S3Settings.resolve(environment: ["HOME": "/home/ops", "AWS_ACCESS_KEY_ID": "AKIAHALF"], readFile: read)
        XCTAssertEqual(half.accessKeyID, "AKIADEFAULT")
    }
}
