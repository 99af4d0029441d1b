// The machinery every op case shares, in the manner of ggml's test-backend-ops: run one op on
// the reference and on each backend under test with identical random inputs, surround every
// output with guard bytes, then compare by normalised mean squared error.

import Testing
import TillerCore
import TillerCPU
import TillerVulkan
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Backends

/// The backends every case runs on, each checked against `ReferenceBackend`: a fresh CPU
/// backend per test, and the process's one Vulkan backend when the machine has a Vulkan device
/// (lavapipe in CI). TILLER_TEST_VULKAN=0 leaves Vulkan out.
func backendsUnderTest() -> [any Backend] {
    [CPUBackend()] + (SharedVulkan.backend.map { [$0] } ?? [])
}

/// Creating a Vulkan device (with the validation layer) takes far longer than a case, so the
/// suite shares one; a lock keeps parallel tests from interleaving their recorded work.
enum SharedVulkan {
    static let backend: VulkanBackend? = {
        if getenv("TILLER_TEST_VULKAN").map({ String(cString: $0) }) == "0" { return nil }
        do {
            let backend = try VulkanBackend(validation: true)
            print("BackendOpsTests: Vulkan on \(backend.deviceDescription), validation layer \(backend.validationEnabled ? "on" : "not installed")")
            return backend
        } catch {
            print("BackendOpsTests: no Vulkan backend (\(error)); testing the CPU backend only")
            return nil
        }
    }()
    static let lock = NSLock()
}

/// Runs body with exclusive use of the backend when it is shared, and returns what the Vulkan
/// validation layer said meanwhile: every message is a failure.
func exclusively<R>(_ backend: any Backend, _ body: () throws -> R) rethrows -> (R, validation: [String]) {
    guard let vulkan = backend as? VulkanBackend else { return (try body(), []) }
    SharedVulkan.lock.lock()
    defer { SharedVulkan.lock.unlock() }
    _ = vulkan.validationMessages()
    let result = try body()
    try? vulkan.synchronize()
    return (result, vulkan.validationMessages())
}

// MARK: - Seed

/// One seed per run: fresh inputs every run find more than fixed ones, and the seed printed in
/// every failure makes any of them replayable with TILLER_TEST_SEED.
enum TestSeed {
    static let value: UInt64 = {
        var seed: UInt64?
        if let raw = getenv("TILLER_TEST_SEED") {
            let text = String(cString: raw).filter { !$0.isWhitespace }
            seed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
            if seed == nil { print("BackendOpsTests: ignoring unparsable TILLER_TEST_SEED=\(text)") }
        }
        if seed == nil {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            var mixer = SplitMix64(seed: UInt64(truncatingIfNeeded: now.tv_sec) &* 1_000_000_007 &+ UInt64(truncatingIfNeeded: now.tv_nsec))
            seed = mixer.next()
        }
        print("BackendOpsTests: seed \(seed!) (set TILLER_TEST_SEED=\(seed!) to replay)")
        return seed!
    }()

    static var replay: String { "TILLER_TEST_SEED=\(value)" }
}

/// A generator for one case that depends only on the run's seed and the case's name, so a
/// failing case replays identically whatever order (or subset) the cases run in.
func caseRNG(_ caseName: String) -> SplitMix64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325 // FNV-1a
    for byte in caseName.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return SplitMix64(seed: TestSeed.value ^ hash)
}

extension SplitMix64 {
    mutating func int(_ range: Range<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func shuffled(_ n: Int) -> [Int] {
        var values = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, int(0..<(i + 1))) }
        return values
    }

    /// Rows of pairwise-distinct values (a shuffled ramp, exact in f32), so that argmax and
    /// top-k have exactly one right answer.
    mutating func distinctRows(_ rows: Int, _ columns: Int) -> [Float] {
        (0..<rows).flatMap { _ in shuffled(columns).map { (Float($0) - Float(columns) / 2) * 0.75 } }
    }
}

// MARK: - One op on one backend

/// What an op left in one of its outputs.
enum OutputValues {
    case floats([Float])
    case ints([Int32])
}

/// An output (or in-place) tensor placed in the middle of a larger buffer whose every byte is
/// known, so writes outside the tensor show up as changed guard bytes.
struct GuardedTensor {
    static let guardBytes = 64
    static let sentinelInt: Int32 = -1_234_567_891

    let name: String
    let tensor: Tensor
    let whole: Tensor        // an f32 view of the entire buffer, for the raw upload and download
    let image: [UInt8]       // the entire buffer before the op
    var interior: Range<Int> { Self.guardBytes..<(Self.guardBytes + tensor.byteCount) }

