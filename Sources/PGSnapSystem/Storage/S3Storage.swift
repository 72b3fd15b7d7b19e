import Foundation
import PGSnapCore
import PGSnapSigV4

/// Snapshot files as objects under `s3://bucket/prefix/`, the same names as on disk.
public final class S3Storage: SnapshotStorage {
    let client: S3Client
    public let remote: RemoteLocation
    /// Parts in flight during an upload: memory is about (inFlight + 1) x part size.
    let inFlight: Int
    let partSizeOverride: Int?

    public var location: String { remote.description }
    public var endpoint: String { client.endpointText }

    /// - Throws: `PGSnapError` when no credentials are found or the endpoint is unusable.
    public init(remote: RemoteLocation, environment: [String: String]) throws {
        self.remote = remote
        let settings = try S3Settings.resolve(environment: environment) { path in
            try? String(contentsOfFile: path, encoding: .utf8)
        }
        client = S3Client(settings: settings, location: remote, environment: environment)
        inFlight = environment["PGSNAP_S3_PARTS_IN_FLIGHT"].flatMap(Int.init).map { max(1, min($0, 16)) } ?? 3
        // Tests use small parts to get several of them from a small database; S3's floor is 5 MiB.
        partSizeOverride = environment["PGSNAP_S3_PART_SIZE"].flatMap(Int.init).map { max($0, 5 << 20) }
    }

    public func list() throws -> [DirectoryFile] {
        try client.listObjects(prefix: remote.listPrefix).compactMap { o in
            remote.name(ofKey: o.key).flatMap { $0.hasPrefix(".") ? nil : DirectoryFile(name: $0, size: o.size) }
        }
    }

    public func readSmall(_ name: String, limit: Int) throws -> [UInt8] {
        // One byte more than the limit at most: a damaged, huge object is refused, not held in memory.
        let data = try client.getPrefix(remote.key(name), count: Int64(limit) + 1)
        guard data.count <= limit else { throw PGSnapError.verification("\(location)/\(name) is more than \(limit) bytes") }
        return [UInt8](data)
    }

    public func size(of name: String) throws -> Int64? { try client.head(remote.key(name))?.size }

    /// From the listing of the whole prefix (one request per 1,000 keys), not a listing of the
    /// folder: moto's signature check rejects a `prefix` with a `/` in it (FIELD-NOTES).
    public func files(inDirectory name: String) throws -> [DirectoryFile] { try listedFiles(inDirectory: name) }

    /// Ranged GETs of one part size each: bounded memory, and a dropped connection costs one range.
    public func read(_ name: String, size: Int64, consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        let key = remote.key(name)
        let chunk = Int64(S3Storage.partSize(for: size, override: partSizeOverride))
        var offset: Int64 = 0
        while offset < size {
            let end = min(offset + chunk, size) - 1
            let data = try client.get(key, range: offset...end)
            guard !data.isEmpty else { throw PGSnapError.verification("\(location)/\(name) ends at byte \(offset), expected \(size)") }
            try data.withUnsafeBytes { try consume($0) }
            offset += Int64(data.count)
        }
    }

    public func create(_ name: String, expectedSize: Int64, sha256: String?) throws -> StorageUpload {
        try create(name, expectedSize: expectedSize, sha256: sha256, exclusive: false)
    }

    /// Every upload carries a token of its own (`x-amz-meta-upload`): what the object holds after
    /// completion is known to be this upload's, or another writer's that must not be removed.
    func create(_ name: String, expectedSize: Int64, sha256: String?, exclusive: Bool) throws -> StorageUpload {
        let key = remote.key(name)
        let token = UUID().uuidString.lowercased()
        var meta: [String: String] = ["upload": token]
        if let sha256 { meta["sha256"] = sha256 }
        let id = try client.createMultipartUpload(key, metadata: meta)
        return S3MultipartUpload(client: client, key: key, uploadID: id,
                                 partSize: S3Storage.partSize(for: expectedSize, override: partSizeOverride), inFlight: inFlight,
                                 grows: expectedSize < 0, token: token, exclusive: exclusive)
    }

