import Foundation

// The values a chat template computes with, modelled on the Python objects Jinja2 sees when
// transformers renders a template: str, int, float, bool, None, list, tuple, dict (insertion
// ordered), Jinja's Undefined and Namespace, and callables. Strings are sequences of Unicode
// scalars, as Python's are: lengths, slices, comparisons and equality never look at grapheme
// clusters or canonical equivalence.

/// Why a template could not be parsed or rendered. `offset` is the position in the
/// newline-normalised template source, counted in Unicode scalars; it is filled in by the
/// innermost expression or statement that saw the error.
struct JinjaError: Error {
    enum Kind { case syntax, runtime, raised }
    var kind: Kind
    var message: String
    var offset: Int?

    static func syntax(_ message: String, at offset: Int?) -> JinjaError {
        JinjaError(kind: .syntax, message: message, offset: offset)
    }
    static func runtime(_ message: String) -> JinjaError {
        JinjaError(kind: .runtime, message: message, offset: nil)
    }
    static func type(_ message: String) -> JinjaError { runtime("TypeError: " + message) }
}

/// An insertion-ordered dictionary whose keys compare as Python's do (1 == 1.0 == True).
struct JinjaDict {
    private(set) var keys: [JinjaValue] = []
    private(set) var values: [JinjaValue] = []

    init() {}

    /// A dictionary of distinct string keys, without checking them.
    init(uniqueStringKeys pairs: [(String, JinjaValue)]) {
        keys = pairs.map { .string($0.0) }
        values = pairs.map(\.1)
    }

    var count: Int { keys.count }

    func index(of key: JinjaValue) -> Int? {
        if case .string(let s) = key {
            // The common case, without the general comparison.
            return keys.firstIndex { if case .string(let k) = $0 { return k.utf8.elementsEqual(s.utf8) } else { return false } }
        }
        return keys.firstIndex { pyEqual($0, key) }
    }

    subscript(key: JinjaValue) -> JinjaValue? {
        guard let i = index(of: key) else { return nil }
        return values[i]
    }

    subscript(string key: String) -> JinjaValue? { self[.string(key)] }

    /// Sets a value; an existing equal key keeps its original spelling, as in Python.
    mutating func set(_ key: JinjaValue, _ value: JinjaValue) throws {
        guard key.isHashable else { throw JinjaError.type("unhashable type: '\(key.typeName)'") }
        if let i = index(of: key) { values[i] = value } else { keys.append(key); values.append(value) }
    }

    mutating func set(string key: String, _ value: JinjaValue) {
        if let i = index(of: .string(key)) { values[i] = value } else { keys.append(.string(key)); values.append(value) }
    }

    var pairs: [(key: JinjaValue, value: JinjaValue)] { Array(zip(keys, values)).map { (key: $0.0, value: $0.1) } }
}

/// Jinja's namespace(): the one mutable object a template can make (`{% set ns.x = 1 %}`).
final class JinjaNamespace {
    var attributes = JinjaDict()
}

/// A one-shot Python generator, as Jinja's select, map, unique, batch and items filters (and
/// reverse on sequences) return: always true, without a length, exhausted once iterated. Like a
/// generator it does its work (and raises its errors) only when first iterated.
final class JinjaIterator {
    let kind: String
    private var pending: (() throws -> [JinjaValue])?
    private var items: [JinjaValue] = []
    private var position = 0

    init(_ kind: String, _ items: [JinjaValue]) {
        self.kind = kind
        self.items = items
    }

    init(_ kind: String, lazy produce: @escaping () throws -> [JinjaValue]) {
        self.kind = kind
        pending = produce
    }

    private func start() throws {
        if let produce = pending {
            pending = nil
            items = try produce()
        }
    }

    /// The items not yet consumed; consumes them.
    func drain() throws -> [JinjaValue] {
        try start()
        let rest = Array(items[position...])
        position = items.count
        return rest
    }

    /// The next item, consumed; nil when exhausted.
    func next() throws -> JinjaValue? {
        try start()
        guard position < items.count else { return nil }
        position += 1
        return items[position - 1]
    }

