import XCTest

@testable import PGSnapCore

/// Which post-data entries may be built while the big tables load.
final class DirectoryLoadPlanTests: XCTestCase {
    // A pg_restore --list: big (data 900 split), small, child (FK to small and to big), a function.
    let list = """
        ;
        ; Archive created at 2026-12-06 22:29:15 UTC
        210; 1255 16380 FUNCTION public norm(text) postgres
        214; 1259 16385 TABLE public big postgres
        215; 1259 16390 TABLE public small postgres
        216; 1259 16395 TABLE public child postgres
        900; 0 16385 TABLE DATA public big postgres
        901; 0 16390 TABLE DATA public small postgres
        902; 0 16395 TABLE DATA public child postgres
        3963; 2606 18095 CONSTRAINT public big big_pkey postgres
        3964; 2606 18096 CONSTRAINT public small small_pkey postgres
        3965; 1259 18097 INDEX public small_n_idx postgres
        3966; 1259 18098 INDEX public small_norm_idx postgres
        3967; 2620 18099 TRIGGER public small small_audit postgres
        4500; 2606 18100 FK CONSTRAINT public child child_small_fkey postgres
        4501; 2606 18101 FK CONSTRAINT public child child_big_fkey postgres
        4502; 2606 18102 CONSTRAINT public child child_pkey postgres
        """

    /// `pg_restore --list --verbose` prints each entry's dependencies under it.
    var verbose: String {
        let deps: [Int: String] = [900: "214", 901: "215", 902: "216", 3963: "214", 3964: "215", 3965: "215", 3966: "215 210",
                                   3967: "215", 4502: "216", 4500: "3964 216 215", 4501: "3963 216 214"]
        return list.split(separator: "\n").map { line in
            guard let e = TOCEntry.parse(String(line)), let d = deps[e.dumpID] else { return String(line) }
            return line + "\n;\tdepends on: " + d
        }.joined(separator: "\n")
    }

    func testDependenciesFromTheVerboseList() {
        let deps = DirectoryLoadPlan.dependencies(inVerboseList: verbose)
        XCTAssertEqual(deps[3963], [214])
        XCTAssertEqual(deps[3966], [215, 210])
        XCTAssertEqual(deps[4500], [3964, 216, 215])
        XCTAssertEqual(deps[214], [], "an entry without a depends-on line depends on nothing")
        XCTAssertEqual(deps.count, 15)
    }

    func testOnlyIndexesAndKeysOnLoadedTablesRunEarly() {
        let entries = TOCEntry.parseList(list)
        let deps = DirectoryLoadPlan.dependencies(inVerboseList: verbose)
        let early = DirectoryLoadPlan.earlyPostData(entries: entries, dependencies: deps, bigDataIDs: [900])
        // small_pkey, small_n_idx, child_pkey, and the FK to small (through small_pkey) run early.
        // Not: big_pkey (a big table), the FK to big (through big_pkey), the index through a
        // function, the trigger (a kind that fires).
        XCTAssertEqual(early, [3964, 3965, 4502, 4500])
        XCTAssertEqual(DirectoryLoadPlan.earlyPostData(entries: entries, dependencies: deps, bigDataIDs: [900, 901]), [4502],
                       "with small split too, only child's own key is left")
        XCTAssertEqual(DirectoryLoadPlan.earlyPostData(entries: entries, dependencies: [:], bigDataIDs: [900]), [], "no dependencies known: nothing early")
    }

    func testTheSchemaTheBigTablesNeedComesFirst() {
        let pre = """
            10; 2615 2200 SCHEMA - public postgres
            11; 1247 16300 TYPE public mood postgres
            12; 1255 16301 FUNCTION public f() postgres
            13; 1259 16302 SEQUENCE public big_id_seq postgres
            14; 1259 16303 TABLE public big postgres
            15; 1259 16304 TABLE public small postgres
            16; 0 0 SEQUENCE OWNED BY public big_id_seq postgres
            17; 2604 16305 DEFAULT public big id postgres
            18; 0 0 COMMENT public TABLE big postgres
            19; 1259 16306 VIEW public small_view postgres
            20; 1255 16307 FUNCTION public g() postgres
            """
        let entries = TOCEntry.parseList(pre + "\n900; 0 16303 TABLE DATA public big postgres\n901; 0 16304 TABLE DATA public small postgres")
        let deps: [Int: [Int]] = [11: [10], 12: [10], 13: [10], 14: [10, 11], 15: [10, 12], 16: [13, 14], 17: [13, 14, 20], 18: [14],
                                  19: [15], 20: [10], 900: [14], 901: [15]]
        let first = DirectoryLoadPlan.schemaFirst(entries: entries, preData: TOCEntry.parseList(pre), dependencies: deps, bigDataIDs: [900])
        // big, its type and schema; its sequence ownership, default (and the default's function
        // and sequence), comment; every function and type whether a dependency names it or not
        // (a function body may call another). Not: small, its view.
        XCTAssertEqual(first, [10, 11, 12, 14, 16, 13, 17, 20, 18])
        XCTAssertNil(DirectoryLoadPlan.schemaFirst(entries: entries, preData: [], dependencies: deps, bigDataIDs: [900]),
                     "a big table pg_restore does not list in pre-data: no split")
    }

    /// A big table in a partition tree or an inheritance family, as pg_dump 15 records them.
    func testABigTableInAFamilyIsSeenInTheDump() {
        let family = """
            218; 1259 18353 TABLE public par postgres
            219; 1259 18356 TABLE public kid postgres
            ;\tdepends on: 218
            215; 1259 18344 TABLE public root postgres
            216; 1259 18347 TABLE public mid postgres
            ;\tdepends on: 215
            217; 1259 18350 TABLE public leaf postgres
            ;\tdepends on: 216
            220; 1259 18359 TABLE public lone postgres
            214; 1259 18343 SEQUENCE public root_id_seq postgres
            ;\tdepends on: 215
            3222; 0 0 TABLE ATTACH public leaf postgres
            ;\tdepends on: 217 216
            3368; 0 18356 TABLE DATA public kid postgres
            ;\tdepends on: 219
            3366; 0 18350 TABLE DATA public leaf postgres
            ;\tdepends on: 217
            3369; 0 18359 TABLE DATA public lone postgres
            ;\tdepends on: 220
            3367; 0 18353 TABLE DATA public par postgres
            ;\tdepends on: 218
            """
        let entries = TOCEntry.parseList(family), deps = DirectoryLoadPlan.dependencies(inVerboseList: family)
        func inFamily(_ data: Int) -> Bool { DirectoryLoadPlan.bigTablesInFamily(entries: entries, dependencies: deps, bigDataIDs: [data]) }
        XCTAssertTrue(inFamily(3366), "a leaf partition")
        XCTAssertTrue(inFamily(3368), "an inheritance child")
        XCTAssertTrue(inFamily(3367), "an inheritance parent")
        XCTAssertFalse(inFamily(3369), "a table on its own")
        XCTAssertFalse(DirectoryLoadPlan.bigTablesInFamily(entries: TOCEntry.parseList(verbose), dependencies: DirectoryLoadPlan.dependencies(inVerboseList: verbose),
                                                           bigDataIDs: [900]), "a big table with a foreign key from another is no family")
    }
}
