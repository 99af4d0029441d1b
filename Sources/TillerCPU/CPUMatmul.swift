import COpenBLAS
import CTillerKernels
import TillerCore

extension CPUBackend {
    public func matmul(_ x: Tensor, _ w: Tensor, layout: WeightLayout, bias: Tensor?, accumulate: Bool, out: Tensor) throws {
        let dims = try OpShapes.matmul(x, w, layout: layout, bias: bias, out: out)
        let xp = try floats("matmul", x), op = try floats("matmul", out)
        let biasPointer = try bias.map { try floats("matmul", $0) }
        let (m, n, k) = (dims.m, dims.n, dims.k)
        let weightStride = dims.weightBatched ? n * k : 0
        try BLASLock.shared.withLock {
            for b in 0..<dims.batch {
                let xb = xp + b * m * k, ob = op + b * m * n
                // Bias goes into the output first so sgemm can add the product with beta = 1.
                var beta: Float = accumulate ? 1 : 0
                if let biasPointer {
                    for i in 0..<m {
                        if accumulate { axpy(1, biasPointer, ob + i * n, n) } else { (ob + i * n).update(from: biasPointer, count: n) }
                    }
                    beta = 1
                }
                if w.dtype.isQuantized {
                    // Blocks decoded in the kernel (not batch invariant: m > 8 takes sgemm on panels).
                    quantizedMatmul(m: m, n: n, k: k, x: xb, w: try hostPointer("matmul", w), dtype: w.dtype, beta: beta, out: ob)
                    continue
                }
                if layout == .nk && (m <= Self.batchedDecodeMaxRows || batchInvariant) {
                    let wb = try hostPointer("matmul", w) + b * weightStride * w.dtype.byteSize
                    if m <= Self.streamingMaxRows || batchInvariant {
                        streamingMatmul(m: m, n: n, k: k, x: xb, w: wb, dtype: w.dtype, beta: beta, out: ob)
                    } else {
                        batchedDecodeMatmul(m: m, n: n, k: k, x: xb, w: wb, dtype: w.dtype, beta: beta, out: ob)
                    }
                    continue
                }
                switch w.dtype {
                case .f32:
                    let wb = try floats("matmul", w) + b * weightStride
                    sgemm(m: m, n: n, k: k, x: xb, w: wb, ldw: layout == .nk ? k : n, layout: layout, beta: beta, out: ob, ldo: n)
                default:
                    let wb = try halves("matmul", w) + b * weightStride
                    let isBF16 = w.dtype == .bf16
                    if m <= Self.gemvMaxRows {
                        halfGEMV(m: m, n: n, k: k, x: xb, w: wb, isBF16: isBF16, layout: layout, beta: beta, out: ob)
                    } else {
                        halfGEMM(m: m, n: n, k: k, x: xb, w: wb, isBF16: isBF16, layout: layout, beta: beta, out: ob)
                    }
                }
            }
        }
    }

    /// With few rows of x, sgemm's repacking of all of W on every call costs more than the product
    /// (M = 1 ran at a third of the memory bandwidth, M = 32 at a quarter of sgemm's peak), so [N, K]
    /// weights of any dtype go through Tiller's own kernels: up to `streamingMaxRows` rows the
    /// dot-product kernel (memory-bound: weights stream once), up to `batchedDecodeMaxRows` the
    /// outer-product kernel on a transposed copy of x (compute-bound: no horizontal sums).
    static let streamingMaxRows = 8
    static let batchedDecodeMaxRows = 48

    func weightTypeCode(_ dtype: DType) -> Int32 { dtype == .f32 ? 0 : dtype == .bf16 ? 1 : 2 }

    /// out[M, N] = x[M, K] . W[N, K]^T + beta * out through tiller_matmul_nk, output columns split
    /// across cores in multiples of the kernel's 4-row weight blocks.
    func streamingMatmul(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafeRawPointer, dtype: DType,
                         beta: Float, out: UnsafeMutablePointer<Float>) {
        let type = weightTypeCode(dtype)
        // A second core is worth its hand-off (a few microseconds on the pool) from about 2^16
        // bytes of weights streamed, or as much multiply-add work.
        let groups = (n + 3) / 4
        let costPerGroup = 4 * k * (dtype.byteSize + m)
        Parallel.chunks(groups, grain: max(1, (1 << 16) / max(costPerGroup, 1))) { range in
            tiller_matmul_nk(x, m, k, w, type, range.lowerBound * 4, min(n, range.upperBound * 4), out, n, beta == 0 ? 0 : 1)
        }
    }

