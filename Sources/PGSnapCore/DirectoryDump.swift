import Foundation

/// How a snapshot's dump is stored: one plain SQL file, or pg_dump's directory format
/// (`pg_dump -Fd`: a `toc.dat` and one gzip file per table), which `pg_restore -j` loads in parallel.
public enum DumpFormat: String, Codable, Sendable, CaseIterable {
    case plain, directory
}

/// One file of a directory snapshot, as the manifest records it.
public struct StoredFile: Codable, Equatable, Sendable {
    public var name: String
    public var bytes: Int64
    public var sha256: String
    /// For a table's data file: the table (as in `table_rows`) and the rows counted in it.
    public var table: String?
    public var rows: Int64?

    public init(name: String, bytes: Int64, sha256: String, table: String? = nil, rows: Int64? = nil) {
        self.name = name
        self.bytes = bytes
        self.sha256 = sha256
        self.table = table
        self.rows = rows
    }

    init(json f: JSONFields) throws {
        name = try f.required("name", JSONFields.string)
        bytes = try f.required("bytes", JSONFields.int64)
        sha256 = try f.required("sha256", JSONFields.string)
        table = try f.optional("table", JSONFields.string)
        rows = try f.optional("rows", JSONFields.int64)
    }

    static func list(_ v: JSONValue) -> [StoredFile]? {
        guard case .array(let a) = v else { return nil }
        var out: [StoredFile] = []
        for e in a {
            guard let f = try? JSONFields(e), let file = try? StoredFile(json: f) else { return nil }
            out.append(file)
        }
        return out
    }
}

/// The parts of pg_dump's directory format pgsnap relies on. Pure.
public enum DirectoryDump {
    /// `<dumpId>.dat.gz` (`.age` after it when encrypted): a table's rows in COPY text format;
    /// the dump id names it in `toc.dat`.
    public static func dataFileDumpID(_ name: String) -> Int? {
        let plain = plainName(name)
        guard plain.hasSuffix(".dat.gz") else { return nil }
        let stem = plain.dropLast(".dat.gz".count)
        guard !stem.isEmpty, stem.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(stem)
    }

    /// The name pg_dump gave a stored file: without the `.age` of an encrypted snapshot.
    public static func plainName(_ name: String) -> String {
        name.hasSuffix(SnapshotName.encryptedSuffix) ? String(name.dropLast(SnapshotName.encryptedSuffix.count)) : name
    }

    /// A file name pg_dump -Fd writes: `toc.dat`, `blobs.toc`, `<n>.dat.gz`, `blob_<oid>.dat.gz`.
    /// Anything else in a snapshot directory (a path, a dot file) is refused.
    public static func isDumpFileName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255, !name.hasPrefix("."), !name.contains("/") else { return false }
        return name.unicodeScalars.allSatisfy { SnapshotName.isPlain($0) }
    }

    /// What the manifest's `sha256` is for a directory snapshot: SHA-256 over `sha256sum`-style
    /// lines, sorted by name, so one value still identifies the whole snapshot.
    public static func listing(_ files: [StoredFile]) -> [UInt8] {
        Array(files.sorted { $0.name < $1.name }.map { "\($0.sha256)  \($0.name)\n" }.joined().utf8)
    }
}

/// Counts the rows of one table data file of a directory dump as it is inflated: COPY text rows,
/// one per line, then pg_dump's `\.` end line and empty lines (15 writes two). The end marker is
/// required: without it the file was cut short.
public struct CopyDataCounter: Sendable {
    public private(set) var bytes: Int64 = 0
    private var newlines: Int64 = 0
    private var tail: [UInt8] = []
    static let tailLength = 64

    public init() {}

    public mutating func consume(_ chunk: UnsafeRawBufferPointer) {
        bytes += Int64(chunk.count)
        for b in chunk where b == 0x0A { newlines += 1 }
        tail.append(contentsOf: chunk.suffix(Self.tailLength))
        if tail.count > Self.tailLength { tail.removeFirst(tail.count - Self.tailLength) }
    }

    /// The row count, or nil when the data does not end with a `\.` line and empty lines. A value
    /// never holds a raw newline (COPY writes `\n`), so every newline before the marker ends a row.
    public var rows: Int64? {
        var end = tail.count
        while end > 0, tail[end - 1] == 0x0A { end -= 1 }
        let trailing = Int64(tail.count - end)
        guard trailing >= 1, trailing < Self.tailLength - 2, end >= 2, tail[end - 2] == 0x5C, tail[end - 1] == 0x2E else { return nil }
        // The marker starts a line: at the very start of the data, or right after a row's newline.
        let markerAtStart = bytes == Int64(tail.count) && end == 2
        guard markerAtStart || (end >= 3 && tail[end - 3] == 0x0A) else { return nil }
        return newlines - trailing
    }
}

