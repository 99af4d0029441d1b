import ArgumentParser
import TillerCore
import TillerCPU
import TillerVulkan

struct TillerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tiller",
        abstract: "Steer large language models at inference time.",
        version: Tiller.version,
        subcommands: [Info.self])
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Version, backends, devices and BLAS kernels in use.")

    func run() throws {
        print("tiller \(Tiller.version)")
        print("backends:")
        print("  cpu       \(CPUBackend().deviceDescription)")
        print("  reference plain Swift loops (the yardstick of the op tests)")
        switch VulkanProbe.devices() {
        case .success(let devices) where devices.isEmpty:
            print("  vulkan    loader found, no devices")
        case .success(let devices):
            print("  vulkan    \(devices.count) device(s) (compute backend arrives with the Vulkan issue)")
            for (i, d) in devices.enumerated() { print("    [\(i)] \(d.name) (\(d.type), Vulkan \(d.apiVersion))") }
        case .failure(let error):
            print("  vulkan    unavailable: \(error)")
        }
        print("blas: \(OpenBLASRuntime.summary)")
        print("blas config: \(OpenBLASRuntime.config)")
    }
}
