import XCTest

@testable import PGSnapCore

final class ConnectionSpecTests: XCTestCase {
    typealias Pairs = [[String]]

    static func pairs(_ list: [(String, String)]) -> Pairs { list.map { [$0.0, $0.1] } }
    static func pairs(_ spec: ConnectionSpec) -> Pairs { spec.parameters.map { [$0.key, $0.value] } }

    // MARK: URIs

    func testURIParsing() throws {
        let cases: [(uri: String, expected: Pairs)] = [
            ("postgres://alice:s3cret@db.example.com:5433/app?sslmode=require&application_name=pgsnap",
             [["user", "alice"], ["password", "s3cret"], ["host", "db.example.com"], ["port", "5433"], ["dbname", "app"],
              ["sslmode", "require"], ["application_name", "pgsnap"]]),
            ("postgresql://alice@localhost/app", [["user", "alice"], ["host", "localhost"], ["dbname", "app"]]),
            ("postgres://localhost", [["host", "localhost"]]),
            ("postgres://", []),
            ("postgres:///app", [["dbname", "app"]]),
            ("postgres://:5432/app", [["port", "5432"], ["dbname", "app"]]),
            ("postgres://u:p%40ss%3Aw%2Frd@h/db", [["user", "u"], ["password", "p@ss:w/rd"], ["host", "h"], ["dbname", "db"]]),
            ("postgres://u:p%25%20x@h/db", [["user", "u"], ["password", "p% x"], ["host", "h"], ["dbname", "db"]]),
            ("postgres://:only-password@h/db", [["password", "only-password"], ["host", "h"], ["dbname", "db"]]),
            ("postgres://u:@h/db", [["user", "u"], ["password", ""], ["host", "h"], ["dbname", "db"]]),
            ("postgresql://[::1]:5433/db", [["host", "::1"], ["port", "5433"], ["dbname", "db"]]),
            ("postgresql://[2001:db8::10]/db", [["host", "2001:db8::10"], ["dbname", "db"]]),
            ("postgres://u@[::1]:6543/db?connect_timeout=5", [["user", "u"], ["host", "::1"], ["port", "6543"], ["dbname", "db"],
                                                              ["connect_timeout", "5"]]),
            ("postgres://h/my%20db", [["host", "h"], ["dbname", "my db"]]),
            ("postgres://h/caf%C3%A9", [["host", "h"], ["dbname", "café"]]),
            ("postgres://%2Fvar%2Frun%2Fpostgresql/app", [["host", "/var/run/postgresql"], ["dbname", "app"]]),
            ("postgres:///app?host=%2Ftmp&options=-c%20work_mem%3D64MB",
             [["dbname", "app"], ["host", "/tmp"], ["options", "-c work_mem=64MB"]]),
        ]
        for (uri, expected) in cases {
            XCTAssertEqual(ConnectionSpecTests.pairs(try ConnectionSpec.parseURI(uri)), expected, uri)
        }
    }

    /// guard's printed restore command: runnable, and without the password or sslpassword.
    func testPrintableConninfoLeavesTheSecretsOut() throws {
        let spec = try ConnectionSpec(dbname: "host=db.example.com dbname='my app' password=s3cret sslpassword=k3ypass sslkey=/k",
                                      host: nil, port: "5433", username: nil, environment: [:])
        XCTAssertEqual(spec.printableConninfo, "host=db.example.com dbname='my app' sslkey=/k port=5433")
        XCTAssertFalse(spec.conninfo().contains("k3ypass"), "kept apart, like the password")
        XCTAssertEqual(spec.sslPassword, "k3ypass")
        XCTAssertTrue(spec.redacted.contains("sslpassword=********") && !spec.redacted.contains("k3ypass"), spec.redacted)
    }

    func testURIErrorsAreUsageErrors() {
        for uri in ["postgres://h:port/db", "postgres://h:0/db", "postgres://h:65536/db", "postgres://[::1/db",
                    "postgres://[::1]x/db", "postgres://h/db?sslmode", "postgres://h/db?=x", "postgres://h/%zz",
                    "postgres://u:%G1@h/db"] {
            let error = assertPGSnapError(.usage, uri) { try ConnectionSpec.parseURI(uri) }
            XCTAssertTrue(error?.what.hasPrefix("cannot parse the connection URI") ?? true, "\(uri): \(String(describing: error))")
        }
    }

    func testURIErrorNeverShowsThePassword() {
        let error = assertPGSnapError(.usage) { try ConnectionSpec.parseURI("postgres://u:hunter2@h:99999/db") }
        XCTAssertFalse(error?.description.contains("hunter2") ?? true, "\(String(describing: error))")
    }

    // MARK: key=value