/// One line of `pg_restore --list`: `<dumpId>; <tableoid> <oid> <DESC> <schema> <tag> <owner>`.
///
/// The names after DESC are printed unquoted, so the line is split by the dump id, the oids and
/// the longest known DESC; schema and tag are then matched by prefix, never parsed back.
public struct TOCEntry: Equatable, Sendable {
    public var dumpID: Int
    public var tableOID: UInt32
    public var oid: UInt32
    public var desc: String
    /// `<schema> <tag> <owner>` as printed.
    public var rest: String
    public var line: String

    /// pg_dump's object kinds that hold a space, longest first, so "TABLE DATA" is not "TABLE".
    static let multiWordKinds = [
        "PUBLICATION TABLES IN SCHEMA", "MATERIALIZED VIEW DATA", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY",
        "FOREIGN DATA WRAPPER", "TEXT SEARCH TEMPLATE", "PROCEDURAL LANGUAGE", "TEXT SEARCH PARSER", "SEQUENCE OWNED BY",
        "DATABASE PROPERTIES", "MATERIALIZED VIEW", "PUBLICATION TABLE", "CHECK CONSTRAINT", "OPERATOR FAMILY",
        "OPERATOR CLASS", "SECURITY LABEL", "BLOB METADATA", "EVENT TRIGGER", "ACCESS METHOD", "FK CONSTRAINT",
        "FOREIGN TABLE", "USER MAPPING", "SEQUENCE SET", "ROW SECURITY", "INDEX ATTACH", "TABLE ATTACH", "LARGE OBJECT",
        "DEFAULT ACL", "SHELL TYPE", "TABLE DATA",
    ]

    public static func parse(_ line: String) -> TOCEntry? {
        guard !line.hasPrefix(";"), let semi = line.firstIndex(of: ";"), let id = Int(line[..<semi]) else { return nil }
        let fields = line[line.index(after: semi)...].drop(while: { $0 == " " })
        let parts = fields.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let tableOID = UInt32(parts[0]), let oid = UInt32(parts[1]) else { return nil }
        let tail = String(parts[2])
        let desc = multiWordKinds.first { tail.hasPrefix($0 + " ") || tail == $0 } ?? String(tail.prefix { $0 != " " })
        let rest = tail.count > desc.count ? String(tail.dropFirst(desc.count + 1)) : ""
        return TOCEntry(dumpID: id, tableOID: tableOID, oid: oid, desc: desc, rest: rest, line: line)
    }

    public static func parseList(_ text: String) -> [TOCEntry] {
        text.split(separator: "\n").compactMap { parse(String($0)) }
    }
}

/// Which entries of a directory dump's table of contents `restore --table` loads: the chosen
/// tables with their defaults, constraints (not foreign keys), triggers, policies, comments and
/// grants, plus the schema-level objects a table may need (schemas, extensions, types, domains,
/// functions, sequences, collations, ...). Not: other tables, views, indexes that are not
/// constraints, foreign keys. Enough to copy rows back by hand, which is what it is for.
public enum TableSelection {
    public struct Table: Equatable, Sendable {
        public var schema: String
        public var name: String
        /// The name as `table_rows` holds it.
        public var qualified: String
        /// The dump id of its TABLE DATA entry (its data file is `<id>.dat.gz`).
        public var dataDumpID: Int
        public init(schema: String, name: String, qualified: String, dataDumpID: Int) {
            self.schema = schema
            self.name = name
            self.qualified = qualified
            self.dataDumpID = dataDumpID
        }
    }

    /// The manifest's tables that `requested` (`schema.table`, or a table name alone when only one
    /// schema has it) means, or the problem with a name.
    public static func resolve(_ requested: [String], files: [StoredFile]) -> Result<[Table], PGSnapError> {
        let known: [Table] = files.compactMap { f in
            guard let q = f.table, let id = DirectoryDump.dataFileDumpID(f.name), let c = QualifiedName.components(q), c.count == 2 else { return nil }
            return Table(schema: c[0], name: c[1], qualified: q, dataDumpID: id)
        }
        var out: [Table] = []
        for r in requested {
            guard let c = QualifiedName.components(r), c.count == 1 || c.count == 2 else {
                return .failure(.usage("invalid table name '\(oneLine(r, limit: 80))'", next: "Give it as SCHEMA.TABLE, e.g. --table public.orders"))
            }
            let matches = known.filter { c.count == 2 ? ($0.schema == c[0] && $0.name == c[1]) : $0.name == c[0] }
            if matches.count > 1 {
                return .failure(.usage("table name '\(oneLine(r, limit: 80))' is in several schemas (\(matches.map(\.qualified).joined(separator: ", ")))", next: "Qualify it with its schema"))
            }
            guard let t = matches.first else {
                // A partitioned table has no rows of its own (they are its partitions'): not listed.
                return .failure(PGSnapError("the snapshot has no table '\(oneLine(r, limit: 80))' with rows of its own",
                                            next: "Run 'pgsnap show ID' to see its tables; for a partitioned table name its partitions; nothing was changed"))
            }
            if !out.contains(t) { out.append(t) }
        }
        return .success(out)
    }