    /// The items not yet consumed (none while the work is still pending).
    var remaining: [JinjaValue] { pending == nil ? Array(items[position...]) : [] }
}

/// Positional and keyword arguments of a call, a filter or a test.
struct JinjaArguments {
    var positional: [JinjaValue] = []
    var keyword: [(String, JinjaValue)] = []

    /// Binds the arguments to parameter names, Python style; nil where none was given.
    func bind(_ function: String, _ names: [String]) throws -> [JinjaValue?] {
        if positional.count > names.count {
            throw JinjaError.type("\(function)() takes at most \(names.count) argument\(names.count == 1 ? "" : "s") (\(positional.count) given)")
        }
        var out = [JinjaValue?](repeating: nil, count: names.count)
        for (i, v) in positional.enumerated() { out[i] = v }
        for (k, v) in keyword {
            guard let idx = names.firstIndex(of: k) else {
                throw JinjaError.type("\(function)() got an unexpected keyword argument '\(k)'")
            }
            if out[idx] != nil { throw JinjaError.type("\(function)() got multiple values for argument '\(k)'") }
            out[idx] = v
        }
        return out
    }
}

/// A function a template can call: a global (range, namespace, raise_exception, ...), a
/// bound method of a value ('abc'.upper), a macro, or loop.cycle.
struct JinjaCallable {
    let name: String
    let call: (JinjaArguments) throws -> JinjaValue
}

enum JinjaValue {
    /// Jinja's Undefined; the text is the message an error about it shows ("'x' is undefined").
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case callable(JinjaCallable)
    case iterator(JinjaIterator)

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        case .iterator(let it): return it.kind
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    var isNone: Bool { if case .none = self { return true } else { return false } }

    var isHashable: Bool {
        switch self {
        case .undefined, .none, .bool, .int, .double, .string, .callable, .namespace, .iterator: return true
        case .tuple(let items): return items.allSatisfy(\.isHashable)
        case .list, .dict: return false
        }
    }

    /// Python truthiness (an Undefined is false).
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.unicodeScalars.isEmpty
        case .list(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .callable, .iterator: return true
        }
    }

    /// The value as a number, when it is one (bool counts, as in Python).
    var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .bool(let b): return b ? 1 : 0
        case .double(let d): return d
        default: return nil
        }
    }

    var isNumber: Bool { doubleValue != nil }

    /// Python's str(value); Jinja prints an Undefined as the empty string.
    var pyStr: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pyRepr
        }
    }

    /// Python's repr(value).
    var pyRepr: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pyFloatRepr(d)
        case .string(let s): return pyStringRepr(s)
        case .list(let items): return "[" + items.map(\.pyRepr).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + items[0].pyRepr + ",)" }
            return "(" + items.map(\.pyRepr).joined(separator: ", ") + ")"
        case .dict(let d):
            return "{" + d.pairs.map { $0.key.pyRepr + ": " + $0.value.pyRepr }.joined(separator: ", ") + "}"
        case .namespace(let ns): return "<Namespace " + JinjaValue.dict(ns.attributes).pyRepr + ">"
        case .callable(let f): return "<function \(f.name)>"
        case .iterator(let it): return "<\(it.kind) object>"
        }
    }
}

extension JinjaValue {
    /// How deeply values may nest (lists in lists, namespaces holding namespaces, ...): the
    /// printing, comparison and release of values recurse once per level.
    static let maxNesting = 128

    /// Whether the value nests deeper than `limit` levels (a namespace that holds itself does).
    func nestsDeeper(than limit: Int) -> Bool {
        if limit < 0 { return true }
        switch self {
        case .list(let items), .tuple(let items): return items.contains { $0.nestsDeeper(than: limit - 1) }
        case .iterator(let it): return it.remaining.contains { $0.nestsDeeper(than: limit - 1) }
        case .dict(let d): return d.keys.contains { $0.nestsDeeper(than: limit - 1) } || d.values.contains { $0.nestsDeeper(than: limit - 1) }
        case .namespace(let ns): return JinjaValue.dict(ns.attributes).nestsDeeper(than: limit - 1)
        default: return false
        }
    }