    func testKeyValueParsing() throws {
        let cases: [(text: String, expected: Pairs)] = [
            ("host=db1 dbname=app", [["host", "db1"], ["dbname", "app"]]),
            ("  host = db1   port=5433  ", [["host", "db1"], ["port", "5433"]]),
            ("dbname='my app' user=bob", [["dbname", "my app"], ["user", "bob"]]),
            (#"password='it\'s' host=h"#, [["password", "it's"], ["host", "h"]]),
            (#"dbname='back\\slash'"#, [["dbname", #"back\slash"#]]),
            (#"dbname='a\\'"#, [["dbname", #"a\"#]]),
            (#"dbname=unquoted\ space"#, [["dbname", "unquoted space"]]),
            ("dbname=''", [["dbname", ""]]),
            ("options='-c search_path=app,public'", [["options", "-c search_path=app,public"]]),
            ("dbname='x=y'", [["dbname", "x=y"]]),
            ("application_name=pgsnap", [["application_name", "pgsnap"]]),
            ("", []),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(ConnectionSpecTests.pairs(try ConnectionSpec.parseKeyValue(text)), expected, text)
        }
    }

    func testKeyValueErrorsAreUsageErrors() {
        let cases: [(text: String, mentions: String)] = [
            ("dbname='unterminated", "unterminated quoted value"),
            (#"dbname='ends in escape\'"#, "unterminated quoted value"),
            ("host db1", "missing '='"),
            ("host=db1 port", "missing '='"),
            ("=value", "invalid keyword"),
            ("ho-st=x", "invalid keyword"),
        ]
        for (text, mentions) in cases {
            let error = assertPGSnapError(.usage, text) { try ConnectionSpec.parseKeyValue(text) }
            XCTAssertTrue(error?.description.contains(mentions) ?? true, "\(text): \(String(describing: error))")
        }
    }

    // MARK: precedence

    func testExplicitOptionsOverrideTheConnectionString() throws {
        for dbname in ["postgres://alice:pw@h1:5432/app?sslmode=require", "host=h1 port=5432 user=alice password=pw dbname=app sslmode=require"] {
            let spec = try ConnectionSpec(dbname: dbname, host: "h2", port: "6000", username: "bob", environment: [:])
            XCTAssertEqual(spec["host"], "h2", dbname)
            XCTAssertEqual(spec["port"], "6000", dbname)
            XCTAssertEqual(spec["user"], "bob", dbname)
            XCTAssertEqual(spec["dbname"], "app", dbname)
            XCTAssertEqual(spec["sslmode"], "require", dbname)
            XCTAssertEqual(spec.password, "pw", dbname)
            XCTAssertEqual(spec.parameters.filter { $0.key == "host" }.count, 1, "one host, not two: \(dbname)")
            XCTAssertFalse(spec.parameters.contains { $0.key == "password" }, dbname)
        }
        let plain = try ConnectionSpec(dbname: "app", host: nil, port: nil, username: nil, environment: [:])
        XCTAssertEqual(ConnectionSpecTests.pairs(plain), [["dbname", "app"]])
    }

    func testDatabaseURLOnlyWhenNothingElseNamesADatabase() throws {
        let url = "postgres://u:pw@urlhost/urldb"
        let cases: [(why: String, dbname: String?, env: [String: String], expectedDB: String?, expectedHost: String?)] = [
            ("only DATABASE_URL", nil, ["DATABASE_URL": url], "urldb", "urlhost"),
            ("--dbname wins", "app", ["DATABASE_URL": url], "app", nil),
            ("PGDATABASE wins (libpq reads it)", nil, ["DATABASE_URL": url, "PGDATABASE": "envdb"], nil, nil),
            ("empty DATABASE_URL", nil, ["DATABASE_URL": ""], nil, nil),
            ("nothing", nil, [:], nil, nil),
        ]
        for c in cases {
            let spec = try ConnectionSpec(dbname: c.dbname, host: nil, port: nil, username: nil, environment: c.env)
            XCTAssertEqual(spec["dbname"], c.expectedDB, c.why)
            XCTAssertEqual(spec["host"], c.expectedHost, c.why)
            XCTAssertEqual(spec.password, c.expectedHost == nil ? nil : "pw", c.why)
        }
        let overridden = try ConnectionSpec(dbname: nil, host: "h2", port: nil, username: nil, environment: ["DATABASE_URL": url])
        XCTAssertEqual(overridden["host"], "h2")
        XCTAssertEqual(overridden["dbname"], "urldb")
    }

    func testInvalidPortIsAUsageError() {
        for port in ["", "0", "65536", "-1", "abc", "54 32", "5432x", "99999999999999999999"] {
            let error = assertPGSnapError(.usage, port) {
                try ConnectionSpec(dbname: "app", host: nil, port: port, username: nil, environment: [:])
            }
            XCTAssertTrue(error?.description.contains("invalid port") ?? true, "\(port): \(String(describing: error))")
        }
        for port in ["1", "5432", "65535"] {
            XCTAssertEqual(try ConnectionSpec(dbname: nil, host: nil, port: port, username: nil, environment: [:])["port"], port)
        }
    }

    // MARK: conninfo and redaction

    func testConninfoNeverContainsThePasswordAndParsesBack() throws {
        let awkward = ["plain", "my app", "it's", #"back\slash"#, "a=b", "", "tab\there", "new\nline", " leading", "trailing ",
                       #"\'"#, "''", "café"]
        for value in awkward {
            var spec = ConnectionSpec()
            spec.set("host", "db.example.com")
            spec.set("dbname", value)
            spec.set("user", value)
            spec.set("password", "hunter2 'x' \\")
            let conninfo = spec.conninfo(extra: [("application_name", "pgsnap"), ("options", value)])
            XCTAssertFalse(conninfo.contains("hunter2"), conninfo)
            XCTAssertFalse(conninfo.contains("password"), conninfo)
            do {
                let back = ConnectionSpecTests.pairs(try ConnectionSpec.parseKeyValue(conninfo))
                XCTAssertEqual(back, [["host", "db.example.com"], ["dbname", value], ["user", value],
                                      ["application_name", "pgsnap"], ["options", value]], "value \(value.debugDescription): \(conninfo)")
            } catch {
                XCTFail("value \(value.debugDescription): conninfo \(conninfo.debugDescription) does not parse back: \(error)")
            }
        }
    }

    /// parseKeyValue splits on every Unicode space, so conninfo must quote values holding one.
    func testConninfoQuotesUnicodeWhitespace() {
        for value in ["ideographic\u{3000}space", "no\u{00A0}break", "thin\u{2009}space"] {
            var spec = ConnectionSpec()
            spec.set("dbname", value)
            let conninfo = spec.conninfo()
            do {
                let back = ConnectionSpecTests.pairs(try ConnectionSpec.parseKeyValue(conninfo))
                XCTAssertEqual(back, [["dbname", value]], conninfo)
            } catch {
                XCTFail("value \(value.debugDescription): conninfo \(conninfo.debugDescription) does not parse back: \(error)")
            }
        }
    }

    func testConninfoOfURIWithoutPassword() throws {
        let spec = try ConnectionSpec(dbname: "postgres://u:p%40ss@h:5433/my%20db", host: nil, port: nil, username: nil, environment: [:])
        let conninfo = spec.conninfo()
        XCTAssertFalse(conninfo.contains("p@ss"))
        XCTAssertEqual(ConnectionSpecTests.pairs(try ConnectionSpec.parseKeyValue(conninfo)),
                       [["user", "u"], ["host", "h"], ["port", "5433"], ["dbname", "my db"]])
    }

    func testRedactedHidesThePassword() throws {
        let spec = try ConnectionSpec(dbname: "postgres://alice:s3cret@h/app", host: nil, port: nil, username: nil, environment: [:])
        XCTAssertFalse(spec.redacted.contains("s3cret"), spec.redacted)
        XCTAssertTrue(spec.redacted.contains("password=********"), spec.redacted)
        XCTAssertTrue(spec.redacted.contains("user=alice"), spec.redacted)
        XCTAssertTrue(spec.redacted.contains("host=h"), spec.redacted)
        XCTAssertEqual(ConnectionSpec().redacted, "(libpq defaults)")
        let noPassword = try ConnectionSpec(dbname: "app", host: nil, port: nil, username: nil, environment: [:])
        XCTAssertFalse(noPassword.redacted.contains("password"), noPassword.redacted)
    }

    func testRedactSecrets() {
        let cases: [(text: String, password: String?, secret: String, keeps: [String])] = [
            ("could not connect to postgres://u:secret@h/db", nil, "secret", ["postgres://u:", "@h/db"]),
            ("could not connect to postgresql://u:secret@h:5432/db?sslmode=require", nil, "secret", ["postgresql://u:", "@h:5432/db"]),
            ("dsn: host=h password=secret dbname=app", nil, "secret", ["host=h", "dbname=app"]),
            ("dsn: host=h password = secret dbname=app", nil, "secret", ["host=h", "dbname=app"]),
            ("dsn: password='se cret' dbname=app", nil, "cret", ["dbname=app"]),
            (#"dsn: password='it\'s secret' dbname=app"#, nil, "secret", ["dbname=app"]),
            ("FATAL: password authentication failed; tried hunter2 twice", "hunter2", "hunter2", ["FATAL", "twice"]),
            ("FATAL: bad p@ss:w/rd given", "p@ss:w/rd", "p@ss:w/rd", ["FATAL", "given"]),
            // A migration tool's URL: any scheme, a raw @ in the password (split at the last @).
            ("running: migrate -database pgx5://u:p@ssword@h:5432/db up", nil, "ssword", ["pgx5://u:", "@h:5432/db up"]),
            ("running: env PGPASSWORD=secret migrate up", nil, "secret", ["env PGPASSWORD=", "migrate up"]),
        ]
        for c in cases {
            let out = redactSecrets(c.text, password: c.password)
            XCTAssertFalse(out.contains(c.secret), "\(c.text) -> \(out)")
            XCTAssertTrue(out.contains("********"), "\(c.text) -> \(out)")
            for kept in c.keeps {
                XCTAssertTrue(out.contains(kept), "\(c.text) -> \(out): lost '\(kept)'")
            }
        }
        XCTAssertEqual(redactSecrets("nothing to hide at host=h", password: nil), "nothing to hide at host=h")
        // A port and a path are not a password.
        XCTAssertEqual(redactSecrets("see https://host:8443/p@x and s3://bucket/a@b", password: nil),
                       "see https://host:8443/p@x and s3://bucket/a@b")
    }
}