    /// Taken when the object exists or another multipart upload of it is under way (a backup of
    /// the same database started in the same second elsewhere). Between that check and the end
    /// of the upload another writer may still take the name: the completion is conditional
    /// (`If-None-Match: *`), so the first one keeps it and the other fails, instead of the second
    /// silently replacing the first.
    public func createNew(_ name: String, expectedSize: Int64) throws -> StorageUpload? {
        let key = remote.key(name)
        guard try client.head(key) == nil else { return nil }
        guard try client.listMultipartUploads(prefix: key).allSatisfy({ $0.key != key }) else { return nil }
        return try create(name, expectedSize: expectedSize, sha256: nil, exclusive: true)
    }

    /// A directory snapshot (`<id>.dir`, as the catalog names it) goes with every object under it.
    public func delete(_ name: String) throws {
        if name.hasSuffix(SnapshotName.directorySuffix) {
            for f in try files(inDirectory: name) { try client.delete(remote.key(name + "/" + f.name)) }
        }
        try client.delete(remote.key(name))
    }

    public func sync() throws {}

    public func removeAbandonedWrites(startedBefore cutoff: Date) throws -> Int {
        try abortUnfinishedUploads(initiatedBefore: cutoff)
    }

    /// One PUT with Content-MD5 and the SHA-256, when given, as metadata: a small file of a
    /// directory snapshot costs one request instead of a multipart upload's four.
    public func putSmall(_ name: String, bytes: [UInt8], sha256: String?) throws {
        try client.put(remote.key(name), body: Data(bytes), metadata: sha256.map { ["sha256": $0] } ?? [:])
    }

    public func stat(_ name: String) throws -> StoredObject? {
        try client.head(remote.key(name)).map { StoredObject(size: $0.size, sha256: $0.metadata["sha256"]) }
    }

    /// Aborts unfinished uploads of `name` (what a killed push leaves behind) started more than
    /// the leftover grace ago: a younger one may be another push of the same file, still running
    /// (`backup --push` beside a cron `push`), which aborting would fail. Younger leftovers go
    /// with the next backup --remote or prune --remote after the grace.
    public func removeAbandonedWrites(of name: String) throws -> Int {
        let key = remote.key(name)
        let cutoff = Date().addingTimeInterval(-RetentionPolicy.defaultLeftoverGrace)
        let uploads = try client.listMultipartUploads(prefix: key).filter { $0.key == key && ($0.initiated.map { $0 < cutoff } ?? false) }
        for u in uploads { try client.abortMultipartUpload(u.key, uploadID: u.uploadID) }
        return uploads.count
    }

    /// Aborts unfinished uploads under the prefix started before `cutoff` (prune's leftovers).
    /// A snapshot file's name carries the time its backup started, which must be older too: an
    /// S3 server's `Initiated` is not trusted alone (moto reports 2010-11-10 for every upload,
    /// which would abort a backup still running).
    public func abortUnfinishedUploads(initiatedBefore cutoff: Date) throws -> Int {
        let stale = try client.listMultipartUploads(prefix: remote.listPrefix).filter { u in
            guard let name = remote.name(ofKey: u.key), let initiated = u.initiated, initiated < cutoff else { return false }
            // `<id>.dir/<file>`: the folder names the snapshot.
            let file = name.split(separator: "/").first.map(String.init) ?? name
            let started = Catalog.snapshotID(ofFile: file).flatMap { SnapshotName.parse(id: $0)?.date }
            return started.map { $0 < cutoff } ?? true
        }
        for u in stale { try client.abortMultipartUpload(u.key, uploadID: u.uploadID) }
        return stale.count
    }

    /// 8 MiB, or more so a big dump fits S3's 10,000 parts; at most 64 MiB (dumps up to 625 GiB).
    /// A negative size (not known yet) starts at 8 MiB and grows, see `S3MultipartUpload.partSize`.
    static func partSize(for size: Int64, override: Int?) -> Int {
        if let override { return override }
        let needed = (size + 9_999) / 10_000
        let mib = Int64(1 << 20)
        return Int(min(max(8 * mib, (needed + mib - 1) / mib * mib), 64 * mib))
    }
}

/// One multipart upload: parts filled in order, a few sent at once, completed in part order.
final class S3MultipartUpload: StorageUpload, @unchecked Sendable {
    let client: S3Client
    let key: String
    let uploadID: String
    /// Doubles every `S3MultipartUpload.partsPerSize` parts when the size is not known in advance
    /// (a dump streamed straight in): 8 MiB parts reach S3's 10,000-part limit at 484 GiB instead of 78.
    private(set) var partSize: Int
    let grows: Bool
    static let partsPerSize = 2000
    private var buffer: UnsafeMutableRawPointer?
    private var filled = 0
    private var parts = 0
    private var written: Int64 = 0
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var etags: [Int: String] = [:]
    private var firstError: Error?
    private var finished = false

