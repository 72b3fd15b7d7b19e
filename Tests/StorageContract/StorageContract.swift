import Foundation
import PGSnapCore

/// The promises every `SnapshotStorage` keeps, run against the in-memory storage and the
/// backup directory (unit tests) and a bucket (IntegrationTests, moto). Each case throws a
/// `Failure` naming what broke; the test targets turn that into a test failure.
public struct StorageContract {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A fresh, empty storage for each case.
    let make: () throws -> SnapshotStorage
    /// The size of the "large" object: more than one part (or read chunk) of the storage.
    let largeBytes: Int

    public init(largeBytes: Int = 12 << 20, make: @escaping () throws -> SnapshotStorage) {
        self.make = make
        self.largeBytes = largeBytes
    }

    public static let cases: [(name: String, run: (StorageContract) throws -> Void)] = [
        ("listing with sizes", { try $0.listingWithSizes() }),
        ("nothing visible before commit", { try $0.atomicCommit() }),
        ("an aborted or abandoned write lists no snapshot", { try $0.interruptedWrite() }),
        ("delete", { try $0.delete() }),
        ("names with odd characters", { try $0.oddNames() }),
        ("a large object streamed in bounded pieces", { try $0.largeObject() }),
        ("a catalog over the storage", { try $0.catalog() }),
        ("stat: size, and the SHA-256 given at write where one is kept", { try $0.stat() }),
        ("a staged folder ends up whole under its name, nothing else", { try $0.stagedFolder() }),
    ]

    static let id = "app_20261101T000000Z"

