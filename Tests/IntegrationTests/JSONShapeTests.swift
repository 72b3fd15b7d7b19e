import Foundation
import XCTest

/// The machine-readable outputs have one shape: every documented field is in every item, `null`
/// when unset. A typed client (a Go struct, a Python dataclass, a JSON schema) must not see a
/// snapshot without a label as a different kind of object than one with a label.
final class JSONShapeTests: XCTestCase {
    var databases: [String] = []
    var dirs: [String] = []

    override func tearDown() {
        for d in databases { Harness.dropDatabase(d) }
        for d in dirs { try? FileManager.default.removeItem(atPath: d) }
        super.tearDown()
    }

    /// Every key path of a JSON value: `a`, `a.b`, `list[].c`; values are ignored, nulls count as present.
    static func keyPaths(_ value: Any, _ prefix: String = "") -> Set<String> {
        var out = Set<String>()
        if let object = value as? [String: Any] {
            for (k, v) in object {
                let path = prefix.isEmpty ? k : prefix + "." + k
                out.insert(path)
                out.formUnion(keyPaths(v, path))
            }
        } else if let array = value as? [Any] {
            for v in array { out.formUnion(keyPaths(v, prefix + "[]")) }
        }
        return out
    }

    static func json(_ r: Harness.Result, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> Any? {
        XCTAssertEqual(r.status, 0, "\(what): \(r.stderr)", file: file, line: line)
        let value = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        XCTAssertNotNil(value, "\(what) printed no JSON: \(r.stdout)", file: file, line: line)
        return value
    }

    /// The item of a `list --json` array with this id.
    static func item(_ list: Any?, _ id: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        let found = (list as? [[String: Any]])?.first { $0["id"] as? String == id }
        XCTAssertNotNil(found, "\(id) is not listed: \(String(describing: list))", file: file, line: line)
        return found ?? [:]
    }

    /// Asserts the same key paths, and that `label` is there as `null` in the unlabelled one.
    func assertSameShape(_ unlabelled: Any?, _ labelled: Any?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let a = Self.keyPaths(unlabelled ?? [:]), b = Self.keyPaths(labelled ?? [:])
        XCTAssertFalse(a.isEmpty, "\(what): no keys at all", file: file, line: line)
        XCTAssertEqual(a, b, "\(what): only without a label: \(a.subtracting(b).sorted()); only with one: \(b.subtracting(a).sorted())",
                       file: file, line: line)
        let object = unlabelled as? [String: Any]
        XCTAssertTrue(object?["label"] is NSNull, "\(what): label must be present as null, got \(String(describing: object?["label"]))",
                      file: file, line: line)
    }

    func testASnapshotWithoutALabelHasTheKeysOfOneWithALabelInEveryOutput() throws {
        let db = try Harness.createDatabase("shape")
        databases.append(db)
        try Harness.psql(db, "CREATE TABLE items AS SELECT i AS id FROM generate_series(1, 20) i")
        let dir = try Harness.tempDir()
        dirs.append(dir)

        // backup --json: the manifest of each.
        let plainBackup = try Harness.pgsnap(["backup", "-d", db, "--json"], dir: dir)
        let labelledBackup = try Harness.pgsnap(["backup", "-d", db, "--label", "pre_migration_000045", "--json"], dir: dir)
        let plain = Self.json(plainBackup, "backup --json"), labelled = Self.json(labelledBackup, "backup --label --json")
        assertSameShape(plain, labelled, "backup --json")
        let plainID = try XCTUnwrap((plain as? [String: Any])?["id"] as? String)
        let labelledID = try XCTUnwrap((labelled as? [String: Any])?["id"] as? String)
        // Unset nested objects are null too, not missing.
        for key in ["migration", "migration_after", "restore_test", "encryption", "files", "globals_file"] {
            XCTAssertTrue((plain as? [String: Any])?[key] is NSNull, "backup --json: \(key) must be null when unset: \(plainBackup.stdout)")
        }

        // show --json: the manifest again.
        assertSameShape(Self.json(try Harness.pgsnap(["show", plainID, "--json"], dir: dir), "show --json"),
                        Self.json(try Harness.pgsnap(["show", labelledID, "--json"], dir: dir), "show --json"), "show --json")

        // list --json: the item, and the manifest nested in it.
        let list = Self.json(try Harness.pgsnap(["list", "--json"], dir: dir), "list --json")
        let a = Self.item(list, plainID), b = Self.item(list, labelledID)
        assertSameShape(a, b, "list --json")
        assertSameShape(a["manifest"], b["manifest"], "list --json manifest")

        // list --remote --json: what the bucket's listing shows.
        let (remote, _) = S3Harness.newRemote()
        let env = S3Harness.env(remote: remote)
        let push = try Harness.pgsnap(["push", "--all", "--quiet"], dir: dir, env: env)
        XCTAssertEqual(push.status, 0, push.stderr)
        let remoteList = Self.json(try Harness.pgsnap(["list", "--remote", "--json"], dir: dir, env: env), "list --remote --json")
        assertSameShape(Self.item(remoteList, plainID), Self.item(remoteList, labelledID), "list --remote --json")
        // One shape, one item: the bucket's copy lists as the directory's does (but where the bytes live).
        assertSameShape(Self.item(remoteList, plainID), a, "list --remote --json against list --json")
        XCTAssertEqual(Self.item(remoteList, plainID)["status"] as? String, a["status"] as? String)
        XCTAssertEqual(Self.item(remoteList, labelledID)["label"] as? String, "pre_migration_000045")
    }
}