    /// The value itself, or an error when it nests too deeply.
    func checkedNesting() throws -> JinjaValue {
        if nestsDeeper(than: JinjaValue.maxNesting) {
            throw JinjaError.runtime("a value is nested more than \(JinjaValue.maxNesting) levels deep")
        }
        return self
    }
}

// MARK: - Python semantics

/// Python's str.isspace() for one character (also what `\s` matches in a str regex).
func pyIsSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

func pyStringEqual(_ a: String, _ b: String) -> Bool { a.unicodeScalars.elementsEqual(b.unicodeScalars) }

/// Python's ==.
func pyEqual(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
    switch (a, b) {
    case (.undefined, .undefined), (.none, .none): return true
    case (.string(let x), .string(let y)): return pyStringEqual(x, y)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { pyEqual($0, $1) }
    case (.dict(let x), .dict(let y)):
        guard x.count == y.count else { return false }
        for (k, v) in x.pairs {
            guard let w = y[k], pyEqual(v, w) else { return false }
        }
        return true
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.iterator(let x), .iterator(let y)): return x === y
    default:
        if let x = a.intValue, let y = b.intValue { return x == y }
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return false
    }
}

/// Python's < (raises TypeError where Python does).
func pyLess(_ a: JinjaValue, _ b: JinjaValue, op: String = "<") throws -> Bool {
    switch (a, b) {
    case (.string(let x), .string(let y)):
        return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        for (u, v) in zip(x, y) where !pyEqual(u, v) { return try pyLess(u, v, op: op) }
        return x.count < y.count
    default:
        if let x = a.intValue, let y = b.intValue { return x < y }
        if let x = a.doubleValue, let y = b.doubleValue { return x < y }
        throw JinjaError.type("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
    }
}

/// Python's repr of a float: the shortest digits that round-trip, positional between 1e-4
/// and 1e16, scientific outside, always with a '.0' or an exponent.
func pyFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description is also shortest-round-trip; take its digits and exponent.
    let text = "\(d.magnitude)"
    var mantissa = Substring(text)
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        mantissa = text[text.startIndex..<e]
        exponent = Int(text[text.index(after: e)...]) ?? 0
    }
    var digits = ""
    var pointPosition: Int? = nil
    for ch in mantissa {
        if ch == "." { pointPosition = digits.count } else { digits.append(ch) }
    }
    var decpt = (pointPosition ?? digits.count) + exponent
    // Strip leading zeros (adjusting the point) and trailing zeros.
    while digits.hasPrefix("0") && digits.count > 1 { digits.removeFirst(); decpt -= 1 }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    let sign = d < 0 ? "-" : ""
    let n = digits.count
    if decpt <= -4 || decpt > 16 {
        let exp = decpt - 1
        var out = sign + String(digits.prefix(1))
        if n > 1 { out += "." + digits.dropFirst() }
        let magnitude = abs(exp)
        out += (exp < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + String(magnitude)
        return out
    }
    if decpt <= 0 { return sign + "0." + String(repeating: "0", count: -decpt) + digits }
    if decpt >= n { return sign + digits + String(repeating: "0", count: decpt - n) + ".0" }
    return sign + String(digits.prefix(decpt)) + "." + String(digits.dropFirst(decpt))
}

/// Python's str.isprintable() for one character, near enough: control, format, separator
/// (other than space), surrogate, private-use and unassigned characters are not printable.
func pyIsPrintable(_ c: Unicode.Scalar) -> Bool {
    if c.value < 0x7F { return c.value >= 0x20 }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}

