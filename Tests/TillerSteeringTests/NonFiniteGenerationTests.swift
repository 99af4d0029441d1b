import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels
import TillerSteering

/// A request whose activations go non-finite stops with `StopReason.nonFinite` before the token
/// such a pass would give (never a string of token 0), and only that request: the others of the
/// batch get what they get alone.
@Suite(.serialized) struct NonFiniteGenerationTests {
    typealias Fixtures = SteeredGenerationTests

    /// A huge alpha keeps the stream finite but overflows the next RMSNorm (all-equal logits, so
    /// argmax 0): the hook's sum-of-squares check catches it. z = 3e38 at alpha 1 likewise.
    @Test(arguments: ["llama", "qwen2"])
    func hugeSteeringStopsOnlyItsRequest(architecture: String) throws {
        for backend in Fixtures.backends() {
            let model = try Fixtures.model(architecture, backend)
            let d = model.hiddenSize
            let interventions = [
                Intervention(method: "diffmean", heads: [0: .constant(Fixtures.noise(d, seed: 1))]),
                Intervention(method: "diffmean", heads: [1: .constant(Fixtures.noise(d, seed: 2).map { $0 * 3e38 })]),
            ]
            let steering = [SequenceSteering(), SequenceSteering([SteeringApplication(intervention: 0)]),
                            SequenceSteering([SteeringApplication(intervention: 0, alpha: 1e30)]),
                            SequenceSteering([SteeringApplication(intervention: 1)])]
            let requests = (0..<steering.count).map {
                GenerationRequest(promptIDs: Fixtures.prompt(5 + $0, seed: UInt64(10 + $0)), options: GenerationOptions(maxNewTokens: 6))
            }
            let alone = try requests.indices.map { i in
                try Generator(model: model, batchSize: 1).generate(
                    [requests[i]], hook: SteeringHook(model: model, interventions: interventions, requests: [steering[i]]))[0]
            }
            let hook = try SteeringHook(model: model, interventions: interventions, requests: steering)
            let batched = try Generator(model: model, batchSize: 4).generate(requests, hook: hook)
            for i in requests.indices { #expect(batched[i] == alone[i], "\(architecture) \(backend.name) request \(i)") }
            for i in [2, 3] {
                #expect(batched[i].stopReason == .nonFinite && batched[i].ids.isEmpty, "\(backend.name) \(i): \(batched[i])")
            }
            for i in [0, 1] { #expect(batched[i].stopReason == .maxTokens && batched[i].ids.count == 6) }
        }
    }

    /// A hook that makes one request's rows NaN (and, unlike `SteeringHook`, reports nothing):
    /// the generator's own check of the logits stops that request.
    final class PoisonHook: GenerationHook {
        let poisoned: Int, heads: PSRHeads
        var slots: [Int?] = []
        init(poisoned: Int, backend: Backend, dim: Int) throws {
            self.poisoned = poisoned
            heads = try backend.psrHeads(w: [Float](repeating: 0, count: dim), bias: [0], z: [Float](repeating: 1, count: dim),
                                         activations: [.constant], dim: dim)
        }
        func assign(slot: Int, request: Int?, promptLength: Int) {
            if slots.count <= slot { slots += [Int?](repeating: nil, count: slot + 1 - slots.count) }
            slots[slot] = request
        }
        func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
            guard layer == 1 else { return }
            let n = step.rowCount, t = step.rowsPerSequence
            var index = [Int32](repeating: -1, count: n), alpha = [Float](repeating: 0, count: n)
            for s in 0..<step.batch.count where s < slots.count && slots[s] == poisoned {
                for r in 0..<step.batch.lengths[s] { index[s * t + r] = 0; alpha[s * t + r] = .nan }
            }
            try backend.psrHead(residual, heads: heads, headIndex: try backend.tensor(ints: index, shape: [n]),
                                alpha: try backend.tensor(alpha, shape: [n]), lambda: try backend.empty([n]))
        }
    }

    @Test func nanLogitsStopOnlyTheirRequest() throws {
        for backend in Fixtures.backends() {
            let model = try Fixtures.model("llama", backend)
            let requests = (0..<3).map {
                GenerationRequest(promptIDs: Fixtures.prompt(4 + $0, seed: UInt64(30 + $0)),
                                  options: GenerationOptions(maxNewTokens: 5, temperature: $0 == 2 ? 0.8 : 0, seed: 7))
            }
            let bare = try Generator(model: model, batchSize: 3).generate(requests)
            for poisoned in [1, 2] {
                let got = try Generator(model: model, batchSize: 3)
                    .generate(requests, hook: try PoisonHook(poisoned: poisoned, backend: backend, dim: model.hiddenSize))
                for i in requests.indices where i != poisoned { #expect(got[i] == bare[i], "\(backend.name) \(i)") }
                #expect(got[poisoned].stopReason == .nonFinite && got[poisoned].ids.isEmpty, "\(backend.name): \(got[poisoned])")
            }
        }
    }
}
