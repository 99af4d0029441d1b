import CTillerKernels
import TillerCore

/// Matmul with ggml-quantized [N, K] weights (q8_0, q4_0, q4_1, q4_K), read in their blocks.
extension CPUBackend {
    /// Up to this many rows of x, the blocks are decoded in registers by tiller_gemv_quant_nk and
    /// stream from memory once; above it, panels of W are dequantized into a cache-sized f32 scratch
    /// and handed to sgemm, whose blocking wins once each weight meets enough rows.
    static let quantizedGEMVMaxRows = 8

    /// The kernels' code for a quantized dtype (CTillerKernels.h).
    static func quantizedTypeCode(_ dtype: DType) -> Int32 {
        switch dtype {
        case .q8_0: return 0
        case .q4_0: return 1
        case .q4_1: return 2
        default: return 3
        }
    }

    /// out[M, N] = x[M, K] . W[N, K]^T + beta * out.
    func quantizedMatmul(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafeRawPointer, dtype: DType,
                         beta: Float, out: UnsafeMutablePointer<Float>) {
        let type = Self.quantizedTypeCode(dtype)
        let rowBytes = dtype.byteCount(elements: k)
        if m <= Self.quantizedGEMVMaxRows {
            // As for the 16-bit kernels: a core is worth waking for about 2^16 bytes of weights
            // streamed, or as much multiply-add work.
            let costPerRow = rowBytes + k * m
            let grain = max(1, (1 << 16) / max(costPerRow, 1))
            if exactQuantizedDecode {
                Parallel.chunks(n, grain: grain) { range in
                    tiller_gemv_quant_nk(x, m, k, w, type, range.lowerBound, range.upperBound, out, n, beta == 0 ? 0 : 1)
                }
                return
            }
            // x rounded to int8 blocks once, shared by every thread: m * k bytes and two floats per 32.
            let blocks = m * k / 32
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: m * k + 8 * blocks, alignment: 64)
            defer { scratch.deallocate() }
            let d = (scratch + m * k).bindMemory(to: Float.self, capacity: 2 * blocks), s = d + blocks
            let qs = scratch.bindMemory(to: Int8.self, capacity: m * k)
            tiller_quantize_rows_q8(x, m, k, qs, d, s)
            Parallel.chunks(n, grain: grain) { range in
                tiller_gemv_quant_int8_nk(qs, d, s, m, k, w, type, range.lowerBound, range.upperBound, out, n, beta == 0 ? 0 : 1)
            }
            return
        }
        // A panel is `rows` consecutive output columns (W rows j0..<j0+rows, all of K), about 1 MiB of f32.
        let rows = max(16, min(n, (1 << 18) / k))
        let panel = UnsafeMutablePointer<Float>.allocate(capacity: rows * k)
        defer { panel.deallocate() }
        let blocksPerRow = k / dtype.blockElements
        var j0 = 0
        while j0 < n {
            let count = min(rows, n - j0)
            Parallel.chunks(count, grain: 8) { r in
                tiller_dequantize_blocks(w + (j0 + r.lowerBound) * rowBytes, type, r.count * blocksPerRow, panel + r.lowerBound * k)
            }
            sgemm(m: m, n: count, k: k, x: x, w: panel, ldw: k, layout: .nk, beta: beta, out: out + j0, ldo: n)
            j0 += count
        }
    }
}
