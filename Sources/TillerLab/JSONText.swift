import TillerCore
/// A JSON value with ordered object keys, written by hand: the corpus contract fixes the key order,
/// which JSONSerialization does not keep. Compact output uses Python's json.dumps separators
/// (", " and ": "), so `json.dumps(json.loads(line)) == line` for every corpus line.
indirect enum JSONText: Sendable {
    case string(String)
    case int(Int)
    case uint(UInt64)
    case bool(Bool)
    case array([JSONText])
    case object([(String, JSONText)])

    /// One line.
    var compact: String {
        var out = ""
        write(to: &out, indent: nil, depth: 0)
        return out
    }

    /// Two-space indentation; arrays of scalars and short records stay on one line, so word lists read as lists.
    var pretty: String {
        var out = ""
        write(to: &out, indent: "  ", depth: 0)
        return out
    }

    /// An object of scalars and scalar lists that fits on a line stays on one, like a table row.
    private var isShortRecord: Bool {
        guard case .object(let members) = self else { return false }
        return members.allSatisfy { _, value in
            if case .array(let items) = value { return items.allSatisfy(\.isScalar) }
            return value.isScalar
        } && compact.count <= 100
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    private func write(to out: inout String, indent: String?, depth: Int) {
        switch self {
        case .string(let s): JSONText.escape(s, into: &out)
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .bool(let b): out += b ? "true" : "false"
        case .array(let items):
            if let indent, !items.isEmpty, !items.allSatisfy(\.isScalar) {
                out += "[\n"
                for (i, item) in items.enumerated() {
                    out += String(repeating: indent, count: depth + 1)
                    item.write(to: &out, indent: indent, depth: depth + 1)
                    out += i == items.count - 1 ? "\n" : ",\n"
                }
                out += String(repeating: indent, count: depth) + "]"
            } else {
                out += "["
                for (i, item) in items.enumerated() {
                    if i > 0 { out += ", " }
                    item.write(to: &out, indent: nil, depth: depth)
                }
                out += "]"
            }
        case .object(let members):
            if let indent, !members.isEmpty, !isShortRecord {
                out += "{\n"
                for (i, (key, value)) in members.enumerated() {
                    out += String(repeating: indent, count: depth + 1)
                    JSONText.escape(key, into: &out)
                    out += ": "
                    value.write(to: &out, indent: indent, depth: depth + 1)
                    out += i == members.count - 1 ? "\n" : ",\n"
                }
                out += String(repeating: indent, count: depth) + "}"
            } else {
                out += "{"
                for (i, (key, value)) in members.enumerated() {
                    if i > 0 { out += ", " }
                    JSONText.escape(key, into: &out)
                    out += ": "
                    value.write(to: &out, indent: nil, depth: depth)
                }
                out += "}"
            }
        }
    }

    static func escape(_ s: String, into out: inout String) {
        out += JSONEscaping.quoted(s)
    }
}
