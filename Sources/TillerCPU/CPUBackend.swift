import CTillerKernels
import TillerCore

/// The CPU backend: ops run eagerly and use every core internally, so issue them from one
/// thread at a time (as with a GPU command stream); concurrent BLAS calls are serialised.
/// Matmul and attention on OpenBLAS's sgemm, 16-bit weights widened panel by
/// panel (never a whole f32 copy); matmuls with at most 48 rows of x (decode, batched decode) on
/// CTillerKernels' weight-streaming kernels; SIMD Swift and C kernels over all cores for everything
/// else, on a persistent thread pool (Parallel.swift, CTillerKernels/pool.c).
public final class CPUBackend: HostMemoryBackend {
    public init() { Self.configureAllocator }

    /// When set, every row of a forward pass comes out the same bits whatever else the pass holds
    /// (`tiller serve`, `tiller generate --batch-invariant`): [N, K] matmuls of any row count run
    /// on the weight-streaming dot kernel, whose per-output sum order does not depend on M (the
    /// batched-decode kernel and sgemm sum in other orders), and attention runs row by row
    /// (`attentionPerRow`). Prefill is slower; decode steps of up to 8 rows are unchanged.
    public var batchInvariant = false

    /// Decode-shaped matmuls (at most 8 rows) with ggml-quantized weights round each row of x to
    /// int8 per 32 values and multiply in integers, as llama.cpp does (CTillerKernels'
    /// gemv_quant_int8.c): a few times fewer instructions per weight, at an NMSE of the products
    /// of ~2e-5 (a relative error of ~4e-3; f32's is ~1e-12). When set, x stays f32 and the
    /// blocks are decoded to f32 (gemv_quant.c), for comparisons and benchmarks.
    public var exactQuantizedDecode = false

    /// glibc raises its mmap threshold to the size of every large block freed (up to 32 MiB), after
    /// which tensors of that size come from the heap and their memory stays with the process when
    /// freed: a batched decode, allocating 19 MiB of logits per step, ended up holding 200 MiB more
    /// than it used. A fixed threshold keeps large tensors mmapped, so freeing one returns it to the
    /// system; smaller scratch buffers still come from (and go back to) the heap.
    private static let configureAllocator: Void = {
        tiller_fix_mmap_threshold(4 << 20)
    }()
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
