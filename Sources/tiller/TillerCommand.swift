import ArgumentParser
import TillerCore
import TillerCPU
import TillerVulkan

struct TillerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiller",
        abstract: "Steer large language models at inference time.",
        version: Tiller.version,
        subcommands: [Info.self, Inspect.self, Tokenize.self, Detokenize.self, Logits.self, Generate.self, Lab.self, Demo.self, Steer.self, Capture.self, Analyze.self, Fit.self, Loss.self, Train.self, Eval.self, Merge.self, Serve.self])
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Version, backends, devices, the backend chosen and the BLAS kernels in use.")

    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        print("tiller \(Tiller.version)")
        print("cpu:    \(CPUBackend().deviceDescription)")
        print("blas:   \(OpenBLASRuntime.config)")
        switch VulkanProbe.devices() {
        case .success(let devices) where devices.isEmpty:
            print("vulkan: loader found, no devices")
        case .success(let devices):
            print("vulkan: \(devices.count) device(s)")
            for d in devices { print("  [\(d.index)] \(d.name) (\(d.type), Vulkan \(d.apiVersion))") }
        case .failure(let error):
            print("vulkan: unavailable: \(error)")
        }
        let chosen = try backendOptions.make()
        print("backend (--backend \(backendOptions.backend.rawValue)): \(chosen.name) on \(chosen.deviceDescription)")
    }
}
