/// Memory owned by a backend: host memory for the CPU, a device buffer for a GPU.
/// Tensors are typed views into a buffer, so a test can surround an output with guard bytes
/// and a KV cache can be addressed by offset.
public protocol DeviceBuffer: AnyObject {
    var byteCount: Int { get }
}

/// Host memory, 64-byte aligned (one cache line, one AVX-512 register).
public final class HostBuffer: DeviceBuffer {
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer

    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    deinit { pointer.deallocate() }
}

/// A dense row-major view: shape, dtype and where it starts inside its buffer.
public struct Tensor: CustomStringConvertible {
    public let buffer: DeviceBuffer
    public let byteOffset: Int
    public let shape: [Int]
    public let dtype: DType

    public init(buffer: DeviceBuffer, byteOffset: Int = 0, shape: [Int], dtype: DType) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TillerError.invalidArgument(op: "tensor", detail: "negative dimension in \(shape)")
        }
        if dtype.isQuantized, (shape.last ?? 1) % dtype.blockElements != 0 {
            throw TillerError.invalidArgument(
                op: "tensor", detail: "\(dtype) \(shape): the last dimension must be a multiple of \(dtype.blockElements)")
        }
        let bytes = dtype.byteCount(elements: shape.reduce(1, *))
        guard byteOffset >= 0, byteOffset % dtype.alignment == 0, byteOffset + bytes <= buffer.byteCount else {
            throw TillerError.invalidArgument(
                op: "tensor",
                detail: "\(dtype) \(shape) at byte \(byteOffset) does not fit a buffer of \(buffer.byteCount) bytes")
        }
        self.buffer = buffer
        self.byteOffset = byteOffset
        self.shape = shape
        self.dtype = dtype
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { dtype.byteCount(elements: count) }
    /// Size of the last dimension (1 for a scalar).
    public var columns: Int { shape.last ?? 1 }
    /// Product of all but the last dimension: the number of rows a row-wise op sees.
    public var rows: Int { shape.dropLast().reduce(1, *) }

    /// The same bytes under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard newShape.reduce(1, *) == count else {
            throw TillerError.shapeMismatch(op: "reshape", detail: "\(shape) has \(count) elements, \(newShape) has \(newShape.reduce(1, *))")
        }
        return try Tensor(buffer: buffer, byteOffset: byteOffset, shape: newShape, dtype: dtype)
    }

    /// Rows [start, start + count) of the first dimension.
    public func slice(rows start: Int, count rowCount: Int) throws -> Tensor {
        guard let first = shape.first, start >= 0, rowCount >= 0, start + rowCount <= first else {
            throw TillerError.indexOutOfRange(op: "slice", detail: "rows \(start)..<\(start + rowCount) of \(shape)")
        }
        let rowBytes = dtype.byteCount(elements: shape.dropFirst().reduce(1, *))
        return try Tensor(buffer: buffer, byteOffset: byteOffset + start * rowBytes,
                          shape: [rowCount] + shape.dropFirst(), dtype: dtype)
    }

    public var description: String { "\(dtype)\(shape)" }

    /// Host address of the first element; nil when the tensor lives on a device.
    public var hostPointer: UnsafeMutableRawPointer? {
        (buffer as? HostBuffer).map { $0.pointer + byteOffset }
    }
}
