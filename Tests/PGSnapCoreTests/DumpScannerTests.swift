import XCTest

@testable import PGSnapCore

final class DumpScannerTests: XCTestCase {
    /// What a scan reports, comparable as a whole.
    struct Scan: Equatable, CustomStringConvertible {
        var tables: [String]
        var rows: [Int64]
        var bytes: Int64
        var trailer: Bool
        var description: String { "tables \(zip(tables, rows).map { "\($0)=\($1)" }), bytes \(bytes), trailer \(trailer)" }
    }

    static func scan(_ chunks: [ArraySlice<UInt8>]) -> Scan {
        var s = DumpScanner()
        for chunk in chunks { s.consume(Array(chunk)) }
        return Scan(tables: s.tables.map(\.name), rows: s.tables.map(\.rows), bytes: s.bytes, trailer: s.sawCompletionTrailer)
    }

    static func scan(_ text: String) -> Scan { scan([Array(text.utf8)[...]]) }

    // A plain pg_dump of PostgreSQL 17.6: tabs separate columns, `\t` `\n` `\\` are COPY escapes.
    static let head = #"""
        --
        -- PostgreSQL database dump
        --

        \restrict Kq2pXwZ3bY7LmN8fRt5vHs1JdG6cPa0eUo9iWy4nQx2zBk7MhLr3TgVj5FbCe8Dq

        -- Dumped from database version 17.6 (Debian 17.6-1.pgdg120+1)
        -- Dumped by pg_dump version 17.6 (Debian 17.6-1.pgdg120+1)

        SET statement_timeout = 0;
        SET lock_timeout = 0;
        SET client_encoding = 'UTF8';
        SET standard_conforming_strings = on;
        SELECT pg_catalog.set_config('search_path', '', false);
        SET check_function_bodies = false;

        --
        -- Name: reload(); Type: FUNCTION; Schema: public; Owner: postgres
        --

        CREATE FUNCTION public.reload() RETURNS void
            LANGUAGE sql
            AS $$
        COPY x FROM stdin;
        COPY public.t (a, b) FROM stdin;
        $$;


        ALTER FUNCTION public.reload() OWNER TO postgres;

        SET default_tablespace = '';

        SET default_table_access_method = heap;

        --
        -- Name: Mixed Case; Type: TABLE; Schema: public; Owner: postgres
        --

        CREATE TABLE public."Mixed Case" (
            id integer NOT NULL,
            "Note" text
        );


        ALTER TABLE public."Mixed Case" OWNER TO postgres;

        --
        -- Name: t; Type: TABLE; Schema: public; Owner: postgres
        --

        CREATE TABLE public.t (
            a integer NOT NULL,
            b text
        );


        ALTER TABLE public.t OWNER TO postgres;

        --
        -- Data for Name: Mixed Case; Type: TABLE DATA; Schema: public; Owner: postgres
        --

        COPY public."Mixed Case" (id, "Note") FROM stdin;
        1\#tHello
        2\#t\N
        \.


        --
        -- Data for Name: empty; Type: TABLE DATA; Schema: public; Owner: postgres
        --

        COPY public.empty (id) FROM stdin;
        \.


        --
        -- Data for Name: notes; Type: TABLE DATA; Schema: public; Owner: postgres
        --

        COPY public.notes (body) FROM stdin;
        \\.
        \\
        .
        a\\.b
        \.


        --
        -- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres
        --

        COPY public.t (a, b) FROM stdin;
        1\#thello
        2\#tline one\nline two
        3\#ttab\there
        4\#tback\\slash
        5\#t\\.
        6\#t-- not a comment
        7\#t

        """#

    static let rest = #"""
        \.


        --
        -- Data for Name: "a""b"; Type: TABLE DATA; Schema: s p; Owner: postgres
        --

        COPY "s p"."a""b" (x) FROM stdin;
        COPY y FROM stdin;
        \.


        --
        -- Name: t_id_seq; Type: SEQUENCE SET; Schema: public; Owner: postgres
        --

        SELECT pg_catalog.setval('public.t_id_seq', 7, true);


