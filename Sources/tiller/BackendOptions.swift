#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import TillerCore
import TillerCPU
import TillerVulkan

enum BackendKind: String, ExpressibleByArgument, CaseIterable {
    case auto, cpu, vulkan
}

/// --weight-dtype.
enum WeightDType: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, bf16
    /// A GGUF file's Q8_0, Q4_0, Q4_1 and Q4_K matmul weights kept in their blocks; the rest as by default.
    case native
    var dtype: DType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .native: return nil
        }
    }
}

/// --backend, --device and --weight-dtype, shared by every command that computes.
struct BackendOptions: ParsableArguments {
    @Option(help: "cpu, vulkan, or auto: Vulkan on a GPU when one works, else the CPU.")
    var backend: BackendKind = .auto

    @Option(help: "Vulkan device: its index in `tiller info` or part of its name (default: TILLER_VULKAN_DEVICE, else the best GPU).")
    var device: String?

    @Option(name: .customLong("weight-dtype"),
            help: "How the model's matmul and embedding weights are held: f32, f16 or bf16 (default: as stored; bf16 for quantized GGUF tensors, which are dequantized at load), or native: a GGUF file's Q8_0, Q4_0, Q4_1 and Q4_K matmul weights stay quantized, the rest as by default.")
    var weightDType: WeightDType?

    /// --weight-dtype native.
    var keepsQuantizedWeights: Bool { weightDType == .native }

    /// The backend to compute on. `auto` never picks a CPU-type Vulkan device (lavapipe is a
    /// correctness driver, far slower than the CPU backend) and says in one line on stderr why it
    /// fell back; `vulkan` fails with what is missing.
    func make(note: (String) -> Void = { printError($0) }) throws -> any Backend {
        switch backend {
        case .cpu:
            return CPUBackend()
        case .vulkan:
            return try VulkanBackend(device: device)
        case .auto:
            do {
                let devices = try VulkanProbe.devices().get()
                let chosen = try VulkanProbe.select(devices, choice: device)
                guard chosen.type != "CPU" else {
                    note("tiller: the only Vulkan device is \(chosen.name), a CPU driver; using the CPU backend")
                    return CPUBackend()
                }
                return try VulkanBackend(device: device)
            } catch {
                note("tiller: no Vulkan GPU (\(error)); using the CPU backend")
                return CPUBackend()
            }
        }
    }
}

func printError(_ line: String) {
    var stderr = StandardError()
    print(line, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        fputs(string, Glibc.stderr)
    }
}