    /// Guard bytes vary with position so a shifted copy of them is still caught.
    static func guardByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: 0xA5 &+ i &* 29) }

    /// Bytes of an unwritten output: NaN for floats (so an element the op forgot fails the
    /// finiteness check), a sentinel for ints.
    static func poison(_ dtype: DType, count: Int) -> [UInt8] {
        let element: [UInt8]
        switch dtype {
        case .f32: element = [0x00, 0x00, 0xC0, 0x7F]
        case .f16: element = [0x00, 0x7E]
        case .bf16: element = [0xC0, 0x7F]
        case .i32: element = withUnsafeBytes(of: sentinelInt.littleEndian, Array.init)
        case .q8_0, .q4_0, .q4_1, .q4_K:
            // No op writes quantized blocks; all-ones bytes decode to NaN scales anyway.
            return [UInt8](repeating: 0xFF, count: dtype.byteCount(elements: count))
        }
        return Array((0..<count).map { _ in element }.joined())
    }
}

/// Records one backend's run of an op: the inputs it uploaded (checked untouched afterwards)
/// and its guarded outputs.
final class OpRun {
    let backend: any Backend
    private var inputs: [(tensor: Tensor, bytes: [UInt8])] = []
    private var outputs: [GuardedTensor] = []

    init(_ backend: any Backend) { self.backend = backend }

    func input(_ values: [Float], _ shape: [Int], _ dtype: DType = .f32) throws -> Tensor {
        let t = try backend.tensor(values, shape: shape, dtype: dtype)
        inputs.append((t, HostEncoding.withBytes(of: values, as: dtype, Array.init)))
        return t
    }

    func input(ints values: [Int32], _ shape: [Int]) throws -> Tensor {
        let t = try backend.tensor(ints: values, shape: shape)
        inputs.append((t, values.withUnsafeBytes(Array.init)))
        return t
    }

    /// A guarded output. `initial` gives its contents before the op (for in-place ops and
    /// accumulation); without it the tensor starts poisoned.
    func output(_ name: String, _ shape: [Int], _ dtype: DType = .f32, initial: [Float]? = nil) throws -> Tensor {
        let count = shape.reduce(1, *)
        let body = initial.map { HostEncoding.withBytes(of: $0, as: dtype, Array.init) } ?? GuardedTensor.poison(dtype, count: count)
        return try guarded(name, shape, dtype, body)
    }

    func output(_ name: String, ints shape: [Int], initial: [Int32]? = nil) throws -> Tensor {
        let count = shape.reduce(1, *)
        let body = initial.map { $0.withUnsafeBytes(Array.init) } ?? GuardedTensor.poison(.i32, count: count)
        return try guarded(name, shape, .i32, body)
    }

    private func guarded(_ name: String, _ shape: [Int], _ dtype: DType, _ body: [UInt8]) throws -> Tensor {
        let g = GuardedTensor.guardBytes
        let padded = (body.count + 63) / 64 * 64
        let total = g + padded + g
        let buffer = try backend.makeBuffer(byteCount: total)
        var image = (0..<total).map(GuardedTensor.guardByte)
        image.replaceSubrange(g..<(g + body.count), with: body)
        let whole = try Tensor(buffer: buffer, byteOffset: 0, shape: [total / 4], dtype: .f32)
        try image.withUnsafeBytes { try backend.upload($0, to: whole) }
        let tensor = try Tensor(buffer: buffer, byteOffset: g, shape: shape, dtype: dtype)
        outputs.append(GuardedTensor(name: name, tensor: tensor, whole: whole, image: image))
        return tensor
    }

    /// Waits for the op, then reads every output back. Problems that are not about the values
    /// (guard bytes, modified inputs) come back as messages.
    func finish() throws -> (values: [(name: String, values: OutputValues)], problems: [String]) {
        try backend.synchronize()
        var problems: [String] = []
        var values: [(String, OutputValues)] = []
        for output in outputs {
            var bytes = [UInt8](repeating: 0, count: output.image.count)
            try bytes.withUnsafeMutableBytes { try backend.download(output.whole, into: $0) }
            let interior = output.interior
            var damaged: [Int] = []
            for i in bytes.indices where !interior.contains(i) && bytes[i] != output.image[i] { damaged.append(i) }
            if let first = damaged.first {
                let side = first < interior.lowerBound ? "before" : "after"
                problems.append("\(output.name): \(damaged.count) guard bytes changed, first at byte \(first - interior.lowerBound) relative to the tensor (\(side) it)")
            }
            let slice = Array(bytes[interior])
            let decoded: OutputValues = slice.withUnsafeBytes { raw in
                output.tensor.dtype == .i32 ? .ints(Array(raw.bindMemory(to: Int32.self))) : .floats(HostEncoding.decode(raw, as: output.tensor.dtype))
            }
            values.append((output.name, decoded))
        }
        for (index, input) in inputs.enumerated() {
            let now = try backend.bytes(input.tensor)
            if now != input.bytes { problems.append("input #\(index) \(input.tensor) was modified by the op") }
        }
        return (values, problems)
    }
}

