import Foundation
import XCTest

/// The built `pgsnap` binary, as `scripts/test` passes it in PGSNAP_BIN.
enum CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var binary: String {
        guard let b = ProcessInfo.processInfo.environment["PGSNAP_BIN"], !b.isEmpty else {
            // A failure, not a skip: the CLI contract is tested on every run.
            XCTFail("PGSNAP_BIN is not set: run these tests through scripts/test")
            return "/nonexistent/PGSNAP_BIN-is-not-set"
        }
        return b
    }

    /// Runs pgsnap with `args`; the environment is ours plus `env`, without the terminal's COLUMNS.
    static func run(_ args: [String], env extra: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["COLUMNS"] = nil
        env["LINES"] = nil
        for (k, v) in extra { env[k] = v }
        p.environment = env
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pgsnap-cli-\(UUID().uuidString).out")
        let err = FileManager.default.temporaryDirectory.appendingPathComponent("pgsnap-cli-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: out.path, contents: nil),
              FileManager.default.createFile(atPath: err.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        // Files, not pipes: nothing to drain concurrently, and help output is small.
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
                      stderr: try String(contentsOf: err, encoding: .utf8))
    }

    /// The subcommands' names, from the parser's own description of the command tree.
    static func subcommands() throws -> [String] {
        let r = try run(["--experimental-dump-help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let command = json?["command"] as? [String: Any]
        let subs = command?["subcommands"] as? [[String: Any]] ?? []
        return subs.compactMap { $0["commandName"] as? String }
    }
}
