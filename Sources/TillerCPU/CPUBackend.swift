import CTillerKernels
import TillerCore

/// The CPU backend: ops run eagerly and use every core internally, so issue them from one
/// thread at a time (as with a GPU command stream); concurrent BLAS calls are serialised.
/// Matmul and attention on OpenBLAS's sgemm, 16-bit weights widened panel by
/// panel (never a whole f32 copy), and SIMD Swift over all cores for everything else.
public final class CPUBackend: HostMemoryBackend {
    public init() {}
    public var name: String { "cpu" }
    public var deviceDescription: String {
        "host CPU, \(Parallel.workers) cores, \(Self.vectorISA) 16-bit weight kernels; \(OpenBLASRuntime.summary)"
    }

    /// Which build of the C kernels this CPU runs ("avx512", "avx2" or "baseline").
    public static var vectorISA: String { String(cString: tiller_kernels_isa()) }

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
}
