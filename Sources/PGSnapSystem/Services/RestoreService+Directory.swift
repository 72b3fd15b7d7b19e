import Foundation
import PGSnapCore

/// Directory snapshots: `pg_restore -j N` into the scratch database. No single transaction: the
/// scratch database and the swap are what make the restore atomic, exactly as for psql.
extension RestoreService {
    /// Every file's size and SHA-256 (read in parallel) before anything is touched.
    func directoryIntegrityProblem(_ m: Manifest, dir: SnapshotDirectory) throws -> (check: String, detail: String)? {
        let path = dir.file(m.file)
        let files = m.files ?? []
        let results = DirectoryReadback.read(directory: path, names: files.map(\.name), inflate: false, sync: false,
                                             shouldStop: { SignalTrap.received != nil })
        if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted before anything was changed") }
        for (f, r) in zip(files, results) {
            if let e = r.error { return ("files", "\(m.file): \(e)") }
            if r.bytes != f.bytes { return ("size", "\(m.file)/\(f.name) is \(r.bytes) bytes, manifest says \(f.bytes)") }
            if r.sha256 != f.sha256 { return ("checksum", "\(m.file)/\(f.name): SHA-256 differs from the manifest") }
        }
        return nil
    }

    /// `restore --table`: which tables, checked before anything is touched; nil for a whole restore.
    func tableSelection(_ m: Manifest, options: RestoreOptions, dir: SnapshotDirectory) throws -> [TableSelection.Table]? {
        guard !options.tables.isEmpty else { return nil }
        guard m.format == .directory else {
            throw PGSnapError.usage("restore --table needs a directory snapshot (backup --format directory); \(m.id) is a plain one",
                                    next: "Restore the whole snapshot to a new database (pgsnap restore \(m.id) --target NEW_NAME) and copy the rows from there")
        }
        guard options.target != nil else {
            throw PGSnapError.usage("restore --table writes the tables into a new database", next: "Add --target NEW_DATABASE")
        }
        return try TableSelection.resolve(options.tables, files: m.files ?? []).get()
    }

