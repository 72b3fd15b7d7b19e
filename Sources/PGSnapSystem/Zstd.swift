import CZstd
import PGSnapCore

/// The one place that talks to libzstd: a multi-threaded streaming compressor and a streaming
/// decompressor that reads any number of concatenated frames (as zstdcat does).

public final class ZstdWriter: DumpCompressor {
    private let ctx: OpaquePointer
    private let sink: ByteSink
    private var out: [UInt8]
    public private(set) var waitSeconds: Double = 0

    /// - Throws: `PGSnapError` when the level or thread count is refused.
    public init(sink: ByteSink, level: Int, jobs: Int) throws {
        guard let c = ZSTD_createCCtx() else { throw PGSnapError("cannot create a zstd compressor") }
        ctx = c
        self.sink = sink
        out = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        try check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, Int32(level)), "set level \(level)")
        try check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1), "enable checksums")
        if jobs > 1 {
            try check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_nbWorkers, Int32(jobs)), "use \(jobs) threads")
            // Default jobs are 4 windows (8 MiB at level 3) each, buffered per worker: small jobs keep memory flat.
            try check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_jobSize, 2 << 20), "set the job size")
        }
    }

    deinit { ZSTD_freeCCtx(ctx) }

    private func check(_ rc: Int, _ what: String) throws {
        if ZSTD_isError(rc) != 0 { throw PGSnapError("zstd: cannot \(what): \(String(cString: ZSTD_getErrorName(rc)))") }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size {
            try drain(mode: ZSTD_e_continue, input: &input)
        }
    }

    public func finish() throws {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try drain(mode: ZSTD_e_end, input: &input) != 0 {}
    }

    @discardableResult
    private func drain(mode: ZSTD_EndDirective, input: inout ZSTD_inBuffer) throws -> Int {
        let count = out.count
        return try out.withUnsafeMutableBytes { raw in
            var output = ZSTD_outBuffer(dst: raw.baseAddress, size: count, pos: 0)
            let remaining = ZSTD_compressStream2(ctx, &output, &input, mode)
            try check(remaining, "compress")
            if output.pos > 0 { try sink.write(UnsafeRawBufferPointer(rebasing: raw[0..<output.pos])) }
            return remaining
        }
    }
}

public final class ZstdInflater: DumpInflater {
    private let ctx: OpaquePointer
    private var out: [UInt8]
    private var inFrame = false
    private var sawFrame = false

    public init() throws {
        guard let c = ZSTD_createDCtx() else { throw PGSnapError("cannot create a zstd decompressor") }
        ctx = c
        out = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
    }

    deinit { ZSTD_freeDCtx(ctx) }

    public func feed(_ bytes: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        let count = out.count
        try out.withUnsafeMutableBytes { raw in
            while input.pos < input.size || inFrame {
                var output = ZSTD_outBuffer(dst: raw.baseAddress, size: count, pos: 0)
                let rc = ZSTD_decompressStream(ctx, &output, &input)
                if ZSTD_isError(rc) != 0 {
                    throw PGSnapError.verification("zstd stream is corrupt (\(String(cString: ZSTD_getErrorName(rc))))")
                }
                sawFrame = true
                inFrame = rc != 0
                if output.pos > 0 { try sink(UnsafeRawBufferPointer(rebasing: raw[0..<output.pos])) }
                if output.pos < count && input.pos == input.size { break }
            }
        }
    }

    public func finish() throws {
        guard sawFrame, !inFrame else { throw PGSnapError.verification("zstd stream is truncated (it ends inside a frame)") }
    }
}
