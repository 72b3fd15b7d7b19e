import CZlib
import PGSnapCore

/// The one place that talks to zlib. Streams live on the heap: a copied `z_stream` is invalid.

/// Inflates a gzip stream of one or more members (pigz-style parallel output, or appended files).
public final class GzipInflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private var output: [UInt8]
    public private(set) var finishedMember = false
    private var ended = false
    /// Bytes after the last member's end that were not a new member (garbage).
    public private(set) var trailingGarbage = false

    public init(outputChunk: Int = 256 << 10) throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = [UInt8](repeating: 0, count: outputChunk)
        let rc = czlib_inflate_init_gzip(stream)
        guard rc == Z_OK else {
            stream.deallocate()
            throw PGSnapError("zlib inflateInit2 failed (\(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// True when the input so far ended exactly at the end of a member.
    public var atMemberBoundary: Bool { finishedMember }

    /// Feeds compressed bytes; calls `sink` with each run of inflated bytes.
    ///
    /// - Throws: `PGSnapError.verification` naming the zlib error (bad CRC, bad header, ...).
    public func feed(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard input.count > 0 else { return }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.pointee.avail_in = uInt(input.count)
        let chunk = output.count
        try output.withUnsafeMutableBufferPointer { out in
            while stream.pointee.avail_in > 0 {
                if finishedMember {
                    // Another member follows: a gzip member starts with 1f 8b.
                    if stream.pointee.next_in.pointee != 0x1f {
                        trailingGarbage = true
                        throw PGSnapError.verification("data after the end of the gzip stream")
                    }
                    inflateReset(stream)
                    finishedMember = false
                }
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(chunk)
                let rc = inflate(stream, Z_NO_FLUSH)
                let produced = chunk - Int(stream.pointee.avail_out)
                if produced > 0 { try sink(UnsafeRawBufferPointer(start: out.baseAddress, count: produced)) }
                switch rc {
                case Z_STREAM_END:
                    finishedMember = true
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if stream.pointee.avail_in == 0 { return }
                    continue
                default:
                    let msg = stream.pointee.msg.map { String(cString: $0) } ?? "error \(rc)"
                    throw PGSnapError.verification("gzip stream is corrupt (\(msg))")
                }
            }
        }
    }

    /// Checks that the stream ended at the end of a complete member.
    public func finish() throws {
        guard finishedMember else {
            throw PGSnapError.verification("gzip stream is truncated (it ends inside a member)")
        }
    }
}
