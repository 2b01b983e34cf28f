// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "camvid",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "camvid", targets: ["camvid"]),
        .library(name: "Core", targets: ["Core"]),
        .library(name: "Media", targets: ["Media"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Explain", targets: ["Explain"]),
        .library(name: "Render", targets: ["Render"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Annotate", targets: ["Annotate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
    ],
    targets: [
        // System libraries: module maps and small C shims for macros Swift cannot import.
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat libavcodec libswscale libavutil libavdevice",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libavutil-dev", "libavdevice-dev"])]
        ),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // The values every module shares: tensors, images, heat maps, .npy files, resampling.
        .target(name: "Core"),
        .target(name: "Media", dependencies: ["Core", "CFFmpeg"]),
        .target(
            name: "Engine",
            dependencies: ["Core", "CDNNL", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            resources: [.copy("Resources")]
        ),
        .target(name: "Explain", dependencies: ["Core"]),
        .target(name: "Render", dependencies: ["Core"]),
        .target(name: "Pipeline", dependencies: ["Core"]),
        // Joins Media, Engine, Explain and Render into the pipeline's stages for video and pictures.
        .target(name: "Annotate", dependencies: ["Core", "Media", "Engine", "Explain", "Render", "Pipeline"]),
        .target(
            name: "CamvidCLI",
            dependencies: [
                "Core", "Media", "Engine", "Explain", "Render", "Pipeline", "Annotate",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "camvid", dependencies: ["CamvidCLI"]),
        // Locating the sample clip and the optional shared parity suite, for the tests only.
        .target(name: "TestSupport", path: "Sources/TestSupport"),
        // Generated pattern clips shared by the Pipeline and CLI tests.
        .target(name: "MediaTestSupport", dependencies: ["Media"]),

        .testTarget(name: "CoreTests", dependencies: ["TestSupport", "Core", "Media"], exclude: ["Fixtures"]),
        .testTarget(name: "MediaTests", dependencies: ["TestSupport", "MediaTestSupport", "Media"]),
        .testTarget(name: "EngineTests", dependencies: ["TestSupport", "Core", "Engine"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ExplainTests", dependencies: ["TestSupport", "Core", "Explain", "Engine", "Annotate"]),
        .testTarget(name: "RenderTests", dependencies: ["TestSupport", "Core", "Render"], exclude: ["Fixtures"]),
        .testTarget(name: "PipelineTests", dependencies: ["Core", "Pipeline"]),
        .testTarget(name: "AnnotateTests", dependencies: ["TestSupport", "MediaTestSupport", "Core", "Media", "Engine", "Explain", "Render", "Pipeline", "Annotate"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "MediaTestSupport", "Core", "CamvidCLI", "Media"]),
    ],
    swiftLanguageModes: [.v6]
)
