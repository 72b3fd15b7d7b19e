import XCTest

@testable import PGSnapCore

final class QualifiedNameTests: XCTestCase {
    /// `parse` answers plain ASCII names without the full parser; both must always agree.
    func testFastPathAgreesWithTheFullParser() {
        let samples = ["t", "public.t", "a.b.c", "a.b.c.d", "_x.$y", "$x", "1a", "a.1b", "a..b", ".a", "a.", "",
                       "public.t$1", "Public.CamelCase", "a b", "a;b", "public.\"q\"", "é.t", "a.b-c", "a\u{0}"]
        for text in samples {
            let full = QualifiedName.parsePrefix(Substring(text)).flatMap { $0.rest.isEmpty ? $0.name : nil }
            XCTAssertEqual(QualifiedName.parse(text), full, text.debugDescription)
            if QualifiedName.isPlainASCII(text) { XCTAssertEqual(full, text, "fast path accepted \(text.debugDescription)") }
        }
    }

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
            ("public.\"a\nb\" (id) FROM stdin;", "public.\"a\nb\"", " (id) FROM stdin;"),
        ]
        for c in cases {
            let parsed = try XCTUnwrap(QualifiedName.parsePrefix(Substring(c.text)), c.text)
            XCTAssertEqual(parsed.name, c.name, c.text)
            XCTAssertEqual(String(parsed.rest), c.rest, c.text)
        }
    }
}
