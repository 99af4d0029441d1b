import TillerCore
import TillerModels

/// One intervention applied to one sequence: which (an index into `SteeringHook.interventions`),
/// how strongly and where. nil takes the intervention's own alpha or location.
public struct SteeringApplication: Sendable, Equatable {
    public var intervention: Int
    public var alpha: Float?
    public var location: SteeringLocation?

    public init(intervention: Int, alpha: Float? = nil, location: SteeringLocation? = nil) {
        self.intervention = intervention
        self.alpha = alpha
        self.location = location
    }
}

/// How one sequence (one generation request) is steered: its interventions, applied in order
/// (two on the same layer are two PSR head calls, the second seeing the stream the first left),
/// and the length of its system prompt, which `SteeringLocation.questionAndAnswer` leaves out.
/// Prompt steering is the prompt's text; a PSR head on top of it is one application here.
public struct SequenceSteering: Sendable, Equatable {
    public var applications: [SteeringApplication]
    /// Tokens of the prompt that are the system prompt (0 when it has none).
    public var systemLength: Int

    public init(_ applications: [SteeringApplication] = [], systemLength: Int = 0) {
        self.applications = applications
        self.systemLength = systemLength
    }

    public static let unsteered = SequenceSteering()
}

/// A coefficient the head of one application computed at one layer and position:
/// lambda_t = f(w . h_t + b) from the stream before the head added alpha * lambda_t * z.
public struct LambdaRecord: Sendable, Equatable {
    public var layer: Int
    /// Index of the application in the sequence's `SequenceSteering.applications`.
    public var application: Int
    public var position: Int
    public var lambda: Float

    public init(layer: Int, application: Int, position: Int, lambda: Float) {
        self.layer = layer
        self.application = application
        self.position = position
        self.lambda = lambda
    }
}

/// Steering in the forward pass: the residual-stream hook that applies every intervention through
/// the backend's PSR head op, during prefill and decode, each sequence of a batch its own way.
///
/// The heads of every intervention are uploaded once, stacked per layer (`PSRHeads`, one head per
/// intervention with a head at that layer). Before each pass (`prepare`) the hook works out, for
/// every layer, the rows of the padded batch [B * T] each application acts on: row t of sequence
/// b sits at position starts[b] + t, and is steered when the application's location covers that
/// position given the request's prompt length and system-prompt length; padding rows and
/// uncovered rows take head index -1. A layer needs as many PSR head calls as the most
/// applications any live sequence has there; layers no live sequence steers cost nothing. All
/// head indices and alphas of a pass go up in one upload each before its first op, and are not
/// uploaded again while they do not change (a decode step usually reuses the last one's).
///
/// With `Generator.generate(requests, hook:)`, `requests[i]` says how request i is steered; the
/// generator tells the hook which slot holds which request. Used on `TransformerModel.forward`
/// directly, call `assign(slot:request:promptLength:)` for each sequence of the batch (and
/// `prepare(for:backend:)` before the pass on a device backend, or the hook prepares at the first
/// block, which makes such a backend wait there).
public final class SteeringHook: GenerationHook {
    public let interventions: [Intervention]
    public let backend: Backend
    public let hiddenSize: Int
    public let layerCount: Int
    /// How request i is steered; requests past the end are unsteered. Set with `setRequests`.
    public private(set) var requests: [SequenceSteering]
    /// When set, the coefficients of this request's applications are kept, per layer and
    /// position, for `recordedLambdas()` (prefill and decode alike).
    public var recordedRequest: Int? {
        didSet { if recordedRequest != oldValue { pendingRecord = nil; records = [] } }
    }

    /// Per layer: the stacked heads (nil where no intervention has one) and the head index of
    /// each intervention there.
    private let layerHeads: [PSRHeads?]
    /// headIndexOf[layer][intervention]: the head's index in that layer's stack, -1 for none.
    private let headIndexOf: [[Int32]]

