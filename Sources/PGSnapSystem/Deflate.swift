import CDeflate
import PGSnapCore

/// Compresses one block into one complete gzip member with libdeflate. The only file that
/// imports libdeflate.
///
/// Why not zlib here: the parallel writer always has the whole block in memory, which is what
/// libdeflate wants, and it compresses such blocks about twice as fast as zlib at the same level
/// with output as small or smaller. Compression time is what makes a gzip backup slow.
public final class GzipMemberDeflater {
    private let compressor: OpaquePointer

    /// - Parameter level: 0-9 as for gzip (libdeflate also has 10-12, not offered).
    public init(level: Int) throws {
        guard let c = libdeflate_alloc_compressor(Int32(level)) else {
            throw PGSnapError("libdeflate cannot make a compressor for level \(level)")
        }
        compressor = c
    }

    deinit { libdeflate_free_compressor(compressor) }

    /// Replaces `output` with one gzip member holding `input`, compressed straight into its storage.
    public func compress(_ input: UnsafeRawBufferPointer, into output: inout [UInt8]) throws {
        let bound = libdeflate_gzip_compress_bound(compressor, input.count)
        var written = 0
        var empty: UInt8 = 0  // an empty block (an empty dump) still needs a valid pointer
        withUnsafePointer(to: &empty) { fallback in
            let source = input.baseAddress ?? UnsafeRawPointer(fallback)
            output = [UInt8](unsafeUninitializedCapacity: bound) { out, count in
                written = libdeflate_gzip_compress(compressor, source, input.count, out.baseAddress, bound)
                count = written
            }
        }
        // 0 means the bound was too small, which libdeflate's own bound rules out.
        guard written > 0 else { throw PGSnapError("libdeflate could not compress a block of \(input.count) bytes") }
    }
}
