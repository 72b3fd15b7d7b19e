import Foundation
import XCTest

/// A real HTTP(S) server on loopback (scripts/notify-receiver.py) that records every request
/// before it answers, so what pgsnap sent is on record once pgsnap has exited.
final class NotifyReceiver {
    struct Request {
        var method: String
        var path: String
        var headers: [String: String]
        var body: String
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
    }

    let process = Process()
    let port: Int
    let log: String

    /// - Parameters:
    ///   - answers: per path, the n-th request gets the n-th answer (the last repeats): a status or "hang".
    ///   - tls: certificate and key files for HTTPS.
    init(answers: [String] = ["200"], tls: (cert: String, key: String)? = nil) throws {
        log = NSTemporaryDirectory() + "pgsnap-notify-" + UUID().uuidString.prefix(8) + ".jsonl"
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = ["python3", Harness.repo + "/scripts/notify-receiver.py", "--log", log, "--answers", answers.joined(separator: ",")]
        if let tls { args += ["--cert", tls.cert, "--key", tls.key] }
        process.arguments = args
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        try process.run()
        // The first line is the port, printed once the socket listens: a read, not a sleep.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let p = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw NSError(domain: "NotifyReceiver", code: 1, userInfo: [NSLocalizedDescriptionKey: "receiver did not start: \(String(decoding: line, as: UTF8.self))"])
        }
        port = p
    }

    var base: String { "http://127.0.0.1:\(port)" }

    var requests: [Request] {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return nil }
            return Request(method: o["method"] as? String ?? "", path: o["path"] as? String ?? "",
                           headers: o["headers"] as? [String: String] ?? [:], body: o["body"] as? String ?? "")
        }
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: log)
    }

    deinit { stop() }
}
