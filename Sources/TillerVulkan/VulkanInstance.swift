#if canImport(Glibc)
import Glibc
#endif
import CVulkan
import TillerCore

/// Collects what the validation layers say, so a test can fail on any message.
public final class ValidationLog: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var messages: [String] = []
    init() { pthread_mutex_init(&lock, nil) }

    func append(_ message: String) {
        pthread_mutex_lock(&lock)
        messages.append(message)
        pthread_mutex_unlock(&lock)
    }

    /// Messages since the last call.
    public func drain() -> [String] {
        pthread_mutex_lock(&lock)
        defer { messages.removeAll(); pthread_mutex_unlock(&lock) }
        return messages
    }
}

/// A VkInstance, with the Khronos validation layer and a message collector when asked for and
/// installed (vulkan-validationlayers).
final class VulkanInstance {
    let handle: VkInstance
    let log = ValidationLog()
    private(set) var validationEnabled = false
    private var messenger: VkDebugUtilsMessengerEXT?

    static let validationLayer = "VK_LAYER_KHRONOS_validation"

    init(validation: Bool) throws {
        let layerAvailable = validation && Self.layerNames().contains(Self.validationLayer)
        let layers = layerAvailable ? [Self.validationLayer] : []
        let extensions = layerAvailable ? ["VK_EXT_debug_utils"] : []
        var app = VkApplicationInfo()
        app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
        app.apiVersion = (1 << 22) | (2 << 12)  // Vulkan 1.2
        var instance: VkInstance?
        let result: VkResult = withCStrings(layers) { layerPointers in
            withCStrings(extensions) { extensionPointers in
                withUnsafePointer(to: &app) { appPointer in
                    var create = VkInstanceCreateInfo()
                    create.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                    create.pApplicationInfo = appPointer
                    create.enabledLayerCount = UInt32(layers.count)
                    create.ppEnabledLayerNames = layerPointers
                    create.enabledExtensionCount = UInt32(extensions.count)
                    create.ppEnabledExtensionNames = extensionPointers
                    return vkCreateInstance(&create, nil, &instance)
                }
            }
        }
        guard result == VK_SUCCESS, let instance else {
            throw TillerError.backendUnavailable("vulkan: no usable Vulkan driver (vkCreateInstance returned \(result.rawValue)); install a driver, e.g. mesa-vulkan-drivers")
        }
        handle = instance
        if layerAvailable { try installMessenger() }
    }

    deinit {
        if let messenger, let destroy = loadFunction("vkDestroyDebugUtilsMessengerEXT", as: PFN_vkDestroyDebugUtilsMessengerEXT.self) {
            destroy(handle, messenger, nil)
        }
        vkDestroyInstance(handle, nil)
    }

    static func layerNames() -> [String] {
        var count: UInt32 = 0
        guard vkEnumerateInstanceLayerProperties(&count, nil) == VK_SUCCESS, count > 0 else { return [] }
        var layers = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(count))
        vkEnumerateInstanceLayerProperties(&count, &layers)
        return layers.map { fixedString($0.layerName) }
    }

    func physicalDevices() -> [VkPhysicalDevice] {
        var count: UInt32 = 0
        vkEnumeratePhysicalDevices(handle, &count, nil)
        var handles = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        vkEnumeratePhysicalDevices(handle, &count, &handles)
        return handles.compactMap { $0 }
    }

    func loadFunction<T>(_ name: String, as type: T.Type) -> T? {
        guard let f = vkGetInstanceProcAddr(handle, name) else { return nil }
        return unsafeBitCast(f, to: type)
    }

    private func installMessenger() throws {
        guard let create = loadFunction("vkCreateDebugUtilsMessengerEXT", as: PFN_vkCreateDebugUtilsMessengerEXT.self) else { return }
        var info = VkDebugUtilsMessengerCreateInfoEXT()
        info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
        info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue
        info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue
            | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT.rawValue
        info.pfnUserCallback = { _, _, data, user in
            if let data, let user, let text = data.pointee.pMessage {
                Unmanaged<ValidationLog>.fromOpaque(user).takeUnretainedValue().append(String(cString: text))
            }
            return VkBool32(VK_FALSE)
        }
        info.pUserData = Unmanaged.passUnretained(log).toOpaque()
        var messenger: VkDebugUtilsMessengerEXT?
        try vkCheck(create(handle, &info, nil, &messenger), "creating the validation messenger")
        self.messenger = messenger
        validationEnabled = true
    }
}

/// Calls body with a C array of C strings that lives for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let owned = strings.map { strdup($0) }
    defer { owned.forEach { free($0) } }
    let pointers = owned.map { UnsafePointer<CChar>($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}
