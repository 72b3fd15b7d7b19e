import Foundation
import PGSnapCore

public struct BackupOptions {
    public var label: String?
    public var level: Int
    public var jobs: Int
    public var compression: CompressionAlgorithm
    public var globals: Bool
    /// Seconds to wait for a table another session holds; nil: the session's lock_timeout.
    public var lockWaitTimeout: Double?
    /// Public keys to encrypt to with age; empty: not encrypted.
    public var encryptTo: [AgeRecipient] = []
    /// plain (one SQL file) or directory (`pg_dump -Fd -j jobs`, for `pg_restore -j`).
    public var format: DumpFormat = .plain
    /// The whole-server run's globals, written once before its first database: this snapshot refers
    /// to them instead of running pg_dumpall again (see `AllDatabasesService`).
    public var runGlobals: RunGlobals?
    public init(label: String?, level: Int, jobs: Int, compression: CompressionAlgorithm = .gzip, globals: Bool = false,
                lockWaitTimeout: Double? = nil) {
        self.lockWaitTimeout = lockWaitTimeout
        self.label = label
        self.level = level
        self.jobs = jobs
        self.compression = compression
        self.globals = globals
    }
}

/// Takes a snapshot: pg_dump (plain) -> row counter -> parallel gzip -> `.partial` -> fsync -> rename -> manifest.
///
/// The manifest is written last and is the commit point: a crash at any moment leaves either a
/// complete snapshot or files that `list` shows as incomplete and `prune` removes.
public struct BackupService {
    let session: Session
    /// How long a backup waits for a table another session holds, when nothing else says.
    static let defaultLockWaitMs = 60_000

    public init(session: Session) { self.session = session }

    /// - Throws: `PGSnapError` naming what failed (pg_dump's own last error line included); nothing is left that looks good.
    public func run(_ options: BackupOptions, wait: Double? = nil) throws -> Manifest {
        if let label = options.label { try SnapshotName.validateNewLabel(label) }
        // A missing age is found before the directory, the lock or the server are touched.
        let age = options.encryptTo.isEmpty ? nil : try AgeTool.locate(environment: session.environment)
        let dir = try session.directory(create: true)
        let lock = try DirectoryLock(directory: dir, mode: .shared, command: "backup", wait: wait)
        defer { withExtendedLifetime(lock) {} }
        return try runLocked(options, storage: LocalStorage(dir), dir: dir, age: age)
    }

    /// Straight into a storage (`backup --remote`): the dump streams through compression and
    /// encryption into an upload nobody sees until it is committed, then the manifest; no byte
    /// touches the local disk. Plain format only: pg_dump -Fd writes files of its own.
    public func run(_ options: BackupOptions, to storage: SnapshotStorage) throws -> Manifest {
        if let label = options.label { try SnapshotName.validateNewLabel(label) }
        guard options.format == .plain, options.runGlobals == nil else {
            throw PGSnapError(.usage, "a backup straight to \(storage.location) is a plain-format snapshot of one database",
                              next: "Back up into a directory and add --push for the directory format or --all-databases")
        }
        let age = options.encryptTo.isEmpty ? nil : try AgeTool.locate(environment: session.environment)
        // What a killed run of an earlier night left: invisible, but billed until aborted.
        try session.abortAbandonedWrites(in: storage, olderThan: RetentionPolicy.defaultLeftoverGrace)
        return try runLocked(options, storage: storage, dir: nil, age: age)
    }

