import Foundation
import XCTest

/// Issue 14's directory format (`backup --format directory`: pg_dump -Fd -j N, one gzip file per
/// table) end to end: the fidelity corpus through backup -> verify -> restore with exact
/// fingerprints, `restore --table`, damage inside the snapshot directory, and kill -9 of pgsnap
/// (and of pg_dump) during the dump and of pgsnap during the restore.
final class DirectoryFormatTests: CorpusTestCase {
    private static let directoryBackup = ["--format", "directory", "--jobs", "2"]

    /// Child processes a test saw outlive pgsnap, killed at tear-down if they are still there.
    private var orphans: [Int32] = []

    override func tearDown() {
        // A failed kill test may leave a pg_dump or pg_restore of ours running; the class after us must not see it.
        for pid in orphans where Procfs.isAlive(pid) { kill(pid, SIGKILL) }
        orphans = []
        super.tearDown()
    }

    // MARK: - Helpers

    /// `backup -d db --format directory --jobs 2`; returns the id.
    private func directoryBackup(_ db: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try pgsnapStep(["backup", "-d", db] + Self.directoryBackup, file: file, line: line)
        let id = Harness.snapshotID(r)
        XCTAssertTrue(id.hasPrefix(db + "_"), "unexpected snapshot id '\(id)'; stderr: \(r.stderr)", file: file, line: line)
        return id
    }

    /// The manifest's `files` entry of `table`'s data file.
    private func dataFile(of table: String, id: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let files = try Harness.manifest(dir: fixture.dir, id: id)["files"] as? [[String: Any]] ?? []
        return try XCTUnwrap(files.first { $0["table"] as? String == table }, "no data file for \(table) in the manifest: \(files)",
                             file: file, line: line)
    }

    private func snapshotPath(_ id: String) -> String { fixture.dir + "/" + id + ".dir" }

    private func scratchDatabases(ofPid pid: Int32) throws -> [String] {
        try Harness.databases(like: "pgsnap\\_scratch\\_%\\_\(pid)\\_%")
    }

    /// The `.dir.partial` directory in `dir`, if there is one.
    private static func partialDirectory(in dir: String) -> String? {
        Harness.entries(dir).first { $0.hasSuffix(".dir.partial") }
    }

    /// Size of the biggest file directly inside `path` (0 when there is none yet).
    private static func biggestFile(in path: String) -> Int64 {
        Harness.entries(path).compactMap { Torture.size(path + "/" + $0) }.max() ?? 0
    }

    /// An ordered hash of public.orders, with the row count: equal means the same rows.
    private static let ordersHash = "SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM public.orders t"

    // MARK: - 1. Fidelity

