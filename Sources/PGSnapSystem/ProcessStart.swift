#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// When a process started, from /proc: a pid named in a file or a database name may since
/// belong to another process, and only the start time tells.
enum ProcessStart {
    /// Seconds since 1970 at which `pid` started; nil when /proc cannot tell.
    static func epochSeconds(_ pid: Int32) -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": field 3 is the state; starttime is field 22, in clock ticks since boot.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]), let boot = bootTime() else { return nil }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard hz > 0 else { return nil }
        return boot + Int(ticks / hz)
    }

    static func bootTime() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) }
    }
}
