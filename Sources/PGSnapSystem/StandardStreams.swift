#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// Writes to standard output and error with write(2): Foundation's `FileHandle.write(_:)` traps
/// on EPIPE (`pgsnap list | head -3` died with a backtrace, FIELD-NOTES). SIGPIPE has a no-op
/// handler (SignalTrap), so a reader that went away is EPIPE here, and the rest of the text is
/// dropped: nobody is there to read it.
public enum StandardStreams {
    public static func out(_ text: String) { write(STDOUT_FILENO, text) }
    public static func err(_ text: String) { write(STDERR_FILENO, text) }

    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buf in
            var off = 0
            while off < buf.count {
                let n = systemWrite(fd, buf.baseAddress! + off, buf.count - off)
                if n > 0 {
                    off += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
