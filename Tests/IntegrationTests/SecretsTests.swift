import Foundation
import XCTest

/// A password given to pgsnap reaches PostgreSQL and nothing else: not a child's argv, not the
/// output, not the manifest, not the backup directory.
final class SecretsTests: XCTestCase {
    static let role = "secret_user"
    static let password = "S3cr3t-pässw0rd:@/"
    var database = ""
    var dirs: [String] = []

    /// `text` for the userinfo of a URI: everything but RFC 3986's unreserved ASCII percent-encoded.
    static func uriEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn:
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"))!
    }

    static var encodedPassword: String { uriEncoded(password) }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try Harness.psql("postgres", """
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(Self.role)') THEN CREATE ROLE \(Self.role); END IF;
            END $$;
            SET password_encryption = 'scram-sha-256';
            ALTER ROLE \(Self.role) LOGIN PASSWORD '\(Self.password)';
            """)
        XCTAssertTrue(try Harness.psql("postgres", "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '\(Self.role)'") == "t")
        database = "sec_\(UUID().uuidString.prefix(8).lowercased())"
        try Harness.psql("postgres", "CREATE DATABASE \(database) OWNER \(Self.role)")
        // Tables owned by the role, so it can dump them; big enough that pg_dump runs for a while.
        try Harness.psql(database, """
            SET ROLE \(Self.role);
            CREATE TABLE big AS SELECT i, md5(i::text) AS a, md5((i * 3)::text) AS b FROM generate_series(1, 200000) i;
            CREATE TABLE notes (id int, body text);
            INSERT INTO notes VALUES (1, 'nothing secret here');
            """)
    }

    override func tearDown() {
        Harness.dropDatabase(database)
        _ = try? Harness.run(Harness.pgbin + "/psql", ["-X", "-q", "-d", "postgres", "-c", "DROP ROLE IF EXISTS \(Self.role)"])
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    func makeDir() throws -> String {
        let d = try Harness.tempDir()
        dirs.append(d)
        return d
    }

    /// The pgsnap binary with symlinks resolved, as /proc/PID/exe shows it.
    let binaryPath = URL(fileURLWithPath: Harness.binary).resolvingSymlinksInPath().path

    /// What was seen of pgsnap's descendants while it ran.
    struct Observation {
        var argvs: [[String]] = []
        var environments: [[String]] = []
        var sawDumpingPgDump = false
    }

    /// Runs pgsnap and, until it exits, reads argv (and environment) of every descendant.
    func runWatchingChildren(_ args: [String], dir: String, env: [String: String?]) throws -> (Harness.Result, Observation) {
        var seen = Observation()
        var recorded = Set<[String]>()
        let r = try Harness.pgsnap(args, dir: dir, env: env) { pid in
            _ = Harness.poll(timeout: 60) {
                guard Procfs.isAlive(pid) else { return true }
                for child in Procfs.descendants(of: pid) {
                    // Between fork and exec a child is still a copy of pgsnap, with pgsnap's own argv and
                    // environment (which hold what the user gave it). Judge a child only once it runs
                    // another program; exe is read first because exec never goes back.
                    guard let exe = Procfs.executable(child.pid), exe != self.binaryPath,
                          let argv = Procfs.cmdline(child.pid), !argv.isEmpty,
                          recorded.insert([String(child.pid), exe] + argv).inserted else { continue }
                    seen.argvs.append(argv)
                    if let e = Procfs.environ(child.pid) { seen.environments.append(e) }
                    if exe.hasSuffix("/pg_dump"), argv.contains(where: { $0.hasPrefix("--snapshot") }) {
                        seen.sawDumpingPgDump = true
                    }
                }
                return false
            }
        }
        return (r, seen)
    }

    func assertNoSecret(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for secret in [Self.password, Self.encodedPassword, "S3cr3t"] {
            XCTAssertFalse(text.contains(secret), "\(what) contains the password (\(secret))", file: file, line: line)
        }
    }

    func assertBackupKeepsThePasswordSecret(_ args: [String], env: [String: String?],
                                            file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try makeDir()
        let (r, seen) = try runWatchingChildren(args, dir: dir, env: env)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        XCTAssertTrue(seen.sawDumpingPgDump, "never observed pg_dump running; children seen: \(seen.argvs)", file: file, line: line)
        for argv in seen.argvs {
            assertNoSecret(argv.joined(separator: " "), "child argv \(argv.first ?? "")", file: file, line: line)
        }
        assertNoSecret(r.stdout, "stdout", file: file, line: line)
        assertNoSecret(r.stderr, "stderr", file: file, line: line)

        let id = Harness.snapshotID(r)
        let m = try Harness.manifest(dir: dir, id: id)
        XCTAssertEqual(m["user"] as? String, Self.role, file: file, line: line)
        XCTAssertEqual(m["database"] as? String, database, file: file, line: line)
        XCTAssertEqual(m["table_rows"] as? [String: Int], ["public.big": 200000, "public.notes": 1], file: file, line: line)
        let files = Harness.entries(dir)
        XCTAssertTrue(files.contains(id + ".manifest.json"), "\(files)", file: file, line: line)
        for f in files {
            let bytes = try Harness.bytes(dir + "/" + f)
            assertNoSecret(String(decoding: bytes, as: UTF8.self), f, file: file, line: line)
            XCTAssertNil(bytes.range(of: Data(Self.password.utf8)), "\(f) holds the password bytes", file: file, line: line)
        }
        let dump = try Harness.gunzip(Harness.dumpPath(dir: dir, id: id))
        XCTAssertEqual(dump.status, 0, dump.stderr, file: file, line: line)
        assertNoSecret(dump.stdout, "the decompressed dump", file: file, line: line)
        XCTAssertTrue(dump.stdout.contains("nothing secret here"), "the dump lacks the data", file: file, line: line)
    }

    func testPasswordFromPGPASSWORDStaysSecret() throws {
        try assertBackupKeepsThePasswordSecret(
            ["backup", "-h", "127.0.0.1", "-p", Harness.tcpPort, "-U", Self.role, "-d", database],
            env: ["PGPASSWORD": Self.password])
    }

    /// Credentials promises children a 0600 passfile and never PGPASSWORD: checks every exec'd
    /// child's /proc/PID/environ (readable by the same user and root) and that the passfile is gone after.
    /// A child that lives only a few milliseconds (`pg_dump --version`) may escape the polling; then
    /// this test cannot see it, it never fails because of that.
    func testChildrenGetThePasswordOnlyThroughAPassfile() throws {
        let dir = try makeDir()
        let (r, seen) = try runWatchingChildren(
            ["backup", "-h", "127.0.0.1", "-p", Harness.tcpPort, "-U", Self.role, "-d", database], dir: dir,
            env: ["PGPASSWORD": Self.password])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(seen.sawDumpingPgDump, "never observed pg_dump running; children seen: \(seen.argvs)")
        XCTAssertEqual(seen.argvs.count, seen.environments.count)
        var passfiles = Set<String>()
        for (argv, environment) in zip(seen.argvs, seen.environments) {
            let command = argv.prefix(2).joined(separator: " ")
            XCTAssertFalse(environment.contains { $0.hasPrefix("PGPASSWORD=") }, "\(command) was given PGPASSWORD")
            assertNoSecret(environment.joined(separator: "\n"), "the environment of \(command)")
            if argv.contains(where: { $0.hasPrefix("--snapshot") }) {
                let p = environment.first { $0.hasPrefix("PGPASSFILE=") }.map { String($0.dropFirst("PGPASSFILE=".count)) }
                XCTAssertNotNil(p, "the dumping pg_dump has no PGPASSFILE")
                if let p { passfiles.insert(p) }
            }
        }
        for p in passfiles {
            XCTAssertFalse(FileManager.default.fileExists(atPath: p), "passfile \(p) left behind")
        }
    }

    func testPasswordInAPercentEncodedURIStaysSecret() throws {
        XCTAssertEqual(Self.encodedPassword, "S3cr3t-p%C3%A4ssw0rd%3A%40%2F")
        let uri = "postgres://\(Self.role):\(Self.encodedPassword)@127.0.0.1:\(Harness.tcpPort)/\(database)"
        try assertBackupKeepsThePasswordSecret(["backup", "--dbname", uri], env: ["PGPASSWORD": nil, "PGHOST": nil, "PGUSER": nil])
    }

    func testWrongPasswordFailsWithoutEchoingItAndLeavesNothing() throws {
        let dir = try makeDir()
        let wrong = "Wr0ng-pässw0rd-\(UUID().uuidString.prefix(6))"
        for (args, env) in [
            (["backup", "-h", "127.0.0.1", "-p", Harness.tcpPort, "-U", Self.role, "-d", database], ["PGPASSWORD": wrong] as [String: String?]),
            (["backup", "-d", "postgres://\(Self.role):\(Self.uriEncoded(wrong))@127.0.0.1:\(Harness.tcpPort)/\(database)"],
             ["PGPASSWORD": nil] as [String: String?]),
        ] {
            let r = try Harness.pgsnap(args, dir: dir, env: env)
            Harness.assertOneErrorLine(r, status: 1, "wrong password")
            XCTAssertTrue(r.stderr.contains("password authentication failed"), r.stderr)
            XCTAssertFalse(r.stderr.contains(wrong), "stderr echoes the wrong password: \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Wr0ng"), "stderr echoes the wrong password: \(r.stderr)")
            XCTAssertFalse(r.stdout.contains("Wr0ng"), r.stdout)
            XCTAssertEqual(Harness.snapshotFiles(dir), [], "a failed backup left files")
            for f in Harness.entries(dir) {
                XCTAssertFalse(String(decoding: try Harness.bytes(dir + "/" + f), as: UTF8.self).contains("Wr0ng"), "\(f) holds the password")
            }
        }
    }

    /// The passfile of a run killed with -9 (no cleanup runs) does not stay on disk: the next run
    /// removes the private directories of runs whose pid is gone (named with this host, or before
    /// names had a host), and leaves a live run's and another host's (a container's) alone.
    func testAKilledRunsPassfileIsRemovedByTheNextRun() throws {
        let tmp = try makeDir()
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let host = Harness.hostTag, gonePid = gone.processIdentifier
        let orphan = tmp + "/pgsnap-\(host)-\(gonePid)-AbC123", oldOrphan = tmp + "/pgsnap-\(gonePid)-QrS456"
        let live = tmp + "/pgsnap-\(host)-\(getpid())-XyZ789", foreign = tmp + "/pgsnap-0badf00d-\(gonePid)-DeF456"
        for d in [orphan, oldOrphan, live, foreign] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            XCTAssertTrue(FileManager.default.createFile(atPath: d + "/pgpass", contents: Data("*:*:*:*:\(Self.password)\n".utf8),
                                                        attributes: [.posixPermissions: 0o600]))
        }
        let r = try Harness.pgsnap(["backup", "-h", "127.0.0.1", "-p", Harness.tcpPort, "-U", Self.role, "-d", database, "--quiet"],
                                   dir: try makeDir(), env: ["PGPASSWORD": Self.password, "TMPDIR": tmp, "XDG_RUNTIME_DIR": nil])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: orphan), "a killed run's passfile is still there")
        XCTAssertFalse(FileManager.default.fileExists(atPath: oldOrphan), "a killed older run's passfile is still there")
        XCTAssertTrue(FileManager.default.fileExists(atPath: live + "/pgpass"), "a live run's passfile was removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: foreign + "/pgpass"), "another host's passfile was removed")
        XCTAssertEqual(Harness.entries(tmp).sorted(), [live, foreign].map { ($0 as NSString).lastPathComponent }.sorted(),
                       "this run left its own directory")
    }

    /// A backup directory others may write to is refused by every command (another user could
    /// plant a snapshot whose SQL restore would run); made private, it is used again. Group write
    /// counts when the group is shared ("users" here), not for the owner's private group (umask 002).
    func testABackupDirectoryOthersCanWriteIsRefused() throws {
        let dir = try makeDir()
        let shared = try XCTUnwrap(getgrnam("users")?.pointee.gr_gid, "no group 'users' on this machine")
        for (mode, group) in [(mode_t(0o777), getegid()), (0o1777, getegid()), (0o770, shared)] {
            XCTAssertEqual(chown(dir, geteuid(), group), 0)
            XCTAssertEqual(chmod(dir, mode), 0)
            for args in [["backup", "-d", database], ["list"], ["restore", "latest", "-d", database, "--target", "x_never"], ["prune", "--dry-run"]] {
                let r = try Harness.pgsnap(args, dir: dir)
                Harness.assertOneErrorLine(r, status: 1, "\(args[0]) in a mode \(String(mode, radix: 8)) directory")
                XCTAssertTrue(r.stderr.contains("is writable by") && r.stderr.contains("chmod go-w"), r.stderr)
            }
        }
        XCTAssertEqual(Harness.snapshotFiles(dir), [], "nothing may be written there")
        XCTAssertEqual(chmod(dir, 0o700), 0)
        // Another user's directory (daemon's, read by nobody; root may use it), or one an access
        // ACL opens to others.
        let nobody = try XCTUnwrap(getpwnam("nobody")?.pointee.pw_uid), daemon = try XCTUnwrap(getpwnam("daemon")?.pointee.pw_uid)
        XCTAssertEqual(chown(dir, daemon, getegid()), 0)
        XCTAssertEqual(chmod(dir, 0o755), 0)
        let owned = try Harness.run("/usr/sbin/runuser", ["-u", "nobody", "--", Harness.binary, "list", "--dir", dir])
        Harness.assertOneErrorLine(owned, status: 1, "list, as nobody, in daemon's directory")
        XCTAssertTrue(owned.stderr.contains("belongs to daemon"), owned.stderr)
        XCTAssertEqual(try Harness.pgsnap(["list"], dir: dir).status, 0, "root may use a service user's directory")
        XCTAssertEqual(chown(dir, geteuid(), getegid()), 0)
        XCTAssertEqual(chmod(dir, 0o700), 0)
        // POSIX ACL, version 2: the owner rwx, user nobody rwx, group ---, mask rwx, other ---.
        let acl = "import os,struct,sys; e=lambda t,p,i: struct.pack('<HHI',t,p,i); m=int(sys.argv[2]); "
            + "os.setxattr(sys.argv[1],'system.posix_acl_access',struct.pack('<I',2)+e(1,7,0xffffffff)+e(2,7,\(nobody))+e(4,0,0xffffffff)+e(0x10,m,0xffffffff)+e(0x20,0,0xffffffff))"
        // A mask without write caps the named user: no one else writes (what a default ACL above
        // leaves on a directory made 0700).
        let masked = try Harness.run("/usr/bin/python3", ["-c", acl, dir, "5"])
        XCTAssertEqual(masked.status, 0, masked.stderr)
        XCTAssertEqual(try Harness.pgsnap(["list"], dir: dir).status, 0, "an ACL whose mask has no write lets no one else in")
        let set = try Harness.run("/usr/bin/python3", ["-c", acl, dir, "7"])
        XCTAssertEqual(set.status, 0, set.stderr)
        let withACL = try Harness.pgsnap(["list"], dir: dir)
        Harness.assertOneErrorLine(withACL, status: 1, "list in a directory with an access ACL")
        XCTAssertTrue(withACL.stderr.contains("has an access ACL"), withACL.stderr)
        let unset = try Harness.run("/usr/bin/python3", ["-c", "import os,sys; os.removexattr(sys.argv[1],'system.posix_acl_access')", dir])
        XCTAssertEqual(unset.status, 0, unset.stderr)
        // The owner's own private group may write (umask 002), when it is one.
        let ownGroupPrivate = getgrgid(getegid()).map { $0.pointee.gr_mem?.pointee == nil } ?? false
        XCTAssertEqual(chmod(dir, ownGroupPrivate ? 0o770 : 0o755), 0)
        let ok = try Harness.pgsnap(["backup", "-d", database, "--quiet"], dir: dir)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        // A metrics file goes wherever the collector reads, a shared directory too.
        let collector = try makeDir()
        XCTAssertEqual(chmod(collector, 0o1777), 0)
        let metrics = try Harness.pgsnap(["check", "-d", database, "--metrics-file", collector + "/pgsnap.prom"], dir: dir)
        XCTAssertEqual(metrics.status, 0, metrics.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: collector + "/pgsnap.prom"))
    }

    /// DATABASE_URL, the default connection pgsnap reads (its password inside), reaches no child:
    /// pg_dump gets the password through the private passfile, as for PGPASSWORD.
    func testDatabaseURLWithItsPasswordReachesNoChild() throws {
        let url = "postgres://\(Self.role):\(Self.encodedPassword)@127.0.0.1:\(Harness.tcpPort)/\(database)"
        let (r, seen) = try runWatchingChildren(["backup"], dir: try makeDir(),
                                                env: ["DATABASE_URL": url, "PGDATABASE": nil, "PGPASSWORD": nil])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(seen.sawDumpingPgDump, "never observed pg_dump running; children seen: \(seen.argvs)")
        for (argv, environment) in zip(seen.argvs, seen.environments) {
            XCTAssertFalse(environment.contains { $0.hasPrefix("DATABASE_URL=") }, "\(argv.prefix(2)) got DATABASE_URL")
            XCTAssertFalse(environment.joined(separator: "\n").contains(Self.encodedPassword), "\(argv.prefix(2)) got the password")
        }
        XCTAssertFalse(r.stderr.contains(Self.encodedPassword), r.stderr)
    }

    /// Notification URLs hold tokens: no child sees them (argv or environment), nothing printed
    /// or written holds them, and the receiver still gets its pings.
    func testNotifyTokensReachNoChildAndNoFile() throws {
        let token = "n0tify-t0ken-\(UUID().uuidString.prefix(8))"
        let rx = try NotifyReceiver()
        defer { rx.stop() }
        let dir = try makeDir()
        let (r, seen) = try runWatchingChildren(
            ["backup", "-h", "127.0.0.1", "-p", Harness.tcpPort, "-U", Self.role, "-d", database, "--notify", "json+\(rx.base)/hook/\(token)"],
            dir: dir, env: ["PGPASSWORD": Self.password, "PGSNAP_NOTIFY": "\(rx.base)/ping/\(token)",
                            "PGSNAP_BACKUP_NOTIFY": "json+\(rx.base)/own/\(token)"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(seen.sawDumpingPgDump, "never observed pg_dump running; children seen: \(seen.argvs)")
        for (argv, environment) in zip(seen.argvs, seen.environments) {
            XCTAssertFalse(argv.joined(separator: " ").contains(token), "child argv \(argv.prefix(2)) holds the notify token")
            XCTAssertFalse(environment.joined(separator: "\n").contains(token), "the environment of \(argv.prefix(2)) holds the notify token")
        }
        XCTAssertFalse(r.stdout.contains(token) || r.stderr.contains(token), r.stdout + r.stderr)
        for f in Harness.entries(dir) {
            XCTAssertNil(try Harness.bytes(dir + "/" + f).range(of: Data(token.utf8)), "\(f) holds the notify token")
        }
        // --notify, PGSNAP_BACKUP_NOTIFY and PGSNAP_NOTIFY add up: all were told.
        XCTAssertEqual(rx.requests.map(\.path).sorted(), ["/hook/\(token)", "/own/\(token)", "/ping/\(token)", "/ping/\(token)/start"])
    }

    /// The S3 secret and session token in pgsnap's environment (for --push, --remote) reach no
    /// child: pgsnap talks to the bucket itself.
    func testS3SecretsReachNoChild() throws {
        let secret = "s3-s3cret-\(UUID().uuidString.prefix(8))", token = "s3-t0ken-\(UUID().uuidString.prefix(8))"
        let dir = try makeDir()
        let (r, seen) = try runWatchingChildren(
            ["backup", "-h", "127.0.0.1", "-p", Harness.tcpPort, "-U", Self.role, "-d", database], dir: dir,
            env: ["PGPASSWORD": Self.password, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(seen.sawDumpingPgDump, "never observed pg_dump running; children seen: \(seen.argvs)")
        for (argv, environment) in zip(seen.argvs, seen.environments) {
            let all = (argv + environment).joined(separator: "\n")
            XCTAssertFalse(all.contains(secret) || all.contains(token), "\(argv.prefix(2)) was given the S3 secret or token")
        }
    }

    /// sslpassword (a client key's passphrase) is kept apart like the password: children get a
    /// 0600 service file naming it, never argv or environ; guard's printed command leaves it out.
    func testSSLPasswordReachesNoChildsArgvOrEnviron() throws {
        let sslSecret = "k3y-pass-\(UUID().uuidString.prefix(8))"
        let dir = try makeDir()
        let (r, seen) = try runWatchingChildren(
            ["backup", "-h", "127.0.0.1", "-p", Harness.tcpPort, "-U", Self.role, "-d", "dbname=\(database) sslpassword=\(sslSecret)"], dir: dir,
            env: ["PGPASSWORD": Self.password])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(seen.sawDumpingPgDump, "never observed pg_dump running; children seen: \(seen.argvs)")
        var serviceFiles = Set<String>()
        for (argv, environment) in zip(seen.argvs, seen.environments) {
            let all = (argv + environment).joined(separator: "\n")
            XCTAssertFalse(all.contains(sslSecret), "\(argv.prefix(2)) was given sslpassword in argv or environ")
            if argv.contains(where: { $0.hasPrefix("--snapshot") }) {
                XCTAssertTrue(argv.contains { $0.contains("service=pgsnap") }, "\(argv)")
                if let p = environment.first(where: { $0.hasPrefix("PGSERVICEFILE=") }) { serviceFiles.insert(String(p.dropFirst("PGSERVICEFILE=".count))) }
            }
        }
        XCTAssertEqual(serviceFiles.count, 1, "the dumping pg_dump has no PGSERVICEFILE")
        for p in serviceFiles { XCTAssertFalse(FileManager.default.fileExists(atPath: p), "service file \(p) left behind") }
        XCTAssertFalse(r.stderr.contains(sslSecret) || r.stdout.contains(sslSecret), r.stderr)

        // With a service of the connection's own, pgsnap's cannot be added (libpq reads one): it
        // is refused before anything runs (sslpassword went on the children's command lines).
        let both = try Harness.pgsnap(["backup", "-d", "service=pgsnap_test_nosuch dbname=\(database) sslpassword=\(sslSecret)"], dir: dir)
        Harness.assertOneErrorLine(both, status: 64, "a service and sslpassword")
        XCTAssertTrue(both.stderr.contains("pg_service.conf"), both.stderr)
        XCTAssertFalse(both.stderr.contains(sslSecret), both.stderr)
    }
}
