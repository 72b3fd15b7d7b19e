import CISAL
import Foundation
import PGSnapCore

/// Inflates a gzip file as a stream with ISA-L (igzip): about a third of zlib's CPU for the
/// same bytes (measured on a directory snapshot's 95 MB table file: 0.42 s against zlib's
/// 1.37 s). One stream cannot be split across threads, so on a restore that is bound by the
/// server's parsing, every core-second saved here goes to the COPY backends.
///
/// Each member's CRC-32 and length are checked (ISA-L's gzip mode); concatenated members are read
/// one after another, as gzip does.
enum GzipStreamInflater {
    /// Calls `body` with the inflated bytes in pieces of up to 256 KiB, in order.
    ///
    /// - Throws: `PGSnapError` when the file cannot be read or is not whole, valid gzip; whatever `body` throws.
    static func inflate(file path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PGSnapError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let inCapacity = 256 << 10, outCapacity = 256 << 10
        let input = UnsafeMutablePointer<UInt8>.allocate(capacity: inCapacity)
        let output = UnsafeMutablePointer<UInt8>.allocate(capacity: outCapacity)
        let state = UnsafeMutablePointer<inflate_state>.allocate(capacity: 1)
        defer { input.deallocate(); output.deallocate(); state.deallocate() }
        func bad(_ why: String) -> PGSnapError {
            PGSnapError.verification("\(path) is not valid gzip (\(why))", next: "The snapshot is damaged; run 'pgsnap verify' and choose another")
        }
        isal_inflate_init(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
        var atEOF = false
        var inMember = false  // bytes of the current member have gone in
        while true {
            if state.pointee.avail_in == 0 && !atEOF {
                let n = read(fd, input, inCapacity)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw PGSnapError("cannot read \(path): \(String(cString: strerror(errno)))")
                }
                if n == 0 { atEOF = true } else {
                    state.pointee.next_in = input
                    state.pointee.avail_in = UInt32(n)
                }
            }
            if state.pointee.avail_in == 0 && atEOF && !inMember { return }
            inMember = true
            state.pointee.next_out = output
            state.pointee.avail_out = UInt32(outCapacity)
            let rc = isal_inflate(state)
            guard rc == ISAL_DECOMP_OK || rc == ISAL_END_INPUT || rc == ISAL_OUT_OVERFLOW else {
                throw bad(rc == ISAL_INCORRECT_CHECKSUM ? "CRC-32 mismatch" : "ISA-L error \(rc)")
            }
            let produced = outCapacity - Int(state.pointee.avail_out)
            if produced > 0 { try body(UnsafeRawBufferPointer(start: output, count: produced)) }
            if state.pointee.block_state == ISAL_BLOCK_FINISH {
                // A member ended (trailer checked). Another may follow; reset keeps the input.
                let (next, left) = (state.pointee.next_in, state.pointee.avail_in)
                inMember = false
                isal_inflate_reset(state)
                state.pointee.crc_flag = UInt32(ISAL_GZIP)
                state.pointee.next_in = next
                state.pointee.avail_in = left
            } else if atEOF && state.pointee.avail_in == 0 && produced == 0 {
                // All input given, output drained (the call had room and made nothing), no end.
                throw bad("it ends in the middle of a member")
            }
        }
    }
}
