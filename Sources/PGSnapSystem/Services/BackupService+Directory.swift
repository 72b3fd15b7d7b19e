import Foundation
import PGSnapCore

/// What a backup learned before pg_dump starts, shared by the plain and directory paths.
struct DumpContext {
    var db: LibPQConnection
    var database: String
    var serverVersion: String
    var serverMajor: Int
    var pgDump: PostgresTools.Located
    /// pg_dump --statistics: planner statistics travel with the dump (18).
    var dumpsStatistics: Bool
    var snapshotID: String
    var locking: DatabaseFacts.TableLocking
    var dumpLockTimeoutMs: Int
    var migration: Manifest.MigrationState?
    var properties: DatabaseProperties
    var databaseBytes: Int64?
    var started: Date
    var clock: DispatchTime

    var statisticsArguments: [String] { dumpsStatistics ? ["--statistics"] : [] }
}

/// The directory format: `pg_dump -Fd -j N` into `<id>.dir.partial/`, then every file read back
/// in parallel (size, SHA-256, full decompression, rows per table: the first verification),
/// fsynced, the directory renamed to `<id>.dir/`, the manifest last, as for a plain snapshot.
extension BackupService {
    func runDirectory(_ options: BackupOptions, dir: SnapshotDirectory, context c: DumpContext, age: AgeTool?) throws -> Manifest {
        guard options.compression == .gzip else {
            throw PGSnapError.usage("--format directory stores gzip files (pg_dump -Fd); --compress \(options.compression.rawValue) is for plain snapshots",
                                    next: "Drop --compress, or use --format plain")
        }
        guard options.level > 0 else {
            // pg_dump -Fd -Z0 writes <n>.dat files, which the read-back, verify and restore do not take.
            throw PGSnapError.usage("--format directory stores gzip files; --level 0 (no compression) is for plain snapshots",
                                    next: "Use --level 1 (the fastest), or --format plain")
        }
        removeAbandonedPartials(dir)
        let (id, partial) = try reserveDirectory(dir: dir, database: c.database, date: c.started, label: options.label)
        // Held while this backup runs: a partial directory nobody holds is abandoned (see below).
        let hold = SnapshotDirectory.claimFolder(partial)
        defer { if let hold { close(hold) } }
        let finalName = id + SnapshotName.directorySuffix
        var committed = false
        defer {
            if !committed {
                try? SnapshotDirectory.removeTree(partial)
                try? SnapshotDirectory.removeTree(dir.file(finalName))
                unlink(dir.file(id + SnapshotName.manifestSuffix + SnapshotName.partialSuffix))
            }
        }
        let encryptedNote = age != nil ? ", each file encrypted with age to \(options.encryptTo.count) recipient(s)" : ""
        session.reporter.info("pgsnap: backing up database \"\(c.database)\" (\(session.redact(session.spec.redacted))) to \(dir.file(finalName))/ with \(options.jobs) pg_dump job(s)\(encryptedNote)")
        let command = ExternalCommand(
            name: "pg_dump", executable: c.pgDump.path,
            // --no-sync: every file is fsynced below, while it is read back anyway.
            arguments: ["--format=directory", "--jobs=\(options.jobs)", "--compress=\(options.level)", "--no-sync", "--no-password"]
                + c.statisticsArguments + [
                        "--snapshot=\(c.snapshotID)", "--lock-wait-timeout=\(c.dumpLockTimeoutMs)", "--file=\(partial)",
                        "--dbname=\(session.childConninfo(database: c.database))"],
            environment: session.childEnvironment)
        // The read-back starts while pg_dump writes; files the tail could not vouch for are read after.
        let tail = age == nil ? DirectoryTail(directory: partial) : nil
        defer { _ = tail?.results() }
        let child = try ChildProcess(command, stdin: .null, stdout: .null, stderr: .pipe)
        let status = child.wait()
        let dumpDone = DispatchTime.now()
        if SignalTrap.received != nil {
            throw PGSnapError(.interrupted, "backup interrupted; pg_dump stopped and the partial directory removed")
        }
        guard status.succeeded else {
            let line = child.lastErrorLine.map { ": " + session.redact(oneLine($0)) } ?? ""
            if line.contains("out of shared memory") {
                throw DatabaseFacts.outOfLocks(tool: "pg_dump", tables: c.locking.tables, slots: c.locking.lockSlots)
            }
            throw PGSnapError("pg_dump failed (\(status))\(line)", next: "Nothing was kept; fix the cause and run the backup again")
        }

        // Which data file holds which table: the table of contents names each by dump id and oid.
        let toc = try DirectoryTOC.list(partial, serverMajor: c.serverMajor, session: session)
        let dataEntries = toc.filter { $0.desc == "TABLE DATA" }
        let oids = dataEntries.map { String($0.oid) }
        var names: [String: String] = [:]
        if !oids.isEmpty {
            for row in try c.db.query("""
                SELECT c.oid::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY($1::oid[])
                """, ["{" + oids.joined(separator: ",") + "}"]) {
                if let oid = row[0], let name = row[1] { names[oid] = name }
            }
        }
        var tableOfDumpID: [Int: String] = [:]
        for e in dataEntries {
            guard let name = names[String(e.oid)] else { throw PGSnapError("pg_dump's table of contents names table oid \(e.oid), which the snapshot does not have") }
            tableOfDumpID[e.dumpID] = name
        }

        let listed = try SnapshotDirectory.files(in: partial)
        if let odd = listed.first(where: { $0.size < 0 || !DirectoryDump.isDumpFileName($0.name) }) {
            throw PGSnapError("pg_dump left \(oneLine(odd.name, limit: 80)) in \(partial), which is not a dump file", next: "Nothing was kept; report this")
        }
        let fsyncStart = DispatchTime.now()
        // Files about to be encrypted need no fsync: they are removed once their .age copy is synced.
        let tailed = tail?.results() ?? [:]
        let rest = DirectoryReadback.read(directory: partial, names: listed.map(\.name).filter { tailed[$0] == nil }, inflate: true,
                                          sync: age == nil, shouldStop: { SignalTrap.received != nil })
        var byName = tailed
        for r in rest { byName[r.name] = r }
        let results = listed.map { byName[$0.name]! }
        if SignalTrap.received != nil {
            throw PGSnapError(.interrupted, "backup interrupted; the partial directory was removed")
        }
        var files: [StoredFile] = []
        var rows: [String: Int64] = [:]
        var inflated: Int64 = 0
        for r in results {
            if let error = r.error { throw PGSnapError("reading back the dump failed: \(error)", next: "Nothing was kept; run the backup again") }
            var f = StoredFile(name: r.name, bytes: r.bytes, sha256: r.sha256)
            if let dumpID = DirectoryDump.dataFileDumpID(r.name) {
                guard let table = tableOfDumpID[dumpID] else { throw PGSnapError("pg_dump wrote \(r.name), which its table of contents does not list", next: "Nothing was kept; run the backup again") }
                guard let n = r.rows else { throw PGSnapError("\(r.name) (table \(table)) ends without pg_dump's end-of-data marker", next: "Nothing was kept; run the backup again") }
                f.table = table
                f.rows = n
                rows[table] = n
            }
            inflated += r.inflatedBytes
            files.append(f)
        }
        if let age {
            for (i, e) in try encryptFiles(partial, names: files.map(\.name), age: age, recipients: options.encryptTo).enumerated() {
                files[i].name += SnapshotName.encryptedSuffix
                files[i].bytes = e.bytes
                files[i].sha256 = e.sha256
            }
        }
        if let missing = tableOfDumpID.first(where: { rows[$0.value] == nil }) {
            throw PGSnapError("pg_dump wrote no data file for table \(missing.value)", next: "Nothing was kept; run the backup again")
        }
        guard files.contains(where: { DirectoryDump.plainName($0.name) == "toc.dat" }) else { throw PGSnapError("pg_dump wrote no toc.dat", next: "Nothing was kept; run the backup again") }
        try SnapshotDirectory.fsyncPath(partial)
        guard rename(partial, dir.file(finalName)) == 0 else { throw SnapshotDirectory.ioError("rename \(partial)") }
        try dir.sync()
        let fsyncSeconds = seconds(since: fsyncStart)
        _ = try? c.db.query("COMMIT")

        let compressed = files.reduce(Int64(0)) { $0 + $1.bytes }
        var listing = SHA256Stream()
        DirectoryDump.listing(files).withUnsafeBytes { listing.update($0) }
        var manifest = Manifest(
            id: id, database: c.database, label: options.label, createdAt: c.started, durationSeconds: seconds(since: c.clock),
            file: finalName, compressedBytes: compressed, uncompressedBytes: inflated, sha256: listing.finalizeHex(),
            compression: .init(algorithm: .gzip, level: options.level, jobs: options.jobs),
            pgDumpVersion: c.pgDump.version, serverVersion: c.serverVersion, host: origin.host, port: origin.port, user: origin.user,
            migration: c.migration, tableRows: rows, databaseProperties: c.properties,
            timings: .init(dumpSeconds: Double(dumpDone.uptimeNanoseconds - c.clock.uptimeNanoseconds) / 1e9,
                           compressWaitSeconds: 0, fsyncSeconds: fsyncSeconds),
            pgsnapVersion: pgsnapVersion)
        manifest.formatVersion = 2
        manifest.dumpFormat = DumpFormat.directory.rawValue
        manifest.files = files.sorted { $0.name < $1.name }
        try commit(&manifest, context: c, options: options, storage: LocalStorage(dir), dir: dir)
        committed = true
        return manifest
    }

