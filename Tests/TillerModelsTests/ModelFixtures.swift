import Foundation
import TillerCore
import TillerCPU
import TillerModels
import TillerVulkan

/// The fixtures written by scripts/fixtures/make_model_fixtures.py with transformers.
enum ModelFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")
    static let architectures = ["llama", "qwen2", "gemma2", "mistral", "llama-bf16", "qwen3", "gemma3"]

    static func directory(_ name: String) -> String { root.appendingPathComponent(name).path }

    /// transformers' outputs for one fixture.
    struct Reference {
        let file: SafetensorsFile
        func floats(_ name: String) throws -> [Float] {
            let raw = file.bytes(try file.entry(name))
            return (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
        func ints(_ name: String) throws -> [Int32] {
            let raw = file.bytes(try file.entry(name))
            return (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
        }
    }

    static func reference(_ name: String) throws -> Reference {
        Reference(file: try SafetensorsFile(path: directory(name) + "/reference.safetensors"))
    }

    struct Greedy: Decodable {
        struct Case: Decodable { let prompt_ids: [Int32]; let greedy_ids: [Int32] }
        let max_new_tokens: Int
        let cases: [Case]
    }

    static func greedy(_ name: String) throws -> Greedy {
        try JSONDecoder().decode(Greedy.self, from: Data(contentsOf: URL(fileURLWithPath: directory(name) + "/greedy.json")))
    }

    /// Every backend the model runs on here: the reference loops, the CPU, and Vulkan when present.
    static func backends() -> [any Backend] {
        var list: [any Backend] = [ReferenceBackend(), CPUBackend()]
        if ProcessInfo.processInfo.environment["TILLER_TEST_VULKAN"] != "0", let vulkan = sharedVulkan { list.append(vulkan) }
        return list
    }

    static let sharedVulkan: VulkanBackend? = try? VulkanBackend()
    static let vulkanLock = NSLock()

    /// Largest absolute difference relative to the largest reference magnitude.
    static func relativeError(_ got: [Float], _ want: [Float]) -> Float {
        guard got.count == want.count, !want.isEmpty else { return .infinity }
        let scale = want.map(abs).max()!
        return zip(got, want).map { abs($0 - $1) }.max()! / max(scale, 1e-30)
    }
}
