import Foundation
import XCTest

/// Encryption at rest with the real `age` and `age-keygen`: keys are made in the test's own
/// directory, snapshots are encrypted to them, and every way of reading one back is tried.
final class EncryptionTests: XCTestCase {
    var fixture: RestoreFixture!
    var keyDir: String!

    /// A marker no compressed or encrypted stream would hold by chance: it must not be in the stored file.
    static let marker = "plaintext-marker-7f3a9c-customer-record"

    override func setUpWithError() throws {
        fixture = try RestoreFixture()
        keyDir = try Harness.tempDir()
        chmod(keyDir, 0o700)
    }

    override func tearDown() {
        fixture.cleanUp()
        try? FileManager.default.removeItem(atPath: keyDir)
    }

    struct Key {
        var identity: String
        var recipient: String
        var secret: String
    }

    /// `age-keygen -o FILE`, then the public key from `age-keygen -y FILE`.
    func makeKey(_ name: String) throws -> Key {
        let path = keyDir + "/" + name + ".txt"
        let gen = try Harness.run(Self.tool("age-keygen"), ["-o", path])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        chmod(path, 0o600)
        let pub = try Harness.run(Self.tool("age-keygen"), ["-y", path])
        XCTAssertEqual(pub.status, 0, pub.stderr)
        let secret = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("AGE-SECRET-KEY-") }
        XCTAssertNotNil(secret, "age-keygen wrote no secret key")
        return Key(identity: path, recipient: pub.stdout.trimmingCharacters(in: .whitespacesAndNewlines), secret: String(secret ?? "?"))
    }

    /// The tool in PATH; a missing one fails the test (scripts/lib/deps.sh installs age).
    static func tool(_ name: String) -> String {
        for dir in (Harness.env["PATH"] ?? "").split(separator: ":") where access("\(dir)/\(name)", X_OK) == 0 {
            return "\(dir)/\(name)"
        }
        XCTFail("\(name) is not in PATH: scripts/lib/deps.sh installs the age package")
        return "/nonexistent/\(name)"
    }

    /// A small database with a row that can be searched for in the stored file.
    func makeDatabase(_ prefix: String, rows: Int = 3000) throws -> String {
        let db = try fixture.database(prefix)
        try Torture.fill(db, rows: rows)
        try Harness.psql(db, "CREATE TABLE customer (id int, note text); INSERT INTO customer VALUES (1, '\(Self.marker)')")
        return db
    }

    func encryptedBackup(_ db: String, to keys: [Key], extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try fixture.pgsnap(["backup", "-d", db] + keys.flatMap { ["--encrypt-to", $0.recipient] } + extra)
        XCTAssertEqual(r.status, 0, "encrypted backup failed: \(r.stderr)", file: file, line: line)
        return Harness.snapshotID(r)
    }

    // MARK: Backup and restore

    func testTwoRecipientsEachIdentityAloneRestoresExactly() throws {
        let (alice, bob) = (try makeKey("alice"), try makeKey("bob"))
        let db = try makeDatabase("enc")
        let id = try encryptedBackup(db, to: [alice, bob])
        let stored = fixture.dir + "/" + id + ".sql.gz.age"
        XCTAssertEqual(try fixture.dumpPath(id), stored, "stored name")
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.dir + "/" + id + ".sql.gz"), "no plaintext dump beside it")
        XCTAssertEqual(Harness.permissions(stored), 0o600)

        let m = try Harness.manifest(dir: fixture.dir, id: id)
        let encryption = m["encryption"] as? [String: Any]
        XCTAssertEqual(encryption?["tool"] as? String, "age")
        XCTAssertEqual(encryption?["recipients"] as? [String], [alice.recipient, bob.recipient])
        XCTAssertEqual(m["sha256"] as? String, try Harness.sha256sum(stored), "checksum is of the stored file")
        XCTAssertEqual((m["compressed_bytes"] as? NSNumber)?.int64Value, try Harness.fileSize(stored))
        let rows = m["table_rows"] as? [String: Any]
        XCTAssertEqual((rows?["public.big"] as? NSNumber)?.intValue, 3000, "row counts are of the plaintext")
        XCTAssertEqual((rows?["public.customer"] as? NSNumber)?.intValue, 1)

        let bytes = try Harness.bytes(stored)
        XCTAssertTrue(bytes.starts(with: Data("age-encryption.org/v1\n".utf8)), "stored file must be age's format")
        XCTAssertFalse(bytes.starts(with: Data([0x1f, 0x8b])), "stored file must not be gzip")
        XCTAssertNil(bytes.range(of: Data(Self.marker.utf8)), "a plaintext row is in the stored file")
        let listed = try Torture.list(fixture.dir)
        XCTAssertEqual(listed.first { $0.id == id }?.status, "good", "list treats an encrypted snapshot as any other")

        let expected = try Harness.fingerprint(db)
        for key in [alice, bob] {
            let target = db + "_" + String(key.identity.dropLast(4).split(separator: "/").last!)
            fixture.track(database: target)
            let r = try fixture.pgsnap(["restore", id, "--target", target, "--identity", key.identity])
            XCTAssertEqual(r.status, 0, "restore with \(key.identity): \(r.stderr)")
            XCTAssertEqual(try Harness.fingerprint(target), expected, "restored with \(key.identity) alone")
        }
    }

    func testRestoreWithoutIdentityIsAUsageErrorNamingTheRecipients() throws {
        let (alice, bob) = (try makeKey("alice"), try makeKey("bob"))
        let db = try makeDatabase("enc")
        let id = try encryptedBackup(db, to: [alice, bob])
        let before = try Harness.fingerprint(db)
        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes"], env: ["PGSNAP_AGE_IDENTITY": nil])
        Harness.assertOneErrorLine(r, status: 64, "restore without identity")
        XCTAssertTrue(r.stderr.contains(alice.recipient) && r.stderr.contains(bob.recipient), "must name the recipients: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("--identity"), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before)
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])

        // PGSNAP_AGE_IDENTITY does what --identity does.
        let copy = db + "_env"
        fixture.track(database: copy)
        let e = try fixture.pgsnap(["restore", id, "--target", copy], env: ["PGSNAP_AGE_IDENTITY": bob.identity])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertEqual(try Harness.fingerprint(copy), before)
    }

    func testRestoringByHandWithAgeZcatPsql() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("hand")
        let id = try encryptedBackup(db, to: [key])
        let copy = db + "_byhand"
        fixture.track(database: copy)
        try Harness.psql("postgres", "CREATE DATABASE \"\(copy)\" TEMPLATE template0")
        // Exactly the README's pipeline, as a person would type it.
        let line = "age -d -i '\(key.identity)' '\(try fixture.dumpPath(id))' | zcat | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d '\(copy)'"
        let r = try Harness.run("/bin/bash", ["-o", "pipefail", "-c", line])
        XCTAssertEqual(r.status, 0, "by hand: \(r.stderr)")
        XCTAssertEqual(try Harness.fingerprint(copy), try Harness.fingerprint(db))
    }

    /// Role password hashes are secrets: with --encrypt-to the globals are encrypted like the
    /// dump, verify checks them, and age gives the SQL back by hand.
    func testGlobalsAreEncryptedWithTheDump() throws {
        let key = try makeKey("roles")
        let db = try makeDatabase("encg")
        let role = fixture.role("encg")
        try Harness.psql("postgres", "CREATE ROLE \"\(role)\" LOGIN PASSWORD 'pw-7f3a9c-never-stored-plain'")
        let id = try encryptedBackup(db, to: [key], extra: ["--globals"])
        let m = try Harness.manifest(dir: fixture.dir, id: id)
        XCTAssertEqual(m["globals_file"] as? String, id + ".globals.sql.age")
        let stored = try Harness.bytes(fixture.dir + "/" + id + ".globals.sql.age")
        XCTAssertTrue(stored.starts(with: Data("age-encryption.org/v1\n".utf8)), "not age-encrypted")
        XCTAssertNil(stored.range(of: Data(role.utf8)), "the role name is readable in the stored globals")
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.dir + "/" + id + ".globals.sql"))
        XCTAssertEqual(Harness.permissions(fixture.dir + "/" + id + ".globals.sql.age"), 0o600)

        let plain = try Harness.run(Self.tool("age"), ["-d", "-i", key.identity, fixture.dir + "/" + id + ".globals.sql.age"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stdout.contains("CREATE ROLE \(role)") && plain.stdout.contains("SCRAM-SHA-256$"), plain.stdout)

        let verify = try fixture.pgsnap(["verify", id, "--identity", key.identity, "--json"])
        XCTAssertEqual(verify.status, 0, verify.stderr)
        // Damaged globals are caught by their checksum, as plain ones are.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: fixture.dir + "/" + id + ".globals.sql.age"))
        try handle.seek(toOffset: UInt64(stored.count - 5))
        try handle.write(contentsOf: Data([0x00, 0x01, 0x02]))
        try handle.close()
        let damaged = try fixture.pgsnap(["verify", id, "--json"])
        XCTAssertEqual(damaged.status, 2, damaged.stderr)
        XCTAssertTrue(damaged.stdout.contains("globals"), damaged.stdout)
    }

    // MARK: Verify

    func testVerifyWithAndWithoutIdentity() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("ver")
        let id = try encryptedBackup(db, to: [key])

        let without = try fixture.pgsnap(["verify", id])
        XCTAssertEqual(without.status, 0, without.stderr)
        let lines = without.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(without.stderr)")
        XCTAssertTrue(without.stderr.contains("contents NOT checked"), without.stderr)
        XCTAssertTrue(without.stderr.contains("1 X25519 stanza(s) for 1 age1 recipient(s)"), without.stderr)
        let json = Harness.verifyResults(try fixture.pgsnap(["verify", id, "--json"]))
        XCTAssertEqual(json.first?["contents_checked"] as? Bool, false)
        XCTAssertEqual(json.first?["ok"] as? Bool, true)

        let with = try fixture.pgsnap(["verify", id, "--identity", key.identity, "--json"])
        XCTAssertEqual(with.status, 0, with.stderr)
        let full = Harness.verifyResults(with)
        XCTAssertEqual(full.first?["ok"] as? Bool, true)
        XCTAssertNil(full.first?["contents_checked"], "with the identity the contents are checked")
        XCTAssertEqual((full.first?["rows"] as? NSNumber)?.intValue, 3002, "rows recounted from the decrypted dump")

        // verify --restore-test decrypts as restore does.
        let rt = try fixture.pgsnap(["verify", id, "--restore-test", "--identity", key.identity])
        XCTAssertEqual(rt.status, 0, rt.stderr)
        XCTAssertTrue(rt.stderr.contains("restore-tested"), rt.stderr)
        let rtWithout = try fixture.pgsnap(["verify", id, "--restore-test"])
        Harness.assertOneErrorLine(rtWithout, status: 64, "restore test without identity")
    }

    /// SIGTERM while verify decrypts (age running): exit 130 and one line saying there is no
    /// verdict on the snapshot. It said "FAILED ...: decryption check failed" and "take a new
    /// backup" of a snapshot that is fine, which the next verify shows.
    func testAnInterruptedVerifyGivesNoVerdict() throws {
        let db = try makeDatabase("encintr", rows: 600_000)
        let key = try makeKey("intr")
        let id = try encryptedBackup(db, to: [key])
        var terminated = false
        let r = try fixture.pgsnap(["verify", id, "--identity", key.identity]) { pid in
            let decrypting = Harness.poll(timeout: 60) {
                !Procfs.isAlive(pid) || Procfs.descendants(of: pid).contains { $0.comm == "age" }
            }
            if decrypting && Procfs.isAlive(pid) { terminated = kill(pid, SIGTERM) == 0 }
        }
        XCTAssertTrue(terminated, "never saw age running: \(r.stderr)")
        Harness.assertOneErrorLine(r, status: 130, "verify interrupted")
        XCTAssertTrue(r.stderr.contains("verify interrupted while checking \(id): no verdict on it"), r.stderr)
        XCTAssertFalse(r.stderr.contains("FAILED") || r.stderr.contains("take a new backup"), r.stderr)
        let again = try fixture.pgsnap(["verify", id, "--identity", key.identity])
        XCTAssertEqual(again.status, 0, again.stderr)
    }

    func testVerifyWithoutIdentityCatchesAHeaderForOtherKeys() throws {
        let (alice, bob) = (try makeKey("alice"), try makeKey("bob"))
        let db = try makeDatabase("hdr", rows: 100)
        let id = try encryptedBackup(db, to: [alice])
        // A manifest that claims two recipients for a file encrypted to one: size and checksum
        // still match, the header does not.
        let path = Harness.manifestPath(dir: fixture.dir, id: id)
        var m = try Harness.manifest(dir: fixture.dir, id: id)
        m["encryption"] = ["tool": "age", "recipients": [alice.recipient, bob.recipient]]
        try Harness.writeJSON(m, to: path)
        let r = try fixture.pgsnap(["verify", id])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("header check failed"), r.stderr)
        XCTAssertTrue(r.stderr.contains("1 X25519 stanza(s), the manifest lists 2"), r.stderr)
    }

    func testWrongIdentityExitsOneAndChangesNothing() throws {
        let (alice, mallory) = (try makeKey("alice"), try makeKey("mallory"))
        let db = try makeDatabase("wrong")
        let id = try encryptedBackup(db, to: [alice])
        let before = try Harness.fingerprint(db)
        let expected = "no identity in \(mallory.identity) matches the snapshot's recipients (\(alice.recipient))"

        let v = try fixture.pgsnap(["verify", id, "--identity", mallory.identity])
        Harness.assertOneErrorLine(v, status: 1, "verify with a wrong identity")
        XCTAssertTrue(v.stderr.contains(expected), v.stderr)

        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--identity", mallory.identity])
        Harness.assertOneErrorLine(r, status: 1, "restore with a wrong identity")
        XCTAssertTrue(r.stderr.contains(expected), r.stderr)
        XCTAssertEqual(try Harness.fingerprint(db), before, "target untouched")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// An identity file age cannot use at all (garbage, a public key given as the identity): the
    /// key's problem, exit 1 before anything is created; never "the snapshot failed" (exit 2),
    /// and nothing written into the manifest (verify --restore-test marked it failed).
    func testAnUnusableIdentityIsTheKeysProblemNotTheSnapshots() throws {
        let alice = try makeKey("alice")
        let db = try makeDatabase("unusable")
        let id = try encryptedBackup(db, to: [alice])
        let before = try Harness.fingerprint(db)
        let manifest = try Data(contentsOf: URL(fileURLWithPath: Harness.manifestPath(dir: fixture.dir, id: id)))
        let garbage = try Harness.tempDir() + "/garbage.txt"
        let publicOnly = try Harness.tempDir() + "/public.txt"
        try Data("not a key\n".utf8).write(to: URL(fileURLWithPath: garbage))
        try Data((alice.recipient + "\n").utf8).write(to: URL(fileURLWithPath: publicOnly))
        for path in [garbage, publicOnly] {
            chmod(path, 0o600)
            for args in [["verify", id, "--restore-test"], ["restore", id, "-d", db, "--yes"]] {
                let r = try fixture.pgsnap(args + ["--identity", path])
                Harness.assertOneErrorLine(r, status: 1, "\(args[0]) with \(path)")
                XCTAssertTrue(r.stderr.contains("age cannot use the identity in \(path)"), r.stderr)
                XCTAssertFalse(r.stderr.contains("FAILED") || r.stderr.contains("corrupt"), r.stderr)
            }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: Harness.manifestPath(dir: fixture.dir, id: id))), manifest)
        XCTAssertEqual(try Harness.fingerprint(db), before, "target untouched")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    func testGroupReadableIdentityIsRefused() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("perm", rows: 100)
        let id = try encryptedBackup(db, to: [key])
        chmod(key.identity, 0o640)
        for args in [["restore", id, "-d", db, "--yes"], ["verify", id]] {
            let r = try fixture.pgsnap(args + ["--identity", key.identity])
            Harness.assertOneErrorLine(r, status: 64, "\(args[0]) with a group-readable identity")
            XCTAssertTrue(r.stderr.contains("readable by group or others"), r.stderr)
            XCTAssertTrue(r.stderr.contains("chmod 600 \(key.identity)"), r.stderr)
            XCTAssertFalse(r.stderr.contains(key.secret), "the identity's contents in a message")
        }
    }

    // MARK: Every command that reads a snapshot takes the identity alike

    /// diff reads the manifest (table rows, migration) and needs no key; given one, it is held to
    /// the same rules as verify and restore: the right key works, by option or PGSNAP_AGE_IDENTITY;
    /// a wrong or missing key is exit 1, one line, and nothing is read or printed.
    func testDiffWithTheRightTheWrongAndAMissingKey() throws {
        let (alice, mallory) = (try makeKey("alice"), try makeKey("mallory"))
        let db = try makeDatabase("diff", rows: 100)
        let id = try encryptedBackup(db, to: [alice])
        try Harness.psql(db, "INSERT INTO customer VALUES (2, 'second')")

        func customerChange(_ r: Harness.Result, _ what: String) -> String? {
            XCTAssertEqual(r.status, 0, "\(what): \(r.stderr)")
            let report = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
            XCTAssertEqual(report?["snapshot"] as? String, id, "\(what): \(r.stdout)")
            let tables = report?["tables"] as? [[String: Any]] ?? []
            return tables.first { $0["table"] as? String == "public.customer" }?["change"] as? String
        }
        XCTAssertEqual(customerChange(try fixture.pgsnap(["diff", id, "-d", db, "--identity", alice.identity, "--json"]), "--identity"), "+1 rows")
        XCTAssertEqual(customerChange(try fixture.pgsnap(["diff", id, "-d", db, "--json"], env: ["PGSNAP_AGE_IDENTITY": alice.identity]),
                                      "PGSNAP_AGE_IDENTITY"), "+1 rows")
        // No key at all: the manifest is not encrypted, so diff works as for a plain snapshot.
        XCTAssertEqual(customerChange(try fixture.pgsnap(["diff", id, "-d", db, "--json"], env: ["PGSNAP_AGE_IDENTITY": nil]), "no key"), "+1 rows")

        let expected = "no identity in \(mallory.identity) matches the snapshot's recipients (\(alice.recipient))"
        for (args, env, what) in [(["--identity", mallory.identity], [String: String?](), "wrong key by option"),
                                  ([], ["PGSNAP_AGE_IDENTITY": mallory.identity], "wrong key by environment")] {
            let r = try fixture.pgsnap(["diff", id, "-d", db] + args, env: env)
            Harness.assertOneErrorLine(r, status: 1, "diff, \(what)")
            XCTAssertTrue(r.stderr.contains(expected), "\(what): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(what): nothing may be printed")
        }
        let missing = keyDir + "/missing.txt"
        for (args, env, what) in [(["--identity", missing], [String: String?](), "missing key file by option"),
                                  ([], ["PGSNAP_AGE_IDENTITY": missing], "missing key file by environment")] {
            let r = try fixture.pgsnap(["diff", id, "-d", db] + args, env: env)
            Harness.assertOneErrorLine(r, status: 1, "diff, \(what)")
            XCTAssertTrue(r.stderr.contains("cannot read identity file \(missing)"), "\(what): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(what): nothing may be printed")
        }
    }

    /// The same key errors from every command that reads a snapshot: a wrong key is exit 1 naming
    /// the recipients, a missing key file exit 1, a group-readable one exit 64; one line each, and
    /// nothing downloaded, restored or printed.
    func testEveryCommandThatReadsASnapshotTreatsTheKeyAlike() throws {
        let (alice, mallory) = (try makeKey("alice"), try makeKey("mallory"))
        let db = try makeDatabase("keys", rows: 100)
        let id = try encryptedBackup(db, to: [alice])
        let (remote, _) = S3Harness.newRemote()
        let s3 = S3Harness.env(remote: remote)
        let push = try fixture.pgsnap(["push", id, "--quiet"], env: s3)
        XCTAssertEqual(push.status, 0, push.stderr)
        let empty = keyDir + "/pulled"
        let target = db + "_copy"
        fixture.track(database: target)
        let before = try Harness.fingerprint(db)

        let commands: [(args: [String], env: [String: String?], dir: String?)] = [
            (["show", id], [:], nil), (["diff", id, "-d", db], [:], nil), (["verify", id], [:], nil),
            (["restore", id, "-d", db, "--yes"], [:], nil), (["preflight", "-d", db], [:], nil),
            (["pull", id], s3, empty), (["restore", id, "--target", target, "--remote"], s3, empty), (["verify", id, "--remote"], s3, empty),
        ]
        let wrong = "no identity in \(mallory.identity) matches the snapshot's recipients (\(alice.recipient))"
        let missing = keyDir + "/missing.txt"
        let loose = keyDir + "/loose.txt"
        try FileManager.default.copyItem(atPath: alice.identity, toPath: loose)
        chmod(loose, 0o644)
        for c in commands {
            for (key, status, text) in [(mallory.identity, Int32(1), wrong), (missing, 1, "cannot read identity file \(missing)"),
                                        (loose, 64, "chmod 600 \(loose)")] {
                let what = "\(c.args.joined(separator: " ")) --identity \(key)"
                let r = c.dir.map { try? Harness.pgsnap(c.args + ["--identity", key], dir: $0, env: c.env) }
                    ?? (try? fixture.pgsnap(c.args + ["--identity", key], env: c.env))
                guard let r else { return XCTFail("\(what) did not run") }
                Harness.assertOneErrorLine(r, status: status, what)
                XCTAssertTrue(r.stderr.contains(text), "\(what): \(r.stderr)")
                XCTAssertEqual(r.stdout, "", "\(what): nothing may be printed")
                XCTAssertFalse(r.stderr.contains(alice.secret) || r.stderr.contains(mallory.secret), "\(what): key material in a message")
            }
        }
        XCTAssertEqual(Harness.snapshotFiles(empty), [], "a refused key must not download anything")
        XCTAssertEqual(try Harness.fingerprint(db), before, "restore with a refused key changed the database")
        XCTAssertFalse(try RestoreFixture.exists(target), "restore --remote with a refused key created the target")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])

        // The right key: each of them works.
        for c in commands where c.args[0] != "restore" {
            let r = c.dir.map { try? Harness.pgsnap(c.args + ["--identity", alice.identity], dir: $0, env: c.env) }
                ?? (try? fixture.pgsnap(c.args + ["--identity", alice.identity], env: c.env))
            XCTAssertEqual(r?.status, 0, "\(c.args.joined(separator: " ")) with the right key: \(r?.stderr ?? "did not run")")
        }
        let pre = try fixture.pgsnap(["preflight", "-d", db, "--identity", alice.identity])
        XCTAssertTrue(pre.stderr.contains("identity") && pre.stderr.contains(id), "preflight says which snapshot the key opened: \(pre.stderr)")
    }

    /// guard encrypts like backup; the key that would roll the database back is proven before the
    /// migration runs, and the automatic restore reads the encrypted snapshot with it.
    func testGuardEncryptsAndProvesTheKeyBeforeTheCommandRuns() throws {
        let (alice, mallory) = (try makeKey("alice"), try makeKey("mallory"))
        let db = try makeDatabase("guard", rows: 100)
        let marker = keyDir + "/command-ran"
        let before = try Harness.fingerprint(db)

        // A wrong key: exit 1 after the backup, before the command.
        let wrong = try fixture.pgsnap(["guard", "-d", db, "--quiet", "--encrypt-to", alice.recipient, "--identity", mallory.identity, "--",
                                        "/usr/bin/touch", marker])
        Harness.assertOneErrorLine(wrong, status: 1, "guard with a wrong key")
        XCTAssertTrue(wrong.stderr.contains("no identity in \(mallory.identity) matches"), wrong.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the command ran with an unproven key")

        // --auto-restore of an encrypted snapshot without a key: a usage error before anything is done.
        let snapshots = Harness.snapshotFiles(fixture.dir)
        let noKey = try fixture.pgsnap(["guard", "-d", db, "--quiet", "--encrypt-to", alice.recipient, "--auto-restore", "--", "/usr/bin/touch", marker],
                                       env: ["PGSNAP_AGE_IDENTITY": nil])
        Harness.assertOneErrorLine(noKey, status: 64, "guard --auto-restore without a key")
        XCTAssertTrue(noKey.stderr.contains("--identity"), noKey.stderr)
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), snapshots, "nothing may be backed up")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))

        // The right key: the snapshot is encrypted, a failing command is rolled back from it.
        let psql = Harness.pgbin + "/psql"
        let r = try fixture.pgsnap(["guard", "-d", db, "--encrypt-to", alice.recipient, "--identity", alice.identity, "--auto-restore",
                                    "--", psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", "DELETE FROM customer", "-c", "SELECT 1/0"])
        XCTAssertEqual(r.status, 4, "the command failed and the database was restored: \(r.stderr)")
        XCTAssertEqual(try Harness.fingerprint(db), before, "restored from the encrypted snapshot")
        let encrypted = Harness.snapshotFiles(fixture.dir).filter { $0.hasSuffix(".sql.gz.age") }
        XCTAssertFalse(encrypted.isEmpty, "guard's snapshot is encrypted: \(Harness.snapshotFiles(fixture.dir))")
        XCTAssertFalse(Harness.snapshotFiles(fixture.dir).contains { $0.hasSuffix(".sql.gz") }, "no plaintext snapshot beside it")
    }

    // MARK: Damage

    /// Flipped byte and truncation: exit 2 from verify (with and without identity) and restore, target untouched.
    func testChangedOrTruncatedCiphertextIsCaught() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("dmg", rows: 20000)
        let id = try encryptedBackup(db, to: [key])
        let stored = try fixture.dumpPath(id)
        let good = try Harness.bytes(stored)
        let manifestPath = Harness.manifestPath(dir: fixture.dir, id: id)
        let goodManifest = try Harness.bytes(manifestPath)
        let before = try Harness.fingerprint(db)

        var flipped = good
        flipped[good.count / 2] ^= 0x01
        let truncated = good.prefix(good.count - 1000)
        for (name, damaged, consistentManifest) in [("flipped byte", flipped, false), ("truncated", Data(truncated), false),
                                                    ("flipped byte, manifest rewritten to match", flipped, true)] {
            try damaged.write(to: URL(fileURLWithPath: stored))
            try goodManifest.write(to: URL(fileURLWithPath: manifestPath))
            if consistentManifest {
                // Someone who can write the directory: size and SHA-256 agree, so only age's authentication can tell.
                var m = try Harness.manifest(dir: fixture.dir, id: id)
                m["sha256"] = try Harness.sha256sum(stored)
                m["compressed_bytes"] = damaged.count
                try Harness.writeJSON(m, to: manifestPath)
            }
            let v = try fixture.pgsnap(["verify", id, "--identity", key.identity])
            XCTAssertEqual(v.status, 2, "\(name): verify with identity: \(v.stderr)")
            if consistentManifest {
                XCTAssertTrue(v.stderr.contains("decryption check failed"), "\(name): \(v.stderr)")
                XCTAssertTrue(v.stderr.contains("failed to decrypt and authenticate"), "\(name): age's own reason: \(v.stderr)")
            } else {
                let w = try fixture.pgsnap(["verify", id])
                XCTAssertEqual(w.status, 2, "\(name): verify without identity: \(w.stderr)")
            }
            let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--quiet", "--terminate-connections", "--identity", key.identity])
            Harness.assertOneErrorLine(r, status: 2, "\(name): restore")
            XCTAssertEqual(try Harness.fingerprint(db), before, "\(name): target untouched")
            XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "\(name): no swap happened")
            XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "\(name): scratch database dropped")
        }
    }

    // MARK: Bad input and a missing tool

    /// A malformed key on the command line is a usage error (64); what the machine holds (the
    /// recipients variable, a recipients file) is a failed run (1), which a nightly job's
    /// notification reports. Either way before anything is written.
    func testBadRecipientsAreRefusedBeforeAnythingIsWritten() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("rcp", rows: 10)
        let dir = fixture.dir + "/never-created"
        let typo = String(key.recipient.dropLast()) + (key.recipient.last == "q" ? "p" : "q")
        let empty = keyDir + "/only-comments.txt"
        try "# nobody yet\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let cases: [([String], [String: String?], String, Int32)] = [
            (["--encrypt-to", typo], [:], "not a valid age public key", 64),
            (["--encrypt-to", "ssh-ed25519 AAAAnotakey"], [:], "not a valid ssh-ed25519", 64),
            (["--encrypt-to", key.secret], [:], "not a recipient", 64),
            ([], ["PGSNAP_AGE_RECIPIENTS": "\(key.recipient),age1nope"], "PGSNAP_AGE_RECIPIENTS", 1),
            (["--encrypt-to-file", keyDir + "/missing.txt"], [:], "cannot read recipients file", 1),
            (["--encrypt-to-file", keyDir], [:], "cannot read recipients file", 1),
            (["--encrypt-to-file", empty], [:], "holds no recipient", 1),
        ]
        for (args, env, what, status) in cases {
            let r = try Harness.pgsnap(["backup", "-d", db] + args, dir: dir, env: env)
            Harness.assertOneErrorLine(r, status: status, what)
            XCTAssertTrue(r.stderr.contains(what), "\(what): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains(key.secret), "a secret key echoed back: \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "\(what): the backup directory was created")
        }
    }

    func testRecipientsFileAndEnvironment() throws {
        let (alice, bob) = (try makeKey("alice"), try makeKey("bob"))
        let db = try makeDatabase("rfile", rows: 10)
        let file = keyDir + "/recipients.txt"
        try "# ops team\n\(alice.recipient)\n\n  # backup key\n\(bob.recipient)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let a = try fixture.pgsnap(["backup", "-d", db, "--encrypt-to-file", file])
        XCTAssertEqual(a.status, 0, a.stderr)
        let ma = try Harness.manifest(dir: fixture.dir, id: Harness.snapshotID(a))
        XCTAssertEqual((ma["encryption"] as? [String: Any])?["recipients"] as? [String], [alice.recipient, bob.recipient])

        let b = try fixture.pgsnap(["backup", "-d", db], env: ["PGSNAP_AGE_RECIPIENTS": "\(bob.recipient), \(alice.recipient)"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let idB = Harness.snapshotID(b)
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.dir + "/" + idB + ".sql.gz.age"))
        let mb = try Harness.manifest(dir: fixture.dir, id: idB)
        XCTAssertEqual((mb["encryption"] as? [String: Any])?["recipients"] as? [String], [bob.recipient, alice.recipient])

        // zstd and none get .age after their own suffix.
        for (compress, suffix) in [("zstd", ".sql.zst.age"), ("none", ".sql.age")] {
            let r = try fixture.pgsnap(["backup", "-d", db, "--compress", compress, "--encrypt-to", alice.recipient])
            XCTAssertEqual(r.status, 0, r.stderr)
            let id = Harness.snapshotID(r)
            XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.dir + "/" + id + suffix), "\(compress): \(Harness.entries(fixture.dir))")
            let v = try fixture.pgsnap(["verify", id, "--identity", alice.identity, "--quiet"])
            XCTAssertEqual(v.status, 0, "\(compress): \(v.stderr)")
        }
        // prune and check need no key.
        let c = try fixture.pgsnap(["check", "--max-age", "1h", "--quiet"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let p = try fixture.pgsnap(["prune", "--dry-run", "--quiet"])
        XCTAssertEqual(p.status, 0, p.stderr)
    }

    func testAgeMissingFromPathFailsBeforeAnythingIsWritten() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("noage", rows: 10)
        let dir = fixture.dir + "/never-created"
        // pg_dump is still found (pgsnap also looks in /usr/lib/postgresql/<major>/bin); age is not.
        let r = try Harness.pgsnap(["backup", "-d", db, "--encrypt-to", key.recipient], dir: dir, env: ["PATH": "/nonexistent"])
        Harness.assertOneErrorLine(r, status: 1, "backup without age")
        XCTAssertTrue(r.stderr.contains("apt-get install age"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "nothing may be written")

        let id = try encryptedBackup(db, to: [key])
        let v = try fixture.pgsnap(["verify", id, "--identity", key.identity], env: ["PATH": "/nonexistent"])
        Harness.assertOneErrorLine(v, status: 1, "verify without age")
        XCTAssertTrue(v.stderr.contains("apt-get install age"), v.stderr)
    }

    // MARK: Faults and secrets

    func testKill9OfTheAgeChildLeavesNothingGood() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("kage", rows: 200_000)
        var killed: Int32?
        let r = try fixture.pgsnap(["backup", "-d", db, "--jobs", "1", "--quiet", "--encrypt-to", key.recipient]) { pid in
            var age: Int32?
            _ = Harness.poll(timeout: 30) {
                age = Torture.child(of: pid, named: "age", withArgument: "-r")
                return age != nil || !Procfs.isAlive(pid)
            }
            guard let age else { return }
            // Mid-stream: once age has written some of the file.
            _ = Harness.poll(timeout: 30) {
                let partial = Torture.partialFiles(self.fixture.dir).first
                return !Procfs.isAlive(pid) || (partial.flatMap { Torture.size(self.fixture.dir + "/" + $0) } ?? 0) >= 256 << 10
            }
            if kill(age, SIGKILL) == 0 { killed = age }
        }
        XCTAssertNotNil(killed, "never saw the age child mid-stream")
        Torture.inject("kill -9 age")
        Harness.assertOneErrorLine(r, status: 1, "age killed")
        XCTAssertTrue(r.stderr.contains("age failed while encrypting"), r.stderr)
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "nothing may be left")
        try Torture.assertGood(exactly: [], dir: fixture.dir, "age killed")
        XCTAssertEqual(Torture.waitUntilGone(comm: "pg_dump", mentioning: db), [], "pg_dump left running")
    }

    /// No identity, secret key or identity contents in any child's argv or environment while it runs.
    func testNoKeyMaterialInChildren() throws {
        let key = try makeKey("ops")
        let db = try makeDatabase("sec", rows: 100_000)
        var id = ""
        for (args, wantArgs) in [(["backup", "-d", db, "--jobs", "1", "--encrypt-to", key.recipient], ["-r", key.recipient]),
                                 (["restore", "latest", "-d", db, "--target", db + "_copy", "--identity", key.identity], ["-d", "-i", key.identity])] {
            if args[0] == "restore" { fixture.track(database: db + "_copy") }
            var ageArgvs: [[String]] = []
            var seen: [String] = []
            let r = try fixture.pgsnap(args) { pid in
                _ = Harness.poll(timeout: 60) {
                    guard Procfs.isAlive(pid) else { return true }
                    for child in Procfs.descendants(of: pid) {
                        guard let exe = Procfs.executable(child.pid), !exe.hasSuffix("/pgsnap"), let argv = Procfs.cmdline(child.pid), !argv.isEmpty
                        else { continue }
                        seen.append(argv.joined(separator: " ") + " " + (Procfs.environ(child.pid) ?? []).joined(separator: " "))
                        if exe.hasSuffix("/age"), !ageArgvs.contains(argv) { ageArgvs.append(argv) }
                    }
                    return false
                }
            }
            XCTAssertEqual(r.status, 0, "\(args[0]): \(r.stderr)")
            if args[0] == "backup" { id = Harness.snapshotID(r) }
            XCTAssertTrue(ageArgvs.contains { Array($0.dropFirst()) == wantArgs }, "\(args[0]): age children seen: \(ageArgvs)")
            for s in seen + [r.stdout, r.stderr] {
                XCTAssertFalse(s.contains("AGE-SECRET-KEY"), "\(args[0]): key material in a child or output: \(s.prefix(200))")
                XCTAssertFalse(s.contains(key.secret), "\(args[0]): the identity's contents")
            }
        }
        let m = try String(contentsOfFile: Harness.manifestPath(dir: fixture.dir, id: id), encoding: .utf8)
        XCTAssertFalse(m.contains("AGE-SECRET-KEY"), "key material in the manifest")
    }
}