    /// - Parameter dir: the backup directory when `storage` is it (the directory format and a
    ///   whole-server run's globals need its paths); nil for a bucket.
    func runLocked(_ options: BackupOptions, storage: SnapshotStorage, dir: SnapshotDirectory?, age: AgeTool?) throws -> Manifest {
        let started = session.now()
        let clock = DispatchTime.now()
        let db = try session.connect()
        let database = try db.scalar("SELECT current_database()") ?? ""
        let serverVersion = try db.scalar("SHOW server_version") ?? "?"
        let serverMajor = db.serverMajor
        let pgDump = try session.tools.locate("pg_dump", serverMajor: serverMajor)

        // One consistent view: the migration state we record is the one pg_dump dumps. The tables
        // are locked before the snapshot is taken, see `DatabaseFacts.lockTablesAndExportSnapshot`.
        // --lock-wait-timeout, else the session's own lock_timeout (PGOPTIONS, ALTER ROLE ... SET),
        // else 60 s: a nightly run nobody watches never waits forever behind a stuck migration.
        let sessionLockTimeoutMs = Int(try db.scalar("SELECT setting FROM pg_settings WHERE name = 'lock_timeout'") ?? "") ?? 0
        let lockTimeoutMs = options.lockWaitTimeout.map { Int(($0 * 1000).rounded(.up)) }
            ?? (sessionLockTimeoutMs > 0 ? nil : Self.defaultLockWaitMs)
        let locking = try DatabaseFacts.lockTablesAndExportSnapshot(db, lockTimeoutMs: lockTimeoutMs)
        let snapshotID = locking.snapshotID
        if !locking.beforeSnapshot {
            session.reporter.warn("\(locking.tables) tables do not fit twice in the server's lock table (about \(locking.lockSlots) slots, max_locks_per_transaction): they are locked by pg_dump alone, as plain pg_dump does, so a TRUNCATE committing while it starts is not excluded; raise max_locks_per_transaction to close that gap")
        }
        // pg_dump's own locks can then only wait behind an exclusive request queued after ours,
        // which itself waits for this backup: bounded, so that never hangs.
        let dumpLockTimeoutMs = lockTimeoutMs ?? Self.defaultLockWaitMs
        let migration = try DatabaseFacts.migrationState(db)
        let properties = try DatabaseFacts.properties(db, database: database)
        let databaseBytes = Int64(try db.scalar("SELECT pg_database_size(current_database())") ?? "")
        session.reporter.detail("pgsnap: using \(pgDump.path) \(pgDump.version) (\(pgDump.reason)) for PostgreSQL \(serverVersion)")
        let dumpsStatistics = db.catalogue.dumpsStatistics(pgDumpMajor: pgDump.major)
        let context = DumpContext(db: db, database: database, serverVersion: serverVersion, serverMajor: serverMajor, pgDump: pgDump,
                                  dumpsStatistics: dumpsStatistics,
                                  snapshotID: snapshotID, locking: locking, dumpLockTimeoutMs: dumpLockTimeoutMs, migration: migration,
                                  properties: properties, databaseBytes: databaseBytes, started: started, clock: clock)
        if options.format == .directory, let dir {
            return try runDirectory(options, dir: dir, context: context, age: age)
        }

        let encrypted = age != nil
        let (id, upload) = try reserveName(in: storage, database: database, date: started, label: options.label,
                                           compression: options.compression, encrypted: encrypted)
        let finalName = SnapshotName.dumpFile(id: id, compression: options.compression, encrypted: encrypted)
        let sink = HashingSink(upload)
        var encryptor: AgeEncryptor?
        var stored = false
        var committed = false
        defer {
            if !committed {
                encryptor?.abort()
                if stored { try? storage.delete(finalName) } else { upload.abort() }
                if let dir { unlink(dir.file(id + SnapshotName.manifestSuffix + SnapshotName.partialSuffix)) }
            }
        }
        let encryptedNote = encrypted ? ", encrypted with age to \(options.encryptTo.count) recipient(s)" : ""
        session.reporter.info("pgsnap: backing up database \"\(database)\" (\(session.redact(session.spec.redacted))) to \(storage.location)/\(finalName)\(encryptedNote)")

        let command = ExternalCommand(
            name: "pg_dump", executable: pgDump.path,
            arguments: ["--format=plain", "--no-password"] + context.statisticsArguments + ["--snapshot=\(snapshotID)", "--lock-wait-timeout=\(dumpLockTimeoutMs)", "--dbname=\(session.childConninfo(database: database))"],
            environment: session.childEnvironment)
        let child = try ChildProcess(command, stdin: .null, stdout: .pipe, stderr: .pipe)
        var scanner = DumpScanner()
        let progress = Progress(reporter: session.reporter, verb: "dumped", total: nil)
        var pipelineError: Error?
        // pg_dump -> scanner -> compressor -> [age] -> file: the stored bytes are hashed by the file sink.
        encryptor = try age.map { try AgeEncryptor(tool: $0, recipients: options.encryptTo, environment: session.childEnvironment, sink: sink) }
        let writer = try Codec.compressor(options.compression, sink: encryptor ?? sink, level: options.level, jobs: options.jobs)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(child.stdoutFD, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            scanner.consume(chunk)
            do {
                try writer.write(chunk)
            } catch {
                pipelineError = error
                break
            }
            progress.update(bytesIn: scanner.bytes, bytesOut: sink.bytes)
            if SignalTrap.received != nil { break }
        }
        let dumpDone = DispatchTime.now()
        if pipelineError != nil || SignalTrap.received != nil {
            child.terminate(grace: 2)
        }
        child.closeStdout()
        let status = child.wait()
        progress.done()
        if SignalTrap.received != nil {
            throw PGSnapError(.interrupted, "backup interrupted; pg_dump stopped and the partial file removed")
        }
        if let pipelineError { throw pipelineError }
        guard status.succeeded else {
            let line = child.lastErrorLine.map { ": " + session.redact(oneLine($0)) } ?? ""
            if line.contains("out of shared memory") {
                throw DatabaseFacts.outOfLocks(tool: "pg_dump", tables: locking.tables, slots: locking.lockSlots)
            }
            throw PGSnapError("pg_dump failed (\(status))\(line)", next: "Nothing was kept; fix the cause and run the backup again")
        }
        guard scanner.sawCompletionTrailer else {
            throw PGSnapError("pg_dump output ended without its completion trailer", next: "The dump is incomplete; nothing was kept. Run the backup again")
        }
        try writer.finish()
        try encryptor?.finish()
        let fsyncStart = DispatchTime.now()
        // The directory: fsync, rename, fsync the directory. A bucket: the last parts, completion, the stored size checked.
        let storedBytes = try upload.commit()
        stored = true
        guard storedBytes == sink.bytes else {
            throw PGSnapError("\(storage.location)/\(finalName) holds \(storedBytes) bytes, \(sink.bytes) were written; nothing was kept",
                              next: "Run the backup again")
        }
        let fsyncSeconds = seconds(since: fsyncStart)
        _ = try? db.query("COMMIT")

        var manifest = Manifest(
            id: id, database: database, label: options.label, createdAt: started, durationSeconds: seconds(since: clock),
            file: finalName, compressedBytes: sink.bytes, uncompressedBytes: scanner.bytes, sha256: sink.sha256Hex(),
            compression: .init(algorithm: options.compression, level: options.compression == .none ? 0 : options.level,
                               jobs: options.compression == .none ? nil : options.jobs),
            pgDumpVersion: pgDump.version, serverVersion: serverVersion, host: origin.host, port: origin.port, user: origin.user,
            migration: migration, tableRows: scanner.rowsByTable, databaseProperties: properties,
            timings: .init(dumpSeconds: Double(dumpDone.uptimeNanoseconds - clock.uptimeNanoseconds) / 1e9,
                           compressWaitSeconds: writer.waitSeconds, fsyncSeconds: fsyncSeconds),
            pgsnapVersion: pgsnapVersion)
        try commit(&manifest, context: context, options: options, storage: storage, dir: dir)
        committed = true
        return manifest
    }

