import Foundation
import TillerCore

/// The canonical order of a results file: a run's answers in the order of its requests (steerings
/// in the order given, under each the items in input order), which is the order a fresh run
/// appends them in. A resumed run appends what is missing after what was there, so its file can
/// end up in another order; it is rewritten into the canonical one at the end, so a run gives the
/// same bytes however often it was interrupted, and `tiller merge` of eval shards (whose lines are
/// placed by request) gives the bytes of the unsharded run (docs/evaluation.md).
extension EvalResultsFile {
    /// The lines answering none of `requests` (another steering, items past --limit), in file order.
    public func lines(outside requests: [EvalRequest]) -> [EvalResult] {
        let wanted = Set(requests.map { Self.key($0.item.id, $0.arm.key) })
        return results.filter { !wanted.contains(Self.key($0.id, $0.steerKey)) }
    }

    /// Rewrites the file (atomically: a temporary renamed over it, so an interruption leaves the
    /// appended file, which still resumes) with `requests`' lines in request order, in the places
    /// their lines held; lines of other runs stay where they are. Lines keep their bytes; nothing
    /// is dropped. No-op when the file is already in that order or is not a regular file (a FIFO,
    /// a device). Returns whether it rewrote.
    @discardableResult
    public func rewriteInCanonicalOrder(of requests: [EvalRequest]) throws -> Bool {
        var firstLine: [String: Int] = [:]
        for (index, result) in results.enumerated() where firstLine[Self.key(result.id, result.steerKey)] == nil {
            firstLine[Self.key(result.id, result.steerKey)] = index
        }
        var ours: [Int] = []
        var taken: Set<Int> = []
        for request in requests {
            // A request whose line is missing (the run failed before it) has no place to fill.
            if let index = firstLine[Self.key(request.item.id, request.arm.key)], taken.insert(index).inserted { ours.append(index) }
        }
        var order = Array(results.indices)
        for (place, index) in zip(ours.sorted(), ours) { order[place] = index }
        guard order != Array(results.indices) else { return false }
        // Checked before opening: opening a FIFO for writing would wait for a reader.
        guard case .replace = try OutputFile.destination(of: path) else { return false }
        let file = try OutputFile(path)
        var data = Data()
        for index in order { data += lineBytes[index] + Data("\n".utf8) }
        do {
            try file.write(data)
            handle?.closeFile()
            handle = nil
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
        results = order.map { results[$0] }
        lineBytes = order.map { lineBytes[$0] }
        return true
    }
}