    func loadDirectory(_ m: Manifest, dir: SnapshotDirectory, into scratch: String, admin: LibPQConnection, noOwner: Bool,
                       jobs: Int?, only: [TableSelection.Table]?, decryption: AgeDecryption?, listings: Pending<[String]>? = nil, phases: PhaseTimes,
                       environment: [String: String], settings: [String: String]) throws -> [String: Int64] {
        let serverMajor = admin.serverMajor
        let tool = try session.tools.locate("pg_restore", serverMajor: serverMajor)
        var path = dir.file(m.file)
        DecryptedCopy.removeOrphans(in: dir, reporter: session.reporter)
        var decrypted: String?
        defer { if let decrypted { try? SnapshotDirectory.removeTree(decrypted) } }
        if let decryption {
            decrypted = try phases.measure("decrypt") { try DecryptedCopy.make(m, dir: dir, decryption: decryption, reporter: session.reporter) }
            path = decrypted!
        }
        let jobs = jobs ?? Self.defaultJobs
        var arguments = ["--no-password", "--jobs=\(jobs)", "--dbname=\(session.childConninfo(database: scratch))"]
        if noOwner { arguments.append("--no-owner") }
        var useList: String?
        defer { if let useList { unlink(useList) } }
        if let only {
            // A partition whose rows pg_dump wrote through its root (--load-via-partition-root, and
            // always for hash partitions of an enum) cannot be loaded without the whole tree.
            for t in only {
                let statement = try ParallelTableLoad.copyStart(path: path, dumpID: t.dataDumpID, table: t.qualified, dir: dir, pgRestore: tool.path,
                                                                environment: environment, session: session).statement
                guard ParallelTableLoad.copies(statement, into: t.qualified) else {
                    let root = statement.dropFirst("COPY ".count).prefix { $0 != " " }
                    throw PGSnapError("\(t.qualified)'s rows are stored through its partitioned table \(root) (pg_dump --load-via-partition-root), which restore --table cannot load on their own",
                                      next: "Restore the whole snapshot to a new database (pgsnap restore \(m.id) --target NEW_NAME) and copy the rows from there; the target was not changed")
                }
            }
            // Objects the chosen tables do not need may fail (a function returning another table's
            // rows): pg_restore goes on, and the chosen tables' row counts decide.
            let toc = try DirectoryTOC.text(path, arguments: ["--verbose"], serverMajor: serverMajor, session: session)
            let lines = TableSelection.useList(TOCEntry.parseList(toc), tables: only,
                                               dependencies: DirectoryLoadPlan.dependencies(inVerboseList: toc))
            let name = ".pgsnap-use-list-\(getpid())"
            try dir.writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: name)
            useList = dir.file(name)
            arguments.append("--use-list=\(dir.file(name))")
        } else {
            arguments.append("--exit-on-error")
        }
        let what = only.map { "\($0.count) table(s) of \(m.id)" } ?? m.id
        let big = only == nil ? ParallelTableLoad.candidates(m, jobs: jobs, environment: session.environment) : []
        session.reporter.info("pgsnap: restoring \(what) into scratch database \(scratch) with \(jobs) pg_restore job(s)"
            + (big.isEmpty ? "" : "; \(big.count) big table(s) loaded through \(jobs) COPY sessions each"))
        // Section by section, never one `pg_restore -j` over all three: its scheduler may create a
        // trigger of a partitioned table (post-data, waiting only for the parent's empty data)
        // while partitions are still loading, so the trigger fires on restored rows (seen on 17:
        // an audit trigger advanced a sequence by a thousand; rows it inserted early would be
        // counted). Schema first; then the data (big tables split across sessions while
        // pg_restore loads the rest); then indexes, constraints and triggers, in parallel jobs.
        if !big.isEmpty {
            return try loadSplit(m, dir: dir, path: path, big: big, tool: tool.path, arguments: arguments, serverMajor: serverMajor,
                                 listings: listings, scratch: scratch, jobs: jobs, phases: phases, environment: environment, settings: settings)
        }
        try phases.measure("schema") {
            try runPgRestore(tool.path, arguments + ["--section=pre-data", path], environment: environment, m: m, dir: dir, tolerant: only != nil)
        }
        try phases.measure("load_data") {
            try runPgRestore(tool.path, arguments + ["--section=data", path], environment: environment, m: m, dir: dir, tolerant: only != nil)
        }
        try phases.measure("indexes_constraints") {
            try runPgRestore(tool.path, arguments + ["--section=post-data", path], environment: environment, m: m, dir: dir, tolerant: only != nil)
        }
        return [:]
    }

    func runPgRestore(_ tool: String, _ arguments: [String], environment: [String: String], m: Manifest, dir: SnapshotDirectory,
                      tolerant: Bool) throws {
        let child = try ChildProcess(ExternalCommand(name: "pg_restore", executable: tool, arguments: arguments, environment: environment),
                                     stdin: .null, stdout: .null, stderr: .pipe)
        try checkPgRestore(child.wait(), child, m: m, dir: dir, tolerant: tolerant)
    }

    /// - Parameter tolerant: `restore --table`: errors on objects outside the chosen tables are a warning.
    func checkPgRestore(_ status: Termination, _ child: ChildProcess, m: Manifest, dir: SnapshotDirectory, tolerant: Bool,
                        step: String? = nil) throws {
        if SignalTrap.received != nil { throw PGSnapError(.interrupted, "restore interrupted; the target was not changed") }
        guard status.succeeded else {
            let line = child.lastErrorLine.map { session.redact(oneLine($0)) } ?? "\(status)"
            if tolerant {
                let errors = child.stderrLines.filter { $0.contains("error:") }
                session.reporter.warn("pg_restore reported \(errors.count) error(s) on objects outside the chosen tables (first: \(session.redact(oneLine(errors.first ?? line)))); the tables' row counts are checked next")
                return
            }
            // A data file that cannot be read or inflated although its size and SHA-256 matched: the
            // snapshot was written damaged (pg_restore's words name the file).
            if line.contains("could not read from input file") || line.contains("could not uncompress data") {
                throw PGSnapError.verification("snapshot \(m.id) is damaged or unreadable: \(line)",
                                               next: "The target was not changed; run 'pgsnap verify \(m.id)' and restore another snapshot")
            }
            throw PGSnapError("pg_restore failed while restoring \(m.id)\(step.map { " (\($0))" } ?? "") (\(status)): \(line)",
                              next: loadFailureAdvice(line, m, dir: dir, noOwner: child.command.arguments.contains("--no-owner")))
        }
    }
}
