/// Which post-data entries of a directory dump may run while its big tables are still loading.
///
/// A directory restore loads the big tables through several COPY sessions and the other tables
/// through `pg_restore -j`, which finishes long before. The other tables' indexes, primary keys,
/// unique and foreign keys can then be built at once, on those tables alone, instead of after
/// the big load: as `pg_restore -j`'s own scheduler does, but only for the kinds that touch
/// nothing but their own (loaded) tables. Triggers, rules, policies, materialized view refreshes,
/// attachments and everything else wait for the end of all data, as before.
public enum PostDataPlan {
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
    public static func early(entries: [TOCEntry], dependencies: [Int: [Int]], bigDataIDs: Set<Int>) -> Set<Int> {
        let byID = Dictionary(entries.map { ($0.dumpID, $0) }, uniquingKeysWith: { a, _ in a })
        let bigOIDs = Set(entries.filter { $0.desc == "TABLE DATA" && bigDataIDs.contains($0.dumpID) }.map(\.oid))
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
