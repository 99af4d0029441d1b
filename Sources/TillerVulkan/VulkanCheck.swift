import CVulkan
import TillerCore

/// Turns a VkResult into a Tiller error naming what was being done. Device loss and exhausted
/// memory are `deviceFailure` (the process survives, the work since the last sync is lost).
@inline(__always)
func vkCheck(_ result: VkResult, _ what: @autoclosure () -> String) throws {
    guard result != VK_SUCCESS else { return }
    throw vkError(result, what())
}

func vkError(_ result: VkResult, _ what: String) -> TillerError {
    switch result {
    case VK_ERROR_DEVICE_LOST:
        return .deviceFailure("vulkan: device lost during \(what)")
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        return .deviceFailure("vulkan: out of device memory during \(what)")
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        return .deviceFailure("vulkan: out of host memory during \(what)")
    default:
        return .deviceFailure("vulkan: \(what) failed with VkResult \(result.rawValue)")
    }
}

/// Vulkan's fixed-size C strings (device names, layer names) as Swift strings.
func fixedString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
}