    private struct Assignment: Equatable {
        var request: Int
        var promptLength: Int
    }
    private var slots: [Assignment?] = []
    /// Bumped whenever slots or requests change, so a prepared plan is known to be stale.
    private var version = 0

    /// The plan of the last prepared pass, kept in place and rebuilt into scratch arrays that
    /// are swapped in, so a decode step allocates nothing. Call c (in layer order) reads rows
    /// c*N..<(c+1)*N of the uploaded head indices and alphas and writes the same rows of the lambdas.
    private var planStep: ForwardStep?
    private var planVersion = -1
    /// Per layer: its first call and how many it has (a layer's calls are consecutive).
    private var callStart: [Int] = [], callCount: [Int] = []
    /// Per call: its layer.
    private var callLayer: [Int] = []
    /// Per call and row: head index, alpha, and the index of the application in its sequence's
    /// `SequenceSteering` (-1: none, for the lambda record). `indices` and `alphas` are what the
    /// index and alpha buffers hold once `uploadedValid`.
    private var indices: [Int32] = [], alphas: [Float] = [], applications: [Int32] = []
    /// Which request each slot held.
    private var planSlots: [Assignment?] = []
    private var headIndexTensor: Tensor?, alphaTensor: Tensor?, lambdaTensor: Tensor?
    /// Per call: its rows of the three tensors, for a pass of `viewRows` rows (made again only when
    /// the tensors, the number of calls or the rows change, so a decode step makes no views).
    private var callViews: [(headIndex: Tensor, alpha: Tensor, lambda: Tensor)] = []
    private var viewRows = -1
    /// The next plan, built here and swapped with the one above.
    private var nextCallStart: [Int] = [], nextCallCount: [Int] = [], nextCallLayer: [Int] = []
    private var nextIndices: [Int32] = [], nextAlphas: [Float] = [], nextApplications: [Int32] = []
    private var callHasRows: [Bool] = []
    private var uploadedValid = false
    private var indexBuffer: DeviceBuffer?, alphaBuffer: DeviceBuffer?, lambdaBuffer: DeviceBuffer?

    /// What reading a pass's lambdas needs, kept when the recorded request was in it.
    private struct RecordedPass {
        var step: ForwardStep
        var callLayer: [Int]
        var applications: [Int32]
        var slots: [Assignment?]
        var lambda: Tensor
    }
    /// The last pass when the recorded request was in it; its lambdas are read after it ran.
    private var pendingRecord: RecordedPass?
    private var records: [LambdaRecord] = []
    /// The layer of the last `afterBlock` call: a call at a layer not above it starts a new pass.
    private var lastLayer = Int.max
    /// Each row's sum of squares after the heads of every steered layer of the last pass, at
    /// layer * rows (`nonFiniteSlots`), and the layers written in it.
    private var sumSquareBuffer: DeviceBuffer?
    private var checkedLayers: [Int] = []
    private var checkedStep: ForwardStep?

    /// - Parameters:
    ///   - interventions: every intervention any request uses; checked against the model's
    ///     hidden size and layer count, and for finite values.
    ///   - requests: how each request is steered (see `setRequests`).
    public init(interventions: [Intervention], requests: [SequenceSteering] = [], backend: Backend,
                hiddenSize: Int, layerCount: Int) throws {
        for (i, intervention) in interventions.enumerated() {
            try Self.check(intervention, index: i, hiddenSize: hiddenSize, layerCount: layerCount)
        }
        self.interventions = interventions
        self.backend = backend
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        var heads: [PSRHeads?] = [], indexOf: [[Int32]] = []
        for layer in 0..<layerCount {
            var w: [Float] = [], bias: [Float] = [], z: [Float] = [], kinds: [PSRActivation] = []
            var map = [Int32](repeating: -1, count: interventions.count)
            for (i, intervention) in interventions.enumerated() {
                guard let head = intervention.heads[layer] else { continue }
                map[i] = Int32(kinds.count)
                w += head.w
                bias.append(head.bias)
                z += head.z
                kinds.append(head.activation)
            }
            heads.append(kinds.isEmpty ? nil : try backend.psrHeads(w: w, bias: bias, z: z, activations: kinds, dim: hiddenSize))
            indexOf.append(map)
        }
        self.layerHeads = heads
        self.headIndexOf = indexOf
        self.requests = []
        try setRequests(requests)
    }

