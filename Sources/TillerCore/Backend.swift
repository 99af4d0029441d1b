/// How a matmul weight is laid out in memory.
public enum WeightLayout: String, Sendable {
    /// [N, K]: the layout of a Hugging Face `nn.Linear` weight (out_features, in_features).
    case nk
    /// [K, N]: a plain matrix.
    case kn
}

/// Per-sequence positions for a padded batch [B, T, ...]: sequence b occupies rows
/// 0..<lengths[b] of its T slots, and its first row sits at absolute position starts[b]
/// (the number of tokens already in its KV cache). Rows at or past lengths[b] are padding.
public struct SequenceBatch: Sendable, Equatable {
    public var starts: [Int]
    public var lengths: [Int]

    public init(starts: [Int], lengths: [Int]) {
        self.starts = starts
        self.lengths = lengths
    }

    /// A fresh prefill: nothing cached yet.
    public init(lengths: [Int]) {
        self.init(starts: Array(repeating: 0, count: lengths.count), lengths: lengths)
    }

    public var count: Int { lengths.count }
}

public struct AttentionOptions: Sendable, Equatable {
    /// Multiplies q.k before the soft-cap and softmax (1/sqrt(head_dim) for Llama,
    /// query_pre_attn_scalar^-1/2 for Gemma-2).
    public var scale: Float
    /// When set, query at position p sees keys at positions p - window + 1 ... p (Mistral, Gemma-2).
    public var slidingWindow: Int?
    /// When set, scores become cap * tanh(score / cap) before the softmax (Gemma-2).
    public var softcap: Float?

    public init(scale: Float, slidingWindow: Int? = nil, softcap: Float? = nil) {
        self.scale = scale
        self.slidingWindow = slidingWindow
        self.softcap = softcap
    }
}

/// The coefficient function f of the PSR head: lambda = f(w . h + b).
public enum PSRActivation: Int32, Sendable, CaseIterable {
    /// PSR proper: tokens can get exactly zero.
    case relu = 0
    /// Stolfo et al.'s projection (w = -u, b = c_bar, z = u).
    case identity = 1
    /// Constant steering (ActAdd, CAA, DiffMean): lambda = 1 whatever the activation.
    case constant = 2
}

/// K steering heads that one batch can mix: head k is (w[k], bias[k], z[k], activation[k]).
public struct PSRHeads {
    public var w: Tensor          // f32 [K, d]
    public var bias: Tensor       // f32 [K]
    public var z: Tensor          // f32 [K, d]
    public var activation: Tensor // i32 [K], PSRActivation raw values

    public init(w: Tensor, bias: Tensor, z: Tensor, activation: Tensor) {
        self.w = w
        self.bias = bias
        self.z = z
        self.activation = activation
    }

    public var count: Int { w.shape.first ?? 0 }
}

public enum GatedActivation: String, Sendable, CaseIterable {
    /// silu(gate) * up: Llama, Qwen2, Mistral.
    case silu
    /// gelu_pytorch_tanh(gate) * up: Gemma-2.
    case geluTanh
}

/// Where every model, steering and training computation runs.
///
/// Ops take their outputs as arguments (shapes explicit, nothing allocated behind the caller's
/// back) and may be recorded rather than run at once: a GPU backend records a whole forward pass
/// and submits it at `synchronize()`. `download` always sees the results of every op before it.
/// All activations are f32; weights (matmul, embedding, norm weights) may be f32, f16 or bf16.
/// Every op throws `TillerError` on a shape, dtype or index problem, naming the op and the shapes.
public protocol Backend: AnyObject {
    /// Short identifier: "reference", "cpu", "vulkan".
    var name: String { get }
    /// The device in words, for `tiller info` and benchmark reports.
    var deviceDescription: String { get }

    // MARK: Memory
    func makeBuffer(byteCount: Int) throws -> DeviceBuffer
    func upload(_ bytes: UnsafeRawBufferPointer, to tensor: Tensor) throws
    func download(_ tensor: Tensor, into bytes: UnsafeMutableRawBufferPointer) throws
    /// Runs everything recorded so far and waits for it.
    func synchronize() throws

    // MARK: Linear algebra
    /// out = x . W (+ bias) (+ out when accumulate). x: f32 [..., M, K]; W: [N, K] (layout .nk) or
    /// [K, N] (.kn) in f32/f16/bf16, or batched [B, N, K] / [B, K, N] with x [B, M, K];
    /// bias: f32 [N]; out: f32 [..., M, N].
    func matmul(_ x: Tensor, _ w: Tensor, layout: WeightLayout, bias: Tensor?, accumulate: Bool, out: Tensor) throws

