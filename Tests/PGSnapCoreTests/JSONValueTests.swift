import Foundation
import XCTest

@testable import PGSnapCore

/// The manifest reader's JSON parser: strict RFC 8259, checked against Foundation's encoder
/// for what it accepts and against hand-made broken documents for what it must refuse.
final class JSONValueTests: XCTestCase {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    func testStringsRoundTripThroughFoundationsEncoder() throws {
        let samples = ["", "plain", "quote \" backslash \\ slash /", "tab\tnewline\nreturn\r",
                       "control \u{01}\u{1F}", "unicode é 漢字", "astral 😀 𝄞", "nul \u{0}"]
        for s in samples {
            let encoded = String(decoding: try JSONEncoder().encode([s]), as: UTF8.self)
            XCTAssertEqual(try parse(encoded), .array([.string(s)]), encoded)
        }
    }

    func testEscapesAndSurrogatePairs() throws {
        XCTAssertEqual(try parse(#""\u00e9\u6F22\ud83d\ude00\b\f\/""#), .string("é漢😀\u{08}\u{0C}/"))
    }

    func testNumbersKeepTheirTextAndConvertExactly() throws {
        XCTAssertEqual(try parse("[0, -1, 12.5, 1e3, 9223372036854775807]"),
                       .array([.number("0"), .number("-1"), .number("12.5"), .number("1e3"), .number("9223372036854775807")]))
        XCTAssertEqual(JSONFields.int64(.number("9223372036854775807")), Int64.max)
        XCTAssertEqual(JSONFields.int64(.number("1e3")), 1000)
        XCTAssertNil(JSONFields.int64(.number("12.5")))
        XCTAssertNil(JSONFields.int64(.number("1e300")))
        XCTAssertNil(JSONFields.int64(.string("12")))
        XCTAssertNil(JSONFields.double(.number("1e999")), "infinity is no duration")
    }

    func testObjectsArraysLiteralsAndWhitespace() throws {
        XCTAssertEqual(try parse(" {\"a\" : [true, false, null, {}], \"b\":{ }}\n"),
                       .object(["a": .array([.bool(true), .bool(false), .null, .object([:])]), "b": .object([:])]))
    }

    func testRefusesWhatIsNotJSON() {
        let bad = ["", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "'a'", "[01]", "[1.]", "[.5]",
                   "[-]", "[1e]", "[+1]", "[NaN]", "[Infinity]", "tru", "nul", "[true false]", "{} {}", "\"open",
                   "\"bad \\x escape\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"",
                   "\"raw \n newline\"", "[1]x"]
        for text in bad {
            XCTAssertThrowsError(try parse(text), "accepted: \(text)")
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0xFE, 0x22]), "invalid UTF-8 in a string")
    }

    func testDeepNestingIsRefusedNotAStackOverflow() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try parse(deep))
        let ok = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        XCTAssertNoThrow(try parse(ok))
    }

    func testFieldsNameMissingAndMistypedPaths() throws {
        let f = try JSONFields(try parse(#"{"a": {"b": "x"}, "n": null}"#))
        let a = try XCTUnwrap(try f.nested("a"))
        XCTAssertThrowsError(try a.required("b", JSONFields.int64)) { error in
            guard case JSONFields.Failure.wrongType(let path) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "a.b")
        }
        XCTAssertThrowsError(try a.required("c", JSONFields.string)) { error in
            guard case JSONFields.Failure.missing(let path) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "a.c")
        }
        XCTAssertNil(try f.optional("n", JSONFields.string), "null is absent for an optional field")
        XCTAssertThrowsError(try f.required("n", JSONFields.string), "null is no value for a required field")
    }
}
