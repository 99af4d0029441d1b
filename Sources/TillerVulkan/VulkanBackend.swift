import CVulkan
import TillerCore
#if canImport(Glibc)
import Glibc
#endif

/// The Vulkan backend: every op a GLSL compute shader (Shaders/), recorded into one command
/// buffer and submitted at `synchronize()` or when the host needs data (`download`, `upload`).
public final class VulkanBackend: Backend {
    let instance: VulkanInstance
    let device: VulkanDevice
    let stream: CommandStream
    let pool: VulkanBufferPool
    let stagingPool: VulkanBufferPool
    let pipelineCache: PipelineCache
    private var pipelines: [String: ComputePipeline] = [:]
    private var pipelinesCreated = 0, pipelinesSaved = 0

    /// - Parameters:
    ///   - device: an index or a substring of the device name; nil for TILLER_VULKAN_DEVICE or
    ///     the best device (discrete, integrated, virtual, CPU).
    ///   - validation: enable the Khronos validation layer when installed; read its messages
    ///     with `validationMessages()`.
    public init(device choice: String? = nil, validation: Bool = false) throws {
        instance = try VulkanInstance(validation: validation)
        device = try VulkanDevice(instance: instance, choice: choice)
        stream = try CommandStream(device: device)
        pool = VulkanBufferPool(device: device, memoryType: device.deviceMemoryType, hostVisible: device.deviceMemoryIsHostVisible)
        stagingPool = VulkanBufferPool(device: device, memoryType: device.stagingMemoryType, hostVisible: true)
        pipelineCache = PipelineCache(device: device)
    }

    deinit {
        try? stream.submitAndWait()
        pipelines.removeAll()
    }

    public var name: String { "vulkan" }
    public var deviceDescription: String {
        "\(device.info.name) (\(device.info.type), Vulkan \(device.info.apiVersion)\(device.deviceMemoryIsHostVisible ? ", unified memory" : ""))"
    }
    public var deviceInfo: VulkanDeviceInfo { device.info }
    public var validationEnabled: Bool { instance.validationEnabled }
    /// What the validation layer reported since the last call.
    public func validationMessages() -> [String] { instance.log.drain() }

    // MARK: Memory

    public func makeBuffer(byteCount: Int) throws -> DeviceBuffer {
        guard byteCount >= 0 else { throw TillerError.invalidArgument(op: "makeBuffer", detail: "\(byteCount) bytes") }
        return VulkanBuffer(byteCount: byteCount, allocation: try pool.acquire(byteCount), pool: pool)
    }

    func vulkanBuffer(_ op: String, _ t: Tensor) throws -> VulkanBuffer {
        guard let b = t.buffer as? VulkanBuffer, b.pool === pool else {
            throw TillerError.wrongBackend(op: op, detail: "\(t) is not in this Vulkan device's memory")
        }
        return b
    }

    public func upload(_ bytes: UnsafeRawBufferPointer, to tensor: Tensor) throws {
        let buffer = try vulkanBuffer("upload", tensor)
        guard bytes.count == tensor.byteCount else {
            throw TillerError.shapeMismatch(op: "upload", detail: "\(bytes.count) bytes for \(tensor) (\(tensor.byteCount) bytes)")
        }
        // Recorded work may still read the old contents: let it finish first.
        try synchronize()
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        if let mapped = buffer.allocation.mapped {
            (mapped + tensor.byteOffset).copyMemory(from: source, byteCount: bytes.count)
        } else {
            let staging = try stagingPool.acquire(bytes.count)
            defer { stagingPool.release(staging) }
            staging.mapped!.copyMemory(from: source, byteCount: bytes.count)
            try copyBuffer(from: staging.buffer, 0, to: buffer.allocation.buffer, tensor.byteOffset, bytes: bytes.count)
        }
        forgetIndices(in: buffer, overlapping: tensor)
        if tensor.dtype == .i32 {
            buffer.knownIndices[tensor.byteOffset] = Array(bytes.bindMemory(to: Int32.self))
        }
    }

    public func download(_ tensor: Tensor, into bytes: UnsafeMutableRawBufferPointer) throws {
        let buffer = try vulkanBuffer("download", tensor)
        guard bytes.count == tensor.byteCount else {
            throw TillerError.shapeMismatch(op: "download", detail: "\(bytes.count) bytes for \(tensor) (\(tensor.byteCount) bytes)")
        }
        try synchronize()
        guard let destination = bytes.baseAddress, bytes.count > 0 else { return }
        if let mapped = buffer.allocation.mapped {
            destination.copyMemory(from: mapped + tensor.byteOffset, byteCount: bytes.count)
        } else {
            let staging = try stagingPool.acquire(bytes.count)
            defer { stagingPool.release(staging) }
            try copyBuffer(from: buffer.allocation.buffer, tensor.byteOffset, to: staging.buffer, 0, bytes: bytes.count)
            destination.copyMemory(from: staging.mapped!, byteCount: bytes.count)
        }
    }

    public func synchronize() throws {
        try stream.submitAndWait()
        // New pipelines are rare (first use of each shader): write the cache then, not at exit,
        // which a long-lived backend may never reach.
        if pipelinesCreated > pipelinesSaved {
            pipelineCache.save()
            pipelinesSaved = pipelinesCreated
        }
    }

    /// A one-off transfer, submitted at once (used with staging memory).
    private func copyBuffer(from source: VkBuffer, _ sourceOffset: Int, to destination: VkBuffer, _ destinationOffset: Int, bytes: Int) throws {
        let cb = try stream.recording()
        var region = VkBufferCopy(srcOffset: VkDeviceSize(sourceOffset), dstOffset: VkDeviceSize(destinationOffset), size: VkDeviceSize(bytes))
        vkCmdCopyBuffer(cb, source, destination, 1, &region)
        try stream.submitAndWait()
    }

