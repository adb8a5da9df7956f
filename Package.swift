// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Recurrent",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Recurrent", targets: ["Recurrent"]),
        .executable(name: "recurrent", targets: ["recurrent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // CSV parsing for `forecast` (see Sources/Recurrent/Data/TimeSeriesCSV.swift for why this one).
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
    ],
    targets: [
        // The only non-Swift code: SIMD micro-kernels compiled per instruction set
        // (__attribute__((target(...)))) and picked at run time. See Sources/CKernels/README.md.
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(name: "Recurrent", dependencies: ["CKernels", .product(name: "CSV", package: "CSV.swift")], path: "Sources/Recurrent"),
        .executableTarget(
            name: "recurrent",
            dependencies: [
                "Recurrent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/recurrent"),
        .testTarget(name: "RecurrentTests", dependencies: ["Recurrent"], path: "Tests/RecurrentTests"),
    ],
    swiftLanguageModes: [.v6]
)
