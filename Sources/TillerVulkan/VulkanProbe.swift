#if canImport(Glibc)
import Glibc
#endif
import CVulkan
import TillerCore

/// A physical device as the loader reports it.
public struct VulkanDeviceInfo: Sendable {
    public var index: Int
    public var name: String
    public var type: String
    public var apiVersion: String
    /// Lower is preferred: discrete GPU, integrated, virtual, CPU, other.
    public var rank: Int
}

public enum VulkanProbe {
    /// Lists the physical devices, or says why none could be listed (no loader, no driver).
    public static func devices() -> Result<[VulkanDeviceInfo], TillerError> {
        do {
            let instance = try VulkanInstance(validation: false)
            return .success(instance.physicalDevices().enumerated().map { describe($1, index: $0) })
        } catch let error as TillerError {
            return .failure(error)
        } catch {
            return .failure(.backendUnavailable("vulkan: \(error)"))
        }
    }

    static func describe(_ device: VkPhysicalDevice, index: Int) -> VulkanDeviceInfo {
        var properties = VkPhysicalDeviceProperties()
        vkGetPhysicalDeviceProperties(device, &properties)
        let v = properties.apiVersion
        let (type, rank): (String, Int)
        switch properties.deviceType {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: (type, rank) = ("discrete GPU", 0)
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: (type, rank) = ("integrated GPU", 1)
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: (type, rank) = ("virtual GPU", 2)
        case VK_PHYSICAL_DEVICE_TYPE_CPU: (type, rank) = ("CPU", 3)
        default: (type, rank) = ("other", 4)
        }
        return VulkanDeviceInfo(index: index, name: fixedString(properties.deviceName), type: type,
                                apiVersion: "\(v >> 22).\((v >> 12) & 0x3FF).\(v & 0xFFF)", rank: rank)
    }

    /// The device a backend would use: `choice` (an index, or a substring of the name) when given,
    /// else TILLER_VULKAN_DEVICE, else the best-ranked device (lowest index among equals).
    public static func select(_ devices: [VulkanDeviceInfo], choice: String?) throws -> VulkanDeviceInfo {
        guard !devices.isEmpty else { throw TillerError.backendUnavailable("vulkan: the loader found no devices") }
        let wanted = choice ?? getenvString("TILLER_VULKAN_DEVICE")
        if let wanted, !wanted.isEmpty {
            if let i = Int(wanted) {
                guard devices.indices.contains(i) else {
                    throw TillerError.backendUnavailable("vulkan: device \(i) requested, \(devices.count) present")
                }
                return devices[i]
            }
            guard let match = devices.first(where: { $0.name.lowercased().contains(wanted.lowercased()) }) else {
                throw TillerError.backendUnavailable("vulkan: no device named like '\(wanted)' among \(devices.map(\.name))")
            }
            return match
        }
        return devices.min { ($0.rank, $0.index) < ($1.rank, $1.index) }!
    }
}

func getenvString(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
