import CProcess
import Foundation
import PGSnapCore

/// The backup directory on disk: 0700, files 0600, temp-fsync-rename-fsync for everything that matters.
public struct SnapshotDirectory {
    public let path: String

    /// Opens (and with `create`, makes) the directory.
    ///
    /// - Throws: `PGSnapError` when the path is a file, cannot be created, is not writable, or
    ///   someone else may write to it (`writerRefusal`).
    public init(path: String, create: Bool) throws {
        try self.init(path: path, create: create, vetted: true)
    }

    /// A directory that only receives a file pgsnap writes (a metrics file for node_exporter's
    /// textfile collector, often shared): not vetted as a place snapshots are read from.
    static func forWriting(_ path: String) throws -> SnapshotDirectory {
        try SnapshotDirectory(path: path, create: false, vetted: false)
    }

    private init(path: String, create: Bool, vetted: Bool) throws {
        self.path = path
        var st = stat()
        if lstat(path, &st) != 0 {
            guard create else {
                throw PGSnapError("backup directory \(path) does not exist", next: "Check --dir (or PGSNAP_DIR); 'pgsnap backup' creates it")
            }
            if mkdir(path, 0o700) != 0 {
                let why = String(cString: strerror(errno))
                throw PGSnapError("cannot create backup directory \(path): \(why)",
                                  next: "Create its parent directory or choose another --dir")
            }
            chmod(path, 0o700)
            try SnapshotDirectory.fsyncPath(SnapshotDirectory.parent(of: path))
            return
        }
        var target = st
        if (st.st_mode & S_IFMT) == S_IFLNK {
            // A symlinked backup directory is allowed (a mount elsewhere); it must lead to a directory.
            guard stat(path, &target) == 0 else {
                throw PGSnapError("backup directory \(path) is a dangling symlink", next: "Fix the link or choose another --dir")
            }
        }
        guard (target.st_mode & S_IFMT) == S_IFDIR else {
            throw PGSnapError("backup directory \(path) exists but is not a directory", next: "Choose another --dir")
        }
        if vetted, let refusal = SnapshotDirectory.writerRefusal(path, target) { throw refusal }
        if create, access(path, W_OK | X_OK) != 0 {
            throw PGSnapError("backup directory \(path) is not writable", next: "Fix its permissions or choose another --dir")
        }
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// Regular files of the directory (no dot files, no links), with sizes, and directory
    /// snapshots (`<id>.dir`, `<id>.dir.partial`) as one entry each, sized by their files.
    public func list() throws -> [DirectoryFile] {
        guard let entries = SnapshotDirectory.entries(path) else {
            throw PGSnapError("cannot read backup directory \(path): \(String(cString: strerror(errno)))")
        }
        return entries.compactMap { e in
            if e.name.hasPrefix(".") { return nil }
            if e.mode == S_IFREG { return DirectoryFile(name: e.name, size: e.size) }
            guard e.mode == S_IFDIR, SnapshotDirectory.isSnapshotDirectoryName(e.name) else { return nil }
            return DirectoryFile(name: e.name, size: (try? SnapshotDirectory.files(in: file(e.name)))?.reduce(0) { $0 + max(0, $1.size) } ?? 0)
        }
    }

    /// Every entry of `path` but `.` and `..`, with its file type (lstat: links are not followed)
    /// and size; nil when it cannot be opened (errno says why).
    static func entries(_ path: String) -> [(name: String, mode: mode_t, size: Int64)]? {
        guard let d = opendir(path) else { return nil }
        defer { closedir(d) }
        var out: [(name: String, mode: mode_t, size: Int64)] = []
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in String(cString: raw.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            var st = stat()
            guard lstat(path + "/" + name, &st) == 0 else { continue }
            out.append((name, st.st_mode & S_IFMT, Int64(st.st_size)))
        }
        return out
    }

    public func readManifest(id: String, summary: Bool = false) throws -> Manifest {
        let name = id + SnapshotName.manifestSuffix
        let fd: Int32
        switch SnapshotDirectory.openRegular(file(name)) {
        case .success(let opened): fd = opened
        case .failure(let why): throw PGSnapError.verification("cannot read manifest \(name): \(why.text)")
        }
        defer { close(fd) }
        // A manifest is a few KB; a scratch buffer that is not zeroed each time, as prune reads thousands.
        var bytes: [UInt8] = []
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16384) { buf in
            while true {
                let n = read(fd, buf.baseAddress, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                bytes.append(contentsOf: buf[0..<n])
                if bytes.count > Manifest.maxBytes { break }
            }
        }
        return try Manifest.decode(bytes: bytes, fileName: name, summary: summary)
    }

    /// - Parameter summaries: keep only the manifest fields prune and check need.
    public func catalog(summaries: Bool = false) throws -> [CatalogEntry] {
        let files = try list()
        // Reading and decoding manifests is nearly all the time `list`, `prune` and `check` take
        // over a big directory; they are independent, so every core decodes.
        let ids = files.compactMap { f in
            f.name.hasSuffix(SnapshotName.manifestSuffix) ? String(f.name.dropLast(SnapshotName.manifestSuffix.count)) : nil
        }
        var loaded = [Result<Manifest, Error>?](repeating: nil, count: ids.count)
        loaded.withUnsafeMutableBufferPointer { slots in
            DispatchQueue.concurrentPerform(iterations: ids.count) { i in
                slots[i] = Result { try readManifest(id: ids[i], summary: summaries) }
            }
        }
        let byID = Dictionary(zip(ids, loaded), uniquingKeysWith: { first, _ in first })
        return Catalog.build(files: files, loadManifest: { id in
            guard let result = byID[id] ?? nil else { return try readManifest(id: id, summary: summaries) }
            return try result.get()
        })
    }

    /// Writes `data` to `name` atomically: `name.partial` (0600, or `mode`, set on the open file:
    /// never a chmod by path, which a link swapped in after the rename would redirect), fsync,
    /// rename, fsync directory.
    public func writeAtomically(_ data: Data, to name: String, mode: mode_t = 0o600) throws {
        let tmp = file(name + SnapshotName.partialSuffix)
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SnapshotDirectory.ioError("create \(tmp)") }
        if mode != 0o600 { fchmod(fd, mode) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        try data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = SnapshotDirectory.ioError("write \(tmp)")
                    close(fd)
                    throw e
                }
                off += n
            }
        }
        guard fsync(fd) == 0 else {
            let e = SnapshotDirectory.ioError("fsync \(tmp)")
            close(fd)
            throw e
        }
        close(fd)
        guard rename(tmp, file(name)) == 0 else { throw SnapshotDirectory.ioError("rename \(tmp)") }
        ok = true
        try SnapshotDirectory.fsyncPath(path)
    }

    /// An exclusive, non-blocking flock on a folder, held by the returned descriptor (close it to
    /// let go): how a writer of a `.dir.partial` folder tells the next backup's cleanup that the
    /// folder is not abandoned. nil when it cannot be opened or another writer holds it.
    static func claimFolder(_ path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    static func isSnapshotDirectoryName(_ name: String) -> Bool {
        name.hasSuffix(SnapshotName.directorySuffix) || name.hasSuffix(SnapshotName.directorySuffix + SnapshotName.partialSuffix)
    }

    /// The regular files directly inside `path` (a directory snapshot holds no subdirectories;
    /// links and anything else are returned too, as non-regular, so verify can name them).
    public static func files(in path: String) throws -> [DirectoryFile] {
        guard let all = entries(path) else { throw ioError("read \(path)") }
        return all.map { DirectoryFile(name: $0.name, size: $0.mode == S_IFREG ? $0.size : -1) }.sorted { $0.name < $1.name }
    }

    /// Removes a file, or a directory snapshot with the files in it (never following a link).
    public func remove(_ name: String) throws {
        var st = stat()
        if lstat(file(name), &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, SnapshotDirectory.isSnapshotDirectoryName(name) {
            try SnapshotDirectory.removeTree(file(name))
            return
        }
        if unlink(file(name)) != 0 && errno != ENOENT {
            throw SnapshotDirectory.ioError("remove \(file(name))")
        }
    }

    /// Opens a file for reading only if it is a regular file: a FIFO or device planted in the
    /// backup directory would otherwise block a read (and a cron job) forever.
    public static func openRegularFile(_ path: String) throws -> Int32 {
        switch openRegular(path) {
        case .success(let fd): return fd
        case .failure(let why): throw PGSnapError("cannot open \(path): \(why.text)", next: why.next)
        }
    }

    struct OpenFailure: Error { var text: String; var next: String? }

    static func openRegular(_ path: String) -> Result<Int32, OpenFailure> {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(OpenFailure(text: String(cString: strerror(errno)))) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return .failure(OpenFailure(text: "not a regular file", next: "Move it out of the backup directory"))
        }
        // Back to blocking reads: O_NONBLOCK only guarded the open itself.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return .success(fd)
    }

    public func sync() throws { try SnapshotDirectory.fsyncPath(path) }

    /// Up to `count` bytes from the start of a regular file (fewer when it is shorter).
    public static func readPrefix(_ path: String, count: Int) throws -> [UInt8] {
        let fd = try openRegularFile(path)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, count - filled) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw ioError("read \(path)") }
            if n == 0 { break }
            filled += n
        }
        return Array(bytes.prefix(filled))
    }

    /// A regular file read front to back in 1 MiB chunks.
    public static func readFile(_ path: String, consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        try OpenFile(path: path).readAll(consume)
    }

    /// Removes a directory snapshot: its entries (unlinked, a link is removed, not followed; a
    /// folder inside, as a decrypted copy of a directory snapshot has, removed the same way),
    /// then itself.
    public static func removeTree(_ path: String) throws {
        for f in (try? files(in: path)) ?? [] {
            let entry = path + "/" + f.name
            var st = stat()
            if lstat(entry, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
                try removeTree(entry)
            } else if unlink(entry) != 0 && errno != ENOENT {
                throw ioError("remove \(entry)")
            }
        }
        if rmdir(path) != 0 && errno != ENOENT { throw ioError("remove \(path)") }
    }

    /// The directory holding `path`, by hand: NSString's deletingLastPathComponent trapped in
    /// release builds on a one-character relative path ("d").
    public static func parent(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    public static func fsyncPath(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open \(path)") }
        defer { close(fd) }
        if fsync(fd) != 0 && errno != EINVAL { throw ioError("fsync \(path)") }
    }

    /// Whoever else may write to the backup directory could plant a snapshot (a manifest with
    /// matching checksums) that restore would load, running its SQL as the restoring role, or
    /// that prune would take for the newest. pgsnap makes the directory 0700; one that another
    /// user owns, or that its group (not the owner's private one), every user, or an access ACL
    /// lets others write to, is refused. Root may use a service user's directory (the 3 a.m.
    /// restore from the package's /var/lib/pgsnap): it trusts that user, as it must anyway.
    static func writerRefusal(_ path: String, _ st: stat) -> PGSnapError? {
        let next = "Run chmod go-w \(shellQuote(path)) (pgsnap makes it 0700) or choose another --dir"
        let what = "another user could plant a snapshot that restore would load"
        if st.st_uid != geteuid() && st.st_uid != 0 && geteuid() != 0 {
            let owner = getpwuid(st.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(st.st_uid)"
            let me = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(geteuid())"
            return PGSnapError("backup directory \(path) belongs to \(owner), not to \(me): \(what)",
                               next: "Run pgsnap as \(owner) (sudo -u \(owner) pgsnap ...), or chown \(me) \(shellQuote(path)), or choose another --dir")
        }
        let groupShared = st.st_mode & 0o020 != 0 && !isPrivateGroup(st.st_gid, owner: st.st_uid)
        if st.st_mode & 0o002 != 0 || groupShared {
            let who = st.st_mode & 0o002 != 0 ? "every user" : "its group"
            return PGSnapError("backup directory \(path) is writable by \(who) (mode \(String(st.st_mode & 0o7777, radix: 8))): \(what)", next: next)
        }
        // An extended access ACL (getfacl shows a +) may let named users or groups write; the
        // mode's group bits are then its mask, which caps them all: no write in the mask, no one
        // else writes (a directory pgsnap made 0700 under a default ACL has such an ACL).
        if st.st_mode & 0o020 != 0, pgsnap_xattr_size(path, "system.posix_acl_access") > 0 {
            return PGSnapError("backup directory \(path) has an access ACL, which may let other users write to it: \(what)",
                               next: "Remove it (setfacl -b \(shellQuote(path))) or choose another --dir")
        }
        return nil
    }

    /// A user private group (umask 002 makes directories group-writable): named as its owner,
    /// with no other member, and no other user's primary group, so group write lets no one else in.
    static func isPrivateGroup(_ gid: gid_t, owner: uid_t) -> Bool {
        guard let group = getgrgid(gid), let user = getpwuid(owner) else { return false }
        let ownerName = String(cString: user.pointee.pw_name)
        guard String(cString: group.pointee.gr_name) == ownerName, group.pointee.gr_mem?.pointee == nil, user.pointee.pw_gid == gid else {
            return false
        }
        setpwent()
        defer { endpwent() }
        while let other = getpwent() {
            if other.pointee.pw_gid == gid && String(cString: other.pointee.pw_name) != ownerName { return false }
        }
        return true
    }

    /// `<TMPDIR>/<prefix>-<host>-<pid>-XXXXXX` (TMPDIR from `environment`, else /tmp), 0700;
    /// the caller removes it. `what` names its use in the error.
    static func makePrivateTemporary(prefix: String, environment: [String: String], for what: String) throws -> String {
        try makePrivateDirectory(prefix: prefix, in: environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp", for: what)
    }

    /// `<base>/<prefix>-<host>-<pid>-XXXXXX`, 0700, after removing what killed runs left there.
    /// Host and pid let a later run remove what a killed one left (`removeOrphanedTemporaries`):
    /// a drill's copy is a whole snapshot, a passfile a password. The host, because a TMPDIR
    /// shared with a container holds pids of another pid namespace.
    static func makePrivateDirectory(prefix: String, in base: String, for what: String) throws -> String {
        removeOrphanedTemporaries(prefix: prefix, in: base)
        var template = Array((base + "/" + prefix + "-\(hostTag)-\(getpid())-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ioError("create a private directory in \(base) for \(what)")
        }
        return String(cString: made)
    }

    /// Removes `<prefix>-<host>-<pid>-XXXXXX` directories in `base` that are ours (this host's,
    /// this user's) and whose process is gone (`kill -9` of a drill left its copy for ever).
    static func removeOrphanedTemporaries(prefix: String, in base: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix(prefix + "-\(hostTag)-") {
            let parts = name.dropFirst(prefix.count + 1).split(separator: "-")
            guard parts.count == 3, parts[2].count == 6, let pid = Int32(parts[1]), isOrphanedPrivateDirectory(base + "/" + name, pid: pid)
            else { continue }
            try? FileManager.default.removeItem(atPath: base + "/" + name)  // a directory snapshot's copy has a folder
        }
    }

    /// Whether `path` is a directory of this user's (never a link) whose process `pid`, not
    /// this one, is gone: what a killed run left in a private temporary place.
    static func isOrphanedPrivateDirectory(_ path: String, pid: Int32) -> Bool {
        guard pid > 0, pid != getpid() else { return false }
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid() else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// FNV-1a of the host name, in hex: which host's process a pid in a name is.
    static let hostTag: String = {
        var h: UInt32 = 2166136261
        for b in ProcessInfo.processInfo.hostName.utf8 { h = (h ^ UInt32(b)) &* 16777619 }
        return String(h, radix: 16)
    }()

    /// All of `bytes` to `fd` (short writes and EINTR retried); a failure names `path`.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("write \(path)")
            }
            off += n
        }
    }

    /// An OS error with `errno`'s text; "No space left on device" gets its own advice.
    public static func ioError(_ what: String, errno code: Int32 = errno) -> PGSnapError {
        let why = String(cString: strerror(code))
        if code == ENOSPC || code == EDQUOT {
            return PGSnapError("cannot \(what): \(why)", next: "Free space in the backup directory or run 'pgsnap prune'; nothing was kept from this run")
        }
        return PGSnapError("cannot \(what): \(why)")
    }

    /// Free bytes available to us on the directory's filesystem.
    public func freeBytes() -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }
}
