/// What of a directory dump may run while its big tables load, beside them.
///
/// A directory restore loads the big tables through several COPY sessions and the other tables
/// through `pg_restore -j`, which finishes long before. The big tables' load starts as soon as
/// the schema they need exists (`schemaFirst`); the rest of the schema, the other tables' data
/// and then (`earlyPostData`) their own indexes, primary keys,
/// unique and foreign keys can then be built at once, on those tables alone, instead of after
/// the big load: as `pg_restore -j`'s own scheduler does, but only for the kinds that touch
/// nothing but their own (loaded) tables. Triggers, rules, policies, materialized view refreshes,
/// attachments and everything else wait for the end of all data, as before.
public enum DirectoryLoadPlan {
    /// Pre-data kinds that may wait until the big tables' load has started: other tables and
    /// relations, and what hangs on them. Everything else (schemas, extensions, types, domains,
    /// functions, operators, collations, casts, ...) is made first, whether or not a dependency
    /// line names it: a function body (a CHECK constraint's, a generated column's, a domain's)
    /// may call another function or use a type that pg_depend does not record, and COPY runs it
    /// on the first rows.
    static let deferrableKinds: Set<String> = [
        "TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE", "SEQUENCE", "SEQUENCE OWNED BY", "DEFAULT", "TABLE ATTACH",
        "CHECK CONSTRAINT", "COMMENT", "ACL", "SECURITY LABEL",
    ]

    /// The pre-data entries the big tables' load needs first: each big table's TABLE entry,
    /// every pre-data entry that depends on one directly (its defaults, sequence ownership,
    /// comments, partitions, children, views: anything that could lock it), every entry of a
    /// kind that is not a relation or hangs on one (`deferrableKinds`), and everything those
    /// depend on, transitively. The rest (other tables, their sequences, defaults, views and
    /// comments) may then be made beside the load: none of it names a big table.
    ///
    /// - Parameters:
    ///   - preData: what pg_restore lists for `--section=pre-data`.
    ///   - dependencies: every entry's dependencies (`dependencies(inVerboseList:)`).
    /// - Returns: the dump ids to make first; nil when a big table's TABLE entry is not in `preData`.
    public static func schemaFirst(entries: [TOCEntry], preData: [TOCEntry], dependencies: [Int: [Int]], bigDataIDs: Set<Int>) -> Set<Int>? {
        let bigOIDs = bigTableOIDs(entries, bigDataIDs)
        let tables = Set(preData.filter { $0.desc == "TABLE" && bigOIDs.contains($0.oid) }.map(\.dumpID))
        guard tables.count == bigOIDs.count, !tables.isEmpty else { return nil }
        let inPreData = Set(preData.map(\.dumpID))
        var first = Set<Int>()
        var stack = Array(tables) + preData.filter { e in
            !deferrableKinds.contains(e.desc) || (dependencies[e.dumpID] ?? []).contains { tables.contains($0) }
        }.map(\.dumpID)
        while let id = stack.popLast() {
            guard inPreData.contains(id), first.insert(id).inserted else { continue }
            stack += dependencies[id] ?? []
        }
        return first
    }

    /// Whether a big table belongs to a partition tree or an inheritance family, as the dump
    /// records it: its TABLE entry depends on another table's (a partition, a child), or another
    /// table or a TABLE ATTACH depends on its (a parent). Such a schema is made whole, in the
    /// dump's own order, before the load: attaching a tree in another order changes what
    /// PostgreSQL makes of it (18 gives the leaves of a sub-partitioned tree attached late no
    /// identity column). A table whose column has another table's row type counts too: the
    /// cautious order costs only the overlap.
    public static func bigTablesInFamily(entries: [TOCEntry], dependencies: [Int: [Int]], bigDataIDs: Set<Int>) -> Bool {
        let bigOIDs = bigTableOIDs(entries, bigDataIDs)
        let tables = Set(entries.filter { $0.desc == "TABLE" }.map(\.dumpID))
        let big = Set(entries.filter { $0.desc == "TABLE" && bigOIDs.contains($0.oid) }.map(\.dumpID))
        return entries.contains { e in
            let deps = Set(dependencies[e.dumpID] ?? [])
            if big.contains(e.dumpID) { return !deps.intersection(tables).subtracting([e.dumpID]).isEmpty }
            return (e.desc == "TABLE" || e.desc == "TABLE ATTACH") && !deps.isDisjoint(with: big)
        }
    }

    /// The big tables' oids (a TABLE entry shares its oid with its TABLE DATA entry).
    static func bigTableOIDs(_ entries: [TOCEntry], _ bigDataIDs: Set<Int>) -> Set<UInt32> {
        Set(entries.filter { $0.desc == "TABLE DATA" && bigDataIDs.contains($0.dumpID) }.map(\.oid))
    }

    /// Kinds that build something on loaded tables and fire nothing.
    static let earlyKinds: Set<String> = ["INDEX", "CONSTRAINT", "FK CONSTRAINT"]

    /// The dump ids of the entries that may run early.
    ///
    /// An entry may when its kind is one of `earlyKinds` and everything it depends on is either
    /// a TABLE entry that is not a big table, or another entry that may run early. Anything
    /// else (a dependency on a function, a view, a big table, an entry not in the list) keeps
    /// it for after the data.
    ///
    /// - Parameters:
    ///   - entries: `pg_restore --list` of the whole dump.
    ///   - dependencies: every entry's dependencies (`dependencies(inVerboseList:)`).
    ///   - bigDataIDs: the TABLE DATA entries loaded apart (a TABLE entry shares its oid with its data).
    public static func earlyPostData(entries: [TOCEntry], dependencies: [Int: [Int]], bigDataIDs: Set<Int>) -> Set<Int> {
        let byID = Dictionary(entries.map { ($0.dumpID, $0) }, uniquingKeysWith: { a, _ in a })
        let bigOIDs = bigTableOIDs(entries, bigDataIDs)
        var verdict: [Int: Bool] = [:]
        func mayRunEarly(_ id: Int, depth: Int) -> Bool {
            if let v = verdict[id] { return v }
            guard depth < 64, let e = byID[id] else { return false }
            verdict[id] = false  // a cycle (none in a dump) stays late
            let ok: Bool
            if e.desc == "TABLE" {
                ok = !bigOIDs.contains(e.oid)
            } else if earlyKinds.contains(e.desc), let deps = dependencies[id], !deps.isEmpty {
                ok = deps.allSatisfy { mayRunEarly($0, depth: depth + 1) }
            } else {
                ok = false
            }
            verdict[id] = ok
            return ok
        }
        return Set(entries.filter { earlyKinds.contains($0.desc) && mayRunEarly($0.dumpID, depth: 0) }.map(\.dumpID))
    }

    /// The `;\tdepends on: a b c` lines of `pg_restore --list --verbose`: each entry's dump id
    /// and the ids it depends on (an entry without that line depends on nothing).
    public static func dependencies(inVerboseList text: String) -> [Int: [Int]] {
        var out: [Int: [Int]] = [:]
        var current: Int?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let e = TOCEntry.parse(String(line)) {
                current = e.dumpID
                out[e.dumpID] = []
            } else if line.hasPrefix(";\tdepends on:"), let c = current {
                out[c] = line.dropFirst(";\tdepends on:".count).split(separator: " ").compactMap { Int($0) }
                current = nil
            }
        }
        return out
    }
}
