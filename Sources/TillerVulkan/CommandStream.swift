import CVulkan
import TillerCore

/// One command buffer that ops are recorded into, submitted once per synchronisation.
/// It inserts a barrier only where a dispatch touches a buffer written (or, for writes, read)
/// since the last barrier, and keeps every buffer it references alive until the work is done.
final class CommandStream {
    let device: VulkanDevice  // strong: buffers and pipelines may outlive the backend
    private let pool: VkCommandPool
    private let commandBuffer: VkCommandBuffer
    private let fence: VkFence
    private(set) var isRecording = false
    private var retained: [AnyObject] = []
    private var writtenSinceBarrier = Set<ObjectIdentifier>()
    private var readSinceBarrier = Set<ObjectIdentifier>()
    private(set) var recordedDispatches = 0

    init(device: VulkanDevice) throws {
        self.device = device
        var poolInfo = VkCommandPoolCreateInfo()
        poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        poolInfo.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT.rawValue
        poolInfo.queueFamilyIndex = device.queueFamily
        var pool: VkCommandPool?
        try vkCheck(vkCreateCommandPool(device.handle, &poolInfo, nil, &pool), "creating a command pool")
        self.pool = pool!
        var allocate = VkCommandBufferAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocate.commandPool = pool
        allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocate.commandBufferCount = 1
        var buffer: VkCommandBuffer?
        try vkCheck(vkAllocateCommandBuffers(device.handle, &allocate, &buffer), "allocating a command buffer")
        commandBuffer = buffer!
        var fenceInfo = VkFenceCreateInfo()
        fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var fence: VkFence?
        try vkCheck(vkCreateFence(device.handle, &fenceInfo, nil, &fence), "creating a fence")
        self.fence = fence!
    }

    deinit {
        vkDestroyFence(device.handle, fence, nil)
        vkDestroyCommandPool(device.handle, pool, nil)
    }

    /// The command buffer, begun if it was not yet.
    func recording() throws -> VkCommandBuffer {
        if !isRecording {
            var begin = VkCommandBufferBeginInfo()
            begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
            begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue
            try vkCheck(vkBeginCommandBuffer(commandBuffer, &begin), "beginning a command buffer")
            isRecording = true
        }
        return commandBuffer
    }

    /// Declares the buffers the next command reads and writes; records a barrier first when it
    /// depends on (or would overwrite) something recorded since the last one.
    func use(reads: [AnyObject], writes: [AnyObject]) throws {
        let cb = try recording()
        let r = Set(reads.map(ObjectIdentifier.init)), w = Set(writes.map(ObjectIdentifier.init))
        if !writtenSinceBarrier.isDisjoint(with: r.union(w)) || !readSinceBarrier.isDisjoint(with: w) {
            var barrier = VkMemoryBarrier()
            barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
            barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
            barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
            let stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue
            vkCmdPipelineBarrier(cb, stages, stages, 0, 1, &barrier, 0, nil, 0, nil)
            writtenSinceBarrier.removeAll()
            readSinceBarrier.removeAll()
        }
        readSinceBarrier.formUnion(r)
        writtenSinceBarrier.formUnion(w)
        retained.append(contentsOf: reads)
        retained.append(contentsOf: writes)
        recordedDispatches += 1
    }

    /// Keeps an object (a staging buffer, a pipeline) alive until the recorded work completes.
    func retain(_ object: AnyObject) { retained.append(object) }

    /// Submits what was recorded and waits for it. On failure the recorded work is dropped.
    func submitAndWait() throws {
        guard isRecording else { return }
        isRecording = false
        defer {
            retained.removeAll()
            writtenSinceBarrier.removeAll()
            readSinceBarrier.removeAll()
            recordedDispatches = 0
            vkResetCommandBuffer(commandBuffer, 0)
        }
        try vkCheck(vkEndCommandBuffer(commandBuffer), "ending a command buffer")
        var cb: VkCommandBuffer? = commandBuffer
        var submit = VkSubmitInfo()
        submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
        submit.commandBufferCount = 1
        try withUnsafePointer(to: &cb) { p in
            submit.pCommandBuffers = p
            try vkCheck(vkQueueSubmit(device.queue, 1, &submit, fence), "submitting work")
        }
        var f: VkFence? = fence
        let waited = vkWaitForFences(device.handle, 1, &f, VkBool32(VK_TRUE), UInt64.max)
        vkResetFences(device.handle, 1, &f)
        try vkCheck(waited, "waiting for submitted work")
    }
}
