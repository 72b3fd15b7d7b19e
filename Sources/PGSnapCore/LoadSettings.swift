/// Server settings of a restore's load sessions that the user may override, checked before any I/O.
public enum LoadSettings {
    public static let defaultMaintenanceWorkMem = "256MB"

    /// A `maintenance_work_mem` value as PostgreSQL spells it: a whole number with kB, MB or GB,
    /// from 1MB to 64GB (PostgreSQL's own bounds are wider; beyond these a typo is likelier).
    ///
    /// - Returns: the value in kB, or nil when it is not one.
    public static func maintenanceWorkMemKB(_ text: String) -> Int? {
        let units: [(String, Int)] = [("kB", 1), ("MB", 1024), ("GB", 1024 * 1024)]
        guard let (unit, factor) = units.first(where: { text.hasSuffix($0.0) }) else { return nil }
        let digits = text.dropLast(unit.count)
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first != "0",
              let n = Int(digits) else { return nil }
        let kb = n * factor
        return (1024...(64 * 1024 * 1024)).contains(kb) ? kb : nil
    }
}
