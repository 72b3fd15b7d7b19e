import ArgumentParser
public struct PGSnapCommand: ParsableCommand { public init() {} ; public func run() {} }
