#if canImport(Glibc)
import Glibc
#endif

/// Seconds on CLOCK_MONOTONIC: wall-clock time can jump (NTP, suspend), this clock cannot.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// How much timing each figure gets.
struct TimingPlan {
    /// Timed samples per contender; the figure is their median.
    var repeats: Int
    /// Untimed samples first, so caches, page faults and thread pools are warm.
    var warmup: Int
    /// A sample repeats the op until it lasts this long, so a 50-microsecond matmul is not
    /// timed one call at a time against a clock and scheduler with microsecond jitter.
    var minSampleSeconds: Double
}

/// The timing of one contender: seconds per call.
struct Measurement {
    var samples: [Double]
    var callsPerSample: Int

    var median: Double {
        let sorted = samples.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    var fastest: Double { samples.min() ?? .nan }
}

/// Times several contenders (typically an op and its reference) sample by sample in turn:
/// A B A B ... rather than all of A then all of B, so a frequency change or a noisy neighbour
/// in the middle of the run hits both sides of a ratio alike.
/// `synchronize` ends every timed stretch, so a GPU backend's recorded work is inside the time.
func measureInterleaved(_ plan: TimingPlan, synchronize: () throws -> Void = {}, _ bodies: [() throws -> Void]) throws -> [Measurement] {
    // Calibration: one untimed call (first-touch page faults, lazy setup), then one timed call
    // to choose how many calls make a sample of at least minSampleSeconds.
    var calls: [Int] = []
    for body in bodies {
        try body()
        try synchronize()
        let start = monotonicSeconds()
        try body()
        try synchronize()
        let once = max(monotonicSeconds() - start, 1e-7)
        calls.append(min(100_000, max(1, Int((plan.minSampleSeconds / once).rounded(.up)))))
    }

    func sample(_ i: Int) throws -> Double {
        let body = bodies[i], n = calls[i]
        let start = monotonicSeconds()
        for _ in 0..<n { try body() }
        try synchronize()
        return (monotonicSeconds() - start) / Double(n)
    }

    for _ in 0..<plan.warmup {
        for i in bodies.indices { _ = try sample(i) }
    }
    var samples = Array(repeating: [Double](), count: bodies.count)
    for _ in 0..<max(1, plan.repeats) {
        for i in bodies.indices { samples[i].append(try sample(i)) }
    }
    return bodies.indices.map { Measurement(samples: samples[$0], callsPerSample: calls[$0]) }
}