    /// out[M, N] = x[M, K] . W[N, K]^T + beta * out through tiller_matmul_xt: x is transposed once,
    /// then output columns are split across cores in whole tiles.
    func batchedDecodeMatmul(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafeRawPointer, dtype: DType,
                             beta: Float, out: UnsafeMutablePointer<Float>) {
        let type = weightTypeCode(dtype)
        let width = tiller_xt_width(m)
        let xt = UnsafeMutablePointer<Float>.allocate(capacity: k * width)
        defer { xt.deallocate() }
        tiller_pack_xt(x, m, k, xt)
        let tileRows = tiller_xt_tile_rows(m)
        let groups = (n + tileRows - 1) / tileRows
        let costPerGroup = tileRows * k * (dtype.byteSize + m)
        Parallel.chunks(groups, grain: max(1, (1 << 18) / max(costPerGroup, 1))) { range in
            // 16-bit tiles are widened into this buffer (at least 4 rows: the kernel's tail tiles).
            let buffer = dtype == .f32 ? nil : UnsafeMutablePointer<Float>.allocate(capacity: max(tileRows, 4) * k)
            defer { buffer?.deallocate() }
            tiller_matmul_xt(xt, m, k, w, type, range.lowerBound * tileRows, min(n, range.upperBound * tileRows),
                             buffer, out, n, beta == 0 ? 0 : 1)
        }
    }

    /// Up to this many rows, 16-bit weights are read once by a fused widen-and-dot kernel; above
    /// it, panels of W are widened into a cache-sized f32 scratch and handed to sgemm.
    static let gemvMaxRows = 8

    /// out[M, N] = x[M, K] . W + beta * out, W given as [N, K] (.nk) or [K, N] (.kn) with leading dimension ldw.
    func sgemm(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>, ldw: Int,
               layout: WeightLayout, beta: Float, out: UnsafeMutablePointer<Float>, ldo: Int, lda: Int? = nil) {
        // OpenBLAS runs its own threads: Tiller's pool workers must not spin on their cores meanwhile.
        tiller_pool_park()
        cblas_sgemm(CblasRowMajor, CblasNoTrans, layout == .nk ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, x, Int32(lda ?? k), w, Int32(ldw), beta, out, Int32(ldo))
    }

    /// Decode-shaped matmul with 16-bit weights: each weight row is widened once into a small
    /// per-thread buffer and dotted with every row of x, so W streams from memory exactly once.
    func halfGEMV(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<UInt16>, isBF16: Bool,
                  layout: WeightLayout, beta: Float, out: UnsafeMutablePointer<Float>) {
        switch layout {
        case .nk:
            // A thread is worth waking for about 2^20 weights (1 MiB of bf16) or more.
            Parallel.chunks(n, grain: max(16, (1 << 20) / max(k * m, 1))) { range in
                tiller_gemv16_nk(x, m, k, w, isBF16 ? 1 : 0, range.lowerBound, range.upperBound, out, n, beta == 0 ? 0 : 1)
            }
        case .kn:
            // Columns are split across threads; each streams its slice of every weight row.
            Parallel.chunks(n, grain: 64) { range in
                let width = range.count
                let row = UnsafeMutablePointer<Float>.allocate(capacity: width)
                defer { row.deallocate() }
                if beta == 0 {
                    for i in 0..<m { (out + i * n + range.lowerBound).update(repeating: 0, count: width) }
                }
                for p in 0..<k {
                    widen(w + p * n + range.lowerBound, isBF16: isBF16, row, width)
                    for i in 0..<m { axpy(x[i * k + p], row, out + i * n + range.lowerBound, width) }
                }
            }
        }
    }

    /// Prefill-shaped matmul with 16-bit weights: widen one panel of W at a time (about 1 MiB of
    /// f32, so it stays in cache) and multiply it with sgemm.
    func halfGEMM(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<UInt16>, isBF16: Bool,
                  layout: WeightLayout, beta: Float, out: UnsafeMutablePointer<Float>) {
        let panelElements = 1 << 20
        switch layout {
        case .nk:
            // A panel is `rows` consecutive output columns: W rows j0..<j0+rows, all of K.
            let rows = max(16, min(n, panelElements / k))
            let panel = UnsafeMutablePointer<Float>.allocate(capacity: rows * k)
            defer { panel.deallocate() }
            var j0 = 0
            while j0 < n {
                let count = min(rows, n - j0)
                Parallel.chunks(count, grain: 8) { r in
                    widen(w + (j0 + r.lowerBound) * k, isBF16: isBF16, panel + r.lowerBound * k, r.count * k)
                }
                sgemm(m: m, n: count, k: k, x: x, w: panel, ldw: k, layout: .nk, beta: beta, out: out + j0, ldo: n)
                j0 += count
            }
        case .kn:
            // A panel is `depth` consecutive rows of W ([depth, N]); products accumulate over K.
            let depth = max(16, min(k, panelElements / n))
            let panel = UnsafeMutablePointer<Float>.allocate(capacity: depth * n)
            defer { panel.deallocate() }
            var p0 = 0
            while p0 < k {
                let count = min(depth, k - p0)
                Parallel.chunks(count, grain: 8) { r in
                    widen(w + (p0 + r.lowerBound) * n, isBF16: isBF16, panel + r.lowerBound * n, r.count * n)
                }
                sgemm(m: m, n: n, k: count, x: x + p0, w: panel, ldw: n, layout: .kn,
                      beta: p0 == 0 ? beta : 1, out: out, ldo: n, lda: k)
                p0 += count
            }
        }
    }
}
