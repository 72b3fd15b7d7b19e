import Foundation

/// The restore drill's node_exporter textfile: its own file, beside `check --metrics-file`'s
/// (the textfile collector reads every `*.prom`; two commands writing one file would erase each other).
public enum DrillMetrics {
    public static func text(database: String, ok: Bool, seconds: Double, rows: Int64?, at: Date) -> String {
        let label = "{database=\"\(promEscaped(database))\"}"
        var text = """
            # HELP pgsnap_restore_drill_success 1 if the last restore drill restored the snapshot and its row counts matched, else 0.
            # TYPE pgsnap_restore_drill_success gauge
            pgsnap_restore_drill_success\(label) \(ok ? 1 : 0)
            # HELP pgsnap_restore_drill_seconds Duration of the last restore drill.
            # TYPE pgsnap_restore_drill_seconds gauge
            pgsnap_restore_drill_seconds\(label) \(String(format: "%.3f", seconds))
            # HELP pgsnap_restore_drill_timestamp_seconds When the last restore drill finished.
            # TYPE pgsnap_restore_drill_timestamp_seconds gauge
            pgsnap_restore_drill_timestamp_seconds\(label) \(Int64(at.timeIntervalSince1970))

            """
        if let rows {
            text += """
                # HELP pgsnap_restore_drill_rows Rows the last restore drill loaded and compared with the manifest.
                # TYPE pgsnap_restore_drill_rows gauge
                pgsnap_restore_drill_rows\(label) \(rows)

                """
        }
        return text
    }

    /// A Prometheus label value: backslash, double quote and newline escaped.
    public static func promEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
