import Foundation

// The BPE model: a vocabulary, ranked merges, and the standard merge loop (always merge the adjacent
// pair of lowest rank, leftmost first), run with a priority queue so a long word costs n log n.

final class TokBPE {
    /// token bytes -> id
    let vocab: [[UInt8]: Int32]
    /// id -> token bytes (nil where no token has that id)
    let tokens: [[UInt8]?]
    /// (left id << 32 | right id) -> (rank, merged id)
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkID: Int32?
    let byteFallback: Bool
    let fuseUnk: Bool
    let ignoreMerges: Bool
    let continuingSubwordPrefix: [UInt8]?
    let endOfWordSuffix: [UInt8]?
    /// byte -> id of "<0xXX>", when byte fallback is on and the token exists
    let byteTokenIDs: [Int32?]

    private var cache: [[UInt8]: [Int32]] = [:]
    private let cacheLock = NSLock()
    private static let cacheCapacity = 20_000
    /// Words longer than this are not cached (they rarely repeat).
    private static let cacheMaxWordBytes = 256

    init(vocab: [[UInt8]: Int32], tokens: [[UInt8]?], merges: [UInt64: (rank: Int32, id: Int32)],
         unkID: Int32?, byteFallback: Bool, fuseUnk: Bool, ignoreMerges: Bool,
         continuingSubwordPrefix: [UInt8]?, endOfWordSuffix: [UInt8]?) {
        self.vocab = vocab
        self.tokens = tokens
        self.merges = merges
        self.unkID = unkID
        self.byteFallback = byteFallback
        self.fuseUnk = fuseUnk
        self.ignoreMerges = ignoreMerges
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.endOfWordSuffix = endOfWordSuffix
        var byteIDs = [Int32?](repeating: nil, count: 256)
        if byteFallback {
            let hex = Array("0123456789ABCDEF".utf8)
            for b in 0..<256 {
                let name: [UInt8] = Array("<0x".utf8) + [hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]
                byteIDs[b] = vocab[name]
            }
        }
        self.byteTokenIDs = byteIDs
    }

    func token(_ id: Int32) -> [UInt8]? {
        guard id >= 0, Int(id) < tokens.count else { return nil }
        return tokens[Int(id)]
    }

    /// The ids of one pre-tokenized word.
    func tokenize(_ word: [UInt8]) -> [Int32] {
        if word.isEmpty { return [] }
        if ignoreMerges, let id = vocab[word] { return [id] }
        let cacheable = word.count <= Self.cacheMaxWordBytes
        if cacheable {
            cacheLock.lock()
            let hit = cache[word]
            cacheLock.unlock()
            if let hit { return hit }
        }
        let ids = mergeWord(word)
        if cacheable {
            cacheLock.lock()
            if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
            cache[word] = ids
            cacheLock.unlock()
        }
        return ids
    }

    private func mergeWord(_ word: [UInt8]) -> [Int32] {
        // 1. One symbol per scalar (or per byte, through byte fallback; or an unknown token).
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var pendingUnk = false
        var i = 0
        let hasAffixes = continuingSubwordPrefix != nil || endOfWordSuffix != nil
        while i < word.count {
            let (_, length) = TokText.decodeScalar(word, at: i)
            let isFirst = i == 0
            let isLast = i + length >= word.count
            var piece = Array(word[i..<min(i + length, word.count)])
            if hasAffixes {
                if !isFirst, let prefix = continuingSubwordPrefix { piece = prefix + piece }
                if isLast, let suffix = endOfWordSuffix { piece += suffix }
            }
            i += length
            if let id = vocab[piece] {
                if pendingUnk, let unk = unkID { symbols.append(unk) }
                pendingUnk = false
                symbols.append(id)
                continue
            }
            if byteFallback {
                var byteIDs: [Int32] = []
                byteIDs.reserveCapacity(piece.count)
                for b in piece {
                    guard let id = byteTokenIDs[Int(b)] else { break }
                    byteIDs.append(id)
                }
                if byteIDs.count == piece.count {
                    // The reference adds byte tokens without flushing a pending unknown token first.
                    symbols += byteIDs
                    continue
                }
            }
            if let unk = unkID {
                if pendingUnk && !fuseUnk { symbols.append(unk) }
                pendingUnk = true
            }
            // Without an unknown token the character is dropped, as in the reference.
        }
        if pendingUnk, let unk = unkID { symbols.append(unk) }
        if symbols.count < 2 || merges.isEmpty { return symbols }

        // 2. Merge: a doubly linked list over the symbols and a heap of candidate pairs.
        let n = symbols.count
        var ids = symbols
        var prev = [Int](repeating: -1, count: n)
        var next = [Int](repeating: -1, count: n)
        var alive = [Bool](repeating: true, count: n)
        for k in 0..<n {
            prev[k] = k - 1
            next[k] = k + 1 < n ? k + 1 : -1
        }
        var heap = TokMergeHeap()
        for k in 0..<(n - 1) {
            if let m = merges[Self.pairKey(ids[k], ids[k + 1])] { heap.push(rank: m.rank, pos: k, id: m.id) }
        }
        while let top = heap.pop() {
            let pos = top.pos
            guard alive[pos] else { continue }
            let right = next[pos]
            guard right >= 0 else { continue }
            // Skip stale entries: the pair at `pos` must still merge into the same token.
            guard let m = merges[Self.pairKey(ids[pos], ids[right])], m.id == top.id else { continue }
            ids[pos] = m.id
            alive[right] = false
            let after = next[right]
            next[pos] = after
            if after >= 0 { prev[after] = pos }
            let before = prev[pos]
            if before >= 0, let pm = merges[Self.pairKey(ids[before], ids[pos])] {
                heap.push(rank: pm.rank, pos: before, id: pm.id)
            }
            if after >= 0, let nm = merges[Self.pairKey(ids[pos], ids[after])] {
                heap.push(rank: nm.rank, pos: pos, id: nm.id)
            }
        }
        var out: [Int32] = []
        var k = 0
        while k >= 0 && k < n {
            out.append(ids[k])
            k = next[k]
        }
        return out
    }

    @inline(__always)
    static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }
}

/// A binary min-heap of merge candidates ordered by (rank, position).
struct TokMergeHeap {
    private var items: [(rank: Int32, pos: Int, id: Int32)] = []

    @inline(__always)
    private static func less(_ a: (rank: Int32, pos: Int, id: Int32), _ b: (rank: Int32, pos: Int, id: Int32)) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
    }

    mutating func push(rank: Int32, pos: Int, id: Int32) {
        items.append((rank, pos, id))
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            if Self.less(items[c], items[p]) { items.swapAt(c, p); c = p } else { break }
        }
    }

    mutating func pop() -> (rank: Int32, pos: Int, id: Int32)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var p = 0
            let n = items.count
            while true {
                let l = 2 * p + 1
                let r = l + 1
                var m = p
                if l < n && Self.less(items[l], items[m]) { m = l }
                if r < n && Self.less(items[r], items[m]) { m = r }
                if m == p { break }
                items.swapAt(p, m)
                p = m
            }
        }
        return first
    }
}
