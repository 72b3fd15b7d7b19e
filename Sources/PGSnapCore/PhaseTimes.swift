import Foundation

/// Seconds per step of a command, in the order the steps ran: `restore --verbose` prints them and
/// `--json` carries them as `"phases": {"create_scratch": 0.04, "load_data": 6.1, ...}`, so the
/// next person sees which step to attack.
public final class PhaseTimes: Encodable, @unchecked Sendable {
    public private(set) var entries: [(name: String, seconds: Double)] = []
    private let lock = NSLock()

    public init() {}

    public func record(_ name: String, seconds: Double) {
        lock.withLock {
            if let i = entries.firstIndex(where: { $0.name == name }) {
                entries[i].seconds += seconds
            } else {
                entries.append((name, seconds))
            }
        }
    }

    /// Runs `body` and records how long it took under `name`, also when it throws.
    public func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now()
        defer { record(name, seconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9) }
        return try body()
    }

    /// `create_scratch 0.04 s, load_data 6.10 s, ...`
    public var summary: String {
        lock.withLock { entries.map { "\($0.name) \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", ") }
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for e in lock.withLock({ entries }) { try c.encode((e.seconds * 1000).rounded() / 1000, forKey: Key(stringValue: e.name)) }
    }
}
