#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TillerCore
import TillerCPU
import TillerVulkan

/// One tensor for `writeSafetensors`: name, safetensors dtype ("F32", "BF16", "I8", ...), shape
/// and the raw little-endian bytes.
typealias SafetensorsTestTensor = (name: String, dtype: String, shape: [Int], bytes: [UInt8])

/// A JSON string literal.
func safetensorsJSONString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// The header JSON a writer would produce, tensors laid out back to back in the given order.
func safetensorsHeader(_ tensors: [SafetensorsTestTensor], metadata: [String: String] = [:]) -> String {
    var parts: [String] = []
    if !metadata.isEmpty {
        let pairs = metadata.keys.sorted().map { "\(safetensorsJSONString($0)):\(safetensorsJSONString(metadata[$0]!))" }
        parts.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    var offset = 0
    for t in tensors {
        let shape = t.shape.map(String.init).joined(separator: ",")
        parts.append("\(safetensorsJSONString(t.name)):{\"dtype\":\"\(t.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
        offset += t.bytes.count
    }
    return "{" + parts.joined(separator: ",") + "}"
}

/// A whole file from a header and a data section. `pad` rounds the header up to 8 bytes with
/// spaces, as the reference writer does; without it the data section is usually unaligned.
func safetensorsFileBytes(header: [UInt8], data: [UInt8], pad: Bool = true) -> [UInt8] {
    var header = header
    if pad { while header.count % 8 != 0 { header.append(0x20) } }
    var out: [UInt8] = []
    var n = UInt64(header.count)
    for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
    return out + header + data
}

func safetensorsFileBytes(_ tensors: [SafetensorsTestTensor], metadata: [String: String] = [:], pad: Bool = true) -> [UInt8] {
    safetensorsFileBytes(header: Array(safetensorsHeader(tensors, metadata: metadata).utf8),
                         data: tensors.flatMap(\.bytes), pad: pad)
}

/// Writes a safetensors file holding `tensors`, back to back in order.
func writeSafetensors(_ path: String, _ tensors: [SafetensorsTestTensor], metadata: [String: String] = [:], pad: Bool = true) throws {
    try writeBytes(path, safetensorsFileBytes(tensors, metadata: metadata, pad: pad))
}

/// Writes a whole file (plain POSIX calls: Foundation's writer syncs to disk, too slow for fuzzing).
func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    defer { close(fd) }
    var written = 0
    try bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            guard n > 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
            written += n
        }
    }
}

/// f32 values encoded as a storage dtype, little-endian bytes.
func safetensorsBytes(_ values: [Float], as dtype: DType) -> [UInt8] {
    HostEncoding.withBytes(of: values, as: dtype) { Array($0) }
}

/// The safetensors name of a dtype.
func safetensorsName(_ dtype: DType) -> String {
    switch dtype {
    case .f32: return "F32"
    case .f16: return "F16"
    case .bf16: return "BF16"
    case .i32: return "I32"
    case .q8_0, .q4_0, .q4_1, .q4_K: return dtype.rawValue.uppercased()  // not a safetensors dtype
    }
}

/// A fresh temporary directory, removed by `cleanup`.
struct SafetensorsTempDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/tiller-safetensors-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// The backends checkpoint loading is checked on: reference, CPU, and Vulkan when the machine
/// has a device (TILLER_TEST_VULKAN=0 leaves it out).
enum SafetensorsTestBackends {
    static let lock = NSLock()
    static let vulkan: VulkanBackend? = {
        if ProcessInfo.processInfo.environment["TILLER_TEST_VULKAN"] == "0" { return nil }
        return try? VulkanBackend()
    }()

    static func all() -> [Backend] {
        var backends: [Backend] = [ReferenceBackend(), CPUBackend()]
        if let v = vulkan { backends.append(v) }
        return backends
    }

    /// Runs body with exclusive use of a shared backend.
    static func with<R>(_ backend: Backend, _ body: () throws -> R) rethrows -> R {
        guard backend is VulkanBackend else { return try body() }
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
