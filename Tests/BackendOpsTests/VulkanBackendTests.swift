import Testing
import TillerCore
@testable import TillerVulkan

/// The Vulkan host side: device choice, failures as errors, recording and submission order.
@Suite struct VulkanDeviceSelectionTests {
    let devices = [
        VulkanDeviceInfo(index: 0, name: "llvmpipe (LLVM 15)", type: "CPU", apiVersion: "1.3.0", rank: 3),
        VulkanDeviceInfo(index: 1, name: "Intel UHD 770", type: "integrated GPU", apiVersion: "1.3.0", rank: 1),
        VulkanDeviceInfo(index: 2, name: "NVIDIA H200", type: "discrete GPU", apiVersion: "1.3.0", rank: 0),
    ]

    @Test func prefersDiscreteThenIntegratedThenCPU() throws {
        #expect(try VulkanProbe.select(devices, choice: nil).name == "NVIDIA H200")
        #expect(try VulkanProbe.select(Array(devices.prefix(2)), choice: nil).name == "Intel UHD 770")
        #expect(try VulkanProbe.select([devices[0]], choice: nil).name.hasPrefix("llvmpipe"))
    }

    @Test func choiceByIndexOrName() throws {
        #expect(try VulkanProbe.select(devices, choice: "0").index == 0)
        #expect(try VulkanProbe.select(devices, choice: "uhd").index == 1)
        #expect(throws: TillerError.self) { try VulkanProbe.select(devices, choice: "7") }
        #expect(throws: TillerError.self) { try VulkanProbe.select(devices, choice: "radeon") }
        #expect(throws: TillerError.self) { try VulkanProbe.select([], choice: nil) }
    }
}

@Suite(.enabled(if: SharedVulkan.backend != nil)) struct VulkanHostTests {
    var vulkan: VulkanBackend { SharedVulkan.backend! }

    @Test func outOfMemoryIsAnError() throws {
        _ = try exclusively(vulkan) {
            do {
                _ = try vulkan.makeBuffer(byteCount: 1 << 42)
                Issue.record("a 4 TiB buffer was allocated")
            } catch let error as TillerError {
                #expect(error.description.contains("vulkan"))
            }
        }
    }

    /// Fifty dependent dispatches are recorded, then submitted once, and the barriers between
    /// them make each see the previous result.
    @Test func manyDispatchesOneSubmission() throws {
        let (result, validation) = try exclusively(vulkan) { () -> [Float] in
            let x = try vulkan.tensor([1, 2, 3], shape: [3])
            let one = try vulkan.tensor([1, 1, 1], shape: [3])
            for _ in 0..<50 { try vulkan.add(x, one, out: x) }
            #expect(vulkan.stream.recordedDispatches == 50)
            #expect(vulkan.stream.isRecording)
            return try vulkan.floats(x)
        }
        #expect(result == [51, 52, 53])
        #expect(validation.isEmpty, "\(validation)")
    }

    /// An upload must not change what already recorded work reads.
    @Test func uploadWaitsForRecordedWork() throws {
        let (result, _) = try exclusively(vulkan) { () -> [Float] in
            let a = try vulkan.tensor([1, 2], shape: [2]), b = try vulkan.tensor([10, 20], shape: [2])
            let c = try vulkan.empty([2])
            try vulkan.add(a, b, out: c)
            try [Float](arrayLiteral: 100, 200).withUnsafeBytes { try vulkan.upload($0, to: a) }
            return try vulkan.floats(c)
        }
        #expect(result == [11, 22])
    }

    /// Zero elements means zero work groups: nothing recorded, no division by zero.
    @Test func emptyTensorsDispatchNothing() throws {
        _ = try exclusively(vulkan) {
            let empty = try vulkan.empty([0, 4])
            try vulkan.add(empty, empty, out: empty)
            try vulkan.scale(empty, by: 2, out: empty)
            try vulkan.synchronize()
        }
    }

    @Test func tensorsMayOutliveTheirBackend() throws {
        var backend: VulkanBackend? = try VulkanBackend()
        let t = try backend!.tensor([1, 2, 3], shape: [3])
        backend = nil
        #expect(t.count == 3)
    }

    @Test func tensorsFromAnotherBackendAreRejected() throws {
        let cpuTensor = try ReferenceBackend().tensor([1], shape: [1])
        _ = try exclusively(vulkan) {
            #expect(throws: TillerError.self) { try vulkan.scale(cpuTensor, by: 2, out: cpuTensor) }
        }
    }
}