    /// Where the snapshot was taken from, as the manifest records it (never a password).
    var origin: (host: String?, port: String?, user: String?) {
        (session.spec["host"] ?? session.environment["PGHOST"], session.spec["port"] ?? session.environment["PGPORT"],
         session.spec["user"] ?? session.environment["PGUSER"])
    }

    /// What both formats record the same way, then the manifest written: the commit point.
    func commit(_ manifest: inout Manifest, context c: DumpContext, options: BackupOptions, storage: SnapshotStorage,
                dir: SnapshotDirectory?) throws {
        manifest.databaseBytes = c.databaseBytes
        manifest.toolDirectory = c.pgDump.directory
        manifest.statistics = c.dumpsStatistics ? "dumped" : nil
        manifest.tableLocking = .init(mode: c.locking.beforeSnapshot ? .beforeSnapshot : .pgDumpOnly, tables: c.locking.tables)
        if !options.encryptTo.isEmpty { manifest.encryption = Encryption(recipients: options.encryptTo) }
        if let run = options.runGlobals, let dir {
            // The globals are on disk and the run's record names this snapshot before its manifest refers to them.
            try run.attach(manifest.id, in: dir)
            manifest.run = run.run
            manifest.globalsFile = run.globalsFile
            manifest.globalsSHA256 = run.sha256
        } else if options.globals {
            (manifest.globalsFile, manifest.globalsSHA256) = try dumpGlobals(storage: storage, id: manifest.id, serverMajor: c.serverMajor,
                                                                             options: options)
        }
        manifest.durationSeconds = seconds(since: c.clock)
        do {
            let bytes = try manifest.encoded()
            // One that every command would refuse to read must not be written and called a success.
            guard bytes.count <= Manifest.maxBytes else {
                throw PGSnapError("the manifest of \(manifest.id) would be \(bytes.count >> 20) MiB, more than pgsnap reads back (\(Manifest.maxBytes >> 20) MiB): \(manifest.tableRows.count) tables; nothing was kept",
                                  next: manifest.format == .directory ? "Back up this database in the plain format (its manifest lists no files)" : "Report this: no database this large was foreseen")
            }
            try storage.putSmall(manifest.id + SnapshotName.manifestSuffix, bytes: [UInt8](bytes))
        } catch {
            // "Nothing was kept": not the manifest, which may be in place already (renamed before
            // the directory's fsync failed, or stored by a PUT whose answer was lost), removed
            // before the caller removes the dump (a manifest without its dump would be this
            // database's newest entry, which `restore latest` refuses); nor this snapshot's own
            // roles file (a run's stays, shared).
            try? storage.delete(manifest.id + SnapshotName.manifestSuffix)
            if options.runGlobals == nil, let own = manifest.globalsFile { try? storage.delete(own) }
            throw error
        }
    }

