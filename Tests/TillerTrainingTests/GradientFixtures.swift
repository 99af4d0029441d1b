import Foundation
import TillerCore
import TillerCPU
import TillerModels
import TillerSteering
import TillerTraining
import TillerVulkan

/// The PyTorch-autograd references of scripts/fixtures/make_gradient_fixtures.py for the tiny
/// parity checkpoints of Tests/Fixtures/models.
enum GradientFixtures {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let architectures = ["llama", "qwen2", "gemma2", "mistral", "llama-bf16", "qwen3", "gemma3"]

    static func modelDirectory(_ name: String) -> String { tests.appendingPathComponent("Fixtures/models/\(name)").path }
    static func path(_ name: String) -> String { tests.appendingPathComponent("Fixtures/gradients/\(name).json").path }

    struct Fixture: Decodable {
        struct Triplet: Decodable { let steered: [Int32]; let unsteered: [Int32]; let completion: [Int32]; let alpha: Float }
        struct Head: Decodable { let w: [Float]; let bias: Float; let z: [Float]; let activation: String }
        struct File: Decodable { let name: String; let alpha: Float; let location: String; let heads: [String: Head] }
        struct Case: Decodable {
            let file: String
            let objective: String
            let regularizer_weight: Float
            let loss: Double
            let objective_value: Double
            let regularizer: Double
            let positions: Int
            let gradients: [String: [Double]]
        }
        let triplets: [Triplet]
        let files: [File]
        let cases: [Case]
    }

    static func load(_ name: String) throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    static func intervention(_ file: Fixture.File) -> Intervention {
        var heads: [Int: SteeringHead] = [:]
        for (layer, h) in file.heads {
            let activation: PSRActivation = h.activation == "relu" ? .relu : h.activation == "identity" ? .identity : .constant
            heads[Int(layer)!] = SteeringHead(w: h.w, bias: h.bias, z: h.z, activation: activation)
        }
        return Intervention(method: "psr", heads: heads, location: SteeringLocation(name: file.location)!, alpha: file.alpha)
    }

    static func triplets(_ fixture: Fixture) -> [TrainingTriplet] {
        fixture.triplets.map {
            TrainingTriplet(ids: CaptureTriplet(steeredPrompt: $0.steered, unsteeredPrompt: $0.unsteered, completion: $0.completion),
                            alpha: $0.alpha)
        }
    }

    static let sharedVulkan: VulkanBackend? = try? VulkanBackend()
    static let vulkanLock = NSLock()

    /// Every backend with backward ops here: the reference, and the CPU and Vulkan when they have them.
    static func backends() -> [any Backend] {
        var list: [any Backend] = [ReferenceBackend(), CPUBackend()]
        if ProcessInfo.processInfo.environment["TILLER_TEST_VULKAN"] != "0", let vulkan = sharedVulkan { list.append(vulkan) }
        return list.filter { $0 is any GradientBackend }
    }

    static func exclusively<R>(_ backend: any Backend, _ body: () throws -> R) rethrows -> R {
        guard backend === sharedVulkan else { return try body() }
        vulkanLock.lock()
        defer { vulkanLock.unlock() }
        return try body()
    }
}
