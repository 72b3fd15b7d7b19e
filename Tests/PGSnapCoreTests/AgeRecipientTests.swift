import Foundation
import XCTest
@testable import PGSnapCore

final class AgeRecipientTests: XCTestCase {
    // Made with age-keygen and ssh-keygen; the public halves only.
    static let x25519 = "age1v4q9r0w089mwchmv0grm88yjv0s5j5050tcus3fz4p5wm8c6hfzqchyeme"
    static let x25519b = "age1d3c3ss84u8gaz2t8mtc7rnearxw75lrdvk2wpzjhx0nnnnn7dshs28hnaf"
    static let ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+8bzflckqa89Z9ZtcIWhKvOt/5O9fhljnGXAePTveA"
    static let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDauTnJmK95lKYX4n6qC9UAtHmqqdNDhgBs7On9T8j9APzWmH0OPvp6pFC+C8ZnfNVMX+SeolN6d6Hyg1fncZMdDRLAt0TtaUGxrmrSjtjsN5Vakg5dy3OcRYeSub/nIZNjCO6sCulQv0xdyd4APAHsxfa4qBzoUK6fCK8yphW0KmNymzNpwjSAeQT69qAFp4x1zX/cGQzK7qbhi+D9j11mNOZM4efQpB3XG4HArXPCk9GU8VCzk4J1Tkas9gaElOb2WY9yHhYNTK+zNKGlrvDYzeQYWYI6SZTH2QbpAzaZXbnoUv772RKMO/MYprW0iPlJ3txG/oOwYuq0I4OXcmHl"

    func testValidRecipients() throws {
        XCTAssertEqual(try AgeRecipient.parse(Self.x25519), AgeRecipient(kind: .x25519, text: Self.x25519))
        XCTAssertEqual(try AgeRecipient.parse("  " + Self.x25519.uppercased() + "\n").text, Self.x25519, "bech32 may be all upper case")
        let ssh = try AgeRecipient.parse(Self.ed25519 + " root@vm")
        XCTAssertEqual(ssh.kind, .sshEd25519)
        XCTAssertEqual(ssh.text, Self.ed25519, "the comment is dropped")
        XCTAssertEqual(ssh.sshWireKey?.count, 4 + 11 + 4 + 32)
        XCTAssertEqual(try AgeRecipient.parse(Self.rsa + " someone").kind, .sshRSA)
    }

    func testInvalidRecipientsAreUsageErrors() {
        var typo = Array(Self.x25519)
        typo[20] = typo[20] == "q" ? "p" : "q"
        let cases: [(String, String)] = [
            (String(typo), "not a valid age public key"),
            (String(Self.x25519.dropLast()), "not a valid age public key"),
            ("age1" + String(Self.x25519.dropFirst(4)).replacingOccurrences(of: "q", with: "b"), "not a valid age public key"),
            ("Age1" + Self.x25519.dropFirst(4), "not a valid age public key"),
            ("ssh-ed25519", "not a valid ssh-ed25519 public key"),
            ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQDauTnJmK95lKYX4n6qC9UA", "not a valid ssh-ed25519 public key"),
            ("ssh-rsa " + Self.ed25519.dropFirst(12), "not a valid ssh-rsa public key"),
            ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "age identity (a secret key)"),
            ("ecdsa-sha2-nistp256 AAAA", "not an age public key"),
            ("", "not an age public key"),
        ]
        for (input, message) in cases {
            XCTAssertThrowsError(try AgeRecipient.parse(input), input) { error in
                let e = error as? PGSnapError
                XCTAssertEqual(e?.status, .usage, input)
                XCTAssertTrue(e?.what.contains(message) ?? false, "\(input): \(e?.what ?? "\(error)")")
                XCTAssertFalse(e?.description.contains("QQQQQQQQQQQQQQQQQQQQ") ?? false, "a secret key echoed back")
            }
        }
    }

    func testRecipientsFileSkipsCommentsAndNamesTheBadLine() throws {
        let text = "# team\n\(Self.x25519)\n\n   # ssh\n\(Self.ed25519) root@vm\r\n"
        XCTAssertEqual(try AgeRecipient.parseFile(text, source: "r.txt").map(\.text), [Self.x25519, Self.ed25519])
        XCTAssertThrowsError(try AgeRecipient.parseFile("\(Self.x25519)\nage1oops\n", source: "r.txt")) { error in
            XCTAssertTrue("\(error)".hasPrefix("r.txt line 2: recipient 'age1oops'"), "\(error)")
        }
    }

    func testEnvironmentListTakesCommasAndNewlines() throws {
        XCTAssertEqual(try AgeRecipient.parseList(" \(Self.x25519) ,\(Self.x25519b)\n\(Self.ed25519)\n,", source: "ENV").map(\.kind),
                       [.x25519, .x25519, .sshEd25519])
        XCTAssertThrowsError(try AgeRecipient.parseList("\(Self.x25519),nope", source: "PGSNAP_AGE_RECIPIENTS")) { error in
            XCTAssertTrue("\(error)".hasPrefix("PGSNAP_AGE_RECIPIENTS: recipient 'nope'"), "\(error)")
        }
    }
}