/// Python's repr of a str.
func pyStringRepr(_ s: String) -> String {
    let hasSingle = s.unicodeScalars.contains("'"), hasDouble = s.unicodeScalars.contains("\"")
    let quote: Unicode.Scalar = (hasSingle && !hasDouble) ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for c in s.unicodeScalars {
        switch c {
        case quote, "\\": out.append("\\"); out.append(c)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        default:
            if pyIsPrintable(c) {
                out.append(c)
            } else if c.value < 0x100 {
                out.append(contentsOf: ("\\x" + hex(c.value, width: 2)).unicodeScalars)
            } else if c.value < 0x10000 {
                out.append(contentsOf: ("\\u" + hex(c.value, width: 4)).unicodeScalars)
            } else {
                out.append(contentsOf: ("\\U" + hex(c.value, width: 8)).unicodeScalars)
            }
        }
    }
    out.append(quote)
    return String(out)
}

func hex(_ v: UInt32, width: Int) -> String {
    let digits = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

// MARK: - JSON (Python's json.dumps, as transformers' tojson filter calls it)

struct PyJSONOptions {
    var ensureASCII = false
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false
}

func pyJSONString(_ s: String, ensureASCII: Bool) -> String {
    var out = String.UnicodeScalarView()
    out.append("\"")
    for c in s.unicodeScalars {
        switch c {
        case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
        case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case "\u{08}": out.append(contentsOf: "\\b".unicodeScalars)
        case "\u{0C}": out.append(contentsOf: "\\f".unicodeScalars)
        default:
            if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                if c.value >= 0x10000 {
                    let v = c.value - 0x10000
                    out.append(contentsOf: ("\\u" + hex(0xD800 + (v >> 10), width: 4)).unicodeScalars)
                    out.append(contentsOf: ("\\u" + hex(0xDC00 + (v & 0x3FF), width: 4)).unicodeScalars)
                } else {
                    out.append(contentsOf: ("\\u" + hex(c.value, width: 4)).unicodeScalars)
                }
            } else {
                out.append(c)
            }
        }
    }
    out.append("\"")
    return String(out)
}

private func pyJSONFloat(_ d: Double) -> String {
    if d.isNaN { return "NaN" }
    if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
    return pyFloatRepr(d)
}

func pyJSON(_ value: JinjaValue, _ options: PyJSONOptions, level: Int = 0) throws -> String {
    guard level < 64 else { throw JinjaError.runtime("ValueError: tojson: value nested too deeply") }
    switch value {
    case .none: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d): return pyJSONFloat(d)
    case .string(let s): return pyJSONString(s, ensureASCII: options.ensureASCII)
    case .list(let items), .tuple(let items):
        if items.isEmpty { return "[]" }
        let parts = try items.map { try pyJSON($0, options, level: level + 1) }
        return wrapJSON(parts, open: "[", close: "]", options, level: level)
    case .dict(let d):
        if d.count == 0 { return "{}" }
        var entries: [(String, JinjaValue)] = []
        for (k, v) in d.pairs {
            let key: String
            switch k {
            case .string(let s): key = s
            case .int(let i): key = String(i)
            case .double(let x): key = pyJSONFloat(x)
            case .bool(let b): key = b ? "true" : "false"
            case .none: key = "null"
            default: throw JinjaError.type("keys must be str, int, float, bool or None, not \(k.typeName)")
            }
            entries.append((key, v))
        }
        if options.sortKeys {
            entries.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
        }
        let parts = try entries.map {
            pyJSONString($0.0, ensureASCII: options.ensureASCII) + options.keySeparator + (try pyJSON($0.1, options, level: level + 1))
        }
        return wrapJSON(parts, open: "{", close: "}", options, level: level)
    case .undefined, .namespace, .callable, .iterator:
        let name = value.isUndefined ? "Undefined" : value.typeName
        throw JinjaError.type("Object of type \(name) is not JSON serializable")
    }
}

private func wrapJSON(_ parts: [String], open: String, close: String, _ options: PyJSONOptions, level: Int) -> String {
    guard let indent = options.indent else {
        return open + parts.joined(separator: options.itemSeparator) + close
    }
    let inner = "\n" + String(repeating: indent, count: level + 1)
    let outer = "\n" + String(repeating: indent, count: level)
    return open + inner + parts.joined(separator: options.itemSeparator + inner) + outer + close
}
