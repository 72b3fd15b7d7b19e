import Foundation
import PGSnapCore

extension DatabaseFacts {
    /// The databases a whole-server run covers, by name: those that accept connections, as
    /// pg_dumpall chooses them, a template database someone made (`IS_TEMPLATE true`) included:
    /// it holds their objects. Not template0 and template1, the server's own (pg_dumpall dumps
    /// template1's contents; a restore here starts from template0 anyway). Invalid ones,
    /// `datconnlimit = -2` after an interrupted DROP DATABASE, cannot be connected to and are
    /// left out too.
    ///
    /// `pg_database` is readable by every role, so a database the role may not CONNECT to is
    /// listed: backing it up then fails by name instead of being silently skipped.
    public static func serverDatabases(_ db: LibPQConnection) throws -> [String] {
        try db.query("""
            SELECT datname FROM pg_database
            WHERE datallowconn AND datconnlimit <> -2 AND datname NOT IN ('template0', 'template1')
            ORDER BY datname
            """).compactMap { $0[0] }
    }
}

/// The databases on the server and the connection that listed them.
public struct ServerListing {
    public var databases: [String]
    /// Where the list was read: the database of `-d`'s connection string, else `postgres`, else `template1`.
    public var listedFrom: String
    public var serverMajor: Int
}

extension Session {
    /// Connects where a whole-server run starts and lists the databases.
    ///
    /// As pg_dumpall does: the database named in the connection string, else `postgres`, else
    /// `template1` (for servers whose `postgres` database was dropped).
    ///
    /// - Throws: `PGSnapError` naming the connection that failed.
    public func listServerDatabases() throws -> ServerListing {
        let candidates = spec["dbname"].map { [$0] } ?? ["postgres", "template1"]
        var lastError: Error?
        for name in candidates {
            do {
                let db = try connect(database: name)
                return ServerListing(databases: try DatabaseFacts.serverDatabases(db), listedFrom: name,
                                     serverMajor: db.serverMajor)
            } catch {
                lastError = error
            }
        }
        let why = (lastError as? PGSnapError)?.what ?? lastError.map { "\($0)" } ?? "?"
        throw PGSnapError("cannot list the server's databases (connecting to \(candidates.joined(separator: ", then "))): \(why)",
                          next: "Check the connection (-h, -p, -U, or a connection string in -d) and that the role may connect to \(candidates[0])")
    }

    /// The same connection, environment, directory and reporter, aimed at `database`.
    public func forDatabase(_ database: String) throws -> Session {
        var s = spec
        s.set("dbname", database)
        let session = try Session(spec: s, directory: directoryPath, environment: environment, reporter: reporter)
        session.ageIdentity = ageIdentity
        return session
    }
}
