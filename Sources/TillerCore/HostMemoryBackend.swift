/// Memory management shared by the backends that compute in host memory (the reference and
/// the CPU backend): buffers are `HostBuffer`s, transfers are copies, and ops run eagerly.
public protocol HostMemoryBackend: Backend {}

public extension HostMemoryBackend {
    func makeBuffer(byteCount: Int) throws -> DeviceBuffer {
        guard byteCount >= 0 else { throw TillerError.invalidArgument(op: "makeBuffer", detail: "\(byteCount) bytes") }
        return HostBuffer(byteCount: byteCount)
    }

    func upload(_ bytes: UnsafeRawBufferPointer, to tensor: Tensor) throws {
        let p = try hostPointer("upload", tensor)
        guard bytes.count == tensor.byteCount else {
            throw TillerError.shapeMismatch(op: "upload", detail: "\(bytes.count) bytes for \(tensor) (\(tensor.byteCount) bytes)")
        }
        if let src = bytes.baseAddress { p.copyMemory(from: src, byteCount: bytes.count) }
    }

    func download(_ tensor: Tensor, into bytes: UnsafeMutableRawBufferPointer) throws {
        let p = try hostPointer("download", tensor)
        guard bytes.count == tensor.byteCount else {
            throw TillerError.shapeMismatch(op: "download", detail: "\(bytes.count) bytes for \(tensor) (\(tensor.byteCount) bytes)")
        }
        if let dst = bytes.baseAddress { dst.copyMemory(from: p, byteCount: bytes.count) }
    }

    func synchronize() throws {}

    /// An i32 tensor's values after checking each lies in range, so no kernel indexes out of bounds.
    func checkedIndices(_ op: String, _ name: String, _ t: Tensor, _ range: Range<Int32>) throws -> UnsafeMutablePointer<Int32> {
        let p = try hostPointer(op, t).assumingMemoryBound(to: Int32.self)
        try Check.indices(op, name, UnsafeBufferPointer(start: p, count: t.count), range)
        return p
    }

    /// The PSR heads' activation codes, each checked to be a `PSRActivation`.
    func checkedActivations(_ heads: PSRHeads, op: String = "psrHead") throws -> UnsafeMutablePointer<Int32> {
        let p = try hostPointer(op, heads.activation).assumingMemoryBound(to: Int32.self)
        try Check.activations(UnsafeBufferPointer(start: p, count: heads.activation.count), op: op)
        return p
    }

    /// The host address of a tensor, or an error naming the op when it lives on a device.
    func hostPointer(_ op: String, _ t: Tensor) throws -> UnsafeMutableRawPointer {
        guard let p = t.hostPointer else {
            throw TillerError.wrongBackend(op: op, detail: "\(t) is not in host memory")
        }
        return p
    }
}
