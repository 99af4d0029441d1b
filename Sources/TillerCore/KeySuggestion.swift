/// Unknown keys in the JSON users write (prompt lines, triplet lines): a typo such as "steeer"
/// would otherwise be ignored silently and the line run without what it asked for.
public enum KeySuggestion {
    /// The first key of `fields` (in sorted order, so the message is the same every run) that is
    /// not in `known`, as a one-line detail: `unknown key "steeer" (did you mean "steer"?)`, or
    /// the known keys listed when none is near; nil when every key is known.
    public static func unknownKey<Value>(in fields: [String: Value], known: [String]) -> String? {
        guard let key = fields.keys.sorted().first(where: { !known.contains($0) }) else { return nil }
        var detail = "unknown key \(JSONEscaping.quoted(key))"
        if let near = nearest(to: key, in: known) {
            detail += " (did you mean \(JSONEscaping.quoted(near))?)"
        } else {
            detail += " (known keys: \(known.map(JSONEscaping.quoted).joined(separator: ", ")))"
        }
        return detail
    }

    /// The known key closest to `key` by edit distance, when it is close enough to be a typo (at
    /// most a third of the longer name, at least 1) and no other key is as close.
    public static func nearest(to key: String, in known: [String]) -> String? {
        let scored = known.map { ($0, editDistance(key.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        let allowed = max(1, max(key.count, best.0.count) / 3)
        guard best.1 <= allowed, scored.filter({ $0.1 == best.1 }).count == 1 else { return nil }
        return best.0
    }

    /// Levenshtein distance (insertions, deletions, substitutions; a swap of neighbours counts
    /// as one, Damerau's restricted form, since that is the commonest typo).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[x.count][y.count]
    }
}
