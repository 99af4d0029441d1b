import TillerCore

/// Workgroup shapes of the matmul shaders, chosen once from the device limits.
struct MatmulKernelConfig: Equatable {
    /// matmul_tiled: a bm x bn output tile per workgroup, staged bk deep through shared memory,
    /// tm x tn outputs per invocation.
    var bm: Int, bn: Int, bk: Int, tm: Int, tn: Int
    var tiledThreads: Int { (bm / tm) * (bn / tn) }
    /// Shared memory of matmul_tiled: two padded k-major slabs of f32.
    var tiledSharedBytes: Int { 4 * bk * ((bm + 1) + (bn + 1)) }
    /// matmul_vec_nk: invocations (a power of two) and output columns per workgroup.
    var nkThreads: Int, nkColumns: Int
    /// matmul_vec_kn: invocations and output columns per workgroup (threads / columns K slices).
    var knThreads: Int, knColumns: Int

    /// The choice, from the device's compute limits (Vulkan guarantees at least 128 invocations,
    /// 128 along x and 16 KiB of shared memory; lavapipe has 1024 and 32 KiB, NVIDIA 1024 and
    /// 48 KiB). Prefill: 64 x 64 tiles, 16 deep, 4 x 4 outputs per invocation = 256 invocations
    /// and 8.3 KiB of shared memory, small enough for several workgroups per SM/CU to hide
    /// latency; a row of 16 invocations spans a 64-column tile row, so a 32-wide (NVIDIA) or
    /// 64-wide (AMD) subgroup covers 2 or 4 tile rows and its shared reads of x are broadcasts.
    /// Devices under 256 invocations get 32 x 32 tiles (64 invocations, 4.2 KiB). Decode: 128
    /// invocations per W row pair (nk; 8 rows x 2 columns of partial sums = 8 KiB to reduce) and
    /// 64 columns x 4 K slices (kn; 8 KiB), halving the slices on 128-invocation devices.
    static func choose(maxInvocations: Int, maxSizeX: Int, sharedBytes: Int) -> MatmulKernelConfig {
        let invocations = min(maxInvocations, maxSizeX)
        var config = MatmulKernelConfig(bm: 64, bn: 64, bk: 16, tm: 4, tn: 4,
                                        nkThreads: 128, nkColumns: 2, knThreads: 256, knColumns: 64)
        if config.tiledThreads > invocations || config.tiledSharedBytes > sharedBytes {
            config.bm = 32
            config.bn = 32
        }
        if config.knThreads > invocations { config.knThreads = 128 }
        return config
    }
}

extension VulkanBackend {
    /// Up to this many rows of x (per batch), W is streamed once by the matrix-vector kernels.
    static let matmulVectorMaxRows = 8

    var matmulConfig: MatmulKernelConfig {
        let limits = device.properties.limits
        return MatmulKernelConfig.choose(maxInvocations: Int(limits.maxComputeWorkGroupInvocations),
                                         maxSizeX: Int(limits.maxComputeWorkGroupSize.0),
                                         sharedBytes: Int(limits.maxComputeSharedMemorySize))
    }

    public func matmul(_ x: Tensor, _ w: Tensor, layout: WeightLayout, bias: Tensor?, accumulate: Bool, out: Tensor) throws {
        let op = "matmul"
        let dims = try OpShapes.matmul(x, w, layout: layout, bias: bias, out: out)
        let (m, n, k) = (dims.m, dims.n, dims.k)
        // Element indices are 32-bit in the shaders (a storage binding is at most 4 GiB anyway).
        guard [x.count, w.count, out.count].allSatisfy({ $0 < Int(UInt32.max) }) else {
            throw TillerError.unsupported("vulkan: \(op) on \(x), \(w) needs 64-bit element indices")
        }
        if w.dtype.isQuantized {
            return try quantizedMatmul(x, w, bias: bias, accumulate: accumulate, out: out, m: m, n: n, k: k)
        }
        let dtype: UInt32
        switch w.dtype {
        case .f16: dtype = 1
        case .bf16: dtype = 2
        default: dtype = 0
        }
        let flags: UInt32 = (bias != nil ? 1 : 0) | (accumulate ? 2 : 0)
        // Without a bias, x stands in for binding 2 (the shader never reads it).
        let bindings: [(Tensor, Access)] = [(x, .read), (w, .read), (bias ?? x, .read), (out, accumulate ? .readWrite : .write)]
        let push = [m, n, k, Int(flags), m * k, dims.weightBatched ? n * k : 0, m * n].map { UInt32($0) }
        let config = matmulConfig

        if m <= Self.matmulVectorMaxRows {
            var rows = 1
            while rows < m { rows *= 2 }
            switch layout {
            case .nk:
                let g = groups(n, config.nkColumns)
                try dispatch(op, SPIRV.matmulVecNk,
                             specialization: [UInt32(config.nkThreads), UInt32(rows), UInt32(config.nkColumns), dtype],
                             bindings: bindings, push: push, groups: (g.0, g.1, dims.batch))
            case .kn:
                let g = groups(n, config.knColumns)
                try dispatch(op, SPIRV.matmulVecKn,
                             specialization: [UInt32(config.knThreads), UInt32(rows), UInt32(config.knColumns), dtype],
                             bindings: bindings, push: push, groups: (g.0, g.1, dims.batch))
            }
        } else {
            let c = config
            try dispatch(op, SPIRV.matmulTiled,
                         specialization: [c.tiledThreads, c.bm, c.bn, c.bk, c.tm, c.tn, Int(dtype), layout == .nk ? 0 : 1].map { UInt32($0) },
                         bindings: bindings, push: push,
                         groups: ((n + c.bn - 1) / c.bn, (m + c.bm - 1) / c.bm, dims.batch))
        }
    }
}