    /// A hook for `model`'s hidden size, layer count and backend.
    public convenience init(model: TransformerModel, interventions: [Intervention], requests: [SequenceSteering] = []) throws {
        try self.init(interventions: interventions, requests: requests, backend: model.backend,
                      hiddenSize: model.hiddenSize, layerCount: model.layerCount)
    }

    /// How each request is steered (index i: request i of the next `generate` call), checked:
    /// every application names one of `interventions`, alphas are finite, system lengths >= 0.
    public func setRequests(_ requests: [SequenceSteering]) throws {
        for (r, steering) in requests.enumerated() {
            func bad(_ detail: String) -> TillerError { .invalidArgument(op: "steering", detail: "request \(r): \(detail)") }
            guard steering.systemLength >= 0 else { throw bad("system length \(steering.systemLength) must be >= 0") }
            for application in steering.applications {
                guard interventions.indices.contains(application.intervention) else {
                    throw bad("intervention \(application.intervention) of \(interventions.count)")
                }
                if let alpha = application.alpha, !alpha.isFinite { throw bad("alpha \(alpha) is not finite") }
            }
        }
        self.requests = requests
        version += 1
    }

    private static func check(_ intervention: Intervention, index: Int, hiddenSize: Int, layerCount: Int) throws {
        func bad(_ detail: String) -> TillerError {
            .invalidArgument(op: "steering", detail: "intervention \(index) (\(intervention.method)): \(detail)")
        }
        guard intervention.alpha.isFinite else { throw bad("alpha \(intervention.alpha) is not finite") }
        for (layer, head) in intervention.heads {
            guard (0..<layerCount).contains(layer) else { throw bad("layer \(layer), the model has \(layerCount) layers") }
            guard head.w.count == hiddenSize, head.z.count == hiddenSize else {
                throw bad("head at layer \(layer) has w of \(head.w.count) and z of \(head.z.count) values, the model's hidden size is \(hiddenSize)")
            }
            guard head.bias.isFinite, head.w.allSatisfy(\.isFinite), head.z.allSatisfy(\.isFinite) else {
                throw bad("head at layer \(layer) holds NaN or Inf")
            }
        }
    }

    // MARK: GenerationHook

    public func assign(slot: Int, request: Int?, promptLength: Int) {
        precondition(slot >= 0, "slot \(slot)")
        if slots.count <= slot { slots += [Assignment?](repeating: nil, count: slot + 1 - slots.count) }
        let new = request.map { Assignment(request: $0, promptLength: promptLength) }
        if slots[slot] != new {
            slots[slot] = new
            version += 1
        }
    }

