import CVulkan
import TillerCore
#if canImport(Glibc)
import Glibc
#endif

/// The driver's compiled pipelines, kept on disk between runs so a second start does not
/// compile every shader again. One file per device, driver version and cache UUID (the driver
/// rejects data from another anyway). TILLER_PIPELINE_CACHE=off disables it; a directory
/// there moves it (default: $XDG_CACHE_HOME/tiller or ~/.cache/tiller). Failures only cost speed.
final class PipelineCache {
    let device: VulkanDevice
    let handle: VkPipelineCache?
    let path: String?

    init(device: VulkanDevice) {
        self.device = device
        path = Self.path(for: device)
        var initial = path.flatMap(Self.read) ?? []
        var info = VkPipelineCacheCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
        var cache: VkPipelineCache?
        let result: VkResult = initial.withUnsafeMutableBytes { bytes in
            info.initialDataSize = bytes.count
            info.pInitialData = bytes.count > 0 ? UnsafeRawPointer(bytes.baseAddress) : nil
            return vkCreatePipelineCache(device.handle, &info, nil, &cache)
        }
        handle = result == VK_SUCCESS ? cache : nil
    }

    /// Writes the cache back to disk.
    func save() {
        guard let handle, let path else { return }
        var size = 0
        guard vkGetPipelineCacheData(device.handle, handle, &size, nil) == VK_SUCCESS, size > 0 else { return }
        var data = [UInt8](repeating: 0, count: size)
        guard vkGetPipelineCacheData(device.handle, handle, &size, &data) == VK_SUCCESS else { return }
        let temporary = path + ".\(getpid()).tmp"
        guard let file = fopen(temporary, "wb") else { return }
        let written = fwrite(data, 1, size, file)
        fclose(file)
        if written == size { rename(temporary, path) } else { unlink(temporary) }
    }

    deinit {
        if let handle { vkDestroyPipelineCache(device.handle, handle, nil) }
    }

    static func path(for device: VulkanDevice) -> String? {
        let setting = getenv("TILLER_PIPELINE_CACHE").map { String(cString: $0) }
        if setting == "off" { return nil }
        let directory: String
        if let setting, !setting.isEmpty {
            directory = setting
        } else if let xdg = getenv("XDG_CACHE_HOME") {
            directory = String(cString: xdg) + "/tiller"
        } else if let home = getenv("HOME") {
            directory = String(cString: home) + "/.cache/tiller"
        } else {
            return nil
        }
        mkdir(directory, 0o755)
        let p = device.properties
        let uuid = withUnsafeBytes(of: p.pipelineCacheUUID) { $0.map { String(format2: $0) }.joined() }
        return "\(directory)/vulkan-\(String(p.vendorID, radix: 16))-\(String(p.deviceID, radix: 16))-\(p.driverVersion)-\(uuid).bin"
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }
}

private extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
