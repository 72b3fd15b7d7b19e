// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pgsnap",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pgsnap", targets: ["pgsnap"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // Compresses whole 1 MiB blocks about twice as fast as zlib at the same level and size;
        // zlib still reads everything back (a stream, not whole members).
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // Streaming gzip inflate at about 3x zlib's speed: a directory snapshot's big table file
        // is one gzip stream that one thread must inflate while the server parses its rows.
        .systemLibrary(name: "CISAL", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        // prctl(PR_SET_PDEATHSIG): children that write to files die with pgsnap (ChildTrampoline).
        .systemLibrary(name: "CProcess"),
        .executableTarget(name: "pgsnap", dependencies: ["PGSnapCLI", "PGSnapSystem"]),
        .target(
            name: "PGSnapCLI",
            dependencies: [
                "PGSnapCore", "PGSnapSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "PGSnapCore"),
        // AWS Signature Version 4: pure, apart from swift-crypto's HMAC and hashes.
        .target(name: "PGSnapSigV4", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "PGSnapSystem",
            dependencies: [
                "PGSnapCore", "PGSnapSigV4", "CZlib", "CLibPQ", "CZstd", "CDeflate", "CISAL", "CProcess",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The storage contract: the same cases for the in-memory storage, the directory and a bucket.
        .target(name: "StorageContract", dependencies: ["PGSnapCore"], path: "Tests/StorageContract"),
        .testTarget(name: "PGSnapCoreTests", dependencies: ["PGSnapCore", "StorageContract"]),
        .testTarget(name: "PGSnapSystemTests", dependencies: ["PGSnapSystem", "PGSnapCore", "PGSnapSigV4", "StorageContract"]),
        .testTarget(name: "IntegrationTests", dependencies: ["PGSnapCore", "PGSnapSystem", "StorageContract", "CProcess"]),
        // Runs the built binary (PGSNAP_BIN) only: help text against golden files, exit codes.
        .testTarget(name: "PGSnapCLITests", exclude: ["HelpGolden"]),
    ],
    swiftLanguageModes: [.v5]
)
