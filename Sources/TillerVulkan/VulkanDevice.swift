import CVulkan
import TillerCore

/// The logical device and everything shared by its buffers and pipelines.
final class VulkanDevice {
    let instance: VulkanInstance
    let physical: VkPhysicalDevice
    let info: VulkanDeviceInfo
    let handle: VkDevice
    let queue: VkQueue
    let queueFamily: UInt32
    let properties: VkPhysicalDeviceProperties
    let memory: VkPhysicalDeviceMemoryProperties
    let pushDescriptorSet: PFN_vkCmdPushDescriptorSetKHR
    /// Memory for tensors; host-visible too on unified-memory devices (integrated GPUs, lavapipe),
    /// where transfers are plain copies.
    let deviceMemoryType: UInt32
    let deviceMemoryIsHostVisible: Bool
    /// Host-visible, coherent memory for staging on discrete GPUs.
    let stagingMemoryType: UInt32

    init(instance: VulkanInstance, choice: String?) throws {
        self.instance = instance
        let physicals = instance.physicalDevices()
        let infos = physicals.enumerated().map { VulkanProbe.describe($1, index: $0) }
        info = try VulkanProbe.select(infos, choice: choice)
        physical = physicals[info.index]
        var properties = VkPhysicalDeviceProperties()
        vkGetPhysicalDeviceProperties(physical, &properties)
        self.properties = properties
        var memory = VkPhysicalDeviceMemoryProperties()
        vkGetPhysicalDeviceMemoryProperties(physical, &memory)
        self.memory = memory

        // A queue family that computes.
        var familyCount: UInt32 = 0
        vkGetPhysicalDeviceQueueFamilyProperties(physical, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        vkGetPhysicalDeviceQueueFamilyProperties(physical, &familyCount, &families)
        guard let family = families.firstIndex(where: { $0.queueFlags & VK_QUEUE_COMPUTE_BIT.rawValue != 0 }) else {
            throw TillerError.backendUnavailable("vulkan: \(info.name) has no compute queue")
        }
        queueFamily = UInt32(family)

        let required = ["VK_KHR_push_descriptor"]
        let available = Self.deviceExtensions(physical)
        for name in required where !available.contains(name) {
            throw TillerError.backendUnavailable("vulkan: \(info.name) lacks \(name), which the backend needs")
        }

        var priority: Float = 1
        var queueInfo = VkDeviceQueueCreateInfo()
        queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
        queueInfo.queueFamilyIndex = UInt32(family)
        queueInfo.queueCount = 1
        var device: VkDevice?
        let physical = self.physical
        let result: VkResult = withUnsafePointer(to: &priority) { priorityPointer in
            queueInfo.pQueuePriorities = priorityPointer
            return withUnsafePointer(to: &queueInfo) { queuePointer in
                withCStrings(required) { extensionNames in
                    var create = VkDeviceCreateInfo()
                    create.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                    create.queueCreateInfoCount = 1
                    create.pQueueCreateInfos = queuePointer
                    create.enabledExtensionCount = UInt32(required.count)
                    create.ppEnabledExtensionNames = extensionNames
                    return vkCreateDevice(physical, &create, nil, &device)
                }
            }
        }
        guard result == VK_SUCCESS, let device else { throw vkError(result, "creating the logical device on \(info.name)") }
        handle = device
        var queue: VkQueue?
        vkGetDeviceQueue(device, queueFamily, 0, &queue)
        self.queue = queue!
        guard let push = vkGetDeviceProcAddr(device, "vkCmdPushDescriptorSetKHR") else {
            vkDestroyDevice(device, nil)
            throw TillerError.backendUnavailable("vulkan: vkCmdPushDescriptorSetKHR missing on \(info.name)")
        }
        pushDescriptorSet = unsafeBitCast(push, to: PFN_vkCmdPushDescriptorSetKHR.self)

        let deviceLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue
        let hostVisible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue
        let unified = info.rank != 0  // not a discrete GPU: its device-local memory is the host's
        func find(_ flags: UInt32) -> UInt32? {
            let types = withUnsafeBytes(of: memory.memoryTypes) { Array($0.bindMemory(to: VkMemoryType.self)) }
            return (0..<Int(memory.memoryTypeCount)).first { types[$0].propertyFlags & flags == flags }.map(UInt32.init)
        }
        if unified, let both = find(deviceLocal | hostVisible) {
            deviceMemoryType = both
            deviceMemoryIsHostVisible = true
        } else if let local = find(deviceLocal) {
            deviceMemoryType = local
            deviceMemoryIsHostVisible = false
        } else {
            vkDestroyDevice(device, nil)
            throw TillerError.backendUnavailable("vulkan: \(info.name) has no device-local memory type")
        }
        guard let staging = find(hostVisible) else {
            vkDestroyDevice(device, nil)
            throw TillerError.backendUnavailable("vulkan: \(info.name) has no host-visible memory type")
        }
        stagingMemoryType = staging
    }

    deinit {
        vkDeviceWaitIdle(handle)
        vkDestroyDevice(handle, nil)
    }

    static func deviceExtensions(_ physical: VkPhysicalDevice) -> Set<String> {
        var count: UInt32 = 0
        vkEnumerateDeviceExtensionProperties(physical, nil, &count, nil)
        var list = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(count))
        vkEnumerateDeviceExtensionProperties(physical, nil, &count, &list)
        return Set(list.map { fixedString($0.extensionName) })
    }

    var maxStorageBufferRange: Int { Int(properties.limits.maxStorageBufferRange) }
    var storageOffsetAlignment: Int { max(1, Int(properties.limits.minStorageBufferOffsetAlignment)) }
    var maxGroupCountX: Int { Int(properties.limits.maxComputeWorkGroupCount.0) }
}