final class AgeHeaderTests: XCTestCase {
    /// The header of a file made by `age -r <x25519> -r <ed25519>` (age 1.1.1), then payload bytes.
    static let header = """
        age-encryption.org/v1
        -> X25519 6q2chUPLtHgxRiEaUSjT6QD9+M7eFV8AfEgeoxp4F0U
        zocVucLq0+aNPMOFAS6YoQKfs1Bznu/1I5BB9T1zPlc
        -> ssh-ed25519 6el2mg EJVy7/7S5Sqy784dhenc3VTukPb0f0vwypf+KdJXvw4
        2lxzkVwuuOT4TL2xK64kpRFE3F2suG2dZjyrCVyIhlo
        --- DMRTiFZdALiOBRo9RjkVKZtKVs2yFicaHVNIYzjqT6U

        """
    static var bytes: [UInt8] { Array(header.utf8) + [0x00, 0x0A, 0xFF, 0x2D, 0x3E, 0x20] }

    /// SHA-256 of the ed25519 key blob above (hashlib); anything else must not be asked for.
    static func sha256(_ blob: [UInt8]) -> [UInt8] {
        guard blob == (try! AgeRecipient.parse(AgeRecipientTests.ed25519)).sshWireKey! else { fatalError("unconfigured fake: sha256 of another blob") }
        return [0xe9, 0xe9, 0x76, 0x9a] + Array(repeating: 0, count: 28)
    }

    func testParsesStanzas() throws {
        let h = try XCTUnwrap(AgeHeader.parse(Self.bytes))
        XCTAssertEqual(h.stanzas.map(\.type), ["X25519", "ssh-ed25519"])
        XCTAssertEqual(h.stanzas[1].arguments.first, "6el2mg")
        XCTAssertNil(AgeHeader.parse(Array("\u{1f}\u{8b}gzip".utf8)))
        XCTAssertNil(AgeHeader.parse(Array(Self.header.utf8.prefix(80))), "a header cut before its MAC line")
    }

    func testMatchingRecipientsPass() throws {
        let h = try XCTUnwrap(AgeHeader.parse(Self.bytes))
        let recipients = try [AgeRecipientTests.x25519, AgeRecipientTests.ed25519].map(AgeRecipient.parse)
        let check = h.check(against: recipients, sha256: Self.sha256)
        XCTAssertEqual(check.problems, [])
        XCTAssertEqual(check.summary, "age header: 1 X25519 stanza(s) for 1 age1 recipient(s) (counted only: an X25519 stanza does not name its key); 1 SSH recipient(s) matched by key tag")
    }

    func testMismatchesAreNamed() throws {
        let h = try XCTUnwrap(AgeHeader.parse(Self.bytes))
        let two = try [AgeRecipientTests.x25519, AgeRecipientTests.x25519b, AgeRecipientTests.ed25519].map(AgeRecipient.parse)
        XCTAssertEqual(h.check(against: two, sha256: Self.sha256).problems,
                       ["the age header has 1 X25519 stanza(s), the manifest lists 2 age1 recipient(s)"])
        let noSSH = try [AgeRecipient.parse(AgeRecipientTests.x25519)]
        XCTAssertEqual(h.check(against: noSSH, sha256: Self.sha256).problems,
                       ["the age header's ssh-ed25519 stanzas (tags 6el2mg) do not match the manifest's ssh-ed25519 recipients (tags )"])
        var grease = Self.header
        grease = grease.replacingOccurrences(of: "--- ", with: "-> x-grease abc\n\n-> scrypt salt 18\nbody\n--- ")
        let g = try XCTUnwrap(AgeHeader.parse(Array(grease.utf8)))
        let recipients = try [AgeRecipientTests.x25519, AgeRecipientTests.ed25519].map(AgeRecipient.parse)
        XCTAssertEqual(g.check(against: recipients, sha256: Self.sha256).problems,
                       ["the age header has a scrypt stanza that no manifest recipient explains"], "grease is ignored, scrypt is not")
    }
}
