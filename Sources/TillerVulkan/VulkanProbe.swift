import CVulkan
import TillerCore

/// What the Vulkan loader can see, for `tiller info` and for backend selection.
public struct VulkanDeviceInfo: Sendable {
    public var name: String
    public var type: String
    public var apiVersion: String
}

public enum VulkanProbe {
    /// Lists the physical devices, or says why none could be listed (no loader, no driver).
    public static func devices() -> Result<[VulkanDeviceInfo], TillerError> {
        var appInfo = VkApplicationInfo()
        appInfo.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
        appInfo.apiVersion = (1 << 22) | (2 << 12)  // Vulkan 1.2
        return withUnsafePointer(to: &appInfo) { app in
            var create = VkInstanceCreateInfo()
            create.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
            create.pApplicationInfo = app
            var instance: VkInstance?
            let status = vkCreateInstance(&create, nil, &instance)
            guard status == VK_SUCCESS, let instance else {
                return .failure(.backendUnavailable("vulkan: vkCreateInstance failed (VkResult \(status.rawValue)); is a Vulkan driver installed?"))
            }
            defer { vkDestroyInstance(instance, nil) }
            var count: UInt32 = 0
            vkEnumeratePhysicalDevices(instance, &count, nil)
            var handles = [VkPhysicalDevice?](repeating: nil, count: Int(count))
            vkEnumeratePhysicalDevices(instance, &count, &handles)
            let list = handles.compactMap { $0 }.map { device -> VulkanDeviceInfo in
                var properties = VkPhysicalDeviceProperties()
                vkGetPhysicalDeviceProperties(device, &properties)
                let name = withUnsafeBytes(of: properties.deviceName) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                let v = properties.apiVersion
                return VulkanDeviceInfo(name: name, type: typeName(properties.deviceType),
                                        apiVersion: "\(v >> 22).\((v >> 12) & 0x3FF).\(v & 0xFFF)")
            }
            return .success(list)
        }
    }

    static func typeName(_ type: VkPhysicalDeviceType) -> String {
        switch type {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU"
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU"
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU"
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU"
        default: return "other"
        }
    }
}