    func expect(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw Failure(description: what()) }
    }

    func write(_ storage: SnapshotStorage, _ name: String, _ bytes: [UInt8]) throws {
        let upload = try storage.create(name, expectedSize: Int64(bytes.count), sha256: nil)
        try bytes.withUnsafeBytes { try upload.write($0) }
        let stored = try upload.commit()
        try expect(stored == Int64(bytes.count), "commit of \(name) says \(stored) bytes, \(bytes.count) were written")
    }

    func readAll(_ storage: SnapshotStorage, _ name: String) throws -> [UInt8] {
        var out: [UInt8] = []
        try storage.read(name, size: try storage.size(of: name) ?? -1) { out.append(contentsOf: $0) }
        return out
    }

    func listing(_ storage: SnapshotStorage) throws -> [String: Int64] {
        Dictionary(try storage.list().map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
    }

    func listingWithSizes() throws {
        let s = try make()
        let initial = try s.list()
        try expect(initial.isEmpty, "a new storage lists \(initial)")
        try write(s, Self.id + ".sql.gz", Array(repeating: 7, count: 1000))
        try s.putSmall(Self.id + ".manifest.json", bytes: Array("{}".utf8))
        try write(s, Self.id + ".dir/toc.dat", Array(repeating: 1, count: 10))
        try write(s, Self.id + ".dir/3001.dat.gz", [])
        let seen = try listing(s)
        try expect(seen[Self.id + ".sql.gz"] == 1000, "the dump lists as \(String(describing: seen[Self.id + ".sql.gz"])) bytes")
        try expect(seen[Self.id + ".manifest.json"] == 2, "the manifest lists as \(String(describing: seen[Self.id + ".manifest.json"])) bytes")
        try expect(try s.size(of: Self.id + ".sql.gz") == 1000, "size(of:) of the dump")
        try expect(try s.size(of: "nothing_20261101T000000Z.sql.gz") == nil, "size(of:) of a missing file is not nil")
        let inner = try s.files(inDirectory: Self.id + ".dir")
        try expect(inner == [DirectoryFile(name: "3001.dat.gz", size: 0), DirectoryFile(name: "toc.dat", size: 10)],
                   "files(inDirectory:) is \(inner)")
        try expect(try s.files(inDirectory: "missing_20261101T000000Z.dir").isEmpty, "files(inDirectory:) of a missing folder")
        try expect(try s.readSmall(Self.id + ".manifest.json", limit: 100) == Array("{}".utf8), "readSmall gives back what putSmall stored")
        try expect((try? s.readSmall(Self.id + ".sql.gz", limit: 10)) == nil, "readSmall over its limit must throw")
        try expect(try s.readSmall(Self.id + ".dir/3001.dat.gz", limit: 10) == [], "readSmall of an empty file")
        try expect(try s.readPrefix(Self.id + ".sql.gz", count: 10) == Array(repeating: 7, count: 10), "readPrefix")
    }

    func atomicCommit() throws {
        let s = try make()
        let name = Self.id + ".sql.gz"
        let upload = try s.create(name, expectedSize: 6, sha256: nil)
        try Array("abc".utf8).withUnsafeBytes { try upload.write($0) }
        try expect(try listing(s)[name] == nil, "\(name) lists before its commit")
        try expect(try s.size(of: name) == nil, "\(name) has a size before its commit")
        try Array("def".utf8).withUnsafeBytes { try upload.write($0) }
        _ = try upload.commit()
        try expect(try listing(s)[name] == 6, "\(name) does not list with 6 bytes after its commit")
        try expect(try readAll(s, name) == Array("abcdef".utf8), "\(name) reads back other bytes")
        // A small file replaced whole: the new bytes or the old, never a mix.
        try s.putSmall(Self.id + ".manifest.json", bytes: Array("old".utf8))
        try s.putSmall(Self.id + ".manifest.json", bytes: Array("newer".utf8))
        try expect(try s.readSmall(Self.id + ".manifest.json", limit: 100) == Array("newer".utf8), "putSmall does not replace")
    }

    func interruptedWrite() throws {
        let s = try make()
        let aborted = Self.id + ".sql.gz"
        let upload = try s.create(aborted, expectedSize: 3, sha256: nil)
        try Array("abc".utf8).withUnsafeBytes { try upload.write($0) }
        upload.abort()
        try expect(try listing(s)[aborted] == nil, "an aborted write lists as \(aborted)")
        // Abandoned: neither committed nor aborted (the process was killed).
        let other = "other_20261101T000000Z.sql.gz"
        let abandoned = try s.create(other, expectedSize: 3, sha256: nil)
        try Array("abc".utf8).withUnsafeBytes { try abandoned.write($0) }
        try expect(try listing(s)[other] == nil, "an abandoned write lists as \(other)")
        let committed = try s.catalog().filter(\.isCommitted)
        try expect(committed.isEmpty, "an interrupted write lists as a snapshot: \(committed.map(\.id))")
        abandoned.abort()
    }

    func delete() throws {
        let s = try make()
        try write(s, Self.id + ".sql.gz", [1, 2, 3])
        try s.putSmall(Self.id + ".manifest.json", bytes: Array("{}".utf8))
        try write(s, Self.id + ".dir/toc.dat", [1])
        try s.delete(Self.id + ".sql.gz")
        try expect(try listing(s)[Self.id + ".sql.gz"] == nil, "a deleted file still lists")
        try expect(try listing(s)[Self.id + ".manifest.json"] == 2, "delete took a neighbour with it")
        try s.delete(Self.id + ".dir/toc.dat")
        try expect(try s.files(inDirectory: Self.id + ".dir").isEmpty, "a deleted file of a folder still lists")
        try s.delete("never_20261101T000000Z.sql.gz")
    }

    /// A directory snapshot copied in: its files written into the staging folder are, once the
    /// folder is committed, exactly the files under its name (a leftover folder there replaced).
    func stagedFolder() throws {
        let s = try make()
        let name = Self.id + ".dir"
        try write(s, name + "/old.dat.gz", [9])
        let staging = s.stagingFolder(for: name)
        try s.beginFolder(staging)
        try write(s, staging + "/toc.dat", [1, 2])
        try write(s, staging + "/3001.dat.gz", [3])
        if staging != name {
            try expect(try s.files(inDirectory: name).map(\.name) == ["old.dat.gz"], "staged files show under the final name before the commit")
        } else {
            // Written in place: the transfer itself removes files the manifest does not name.
            try s.delete(name + "/old.dat.gz")
        }
        try s.commitFolder(staging, as: name)
        let committed = try s.files(inDirectory: name).map(\.name)
        try expect(committed == ["3001.dat.gz", "toc.dat"], "after the commit \(name) holds \(committed)")
        try expect(try readAll(s, name + "/toc.dat") == [1, 2], "a committed folder's file reads back other bytes")
    }

    func oddNames() throws {
        let s = try make()
        for database in ["café db", "a+b=c&d", "100%", "quote'\"", "日本語", "semi;colon"] {
            let name = SnapshotName.id(database: database, date: Date(timeIntervalSince1970: 1_790_000_000), label: nil) + ".sql.gz"
            let bytes = Array(database.utf8)
            try write(s, name, bytes)
            try expect(try listing(s)[name] == Int64(bytes.count), "\(name) does not list under its own name")
            try expect(try readAll(s, name) == bytes, "\(name) reads back other bytes")
            try s.delete(name)
            try expect(try listing(s)[name] == nil, "\(name) still lists after delete")
        }
    }

    func largeObject() throws {
        let s = try make()
        let name = Self.id + ".sql.gz"
        let upload = try s.create(name, expectedSize: Int64(largeBytes), sha256: nil)
        var piece = [UInt8](repeating: 0, count: 64 << 10)
        var written = 0
        var sum: UInt64 = 0
        while written < largeBytes {
            let n = min(piece.count, largeBytes - written)
            for i in 0..<n { piece[i] = UInt8(truncatingIfNeeded: (written + i) &* 31 &+ (written + i) >> 16) }
            for b in piece[0..<n] { sum = sum &* 1_099_511_628_211 &+ UInt64(b) }
            try piece[0..<n].withUnsafeBytes { try upload.write($0) }
            written += n
        }
        try expect(try upload.commit() == Int64(largeBytes), "the large object's commit size")
        try expect(try s.size(of: name) == Int64(largeBytes), "the large object's stored size")
        var read: Int64 = 0
        var biggest = 0
        var got: UInt64 = 0
        try s.read(name, size: Int64(largeBytes)) { chunk in
            biggest = max(biggest, chunk.count)
            for b in chunk { got = got &* 1_099_511_628_211 &+ UInt64(b) }
            read += Int64(chunk.count)
        }
        try expect(read == Int64(largeBytes), "read \(read) of \(largeBytes) bytes")
        try expect(got == sum, "the large object reads back other bytes")
        // Streamed: never the whole object in one piece, so memory does not grow with the object.
        try expect(biggest < largeBytes, "the whole \(largeBytes)-byte object came in one piece")
    }

    func stat() throws {
        let s = try make()
        let sha = String(repeating: "ab", count: 32)
        let upload = try s.create(Self.id + ".sql.gz", expectedSize: 3, sha256: sha)
        try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try upload.write($0) }
        _ = try upload.commit()
        try s.putSmall(Self.id + ".dir/toc.dat", bytes: [1, 2], sha256: sha)
        for (name, size) in [(Self.id + ".sql.gz", Int64(3)), (Self.id + ".dir/toc.dat", 2)] {
            let st = try s.stat(name)
            try expect(st?.size == size, "stat(\(name)) is \(String(describing: st)), expected \(size) bytes")
            try expect(st?.sha256 == nil || st?.sha256 == sha, "stat(\(name)) records another SHA-256: \(String(describing: st?.sha256))")
        }
        try expect(try s.stat("none_20261101T000000Z.sql.gz") == nil, "stat of a missing file is not nil")
    }

    func catalog() throws {
        let s = try make()
        try write(s, Self.id + ".dir/toc.dat", Array(repeating: 1, count: 10))
        try write(s, Self.id + ".dir/3001.dat.gz", Array(repeating: 2, count: 5))
        let entries = try s.catalog()
        try expect(entries.map(\.id) == [Self.id], "a directory snapshot's files are one entry: \(entries.map(\.id))")
        try expect(entries.first?.isCommitted == false, "a directory without a manifest is not a snapshot")
    }
}
