import CLibPQ
import Foundation
import PGSnapCore

/// pgsnap's own queries (versions, sizes, schema_migrations, sessions, database DDL) over libpq.
/// The only file that imports libpq.
public final class LibPQConnection {
    private let conn: OpaquePointer

    /// False once the server closed the connection (restarted, or an administrator ended it).
    public var isAlive: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Connects with `conninfo` (no password inside) and the passfile, if any.
    ///
    /// - Throws: `PGSnapError` with libpq's first message line and a hint.
    public init(conninfo: String, passfile: String?, sslPassword: String? = nil, database: String? = nil) throws {
        var keys = ["dbname", "application_name", "connect_timeout"]
        var values = [conninfo, "pgsnap", "10"]
        if let passfile {
            keys.append("passfile")
            values.append(passfile)
        }
        if let sslPassword {
            keys.append("sslpassword")
            values.append(sslPassword)
        }
        if let database {
            // A second dbname overrides the one inside conninfo (expand_dbname applies to the first only).
            keys.append("dbname")
            values.append(database)
        }
        let c = LibPQConnection.withCStrings(keys) { k in
            LibPQConnection.withCStrings(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let c else { throw PGSnapError("cannot allocate a libpq connection") }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c))
            PQfinish(c)
            throw LibPQConnection.connectionError(message)
        }
        // libpq prints server notices (e.g. "WARNING: terminating connection due to immediate
        // shutdown") straight to stderr; pgsnap's own one-line error says what happened instead.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        conn = c
        cancelSlot = PQgetCancel(c).flatMap(CancelRegistry.add)
        // pgsnap's sessions wait while others work (the admin session through a whole load, the
        // snapshot's holder through a whole dump): the server's idle and transaction timeouts
        // (ALTER ROLE ... SET, PGOPTIONS) must not end them halfway, as they do not end pg_dump's.
        try execute(Self.sessionTimeoutsOff(serverVersion: serverVersionNumber).map { "SET \($0.key) = \($0.value);" }.joined(separator: " "))
    }

    /// The timeouts that would end an idle pgsnap session, off (by server version).
    static func sessionTimeoutsOff(serverVersion: Int) -> [(key: String, value: String)] {
        var settings = [(key: "idle_in_transaction_session_timeout", value: "0")]
        if serverVersion >= 140000 { settings.append((key: "idle_session_timeout", value: "0")) }
        if serverVersion >= 170000 { settings.append((key: "transaction_timeout", value: "0")) }
        return settings
    }

    deinit {
        if let cancelSlot { CancelRegistry.remove(cancelSlot) }
        PQfinish(conn)
    }

    /// This connection's place in `CancelRegistry`, if it got one.
    private var cancelSlot: Int?

    static func connectionError(_ raw: String) -> PGSnapError {
        let line = oneLine(raw.split(whereSeparator: \.isNewline).first.map(String.init) ?? raw)
        var next = "Check --host/--port/--username/--dbname (or PGHOST, PGPORT, PGUSER, PGDATABASE)"
        if raw.contains("password authentication failed") || raw.contains("no password supplied") {
            next = "Check the password (PGPASSWORD, ~/.pgpass or the connection string)"
        } else if raw.contains("does not exist") && raw.contains("database") {
            next = "Check the database name; 'psql -l' lists them"
        } else if raw.contains("permission denied for database") {
            next = "Grant the role CONNECT on that database (GRANT CONNECT ON DATABASE ... TO ...), or connect as a role that has it"
        } else if raw.contains("Connection refused") || raw.contains("No such file or directory") || raw.contains("could not translate host") {
            next = "Is the server running and reachable? Check --host and --port"
        }
        return PGSnapError("cannot connect to PostgreSQL: \(line)", next: next)
    }

    /// The SQLSTATE of the last query that failed (e.g. "55P03" for a lock timeout).
    public private(set) var lastSQLState: String?
    /// The server's primary message for that failure, without the "ERROR:" prefix.
    public private(set) var lastErrorMessage: String?

    public var serverVersionNumber: Int { Int(PQserverVersion(conn)) }
    /// What this server's major calls things (libpq read `server_version_num` when it connected).
    public var catalogue: ServerCatalogue { ServerCatalogue(versionNumber: serverVersionNumber) }
    public var serverMajor: Int { catalogue.major }

    /// Runs one statement with text parameters; returns rows of optional text values.
    ///
    /// - Throws: `PGSnapError` with the server's message.
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) throws -> [[String?]] {
        lastSQLState = nil
        lastErrorMessage = nil
        let result: OpaquePointer? = LibPQConnection.withOptionalCStrings(params) { p in
            PQexecParams(conn, sql, Int32(params.count), nil, p, nil, nil, 0)
        }
        guard let result else { throw PGSnapError("query failed: \(oneLine(String(cString: PQerrorMessage(conn))))") }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let message = oneLine(String(cString: PQresultErrorMessage(result)))
            lastSQLState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }  // PG_DIAG_SQLSTATE
            lastErrorMessage = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }  // PG_DIAG_MESSAGE_PRIMARY
            throw PGSnapError("query failed: \(message)")
        }
        var rows: [[String?]] = []
        let n = PQntuples(result), m = PQnfields(result)
        for r in 0..<n {
            var row: [String?] = []
            for c in 0..<m {
                row.append(PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c)))
            }
            rows.append(row)
        }
        return rows
    }

    /// Runs a script of several statements (simple query protocol), e.g. a dump's SET header.
    ///
    /// - Throws: `PGSnapError` with the server's message.
    public func execute(_ script: String) throws {
        guard let result = PQexec(conn, script) else { throw PGSnapError("query failed: \(oneLine(String(cString: PQerrorMessage(conn))))") }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            throw PGSnapError("query failed: \(oneLine(String(cString: PQresultErrorMessage(result))))")
        }
    }

    /// Asks the server to cancel what this connection is running; safe from any thread.
    public func cancel() {
        guard let c = PQgetCancel(conn) else { return }
        defer { PQfreeCancel(c) }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(c, &buffer, Int32(buffer.count))
    }

    /// Starts `COPY ... FROM stdin`; the rows follow through `putCopyData`, then `endCopy`.
    public func beginCopy(_ statement: String) throws {
        guard let result = PQexec(conn, statement) else { throw PGSnapError("COPY failed: \(oneLine(String(cString: PQerrorMessage(conn))))") }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_IN else {
            throw PGSnapError("COPY failed: \(oneLine(String(cString: PQresultErrorMessage(result))))")
        }
    }

    /// Sends rows (whole lines of COPY text) to the COPY in progress.
    public func putCopyData(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard PQputCopyData(conn, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count)) == 1 else {
            throw PGSnapError("COPY failed: \(oneLine(String(cString: PQerrorMessage(conn))))")
        }
    }

    /// Ends the COPY and returns the rows the server stored (its command tag).
    ///
    /// - Throws: `PGSnapError` with the server's message when it refused a row.
    public func endCopy() throws -> Int64 {
        guard PQputCopyEnd(conn, nil) == 1 else { throw PGSnapError("COPY failed: \(oneLine(String(cString: PQerrorMessage(conn))))") }
        var rows: Int64?
        var failure: String?
        while let result = PQgetResult(conn) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                rows = Int64(String(cString: PQcmdTuples(result)))
            } else if failure == nil {
                failure = oneLine(String(cString: PQresultErrorMessage(result)))
            }
            PQclear(result)
        }
        if let failure { throw PGSnapError("COPY failed: \(failure)") }
        guard let rows else { throw PGSnapError("COPY ended without a row count") }
        return rows
    }

    public func scalar(_ sql: String, _ params: [String?] = []) throws -> String? {
        try query(sql, params).first?.first ?? nil
    }

    /// An identifier quoted for SQL by libpq.
    public func quoteIdentifier(_ s: String) throws -> String {
        guard let p = PQescapeIdentifier(conn, s, s.utf8.count) else { throw PGSnapError("cannot quote identifier") }
        defer { PQfreemem(p) }
        return String(cString: p)
    }

    public func quoteLiteral(_ s: String) throws -> String {
        guard let p = PQescapeLiteral(conn, s, s.utf8.count) else { throw PGSnapError("cannot quote literal") }
        defer { PQfreemem(p) }
        return String(cString: p)
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let c = strings.map { strdup($0) } + [nil]
        defer { c.forEach { free($0) } }
        return c.map { UnsafePointer($0) }.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    private static func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let c = strings.map { $0.map { strdup($0) } ?? nil }
        defer { c.forEach { free($0) } }
        return c.map { UnsafePointer($0) }.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}

/// The open connections' cancel handles, so that Ctrl-C or SIGTERM also stops a query that waits
/// on the server (a lock held by another session, a long COPY): the signal handler sends each a
/// cancel request (PQcancel is safe in a signal handler). Fixed-size C storage, for the same
/// reason; a handle is never freed, as a handler may be using it: a few hundred bytes per
/// connection, and pgsnap opens tens.
enum CancelRegistry {
    static let capacity = 256
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<OpaquePointer?> = {
        let p = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()
    nonisolated(unsafe) static let errorBuffer: UnsafeMutablePointer<CChar> = .allocate(capacity: 256)
    static let lock = NSLock()

    static func add(_ handle: OpaquePointer) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<capacity where slots[i] == nil {
            slots[i] = handle
            return i
        }
        return nil
    }

    static func remove(_ slot: Int) {
        lock.lock()
        defer { lock.unlock() }
        slots[slot] = nil
    }

    /// From the signal handler: no allocation, no lock.
    static func cancelAll() {
        for i in 0..<capacity {
            if let handle = slots[i] { _ = PQcancel(handle, errorBuffer, 256) }
        }
    }
}
