/// The one line of a PostgreSQL tool's stderr that says why it failed.
///
/// The cause is the last ERROR/FATAL/`error:` line, not the context the tools print after it:
/// 15 and later print the failed statement and the server's message as `detail:` lines, 14 prints
/// them at error level (`pg_dump: error: The command was: COPY ...`, `error: query was: ...`,
/// `error: Error message from server: FATAL: ...`), so those are skipped as causes and the
/// server's message is joined to the line it explains.
public enum ToolErrorLine {
    public static func pick(_ lines: [String]) -> String? {
        let isError = { (line: String) in line.contains("ERROR") || line.contains("FATAL") || line.contains("error:") }
        let isContext = { (line: String) in
            line.contains("error: The command was:") || line.contains("error: query was:") || serverMessage(line) != nil
        }
        let candidates = lines.indices.filter { isError(lines[$0]) && !isContext(lines[$0]) }
        // pg_restore's "a worker process died unexpectedly" when the worker said why before it.
        guard let i = candidates.last(where: { !lines[$0].contains("a worker process died unexpectedly") })
                ?? candidates.last ?? lines.lastIndex(where: isError) else {
            return lines.last
        }
        // "pg_dump: error: ... PQgetCopyData() failed." says little; the server's reason follows.
        if i + 1 < lines.count, let reason = serverMessage(lines[i + 1]) {
            let what = lines[i].hasSuffix(".") ? String(lines[i].dropLast()) : lines[i]
            return what + ": " + reason
        }
        return lines[i]
    }

    /// The server's message of a "detail: Error message from server: ..." line (15 and later) or
    /// an "error: Error message from server: ..." line (14).
    static func serverMessage(_ line: String) -> Substring? {
        for marker in ["detail: Error message from server: ", "error: Error message from server: "] {
            if let r = line.range(of: marker) { return line[r.upperBound...] }
        }
        return nil
    }
}
