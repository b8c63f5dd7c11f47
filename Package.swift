// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    // Function bodies across the modules for inlining and specialization (the reassembler for its stream consumer,
    // the flow table and decoder accessors): -2.0 % instructions on mid.pcap (docs/performance.md, session 15).
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]
// The per-packet stages keep their state in final classes; Swift's dynamic exclusivity checks on those accesses
// cost ~8% of the decode + flow benchmark (swift_beginAccess / AccessSet::insert in perf). Static checks remain.
let hot: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Siphon",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "siphon", targets: ["siphon"]),
        .library(name: "Siphon", targets: ["Siphon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // The batch case database (siphon.db), on the system SQLite (Debian: libsqlite3-dev).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // libpcap, found through pkg-config (Debian: libpcap-dev).
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"]), .brew(["libpcap"])]),
        // Small C helpers libc does not expose to Swift (fopencookie).
        // zlib (Debian: zlib1g-dev) reads gzip-compressed captures.
        .target(name: "CSiphonSupport", linkerSettings: [.linkedLibrary("z")]),
        // Capture: libpcap files and (later) live interfaces, plus a native pcapng reader for what libpcap 1.10 refuses.
        // Core value types every stage shares: timestamps, link types, IP addresses, big-endian reads.
        .target(name: "SiphonCore", swiftSettings: strict),
        .target(name: "SiphonCapture", dependencies: ["SiphonCore", "CPcap", "CSiphonSupport"], swiftSettings: hot),
        // Decode: zero-copy link/network/transport views.
        .target(name: "SiphonDecode", dependencies: ["SiphonCore"], swiftSettings: hot),
        // Flows: the flow table, TCP state, Community ID.
        .target(
            name: "SiphonFlows",
            dependencies: ["SiphonDecode", "CSiphonSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: hot),
        // Application: incremental parsers fed with reassembled bytes (DNS, TLS, HTTP...), the name map.
        .target(
            name: "SiphonApp",
            dependencies: [
                "SiphonCore", .product(name: "Crypto", package: "swift-crypto"),
                // AES.permute: the single-block AES that QUIC header protection needs.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: hot),
        // Geolocation: embedded located/registered country and ASN tables (built by scripts/build_geo.py).
        .target(
            name: "SiphonGeo", dependencies: ["SiphonCore"],
            resources: [.copy("data")], swiftSettings: strict),
        // Threat intelligence: IOC feeds (plain lists, STIX 2.1, stalkerware YAML/CSV, TinyCheck, MISP).
        .target(
            name: "SiphonIntel", dependencies: ["SiphonCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict),
        // Detection: devices, the device x endpoint ledger, the built-in detectors and their alerts.
        // The default rule pack lives in Sources/SiphonDetect/rules (a resource); the top-level rules/ links to it.
        .target(
            name: "SiphonDetect",
            dependencies: [
                "SiphonFlows", "SiphonGeo", "SiphonIntel", "SiphonApp", .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("data"), .copy("rules")], swiftSettings: hot),
        // Reports: JSON Lines events and the terminal summary.
        .target(
            name: "SiphonReport",
            dependencies: ["SiphonDecode", "SiphonFlows", "SiphonApp", "SiphonGeo", "SiphonIntel", "SiphonDetect"],
            swiftSettings: hot),
        // The pipeline wiring every stage, driven by the CLI and the tests.
        .target(
            name: "Siphon",
            dependencies: ["SiphonCapture", "SiphonDecode", "SiphonFlows", "SiphonApp", "SiphonGeo", "SiphonIntel", "SiphonDetect", "CSiphonSupport",
                           "SiphonReport"],
            swiftSettings: hot),
        // Batch scans: per-capture outputs, the fleet report (JSON, HTML), the case database (SQLite).
        .target(
            name: "SiphonFleet",
            dependencies: ["Siphon", "CSiphonSupport", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .executableTarget(
            name: "siphon",
            dependencies: [
                "Siphon", "SiphonFleet", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        // Fuzz targets as plain functions (run under libFuzzer by Fuzz/SiphonFuzz, over their corpora by the tests).
        .target(name: "SiphonFuzzing", dependencies: ["Siphon"], swiftSettings: strict),
        // Benchmark driver: decode + flow table over a capture, timed against the C floors by scripts/bench.sh.
        .executableTarget(name: "SiphonBench", dependencies: ["Siphon"], path: "Benchmarks/SiphonBench", swiftSettings: strict),
        .testTarget(
            name: "SiphonTests",
            dependencies: ["Siphon", "SiphonFleet", "SiphonFuzzing", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            resources: [], swiftSettings: strict),
    ]
)

// libFuzzer's driver (scripts/fuzz.sh sets SIPHON_FUZZ=1): declared only then, since libFuzzer supplies main().
if Context.environment["SIPHON_FUZZ"] != nil {
    package.targets.append(.executableTarget(
        name: "SiphonFuzz", dependencies: ["SiphonFuzzing"], path: "Fuzz/SiphonFuzz",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    package.products.append(.executable(name: "SiphonFuzz", targets: ["SiphonFuzz"]))
}
