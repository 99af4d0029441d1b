import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// What a request hears from the scheduler, in order: tokens, then one `finished` or `failed`.
enum JobEvent: Sendable {
    case token(id: Int32, text: String)
    case finished(GenerationResult, text: String)
    case failed(APIError)
}

/// One admitted request: what to generate, how it is steered, and where its events go.
final class Job: @unchecked Sendable {
    let request: GenerationRequest
    let steering: SequenceSteering
    let events: AsyncStream<JobEvent>
    private let continuation: AsyncStream<JobEvent>.Continuation
    /// Uptime nanoseconds of its arrival and of the moment it must be done by.
    let arrival: UInt64, deadline: UInt64
    var lastToken: UInt64?
    private let lock = NSLock()
    private var cancelled = false

    init(request: GenerationRequest, steering: SequenceSteering, timeout: Double) {
        self.request = request
        self.steering = steering
        arrival = DispatchTime.now().uptimeNanoseconds
        deadline = arrival &+ UInt64(max(0, min(timeout, 1e9)) * 1e9)
        (events, continuation) = AsyncStream.makeStream(of: JobEvent.self)
        // A consumer that stops listening (its client went away, its task was cancelled) frees
        // the slot at the next step.
        continuation.onTermination = { [weak self] _ in self?.cancel() }
    }

    func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }

    func send(_ event: JobEvent) {
        continuation.yield(event)
        switch event {
        case .token: break
        case .finished, .failed: continuation.finish()
        }
    }
}

/// Continuous batching: one thread owns the model and runs `DecodingSession.step` while any
/// request is live; requests wait in a bounded queue and join the batch between steps, and leave
/// it when done, cancelled (their client went away) or past their deadline.
public final class BatchScheduler: @unchecked Sendable {
    let session: DecodingSession
    let steeringHook: SteeringHook?
    public let maxQueue: Int
    let metrics: ServeMetrics
    private let condition = NSCondition()
    private var waiting: [Job] = []
    /// Slots free as the scheduler last saw them (under `condition`): a request that finds one
    /// free does not count against --max-queue, so --max-queue 0 means "no waiting", not "nothing".
    private var freeSlotsSeen: Int
    private var stopping = false
    private let stopped = DispatchSemaphore(value: 0)
    /// Owned by the scheduler thread.
    private var running: [Job?]
    private var slotSteering: [SequenceSteering]

    public init(generator: Generator, slots: Int, prefillChunk: Int, interventions: [Intervention], maxQueue: Int,
                metrics: ServeMetrics) throws {
        steeringHook = interventions.isEmpty ? nil : try SteeringHook(model: generator.model, interventions: interventions)
        session = try DecodingSession(generator: generator, slots: slots, prefillChunk: prefillChunk, hook: steeringHook)
        self.maxQueue = maxQueue
        self.metrics = metrics
        running = Array(repeating: nil, count: slots)
        freeSlotsSeen = slots
        slotSteering = Array(repeating: .unsteered, count: slots)
    }

    public var contextLimit: Int { session.generator.contextLimit }

    /// Checks a request as the generator would (before it is queued, so the client gets a 400).
    func check(_ request: GenerationRequest) throws { try session.check(request) }