    public func prepare(for step: ForwardStep, backend: Backend) throws {
        guard backend === self.backend else {
            throw TillerError.wrongBackend(op: "steering", detail: "the hook's heads live on \(self.backend.name), the pass runs on \(backend.name)")
        }
        try flushRecord()
        lastLayer = -1
        checkedLayers.removeAll(keepingCapacity: true)
        if planVersion == version, let planned = planStep {
            if planned == step { return }
            // A decode step after a decode step: the plan holds as it is, only the step moves.
            if sameRowsPastThePrompts(planned, step) { planStep = step; return }
        }

        let b = step.batch.count, t = step.rowsPerSequence, n = b * t
        // Per layer, per call: the head index and alpha of every row, appended to the next plan.
        nextCallStart.removeAll(keepingCapacity: true)
        nextCallCount.removeAll(keepingCapacity: true)
        nextCallLayer.removeAll(keepingCapacity: true)
        nextIndices.removeAll(keepingCapacity: true)
        nextAlphas.removeAll(keepingCapacity: true)
        nextApplications.removeAll(keepingCapacity: true)
        let live = min(b, slots.count)
        for layer in 0..<layerCount {
            nextCallStart.append(nextCallLayer.count)
            guard layerHeads[layer] != nil else { nextCallCount.append(0); continue }
            let map = headIndexOf[layer]
            // Calls at this layer: the most applications with a head here that a live sequence has.
            var calls = 0
            for s in 0..<live {
                guard let assignment = slots[s], step.batch.lengths[s] > 0, assignment.request < requests.count else { continue }
                var count = 0
                for application in requests[assignment.request].applications where map[application.intervention] >= 0 { count += 1 }
                calls = max(calls, count)
            }
            guard calls > 0 else { nextCallCount.append(0); continue }
            let base = nextIndices.count
            nextIndices.append(contentsOf: repeatElement(-1, count: calls * n))
            nextAlphas.append(contentsOf: repeatElement(0, count: calls * n))
            nextApplications.append(contentsOf: repeatElement(-1, count: calls * n))
            callHasRows.removeAll(keepingCapacity: true)
            callHasRows.append(contentsOf: repeatElement(false, count: calls))
            for s in 0..<live {
                guard let assignment = slots[s], step.batch.lengths[s] > 0, assignment.request < requests.count else { continue }
                let steering = requests[assignment.request]
                // The call-th of this sequence's applications that have a head at this layer
                // goes to call `call`.
                var call = 0
                for (a, application) in steering.applications.enumerated() {
                    let k = map[application.intervention]
                    guard k >= 0 else { continue }
                    defer { call += 1 }
                    let intervention = interventions[application.intervention]
                    let location = application.location ?? intervention.location
                    let alpha = application.alpha ?? intervention.alpha
                    let offset = base + call * n + s * t
                    for r in 0..<min(step.batch.lengths[s], t) {
                        guard location.covers(position: step.batch.starts[s] + r, promptLength: assignment.promptLength,
                                              systemLength: steering.systemLength) else { continue }
                        nextIndices[offset + r] = k
                        nextAlphas[offset + r] = alpha
                        nextApplications[offset + r] = Int32(a)
                        callHasRows[call] = true
                    }
                }
            }
            // A call that steers no row (its rows all outside their locations) is left out.
            for call in (0..<calls).reversed() where !callHasRows[call] {
                let rows = (base + call * n)..<(base + (call + 1) * n)
                nextIndices.removeSubrange(rows)
                nextAlphas.removeSubrange(rows)
                nextApplications.removeSubrange(rows)
            }
            let kept = callHasRows.lazy.filter { $0 }.count
            nextCallCount.append(kept)
            nextCallLayer.append(contentsOf: repeatElement(layer, count: kept))
        }

        var uploaded = false
        if nextCallLayer.isEmpty {
            headIndexTensor = nil
            alphaTensor = nil
            lambdaTensor = nil
            callViews.removeAll()
        } else {
            let count = nextIndices.count
            try reserve(count)
            // Values already in place (most decode steps) are not uploaded again: no op writes
            // these buffers.
            if !uploadedValid || nextIndices != indices || nextAlphas != alphas {
                let indexTensor = try Tensor(buffer: indexBuffer!, shape: [count], dtype: .i32)
                let alphaTensor = try Tensor(buffer: alphaBuffer!, shape: [count], dtype: .f32)
                uploadedValid = false  // until both uploads are done
                try nextIndices.withUnsafeBytes { try backend.upload($0, to: indexTensor) }
                try nextAlphas.withUnsafeBytes { try backend.upload($0, to: alphaTensor) }
            }
            uploaded = true
            if headIndexTensor?.count != count || callViews.count != nextCallLayer.count || viewRows != n {
                let indexTensor = try Tensor(buffer: indexBuffer!, shape: [count], dtype: .i32)
                let alphaTensor = try Tensor(buffer: alphaBuffer!, shape: [count], dtype: .f32)
                let lambdaTensor = try Tensor(buffer: lambdaBuffer!, shape: [count], dtype: .f32)
                headIndexTensor = indexTensor
                self.alphaTensor = alphaTensor
                self.lambdaTensor = lambdaTensor
                callViews = try (0..<nextCallLayer.count).map { call in
                    (try view(indexTensor, call * n, n), try view(alphaTensor, call * n, n), try view(lambdaTensor, call * n, n))
                }
                viewRows = n
            }
        }
        // The next plan becomes the plan; the old one's arrays are the next scratch.
        swap(&callStart, &nextCallStart)
        swap(&callCount, &nextCallCount)
        swap(&callLayer, &nextCallLayer)
        swap(&indices, &nextIndices)
        swap(&alphas, &nextAlphas)
        swap(&applications, &nextApplications)
        // The buffers hold `indices` and `alphas` when this plan has calls (uploaded now or
        // already there); with none, nothing went up for it.
        uploadedValid = uploaded
        planSlots = slots
        planStep = step
        planVersion = version
    }