        --
        -- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
        --

        ALTER TABLE ONLY public.t
            ADD CONSTRAINT t_pkey PRIMARY KEY (a);


        """#

    static let trailer = """
        --
        -- PostgreSQL database dump complete
        --


        """

    static let unrestrict = "\\unrestrict Kq2pXwZ3bY7LmN8fRt5vHs1JdG6cPa0eUo9iWy4nQx2zBk7MhLr3TgVj5FbCe8Dq\n\n"

    /// The whole dump as pg_dump 17.6 writes it.
    static let dump = head + rest + trailer + unrestrict

    static let expectedTables = ["public.\"Mixed Case\"", "public.empty", "public.notes", "public.t", "\"s p\".\"a\"\"b\""]
    static let expectedRows: [Int64] = [2, 0, 4, 7, 1]

    func testRealisticDumpIsCountedExactly() {
        let scan = DumpScannerTests.scan(DumpScannerTests.dump)
        XCTAssertEqual(scan.tables, DumpScannerTests.expectedTables, "\(scan)")
        XCTAssertEqual(scan.rows, DumpScannerTests.expectedRows, "\(scan)")
        XCTAssertEqual(scan.bytes, Int64(DumpScannerTests.dump.utf8.count))
        XCTAssertTrue(scan.trailer, "\(scan)")
    }

    func testRowsByTableSumsRepeatedTables() {
        var s = DumpScanner()
        let block = "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\n\n"
        s.consume(Array((block + block.replacingOccurrences(of: "2\n", with: "2\n3\n")).utf8))
        XCTAssertEqual(s.tables.count, 2)
        XCTAssertEqual(s.rowsByTable, ["public.t": 5])
    }

    func testCopyWithoutTableDataHeaderIsNotCounted() {
        let cases: [(why: String, text: String)] = [
            ("function body", "CREATE FUNCTION f() RETURNS void AS $$\nCOPY x FROM stdin;\n1\n\\.\n$$;\n"),
            ("header of another object", "--\n-- Name: f; Type: FUNCTION; Schema: public; Owner: postgres\n--\n\nCOPY x FROM stdin;\n1\n\\.\n"),
            ("header for a different type", "--\n-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -\n--\n\nCOPY x FROM stdin;\n1\n\\.\n"),
            ("statement between header and COPY",
             "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nSET x = 1;\nCOPY x FROM stdin;\n1\n\\.\n"),
            ("COPY to stdout", "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY x TO stdout;\n1\n\\.\n"),
            ("not a table name", "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY 1x FROM stdin;\n1\n\\.\n"),
        ]
        for (why, text) in cases {
            let scan = DumpScannerTests.scan(text)
            XCTAssertEqual(scan.tables, [], "\(why): \(scan)")
        }
    }

    /// pg_dump writes a name holding a newline as is, inside quotes: the COPY line spans lines.
    func testNewlineInsideAQuotedTableOrColumnNameIsOneCopyStatement() {
        let header = "--\n-- Data for Name: a b; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
        let table = header + "COPY public.\"a\nb\" (id, \"x\ny\nz\") FROM stdin;\n1\t2\n3\t4\n\\.\n"
        XCTAssertEqual(DumpScannerTests.scan(table).tables, ["public.\"a\nb\""])
        XCTAssertEqual(DumpScannerTests.scan(table).rows, [2])
        // Split anywhere, the count is the same.
        let bytes = Array(table.utf8)
        for cut in 1..<bytes.count {
            let scan = DumpScannerTests.scan([bytes[..<cut], bytes[cut...]])
            XCTAssertEqual(scan.rows, [2], "cut at \(cut): \(scan)")
        }
        // A quote that never closes (pg_dump never writes one) starts no block: nothing is counted as rows.
        let broken = header + "COPY public.\"a FROM stdin;\n" + header + "COPY public.t (id) FROM stdin;\n1\n\\.\n"
        XCTAssertEqual(DumpScannerTests.scan(broken).tables.count, 0, "a COPY with an open quote is not data")
    }

    func testCompletionTrailer() {
        let d = DumpScannerTests.self
        let cases: [(why: String, text: String, trailer: Bool)] = [
            ("pg_dump 15.14+ with \\unrestrict", d.dump, true),
            ("older pg_dump, trailer last", d.head + d.rest + d.trailer, true),
            ("trailer without the final newlines", d.head + d.rest + "--\n-- PostgreSQL database dump complete\n--", true),
            ("no trailer", d.head + d.rest, false),
            ("cut inside the trailer", d.head + d.rest + "--\n-- PostgreSQL database dump comp", false),
            ("truncated inside a COPY block", d.head, false),
            ("truncated inside a COPY row", String(d.head.dropLast(2)), false),
            ("trailer text as data of an unfinished COPY block",
             d.head + "8\t-- PostgreSQL database dump complete\n", false),
            ("empty", "", false),
        ]
        for (why, text, trailer) in cases {
            XCTAssertEqual(DumpScannerTests.scan(text).trailer, trailer, why)
        }
    }

    func testTruncationInsideCopyBlockEndsWithoutTrailerAndKeepsEarlierTables() {
        let scan = DumpScannerTests.scan(DumpScannerTests.head)
        XCTAssertFalse(scan.trailer)
        XCTAssertEqual(Array(scan.tables.prefix(3)), Array(DumpScannerTests.expectedTables.prefix(3)))
        XCTAssertEqual(Array(scan.rows.prefix(3)), Array(DumpScannerTests.expectedRows.prefix(3)))
    }

    /// The same bytes must give the same answer however the reader happens to cut them.
    func testEveryChunkingGivesTheSameResult() {
        let inputs = [
            DumpScannerTests.dump,
            DumpScannerTests.head,
            DumpScannerTests.head + DumpScannerTests.rest,
            "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY public.t (a) FROM stdin;\n\\\\.\n\\.\n--\n-- PostgreSQL database dump complete\n--\n",
        ]
        for input in inputs {
            let bytes = Array(input.utf8)
            let whole = DumpScannerTests.scan([bytes[...]])
            XCTAssertEqual(DumpScannerTests.scan(bytes.map { [$0][...] }), whole, "1-byte chunks")
            var mismatches: [Int] = []
            for cut in 0...bytes.count where DumpScannerTests.scan([bytes[..<cut], bytes[cut...]]) != whole {
                mismatches.append(cut)
            }
            XCTAssertEqual(mismatches, [], "2-way splits that changed the result of a \(bytes.count)-byte input")
            // Three-way splits around every line end, where a chunk boundary is most likely to matter.
            let newlines = bytes.indices.filter { bytes[$0] == 0x0A }
            for n in newlines {
                for a in max(0, n - 3)...min(bytes.count, n + 2) {
                    let b = min(bytes.count, a + 2)
                    let scan = DumpScannerTests.scan([bytes[..<a], bytes[a..<b], bytes[b...]])
                    if scan != whole { XCTFail("3-way split at \(a), \(b): \(scan) != \(whole)") }
                }
            }
        }
        XCTAssertEqual(DumpScannerTests.scan(DumpScannerTests.dump).rows, DumpScannerTests.expectedRows)
    }

    func testLongLinesDoNotDisturbCounting() {
        let longSQL = "COMMENT ON TABLE public.t IS '" + String(repeating: "x", count: (1 << 20) + 100) + "';\n"
        let longRow = String(repeating: "y", count: (1 << 20) + 100) + "\n"
        let text = longSQL
            + "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY public.t (a) FROM stdin;\n"
            + longRow + "1\n" + longRow + "\\.\n" + DumpScannerTests.trailer
        let bytes = Array(text.utf8)
        let whole = DumpScannerTests.scan([bytes[...]])
        XCTAssertEqual(whole.tables, ["public.t"])
        XCTAssertEqual(whole.rows, [3])
        XCTAssertTrue(whole.trailer)
        let chunked = stride(from: 0, to: bytes.count, by: 4093).map { bytes[$0..<min(bytes.count, $0 + 4093)] }
        XCTAssertEqual(DumpScannerTests.scan(chunked), whole)
    }
}