    private func forgetIndices(in buffer: VulkanBuffer, overlapping t: Tensor) {
        buffer.knownIndices = buffer.knownIndices.filter { offset, values in
            offset + values.count * 4 <= t.byteOffset || offset >= t.byteOffset + t.byteCount
        }
    }

    /// The values of an i32 tensor when the host knows them (it uploaded them and no op has
    /// written the buffer since): index checks use them instead of waiting for the device.
    func knownIndices(_ t: Tensor) -> [Int32]? {
        guard let b = t.buffer as? VulkanBuffer, let values = b.knownIndices[t.byteOffset], values.count >= t.count else { return nil }
        return Array(values.prefix(t.count))
    }

    /// Checks host-known index values; indices produced on the device are guarded in the shaders.
    func checkIndices(_ op: String, _ name: String, _ t: Tensor, _ range: Range<Int32>) throws {
        guard let values = knownIndices(t) else { return }
        try values.withUnsafeBufferPointer { try Check.indices(op, name, $0, range) }
    }

    // MARK: Dispatch

    enum Access { case read, write, readWrite }

    func pipeline(_ source: ShaderModuleSource, bindings: Int, specialization: [UInt32]) throws -> ComputePipeline {
        let key = "\(source.name)/\(bindings)/\(specialization)"
        if let p = pipelines[key] { return p }
        let p = try ComputePipeline(device: device, cache: pipelineCache.handle, source: source, bindingCount: bindings, specialization: specialization)
        pipelines[key] = p
        pipelinesCreated += 1
        return p
    }

    /// Records one dispatch. Binding i of the shader is bindings[i]'s buffer; push-constant words
    /// 0..<bindings.count hold each tensor's offset in elements of its dtype (bytes for quantized
    /// blocks), and `push` follows.
    func dispatch(_ op: String, _ source: ShaderModuleSource, specialization: [UInt32] = [],
                  bindings: [(Tensor, Access)], push: [UInt32], groups: (Int, Int, Int)) throws {
        guard groups.0 > 0, groups.1 > 0, groups.2 > 0 else { return }
        guard bindings.count + push.count <= ComputePipeline.pushConstantWords else {
            throw TillerError.unsupported("vulkan: \(op) needs \(bindings.count + push.count) push-constant words")
        }
        let limits = device.properties.limits.maxComputeWorkGroupCount
        guard groups.0 <= Int(limits.0), groups.1 <= Int(limits.1), groups.2 <= Int(limits.2) else {
            throw TillerError.unsupported("vulkan: \(op) needs \(groups) work groups, the device allows \(limits)")
        }
        let p = try pipeline(source, bindings: bindings.count, specialization: specialization)
        var words: [UInt32] = []
        var infos: [VkDescriptorBufferInfo] = []
        var reads: [AnyObject] = [], writes: [AnyObject] = []
        for (tensor, access) in bindings {
            let buffer = try vulkanBuffer(op, tensor)
            // Bind from the tensor's offset rounded down to the device's alignment, at most the
            // largest range a storage binding allows, and pass the remainder as an element offset.
            let alignment = device.storageOffsetAlignment
            let start = tensor.byteOffset / alignment * alignment
            let range = min(buffer.allocation.size - start, device.maxStorageBufferRange)
            guard tensor.byteOffset + tensor.byteCount <= start + range else {
                throw TillerError.unsupported("vulkan: \(op): \(tensor) spans more than the device's \(device.maxStorageBufferRange)-byte storage binding")
            }
            infos.append(VkDescriptorBufferInfo(buffer: buffer.allocation.buffer, offset: VkDeviceSize(start), range: VkDeviceSize(range)))
            // Quantized blocks (34, 18, 20 or 144 bytes) are addressed by byte.
            words.append(UInt32((tensor.byteOffset - start) / (tensor.dtype.isQuantized ? 1 : tensor.dtype.byteSize)))
            switch access {
            case .read: reads.append(buffer)
            case .write: writes.append(buffer); buffer.knownIndices.removeAll()
            case .readWrite: reads.append(buffer); writes.append(buffer); buffer.knownIndices.removeAll()
            }
        }
        words.append(contentsOf: push)
        words.append(contentsOf: [UInt32](repeating: 0, count: ComputePipeline.pushConstantWords - words.count))
        try stream.use(reads: reads, writes: writes)
        stream.retain(p)
        let cb = try stream.recording()
        vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline)
        var descriptorWrites = [VkWriteDescriptorSet]()
        infos.withUnsafeBufferPointer { infoPointer in
            for i in infos.indices {
                var w = VkWriteDescriptorSet()
                w.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                w.dstBinding = UInt32(i)
                w.descriptorCount = 1
                w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                w.pBufferInfo = infoPointer.baseAddress! + i
                descriptorWrites.append(w)
            }
            device.pushDescriptorSet(cb, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, UInt32(descriptorWrites.count), descriptorWrites)
        }
        vkCmdPushConstants(cb, p.layout, VK_SHADER_STAGE_COMPUTE_BIT.rawValue, 0, UInt32(words.count * 4), words)
        vkCmdDispatch(cb, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
    }

    /// Work groups to cover n items at `size` per group, spread over y when x would overflow.
    func groups(_ n: Int, _ size: Int) -> (Int, Int, Int) {
        let total = (n + size - 1) / size
        guard total > 0 else { return (0, 1, 1) }  // nothing to do: dispatch records nothing
        let x = min(total, 65535)
        return (max(x, 1), max(1, (total + x - 1) / x), 1)
    }
}

/// Float bits for push constants.
@inline(__always) func bits(_ f: Float) -> UInt32 { f.bitPattern }