    /// Whether two steps of the same slots give the same plan because they differ only in where
    /// the sequences start and every live row of both lies past its sequence's prompt and system
    /// prompt: there every location steers a row or not whatever its position (`all`,
    /// `answerOnly` and `questionAndAnswer` steer it, a mask steers it when it steers generated
    /// tokens), so the rows, heads and alphas are the same. Decode steps are such steps.
    private func sameRowsPastThePrompts(_ a: ForwardStep, _ b: ForwardStep) -> Bool {
        guard a.rowsPerSequence == b.rowsPerSequence, a.batch.lengths == b.batch.lengths else { return false }
        for s in 0..<min(b.batch.count, slots.count) where b.batch.lengths[s] > 0 {
            guard let assignment = slots[s], assignment.request < requests.count else { continue }
            let past = max(assignment.promptLength, requests[assignment.request].systemLength)
            guard a.batch.starts[s] >= past, b.batch.starts[s] >= past else { return false }
        }
        return true
    }

    /// Grows the per-pass buffers to hold `count` rows of calls (fresh ones: nothing is uploaded
    /// in them yet).
    private func reserve(_ count: Int) throws {
        if let buffer = indexBuffer, buffer.byteCount >= count * 4 { return }
        let bytes = max(count * 4, 2 * (indexBuffer?.byteCount ?? 0))
        indexBuffer = try backend.makeBuffer(byteCount: bytes)
        alphaBuffer = try backend.makeBuffer(byteCount: bytes)
        lambdaBuffer = try backend.makeBuffer(byteCount: bytes)
        headIndexTensor = nil
        alphaTensor = nil
        lambdaTensor = nil
        callViews.removeAll()
        uploadedValid = false
    }