    /// Encrypts each file of the partial directory to `<name>.age` (one age child per file, in
    /// parallel), fsyncs it and removes the plain file. pg_dump can only write plain files, so
    /// they exist on disk, inside the 0700 partial directory, until this step.
    func encryptFiles(_ partial: String, names: [String], age: AgeTool, recipients: [AgeRecipient]) throws -> [(bytes: Int64, sha256: String)] {
        let env = session.childEnvironment
        var out = [Result<(bytes: Int64, sha256: String), Error>?](repeating: nil, count: names.count)
        out.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            DispatchQueue.concurrentPerform(iterations: names.count) { i in
                (base + i).initialize(to: Result { try Self.encryptFile(partial + "/" + names[i], age: age, recipients: recipients, environment: env) })
            }
        }
        return try out.map { try $0!.get() }
    }

    static func encryptFile(_ path: String, age: AgeTool, recipients: [AgeRecipient], environment: [String: String]) throws -> (bytes: Int64, sha256: String) {
        let sink = try FileSink(creating: path + SnapshotName.encryptedSuffix)
        let encryptor = try AgeEncryptor(tool: age, recipients: recipients, environment: environment, sink: sink)
        var finished = false
        defer { if !finished { encryptor.abort() } }
        try SnapshotDirectory.readFile(path) { try encryptor.write($0) }
        try encryptor.finish()
        finished = true
        try sink.sync()
        unlink(path)
        return (sink.bytes, sink.sha256Hex())
    }

    /// Removes `<id>.dir.partial/` directories whose backup is gone (killed): each running backup
    /// holds an flock on its own, so one that can be locked (and has not changed for a minute) is
    /// abandoned. For an encrypted backup
    /// it may hold plain files not yet encrypted: they must not wait for prune's grace period.
    func removeAbandonedPartials(_ dir: SnapshotDirectory) {
        let suffix = SnapshotName.directorySuffix + SnapshotName.partialSuffix
        for f in (try? SnapshotDirectory.files(in: dir.path)) ?? [] where f.name.hasSuffix(suffix) {
            let path = dir.file(f.name)
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            // Not one created a moment ago by a backup that has not taken its lock yet.
            var st = stat()
            guard flock(fd, LOCK_EX | LOCK_NB) == 0, fstat(fd, &st) == 0, time(nil) - st.st_mtim.tv_sec > 60 else { continue }
            session.reporter.info("pgsnap: removing \(path), left by an interrupted backup")
            try? SnapshotDirectory.removeTree(path)
        }
    }

    /// Picks a free id and creates `<id>.dir.partial/` (0700) exclusively.
    func reserveDirectory(dir: SnapshotDirectory, database: String, date: Date, label: String?) throws -> (String, String) {
        let listed = Set(try dir.list().map(\.name))
        for attempt in 1...1000 {
            let id = SnapshotName.id(database: database, date: date, label: label, attempt: attempt)
            try SnapshotName.validateLength(id: id, label: label)
            if isTaken(id, listed: listed) { continue }
            let partial = dir.file(id + SnapshotName.directorySuffix + SnapshotName.partialSuffix)
            if mkdir(partial, 0o700) == 0 { return (id, partial) }
            if errno != EEXIST { throw SnapshotDirectory.ioError("create \(partial)") }
        }
        throw PGSnapError("cannot find a free snapshot name in \(dir.path)")
    }
}

