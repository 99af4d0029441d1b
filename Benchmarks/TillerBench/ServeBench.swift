import ArgumentParser
import Foundation
import TillerCore
import TillerCPU
import TillerModels
import TillerServe

/// The serving suite (--serve): `tiller serve`'s continuous-batching scheduler (`BatchScheduler`,
/// batch-invariant kernels, what every HTTP request goes through) under N concurrent clients,
/// each sending its requests one after another, against `tiller generate` of the same prompts as
/// one batch (the Generator with its default kernels) in the same run. Also printed: the offline
/// batch with batch-invariant kernels (what invariance costs apart from serving), requests/s and
/// time to first token. HTTP is left out: its cost per request (well under a millisecond on
/// loopback) is nothing beside a forward pass of these models.
enum ServeBench {
    static let promptTokens = 16, newTokens = 16

    static func run(_ bench: BenchRun, modelPath: String) throws {
        guard let backend = bench.backend as? CPUBackend else { throw ValidationError("--serve runs on the CPU backend") }
        for variant in try ModelBench.variants(modelPath) {
            let name = "serve/\(variant.name)"
            let clientCounts = bench.quick ? [1, 8] : [1, 8, 32]
            guard clientCounts.contains(where: { bench.selected(name, "clients=\($0)") }) else { continue }
            let model = try TransformerModel.load(directory: variant.directory, backend: backend, weightDType: variant.dtype)
            bench.progress("\(name): loaded \(variant.directory)")
            for clients in clientCounts where bench.selected(name, "clients=\(clients)") {
                try measure(bench, name: name, model: model, backend: backend, clients: clients)
            }
        }
    }

    /// Requests per client count: a few rounds for few clients, one full batch for 32.
    static func requestCount(_ clients: Int) -> Int { clients == 1 ? 4 : clients == 8 ? 16 : clients }

    static func measure(_ bench: BenchRun, name: String, model: TransformerModel, backend: CPUBackend, clients: Int) throws {
        let count = requestCount(clients)
        let requests = (0..<count).map { i in
            GenerationRequest(promptIDs: ModelBench.tokenIDs(promptTokens, vocab: model.vocabularySize, seed: UInt64(100 + i)),
                              options: GenerationOptions(maxNewTokens: newTokens, seed: UInt64(i)))
        }
        // No end-of-sequence ids: every request generates all its tokens on a random checkpoint.
        func generator() throws -> Generator {
            try Generator(model: model, batchSize: clients, contextLimit: promptTokens + newTokens + 1, eosTokenIDs: [])
        }
        let tokens = Double(count * newTokens)

        // Offline: tiller generate's batch, default kernels, then batch-invariant ones.
        backend.batchInvariant = false
        _ = try generator().generate(Array(requests.prefix(1)))
        var start = monotonicSeconds()
        let offline = try generator().generate(requests)
        let offlineSeconds = monotonicSeconds() - start
        backend.batchInvariant = true
        start = monotonicSeconds()
        let invariant = try generator().generate(requests)
        let invariantSeconds = monotonicSeconds() - start

        // Served: `clients` tasks, each submitting the next request when its last one is done.
        let scheduler = try BatchScheduler(generator: try generator(), slots: clients, prefillChunk: 64, interventions: [],
                                           maxQueue: count, metrics: ServeMetrics(slotCount: clients))
        scheduler.start()
        defer { scheduler.stop(); backend.batchInvariant = false }
        let served = ServedRun(count: count)
        let done = DispatchSemaphore(value: 0)
        start = monotonicSeconds()
        Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        while let index = served.next() {
                            served.finish(index, try? await scheduler.complete(requests[index]))
                        }
                    }
                }
            }
            done.signal()
        }
        done.wait()
        let servedSeconds = monotonicSeconds() - start
        let completions = served.results.compactMap { $0 }
        guard completions.count == count else { throw ValidationError("\(name): \(count - completions.count) served requests failed") }
        let same = zip(completions, invariant).filter { $0.result.ids == $1.ids }.count
        let firsts = completions.compactMap(\.timeToFirstToken).sorted()
        let median = firsts[firsts.count / 2], p90 = firsts[min(firsts.count - 1, firsts.count * 9 / 10)]
        bench.progress(String(format: "%@ clients=%d: %d requests in %.2f s served (%.2f req/s), offline batch %.2f s, "
                              + "offline batch-invariant %.2f s (%.1f tok/s); TTFT median %.3f s, p90 %.3f s; "
                              + "%d/%d served = invariant offline ids, %d/%d invariant = default offline ids",
                              name, clients, count, servedSeconds, Double(count) / servedSeconds, offlineSeconds,
                              invariantSeconds, tokens / invariantSeconds, median, p90, same, count,
                              zip(invariant, offline).filter { $0.ids == $1.ids }.count, count))
        let reference = ReferenceFigure(name: "tiller generate batch", figure: tokens / offlineSeconds, seconds: offlineSeconds)
        let figure = tokens / servedSeconds
        bench.record(Row(name: name, shape: String(format: "clients=%d %dx(%d+%d) TTFT %.2fs", clients, count, promptTokens, newTokens, median),
                         figure: figure, unit: "tok/s", seconds: servedSeconds, fastestSeconds: servedSeconds, callsPerSample: 1,
                         reference: reference, ratio: figure / reference.figure,
                         targets: clients == 32 ? [Target(metric: "ratio", value: figure / reference.figure, atLeast: 0.85)] : []))
    }
}

/// The shared state of the clients of one served run.
private final class ServedRun: @unchecked Sendable {
    private let lock = NSLock()
    private var issued = 0
    private(set) var results: [ServedCompletion?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func next() -> Int? {
        lock.withLock {
            guard issued < results.count else { return nil }
            issued += 1
            return issued - 1
        }
    }

    func finish(_ index: Int, _ completion: ServedCompletion?) { lock.withLock { results[index] = completion } }
}