    static let supportingKinds: Set<String> = [
        "SCHEMA", "EXTENSION", "TYPE", "SHELL TYPE", "DOMAIN", "FUNCTION", "PROCEDURE", "AGGREGATE", "COLLATION",
        "CONVERSION", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "CAST", "PROCEDURAL LANGUAGE",
        "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE",
        "SEQUENCE", "SEQUENCE SET", "ENCODING", "STDSTRINGS", "SEARCHPATH", "ACCESS METHOD",
    ]
    /// Kinds whose tag starts with the table's name: `<table> <column or object name>`.
    static let tableScopedKinds: Set<String> = ["DEFAULT", "CONSTRAINT", "CHECK CONSTRAINT", "TRIGGER", "POLICY", "ROW SECURITY", "RULE"]

    /// The lines of a `pg_restore -L` use-list. `dependencies` (`pg_restore --list --verbose`)
    /// tell a table's own sequences (serial and identity: their SEQUENCE entry depends on the
    /// TABLE entry) from free-standing ones: a table's go with it, not with other tables (an
    /// identity sequence is made by `ALTER TABLE`, which fails without its table), except a serial
    /// one a chosen table's column default uses (its `CREATE SEQUENCE` stands alone).
    public static func useList(_ entries: [TOCEntry], tables: [Table], dependencies: [Int: [Int]] = [:]) -> [String] {
        // A TABLE entry shares its oid (the table's) with its TABLE DATA entry.
        let dataIDs = Set(tables.map(\.dataDumpID))
        let oids = Set(entries.filter { $0.desc == "TABLE DATA" && dataIDs.contains($0.dumpID) }.map(\.oid))
        func isChosenOrItsOwn(_ e: TOCEntry) -> Bool {
            if supportingKinds.contains(e.desc) { return true }
            if e.desc == "TABLE" || e.desc == "TABLE DATA" { return oids.contains(e.oid) }
            for t in tables where e.rest.hasPrefix(t.schema + " ") {
                let tag = e.rest.dropFirst(t.schema.count + 1)
                if tableScopedKinds.contains(e.desc), tag.hasPrefix(t.name + " ") { return true }
                // These tags name the table as SQL would (pg_dump's fmtId): "Orders" quoted, orders
                // not; a keyword is quoted too, so either spelling may be the one.
                if e.desc == "COMMENT" || e.desc == "ACL" || e.desc == "SECURITY LABEL" {
                    for name in [t.name, "\"" + t.name.replacingOccurrences(of: "\"", with: "\"\"") + "\""]
                    where tag.hasPrefix("TABLE \(name) ") || tag.hasPrefix("COLUMN \(name).") {
                        return true
                    }
                }
            }
            return false
        }
        let tableIDs = Set(entries.filter { $0.desc == "TABLE" }.map(\.dumpID))
        let chosenTableIDs = Set(entries.filter { $0.desc == "TABLE" && oids.contains($0.oid) }.map(\.dumpID))
        let sequenceIDs = Set(entries.filter { $0.desc == "SEQUENCE" }.map(\.dumpID))
        func sequence(of e: TOCEntry) -> Int? { (dependencies[e.dumpID] ?? []).first { sequenceIDs.contains($0) } }
        // Serial sequences have an OWNED BY entry; identity sequences have none.
        let serial = Set(entries.filter { $0.desc == "SEQUENCE OWNED BY" }.compactMap { sequence(of: $0) })
        // Sequences a chosen table or one of its defaults names (nextval in a column default).
        let used = Set(entries.filter { ($0.desc == "TABLE" || $0.desc == "DEFAULT") && isChosenOrItsOwn($0) }
            .flatMap { dependencies[$0.dumpID] ?? [] }.filter { sequenceIDs.contains($0) })
        let owners = { (id: Int) in (dependencies[id] ?? []).filter { tableIDs.contains($0) } }
        let owned = sequenceIDs.filter { owners($0).contains { chosenTableIDs.contains($0) } }
        let going = sequenceIDs.filter { owners($0).isEmpty || owned.contains($0) || (used.contains($0) && serial.contains($0)) }
        return entries.filter { e in
            switch e.desc {
            case "SEQUENCE": return going.contains(e.dumpID)
            case "SEQUENCE SET": return sequence(of: e).map(going.contains) ?? true
            case "SEQUENCE OWNED BY": return sequence(of: e).map(owned.contains) ?? false
            default: return isChosenOrItsOwn(e)
            }
        }.map(\.line)
    }
}
