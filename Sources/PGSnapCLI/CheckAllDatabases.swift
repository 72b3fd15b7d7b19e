import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// `check --all-databases`: which databases must have a snapshot comes from the server.
extension Check {
    func allDatabasesReport(session: Session, storage: S3Storage?) throws -> HealthReport {
        let databases = try session.listServerDatabases().databases
        let maxAge = parseDuration(maxAge)!
        if let storage {
            return try RemoteCheckService(session: session, remote: storage).runAllDatabases(databases, maxAge: maxAge, minSize: minSize, metricsFile: metricsFile)
        }
        return try CheckService(session: session).runAllDatabases(databases, maxAge: maxAge, minSize: minSize, metricsFile: metricsFile)
    }
}

/// A session that connects with libpq's settings and, when given, `-d`'s connection string.
func serverSession(_ connectionString: String?, _ d: DirectoryOptions, _ o: OutputOptions) throws -> Session {
    let env = ProcessInfo.processInfo.environment
    do {
        let spec = try ConnectionSpec(dbname: connectionString, host: nil, port: nil, username: nil, environment: env)
        return try Session(spec: spec, directory: d.path(env), environment: env, reporter: o.reporter)
    } catch let e as PGSnapError where e.status == .usage {
        throw ValidationError(e.description)
    }
}
