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
            if let e = r.error { return ("files", "\(m.file)/\(e)") }
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
                       jobs: Int?, only: [TableSelection.Table]?, decryption: AgeDecryption?, phases: PhaseTimes,
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
        let jobs = jobs ?? min(ProcessInfo.processInfo.activeProcessorCount, 64)
        var arguments = ["--no-password", "--jobs=\(jobs)", "--dbname=\(session.childConninfo(database: scratch))"]
        if noOwner { arguments.append("--no-owner") }
        var useList: String?
        defer { if let useList { unlink(useList) } }
        if let only {
            // Objects the chosen tables do not need may fail (a function returning another table's
            // rows): pg_restore goes on, and the chosen tables' row counts decide.
            let lines = TableSelection.useList(try DirectoryTOC.list(path, serverMajor: serverMajor, session: session), tables: only)
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
        try phases.measure("schema") {
            try runPgRestore(tool.path, arguments + ["--section=pre-data", path], environment: environment, m: m, dir: dir, tolerant: only != nil)
        }
        if big.isEmpty {
            try phases.measure("load_data") {
                try runPgRestore(tool.path, arguments + ["--section=data", path], environment: environment, m: m, dir: dir, tolerant: only != nil)
            }
            try phases.measure("indexes_constraints") {
                try runPgRestore(tool.path, arguments + ["--section=post-data", path], environment: environment, m: m, dir: dir, tolerant: only != nil)
            }
            return [:]
        }
        let dataStart = DispatchTime.now()
        let bigIDs = Set(big.compactMap { DirectoryDump.dataFileDumpID($0.name) })
        let entries = try DirectoryTOC.list(path, serverMajor: serverMajor, session: session)
        let rest = entries.filter { !bigIDs.contains($0.dumpID) }
        let restName = ".pgsnap-use-list-\(getpid())"
        try dir.writeAtomically(Data((rest.map(\.line).joined(separator: "\n") + "\n").utf8), to: restName)
        defer { unlink(dir.file(restName)) }
        let plan = try earlyPostData(entries, bigIDs: bigIDs, big: big, path: path, serverMajor: serverMajor, scratch: scratch)
        let early = plan?.early ?? []
        let earlyName = ".pgsnap-use-list-\(getpid())-early", lateName = ".pgsnap-use-list-\(getpid())-late"
        defer { unlink(dir.file(earlyName)); unlink(dir.file(lateName)) }
        if let plan {
            // Lists, without --section: pg_restore gives an entry of no section of its own (a
            // comment, a grant) the section of the entry before it in the list's order, so a
            // comment on an early index would fall out of a late "--section=post-data" run.
            // The late list is what pg_restore itself lists for --section=post-data, minus the early.
            try dir.writeAtomically(Data((entries.filter { early.contains($0.dumpID) }.map(\.line).joined(separator: "\n") + "\n").utf8), to: earlyName)
            try dir.writeAtomically(Data((plan.postData.filter { !early.contains($0.dumpID) }.map(\.line).joined(separator: "\n") + "\n").utf8), to: lateName)
        }
        // The other tables' data, then (when any) their own indexes and keys, in the background
        // while the big tables load here.
        // One job for the early indexes: the big tables' COPY sessions have the cores.
        let othersData = ExternalCommand(name: "pg_restore", executable: tool.path,
                                         arguments: arguments + ["--section=data", "--use-list=\(dir.file(restName))", path], environment: environment)
        let earlyIndexes = ExternalCommand(name: "pg_restore", executable: tool.path,
                                           arguments: arguments.filter { !$0.hasPrefix("--jobs=") } + ["--use-list=\(dir.file(earlyName))", path],
                                           environment: environment)
        let background = BackgroundSteps()
        defer { background.stop() }
        background.run {
            let others = try background.start(othersData)
            try self.checkPgRestore(others.wait(), others, m: m, dir: dir, tolerant: false)
            guard !early.isEmpty else { return }
            let started = DispatchTime.now()
            let child = try background.start(earlyIndexes)
            try self.checkPgRestore(child.wait(), child, m: m, dir: dir, tolerant: false,
                                    step: "the other tables' indexes and keys, built during the big tables' load")
            phases.record("indexes_during_load", seconds: seconds(since: started))
        }
        let loader = ParallelTableLoad(session: session, pgRestore: tool.path, environment: environment, settings: settings, scratch: scratch, jobs: jobs)
        // The big tables' rows as their COPY commands stored them: no count(*) over them afterwards.
        var copied: [String: Int64] = [:]
        for f in big {
            // The decrypted copy holds the plain names; a failed background step ends the load early.
            copied[f.table ?? f.name] = try loader.load(path: path, dumpID: DirectoryDump.dataFileDumpID(f.name)!,
                                                       dataFile: DirectoryDump.plainName(f.name), table: f.table ?? f.name, dir: dir,
                                                       shouldStop: { try background.throwIfFailed() })
        }
        try background.wait()
        phases.record("load_data", seconds: seconds(since: dataStart))
        try phases.measure("indexes_constraints") {
            let section = plan == nil ? ["--section=post-data"] : ["--use-list=\(dir.file(lateName))"]
            try runPgRestore(tool.path, arguments + section + [path], environment: environment, m: m, dir: dir, tolerant: false)
        }
        return copied
    }

    /// The post-data entries that may run while the big tables load (`PostDataPlan`), and every
    /// entry pg_restore itself lists for `--section=post-data`; nil (all after the load, as
    /// pg_restore's post-data section) when a big table is a partition, a parent or a child of
    /// another table (an index or key on its parent would reach into it mid-load), when no entry
    /// may run early, or when pg_restore cannot list them.
    func earlyPostData(_ entries: [TOCEntry], bigIDs: Set<Int>, big: [StoredFile], path: String, serverMajor: Int?,
                       scratch: String) throws -> (early: Set<Int>, postData: [TOCEntry])? {
        let names = big.compactMap(\.table)
        guard names.count == big.count else { return nil }
        let db = try session.connect(database: scratch)
        let regclasses = try names.map { "\(try db.quoteLiteral($0))::regclass" }.joined(separator: ", ")
        let inherited = try db.query("SELECT count(*) FROM pg_inherits WHERE inhrelid IN (\(regclasses)) OR inhparent IN (\(regclasses))")
        guard inherited.first?[0] == "0" else { return nil }
        let verbose = try DirectoryTOC.text(path, arguments: ["--verbose"], serverMajor: serverMajor, session: session)
        let early = PostDataPlan.early(entries: entries, dependencies: PostDataPlan.dependencies(inVerboseList: verbose), bigDataIDs: bigIDs)
        let postData = TOCEntry.parseList(try DirectoryTOC.text(path, arguments: ["--section=post-data"], serverMajor: serverMajor, session: session))
        let inPostData = Set(postData.map(\.dumpID))
        guard !early.isEmpty, early.isSubset(of: inPostData) else { return nil }
        return (early, postData)
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
            throw PGSnapError("pg_restore failed while restoring \(m.id)\(step.map { " (\($0))" } ?? "") (\(status)): \(line)",
                              next: loadFailureAdvice(line, m, dir: dir))
        }
    }
}
