import Prometheus

/// What GET /metrics reports, in Prometheus' text format.
public final class ServeMetrics: @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()
    let requests: Counter, rejected: Counter, promptTokens: Counter, generatedTokens: Counter
    let queueDepth: Gauge, liveSlots: Gauge, slots: Gauge
    let timeToFirstToken: ValueHistogram, timePerToken: ValueHistogram, requestSeconds: ValueHistogram, batchOccupancy: ValueHistogram

    public init(slotCount: Int) {
        requests = registry.makeCounter(name: "tiller_requests_total", help: "Completion requests answered (any status).")
        rejected = registry.makeCounter(name: "tiller_requests_rejected_total",
                                        help: "Requests refused before generation (bad request, auth, full queue, timeout).")
        promptTokens = registry.makeCounter(name: "tiller_prompt_tokens_total", help: "Prompt tokens run through the model.")
        generatedTokens = registry.makeCounter(name: "tiller_generated_tokens_total", help: "Tokens generated.")
        queueDepth = registry.makeGauge(name: "tiller_queue_depth", help: "Requests waiting for a batch slot.")
        liveSlots = registry.makeGauge(name: "tiller_batch_live_slots", help: "Batch slots holding a request.")
        slots = registry.makeGauge(name: "tiller_batch_slots", help: "Batch slots (--max-batch).")
        slots.set(Double(slotCount))
        let latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        timeToFirstToken = registry.makeValueHistogram(name: "tiller_time_to_first_token_seconds", buckets: latency,
                                                       help: "From a request's arrival to its first generated token.")
        timePerToken = registry.makeValueHistogram(name: "tiller_time_per_output_token_seconds", buckets: latency,
                                                   help: "Between consecutive generated tokens of a request.")
        requestSeconds = registry.makeValueHistogram(name: "tiller_request_duration_seconds", buckets: latency,
                                                     help: "From a request's arrival to its last token.")
        let occupancy = stride(from: 0.125, through: 1.0, by: 0.125).map { $0 }
        batchOccupancy = registry.makeValueHistogram(name: "tiller_batch_occupancy_ratio", buckets: occupancy,
                                                     help: "Live slots over all slots, per forward pass.")
    }

    public func text() -> String { registry.emitToString() }
}
