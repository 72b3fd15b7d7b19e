import PGSnapCore
import XCTest

final class OwnershipFilterTests: XCTestCase {
    static let dump = """
        CREATE TABLE public.t (
            x text
        );


        ALTER TABLE public.t OWNER TO tmpowner;

        --
        -- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: tmpowner
        --

        COPY public.t (x) FROM stdin;
        ALTER TABLE x OWNER TO y;
        ALTER TABLE x OWNER TO y;
        \\.


        ALTER FUNCTION public.f() OWNER TO tmpowner;
        --
        -- PostgreSQL database dump complete
        --

        """

    func filtered(_ text: String, chunk: Int) throws -> (String, Int) {
        var f = OwnershipFilter()
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + chunk)
            try bytes[i..<end].withUnsafeBytes { try f.process($0) { out.append(contentsOf: $0) } }
            i = end
        }
        try f.finish { out.append(contentsOf: $0) }
        return (String(decoding: out, as: UTF8.self), f.dropped)
    }

    func testDropsOwnershipStatementsButNeverCopyData() throws {
        let expected = OwnershipFilterTests.dump
            .replacingOccurrences(of: "ALTER TABLE public.t OWNER TO tmpowner;\n", with: "")
            .replacingOccurrences(of: "ALTER FUNCTION public.f() OWNER TO tmpowner;\n", with: "")
        for chunk in [1, 2, 3, 7, 64, 100_000] {
            let (out, dropped) = try filtered(OwnershipFilterTests.dump, chunk: chunk)
            XCTAssertEqual(out, expected, "chunk \(chunk)")
            XCTAssertEqual(dropped, 2, "chunk \(chunk)")
        }
    }

    /// A body or a string may hold such a line; it is the function's, not pg_dump's.
    func testKeepsOwnershipLinesInsideBodiesAndStrings() throws {
        let kept = """
            CREATE PROCEDURE public.give() LANGUAGE sql
                AS $$
            ALTER TABLE t OWNER TO app_owner;
            $$;
            CREATE FUNCTION public.f() RETURNS void LANGUAGE plpgsql
                AS $_$
            BEGIN
            EXECUTE $q$
            ALTER TABLE t OWNER TO q;
            $q$;
            END
            $_$;
            COMMENT ON TABLE public.t IS 'it''s $$ not a body
            ALTER TABLE t OWNER TO c;
            end';
            COMMENT ON COLUMN public."odd $$ name
            ALTER TABLE t OWNER TO i;
            x".c IS E'a \\' b
            ALTER TABLE t OWNER TO e;
            ';
            SELECT $1, a$b$c FROM x; -- $$ in a comment
            DO $body$ BEGIN RAISE NOTICE 'x'; END $body$;

            """
        let dump = kept + "ALTER TABLE public.t OWNER TO tmpowner;\n" + "SELECT 'ALTER TABLE t OWNER TO s;';\n"
        for chunk in [1, 5, 100_000] {
            let (out, dropped) = try filtered(dump, chunk: chunk)
            XCTAssertEqual(out, kept + "SELECT 'ALTER TABLE t OWNER TO s;';\n", "chunk \(chunk)")
            XCTAssertEqual(dropped, 1, "chunk \(chunk)")
        }
    }

    /// pg_dump writes a name holding a newline across lines: the statement is judged whole.
    func testDropsAnOwnershipStatementWhoseNameSpansLines() throws {
        let kept = """
            CREATE TABLE public."a
            b" (id integer);
            ALTER TABLE ONLY public."a
            b" ALTER COLUMN id SET DEFAULT 1;
            COMMENT ON TABLE public.t IS 'one
            two';

            """
        let dump = kept + "ALTER TABLE public.\"a\nb\" OWNER TO postgres;\nALTER SCHEMA \"s\n\nx\" OWNER TO \"r\nq\";\n" + "SELECT 1;\n"
        for chunk in [1, 3, 100_000] {
            let (out, dropped) = try filtered(dump, chunk: chunk)
            XCTAssertEqual(out, kept + "SELECT 1;\n", "chunk \(chunk)")
            XCTAssertEqual(dropped, 2, "chunk \(chunk)")
        }
        // A quote that never closes is passed on as it was.
        let (open, none) = try filtered("ALTER TABLE \"a\nb OWNER TO r;\n", chunk: 2)
        XCTAssertEqual(open, "ALTER TABLE \"a\nb OWNER TO r;\n")
        XCTAssertEqual(none, 0)
    }

    func testAnUnterminatedLastLineIsKept() throws {
        let (out, _) = try filtered("SELECT 1;\nSELECT 2;", chunk: 4)
        XCTAssertEqual(out, "SELECT 1;\nSELECT 2;")
    }
}