// MARK: - Comparison

/// sum((out - ref)^2) / sum(ref^2); the plain squared error when the reference is all zeros.
func nmse(_ out: [Float], _ ref: [Float]) -> Double {
    var error = 0.0, energy = 0.0
    for (o, r) in zip(out, ref) {
        let d = Double(o) - Double(r)
        error += d * d
        energy += Double(r) * Double(r)
    }
    return energy > 0 ? error / energy : error
}

/// Thresholds on NMSE. Both sides read the same stored 16-bit weights, so even those ops keep
/// tight bounds; what remains is f32 accumulation (and vectorised exp/tanh) against Double.
enum Tolerance {
    /// Copies, gathers, and single IEEE operations: the result should be bit-identical.
    static let exact = 1e-12
    /// Short float reductions and vectorised transcendental functions.
    static let elementwise = 1e-10
    /// Long f32 dot products: matmul, attention, rowDot, psrHead. Observed NMSE stays below
    /// 1e-12; an error in a single term of a dot product of a thousand already gives ~1e-4.
    static let accumulated = 1e-7
}

/// Runs `body` (which uploads inputs, makes outputs and calls one op through `run.backend`)
/// on the reference and on every backend under test, and records an issue for every output
/// that is not finite, is further than `maxNMSE` from the reference, or wrote outside its
/// bounds. Integer outputs must match exactly.
func checkAgainstReference(_ caseName: String, maxNMSE: Double, sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: (OpRun) throws -> Void) {
    for message in compareWithReference(caseName, maxNMSE: maxNMSE, body) {
        Issue.record(Comment(rawValue: "\(message) (seed \(TestSeed.value); replay with \(TestSeed.replay))"),
                     sourceLocation: sourceLocation)
    }
}

/// The comparison itself, returning one message per problem found.
func compareWithReference(_ caseName: String, maxNMSE: Double, backends: [any Backend] = backendsUnderTest(),
                          _ body: (OpRun) throws -> Void) -> [String] {
    var messages: [String] = []
    func report(_ backend: String, _ message: String) { messages.append("[\(caseName)] on \(backend): \(message)") }
    // TILLER_TEST_PRINT_NMSE prints every comparison, for setting thresholds from observed errors.
    let printing = getenv("TILLER_TEST_PRINT_NMSE") != nil

    let expected: [(name: String, values: OutputValues)]
    do {
        let run = OpRun(ReferenceBackend())
        try body(run)
        let result = try run.finish()
        for problem in result.problems { report("reference", problem) }
        expected = result.values
    } catch {
        report("reference", "threw \(error)")
        return messages
    }
    for case let (name, .floats(values)) in expected {
        if let bad = values.firstIndex(where: { !$0.isFinite }) { report("reference", "\(name)[\(bad)] = \(values[bad])") }
    }

    for backend in backends {
        let run = OpRun(backend)
        let result: (values: [(name: String, values: OutputValues)], problems: [String])
        do {
            let (finished, validation) = try exclusively(backend) { () -> (values: [(name: String, values: OutputValues)], problems: [String]) in
                try body(run)
                return try run.finish()
            }
            result = finished
            for message in validation { report(backend.name, "validation layer: \(message)") }
        } catch {
            report(backend.name, "threw \(error)")
            continue
        }
        for problem in result.problems { report(backend.name, problem) }
        for ((name, got), (_, want)) in zip(result.values, expected) {
            switch (got, want) {
            case let (.floats(out), .floats(ref)):
                if let bad = out.firstIndex(where: { !$0.isFinite }) {
                    report(backend.name, "\(name)[\(bad)] = \(out[bad]) (reference \(ref[bad]))")
                    continue
                }
                let error = nmse(out, ref)
                if printing { print("NMSE\t\(backend.name)\t\(error)\t\(caseName)\t\(name)") }
                if !(error <= maxNMSE) {
                    let worst = out.indices.max { abs(out[$0] - ref[$0]) < abs(out[$1] - ref[$1]) } ?? 0
                    report(backend.name, "\(name): NMSE \(error) > \(maxNMSE); worst \(name)[\(worst)] = \(out[worst]), reference \(ref[worst])")
                }
            case let (.ints(out), .ints(ref)):
                if let bad = out.indices.first(where: { out[$0] != ref[$0] }) {
                    let mismatches = out.indices.filter { out[$0] != ref[$0] }.count
                    report(backend.name, "\(name): \(mismatches) of \(out.count) differ; first \(name)[\(bad)] = \(out[bad]), reference \(ref[bad])")
                }
            default:
                report(backend.name, "\(name): output kinds differ from the reference")
            }
        }
    }
    return messages
}

/// Counts as they appear in case names: "3x17".
func shapeName(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "x") }
