import ArgumentParser
import Foundation
import PGSnapCore
import PGSnapSystem

/// `check --all-databases`: which databases must have a snapshot comes from the server.
extension Check {
    func allDatabasesReport(session: Session, storage: SnapshotStorage) throws -> HealthReport {
        let databases = try session.listServerDatabases().databases
        return try CheckService(session: session).runAllDatabases(databases, in: storage, maxAge: parseDuration(maxAge)!, minSize: minSize,
                                                                  metricsFile: metricsFile, metricsPrefix: remote.metricsPrefix)
    }
}

/// A session that connects with libpq's settings and, when given, `-d`'s connection string.
func serverSession(_ connectionString: String?, _ d: DirectoryOptions, _ o: OutputOptions) throws -> Session {
    let env = sessionEnvironment()
    do {
        let spec = try ConnectionSpec(dbname: connectionString, host: nil, port: nil, username: nil, environment: env)
        return try Session(spec: spec, directory: d.path(env), environment: env, reporter: o.reporter)
    } catch let e as PGSnapError where e.status == .usage {
        throw ValidationError(e.description)
    }
}
