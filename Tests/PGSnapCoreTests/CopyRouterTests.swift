import PGSnapCore
import XCTest

/// The router must hand psql exactly the script minus the split tables' blocks, and the split
/// tables exactly their rows, however the stream is cut.
final class CopyRouterTests: XCTestCase {
    static let dump = """
        --
        -- PostgreSQL database dump
        --

        \\restrict abc123
        SET statement_timeout = 0;
        SET client_encoding = 'UTF8';
        SELECT pg_catalog.set_config('search_path', '', false);
        SET check_function_bodies = false;

        CREATE FUNCTION public.f() RETURNS void LANGUAGE sql AS $$
        COPY public.big FROM stdin;
        $$;
        SET default_tablespace = '';
        CREATE TABLE public.big (id int, v text);
        CREATE TABLE "odd
        name".t (id int);

        --
        -- Data for Name: big; Type: TABLE DATA; Schema: public; Owner: postgres
        --

        COPY public.big (id, v) FROM stdin;
        1\tone
        2\t\\\\.
        3\t\\.x
        \\.


        --
        -- Data for Name: t; Type: TABLE DATA; Schema: odd
        --

        COPY "odd
        name".t (id) FROM stdin;
        7
        \\.


        --
        -- Data for Name: small; Type: TABLE DATA; Schema: public; Owner: postgres
        --

        COPY public.small (id) FROM stdin;
        5
        \\.


        CREATE INDEX big_id ON public.big (id);
        \\unrestrict abc123

        -- PostgreSQL database dump complete

        """

    struct Routed: Equatable {
        var script = ""
        var starts: [String] = []
        var headers: [String] = []
        var rows: [String] = []
        var ends = 0
    }

    func route(_ text: String, split: Set<String>, cuts: [Int]) throws -> (Routed, [String]) {
        var router = CopyRouter { split.contains($0) }
        var r = Routed()
        var current = ""
        let bytes = Array(text.utf8)
        var start = 0
        for cut in (cuts + [bytes.count]).sorted() where cut >= start {
            try bytes[start..<min(cut, bytes.count)].withUnsafeBytes { chunk in
                try router.consume(chunk) { event in
                    switch event {
                    case .script(let b): r.script += String(decoding: b, as: UTF8.self)
                    case .startRows(let table, let statement, let header):
                        r.starts.append(table + " | " + statement)
                        r.headers.append(header)
                        current = ""
                    case .rows(let b): current += String(decoding: b, as: UTF8.self)
                    case .endRows:
                        r.rows.append(current)
                        r.ends += 1
                    }
                }
            }
            start = min(cut, bytes.count)
        }
        return (r, router.splitTables)
    }

    func testNothingSplitPassesTheDumpThroughUnchanged() throws {
        let (r, split) = try route(Self.dump, split: [], cuts: [])
        XCTAssertEqual(r.script, Self.dump)
        XCTAssertEqual(r.starts, [])
        XCTAssertEqual(split, [])
    }

    func testSplitTablesLeaveTheScriptWithTheirRowsWhereverTheStreamIsCut() throws {
        let expectedScript = Self.dump
            .replacingOccurrences(of: "COPY public.big (id, v) FROM stdin;\n1\tone\n2\t\\\\.\n3\t\\.x\n\\.\n", with: "")
            .replacingOccurrences(of: "COPY \"odd\nname\".t (id) FROM stdin;\n7\n\\.\n", with: "")
        let header = "SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n"
        let bytes = Self.dump.utf8.count
        // Every single cut point, and a few multi-cut patterns (1-byte chunks included).
        var patterns: [[Int]] = (0...bytes).map { [$0] }
        patterns.append(Array(0...bytes))
        patterns.append(Array(stride(from: 0, to: bytes, by: 3)))
        patterns.append(Array(stride(from: 1, to: bytes, by: 7)))
        for cuts in patterns {
            let (r, split) = try route(Self.dump, split: ["public.big", "\"odd\nname\".t"], cuts: cuts)
            XCTAssertEqual(r.script, expectedScript, "cuts \(cuts.prefix(3))")
            XCTAssertEqual(r.starts, ["public.big | COPY public.big (id, v) FROM stdin;\n", "\"odd\nname\".t | COPY \"odd\nname\".t (id) FROM stdin;\n"],
                           "cuts \(cuts.prefix(3))")
            XCTAssertEqual(r.headers, [header, header])
            XCTAssertEqual(r.rows, ["1\tone\n2\t\\\\.\n3\t\\.x\n", "7\n"], "cuts \(cuts.prefix(3))")
            XCTAssertEqual(r.ends, 2)
            XCTAssertEqual(split, ["public.big", "\"odd\nname\".t"])
            if r.script != expectedScript { break }
        }
    }

    /// A directory dump's data file: rows, the `\.` line, and pg_dump's trailing blank lines.
    func testRowsOnlyReadsADataFileUpToItsEndLineWhereverItIsCut() throws {
        let file = "1\tone\n2\t\\\\.\n\\.x\n\\.\n\n\n"
        let bytes = Array(file.utf8)
        for cut in 0...bytes.count {
            var router = CopyRouter.rowsOnly()
            var rows = "", ends = 0
            for part in [bytes[0..<cut], bytes[cut...]] {
                try part.withUnsafeBytes { chunk in
                    try router.consume(chunk) { event in
                        switch event {
                        case .rows(let b): rows += String(decoding: b, as: UTF8.self)
                        case .endRows: ends += 1
                        case .script(let b): XCTAssertTrue(ends == 1 && b.allSatisfy { $0 == 0x0A }, "only blank lines after the end")
                        case .startRows: XCTFail("a data file holds rows only")
                        }
                    }
                }
            }
            XCTAssertEqual(rows, "1\tone\n2\t\\\\.\n\\.x\n", "cut \(cut)")
            XCTAssertEqual(ends, 1, "cut \(cut)")
        }
    }

    /// A COPY line inside a function body is SQL, not data: it is never split.
    func testCopyInAFunctionBodyIsNotData() throws {
        let (r, _) = try route(Self.dump, split: ["public.big"], cuts: [])
        XCTAssertTrue(r.script.contains("AS $$\nCOPY public.big FROM stdin;\n$$;"), r.script)
        XCTAssertEqual(r.starts.count, 1)
    }
}
