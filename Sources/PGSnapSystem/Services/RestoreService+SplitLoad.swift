import Foundation
import PGSnapCore
import Synchronization

/// A directory restore with big tables (`ParallelTableLoad.candidates`): their rows go through
/// several COPY sessions at once, and as much else as can safely run beside that load does.
///
/// In order, with `DirectoryLoadPlan` deciding what may overlap:
/// 1. the schema the big tables need (`schemaFirst`): their tables and what those depend on;
/// 2. the big tables' rows, here; beside them, on a thread of their own: the rest of the
///    schema, the other tables' data (`pg_restore -j`), then those tables' own indexes and keys
///    (`earlyPostData`, one job);
/// 3. after all data: everything else pg_restore lists for post-data (the big tables' indexes
///    and keys, triggers, rules, comments, ...), in parallel jobs.
/// Use-lists without `--section` throughout: pg_restore gives an entry of no section of its own
/// (a comment, a grant) the section of the entry before it in the list's order, so a split list
/// run with `--section` could drop one; each list is what pg_restore itself lists for the section.
extension RestoreService {
    func loadSplit(_ m: Manifest, dir: SnapshotDirectory, path: String, big: [StoredFile], tool: String, arguments: [String],
                   serverMajor: Int?, listings: Pending<[String]>?, scratch: String, jobs: Int, phases: PhaseTimes,
                   environment: [String: String], settings: [String: String]) throws -> [String: Int64] {
        let bigIDs = Set(big.compactMap { DirectoryDump.dataFileDumpID($0.name) })
        let read = try listings?.value() ?? splitListings(path, serverMajor: serverMajor)
        let verbose = read[0]
        let entries = TOCEntry.parseList(verbose)
        let dependencies = DirectoryLoadPlan.dependencies(inVerboseList: verbose)
        let preData = TOCEntry.parseList(read[1]), postData = TOCEntry.parseList(read[2])
        var lists: [String] = []
        defer { for l in lists { unlink(dir.file(l)) } }
        func useList(_ name: String, _ chosen: [TOCEntry]) throws -> String {
            let file = ".pgsnap-use-list-\(getpid())-\(name)"
            try dir.writeAtomically(Data((chosen.map(\.line).joined(separator: "\n") + "\n").utf8), to: file)
            lists.append(file)
            return "--use-list=\(dir.file(file))"
        }
        func pgRestore(_ extra: [String], jobs: Bool = true) -> ExternalCommand {
            ExternalCommand(name: "pg_restore", executable: tool, arguments: arguments.filter { jobs || !$0.hasPrefix("--jobs=") } + extra + [path],
                            environment: environment)
        }

        // 1. The schema the big tables need; all of it when the split cannot be made.
        let first = DirectoryLoadPlan.bigTablesInFamily(entries: entries, dependencies: dependencies, bigDataIDs: bigIDs) ? nil
            : DirectoryLoadPlan.schemaFirst(entries: entries, preData: preData, dependencies: dependencies, bigDataIDs: bigIDs)
        var schemaLater = first.map { f in preData.filter { !f.contains($0.dumpID) } } ?? []
        let inherited = try phases.measure("schema") { () -> Bool in
            let list = try first.map { f in try useList("schema", preData.filter { f.contains($0.dumpID) }) } ?? "--section=pre-data"
            try runPgRestore(tool, arguments + [list, path], environment: environment, m: m, dir: dir, tolerant: false)
            // A big table in a partition tree or an inheritance family (all made by now: each link
            // depends on it): a sibling's ATTACH PARTITION locks a default partition, an index on
            // the parent reaches into it. Nothing of that family is made or built beside its load.
            guard try bigTablesInherit(big, scratch: scratch) else { return false }
            if !schemaLater.isEmpty {
                try runPgRestore(tool, arguments + [try useList("schema-rest", schemaLater), path], environment: environment, m: m, dir: dir,
                                 tolerant: false)
                schemaLater = []
            }
            return true
        }
        let early = inherited ? [] : DirectoryLoadPlan.earlyPostData(entries: entries, dependencies: dependencies, bigDataIDs: bigIDs)
            .intersection(Set(postData.map(\.dumpID)))

        // 2. Beside the big tables' load: the rest of the schema, the other tables' data, their indexes and keys.
        let dataStart = DispatchTime.now()
        let schemaRest = schemaLater.isEmpty ? nil : pgRestore([try useList("schema-rest", schemaLater)], jobs: false)
        let othersData = pgRestore(["--section=data", try useList("data", entries.filter { !bigIDs.contains($0.dumpID) })])
        let earlyIndexes = early.isEmpty ? nil : pgRestore([try useList("early", postData.filter { early.contains($0.dumpID) })], jobs: false)
        let background = BackgroundSteps()
        defer { background.stop() }
        background.run {
            if let schemaRest {
                let started = DispatchTime.now()
                let child = try background.start(schemaRest)
                try self.checkPgRestore(child.wait(), child, m: m, dir: dir, tolerant: false, step: "the rest of the schema, during the big tables' load")
                phases.record("schema_during_load", seconds: seconds(since: started))
            }
            let others = try background.start(othersData)
            try self.checkPgRestore(others.wait(), others, m: m, dir: dir, tolerant: false)
            if let earlyIndexes {
                let started = DispatchTime.now()
                let child = try background.start(earlyIndexes)
                try self.checkPgRestore(child.wait(), child, m: m, dir: dir, tolerant: false,
                                        step: "the other tables' indexes and keys, built during the big tables' load")
                phases.record("indexes_during_load", seconds: seconds(since: started))
            }
        }
        let loader = ParallelTableLoad(session: session, pgRestore: tool, environment: environment, settings: settings, scratch: scratch, jobs: jobs)
        // The big tables' rows as their COPY commands stored them: no count(*) over them afterwards.
        var copied: [String: Int64] = [:]
        for f in big {
            // The decrypted copy holds the plain names; a failed background step ends the load early.
            let dumpID = DirectoryDump.dataFileDumpID(f.name)!
            if let rows = try loader.load(path: path, dumpID: dumpID, dataFile: DirectoryDump.plainName(f.name), table: f.table ?? f.name,
                                          dir: dir, shouldStop: { try background.throwIfFailed() }) {
                copied[f.table ?? f.name] = rows
            } else {
                // Its rows go through another table (pg_dump --load-via-partition-root): as pg_restore
                // loads them, one session; count(*) checks them afterwards.
                session.reporter.detail("pgsnap: \(f.table ?? f.name)'s rows load through its partition root: pg_restore loads them in one session")
                try runPgRestore(tool, arguments + [try useList("data-\(dumpID)", entries.filter { $0.dumpID == dumpID }), path],
                                 environment: environment, m: m, dir: dir, tolerant: false)
            }
        }
        try background.wait()
        phases.record("load_data", seconds: seconds(since: dataStart))

        // 3. Everything else of post-data.
        try phases.measure("indexes_constraints") {
            let list = try useList("late", postData.filter { !early.contains($0.dumpID) })
            try runPgRestore(tool, arguments + [list, path], environment: environment, m: m, dir: dir, tolerant: false)
        }
        return copied
    }