    /// Causal grouped-query attention over a padded batch. q: f32 [B, T, Hq, D];
    /// k, v: f32 [B, S, Hkv, D] (the KV cache, already holding the new rows); out: f32 [B, T, Hq, D].
    /// Query row t of sequence b sits at position starts[b] + t and sees keys 0...that position
    /// (within the sliding window). Padding rows (t >= lengths[b]) come out as zeros.
    func attention(q: Tensor, k: Tensor, v: Tensor, batch: SequenceBatch, options: AttentionOptions, out: Tensor) throws

    /// Copies rows 0..<lengths[b] of new [B, T, ...] into cache [B, S, ...] at rows starts[b]...
    func cacheAppend(_ new: Tensor, into cache: Tensor, batch: SequenceBatch) throws

    /// The PSR coefficient head, in place on h: f32 [N, d]. For each row n with k = headIndex[n]
    /// (i32 [N], -1 for none): lambda[n] = f_k(w[k] . h[n] + bias[k]), then
    /// h[n] += alpha[n] * lambda[n] * z[k]. alpha: f32 [N]; lambda: f32 [N] out (0 where no head).
    func psrHead(_ h: Tensor, heads: PSRHeads, headIndex: Tensor, alpha: Tensor, lambda: Tensor) throws

    // MARK: The rest of a transformer forward
    /// out[n] = table[ids[n]] * scale. table: [V, d] f32/f16/bf16; ids: i32 [N]; out: f32 [N, d].
    func embedding(table: Tensor, ids: Tensor, scale: Float, out: Tensor) throws
    /// out = x / rms(x) * w, or * (1 + w) with unitOffset (Gemma). x, out: f32 [..., d]; w: [d].
    func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, unitOffset: Bool, out: Tensor) throws
    /// Rotary embedding in place, in transformers' rotate_half layout: dimension i pairs with
    /// i + D/2. x: f32 [..., H, D]; positions: i32 with one entry per row of H*D;
    /// inverseFrequencies: f32 [D/2] (see RoPEScaling).
    func rope(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws
    /// out = act(gate) * up, all f32 of one shape.
    func gatedActivation(_ kind: GatedActivation, gate: Tensor, up: Tensor, out: Tensor) throws
    /// out = a + b, where b has a's shape or is one row [d] added to every row.
    func add(_ a: Tensor, _ b: Tensor, out: Tensor) throws
    /// out = a * b, where b has a's shape or is one row [d] multiplied into every row.
    func mul(_ a: Tensor, _ b: Tensor, out: Tensor) throws
    /// out = x * factor.
    func scale(_ x: Tensor, by factor: Float, out: Tensor) throws
    /// Row-wise softmax over the last dimension.
    func softmax(_ x: Tensor, out: Tensor) throws
    /// out = cap * tanh(x / cap).
    func softcap(_ x: Tensor, cap: Float, out: Tensor) throws
    /// out[m] = x[indices[m]]. x: f32 [N, d]; indices: i32 [M]; out: f32 [M, d].
    func gatherRows(_ x: Tensor, indices: Tensor, out: Tensor) throws
    /// Same-dtype copy of equal element counts.
    func copy(_ src: Tensor, to dst: Tensor) throws

    // MARK: Sampling support
    /// Index of the largest value per row (the first on ties). x: f32 [N, C]; out: i32 [N].
    func argmax(_ x: Tensor, out: Tensor) throws
    /// The k largest values per row, sorted descending (lower index first on ties).
    /// x: f32 [N, C]; values: f32 [N, k]; indices: i32 [N, k].
    func topK(_ x: Tensor, k: Int, values: Tensor, indices: Tensor) throws

    // MARK: Reductions for steering
    /// out[n] = a[n] . b[n] (or a[n] . b when b is one row [d]). out: f32 [N].
    func rowDot(_ a: Tensor, _ b: Tensor, out: Tensor) throws
    /// out[n] = ||x[n]||_2. out: f32 [N].
    func rowNorm(_ x: Tensor, out: Tensor) throws
    /// out = mean of rows x[indices[m]]. x: f32 [N, d]; indices: i32 [M], M >= 1; out: f32 [d].
    func meanRows(_ x: Tensor, indices: Tensor, out: Tensor) throws
}
