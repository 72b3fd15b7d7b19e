import Foundation
import XCTest

/// Every command's `--help`, as the built binary prints it at 80 and 120 columns, against the
/// golden files in HelpGolden/ (`<command>.<columns>.txt`, `pgsnap` for the root command).
///
/// After changing a command's options or texts, regenerate them, then review `git diff`:
///
///     PGSNAP_UPDATE_GOLDEN=1 bash scripts/test --filter HelpGoldenTests
///
/// That run rewrites the files and fails on purpose, so a CI run can never pass by recording.
final class HelpGoldenTests: XCTestCase {
    static let widths = [80, 120]
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("HelpGolden")
    static var updating: Bool { ProcessInfo.processInfo.environment["PGSNAP_UPDATE_GOLDEN"] == "1" }

    func testEveryCommandsHelpMatchesItsGoldenFiles() throws {
        let commands = try CLI.subcommands()
        XCTAssertTrue(commands.contains("backup") && commands.contains("restore"), "subcommands from --experimental-dump-help: \(commands)")
        var expectedFiles: Set<String> = []
        var rewritten: [String] = []
        for command in [nil] + commands.map(Optional.some) {
            for width in Self.widths {
                let name = "\(command ?? "pgsnap").\(width).txt"
                expectedFiles.insert(name)
                let r = try CLI.run((command.map { [$0] } ?? []) + ["--help"], env: ["COLUMNS": String(width)])
                XCTAssertEqual(r.status, 0, "\(name): exit status")
                XCTAssertEqual(r.stderr, "", "\(name): stderr")
                assertReadable(r.stdout, width: width, name: name)
                let url = Self.goldenDirectory.appendingPathComponent(name)
                let golden = try? String(contentsOf: url, encoding: .utf8)
                if Self.updating {
                    if golden != r.stdout {
                        try r.stdout.write(to: url, atomically: true, encoding: .utf8)
                        rewritten.append(name)
                    }
                } else {
                    XCTAssertNotNil(golden, "\(name) is missing; create it with PGSNAP_UPDATE_GOLDEN=1")
                    if let golden, golden != r.stdout {
                        XCTFail("\(name) differs from `pgsnap \(command ?? "") --help` at COLUMNS=\(width):\n\(firstDifference(golden, r.stdout))\n"
                                + "If the change is meant: PGSNAP_UPDATE_GOLDEN=1 bash scripts/test --filter HelpGoldenTests")
                    }
                }
            }
        }
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: Self.goldenDirectory.path).filter { $0.hasSuffix(".txt") })
        for stale in present.subtracting(expectedFiles).sorted() {
            if Self.updating {
                try FileManager.default.removeItem(at: Self.goldenDirectory.appendingPathComponent(stale))
                rewritten.append(stale + " (removed)")
            } else {
                XCTFail("\(stale) belongs to no command; delete it or regenerate with PGSNAP_UPDATE_GOLDEN=1")
            }
        }
        if Self.updating {
            XCTFail("PGSNAP_UPDATE_GOLDEN=1: \(rewritten.isEmpty ? "nothing changed" : "rewrote " + rewritten.joined(separator: ", ")); review with git diff and run again without it")
        }
    }

    /// What "reads well" means here: no line wider than the terminal unless it is one unbreakable
    /// word, and no paragraph line that the parser's re-wrapping cut down to a word or two.
    func assertReadable(_ help: String, width: Int, name: String) {
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (i, line) in lines.enumerated() {
            // The usage line is the parser's own and is never wrapped.
            if line.count > width, !line.hasPrefix("USAGE: ") {
                XCTAssertFalse(line.trimmingCharacters(in: .whitespaces).contains(" "), "\(name):\(i + 1) is \(line.count) columns wide: \(line)")
            }
            // A short line inside a paragraph, followed by a long one: the sign of hard-wrapped source text.
            // (The issue's examples: "manifest," and "scratch" alone on a line at 80 columns.)
            guard i + 1 < lines.count, !line.hasPrefix(" "), !line.isEmpty else { continue }
            let next = lines[i + 1]
            if !next.isEmpty, !next.hasPrefix(" "), line.count < width / 4, next.count > width / 2 {
                XCTFail("\(name):\(i + 1) is a stray fragment of a re-wrapped paragraph: '\(line)' before '\(next)'")
            }
        }
    }

    func firstDifference(_ a: String, _ b: String) -> String {
        let x = a.split(separator: "\n", omittingEmptySubsequences: false), y = b.split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(x.count, y.count) where i >= x.count || i >= y.count || x[i] != y[i] {
            return "line \(i + 1):\n  golden: \(i < x.count ? String(x[i]) : "(end)")\n  now:    \(i < y.count ? String(y[i]) : "(end)")"
        }
        return "(identical lines, different line endings)"
    }
}
