import Foundation
import XCTest

@testable import PGSnapCore

final class RemoteLocationTests: XCTestCase {
    func testParsing() throws {
        let cases: [(String, String, String)] = [
            ("s3://backups", "backups", ""),
            ("s3://backups/", "backups", ""),
            ("s3://backups/pgsnap", "backups", "pgsnap"),
            ("s3://my.bucket-1/a//b/", "my.bucket-1", "a/b"),
        ]
        for (text, bucket, prefix) in cases {
            let l = try RemoteLocation(parsing: text)
            XCTAssertEqual(l.bucket, bucket, text)
            XCTAssertEqual(l.prefix, prefix, text)
        }
        for bad in ["backups", "http://b/x", "s3://", "s3://ab", "s3://Upper", "s3://-dash", "s3://b_u", "s3://bucket/../x", "s3://bucket/a\nb"] {
            assertPGSnapError(.usage, bad) { try RemoteLocation(parsing: bad) }
        }
    }

    func testKeysAndNames() throws {
        let l = try RemoteLocation(parsing: "s3://b-1/nightly/eu")
        XCTAssertEqual(l.key("app_20261201T000000Z.sql.gz"), "nightly/eu/app_20261201T000000Z.sql.gz")
        XCTAssertEqual(l.listPrefix, "nightly/eu/")
        XCTAssertEqual(l.name(ofKey: "nightly/eu/x.sql.gz"), "x.sql.gz")
        XCTAssertNil(l.name(ofKey: "nightly/eu/deeper/x.sql.gz"))
        XCTAssertNil(l.name(ofKey: "nightly/eu-old/x.sql.gz"))
        XCTAssertEqual(l.description, "s3://b-1/nightly/eu")
        let root = try RemoteLocation(parsing: "s3://b-1")
        XCTAssertEqual(root.key("x"), "x")
        XCTAssertEqual(root.listPrefix, "")
    }
}

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

final class RemoteCatalogTests: XCTestCase {
    func testStatusFromTheListingAlone() {
        let good = CatalogTests.manifest(database: "app", date: utc(2026, 12, 1, 3), label: "pre_mig")
        let halfway = CatalogTests.manifest(database: "app", date: utc(2026, 12, 2, 3))
        let orphan = CatalogTests.manifest(database: "app", date: utc(2026, 11, 30, 3))
        let files = [
            DirectoryFile(name: good.file, size: 1000), DirectoryFile(name: good.id + ".manifest.json", size: 900),
            DirectoryFile(name: halfway.file, size: 1000),
            DirectoryFile(name: orphan.id + ".manifest.json", size: 900),
            DirectoryFile(name: "README.txt", size: 5),
        ]
        let entries = RemoteCatalog.build(files: files)
        XCTAssertEqual(entries.map(\.id), [halfway.id, good.id, orphan.id])
        XCTAssertEqual(entries.map(\.status), [.dumpWithoutManifest, .good, .manifestWithoutDump])
        XCTAssertEqual(entries.map(\.database), ["app", "app", "app"])
        XCTAssertEqual(entries[1].bytes, 1900)
        XCTAssertNil(entries[1].manifest)

        // latest skips the newer incomplete one; labels come from the id.
        XCTAssertEqual(try RemoteCatalog.select(SnapshotSelector(kind: .latest, database: "app"), from: entries, location: "s3://b").id, good.id)
        XCTAssertEqual(try RemoteCatalog.select(SnapshotSelector(kind: .label("pre_mig")), from: entries, location: "s3://b").id, good.id)
        assertPGSnapError(.failure) { try RemoteCatalog.select(SnapshotSelector(kind: .label("other")), from: entries, location: "s3://b") }
        assertPGSnapError(.failure) { try RemoteCatalog.select(SnapshotSelector(kind: .latest, database: "web"), from: entries, location: "s3://b") }
    }

    func testLabelOfID() {
        let cases: [(String, String?)] = [
            ("app_20261201T030000Z", nil),
            ("app_20261201T030000Z_pre_mig", "pre_mig"),
            ("app_20261201T030000Z-2_nightly", "nightly"),
            ("app_20261201T030000Z-2", nil),
            ("my_db_20261201T030000Z_x.y-z", "x.y-z"),
            ("not-an-id", nil),
        ]
        for (id, label) in cases { XCTAssertEqual(RemoteCatalog.label(ofID: id), label, id) }
    }

    func testPushSelection() throws {
        var dir = CatalogTests.FakeDirectory()
        let a1 = CatalogTests.manifest(database: "a", date: utc(2026, 12, 1))
        let a2 = CatalogTests.manifest(database: "a", date: utc(2026, 12, 2))
        let b1 = CatalogTests.manifest(database: "b", date: utc(2026, 11, 1))
        let broken = CatalogTests.manifest(database: "a", date: utc(2026, 12, 3))
        for m in [a1, a2, b1] { dir.addGood(m) }
        dir.addGood(broken, dumpSize: 10)
        let entries = dir.build()
        XCTAssertEqual(try PushSelection.choose(from: entries, selector: nil, all: false, directory: "d").map(\.id), [a2.id, b1.id])
        XCTAssertEqual(try PushSelection.choose(from: entries, selector: nil, all: true, directory: "d").map(\.id), [a2.id, a1.id, b1.id])
        XCTAssertEqual(try PushSelection.choose(from: entries, selector: SnapshotSelector(kind: .id(a1.id)), all: false, directory: "d").map(\.id), [a1.id])
        assertPGSnapError(.verificationFailed) { try PushSelection.choose(from: entries, selector: SnapshotSelector(kind: .id(broken.id)), all: false, directory: "d") }

        let local = [DirectoryFile(name: a1.id + ".globals.sql", size: 40)]
        var remote: [String: Int64] = [a1.file: 1000, a1.id + ".manifest.json": 900]
        var withGlobals = a1
        XCTAssertTrue(PushSelection.isWhole(a1, localFiles: local, remoteFiles: remote))
        withGlobals.globalsFile = a1.id + ".globals.sql"
        XCTAssertFalse(PushSelection.isWhole(withGlobals, localFiles: local, remoteFiles: remote))
        remote[a1.id + ".globals.sql"] = 40
        XCTAssertTrue(PushSelection.isWhole(withGlobals, localFiles: local, remoteFiles: remote))
        remote[a1.file] = 999
        XCTAssertFalse(PushSelection.isWhole(a1, localFiles: local, remoteFiles: remote))
        remote[a1.file] = 1000
        remote[a1.id + ".manifest.json"] = nil
        XCTAssertFalse(PushSelection.isWhole(a1, localFiles: local, remoteFiles: remote))
    }
}