    /// Picks a free id and creates its dump file exclusively (invisible until committed), so two
    /// backups in one second never collide.
    func reserveName(in storage: SnapshotStorage, database: String, date: Date, label: String?, compression: CompressionAlgorithm,
                     encrypted: Bool) throws -> (String, StorageUpload)
    {
        let listed = Set(StorageListing.folded(try storage.list()).map(\.name))
        for attempt in 1...1000 {
            let id = SnapshotName.id(database: database, date: date, label: label, attempt: attempt)
            try SnapshotName.validateLength(id: id, label: label)
            if isTaken(id, listed: listed) { continue }
            let final = SnapshotName.dumpFile(id: id, compression: compression, encrypted: encrypted)
            // The size is not known before the dump ends: -1 (a bucket grows its parts).
            if let upload = try storage.createNew(final, expectedSize: -1) { return (id, upload) }
        }
        throw PGSnapError("cannot find a free snapshot name in \(storage.location)")
    }

    /// Any kind of dump under this id (another run may compress, encrypt or format differently),
    /// finished or partial, or its manifest, takes it.
    func isTaken(_ id: String, listed: Set<String>) -> Bool {
        (SnapshotName.dumpSuffixes + [SnapshotName.manifestSuffix]).contains { suffix in
            listed.contains(id + suffix) || listed.contains(id + suffix + SnapshotName.partialSuffix)
        }
    }

    /// `pg_dumpall --globals-only` beside one snapshot: `<id>.globals.sql`, or encrypted like the
    /// dump `<id>.globals.sql.age` (role password hashes); returns its name and the stored bytes' SHA-256.
    func dumpGlobals(storage: SnapshotStorage, id: String, serverMajor: Int, options: BackupOptions) throws -> (String, String) {
        let encrypted = !options.encryptTo.isEmpty
        let name = SnapshotName.globalsFile(id: id, encrypted: encrypted)
        let bytes = try encryptedIfAsked(try globalsSQL(database: "postgres", serverMajor: serverMajor), options: options)
        var hash = SHA256Stream()
        bytes.withUnsafeBytes { hash.update($0) }
        let sha = hash.finalizeHex()
        try storage.putSmall(name, bytes: bytes, sha256: sha)
        return (name, sha)
    }
}

extension BackupService {
    /// Most roles and tablespaces a backup keeps in memory: about 250,000 roles with their
    /// password hashes and grants.
    static let globalsLimit = 64 << 20

    /// `pg_dumpall --globals-only`, whole and byte for byte (role names in a LATIN1 cluster are
    /// not UTF-8), or an error: never cut short (a 1 MiB cap once kept a few thousand roles'
    /// file cut, with a checksum of the cut bytes that verify then agreed with).
    func globalsSQL(database: String, serverMajor: Int, failing: String = "") throws -> [UInt8] {
        let tool = try session.tools.locate("pg_dumpall", serverMajor: serverMajor)
        let command = ExternalCommand(name: "pg_dumpall", executable: tool.path,
                                      arguments: ["--globals-only", "--no-password", "--dbname=\(session.childConninfo(database: database))"],
                                      environment: session.childEnvironment)
        let (t, out, child) = try ChildProcess.captureAll(command, limit: Self.globalsLimit)
        guard t.succeeded else {
            throw PGSnapError("pg_dumpall --globals-only failed (\(t)): \(session.redact(child.lastErrorLine ?? ""))\(failing)",
                              next: "Roles need superuser to dump; run without --globals or as a superuser")
        }
        guard let out else {
            throw PGSnapError("pg_dumpall --globals-only wrote more than \(Self.globalsLimit >> 20) MiB of roles and tablespaces\(failing)",
                              next: "Back up without --globals and keep the roles with 'pg_dumpall --globals-only' by hand")
        }
        return out
    }

    /// The globals as stored: age-encrypted to the backup's recipients, or as they are.
    func encryptedIfAsked(_ sql: [UInt8], options: BackupOptions) throws -> [UInt8] {
        guard !options.encryptTo.isEmpty else { return sql }
        return try AgeTool.locate(environment: session.environment).encrypt(sql, to: options.encryptTo, environment: session.childEnvironment)
    }
}

/// The dump file on its way into storage, hashed and counted as stored (after compression and encryption).
final class HashingSink: ByteSink {
    let upload: StorageUpload
    private(set) var bytes: Int64 = 0
    private var hash = SHA256Stream()

    init(_ upload: StorageUpload) { self.upload = upload }

    func write(_ data: UnsafeRawBufferPointer) throws {
        hash.update(data)
        try upload.write(data)
        bytes += Int64(data.count)
    }

    func sha256Hex() -> String { hash.finalizeHex() }
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}
