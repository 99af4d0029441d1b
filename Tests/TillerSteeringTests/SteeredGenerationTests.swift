import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels
@testable import TillerSteering

/// Steering in the forward pass and in generation: `SteeringHook` equals the same arithmetic done
/// by hand on the downloaded residual stream (constant, PSR, projection and stacked heads, every
/// location, prefill and decode), a batch that mixes every kind of steering gives each request
/// exactly what it gets alone (greedy and seeded sampling), and alpha 0 is no steering.
@Suite(.serialized) struct SteeredGenerationTests {
    // MARK: Fixtures

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")

    static func model(_ architecture: String, _ backend: Backend = CPUBackend()) throws -> TransformerModel {
        try TransformerModel.load(directory: fixtures.appendingPathComponent(architecture).path, backend: backend)
    }

    /// Deterministic values in [-1, 1).
    static func noise(_ count: Int, seed: UInt64) -> [Float] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float(random.next() >> 40) / Float(1 << 24) * 2 - 1 }
    }

    static func unit(_ v: [Float]) -> [Float] {
        let norm = sqrt(v.reduce(0) { $0 + Double($1) * Double($1) })
        return v.map { Float(Double($0) / norm) }
    }

    /// Token ids in 3..<200 (no fixture's special tokens).
    static func prompt(_ length: Int, seed: UInt64) -> [Int32] {
        var random = SplitMix64(seed: seed)
        return (0..<length).map { _ in Int32(3 + random.next() % 197) }
    }

    /// The interventions the tests use, on a model of hidden size d with two layers, strong
    /// enough to change the fixtures' greedy tokens.
    static func interventions(_ d: Int) -> [Intervention] {
        let u = unit(noise(d, seed: 11))
        return [
            // 0: a constant vector at layer 0.
            Intervention(method: "diffmean", heads: [0: .constant(noise(d, seed: 1).map { $0 * 1.5 })]),
            // 1: Stolfo's projection at layer 1, every steered position's projection on u set to 2.
            Intervention(method: "stolfo", heads: [1: .projection(u: u, cBar: 2)], location: .answerOnly),
            // 2: a PSR head at layers 0 and 1.
            Intervention(method: "psr", heads: [
                0: SteeringHead(w: noise(d, seed: 21), bias: 0.3, z: noise(d, seed: 22), activation: .relu),
                1: SteeringHead(w: noise(d, seed: 23), bias: -0.1, z: noise(d, seed: 24), activation: .relu),
            ], location: .questionAndAnswer, alpha: 1.5),
            // 3: another constant vector at layer 0 (stacks with 0 and 2 on the same layer).
            Intervention(method: "caa", heads: [0: .constant(noise(d, seed: 31))], alpha: 2),
        ]
    }

    // MARK: The same arithmetic by hand

    /// Applies heads by plain Swift on the downloaded residual: item by item, in order, to the
    /// (sequence, position) pairs `steers` says, and records every lambda.
    final class HandSteering: ResidualStreamHook {
        struct Item {
            var layer: Int
            var head: SteeringHead
            var alpha: Float
            var steers: (_ sequence: Int, _ position: Int) -> Bool
        }
        var items: [Item]
        var lambdas: [(item: Int, sequence: Int, position: Int, lambda: Float)] = []

        init(_ items: [Item]) { self.items = items }

        func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
            guard items.contains(where: { $0.layer == layer }) else { return }
            var h = try backend.floats(residual)
            let d = residual.columns, t = step.rowsPerSequence
            for (i, item) in items.enumerated() where item.layer == layer {
                for s in 0..<step.batch.count {
                    for r in 0..<step.batch.lengths[s] where item.steers(s, step.batch.starts[s] + r) {
                        let base = (s * t + r) * d
                        var dot = Double(item.head.bias)
                        for j in 0..<d { dot += Double(item.head.w[j]) * Double(h[base + j]) }
                        let lambda: Float
                        switch item.head.activation {
                        case .relu: lambda = Float(max(0, dot))
                        case .identity: lambda = Float(dot)
                        case .constant: lambda = 1
                        }
                        lambdas.append((i, s, step.batch.starts[s] + r, lambda))
                        for j in 0..<d { h[base + j] += item.alpha * lambda * item.head.z[j] }
                    }
                }
            }
            try h.withUnsafeBytes { try backend.upload($0, to: residual) }
        }
    }

    /// Runs hooks one after the other (to look at the stream a steering hook leaves).
    final class Chain: GenerationHook {
        let hooks: [ResidualStreamHook]
        init(_ hooks: [ResidualStreamHook]) { self.hooks = hooks }
        func assign(slot: Int, request: Int?, promptLength: Int) {
            for case let hook as GenerationHook in hooks { hook.assign(slot: slot, request: request, promptLength: promptLength) }
        }
        func prepare(for step: ForwardStep, backend: Backend) throws {
            for hook in hooks { try hook.prepare(for: step, backend: backend) }
        }
        func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
            for hook in hooks { try hook.afterBlock(layer, residual: residual, step: step, backend: backend) }
        }
    }

    /// Keeps a copy of the residual stream after one layer.
    final class Probe: ResidualStreamHook {
        let layer: Int
        var seen: [[Float]] = []
        var steps: [ForwardStep] = []
        init(layer: Int) { self.layer = layer }
        func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
            guard layer == self.layer else { return }
            seen.append(try backend.floats(residual))
            steps.append(step)
        }
    }

    /// Prefill of `prompts` together, then `decode` one-token steps for each, every row's logits.
    static func logits(_ model: TransformerModel, _ prompts: [[Int32]], decode: Int, hook: ResidualStreamHook?) throws -> [[Float]] {
        let cache = try model.makeCache(batchSize: prompts.count, capacity: 64)
        var all: [[Float]] = []
        var tokens = prompts
        for _ in 0...decode {
            if let hook { try hook.prepare(for: ForwardStep(tokens: tokens, cacheLengths: cache.lengths), backend: model.backend) }
            let output = try model.forward(tokens, cache: cache, logits: .all, hook: hook)
            all.append(try model.backend.floats(output.logits))
            // The next input of each sequence: a fixed token, so both runs feed the same ones.
            tokens = prompts.indices.map { [Int32(5 + $0 + cache.lengths[$0])] }
        }
        return all
    }

    static func relativeError(_ got: [[Float]], _ want: [[Float]]) -> Float {
        let g = got.flatMap { $0 }, w = want.flatMap { $0 }
        guard g.count == w.count, !w.isEmpty else { return .infinity }
        let scale = w.map(abs).max()!
        return zip(g, w).map { abs($0 - $1) }.max()! / max(scale, 1e-30)
    }

    static func backends() -> [Backend] { [CPUBackend(), ReferenceBackend()] }

    // MARK: (a) the hook equals the arithmetic by hand

    /// One kind of head at one layer on every sequence of a padded batch, prefill and decode:
    /// the hook's logits equal the hand-steered ones, and differ from unsteered ones.
    @Test(arguments: ["llama", "qwen2"], ["constant", "relu", "projection"])
    func singleHeadEqualsHand(architecture: String, kind: String) throws {
        for backend in Self.backends() {
            let model = try Self.model(architecture, backend)
            let d = model.hiddenSize
            let head: SteeringHead
            switch kind {
            case "constant": head = .constant(Self.noise(d, seed: 3))
            case "relu": head = SteeringHead(w: Self.noise(d, seed: 4), bias: 0.2, z: Self.noise(d, seed: 5), activation: .relu)
            default: head = .projection(u: Self.unit(Self.noise(d, seed: 6)), cBar: 1.5)
            }
            let prompts = [Self.prompt(7, seed: 1), Self.prompt(3, seed: 2), Self.prompt(5, seed: 3)]
            for layer in 0..<model.layerCount {
                let alpha: Float = 1.7
                let intervention = Intervention(method: kind, heads: [layer: head], alpha: alpha)
                let hook = try SteeringHook(model: model, interventions: [intervention],
                                            requests: Array(repeating: SequenceSteering([SteeringApplication(intervention: 0)]), count: 3))
                for s in prompts.indices { hook.assign(slot: s, request: s, promptLength: prompts[s].count) }
                let hand = HandSteering([.init(layer: layer, head: head, alpha: alpha, steers: { _, _ in true })])
                let steered = try Self.logits(model, prompts, decode: 3, hook: hook)
                let byHand = try Self.logits(model, prompts, decode: 3, hook: hand)
                let bare = try Self.logits(model, prompts, decode: 3, hook: nil)
                let error = Self.relativeError(steered, byHand)
                #expect(error < 1e-5, "\(architecture) \(kind) layer \(layer) on \(backend.name): \(error)")
                #expect(Self.relativeError(bare, byHand) > 1e-3, "\(architecture) \(kind) layer \(layer): steering changes nothing")
            }
        }
    }

    /// Stolfo's projection at alpha 1 sets every steered row's projection on u to c_bar.
    @Test func projectionSetsTheProjection() throws {
        let model = try Self.model("llama")
        let u = Self.unit(Self.noise(model.hiddenSize, seed: 8))
        let steering = try SteeringHook(model: model, interventions: [Intervention(method: "stolfo", heads: [0: .projection(u: u, cBar: 3)])],
                                        requests: [SequenceSteering([SteeringApplication(intervention: 0)])])
        steering.assign(slot: 0, request: 0, promptLength: 6)
        let probe = Probe(layer: 0)
        _ = try Self.logits(model, [Self.prompt(6, seed: 9)], decode: 2, hook: Chain([steering, probe]))
        #expect(probe.seen.count == 3)
        for (pass, h) in probe.seen.enumerated() {
            let rows = probe.steps[pass].batch.lengths[0]
            for r in 0..<rows {
                let row = Array(h[(r * model.hiddenSize)..<((r + 1) * model.hiddenSize)])
                let projection = zip(row, u).reduce(Double(0)) { $0 + Double($1.0) * Double($1.1) }
                #expect(abs(projection - 3) < 1e-4, "pass \(pass) row \(r): \(projection)")
            }
        }
    }

    /// Locations steer exactly their rows, in prefill and decode, with each sequence of the batch
    /// at its own prompt length: answer_only from the last prompt token, question_and_answer
    /// after the system prompt, a mask where it says (and on generated tokens when it says so).
    /// Checked against hand steering of hand-written positions, and by the recorded lambdas.
    @Test(arguments: ["llama", "qwen2"])
    func locationsSteerTheRightRows(architecture: String) throws {
        let model = try Self.model(architecture)
        let d = model.hiddenSize
        let head = SteeringHead(w: Self.noise(d, seed: 40), bias: 0.5, z: Self.noise(d, seed: 41), activation: .identity)
        let prompts = [Self.prompt(6, seed: 10), Self.prompt(4, seed: 11), Self.prompt(7, seed: 12), Self.prompt(5, seed: 13)]
        let mask: [Bool] = [false, true, true, false, true]
        let sequences: [(SteeringLocation, systemLength: Int, positions: Set<Int>)] = [
            (.answerOnly, 0, [5, 6, 7, 8]),                       // prompt 6: last prompt token 5, then 3 decoded
            (.questionAndAnswer, 2, [2, 3, 4, 5, 6]),             // prompt 4, system 2
            (.all, 0, Set(0...9)),                                // prompt 7
            (.mask(prompt: mask, generated: false), 0, [1, 2, 4]), // prompt 5, generated not steered
        ]
        for layer in 0..<model.layerCount {
            let intervention = Intervention(method: "stolfo", heads: [layer: head], alpha: 0.8)
            let requests = sequences.map {
                SequenceSteering([SteeringApplication(intervention: 0, location: $0.0)], systemLength: $0.systemLength)
            }
            let hook = try SteeringHook(model: model, interventions: [intervention], requests: requests)
            for s in prompts.indices { hook.assign(slot: s, request: s, promptLength: prompts[s].count) }
            hook.recordedRequest = 1
            let hand = HandSteering([.init(layer: layer, head: head, alpha: 0.8, steers: { s, p in sequences[s].positions.contains(p) })])
            let steered = try Self.logits(model, prompts, decode: 3, hook: hook)
            let byHand = try Self.logits(model, prompts, decode: 3, hook: hand)
            #expect(Self.relativeError(steered, byHand) < 1e-5, "\(architecture) layer \(layer)")
            // The lambdas of request 1, by position, are the hand-computed ones.
            let recorded = try hook.recordedLambdas()
            let expected = hand.lambdas.filter { $0.sequence == 1 }
            #expect(recorded.map(\.position) == expected.map(\.position))
            #expect(recorded.allSatisfy { $0.layer == layer && $0.application == 0 })
            for (got, want) in zip(recorded, expected) { #expect(abs(got.lambda - want.lambda) < 1e-4 * max(1, abs(want.lambda))) }
        }
    }

    /// Several interventions on one sequence, two of them on the same layer (two PSR head calls,
    /// in order), with per-request alphas, next to sequences steered otherwise: the hand result.
    @Test(arguments: ["llama", "qwen2"])
    func stackedInterventionsEqualHand(architecture: String) throws {
        let model = try Self.model(architecture)
        let list = Self.interventions(model.hiddenSize)
        let prompts = [Self.prompt(6, seed: 20), Self.prompt(4, seed: 21), Self.prompt(8, seed: 22)]
        let requests = [
            SequenceSteering([SteeringApplication(intervention: 0, alpha: 0.5), SteeringApplication(intervention: 2),
                              SteeringApplication(intervention: 3, alpha: -1), SteeringApplication(intervention: 1)], systemLength: 1),
            SequenceSteering([SteeringApplication(intervention: 3)]),
            .unsteered,
        ]
        let hook = try SteeringHook(model: model, interventions: list, requests: requests)
        for s in prompts.indices { hook.assign(slot: s, request: s, promptLength: prompts[s].count) }
        hook.recordedRequest = 0
        func only(_ sequence: Int, from first: Int = 0) -> (Int, Int) -> Bool { { s, p in s == sequence && p >= first } }
        // Per layer in application order: layer 0 gets 0, 2, 3; layer 1 gets 2 and 1.
        let hand = HandSteering([
            .init(layer: 0, head: list[0].heads[0]!, alpha: 0.5, steers: only(0)),
            .init(layer: 0, head: list[2].heads[0]!, alpha: 1.5, steers: only(0, from: 1)),
            .init(layer: 0, head: list[3].heads[0]!, alpha: -1, steers: only(0)),
            .init(layer: 0, head: list[3].heads[0]!, alpha: 2, steers: only(1)),
            .init(layer: 1, head: list[2].heads[1]!, alpha: 1.5, steers: only(0, from: 1)),
            .init(layer: 1, head: list[1].heads[1]!, alpha: 1, steers: only(0, from: 5)),
        ])
        let steered = try Self.logits(model, prompts, decode: 3, hook: hook)
        let byHand = try Self.logits(model, prompts, decode: 3, hook: hand)
        #expect(Self.relativeError(steered, byHand) < 1e-5, "\(architecture)")
        // Sequence 2 is not steered at all: its logits are the unsteered ones, exactly.
        let bare = try Self.logits(model, prompts, decode: 3, hook: nil)
        let rows = try Self.rowsOf(model, prompts, decode: 3)
        for (pass, logits) in steered.enumerated() {
            let v = model.vocabularySize
            for (i, row) in rows[pass].enumerated() where row == 2 {
                #expect(Array(logits[(i * v)..<((i + 1) * v)]) == Array(bare[pass][(i * v)..<((i + 1) * v)]))
            }
        }
        // Recorded lambdas of request 0: per layer, every application with a head there, each
        // position it covers.
        let recorded = try hook.recordedLambdas()
        #expect(Set(recorded.map { "\($0.layer):\($0.application)" }) == ["0:0", "0:1", "0:2", "1:1", "1:3"])
        let psr = recorded.filter { $0.layer == 0 && $0.application == 1 }.map(\.lambda)
        let psrHand = hand.lambdas.filter { $0.item == 1 }.map(\.lambda)
        #expect(psr.count == psrHand.count)
        for (a, b) in zip(psr, psrHand) { #expect(abs(a - b) < 1e-4 * max(1, abs(b))) }
    }

    /// The sequence each logits row belongs to, per pass of `logits`.
    static func rowsOf(_ model: TransformerModel, _ prompts: [[Int32]], decode: Int) throws -> [[Int]] {
        let cache = try model.makeCache(batchSize: prompts.count, capacity: 64)
        var tokens = prompts, rows: [[Int]] = []
        for _ in 0...decode {
            rows.append(try model.forward(tokens, cache: cache, logits: .all).rows.map(\.sequence))
            tokens = prompts.indices.map { [Int32(5 + $0 + cache.lengths[$0])] }
        }
        return rows
    }

    // MARK: (b) mixed batches give each request what it gets alone

    /// Every kind of steering in one list of requests: unsteered, constant, projection, PSR,
    /// stacked, alpha 0, negative alpha, a mask, each its own location and prompt length.
    static func mixedRequests(_ d: Int, sampled: Bool) -> ([GenerationRequest], [SequenceSteering]) {
        let steering: [SequenceSteering] = [
            .unsteered,
            SequenceSteering([SteeringApplication(intervention: 0)]),
            SequenceSteering([SteeringApplication(intervention: 1)]),
            SequenceSteering([SteeringApplication(intervention: 2)], systemLength: 3),
            SequenceSteering([SteeringApplication(intervention: 2, alpha: 2.5, location: .answerOnly), SteeringApplication(intervention: 3),
                              SteeringApplication(intervention: 1, alpha: 0.7)], systemLength: 2),
            SequenceSteering([SteeringApplication(intervention: 0, alpha: 0)]),
            SequenceSteering([SteeringApplication(intervention: 3, alpha: -2, location: .questionAndAnswer)], systemLength: 4),
            SequenceSteering([SteeringApplication(intervention: 0, location: .mask(prompt: [true, false, true], generated: true))]),
            SequenceSteering([SteeringApplication(intervention: 3, alpha: 0.4), SteeringApplication(intervention: 0, alpha: 0.3)]),
        ]
        let lengths = [8, 5, 13, 9, 20, 6, 11, 4, 7]
        let requests = lengths.enumerated().map { i, n in
            GenerationRequest(promptIDs: prompt(n, seed: UInt64(100 + i)), options: GenerationOptions(
                maxNewTokens: [12, 4, 9, 15, 6, 10, 8, 5, 7][i],
                temperature: sampled ? [1.0, 0.8, 1.3, 0, 1.0, 2.0, 0.7, 1.1, 0.9][i] : 0,
                topK: sampled ? [0, 40, 0, 0, 5, 0, 100, 0, 20][i] : 0,
                topP: sampled ? [1, 1, 0.9, 1, 0.8, 1, 0.95, 1, 1][i] : 1,
                seed: UInt64(1000 + i)))
        }
        return (requests, steering)
    }

    @Test(arguments: ["llama", "qwen2"], [false, true])
    func mixedBatchEqualsAlone(architecture: String, sampled: Bool) throws {
        let model = try Self.model(architecture)
        let interventions = Self.interventions(model.hiddenSize)
        let (requests, steering) = Self.mixedRequests(model.hiddenSize, sampled: sampled)
        let alone = try requests.indices.map { i in
            try Generator(model: model, batchSize: 1).generate(
                [requests[i]], hook: SteeringHook(model: model, interventions: interventions, requests: [steering[i]]))[0]
        }
        let hook = try SteeringHook(model: model, interventions: interventions, requests: steering)
        for batchSize in [3, 9] {
            let batched = try Generator(model: model, batchSize: batchSize).generate(requests, hook: hook)
            for i in requests.indices {
                #expect(batched[i] == alone[i], "\(architecture) sampled \(sampled) batch \(batchSize) request \(i)")
            }
        }
        // The lambdas of the stacked request (4), prefill and decode, are the same in a batch.
        let recordAlone = try SteeringHook(model: model, interventions: interventions, requests: [steering[4]])
        recordAlone.recordedRequest = 0
        _ = try Generator(model: model, batchSize: 1).generate([requests[4]], hook: recordAlone)
        hook.recordedRequest = 4
        _ = try Generator(model: model, batchSize: 4).generate(requests, hook: hook)
        let recorded = try hook.recordedLambdas()
        let recordedAlone = try recordAlone.recordedLambdas()
        #expect(recorded.map { [$0.layer, $0.application, $0.position] } == recordedAlone.map { [$0.layer, $0.application, $0.position] })
        // (The values agree to rounding, not bit for bit: the CPU's matmuls take other paths
        // for other row counts, which the tokens never notice here.)
        for (a, b) in zip(recorded, recordedAlone) { #expect(abs(a.lambda - b.lambda) <= 1e-4 * max(1, abs(b.lambda)), "\(a) \(b)") }
        // Its PSR head (application 0, answer_only) acts at both layers on the last prompt token
        // and every generated token that was fed back.
        let fed = requests[4].promptIDs.count + alone[4].ids.count - 1
        for layer in 0..<2 {
            #expect(recorded.filter { $0.layer == layer && $0.application == 0 }.map(\.position)
                    == Array((requests[4].promptIDs.count - 1)..<fed))
        }
        // The steering does something: most steered requests differ from the unsteered run.
        let bare = try Generator(model: model, batchSize: 9).generate(requests)
        let changed = requests.indices.filter { alone[$0].ids != bare[$0].ids }
        #expect(changed.count >= 4, "\(architecture): only \(changed) changed")
        // (c) Unsteered and alpha-0 requests give the unsteered tokens.
        #expect(alone[0].ids == bare[0].ids)
        #expect(alone[5].ids == bare[5].ids)
    }

    /// (c) alpha 0 is no steering, exactly, for every kind of head and location.
    @Test(arguments: ["llama", "qwen2"])
    func alphaZeroEqualsUnsteered(architecture: String) throws {
        let model = try Self.model(architecture)
        let interventions = Self.interventions(model.hiddenSize)
        let prompts = [Self.prompt(6, seed: 50), Self.prompt(9, seed: 51)]
        let zero = SequenceSteering(interventions.indices.map { SteeringApplication(intervention: $0, alpha: 0) }, systemLength: 2)
        let hook = try SteeringHook(model: model, interventions: interventions, requests: [zero, zero])
        for s in prompts.indices { hook.assign(slot: s, request: s, promptLength: prompts[s].count) }
        let none = try SteeringHook(model: model, interventions: interventions, requests: [])
        for s in prompts.indices { none.assign(slot: s, request: s, promptLength: prompts[s].count) }
        let steered = try Self.logits(model, prompts, decode: 3, hook: hook)
        #expect(steered == (try Self.logits(model, prompts, decode: 3, hook: none)))
        #expect(steered == (try Self.logits(model, prompts, decode: 3, hook: nil)))
        let requests = prompts.map { GenerationRequest(promptIDs: $0, options: GenerationOptions(maxNewTokens: 10)) }
        #expect(try Generator(model: model, batchSize: 2).generate(requests, hook: hook) == Generator(model: model, batchSize: 2).generate(requests))
    }

    // MARK: Bad input

    @Test func refusesInterventionsTheModelCannotTake() throws {
        let model = try Self.model("llama")
        let d = model.hiddenSize
        func refused(_ intervention: Intervention, _ fragment: String) {
            do {
                _ = try SteeringHook(model: model, interventions: [intervention])
                Issue.record("accepted: \(fragment)")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
            }
        }
        refused(Intervention(method: "x", heads: [0: .constant(Array(repeating: 1, count: d + 1))]), "hidden size is \(d)")
        refused(Intervention(method: "x", heads: [2: .constant(Array(repeating: 1, count: d))]), "layer 2, the model has 2 layers")
        refused(Intervention(method: "x", heads: [1: .constant([Float.nan] + Array(repeating: 1, count: d - 1))]), "NaN or Inf")
        let good = Intervention(method: "x", heads: [0: .constant(Array(repeating: 1, count: d))])
        #expect(throws: TillerError.self) {
            try SteeringHook(model: model, interventions: [good], requests: [SequenceSteering([SteeringApplication(intervention: 1)])])
        }
        #expect(throws: TillerError.self) {
            try SteeringHook(model: model, interventions: [good], requests: [SequenceSteering([SteeringApplication(intervention: 0, alpha: .infinity)])])
        }
    }
}