    /// backup --format directory --jobs 2 -> verify -> restore --target COPY --jobs 2: the copy has
    /// the original's exact fingerprint; the manifest describes a directory snapshot whose data
    /// files the real zcat reads.
    func testDirectoryRoundTripReproducesCorpus() throws {
        let db = try corpusDatabase("fdir")
        let original = try DatabaseFingerprint.of(db)
        let id = try directoryBackup(db)

        let m = try Harness.manifest(dir: fixture.dir, id: id)
        XCTAssertEqual(m["format_version"] as? Int, 2)
        XCTAssertEqual(m["dump_format"] as? String, "directory")
        XCTAssertEqual(m["file"] as? String, id + ".dir")
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [id + ".dir", id + ".manifest.json"], "a finished backup leaves no partial")
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: snapshotPath(id), isDirectory: &isDir) && isDir.boolValue)
        let files = m["files"] as? [[String: Any]] ?? []
        XCTAssertEqual(Set(files.compactMap { $0["name"] as? String }), Set(Harness.entries(snapshotPath(id))),
                       "the manifest lists exactly the files in \(id).dir")
        XCTAssertTrue(files.contains { $0["name"] as? String == "toc.dat" }, "\(files)")

        // The data file of public.orders, read with tools that are not pgsnap's.
        let orders = try dataFile(of: "public.orders", id: id)
        let ordersPath = snapshotPath(id) + "/" + (orders["name"] as? String ?? "?")
        XCTAssertEqual(try Harness.sha256sum(ordersPath), orders["sha256"] as? String)
        XCTAssertEqual(try Harness.fileSize(ordersPath), (orders["bytes"] as? NSNumber)?.int64Value)
        let zcat = try Harness.run("/bin/zcat", [ordersPath])
        XCTAssertEqual(zcat.status, 0, zcat.stderr)
        // pg_dump 15 ends each table's COPY data with a `\.` line and two empty lines.
        XCTAssertTrue(zcat.stdout.hasSuffix("\n\\.\n\n\n"), "unexpected end of \(ordersPath): \(zcat.stdout.suffix(40).debugDescription)")
        let newlines = zcat.stdout.utf8.filter { $0 == 0x0A }.count
        let rows = (orders["rows"] as? NSNumber)?.intValue
        XCTAssertEqual(newlines - 3, rows, "zcat's lines minus the end marker's three")
        XCTAssertEqual(rows, Int(try Harness.psql(db, "SELECT count(*) FROM public.orders")))
        XCTAssertEqual(((m["table_rows"] as? [String: Any])?["public.orders"] as? NSNumber)?.intValue, rows)

        try pgsnapStep(["verify", id])
        let copy = "\(db)_dcopy"
        fixture.track(database: copy)
        try pgsnapStep(["restore", id, "--target", copy, "-d", db, "--jobs", "2"])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(copy), original, "directory restore --target \(copy)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "the original after restore --target")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// Damage the original every way a bad migration could, restore the directory snapshot over it
    /// with --jobs 2: it is the corpus again, and the damaged one is kept aside.
    func testDirectoryRestoreOverDamagedOriginalReproducesCorpus() throws {
        let db = try corpusDatabase("fdird")
        let original = try DatabaseFingerprint.of(db)
        let id = try directoryBackup(db)
        try pgsnapStep(["verify", id])

        try damageCorpus(db)
        let damaged = try DatabaseFingerprint.of(db)
        let differing = zip(original.sections, damaged.sections).filter { $0 != $1 }.map(\.0.name)
        XCTAssertEqual(differing, ["schema", "rows", "sequences", "large objects", "database"], "the damage must show in every section it touched")

        let held = try HeldSession(database: db, applicationName: "dirformat_held")
        defer { held.close() }
        XCTAssertTrue(try held.waitUntilConnected(), "the held psql session never appeared")
        try pgsnapStep(["restore", id, "-d", db, "--yes", "--terminate-connections", "--jobs", "2"])
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "directory restore over the damaged original")
        let previous = try RestoreFixture.previousDatabases(of: db)
        XCTAssertEqual(previous.count, 1, "expected the damaged database kept aside: \(previous)")
        if let p = previous.first {
            XCTAssertEqual(try Harness.psql(p, "SELECT to_regclass('public.events_default') IS NULL"), "t", "\(p) is not the damaged database")
        }
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    // MARK: - 2. restore --table

    /// `restore ID --table public.orders --target X`: X holds exactly that table's rows, its
    /// primary key and check constraint, and no other table of the corpus; the original is unchanged.
    func testOneTableRestoreFromCorpus() throws {
        let db = try corpusDatabase("fdirt")
        // Comments and grants on names pg_dump quotes came back only for lower-case names.
        let quoted = ["\"Weird.Schema \"\"q\"\"\".\"table \"\"with\"\" quotes.and dots\"", "\"schéma ünïcødé 表\".\"tåble 表\""]
        for t in quoted {
            try Harness.psql(db, "COMMENT ON TABLE \(t) IS 'quoted'; GRANT SELECT, UPDATE ON \(t) TO PUBLIC")
        }
        let original = try DatabaseFingerprint.of(db)
        let ordersBefore = try Harness.psql(db, Self.ordersHash)
        XCTAssertTrue(ordersBefore.hasPrefix("2001 "), ordersBefore)
        let id = try directoryBackup(db)

        let target = "\(db)_orders"
        fixture.track(database: target)
        let one = try pgsnapStep(["restore", id, "--table", "public.orders", "--target", target, "-d", db])
        // Not a word about other tables' objects (identity sequences of other tables were made by
        // an ALTER TABLE of a table that is not there, and reported as errors).
        XCTAssertFalse(one.stderr.contains("pg_restore reported"), one.stderr)
        XCTAssertEqual(try Harness.psql(target, Self.ordersHash), ordersBefore, "the restored public.orders has other rows")
        XCTAssertEqual(try Harness.psql(target, """
            SELECT string_agg(conname || ':' || contype::text, ',' ORDER BY conname) FROM pg_constraint
            WHERE conrelid = 'public.orders'::regclass AND contype IN ('p', 'c')
            """), "orders_amount_check:c,orders_pkey:p", "public.orders' primary key and check constraint")
        let triggers = "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'public.orders'::regclass AND NOT tgisinternal"
        XCTAssertEqual(try Harness.psql(target, triggers), try Harness.psql(db, triggers), "public.orders' triggers")
        let idDefault = "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'public.orders'::regclass"
        XCTAssertEqual(try Harness.psql(target, idDefault), try Harness.psql(db, idDefault), "public.orders' column default")
        let sequence = "SELECT last_value || ' ' || is_called FROM public.orders_id_seq"
        XCTAssertEqual(try Harness.psql(target, sequence), try Harness.psql(db, sequence), "the state of public.orders' id sequence")
        XCTAssertEqual(try Harness.psql(target, "SELECT to_regclass('public.customers') IS NULL AND to_regclass('public.ranges') IS NULL"), "t",
                       "restore --table public.orders must not bring other tables")
        let tables = try Harness.psql(target, """
            SELECT string_agg(format('%I.%I', n.nspname, c.relname), ',' ORDER BY 1) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            """)
        XCTAssertEqual(tables, "public.orders", "the only table in \(target)")
        DatabaseFingerprint.assertEqual(try DatabaseFingerprint.of(db), original, "the original after restore --table")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])

        // Several --table at once, with the corpus's hardest names: quotes, dots, spaces, non-ASCII,
        // a leaf partition, and a table built from domains, enums, composites and an extension type.
        let odd = ["\"Weird.Schema \"\"q\"\"\".\"table \"\"with\"\" quotes.and dots\"", "\"schéma ünïcødé 表\".\"tåble 表\"",
                   "public.events_2023_click", "public.customers"]
        let several = "\(db)_several"
        fixture.track(database: several)
        let four = try pgsnapStep(["restore", id, "--target", several, "-d", db] + odd.flatMap { ["--table", $0] })
        XCTAssertFalse(four.stderr.contains("pg_restore reported"), four.stderr)
        for t in odd {
            let rows = "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ONLY \(t) x"
            let want = try Harness.psql(db, rows)
            XCTAssertFalse(want.hasPrefix("0 "), "\(t) has rows in the corpus")
            XCTAssertEqual(try Harness.psql(several, rows), want, "\(t) after restore --table")
            let described = "SELECT coalesce(obj_description('\(t.replacingOccurrences(of: "'", with: "''"))'::regclass, 'pg_class'), '-') || ' ' || coalesce(relacl::text, '-') FROM pg_class WHERE oid = '\(t.replacingOccurrences(of: "'", with: "''"))'::regclass"
            XCTAssertEqual(try Harness.psql(several, described), try Harness.psql(db, described), "\(t)'s comment and grants after restore --table")
        }
        for t in quoted { XCTAssertTrue(try Harness.psql(db, "SELECT obj_description('\(t.replacingOccurrences(of: "'", with: "''"))'::regclass, 'pg_class')") == "quoted") }
        XCTAssertEqual(try Harness.psql(several, "SELECT to_regclass('public.orders') IS NULL"), "t")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    /// Bad `restore --table` input: each a clear error before anything is created.
    func testTableRestoreRejectsBadInput() throws {
        let db = try fixture.database("fdirb")
        try Harness.psql(db, """
            CREATE TABLE public.t (id int PRIMARY KEY, v text);
            INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 50) g;
            CREATE SCHEMA other;
            CREATE TABLE public.dup (id int);
            CREATE TABLE other.dup (id int);
            CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
            CREATE TABLE mood_hash (m mood, x int) PARTITION BY HASH (m);
            CREATE TABLE mood_hash0 PARTITION OF mood_hash FOR VALUES WITH (modulus 2, remainder 0);
            CREATE TABLE mood_hash1 PARTITION OF mood_hash FOR VALUES WITH (modulus 2, remainder 1);
            INSERT INTO mood_hash SELECT (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3], g FROM generate_series(1, 30) g;
            CREATE TABLE lender (id serial PRIMARY KEY, v text);
            INSERT INTO lender (v) SELECT 'l' || g FROM generate_series(1, 7) g;
            CREATE TABLE borrower (id int NOT NULL DEFAULT nextval('lender_id_seq'), v text);
            INSERT INTO borrower (v) VALUES ('b');
            """)
        let plain = try fixture.backup(db)
        let dirID = try directoryBackup(db)
        let existing = try fixture.database("fdirbx")
        try Harness.psql(existing, "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('keep me')")
        let newName = "\(db)_new"
        fixture.track(database: newName)

        func assertNothingCreated(_ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
            XCTAssertFalse(try RestoreFixture.exists(newName), "\(context): \(newName) was created", file: file, line: line)
            XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "\(context): scratch database left", file: file, line: line)
        }

        let onPlain = try fixture.pgsnap(["restore", plain, "--table", "public.t", "--target", newName])
        XCTAssertEqual(onPlain.status, 64, onPlain.stderr)
        XCTAssertTrue(onPlain.stderr.contains("pgsnap restore \(plain) --target"),
                      "a plain snapshot: the message must say to restore the whole snapshot to --target: \(onPlain.stderr)")
        try assertNothingCreated("--table on a plain snapshot")

        let noTarget = try fixture.pgsnap(["restore", dirID, "--table", "public.t"])
        XCTAssertEqual(noTarget.status, 64, noTarget.stderr)
        XCTAssertTrue(noTarget.stderr.contains("--target"), noTarget.stderr)
        try assertNothingCreated("--table without --target")

        let missing = try fixture.pgsnap(["restore", dirID, "--table", "public.nope", "--target", newName])
        Harness.assertOneErrorLine(missing, status: 1, "--table for a missing table")
        XCTAssertTrue(missing.stderr.contains("the snapshot has no table 'public.nope' with rows of its own"), missing.stderr)
        try assertNothingCreated("--table for a missing table")

        let exists = try fixture.pgsnap(["restore", dirID, "--table", "public.t", "--target", existing])
        XCTAssertEqual(exists.status, 64, exists.stderr)
        XCTAssertTrue(exists.stderr.contains("\"\(existing)\" exists"), exists.stderr)
        XCTAssertEqual(try Harness.psql(existing, "SELECT string_agg(v, ',') FROM marker"), "keep me")
        XCTAssertEqual(try Harness.psql(existing, "SELECT to_regclass('public.t') IS NULL"), "t", "\(existing) was written to")
        try assertNothingCreated("--table into an existing database")

        let ambiguous = try fixture.pgsnap(["restore", dirID, "--table", "dup", "--target", newName])
        XCTAssertEqual(ambiguous.status, 64, ambiguous.stderr)
        XCTAssertTrue(ambiguous.stderr.contains("other.dup") && ambiguous.stderr.contains("public.dup"), ambiguous.stderr)
        try assertNothingCreated("--table with an ambiguous name")

        // pg_dump stores the rows of hash partitions of an enum through their root: a partition
        // alone cannot be loaded, said before any row is (not a count mismatch, exit 2, afterwards).
        for partition in ["public.mood_hash0", "public.mood_hash1"] {
            let viaRoot = try fixture.pgsnap(["restore", dirID, "--table", partition, "--target", newName, "--quiet"])
            Harness.assertOneErrorLine(viaRoot, status: 1, "--table \(partition), stored through its root")
            XCTAssertTrue(viaRoot.stderr.contains("\(partition)'s rows are stored through its partitioned table public.mood_hash"), viaRoot.stderr)
            try assertNothingCreated("--table \(partition)")
        }

        // The same snapshot restores a table fine, unqualified when the name is unique.
        try pgsnapStep(["restore", dirID, "--table", "t", "--target", newName])
        XCTAssertEqual(try Harness.psql(newName, "SELECT count(*) FROM public.t"), "50")

        // A table whose default draws from another table's serial sequence: that sequence comes
        // along, at its value, without its owner; nothing is reported about the table left out.
        let borrowed = "\(db)_borrower"
        fixture.track(database: borrowed)
        let b = try pgsnapStep(["restore", dirID, "--table", "public.borrower", "--target", borrowed])
        XCTAssertFalse(b.stderr.contains("pg_restore reported"), b.stderr)
        XCTAssertEqual(try Harness.psql(borrowed, "SELECT to_regclass('public.lender') IS NULL"), "t")
        XCTAssertEqual(try Harness.psql(borrowed, "INSERT INTO borrower (v) VALUES ('new') RETURNING id"),
                       try Harness.psql(db, "INSERT INTO borrower (v) VALUES ('new') RETURNING id"))
    }

    // MARK: - 3. Damage inside a directory snapshot

    /// A data file deleted, truncated or with one byte flipped, toc.dat flipped, a stray file
    /// added: verify exits 2 naming the file; restore over an existing database is refused with
    /// exit 2 and changes nothing; list calls the snapshot damaged when a size changed.
    func testDamageInsideDirectorySnapshotIsCaught() throws {
        let db = try fixture.database("fdirx")
        try Torture.fill(db, rows: 20_000)
        let id = try directoryBackup(db)
        try Harness.psql(db, "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('after the backup')")
        let targetPrint = try Torture.fingerprint(db)
        let big = try dataFile(of: "public.big", id: id)["name"] as? String ?? "?"
        let bigPath = snapshotPath(id) + "/" + big
        let tocPath = snapshotPath(id) + "/toc.dat"
        let strayPath = snapshotPath(id) + "/stray.txt"
        let pristineBig = try Harness.bytes(bigPath), pristineTOC = try Harness.bytes(tocPath)

        struct Damage {
            var name: String
            var file: String
            var check: String
            var changesSize: Bool
            var apply: () throws -> Void
            var undo: () throws -> Void
        }
        func flip(_ data: Data, at offset: Int) -> Data {
            var d = data
            d[d.startIndex + offset] ^= 0x01
            return d
        }
        let url = { (p: String) in URL(fileURLWithPath: p) }
        let damages = [
            Damage(name: "data file deleted", file: big, check: "files", changesSize: true,
                   apply: { try FileManager.default.removeItem(atPath: bigPath) }, undo: { try pristineBig.write(to: url(bigPath)) }),
            Damage(name: "data file truncated", file: big, check: "size", changesSize: true,
                   apply: { try pristineBig.prefix(pristineBig.count / 2).write(to: url(bigPath)) }, undo: { try pristineBig.write(to: url(bigPath)) }),
            Damage(name: "data file byte flipped", file: big, check: "checksum", changesSize: false,
                   apply: { try flip(pristineBig, at: pristineBig.count / 2).write(to: url(bigPath)) }, undo: { try pristineBig.write(to: url(bigPath)) }),
            Damage(name: "toc.dat byte flipped", file: "toc.dat", check: "checksum", changesSize: false,
                   apply: { try flip(pristineTOC, at: pristineTOC.count / 2).write(to: url(tocPath)) }, undo: { try pristineTOC.write(to: url(tocPath)) }),
            Damage(name: "stray file added", file: "stray.txt", check: "files", changesSize: true,
                   apply: { try Data("not pg_dump's\n".utf8).write(to: url(strayPath)) }, undo: { try FileManager.default.removeItem(atPath: strayPath) }),
        ]
        for d in damages {
            try d.apply()
            let verify = try fixture.pgsnap(["verify", id])
            XCTAssertEqual(verify.status, 2, "\(d.name): verify: \(verify.stderr)")
            XCTAssertTrue(verify.stderr.contains("\(d.check) check failed"), "\(d.name): verify must fail the \(d.check) check: \(verify.stderr)")
            XCTAssertTrue(verify.stderr.contains("\(id).dir/\(d.file)"), "\(d.name): verify must name \(id).dir/\(d.file): \(verify.stderr)")

            if d.changesSize {
                let listed = try Torture.list(fixture.dir)
                XCTAssertEqual(listed.map { "\($0.id)=\($0.status)" }, ["\(id)=damaged"], "\(d.name): list")
            }

            let restore = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2"])
            Harness.assertOneErrorLine(restore, status: 2, "\(d.name): restore")
            XCTAssertTrue(restore.stderr.contains(id), "\(d.name): the refusal must name the snapshot: \(restore.stderr)")
            if !d.changesSize {
                XCTAssertTrue(restore.stderr.contains("\(id).dir/\(d.file)"), "\(d.name): the refusal must name the file: \(restore.stderr)")
            }
            XCTAssertEqual(try Torture.fingerprint(db), targetPrint, "\(d.name): the target changed")
            XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "\(d.name): scratch database left")
            XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [], "\(d.name): the target was swapped aside")

            try d.undo()
            let again = try fixture.pgsnap(["verify", id])
            XCTAssertEqual(again.status, 0, "\(d.name): verify after undoing the damage: \(again.stderr)")
        }
    }

    /// A damaged snapshot refused while its table of contents is still being read beside the
    /// scratch database's making (a slow disk, a huge schema; here a pg_restore that lists
    /// slowly): the refusal, and no pg_restore of this run left reading the snapshot after it.
    func testARefusedRestoreLeavesNoListingBehind() throws {
        let db = try fixture.database("fdirl")
        try Torture.fill(db, rows: 20_000)
        let id = try directoryBackup(db)
        let big = try dataFile(of: "public.big", id: id)["name"] as? String ?? "?"
        let bigPath = snapshotPath(id) + "/" + big
        var bytes = try Harness.bytes(bigPath)
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: bigPath))
        let bin = try Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: bin) }
        for tool in ["psql", "pg_dump", "pg_dumpall"] {
            try FileManager.default.createSymbolicLink(atPath: bin + "/" + tool, withDestinationPath: Harness.pgbin + "/" + tool)
        }
        let slow = "#!/bin/sh\ncase \"$*\" in *--list*) sleep 2 ;; esac\nexec \(Harness.pgbin)/pg_restore \"$@\"\n"
        try Data(slow.utf8).write(to: URL(fileURLWithPath: bin + "/pg_restore"))
        chmod(bin + "/pg_restore", 0o755)

        let r = try fixture.pgsnap(["restore", id, "-d", db, "--yes", "--jobs", "2"],
                                   env: ["PGSNAP_PG_BINDIR": bin, "PGSNAP_PARALLEL_COPY_MIN_BYTES": "0"])
        Harness.assertOneErrorLine(r, status: 2, "restore of a damaged directory snapshot")
        XCTAssertTrue(r.stderr.contains("checksum check"), r.stderr)
        let reading = Procfs.snapshot().filter { e in (Procfs.cmdline(e.pid) ?? []).contains { $0.contains(snapshotPath(id)) } }
        XCTAssertEqual(reading.map(\.comm), [], "still reading the snapshot after the run ended")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
    }

    // MARK: - 4. kill -9 of pgsnap mid-dump

    /// Fault: SIGKILL of `backup --format directory` once a file in `<id>.dir.partial/` passes 1 MiB.
    /// Expected: pg_dump and its workers end with pgsnap (SIGTERM from the kernel, ChildTrampoline)
    /// instead of dumping the rest of the database into a directory nobody will use: the file it
    /// was writing stays cut short; nothing is listed good; `verify --all` reports the leftover as incomplete and passes; `restore latest`
    /// finds nothing to restore; `prune` keeps the leftover as "recent" and removes the whole
    /// partial directory once it is past the 24 h grace.
    func testKill9OfPgsnapDuringDirectoryBackup() throws {
        let db = try fixture.database("fdirk")
        try Torture.fill(db, rows: 300_000)
        var partial: String?
        var reached = false
        let dumpers = Box<[Int32]>([])
        let r = try fixture.pgsnap(["backup", "-d", db] + Self.directoryBackup) { pid in
            reached = Harness.poll(timeout: 60) {
                if partial == nil { partial = Self.partialDirectory(in: self.fixture.dir) }
                if let partial, Self.biggestFile(in: self.fixture.dir + "/" + partial) >= 1 << 20 { return true }
                return !Procfs.isAlive(pid)
            } && Procfs.isAlive(pid)
            // pg_dump and its workers, found before the kill while pgsnap is still their parent.
            dumpers.set(Procfs.descendants(of: pid).filter { $0.comm == "pg_dump" }.map(\.pid))
            kill(pid, SIGKILL)
        }
        orphans += dumpers.get
        XCTAssertTrue(reached, "pgsnap ended before a file of the partial directory reached 1 MiB: \(r.status) \(r.stderr)")
        XCTAssertEqual(r.status, SIGKILL, r.stderr)
        let partialName = try XCTUnwrap(partial, "never saw the .dir.partial directory")
        let id = String(partialName.dropLast(".dir.partial".count))
        XCTAssertFalse(dumpers.get.isEmpty, "no pg_dump child was running at the kill")

        let left = Torture.waitUntilGone(comm: "pg_dump", mentioning: partialName, timeout: 60)
        XCTAssertEqual(left, [], "pg_dump still writing \(partialName) 60 s after pgsnap died")
        for p in left { kill(p, SIGKILL) }
        // Ended, not finished: an orphan would have written the table's file to its end.
        let folder = fixture.dir + "/" + partialName
        let data = try XCTUnwrap(Harness.entries(folder).filter { $0.hasSuffix(".dat.gz") }.max { Torture.size(folder + "/" + $0) ?? 0 < Torture.size(folder + "/" + $1) ?? 0 })
        XCTAssertNotEqual(try Harness.run("/bin/gzip", ["-t", folder + "/" + data]).status, 0, "pg_dump finished \(data) after pgsnap was killed")

        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [partialName], "what the killed backup left")
        let listed = try Torture.assertGood(exactly: [], dir: fixture.dir, "after kill -9 of a directory backup")
        XCTAssertEqual(listed.map { "\($0.id)=\($0.status)" }, ["\(id)=partial"])

        let verifyAll = try fixture.pgsnap(["verify", "--all"])
        XCTAssertEqual(verifyAll.status, 0, "verify --all must not fail on a leftover: \(verifyAll.stderr)")
        XCTAssertTrue(verifyAll.stderr.contains("incomplete  \(id)"), verifyAll.stderr)
        let verifyOne = try fixture.pgsnap(["verify", id])
        XCTAssertEqual(verifyOne.status, 2, "verify of the leftover itself must fail: \(verifyOne.stderr)")

        let rowsBefore = try Harness.psql(db, "SELECT count(*) FROM big")
        let restore = try fixture.pgsnap(["restore", "latest", "-d", db, "--yes"])
        Harness.assertOneErrorLine(restore, status: 1, "restore latest with only a leftover")
        XCTAssertTrue(restore.stderr.contains("No snapshot matches 'latest'"), restore.stderr)
        XCTAssertEqual(try Harness.psql(db, "SELECT count(*) FROM big"), rowsBefore)
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [])
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])

        // Within the grace period a leftover may be a backup in flight: kept, and said so.
        let dryRun = try fixture.pgsnap(["prune", "--dry-run"])
        XCTAssertEqual(dryRun.status, 0, dryRun.stderr)
        XCTAssertTrue(dryRun.stdout.contains("keep   \(id)  (incomplete (partial) but recent"), dryRun.stdout)
        let pruneNow = try fixture.pgsnap(["prune", "--quiet"])
        XCTAssertEqual(pruneNow.status, 0, pruneNow.stderr)
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [partialName], "prune within 24 h must keep the leftover")

        let later: [String: String?] = ["PGSNAP_NOW": ISO8601DateFormatter().string(from: Date().addingTimeInterval(2 * 86_400))]
        let pruneLater = try fixture.pgsnap(["prune"], env: later)
        XCTAssertEqual(pruneLater.status, 0, pruneLater.stderr)
        XCTAssertTrue(pruneLater.stderr.contains("removed \(id)"), pruneLater.stderr)
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "prune two days later must remove the partial directory and all in it")
    }

    /// Fault: SIGKILL of pgsnap's pg_dump (the leader of `-j 2`) once a data file passes 1 MiB.
    /// Expected: exit 1 with one error line naming pg_dump; the workers end too; nothing is left
    /// in the backup directory, not even the partial directory.
    func testKill9OfPgDumpDuringDirectoryBackup() throws {
        let db = try fixture.database("fdirp")
        try Torture.fill(db, rows: 300_000)
        var killed: Int32?
        var workers: [Int32] = []
        let r = try fixture.pgsnap(["backup", "-d", db, "--quiet"] + Self.directoryBackup) { pid in
            var partial: String?
            guard Harness.poll(timeout: 60, {
                if partial == nil { partial = Self.partialDirectory(in: self.fixture.dir) }
                if let partial, Self.biggestFile(in: self.fixture.dir + "/" + partial) >= 1 << 20 { return true }
                return !Procfs.isAlive(pid)
            }), Procfs.isAlive(pid), let dump = Torture.child(of: pid, named: "pg_dump", withArgument: "--format=directory") else { return }
            workers = Procfs.descendants(of: dump).map(\.pid)
            if kill(dump, SIGKILL) == 0 { killed = dump }
        }
        orphans += workers
        XCTAssertNotNil(killed, "never saw pg_dump writing a data file past 1 MiB")
        XCTAssertFalse(workers.isEmpty, "pg_dump -j 2 had no workers")
        Harness.assertOneErrorLine(r, status: 1, "pg_dump killed")
        XCTAssertTrue(r.stderr.contains("pg_dump"), "the error must name pg_dump: \(r.stderr)")
        XCTAssertEqual(Harness.snapshotFiles(fixture.dir), [], "nothing may be left of the failed backup")
        XCTAssertTrue(Harness.poll(timeout: 10) { !workers.contains(where: Procfs.isAlive) }, "pg_dump's workers outlived their leader by 10 s")
    }

    // MARK: - 5. kill -9 of pgsnap mid-restore

    /// Fault: SIGKILL of `restore --yes --jobs 2` of a directory snapshot over an existing database
    /// while pg_restore is loading. So that the orphaned pg_restore is certainly still mid-load when
    /// the next restore starts (200,000 rows load in about a second here), another session takes
    /// an ACCESS EXCLUSIVE lock on the table in the scratch database as soon as pg_restore has
    /// created it, and the kill waits until pg_restore is blocked on that lock: a slow table load.
    /// Expected: the target is unchanged; pg_restore ends with pgsnap (SIGTERM from the kernel,
    /// ChildTrampoline) instead of loading on into a database nobody will use; the scratch
    /// database is left with the dead pid in its name (its sessions may still wait on the lock);
    /// the next restore drops it (ending those sessions), succeeds, and leaves no scratch database.
    func testKill9OfPgsnapDuringDirectoryRestore() throws {
        let db = try fixture.database("fdirr")
        try Torture.fill(db, rows: 200_000)
        let id = try directoryBackup(db)
        let snapshotPrint = try Torture.fingerprint(db)
        try Harness.psql(db, "DELETE FROM big WHERE id % 3 = 0; UPDATE small SET v = 'changed'; CREATE TABLE marker (v text); INSERT INTO marker VALUES ('target')")
        let targetPrint = try Torture.fingerprint(db)
        XCTAssertNotEqual(snapshotPrint, targetPrint)
        let restoreArgs = ["restore", id, "-d", db, "--yes", "--jobs", "2"]

        var reached = false
        var blocker: HeldSession?
        defer { blocker?.close() }
        var failure: String?
        let r = try fixture.pgsnap(restoreArgs) { pid in
            defer { kill(pid, SIGKILL) }
            var scratch: String?
            let pattern = "pgsnap\\_scratch\\_%\\_\(pid)\\_%"
            guard Harness.poll(timeout: 60, {
                if scratch == nil { scratch = Torture.query("postgres", "SELECT datname FROM pg_database WHERE datname LIKE '\(pattern)'").flatMap { $0.isEmpty ? nil : $0 } }
                if let scratch, Torture.query(scratch, "SELECT to_regclass('public.big') IS NOT NULL") == "t" { return true }
                return !Procfs.isAlive(pid)
            }), let scratch, Procfs.isAlive(pid) else {
                failure = "never saw public.big in the scratch database"
                return
            }
            do {
                blocker = try HeldSession(database: scratch, applicationName: "dirformat_blocker",
                                          sql: "BEGIN; LOCK TABLE public.big IN ACCESS EXCLUSIVE MODE; SELECT 1;")
            } catch {
                failure = "cannot start the blocking session: \(error)"
                return
            }
            reached = Harness.poll(timeout: 60) {
                let waiting = Torture.query("postgres", """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE datname = '\(scratch)' AND wait_event_type = 'Lock' AND application_name <> 'dirformat_blocker'
                    """)
                return (waiting ?? "0") != "0" || !Procfs.isAlive(pid)
            } && Procfs.isAlive(pid) && Torture.child(of: pid, named: "pg_restore", withArgument: "--jobs=") != nil
        }
        XCTAssertNil(failure)
        XCTAssertTrue(reached, "pg_restore never waited for the blocking lock while pgsnap ran: \(r.status) \(r.stderr)")
        XCTAssertEqual(r.status, SIGKILL, r.stderr)
        XCTAssertEqual(try Torture.fingerprint(db), targetPrint, "the target changed after kill -9 mid-restore")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db), [])
        let orphan = try scratchDatabases(ofPid: r.pid)
        XCTAssertEqual(orphan.count, 1, "the killed run's scratch database: \(orphan)")
        let orphanName = try XCTUnwrap(orphan.first)
        orphans += Torture.processes(comm: "pg_restore", mentioning: orphanName)
        XCTAssertEqual(Torture.waitUntilGone(comm: "pg_restore", mentioning: orphanName, timeout: 30), [],
                       "pg_restore outlived the killed pgsnap by 30 s, still loading \(orphanName)")

        // Its sessions may still wait on the lock: dropping the database must not wait for them.
        let next = try fixture.pgsnap(restoreArgs)
        XCTAssertEqual(next.status, 0, "the restore after the kill: \(next.stderr)")
        XCTAssertTrue(next.stderr.contains("dropping scratch database \(orphanName) left by an interrupted run (pid \(r.pid))"), next.stderr)
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "the orphaned scratch database must be gone")
        XCTAssertEqual(try Torture.fingerprint(db), snapshotPrint, "the restore after the kill must give the snapshot's content")
        XCTAssertEqual(try RestoreFixture.previousDatabases(of: db).count, 1, "the target as it was, kept aside once")

        let left = Torture.waitUntilGone(comm: "pg_restore", mentioning: orphanName, timeout: 30)
        XCTAssertEqual(left, [], "the orphaned pg_restore outlived its dropped database by 30 s")
        XCTAssertEqual(try RestoreFixture.scratchDatabases(), [], "the orphan must not bring its scratch database back")
    }
}
