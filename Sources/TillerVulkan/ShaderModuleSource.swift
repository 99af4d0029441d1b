/// Namespace of the compiled shaders; scripts/compile-shaders.sh adds one member per
/// Shaders/*.comp in Generated/.
enum SPIRV {}

/// One compiled compute shader, embedded as base64 so the binary needs no files beside it.
struct ShaderModuleSource: Sendable {
    let name: String
    let base64: String

    /// The SPIR-V words.
    var words: [UInt32] {
        let bytes = Base64.decode(base64)
        var words = [UInt32](repeating: 0, count: bytes.count / 4)
        for i in words.indices {
            let b0 = UInt32(bytes[4 * i]), b1 = UInt32(bytes[4 * i + 1])
            let b2 = UInt32(bytes[4 * i + 2]), b3 = UInt32(bytes[4 * i + 3])
            words[i] = b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
        }
        return words
    }
}

enum Base64 {
    static func decode(_ text: String) -> [UInt8] {
        var table = [UInt8](repeating: 255, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = UInt8(i) }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var buffer: UInt32 = 0, bits = 0
        for c in text.utf8 where table[Int(c)] != 255 {
            buffer = buffer << 6 | UInt32(table[Int(c)])
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }
}
