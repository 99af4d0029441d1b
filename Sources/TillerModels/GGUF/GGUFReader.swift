import TillerCore

/// The header of a GGUF file (versions 2 and 3, little-endian), read for control vectors and model
/// files alike: every metadata value (arrays are checked and located, and decoded only when asked
/// for: a vocabulary is 50k strings), every tensor's name, shape, type and where its bytes lie. Written for untrusted input: every count and length is bounded
/// by the bytes that remain before anything is allocated or read, all arithmetic on sizes is
/// checked, and whatever is wrong is a one-line `TillerError` naming the file and the byte offset.
///
/// Layout (ggml's docs/gguf.md): "GGUF", u32 version, u64 tensor count, u64 metadata count;
/// metadata as (string key, u32 type, value); tensor infos as (string name, u32 n_dims,
/// u64 ne[n_dims], u32 ggml type, u64 offset); padding to `general.alignment` (default 32); the
/// data section, each tensor at its offset from the data section's start. A string is a u64
/// byte length and that many bytes of UTF-8.
public struct GGUFReader: Sendable {
    public enum Value: Equatable, Sendable {
        case unsigned(UInt64)
        case signed(Int64)
        case float(Double)
        case bool(Bool)
        case string(String)
        /// Arrays are validated and skipped: the element type, the count and the byte offset of
        /// the first element are kept (`strings`, `numbers` decode them).
        case array(elementType: UInt32, count: Int, at: Int)

        public var typeName: String {
            switch self {
            case .unsigned: return "an unsigned integer"
            case .signed: return "a signed integer"
            case .float: return "a float"
            case .bool: return "a boolean"
            case .string: return "a string"
            case .array: return "an array"
            }
        }

        /// An integer value of any integer type, if it fits an Int.
        public var integer: Int? {
            switch self {
            case .unsigned(let u): return Int(exactly: u)
            case .signed(let s): return Int(exactly: s)
            default: return nil
            }
        }
    }

    public struct TensorInfo: Sendable {
        public var name: String
        /// ne[0], ne[1], ... (ggml order: ne[0] is the innermost dimension).
        public var dims: [Int]
        public var type: UInt32
        public var elementCount: Int
        /// The offset from the data section's start, as written.
        public var relativeOffset: Int
        /// Absolute byte range in the file; nil for types whose size this reader does not know.
        public var byteRange: Range<Int>?
    }

    /// ggml types this reader knows the size of.
    public enum TensorType: UInt32 {
        case f32 = 0
        case f16 = 1
        case bf16 = 30

        public var byteSize: Int { self == .f32 ? 4 : 2 }
    }

    public static let magic: [UInt8] = Array("GGUF".utf8)
    static let defaultAlignment = 32
    static let maxDims = 4

    public let path: String
    public let version: UInt32
    /// In file order.
    public let metadata: [(key: String, value: Value)]
    public let tensors: [TensorInfo]
    public let alignment: Int
    public let dataStart: Int

    public func value(_ key: String) -> Value? { metadata.first { $0.key == key }?.value }

