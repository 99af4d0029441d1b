/// Allocation and host transfer helpers every backend gets for free.
public extension Backend {
    /// A zero-initialised tensor of its own.
    func empty(_ shape: [Int], _ dtype: DType = .f32) throws -> Tensor {
        // Shapes grow from user numbers (configs, batch sizes, context limits): a product past
        // Int is an error here rather than a trap.
        var elements = 1
        for size in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard size >= 0, !overflow else {
                throw TillerError.invalidArgument(op: "empty", detail: "a \(dtype) tensor of shape \(shape) does not fit in memory")
            }
            elements = product
        }
        let (bytes, overflow) = (elements / dtype.blockElements).multipliedReportingOverflow(by: dtype.blockBytes)
        guard !overflow else {
            throw TillerError.invalidArgument(op: "empty", detail: "a \(dtype) tensor of shape \(shape) does not fit in memory")
        }
        return try Tensor(buffer: makeBuffer(byteCount: bytes), shape: shape, dtype: dtype)
    }

    /// Uploads f32 values, converting them to `dtype` (f32, f16, bf16, i32, or quantized blocks:
    /// `QuantizedBlocks.quantize`) on the host.
    func tensor(_ values: [Float], shape: [Int], dtype: DType = .f32) throws -> Tensor {
        guard values.count == shape.reduce(1, *) else {
            throw TillerError.shapeMismatch(op: "tensor", detail: "\(values.count) values for shape \(shape)")
        }
        let t = try empty(shape, dtype)
        try HostEncoding.withBytes(of: values, as: dtype) { try upload($0, to: t) }
        return t
    }

    /// Uploads i32 values (ids, positions, head indices).
    func tensor(ints values: [Int32], shape: [Int]) throws -> Tensor {
        guard values.count == shape.reduce(1, *) else {
            throw TillerError.shapeMismatch(op: "tensor", detail: "\(values.count) values for shape \(shape)")
        }
        let t = try empty(shape, .i32)
        try values.withUnsafeBytes { try upload($0, to: t) }
        return t
    }

    /// Downloads any floating-point tensor as f32 values.
    func floats(_ t: Tensor) throws -> [Float] {
        guard t.dtype.isFloatingPoint else {
            throw TillerError.dtypeMismatch(op: "floats", detail: "\(t) is not floating point")
        }
        var raw = [UInt8](repeating: 0, count: t.byteCount)
        try raw.withUnsafeMutableBytes { try download(t, into: $0) }
        return raw.withUnsafeBytes { HostEncoding.decode($0, as: t.dtype) }
    }

    /// Downloads an i32 tensor.
    func ints(_ t: Tensor) throws -> [Int32] {
        guard t.dtype == .i32 else {
            throw TillerError.dtypeMismatch(op: "ints", detail: "\(t) is not i32")
        }
        var values = [Int32](repeating: 0, count: t.count)
        try values.withUnsafeMutableBytes { try download(t, into: $0) }
        return values
    }

    /// Raw bytes of a tensor, as stored.
    func bytes(_ t: Tensor) throws -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: t.byteCount)
        try raw.withUnsafeMutableBytes { try download(t, into: $0) }
        return raw
    }

    /// PSR heads from host values: w and z are [K, d] row-major.
    func psrHeads(w: [Float], bias: [Float], z: [Float], activations: [PSRActivation], dim: Int) throws -> PSRHeads {
        let k = activations.count
        return PSRHeads(w: try tensor(w, shape: [k, dim]),
                        bias: try tensor(bias, shape: [k]),
                        z: try tensor(z, shape: [k, dim]),
                        activation: try tensor(ints: activations.map(\.rawValue), shape: [k]))
    }
}

/// Host-side encoding of f32 values into storage dtypes and back.
public enum HostEncoding {
    public static func withBytes<R>(of values: [Float], as dtype: DType, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch dtype {
        case .f32: return try values.withUnsafeBytes(body)
        case .f16: return try values.map(HalfConversion.floatToF16).withUnsafeBytes(body)
        case .bf16: return try values.map(HalfConversion.floatToBF16).withUnsafeBytes(body)
        case .i32: return try values.map { Int32($0) }.withUnsafeBytes(body)
        case .q8_0, .q4_0, .q4_1, .q4_K:
            // A count off the block size quantizes to nothing, which the upload then refuses.
            return try (QuantizedBlocks.quantize(values, as: dtype) ?? []).withUnsafeBytes(body)
        }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, as dtype: DType) -> [Float] {
        switch dtype {
        case .f32: return Array(bytes.bindMemory(to: Float.self))
        case .f16: return bytes.bindMemory(to: UInt16.self).map(HalfConversion.f16ToFloat)
        case .bf16: return bytes.bindMemory(to: UInt16.self).map(HalfConversion.bf16ToFloat)
        case .i32: return bytes.bindMemory(to: Int32.self).map { Float($0) }
        case .q8_0, .q4_0, .q4_1, .q4_K:
            let count = bytes.count / dtype.blockBytes * dtype.blockElements
            guard let base = bytes.baseAddress, count > 0 else { return [] }
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                QuantizedBlocks.dequantize(dtype, base, count: count, into: out.baseAddress!)
                initialized = count
            }
        }
    }

    /// Reads element i of a host tensor of any dtype as f32.
    @inline(__always)
    public static func load(_ base: UnsafeRawPointer, _ dtype: DType, _ i: Int) -> Float {
        switch dtype {
        case .f32: return base.load(fromByteOffset: i * 4, as: Float.self)
        case .f16: return HalfConversion.f16ToFloat(base.load(fromByteOffset: i * 2, as: UInt16.self))
        case .bf16: return HalfConversion.bf16ToFloat(base.load(fromByteOffset: i * 2, as: UInt16.self))
        case .i32: return Float(base.load(fromByteOffset: i * 4, as: Int32.self))
        case .q8_0, .q4_0, .q4_1, .q4_K: return QuantizedBlocks.value(base, dtype, i)
        }
    }
}
