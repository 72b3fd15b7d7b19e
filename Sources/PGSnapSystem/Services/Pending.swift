import Foundation
import PGSnapCore

/// A value computed on a thread of its own while the caller goes on: restore reads the
/// snapshot's files (its size and SHA-256 check, its table of contents) while the server is made
/// ready (connection, checks, scratch database). Neither waits on the other: one reads files,
/// the other waits on the server.
final class Pending<Value>: @unchecked Sendable {
    private let done = DispatchGroup()
    private var result: Result<Value, Error>?

    init(_ body: @escaping @Sendable () throws -> Value) {
        done.enter()
        Thread { [self] in
            // The group's wait orders this write before any read of it.
            result = Result { try body() }
            done.leave()
        }.start()
    }

    /// Waits for the value; rethrows what stopped it.
    func value() throws -> Value {
        done.wait()
        return try result!.get()
    }
}
