import PGSnapCore

/// Where backup sends the dump: gzip members, a zstd stream, or the file as is.
public protocol DumpCompressor: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    func finish() throws
    /// Time the producer spent waiting for compression (the manifest's timings).
    var waitSeconds: Double { get }
}

/// Where a stage sends its output: the `.partial` file, or the next stage (age) on its way there.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// What verify and restore read the dump through.
public protocol DumpInflater: AnyObject {
    func feed(_ bytes: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws
    func finish() throws
    /// The end of input; a stage that buffers (age) still has output for `sink` then.
    func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws
}

extension DumpInflater {
    public func finish(sink: (UnsafeRawBufferPointer) throws -> Void) throws { try finish() }
}

extension ParallelGzipWriter: DumpCompressor {}
extension GzipInflater: DumpInflater {}

/// `--compress none`: the plain SQL, hashed and counted by the sink.
public final class PlainWriter: DumpCompressor {
    private let sink: ByteSink
    public let waitSeconds: Double = 0
    public init(sink: ByteSink) { self.sink = sink }
    public func write(_ bytes: UnsafeRawBufferPointer) throws { try sink.write(bytes) }
    public func finish() throws {}
}

public final class PlainInflater: DumpInflater {
    public init() {}
    public func feed(_ bytes: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) throws -> Void) throws { try sink(bytes) }
    public func finish() throws {}
}

public enum Codec {
    public static func compressor(_ algorithm: CompressionAlgorithm, sink: ByteSink, level: Int, jobs: Int) throws -> DumpCompressor {
        switch algorithm {
        case .gzip: return ParallelGzipWriter(sink: sink, level: level, jobs: jobs)
        case .zstd: return try ZstdWriter(sink: sink, level: level, jobs: jobs)
        case .none: return PlainWriter(sink: sink)
        }
    }

    public static func inflater(_ algorithm: CompressionAlgorithm) throws -> DumpInflater {
        switch algorithm {
        case .gzip: return try GzipMemberInflater()
        case .zstd: return try ZstdInflater()
        case .none: return PlainInflater()
        }
    }

    public static func defaultLevel(_ algorithm: CompressionAlgorithm) -> Int {
        switch algorithm {
        case .gzip: return 6
        case .zstd: return 3
        case .none: return 0
        }
    }
}
