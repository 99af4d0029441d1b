import Foundation
import TillerCore

/// A backend that forwards every op to another one and adds up the wall time of each op (matmuls
/// by shape and weight dtype), for `tiller-bench --model DIR --profile`: where a forward pass
/// spends its time. Only meaningful on a backend that runs ops eagerly (the CPU backend).
final class ProfilingBackend: Backend {
    let inner: Backend
    private(set) var seconds: [String: Double] = [:]
    private(set) var calls: [String: Int] = [:]

    /// Ops are only counted while recording (the timed part of a workload).
    var recording = false

    init(_ inner: Backend) { self.inner = inner }

    var name: String { inner.name }
    var deviceDescription: String { inner.deviceDescription }

    func reset() { seconds = [:]; calls = [:] }

    /// The ops by total time, largest first, as lines of a report.
    func summary(total: Double? = nil) -> [String] {
        let all = seconds.values.reduce(0, +)
        let base = total ?? all
        var lines = seconds.sorted { $0.value > $1.value }.map { key, value in
            String(format: "%8.1f ms %5.1f%% %7d calls  %@", value * 1000, 100 * value / base, calls[key] ?? 0, key)
        }
        if let total {
            lines.append(String(format: "%8.1f ms %5.1f%%                outside the ops", (total - all) * 1000, 100 * (total - all) / total))
        }
        return lines
    }

    @inline(__always) private func time<R>(_ key: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard recording else { return try body() }
        let start = monotonicSeconds()
        defer {
            let k = key()
            seconds[k, default: 0] += monotonicSeconds() - start
            calls[k, default: 0] += 1
        }
        return try body()
    }

    func makeBuffer(byteCount: Int) throws -> DeviceBuffer { try time("makeBuffer") { try inner.makeBuffer(byteCount: byteCount) } }
    func upload(_ bytes: UnsafeRawBufferPointer, to tensor: Tensor) throws { try time("upload") { try inner.upload(bytes, to: tensor) } }
    func download(_ tensor: Tensor, into bytes: UnsafeMutableRawBufferPointer) throws {
        try time("download") { try inner.download(tensor, into: bytes) }
    }
    func synchronize() throws { try time("synchronize") { try inner.synchronize() } }

    func matmul(_ x: Tensor, _ w: Tensor, layout: WeightLayout, bias: Tensor?, accumulate: Bool, out: Tensor) throws {
        try time("matmul \(w.dtype) M=\(x.rows) N=\(out.columns) K=\(x.columns)") {
            try inner.matmul(x, w, layout: layout, bias: bias, accumulate: accumulate, out: out)
        }
    }
    func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws {
        try time("attention B=\(q.shape[0]) T=\(q.shape[1])") { try inner.attention(q: q, k: k, v: v, batch: batch, options: options, out: out) }
    }
    func cacheAppend(_ new: Tensor, into cache: Tensor, batch: SequenceBatch) throws {
        try time("cacheAppend") { try inner.cacheAppend(new, into: cache, batch: batch) }
    }
    func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws {
        try time("psrHead") { try inner.psrHead(h, heads: heads, headIndex: headIndex, alpha: alpha, lambda: lambda) }
    }
    func embedding(table: Tensor, ids: Tensor, scale: Float, out: Tensor) throws {
        try time("embedding") { try inner.embedding(table: table, ids: ids, scale: scale, out: out) }
    }
    func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, out: Tensor) throws {
        try time("rmsNorm") { try inner.rmsNorm(x, weight: weight, eps: eps, unitOffset: unitOffset, out: out) }
    }
    func rope(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws {
        try time("rope") { try inner.rope(x, positions: positions, inverseFrequencies: inverseFrequencies) }
    }
    func gatedActivation(_ kind: GatedActivation, gate: Tensor, up: Tensor, out: Tensor) throws {
        try time("gatedActivation") { try inner.gatedActivation(kind, gate: gate, up: up, out: out) }
    }
    func add(_ a: Tensor, _ b: Tensor, out: Tensor) throws { try time("add") { try inner.add(a, b, out: out) } }
    func mul(_ a: Tensor, _ b: Tensor, out: Tensor) throws { try time("mul") { try inner.mul(a, b, out: out) } }
    func scale(_ x: Tensor, by factor: Float, out: Tensor) throws { try time("scale") { try inner.scale(x, by: factor, out: out) } }
    func softmax(_ x: Tensor, out: Tensor) throws { try time("softmax") { try inner.softmax(x, out: out) } }
    func softcap(_ x: Tensor, cap: Float, out: Tensor) throws { try time("softcap") { try inner.softcap(x, cap: cap, out: out) } }
    func gatherRows(_ x: Tensor, indices: Tensor, out: Tensor) throws { try time("gatherRows") { try inner.gatherRows(x, indices: indices, out: out) } }
    func copy(_ src: Tensor, to dst: Tensor) throws { try time("copy") { try inner.copy(src, to: dst) } }
    func argmax(_ x: Tensor, out: Tensor) throws { try time("argmax") { try inner.argmax(x, out: out) } }
    func topK(_ x: Tensor, k: Int, values: Tensor, indices: Tensor) throws {
        try time("topK") { try inner.topK(x, k: k, values: values, indices: indices) }
    }
    func rowDot(_ a: Tensor, _ b: Tensor, out: Tensor) throws { try time("rowDot") { try inner.rowDot(a, b, out: out) } }
    func rowNorm(_ x: Tensor, out: Tensor) throws { try time("rowNorm") { try inner.rowNorm(x, out: out) } }
    func meanRows(_ x: Tensor, indices: Tensor, out: Tensor) throws { try time("meanRows") { try inner.meanRows(x, indices: indices, out: out) } }
}