    /// Queues a job; 429 when the queue is full, 503 once shutting down.
    func submit(_ job: Job) throws {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw APIError(status: 503, "the server is shutting down", type: "server_error", code: "shutting_down") }
        guard waiting.count < maxQueue + freeSlotsSeen else { throw APIError.queueFull(max(0, waiting.count - freeSlotsSeen)) }
        waiting.append(job)
        metrics.queueDepth.set(Double(waiting.count))
        condition.signal()
    }

    public func start() {
        let thread = Thread { [self] in
            loop()
            stopped.signal()
        }
        thread.name = "tiller-scheduler"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Fails every request still waiting or running (503) and ends the thread.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        stopped.wait()
    }

    private func loop() {
        while true {
            condition.lock()
            freeSlotsSeen = session.freeSlots.count
            while !stopping && waiting.isEmpty && session.isIdle { condition.wait() }
            if stopping {
                let left = waiting
                waiting.removeAll()
                condition.unlock()
                let shutdown = APIError(status: 503, "the server is shutting down", type: "server_error", code: "shutting_down")
                for job in left + running.compactMap({ $0 }) { job.send(.failed(shutdown)) }
                return
            }
            let now = DispatchTime.now().uptimeNanoseconds
            var admitted: [Job] = []
            var free = session.freeSlots.count
            var kept: [Job] = []
            for job in waiting {
                if job.isCancelled { continue }
                if now > job.deadline { job.send(.failed(Self.timeout)); continue }
                if free > 0 { admitted.append(job); free -= 1 } else { kept.append(job) }
            }
            waiting = kept
            freeSlotsSeen = free
            metrics.queueDepth.set(Double(waiting.count))
            condition.unlock()

            for job in admitted { admit(job) }
            for slot in running.indices {
                guard let job = running[slot] else { continue }
                if job.isCancelled {
                    session.release(slot)
                    running[slot] = nil
                } else if now > job.deadline {
                    session.release(slot)
                    running[slot] = nil
                    job.send(.failed(Self.timeout))
                }
            }
            guard !session.isIdle else { continue }
            step()
        }
    }

    static let timeout = APIError(status: 504, "the request ran past the server's --request-timeout", type: "server_error", code: "timeout")

    private func admit(_ job: Job) {
        guard let slot = session.freeSlots.first else { return }
        do {
            if let steeringHook {
                slotSteering[slot] = job.steering
                try steeringHook.setRequests(slotSteering)
            }
            if let result = try session.admit(job.request, slot: slot) {
                job.send(.finished(result, text: result.completion))
            } else {
                running[slot] = job
                metrics.promptTokens.increment(by: Int64(job.request.promptIDs.count))
            }
        } catch {
            job.send(.failed(APIError(status: 400, "\(error)", code: "invalid_request")))
        }
    }

    private func step() {
        let live = running.lazy.compactMap { $0 }.count
        metrics.liveSlots.set(Double(live))
        metrics.batchOccupancy.record(Double(live) / Double(running.count))
        // The hook joins a pass only when a live request is steered, so unsteered batches run the
        // same pass as `tiller generate` without steering.
        let steer = running.contains { $0.map { !$0.steering.applications.isEmpty } ?? false }
        let events: [SlotEvent]
        do {
            events = try session.step(steer: steer)
        } catch {
            // A pass that failed (out of memory, a device lost) fails the requests in it, not the server.
            let failure = APIError(status: 500, "generation failed: \(error)", type: "server_error", code: "generation_failed")
            for slot in running.indices {
                guard let job = running[slot] else { continue }
                session.release(slot)
                running[slot] = nil
                job.send(.failed(failure))
            }
            return
        }
        let now = DispatchTime.now().uptimeNanoseconds
        for event in events {
            switch event {
            case .token(let slot, let id, let text):
                guard let job = running[slot] else { continue }
                record(job, now)
                job.send(.token(id: id, text: text))
            case .finished(let slot, let result, let text):
                guard let job = running[slot] else { continue }
                running[slot] = nil
                if !result.ids.isEmpty { record(job, now) }
                metrics.requestSeconds.record(Double(now - job.arrival) / 1e9)
                job.send(.finished(result, text: text))
            }
        }
    }

    private func record(_ job: Job, _ now: UInt64) {
        metrics.generatedTokens.increment()
        if let last = job.lastToken {
            metrics.timePerToken.record(Double(now - last) / 1e9)
        } else {
            metrics.timeToFirstToken.record(Double(now - job.arrival) / 1e9)
        }
        job.lastToken = now
    }
}

/// A request served to its end, with its timings (for benchmarks and embedding).
public struct ServedCompletion: Sendable {
    public let result: GenerationResult
    /// Seconds from submission to the first generated token (nil: none was generated).
    public let timeToFirstToken: Double?
    /// Seconds from submission to the end.
    public let seconds: Double
}

extension BatchScheduler {
    /// Queues `request` (steered by `steering`) and waits for its end: what a server request
    /// does, without HTTP. Throws the `APIError` a client would get (429, 504, ...).
    public func complete(_ request: GenerationRequest, steering: SequenceSteering = .unsteered,
                         timeout: Double = 600) async throws -> ServedCompletion {
        try check(request)
        let job = Job(request: request, steering: steering, timeout: timeout)
        try submit(job)
        let start = DispatchTime.now().uptimeNanoseconds
        var first: Double?
        for await event in job.events {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            switch event {
            case .token:
                if first == nil { first = elapsed }
            case .finished(let result, _):
                if first == nil && !result.ids.isEmpty { first = elapsed }
                return ServedCompletion(result: result, timeToFirstToken: first, seconds: elapsed)
            case .failed(let error):
                throw error
            }
        }
        throw APIError(status: 503, "the request was cancelled", type: "server_error", code: "cancelled")
    }
}
