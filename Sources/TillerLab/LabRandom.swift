import TillerCore

/// The few random choices the lab makes, on SplitMix64 with our own index reduction: the standard
/// library's `random(in:using:)` and `shuffle(using:)` may change their algorithms between Swift
/// releases, and a corpus must be byte-for-byte the same for a seed.
extension SplitMix64 {
    /// An index in 0..<count (the modulo bias is below 2^-58 for the counts used here); 0 when count <= 0.
    mutating func index(_ count: Int) -> Int {
        guard count > 0 else { return 0 }
        return Int(next() % UInt64(count))
    }

    /// Only called on the lab's own non-empty lists.
    mutating func pick<T>(_ items: [T]) -> T {
        items[index(items.count)]
    }

    /// `count` distinct items (all of them, shuffled, when count >= items.count).
    mutating func pick<T>(_ items: [T], distinct count: Int) -> [T] {
        Array(shuffled(items).prefix(count))
    }

    /// Fisher-Yates.
    mutating func shuffled<T>(_ items: [T]) -> [T] {
        var items = items
        var i = items.count - 1
        while i > 0 {
            items.swapAt(i, index(i + 1))
            i -= 1
        }
        return items
    }

    mutating func coin() -> Bool { next() >> 63 == 1 }

    /// An independent stream for one purpose (splits, train, held-out), so changing the train count
    /// leaves the splits and the held-out examples as they were.
    static func stream(seed: UInt64, purpose: UInt64) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ (purpose &* 0xD1B5_4A32_D192_ED03))
        return SplitMix64(seed: mixer.next())
    }
}
