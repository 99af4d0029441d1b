import TillerCore

/// Stolfo et al., "Improving Instruction-Following in Language Models through Activation
/// Steering" (ICLR 2025), as their code does it (microsoft/llm-steer-instruct:
/// ifeval_experiments/precompute_ivs.py computes the direction and the value,
/// utils/generation_utils.py `adjust_vectors` applies them):
/// - u = the mean over examples of the last-token difference (with minus without the
///   instruction), normalised. Here: the rows with role 1 (the last prompt token, one per
///   triplet), u = normalise(mean Delta_t).
/// - c_bar = the mean projection on u of the instructed activations at that same last token:
///   mean over the role-1 rows of (h_t + Delta_t) . u. (`cBarRows: .fitRows` takes the mean over
///   every row of `data` instead, e.g. the answer rows.)
/// - Every steered position's projection on u is set to c_bar: h' = h + (c_bar - h . u) u, the
///   head `SteeringHead.projection(u:cBar:)` at alpha 1.
public enum StolfoProjection {
    public enum CBarRows: String, Sendable, CaseIterable {
        /// The last prompt token of each triplet (role 1), as Stolfo et al.
        case lastPrompt = "last_prompt"
        /// Every row the method is fitted on.
        case fitRows = "fit_rows"
    }

    public struct Result: Sendable {
        public var u: [Float]
        public var cBar: Float
        /// The examples (role-1 rows) u was averaged over.
        public var exampleCount: Int
    }

    public static func direction(_ data: LayerActivations, cBarRows: CBarRows = .lastPrompt, backend: any Backend) throws -> Result {
        let last = data.rows(role: 1)
        guard !last.isEmpty else {
            throw TillerError.invalidArgument(op: "stolfo", detail: "layer \(data.layer): no last-prompt-token rows (role 1) among the \(data.rowCount) rows")
        }
        let mean = try FitOps.meanRows(data.delta, last, backend: backend)
        let norm = FitOps.norm(mean)
        guard norm > 0, norm.isFinite else {
            throw TillerError.invalidArgument(op: "stolfo", detail: "layer \(data.layer): the mean last-token difference is \(norm), no direction")
        }
        let u = mean.map { Float(Double($0) / norm) }
        let projH = try FitOps.rowDots(data.h, u, backend: backend)
        let projD = try FitOps.rowDots(data.delta, u, backend: backend)
        let rows = cBarRows == .lastPrompt ? last : Array(0..<data.rowCount)
        let cBar = rows.reduce(0.0) { $0 + Double(projH[$1]) + Double(projD[$1]) } / Double(rows.count)
        return Result(u: u, cBar: Float(cBar), exampleCount: last.count)
    }

    /// The projection head and its relative RMSE on the rows of `data` (which must include the
    /// role-1 rows: `FitRows.answer` or `.all`).
    public static func fit(_ data: LayerActivations, cBarRows: CBarRows = .lastPrompt, backend: any Backend) throws -> MethodFit {
        let r = try direction(data, cBarRows: cBarRows, backend: backend)
        let head = SteeringHead.projection(u: r.u, cBar: r.cBar)
        return MethodFit(method: .stolfo, layer: data.layer, head: head, rowCount: data.rowCount,
                         relativeRMSE: try FitEvaluation.relativeRMSE(head, on: data, backend: backend),
                         details: ["c_bar": Double(r.cBar), "examples": Double(r.exampleCount)])
    }
}
