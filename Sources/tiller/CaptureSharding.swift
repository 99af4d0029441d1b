import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// How `tiller capture` splits its triplets into shards. A triplet's activations depend, in
/// their last bits, on the padded pass it is computed in (the CPU kernels sum in an order that
/// follows the pass's shape), so a shard runs the passes the unsharded run would: the whole
/// input is tokenized, cut into the unsharded run's passes (`ActivationCapture.batches`), and
/// pass b goes to shard b % N. The merged capture then has the unsharded run's bytes. When a
/// triplet has no completion, its y' (and so its length) is only known once sampled, which
/// every shard would have to do for every line: the shards then split by line (i % N), and the
/// merged activations equal the unsharded run's to float rounding only.
enum CaptureSharding {
    /// The input lines this shard captures (ascending) and its passes (indices into those lines),
    /// nil for the split by line, where the passes are the shard's own.
    static func select(_ shard: ShardRun, lines: [CaptureTripletLine], preparer: CapturePreparer, capture: ActivationCapture,
                       path: String) throws -> (indices: [Int], plan: [[Int]]?) {
        guard lines.allSatisfy({ $0.completion != nil }) else {
            printError("tiller: note: y' is sampled for some triplets, so the shards split by line: merged, their activations equal the unsharded capture's to float rounding, not bit for bit (give every triplet a \"completion\" for identical bytes)")
            return (shard.shard.lines(total: lines.count), nil)
        }
        let all = try preparer.prepare(lines, path: path, generator: nil, options: GenerationOptions())
        let passes = capture.batches(all).enumerated().filter { shard.shard.owns($0.offset) }.map(\.element)
        let indices = passes.flatMap { $0 }.sorted()
        var local: [Int: Int] = [:]
        for (position, line) in indices.enumerated() { local[line] = position }
        return (indices, passes.map { $0.map { local[$0]! } })
    }
}