    public init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        self.path = path
        var c = Cursor(bytes: bytes, path: path)
        guard bytes.count >= 4 else {
            throw c.error("file is \(bytes.count) bytes, too short for the GGUF magic")
        }
        let head = Array(try c.take(4, "the magic"))
        guard head == Self.magic else {
            throw c.error("not a GGUF file (magic \(head.map { String(format2: $0) }.joined(separator: " ")), expected 47 47 55 46 \"GGUF\")", at: 0)
        }
        let version = try c.u32("the version")
        guard version == 2 || version == 3 else {
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw c.error("big-endian GGUF (version \(version.byteSwapped) byte-swapped) is not supported", at: 4)
            }
            if version == 1 { throw c.error("GGUF version 1 is obsolete and not supported (versions 2 and 3 are)", at: 4) }
            throw c.error("unknown GGUF version \(version) (versions 2 and 3 are supported)", at: 4)
        }
        self.version = version
        let tensorCount = try c.count("the tensor count", minimumBytesEach: 24)
        let kvCount = try c.count("the metadata count", minimumBytesEach: 13)

        var metadata: [(key: String, value: Value)] = []
        var keys = Set<String>()
        for _ in 0..<kvCount {
            let keyOffset = c.offset
            let key = try c.string("a metadata key")
            guard keys.insert(key).inserted else {
                throw c.error("metadata key '\(JSONValue.excerpt(key))' appears twice", at: keyOffset)
            }
            let type = try c.u32("the type of '\(JSONValue.excerpt(key))'")
            let value = try c.value(type: type, key: key)
            metadata.append((key, value))
        }
        self.metadata = metadata

        var alignment = Self.defaultAlignment
        if let a = metadata.first(where: { $0.key == "general.alignment" })?.value {
            guard case .unsigned(let u) = a, let n = Int(exactly: u), n > 0, n & (n - 1) == 0, n <= 1 << 20 else {
                throw c.error("general.alignment must be a power of two (u32), found \(a.typeName) \(a.integer.map(String.init) ?? "")")
            }
            alignment = n
        }
        self.alignment = alignment

        var infos: [TensorInfo] = []
        var names = Set<String>()
        for _ in 0..<tensorCount {
            let nameOffset = c.offset
            let name = try c.string("a tensor name")
            guard names.insert(name).inserted else {
                throw c.error("tensor '\(JSONValue.excerpt(name))' appears twice", at: nameOffset)
            }
            let shown = "tensor '\(JSONValue.excerpt(name))'"
            let nDims = try c.u32("the dimension count of \(shown)")
            guard nDims <= UInt32(Self.maxDims) else {
                throw c.error("\(shown) has \(nDims) dimensions (at most \(Self.maxDims))")
            }
            var dims: [Int] = []
            var count = 1
            for _ in 0..<Int(nDims) {
                let raw = try c.u64("a dimension of \(shown)")
                guard let d = Int(exactly: raw), d <= Int(Int32.max) else {
                    throw c.error("\(shown) has an absurd dimension \(raw)")
                }
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw c.error("\(shown) has shape \(dims + [d]): too many elements") }
                count = p
                dims.append(d)
            }
            let type = try c.u32("the type of \(shown)")
            let offsetRaw = try c.u64("the data offset of \(shown)")
            guard let offset = Int(exactly: offsetRaw), offset <= bytes.count else {
                throw c.error("\(shown) has data offset \(offsetRaw), beyond the end of the file (\(bytes.count) bytes)")
            }
            guard offset % alignment == 0 else {
                throw c.error("\(shown) has data offset \(offset), not a multiple of the alignment \(alignment)")
            }
            infos.append(TensorInfo(name: name, dims: dims, type: type, elementCount: count, relativeOffset: offset, byteRange: nil))
        }

        // The data section starts at the next multiple of the alignment.
        let (padded, o) = c.offset.addingReportingOverflow(alignment - 1)
        let dataStart = o ? Int.max : padded / alignment * alignment
        if tensorCount > 0 && dataStart > bytes.count {
            throw c.error("the data section would start at byte \(dataStart), past the end of the file (\(bytes.count) bytes): truncated")
        }
        self.dataStart = dataStart
        for i in infos.indices {
            let offset = infos[i].relativeOffset
            guard let type = GGMLType(rawValue: infos[i].type) else { continue }
            if let first = infos[i].dims.first, first % type.blockSize != 0 {
                throw c.error("tensor '\(JSONValue.excerpt(infos[i].name))' (\(Self.typeName(infos[i].type)) \(infos[i].dims)) has rows of \(first) values, not a multiple of the type's block of \(type.blockSize)", at: nil)
            }
            let (size, o1) = (infos[i].elementCount / type.blockSize).multipliedReportingOverflow(by: type.blockBytes)
            let (begin, o2) = dataStart.addingReportingOverflow(offset)
            let (end, o3) = begin.addingReportingOverflow(size)
            guard !o1, !o2, !o3, end <= bytes.count else {
                throw c.error("tensor '\(JSONValue.excerpt(infos[i].name))' (\(Self.typeName(infos[i].type)) \(infos[i].dims)) lies outside the file: bytes [\(o2 ? "?" : String(begin)), \(o1 || o2 || o3 ? "?" : String(end))) of \(bytes.count); truncated?", at: nil)
            }
            infos[i].byteRange = begin..<end
        }
        self.tensors = infos
    }

    public static func typeName(_ type: UInt32) -> String {
        let names: [UInt32: String] = [0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
                                       10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
                                       24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 30: "BF16"]
        return names[type] ?? "ggml type \(type)"
    }

    /// A tensor's values as f32 (F32, F16 or BF16 data).
    public static func floats(_ bytes: UnsafeRawBufferPointer, _ tensor: TensorInfo) -> [Float]? {
        guard let type = TensorType(rawValue: tensor.type), let range = tensor.byteRange,
              range.lowerBound >= 0, range.upperBound <= bytes.count, range.count == tensor.elementCount * type.byteSize else { return nil }
        let base = range.lowerBound
        switch type {
        case .f32:
            return (0..<tensor.elementCount).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: base + 4 * $0, as: UInt32.self))) }
        case .f16:
            return (0..<tensor.elementCount).map { HalfConversion.f16ToFloat(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: base + 2 * $0, as: UInt16.self))) }
        case .bf16:
            return (0..<tensor.elementCount).map { HalfConversion.bf16ToFloat(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: base + 2 * $0, as: UInt16.self))) }
        }
    }

    /// Reads little-endian values, never past the end.
    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let path: String
        var offset = 0

        init(bytes: UnsafeRawBufferPointer, path: String) {
            self.bytes = bytes
            self.path = path
        }

        var remaining: Int { bytes.count - offset }

        func error(_ detail: String, at position: Int? = -1) -> TillerError {
            let at = position == -1 ? offset : position
            return .io(path: path, detail: "malformed GGUF: \(detail)\(at.map { " (byte \($0))" } ?? "")")
        }

        mutating func take(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
            guard n >= 0, n <= remaining else {
                throw error("truncated: \(what) needs \(n) bytes, \(remaining) remain")
            }
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
        }

        mutating func skip(_ n: Int, _ what: String) throws {
            guard n >= 0, n <= remaining else {
                throw error("truncated: \(what) needs \(n) bytes, \(remaining) remain")
            }
            offset += n
        }

        mutating func u8(_ what: String) throws -> UInt8 { try take(1, what)[0] }

        mutating func u16(_ what: String) throws -> UInt16 {
            UInt16(littleEndian: try take(2, what).loadUnaligned(as: UInt16.self))
        }

        mutating func u32(_ what: String) throws -> UInt32 {
            UInt32(littleEndian: try take(4, what).loadUnaligned(as: UInt32.self))
        }

        mutating func u64(_ what: String) throws -> UInt64 {
            UInt64(littleEndian: try take(8, what).loadUnaligned(as: UInt64.self))
        }

        /// A u64 count of items of at least `minimumBytesEach` bytes, bounded by what remains.
        mutating func count(_ what: String, minimumBytesEach: Int) throws -> Int {
            let at = offset
            let raw = try u64(what)
            guard raw <= UInt64(remaining / max(minimumBytesEach, 1)) else {
                throw error("\(what) \(raw) is absurd: \(remaining) bytes remain, room for at most \(remaining / max(minimumBytesEach, 1))", at: at)
            }
            return Int(raw)
        }

        mutating func string(_ what: String) throws -> String {
            let at = offset
            let raw = try u64("the length of \(what)")
            guard raw <= UInt64(remaining) else {
                throw error("\(what) claims \(raw) bytes, but only \(remaining) remain", at: at)
            }
            let body = try take(Int(raw), what)
            guard let s = String(bytes: body, encoding: .utf8) else {
                throw error("\(what) is not valid UTF-8", at: at)
            }
            return s
        }

        static func fixedSize(_ type: UInt32) -> Int? {
            switch type {
            case 0, 1, 7: return 1
            case 2, 3: return 2
            case 4, 5, 6: return 4
            case 10, 11, 12: return 8
            default: return nil
            }
        }

        mutating func value(type: UInt32, key: String) throws -> Value {
            let shown = "'\(JSONValue.excerpt(key))'"
            switch type {
            case 0: return .unsigned(UInt64(try u8(shown)))
            case 1: return .signed(Int64(Int8(bitPattern: try u8(shown))))
            case 2: return .unsigned(UInt64(try u16(shown)))
            case 3: return .signed(Int64(Int16(bitPattern: try u16(shown))))
            case 4: return .unsigned(UInt64(try u32(shown)))
            case 5: return .signed(Int64(Int32(bitPattern: try u32(shown))))
            case 6: return .float(Double(Float(bitPattern: try u32(shown))))
            case 7: return .bool(try u8(shown) != 0)
            case 8: return .string(try string("the value of \(shown)"))
            case 10: return .unsigned(try u64(shown))
            case 11: return .signed(Int64(bitPattern: try u64(shown)))
            case 12: return .float(Double(bitPattern: try u64(shown)))
            case 9:
                let elementType = try u32("the element type of \(shown)")
                if let size = Self.fixedSize(elementType) {
                    let n = try count("the length of array \(shown)", minimumBytesEach: size)
                    let at = offset
                    try skip(n * size, "array \(shown)")
                    return .array(elementType: elementType, count: n, at: at)
                } else if elementType == 8 {
                    let n = try count("the length of array \(shown)", minimumBytesEach: 8)
                    let at = offset
                    for _ in 0..<n {
                        let raw = try u64("a string in array \(shown)")
                        guard raw <= UInt64(remaining) else {
                            throw error("a string in array \(shown) claims \(raw) bytes, but only \(remaining) remain")
                        }
                        try skip(Int(raw), "a string in array \(shown)")
                    }
                    return .array(elementType: elementType, count: n, at: at)
                } else if elementType == 9 {
                    throw error("array \(shown) holds arrays (nested arrays are not supported)")
                } else {
                    throw error("array \(shown) has unknown element type \(elementType)")
                }
            default:
                throw error("metadata \(shown) has unknown value type \(type)")
            }
        }
    }
}

private extension String {
    /// Two hex digits.
    init(format2 byte: UInt8) {
        let hex = String(byte, radix: 16)
        self = hex.count == 1 ? "0" + hex : hex
    }
}
