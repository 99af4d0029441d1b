#if canImport(Glibc)
import Glibc
#endif
import CVulkan
import TillerCore

/// A storage buffer and its memory. Buffers return to their pool when released; buffers in use
/// by recorded, unfinished work are kept alive by the command stream until it completes.
public final class VulkanBuffer: DeviceBuffer {
    public let byteCount: Int
    let allocation: VulkanAllocation
    let pool: VulkanBufferPool
    /// i32 contents the host uploaded, by byte offset, while no device op has written the buffer
    /// since: index checks read these instead of synchronising with the device.
    var knownIndices: [Int: [Int32]] = [:]

    init(byteCount: Int, allocation: VulkanAllocation, pool: VulkanBufferPool) {
        self.byteCount = byteCount
        self.allocation = allocation
        self.pool = pool
    }

    deinit { pool.release(allocation) }
}

/// A VkBuffer bound to its own VkDeviceMemory, mapped when host-visible.
struct VulkanAllocation {
    let buffer: VkBuffer
    let memory: VkDeviceMemory
    let size: Int
    let mapped: UnsafeMutableRawPointer?
}

/// Recycles allocations by size class so per-step temporaries do not hit vkAllocateMemory.
/// Small buffers are rounded up to a power of two; large ones (weights) are exact and not kept.
/// Tensors are freed on whatever thread drops them last, so the pool takes a lock.
final class VulkanBufferPool: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    let device: VulkanDevice  // strong: buffers and pipelines may outlive the backend
    let memoryType: UInt32
    let hostVisible: Bool
    private var free: [Int: [VulkanAllocation]] = [:]
    private var pooledBytes = 0
    static let largestPooled = 64 << 20
    static let poolLimit = 512 << 20

    init(device: VulkanDevice, memoryType: UInt32, hostVisible: Bool) {
        self.device = device
        self.memoryType = memoryType
        self.hostVisible = hostVisible
        pthread_mutex_init(&lock, nil)
    }

    deinit {
        for list in free.values { for a in list { destroy(a) } }
    }

    static func sizeClass(_ bytes: Int) -> Int {
        let size = max(bytes, 256)
        guard size <= largestPooled else { return (size + 4095) & ~4095 }
        return 1 << (Int.bitWidth - (size - 1).leadingZeroBitCount)
    }

    func acquire(_ bytes: Int) throws -> VulkanAllocation {
        let size = Self.sizeClass(bytes)
        pthread_mutex_lock(&lock)
        if var list = free[size], let a = list.popLast() {
            free[size] = list
            pooledBytes -= size
            pthread_mutex_unlock(&lock)
            return a
        }
        pthread_mutex_unlock(&lock)
        return try allocate(size)
    }

    func release(_ a: VulkanAllocation) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if a.size <= Self.largestPooled && pooledBytes + a.size <= Self.poolLimit {
            free[a.size, default: []].append(a)
            pooledBytes += a.size
        } else {
            destroy(a)
        }
    }

    private func allocate(_ size: Int) throws -> VulkanAllocation {
        var info = VkBufferCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        info.size = VkDeviceSize(size)
        info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
        info.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try vkCheck(vkCreateBuffer(device.handle, &info, nil, &buffer), "creating a buffer of \(size) bytes")
        var requirements = VkMemoryRequirements()
        vkGetBufferMemoryRequirements(device.handle, buffer, &requirements)
        guard requirements.memoryTypeBits & (1 << memoryType) != 0 else {
            vkDestroyBuffer(device.handle, buffer, nil)
            throw TillerError.deviceFailure("vulkan: memory type \(memoryType) cannot back a storage buffer")
        }
        var allocate = VkMemoryAllocateInfo()
        allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
        allocate.allocationSize = requirements.size
        allocate.memoryTypeIndex = memoryType
        var memory: VkDeviceMemory?
        let result = vkAllocateMemory(device.handle, &allocate, nil, &memory)
        guard result == VK_SUCCESS else {
            vkDestroyBuffer(device.handle, buffer, nil)
            throw vkError(result, "allocating \(size) bytes")
        }
        try vkCheck(vkBindBufferMemory(device.handle, buffer, memory, 0), "binding buffer memory")
        var mapped: UnsafeMutableRawPointer?
        if hostVisible {
            try vkCheck(vkMapMemory(device.handle, memory, 0, VkDeviceSize(VK_WHOLE_SIZE), 0, &mapped), "mapping \(size) bytes")
        }
        return VulkanAllocation(buffer: buffer!, memory: memory!, size: size, mapped: mapped)
    }

    private func destroy(_ a: VulkanAllocation) {
        if a.mapped != nil { vkUnmapMemory(device.handle, a.memory) }
        vkDestroyBuffer(device.handle, a.buffer, nil)
        vkFreeMemory(device.handle, a.memory, nil)
    }
}