    /// Three readings of the table of contents, at once (each a pg_restore): `--list --verbose`
    /// (with dependencies), and the pre-data and post-data sections as pg_restore lists them.
    func splitListings(_ path: String, serverMajor: Int?) throws -> [String] {
        let listings = [["--verbose"], ["--section=pre-data"], ["--section=post-data"]]
        let texts = Mutex<[Result<String, Error>?]>(Array(repeating: nil, count: listings.count))
        DispatchQueue.concurrentPerform(iterations: listings.count) { i in
            let text = Result { try DirectoryTOC.text(path, arguments: listings[i], serverMajor: serverMajor, session: session) }
            texts.withLock { $0[i] = text }
        }
        return try texts.withLock { try $0.map { try $0!.get() } }
    }

    /// Whether a big table (made by now) is a partition, a partitioned table, or has inheritance
    /// parents or children.
    func bigTablesInherit(_ big: [StoredFile], scratch: String) throws -> Bool {
        let names = big.compactMap(\.table)
        guard names.count == big.count else { return true }
        let db = try session.connect(database: scratch)
        let regclasses = try names.map { "\(try db.quoteLiteral($0))::regclass" }.joined(separator: ", ")
        return try db.query("SELECT count(*) FROM pg_inherits WHERE inhrelid IN (\(regclasses)) OR inhparent IN (\(regclasses))").first?[0] != "0"
    }
}
