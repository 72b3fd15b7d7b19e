import XCTest

@testable import PGSnapCore

final class QualifiedNameTests: XCTestCase {
    func testAcceptedNamesParseToThemselves() {
        let accepted = [
            "campaigns",
            "public.campaigns",
            "public.campaign_events",
            "public.\"Mixed Case\"",
            "\"a\"\"b\".c",
            "\"we\"\"ird\".\"ta\"\"ble\"",
            "\"My Schema\".\"My Table\"",
            "db.public.t",
            "public.café",
            "схема.таблица",
            "公共.表",
            "public.\"日本 語\"",
            "public.t$1",
            "public._private",
            "public.t2",
            "public.\"1abc\"",
            "public.\"x; DROP DATABASE y\"",
        ]
        for name in accepted {
            XCTAssertEqual(QualifiedName.parse(name), name, name)
        }
    }

    func testRejectedNames() {
        let rejected: [(why: String, text: String)] = [
            ("SQL after the name", "x; drop"),
            ("SQL after a qualified name", "public.x; DROP DATABASE y"),
            ("leading digit", "1abc"),
            ("leading digit in second part", "public.1abc"),
            ("empty", ""),
            ("unterminated quote", "\"abc"),
            ("unterminated quote in second part", "public.\"abc"),
            ("doubled quote at the end only", "\"abc\"\""),
            ("four parts", "a.b.c.d"),
            ("four quoted parts", "\"a\".\"b\".\"c\".\"d\""),
            ("empty quoted identifier", "\"\""),
            ("leading dot", ".t"),
            ("trailing dot", "public."),
            ("double dot", "public..t"),
            ("space", "public t"),
            ("trailing space", "public.t "),
            ("comment", "public.t--"),
            ("parenthesis", "public.t()"),
            ("newline inside quotes", "public.\"a\nb\""),
            ("NUL inside quotes", "public.\"a\u{0}b\""),
            ("single quotes", "'public'.'t'"),
            ("text after a quoted part", "\"a\"b"),
        ]
        for (why, text) in rejected {
            XCTAssertNil(QualifiedName.parse(text), "\(why): \(text.debugDescription)")
        }
    }

    func testPrefixStopsAtTheColumnList() throws {
        let cases: [(text: String, name: String, rest: String)] = [
            ("public.t (a, b) FROM stdin;", "public.t", " (a, b) FROM stdin;"),
            ("public.\"Mixed Case\" (id, \"Note\") FROM stdin;", "public.\"Mixed Case\"", " (id, \"Note\") FROM stdin;"),
            ("\"a\"\"b\".c FROM stdin;", "\"a\"\"b\".c", " FROM stdin;"),
            ("t", "t", ""),
        ]
        for c in cases {
            let parsed = try XCTUnwrap(QualifiedName.parsePrefix(Substring(c.text)), c.text)
            XCTAssertEqual(parsed.name, c.name, c.text)
            XCTAssertEqual(String(parsed.rest), c.rest, c.text)
        }
    }
}
