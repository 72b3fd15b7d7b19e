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

/// Inflates a gzip stream member by member with libdeflate, about twice as fast as zlib: what
/// every restore and verify of a gzip snapshot spends a core on.
///
/// libdeflate wants a whole member in memory, which pgsnap's own snapshots give (members of 1 MiB
/// each, `ParallelGzipWriter`). A stream it cannot take that way (one member of a whole file from
/// gzip or pigz, a member that is cut or corrupt) is handed to zlib's `GzipInflater` from the
/// member where that became clear, so errors and odd inputs are zlib's as before.
public final class GzipMemberInflater: DumpInflater {
    private let decompressor: OpaquePointer
    private var pending: [UInt8] = []
    private var offset = 0
    private var output: [UInt8]
    private var fallback: GzipInflater?
    private var members = 0
    /// Compressed bytes one member may take before zlib is asked instead (pgsnap's are about 0.2-1 MiB).
    static let maxMember = 4 << 20

    public init() throws {
        guard let d = libdeflate_alloc_decompressor() else { throw PGSnapError("libdeflate cannot make a decompressor") }
        decompressor = d
        output = [UInt8](repeating: 0, count: 2 << 20)
        pending.reserveCapacity(2 << 20)
    }

    deinit { libdeflate_free_decompressor(decompressor) }

    public func feed(_ bytes: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        if let fallback { return try fallback.feed(bytes, sink: sink) }
        pending.append(contentsOf: bytes)
        try drain(sink: sink)
        if fallback == nil, pending.count - offset > Self.maxMember { try handToZlib(sink: sink) }
    }

    public func finish() throws {
        if let fallback { return try fallback.finish() }
        guard offset == pending.count, members > 0 else {
            // A member libdeflate could not read (cut or corrupt): zlib names what is wrong.
            try handToZlib { _ in }
            return try fallback!.finish()
        }
    }

    public func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        if fallback == nil, offset < pending.count || members == 0 { try handToZlib(sink: sink) }
        try finish()
    }

    /// Whole members out of `pending`, each checked (CRC-32 and size) by libdeflate.
    private func drain(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        while offset < pending.count {
            if members > 0 && pending[offset] != 0x1f {
                throw PGSnapError.verification("data after the end of the gzip stream")
            }
            var used = 0, produced = 0
            let result = pending.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { out in
                    libdeflate_gzip_decompress_ex(decompressor, input.baseAddress! + offset, input.count - offset,
                                                  out.baseAddress, out.count, &used, &produced)
                }
            }
            guard result == LIBDEFLATE_SUCCESS else {
                // Not enough input yet (or a member bigger than the buffer, or damage): more bytes
                // decide; past `maxMember`, or at the end, zlib takes over.
                if result == LIBDEFLATE_INSUFFICIENT_SPACE { try handToZlib(sink: sink) }
                break
            }
            try output.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            offset += used
            members += 1
        }
        if offset > 0 && offset == pending.count {
            pending.removeAll(keepingCapacity: true)
            offset = 0
        } else if offset > (1 << 20) {
            pending.removeFirst(offset)
            offset = 0
        }
    }

    private func handToZlib(sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let z = try GzipInflater()
        fallback = z
        let rest = pending[offset...]
        pending = []
        offset = 0
        try rest.withUnsafeBytes { try z.feed($0, sink: sink) }
    }
}