/// `pg_restore --list`: it reads `toc.dat` the way a restore will, so it succeeding is also a check.
enum DirectoryTOC {
    static func list(_ path: String, serverMajor: Int?, session: Session) throws -> [TOCEntry] {
        TOCEntry.parseList(try text(path, serverMajor: serverMajor, session: session))
    }

    /// `pg_restore --list` with `arguments` (`--verbose`: each entry's dependencies; `--section`).
    static func text(_ path: String, arguments: [String] = [], serverMajor: Int?, session: Session) throws -> String {
        let tool = try session.tools.locate("pg_restore", serverMajor: serverMajor)
        let command = ExternalCommand(name: "pg_restore", executable: tool.path, arguments: ["--list"] + arguments + [path], environment: session.childEnvironment)
        let (status, out, child) = try ChildProcess.captureAll(command, limit: 256 << 20)
        // Ctrl-C reached pg_restore too: an interruption, not a damaged snapshot.
        if SignalTrap.received != nil { throw PGSnapError(.interrupted, "interrupted while reading the table of contents of \(path)") }
        guard status.succeeded, let out else {
            throw PGSnapError.verification("pg_restore --list cannot read the table of contents of \(path) (\(status))\(child.lastErrorLine.map { ": " + oneLine($0) } ?? "")",
                                           next: "The snapshot is damaged; choose another ('pgsnap list')")
        }
        return String(decoding: out, as: UTF8.self)
    }
}
