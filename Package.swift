// swift-tools-version: 6.1
// Tiller: steering large language models at inference time.
// Layers (each target depends only on the ones above it):
//   CVulkan, COpenBLAS      system-library shims
//   TillerCore              tensors, dtypes, the Backend protocol, the plain-Swift reference of every op
//   TillerCPU (+ CTillerKernels), TillerVulkan   backends
//   TillerModels            checkpoints, tokenizers, the transformer forward, generation
//   TillerSteering          interventions on the residual stream: files, methods, steered generation
//   TillerLab               the steering lab: a generated chat language, its corpus and exact judges
//   TillerTraining          the objectives (and training) of steering heads through the frozen model
//   TillerEvaluation        lab evaluations and the demo, over models and the lab
//   TillerServe             `tiller serve`: the OpenAI-compatible HTTP server over the generator and steering
//   tiller, TillerBench     the command line and the throughput benchmark
import PackageDescription

// Hot loops are compiled with optimisation even in debug builds, so `swift test` stays fast.
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]

let package = Package(
    name: "Tiller",
    products: [
        .executable(name: "tiller", targets: ["tiller"]),
        .executable(name: "tiller-bench", targets: ["TillerBench"]),
        .library(name: "TillerCore", targets: ["TillerCore"]),
        .library(name: "TillerCPU", targets: ["TillerCPU"]),
        .library(name: "TillerVulkan", targets: ["TillerVulkan"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan", pkgConfig: "vulkan",
                       providers: [.apt(["libvulkan-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(name: "TillerCore"),
        // The few CPU kernels that need wider vectors than baseline x86-64, dispatched at run time.
        .target(name: "CTillerKernels", cSettings: [.unsafeFlags(["-O3", "-Wno-psabi"])]),
        .target(name: "TillerCPU", dependencies: ["TillerCore", "COpenBLAS", "CTillerKernels"], swiftSettings: kernelSettings),
        .target(name: "TillerVulkan", dependencies: ["TillerCore", "CVulkan"]),
        .target(name: "TillerModels", dependencies: ["TillerCore"]),
        .target(name: "TillerSteering", dependencies: ["TillerCore", "TillerModels"]),
        .target(name: "TillerLab", dependencies: ["TillerCore"], resources: [.copy("Resources/tiller-lab")]),
        .target(name: "TillerTraining", dependencies: ["TillerCore", "TillerModels", "TillerSteering"]),
        .target(name: "TillerEvaluation", dependencies: ["TillerCore", "TillerModels", "TillerSteering", "TillerLab", "TillerTraining"],
                resources: [.copy("Resources/prompt-sets")]),
        .target(name: "TillerServe",
                dependencies: ["TillerCore", "TillerModels", "TillerSteering",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "Prometheus", package: "swift-prometheus")]),
        .executableTarget(
            name: "tiller",
            dependencies: ["TillerCore", "TillerCPU", "TillerVulkan", "TillerModels", "TillerSteering", "TillerLab", "TillerEvaluation",
                           "TillerTraining", "TillerServe",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "TillerBench",
            dependencies: ["TillerCore", "TillerCPU", "TillerVulkan", "TillerModels", "TillerSteering", "TillerTraining", "TillerServe", "COpenBLAS",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/TillerBench", exclude: ["gpu_reference.py", "compare_transformers.py", "compare_autograd.py",
                                               "compare_llamacpp.py", "bench_workloads.py", "summarize_rounds.py"]),
        .testTarget(name: "TillerCoreTests", dependencies: ["TillerCore"]),
        .testTarget(name: "CLITests", dependencies: ["tiller", "TillerSteering", "TillerModels", "TillerCore"]),
        .testTarget(name: "TillerModelsTests", dependencies: ["TillerModels", "TillerCore", "TillerCPU", "TillerVulkan"]),
        .testTarget(name: "TillerSteeringTests", dependencies: ["TillerSteering", "TillerModels", "TillerCore", "TillerCPU"]),
        .testTarget(name: "TillerTrainingTests", dependencies: ["TillerTraining", "TillerSteering", "TillerModels", "TillerCore", "TillerCPU", "TillerVulkan"]),
        .testTarget(name: "TillerLabTests", dependencies: ["TillerLab", "TillerCore"]),
        .testTarget(name: "TillerEvaluationTests", dependencies: ["TillerEvaluation", "TillerLab", "TillerModels", "TillerCore", "TillerCPU"]),
        .testTarget(name: "BackendOpsTests", dependencies: ["TillerCore", "TillerCPU", "TillerVulkan", "CTillerKernels"]),
    ],
    swiftLanguageModes: [.v5]
)
