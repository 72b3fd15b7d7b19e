import Foundation
import XCTest
@testable import PGSnapCore

/// The manifest's `encryption` record and the `.age` file names, as Manifest and Catalog read them.
final class EncryptionManifestTests: XCTestCase {
    static func encrypted() -> Manifest {
        var m = ManifestTests.sample()
        m.file = ManifestTests.id + ".sql.gz.age"
        m.encryption = Encryption(recipients: [try! AgeRecipient.parse(AgeRecipientTests.x25519),
                                               try! AgeRecipient.parse(AgeRecipientTests.ed25519 + " ops@host")])
        return m
    }

    func testRoundTripAndEncodedForm() throws {
        let m = Self.encrypted()
        let data = try m.encoded()
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let e = json["encryption"] as? [String: Any]
        XCTAssertEqual(e?["tool"] as? String, "age")
        XCTAssertEqual(e?["recipients"] as? [String], [AgeRecipientTests.x25519, AgeRecipientTests.ed25519])
        XCTAssertEqual(try Manifest.decode(data, fileName: ManifestTests.fileName), m)
        XCTAssertTrue((try JSONSerialization.jsonObject(with: ManifestTests.sample().encoded()) as! [String: Any])["encryption"] is NSNull,
                      "a plain snapshot has encryption null")
    }

    func testInconsistentEncryptionIsRejected() throws {
        func decode(_ change: (inout [String: Any]) -> Void) -> Error? {
            var object = try! JSONSerialization.jsonObject(with: Self.encrypted().encoded()) as! [String: Any]
            change(&object)
            let data = try! JSONSerialization.data(withJSONObject: object)
            do {
                _ = try Manifest.decode(data, fileName: ManifestTests.fileName)
                return nil
            } catch { return error }
        }
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("plain name for an encrypted dump", { $0["file"] = ManifestTests.id + ".sql.gz" }),
            ("encrypted name without encryption", { $0["encryption"] = nil }),
            ("another tool", { $0["encryption"] = ["tool": "gpg", "recipients": [AgeRecipientTests.x25519]] }),
            ("no recipients", { $0["encryption"] = ["tool": "age", "recipients": [String]()] }),
            ("a bad recipient", { $0["encryption"] = ["tool": "age", "recipients": ["age1nope"]] }),
            ("recipients not a list", { $0["encryption"] = ["tool": "age", "recipients": AgeRecipientTests.x25519] }),
        ]
        for (why, change) in cases {
            let error = decode(change) as? PGSnapError
            XCTAssertEqual(error?.status, .verificationFailed, why)
        }
        XCTAssertNil(decode { _ in }, "the unchanged manifest decodes")
    }

    func testEncryptedFilesBelongToTheirSnapshot() {
        let id = "app_20261122T031500Z_nightly"
        for suffix in [".sql.gz.age", ".sql.zst.age", ".sql.age", ".sql.gz.age.partial", ".sql.age.partial"] {
            XCTAssertEqual(Catalog.snapshotID(ofFile: id + suffix), id, suffix)
        }
        XCTAssertEqual(SnapshotName.dumpFile(id: id, compression: .zstd, encrypted: true), id + ".sql.zst.age")
        XCTAssertEqual(SnapshotName.dumpFile(id: id, compression: .gzip), id + ".sql.gz")
        XCTAssertNil(Catalog.snapshotID(ofFile: id + ".sql.gz.age.bak"))
    }

    func testCatalogCallsAnEncryptedSnapshotGood() {
        let m = Self.encrypted()
        let files = [DirectoryFile(name: m.file, size: m.compressedBytes),
                     DirectoryFile(name: m.id + SnapshotName.manifestSuffix, size: 900)]
        let entries = Catalog.build(files: files, loadManifest: { _ in m })
        XCTAssertEqual(entries.map(\.status), [.good])
        let leftover = Catalog.build(files: [DirectoryFile(name: m.file, size: 10)], loadManifest: { _ in fatalError("no manifest to load") })
        XCTAssertEqual(leftover.map(\.status), [.dumpWithoutManifest])
    }
}
