import TillerCore

/// The CPU backend: matmul and attention on OpenBLAS's sgemm, 16-bit weights widened panel by
/// panel (never a whole f32 copy), and SIMD Swift over all cores for everything else.
public final class CPUBackend: HostMemoryBackend {
    public init() {}
    public var name: String { "cpu" }
    public var deviceDescription: String { "host CPU, \(Parallel.workers) cores; \(OpenBLASRuntime.summary)" }

    // Typed host access, with the op named in the error when a tensor lives elsewhere.
    func floats(_ op: String, _ t: Tensor) throws -> UnsafeMutablePointer<Float> {
        try hostPointer(op, t).assumingMemoryBound(to: Float.self)
    }

    func halves(_ op: String, _ t: Tensor) throws -> UnsafeMutablePointer<UInt16> {
        try hostPointer(op, t).assumingMemoryBound(to: UInt16.self)
    }

    func int32s(_ op: String, _ t: Tensor) throws -> UnsafeMutablePointer<Int32> {
        try hostPointer(op, t).assumingMemoryBound(to: Int32.self)
    }

    /// Validates index values on the host before any kernel touches memory through them.
    func checkedIndices(_ op: String, _ name: String, _ t: Tensor, _ range: Range<Int32>) throws -> UnsafeMutablePointer<Int32> {
        let p = try int32s(op, t)
        try Check.indices(op, name, UnsafeBufferPointer(start: p, count: t.count), range)
        return p
    }
}