    /// This upload's `x-amz-meta-upload`.
    let token: String
    /// Completed only if the key holds no object yet.
    let exclusive: Bool

    init(client: S3Client, key: String, uploadID: String, partSize: Int, inFlight: Int, grows: Bool = false, token: String,
         exclusive: Bool = false) {
        self.client = client
        self.key = key
        self.uploadID = uploadID
        self.partSize = partSize
        self.grows = grows
        self.token = token
        self.exclusive = exclusive
        slots = DispatchSemaphore(value: inFlight)
    }

    deinit {
        if let buffer { free(buffer) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            if buffer == nil {
                guard let b = malloc(partSize) else { throw PGSnapError("out of memory for an upload part of \(partSize) bytes") }
                buffer = b
            }
            let n = min(partSize - filled, bytes.count - off)
            (buffer! + filled).copyMemory(from: bytes.baseAddress! + off, byteCount: n)
            filled += n
            off += n
            if filled == partSize { try send() }
        }
        written += Int64(bytes.count)
    }

    /// Hands the full buffer to a worker (the Data owns and frees it) and waits for a free slot first.
    private func send() throws {
        // A part the server holds must not hold Ctrl-C too: the wait gives way to a signal.
        while slots.wait(timeout: .now() + .milliseconds(200)) == .timedOut {
            if SignalTrap.received != nil { throw PGSnapError(.interrupted, "upload of \(key) interrupted") }
        }
        if let e = lock.withLock({ firstError }) {
            slots.signal()
            throw e
        }
        parts += 1
        let number = parts
        // An empty file is one empty part (S3 allows the last part, here the only one, to be small).
        let data = buffer.map { Data(bytesNoCopy: $0, count: filled, deallocator: .free) } ?? Data()
        buffer = nil
        filled = 0
        if grows && number % S3MultipartUpload.partsPerSize == 0 { partSize = min(partSize * 2, 1 << 30) }
        group.enter()
        DispatchQueue.global().async { [self] in
            defer {
                slots.signal()
                group.leave()
            }
            do {
                let etag = try client.uploadPart(key, uploadID: uploadID, number: number, body: data)
                lock.withLock { etags[number] = etag }
            } catch {
                lock.withLock { if firstError == nil { firstError = error } }
            }
        }
    }

    func commit() throws -> Int64 {
        if filled > 0 || parts == 0 { try send() }
        group.wait()
        if let e = lock.withLock({ firstError }) { throw e }
        let ordered = (1...parts).map { etags[$0] ?? "" }
        let completed = try client.completeMultipartUpload(key, uploadID: uploadID, etags: ordered, onlyIfAbsent: exclusive)
        // The size S3 stored, not the one we meant: a lost part would show here.
        guard let stored = try client.head(key) else {
            throw PGSnapError("S3 at \(client.endpointText) lists no \(key) after completing its upload", next: "Run the command again")
        }
        // Refused as taken, or replaced since by another writer of the same name (a server that
        // ignores If-None-Match): that object is the other writer's, left as it is. A refusal
        // of a retried completion that had gone through finds this upload's own token; a server
        // that does not echo metadata is judged by the completion alone.
        let theirs = stored.metadata["upload"].map { $0 != token } ?? !completed
        guard !theirs else {
            throw PGSnapError("another writer stored \(key) at \(client.endpointText) while this upload ran (a backup of the same database and label in the same second, from another host or job); its object was kept, this one was not",
                              next: "Run the command again for a snapshot of its own; give concurrent jobs different labels")
        }
        finished = true
        guard stored.size == written else {
            try? client.delete(key)
            throw PGSnapError("S3 at \(client.endpointText) stored \(stored.size) bytes of \(key), sent \(written); the object was removed",
                              next: "Run the command again")
        }
        return stored.size
    }

    /// Parts still in flight get a few seconds (a signal: none); a part that lands after the
    /// abort is refused by S3 (NoSuchUpload), and S3 says to abort again when one might have.
    func abort() {
        _ = group.wait(timeout: .now() + (SignalTrap.received == nil ? 5 : 0))
        guard !finished else { return }
        try? client.abortMultipartUpload(key, uploadID: uploadID)
        if group.wait(timeout: .now()) == .timedOut { try? client.abortMultipartUpload(key, uploadID: uploadID) }
    }
}