    public func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
        // A new pass that nobody prepared: read the last one's recorded lambdas before they are
        // overwritten (a device backend waits here; `prepare` before the pass avoids that).
        if layer <= lastLayer { try flushRecord(); checkedLayers.removeAll(keepingCapacity: true) }
        if planVersion != version || planStep != step { try prepare(for: step, backend: backend) }
        lastLayer = layer
        guard layer < callCount.count, callCount[layer] > 0, let heads = layerHeads[layer],
              let lambdaTensor else { return }
        let n = step.rowCount
        guard residual.shape.count == 2, residual.shape[0] == n, residual.shape[1] == hiddenSize else {
            throw TillerError.shapeMismatch(op: "steering", detail: "residual \(residual) for \(n) rows of \(hiddenSize)")
        }
        for call in callStart[layer]..<(callStart[layer] + callCount[layer]) {
            let views = callViews[call]
            try backend.psrHead(residual, heads: heads, headIndex: views.headIndex, alpha: views.alpha, lambda: views.lambda)
        }
        try checkSteeredRows(residual, layer: layer, step: step)
        if let recorded = recordedRequest, layer == callLayer.last, planSlots.contains(where: { $0?.request == recorded }) {
            pendingRecord = RecordedPass(step: step, callLayer: callLayer, applications: applications, slots: planSlots,
                                         lambda: lambdaTensor)
        }
    }

    /// Records each row's sum of squares after this layer's heads: NaN or Inf when the heads made
    /// the row non-finite or so large that the next RMSNorm's squares overflow (a huge alpha gives
    /// a finite stream whose norm is Inf, then all-equal logits and token 0 for ever). One op per
    /// steered layer on the backend, read once per pass by `nonFiniteSlots`.
    private func checkSteeredRows(_ residual: Tensor, layer: Int, step: ForwardStep) throws {
        let n = step.rowCount, bytes = layerCount * n * 4
        if sumSquareBuffer == nil || sumSquareBuffer!.byteCount < bytes {
            sumSquareBuffer = try backend.makeBuffer(byteCount: max(bytes, 2 * (sumSquareBuffer?.byteCount ?? 0)))
            checkedLayers.removeAll(keepingCapacity: true)
        }
        let out = try Tensor(buffer: sumSquareBuffer!, byteOffset: layer * n * 4, shape: [n], dtype: .f32)
        try backend.rowDot(residual, residual, out: out)
        checkedLayers.append(layer)
        checkedStep = step
    }

    /// The slots of the last pass with a row (within its sequence's length) whose sum of squares
    /// after a steered layer is not finite. One download per pass; none when no layer was steered.
    public func nonFiniteSlots() throws -> [Int] {
        guard let last = checkedLayers.max(), let step = checkedStep, let buffer = sumSquareBuffer else { return [] }
        let n = step.rowCount, t = step.rowsPerSequence
        let values = try backend.floats(try Tensor(buffer: buffer, shape: [(last + 1) * n], dtype: .f32))
        let layers = checkedLayers
        checkedLayers.removeAll(keepingCapacity: true)
        var slots: [Int] = []
        for s in 0..<step.batch.count {
            let rows = (s * t)..<(s * t + min(step.batch.lengths[s], t))
            if layers.contains(where: { layer in rows.contains { !values[layer * n + $0].isFinite } }) { slots.append(s) }
        }
        return slots
    }

    private func view(_ t: Tensor, _ offset: Int, _ count: Int) throws -> Tensor {
        try Tensor(buffer: t.buffer, byteOffset: t.byteOffset + offset * t.dtype.byteSize, shape: [count], dtype: t.dtype)
    }

    // MARK: Lambdas

    /// The coefficients recorded for `recordedRequest` so far, in pass order, and within a pass
    /// by layer, application and position.
    public func recordedLambdas() throws -> [LambdaRecord] {
        try flushRecord()
        return records
    }

    /// Reads the lambdas of the last pass (it has run by now: nothing is recorded after it until
    /// the next `prepare`) for the recorded request's rows.
    private func flushRecord() throws {
        guard let pending = pendingRecord else { return }
        pendingRecord = nil
        guard let recorded = recordedRequest,
              let slot = pending.slots.firstIndex(where: { $0?.request == recorded }) else { return }
        let n = pending.step.rowCount, t = pending.step.rowsPerSequence
        let values = try backend.floats(try view(pending.lambda, 0, pending.callLayer.count * n))
        for (call, layer) in pending.callLayer.enumerated() {
            for r in 0..<min(pending.step.batch.lengths[slot], t) {
                let row = slot * t + r, application = Int(pending.applications[call * n + row])
                guard application >= 0 else { continue }
                records.append(LambdaRecord(layer: layer, application: application,
                                            position: pending.step.batch.starts[slot] + r, lambda: values[call * n + row]))
            }
        }
    }
}
