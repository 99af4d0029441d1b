import Foundation

/// A calendar date and time of day, for strftime_now.
struct JinjaDate {
    var year: Int
    var month: Int
    var day: Int
    var hour = 0
    var minute = 0
    var second = 0

    /// 0 = Monday ... 6 = Sunday.
    var weekdayFromMonday: Int {
        // Days since 1970-01-01 (a Thursday), by the civil-from-days inverse.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return ((days % 7) + 7 + 3) % 7
    }

    var isLeapYear: Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    /// 1-based day of the year.
    var dayOfYear: Int {
        let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
        let m = min(max(month, 1), 12)
        return cumulative[m - 1] + day + (m > 2 && isLeapYear ? 1 : 0)
    }

    private static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    private static let months = ["January", "February", "March", "April", "May", "June", "July", "August",
                                 "September", "October", "November", "December"]

    /// C-locale strftime, as Python's datetime.strftime on glibc: the common conversions,
    /// glibc's `-` (no padding) flag; %z and %Z are empty (a naive datetime).
    func strftime(_ format: String) -> String {
        let f = Array(format.unicodeScalars)
        var out = ""
        var i = 0
        func pad(_ v: Int, _ width: Int, _ flag: Unicode.Scalar?, _ defaultPad: Character = "0") -> String {
            let s = String(v)
            if flag == "-" { return s }
            let padChar: Character = flag == "_" ? " " : (flag == "0" ? "0" : defaultPad)
            return String(repeating: padChar, count: max(0, width - s.count)) + s
        }
        let weekday = Self.weekdays[weekdayFromMonday]
        let monthName = Self.months[min(max(month, 1), 12) - 1]
        let hour12 = hour % 12 == 0 ? 12 : hour % 12
        while i < f.count {
            let c = f[i]
            guard c == "%", i + 1 < f.count else { out.unicodeScalars.append(c); i += 1; continue }
            var j = i + 1
            var flag: Unicode.Scalar? = nil
            if f[j] == "-" || f[j] == "_" || f[j] == "0", j + 1 < f.count { flag = f[j]; j += 1 }
            let code = f[j]
            var piece: String? = nil
            switch code {
            case "a": piece = String(weekday.prefix(3))
            case "A": piece = weekday
            case "b", "h": piece = String(monthName.prefix(3))
            case "B": piece = monthName
            case "c": piece = strftime("%a %b %e %H:%M:%S %Y")
            case "C": piece = pad(year / 100, 2, flag)
            case "d": piece = pad(day, 2, flag)
            case "D", "x": piece = strftime("%m/%d/%y")
            case "e": piece = pad(day, 2, flag, " ")
            case "F": piece = strftime("%Y-%m-%d")
            case "H": piece = pad(hour, 2, flag)
            case "I": piece = pad(hour12, 2, flag)
            case "j": piece = pad(dayOfYear, 3, flag)
            case "k": piece = pad(hour, 2, flag, " ")
            case "l": piece = pad(hour12, 2, flag, " ")
            case "m": piece = pad(month, 2, flag)
            case "M": piece = pad(minute, 2, flag)
            case "n": piece = "\n"
            case "p": piece = hour < 12 ? "AM" : "PM"
            case "P": piece = hour < 12 ? "am" : "pm"
            case "r": piece = strftime("%I:%M:%S %p")
            case "R": piece = strftime("%H:%M")
            case "S": piece = pad(second, 2, flag)
            case "t": piece = "\t"
            case "T", "X": piece = strftime("%H:%M:%S")
            case "u": piece = String(weekdayFromMonday + 1)
            case "w": piece = String((weekdayFromMonday + 1) % 7)
            case "U": piece = pad((dayOfYear - 1 + 7 - (weekdayFromMonday + 1) % 7) / 7, 2, flag)
            case "W": piece = pad((dayOfYear - 1 + 7 - weekdayFromMonday) / 7, 2, flag)
            case "y": piece = pad(year % 100, 2, flag)
            case "Y": piece = String(year)
            case "z", "Z": piece = ""
            case "%": piece = "%"
            default: piece = nil
            }
            if let piece {
                out += piece
                i = j + 1
            } else {
                out.unicodeScalars.append(c)
                i += 1
            }
        }
        return out
    }
}

/// Python's str methods, on Unicode scalars.
enum PyString {
    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func make<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars)
        return String(v)
    }

    static func strip(_ s: String, _ chars: String?, left: Bool = true, right: Bool = true) -> String {
        let a = scalars(s)
        let set: Set<Unicode.Scalar>? = chars.map { Set($0.unicodeScalars) }
        func drop(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? pyIsSpace(c) }
        var lo = 0, hi = a.count
        if left { while lo < hi && drop(a[lo]) { lo += 1 } }
        if right { while hi > lo && drop(a[hi - 1]) { hi -= 1 } }
        return make(a[lo..<hi])
    }

    static func find(_ sub: String, in s: String, from start: Int = 0) -> Int? {
        let a = scalars(s), b = scalars(sub)
        if b.isEmpty { return start <= a.count ? start : nil }
        guard a.count >= b.count, start <= a.count - b.count else { return nil }
        outer: for i in start...(a.count - b.count) {
            for k in 0..<b.count where a[i + k] != b[k] { continue outer }
            return i
        }
        return nil
    }

    static func rfind(_ sub: String, in s: String) -> Int? {
        let a = scalars(s), b = scalars(sub)
        if b.isEmpty { return a.count }
        guard a.count >= b.count else { return nil }
        outer: for i in stride(from: a.count - b.count, through: 0, by: -1) {
            for k in 0..<b.count where a[i + k] != b[k] { continue outer }
            return i
        }
        return nil
    }

    static func count(_ sub: String, in s: String) -> Int {
        let a = scalars(s), b = scalars(sub)
        if b.isEmpty { return a.count + 1 }
        var n = 0, i = 0
        while i + b.count <= a.count {
            if Array(a[i..<(i + b.count)]) == b { n += 1; i += b.count } else { i += 1 }
        }
        return n
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int = -1) throws -> String {
        let a = scalars(s), o = scalars(old), n = scalars(new)
        var out: [Unicode.Scalar] = []
        var remaining = count < 0 ? Int.max : count
        if o.isEmpty {
            for c in a {
                if remaining > 0 { out += n; remaining -= 1 }
                out.append(c)
                if out.count > JinjaInterpreter.maxStringBytes { throw JinjaError.runtime("a string grew longer than \(JinjaInterpreter.maxStringBytes) bytes") }
            }
            if remaining > 0 { out += n }
            return make(out)
        }
        var i = 0
        while i < a.count {
            if remaining > 0, i + o.count <= a.count, Array(a[i..<(i + o.count)]) == o {
                out += n
                i += o.count
                remaining -= 1
                if out.count > JinjaInterpreter.maxStringBytes { throw JinjaError.runtime("a string grew longer than \(JinjaInterpreter.maxStringBytes) bytes") }
            } else {
                out.append(a[i])
                i += 1
            }
        }
        return make(out)
    }

    static func split(_ s: String, _ sep: String?, maxsplit: Int = -1) throws -> [String] {
        let a = scalars(s)
        var parts: [String] = []
        var splits = maxsplit < 0 ? Int.max : maxsplit
        guard let sep else {
            var i = 0
            while i < a.count {
                while i < a.count && pyIsSpace(a[i]) { i += 1 }
                if i >= a.count { break }
                if splits == 0 {
                    var end = a.count
                    while end > i && pyIsSpace(a[end - 1]) { end -= 1 }
                    parts.append(make(a[i..<end]))
                    break
                }
                let start = i
                while i < a.count && !pyIsSpace(a[i]) { i += 1 }
                parts.append(make(a[start..<i]))
                splits -= 1
            }
            return parts
        }
        let b = scalars(sep)
        guard !b.isEmpty else { throw JinjaError.runtime("ValueError: empty separator") }
        var start = 0, i = 0
        while i + b.count <= a.count && splits > 0 {
            if Array(a[i..<(i + b.count)]) == b {
                parts.append(make(a[start..<i]))
                i += b.count
                start = i
                splits -= 1
            } else {
                i += 1
            }
        }
        parts.append(make(a[start...]))
        return parts
    }

    static func rsplit(_ s: String, _ sep: String?, maxsplit: Int = -1) throws -> [String] {
        if maxsplit < 0 { return try split(s, sep) }
        let a = scalars(s)
        var parts: [String] = []
        var splits = maxsplit
        guard let sep else {
            var i = a.count
            while i > 0 {
                while i > 0 && pyIsSpace(a[i - 1]) { i -= 1 }
                if i == 0 { break }
                if splits == 0 {
                    var begin = 0
                    while begin < i && pyIsSpace(a[begin]) { begin += 1 }
                    parts.append(make(a[begin..<i]))
                    break
                }
                let end = i
                while i > 0 && !pyIsSpace(a[i - 1]) { i -= 1 }
                parts.append(make(a[i..<end]))
                splits -= 1
            }
            return parts.reversed()
        }
        let b = scalars(sep)
        guard !b.isEmpty else { throw JinjaError.runtime("ValueError: empty separator") }
        var end = a.count, i = a.count - b.count
        while i >= 0 && splits > 0 {
            if Array(a[i..<(i + b.count)]) == b {
                parts.append(make(a[(i + b.count)..<end]))
                end = i
                i -= b.count
                splits -= 1
            } else {
                i -= 1
            }
        }
        parts.append(make(a[0..<end]))
        return parts.reversed()
    }

    static let lineBreaks: Set<UInt32> = [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]

    static func splitlines(_ s: String, keepends: Bool = false) -> [String] {
        let a = scalars(s)
        var lines: [String] = []
        var start = 0, i = 0
        while i < a.count {
            if lineBreaks.contains(a[i].value) {
                var end = i + 1
                if a[i] == "\r" && i + 1 < a.count && a[i + 1] == "\n" { end = i + 2 }
                lines.append(make(a[start..<(keepends ? end : i)]))
                start = end
                i = end
            } else {
                i += 1
            }
        }
        if start < a.count { lines.append(make(a[start...])) }
        return lines
    }

    static func isCased(_ c: Unicode.Scalar) -> Bool { c.properties.isCased }

    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            let ch = String(c)
            if previousCased { out += ch.lowercased() } else { out += ch.uppercased() }
            previousCased = isCased(c)
        }
        return out
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return "" }
        return String(first).uppercased() + make(s.unicodeScalars.dropFirst()).lowercased()
    }

    static func isLower(_ s: String) -> Bool {
        var cased = false
        for c in s.unicodeScalars where isCased(c) {
            if c.properties.isUppercase || c.properties.changesWhenLowercased { return false }
            cased = true
        }
        return cased
    }

    static func isUpper(_ s: String) -> Bool {
        var cased = false
        for c in s.unicodeScalars where isCased(c) {
            if c.properties.isLowercase || c.properties.changesWhenUppercased { return false }
            cased = true
        }
        return cased
    }

    static func center(_ s: String, _ width: Int, fill: String = " ") -> String {
        let n = s.unicodeScalars.count
        guard width > n else { return s }
        let marg = width - n
        let left = marg / 2 + (marg & width & 1)
        return String(repeating: fill, count: left) + s + String(repeating: fill, count: marg - left)
    }

    /// Python's `str % args` (printf-style) for the common conversions.
    static func percentFormat(_ format: String, _ args: [JinjaValue], mapping: JinjaValue?) throws -> String {
        func tooWide() -> JinjaError { JinjaError.runtime("a format width or precision is too large") }
        let f = scalars(format)
        var out = ""
        var argIndex = 0
        var i = 0
        var usedMapping = false
        while i < f.count {
            guard f[i] == "%" else { out.unicodeScalars.append(f[i]); i += 1; continue }
            i += 1
            guard i < f.count else { throw JinjaError.runtime("ValueError: incomplete format") }
            if f[i] == "%" { out += "%"; i += 1; continue }
            var value: JinjaValue? = nil
            if f[i] == "(" {
                guard let close = f[i...].firstIndex(of: ")") else { throw JinjaError.runtime("ValueError: incomplete format key") }
                let key = make(f[(i + 1)..<close])
                guard case .dict(let d)? = mapping else { throw JinjaError.type("format requires a mapping") }
                guard let v = d[string: key] else { throw JinjaError.runtime("KeyError: '\(key)'") }
                value = v
                usedMapping = true
                i = close + 1
            }
            var leftAlign = false, zeroPad = false, plus = false, space = false
            while i < f.count, "-0+ #".unicodeScalars.contains(f[i]) {
                switch f[i] {
                case "-": leftAlign = true
                case "0": zeroPad = true
                case "+": plus = true
                case " ": space = true
                default: break
                }
                i += 1
            }
            var width = 0
            while i < f.count, let d = Int(String(f[i])) { width = width * 10 + d; i += 1; if width > 100_000 { throw tooWide() } }
            var precision: Int? = nil
            if i < f.count && f[i] == "." {
                i += 1
                var p = 0
                while i < f.count, let d = Int(String(f[i])) { p = p * 10 + d; i += 1; if p > 1_000 { throw tooWide() } }
                precision = p
            }
            guard i < f.count else { throw JinjaError.runtime("ValueError: incomplete format") }
            let conv = f[i]
            i += 1
            if value == nil {
                guard argIndex < args.count else { throw JinjaError.type("not enough arguments for format string") }
                value = args[argIndex]
                argIndex += 1
            }
            let v = value ?? .none
            var piece: String
            var numeric = false
            switch conv {
            case "s": piece = v.pyStr
            case "r", "a": piece = v.pyRepr
            case "d", "i", "u":
                guard let d = v.doubleValue else { throw JinjaError.type("%\(conv) format: a real number is required, not \(v.typeName)") }
                guard d.isFinite, abs(d) < 9.2e18 else { throw JinjaError.runtime("OverflowError: cannot convert \(v.pyRepr) to an integer") }
                let n = v.intValue ?? Int(d.rounded(.towardZero))
                piece = String(n.magnitude)
                if n < 0 { piece = "-" + piece } else if plus { piece = "+" + piece } else if space { piece = " " + piece }
                numeric = true
            case "f", "F", "e", "E", "g", "G":
                guard let d = v.doubleValue else { throw JinjaError.type("must be real number, not \(v.typeName)") }
                piece = String(format: "%\(plus ? "+" : "")\(space ? " " : "").\(precision ?? 6)\(conv)", d)
                numeric = true
            case "x", "X", "o":
                guard let n = v.intValue else { throw JinjaError.type("%\(conv) format: an integer is required, not \(v.typeName)") }
                piece = String(n.magnitude, radix: conv == "o" ? 8 : 16, uppercase: conv == "X")
                if n < 0 { piece = "-" + piece }
                numeric = true
            case "c":
                if case .string(let s) = v { piece = s } else if let n = v.intValue, let u = Unicode.Scalar(UInt32(clamping: n)) { piece = String(u) } else {
                    throw JinjaError.type("%c requires int or char")
                }
            default:
                throw JinjaError.runtime("ValueError: unsupported format character '\(conv)'")
            }
            if let precision, conv == "s" || conv == "r" { piece = make(piece.unicodeScalars.prefix(precision)) }
            let n = piece.unicodeScalars.count
            if width > n {
                if leftAlign {
                    piece += String(repeating: " ", count: width - n)
                } else if zeroPad && numeric {
                    let signed = piece.hasPrefix("-") || piece.hasPrefix("+") || piece.hasPrefix(" ")
                    let sign = signed ? String(piece.prefix(1)) : ""
                    piece = sign + String(repeating: "0", count: width - n) + (signed ? String(piece.dropFirst()) : piece)
                } else {
                    piece = String(repeating: " ", count: width - n) + piece
                }
            }
            out += piece
        }
        // A single argument that is not a tuple but supports subscripts (a dict, a list) may go unused.
        var lenient = false
        switch mapping {
        case .dict?, .list?: lenient = true
        default: break
        }
        if argIndex < args.count && !usedMapping && !lenient {
            throw JinjaError.type("not all arguments converted during string formatting")
        }
        return out
    }

    /// Python's str.format for `{}`, `{0}`, `{name}`, `{{`, `}}` and the `!r` / `!s` conversions
    /// (format specs other than empty are not supported).
    static func format(_ template: String, _ args: JinjaArguments) throws -> String {
        let f = scalars(template)
        var out = ""
        var auto = 0
        var i = 0
        while i < f.count {
            let c = f[i]
            if c == "{" {
                if i + 1 < f.count && f[i + 1] == "{" { out += "{"; i += 2; continue }
                guard let close = f[i...].firstIndex(of: "}") else { throw JinjaError.runtime("ValueError: Single '{' encountered in format string") }
                var field = make(f[(i + 1)..<close])
                var conversion: String? = nil
                if let bang = field.firstIndex(of: "!") {
                    conversion = String(field[field.index(after: bang)...])
                    field = String(field[..<bang])
                }
                if field.contains(":") { throw JinjaError.runtime("format specs in str.format are not supported by Tiller's chat-template interpreter") }
                let value: JinjaValue
                if field.isEmpty {
                    guard auto < args.positional.count else { throw JinjaError.runtime("IndexError: Replacement index \(auto) out of range for positional args tuple") }
                    value = args.positional[auto]
                    auto += 1
                } else if let n = Int(field) {
                    guard n >= 0 && n < args.positional.count else { throw JinjaError.runtime("IndexError: Replacement index \(n) out of range for positional args tuple") }
                    value = args.positional[n]
                } else {
                    guard let kw = args.keyword.first(where: { $0.0 == field }) else { throw JinjaError.runtime("KeyError: '\(field)'") }
                    value = kw.1
                }
                out += conversion == "r" ? value.pyRepr : value.pyStr
                i = close + 1
            } else if c == "}" {
                if i + 1 < f.count && f[i + 1] == "}" { out += "}"; i += 2; continue }
                throw JinjaError.runtime("ValueError: Single '}' encountered in format string")
            } else {
                out.unicodeScalars.append(c)
                i += 1
            }
        }
        return out
    }
}

/// Jinja's filters, tests, globals and the attribute / item lookup of the sandbox.
enum JinjaBuiltins {
    static let supportedFilters: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list",
        "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
        "selectattr", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
        "upper", "wordcount",
    ]
    /// Jinja filters a template may name but Tiller does not implement: a template using one
    /// parses, and fails only if the filter is actually applied.
    static let unsupportedFilters: Set<String> = [
        "filesizeformat", "groupby", "pprint", "random", "slice", "urlencode", "urlize", "wordwrap", "xmlattr",
    ]
    static let filterNames = supportedFilters.union(unsupportedFilters)

    static let testNames: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
        "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined",
        "upper",
    ]

    static func find(_ sub: String, in s: String) -> Int? { PyString.find(sub, in: s) }

    static func percentFormat(_ s: String, _ args: [JinjaValue], mapping: JinjaValue) throws -> String {
        try PyString.percentFormat(s, args, mapping: mapping)
    }

    // MARK: globals

    static func installGlobals(in scope: JinjaScope, interpreter: JinjaInterpreter) {
        let now = interpreter.now
        scope.vars["raise_exception"] = .callable(JinjaCallable(name: "raise_exception") { args in
            let message = args.positional.first?.pyStr ?? args.keyword.first?.1.pyStr ?? ""
            throw JinjaError(kind: .raised, message: message, offset: nil)
        })
        scope.vars["strftime_now"] = .callable(JinjaCallable(name: "strftime_now") { args in
            let a = try args.bind("strftime_now", ["format"])
            guard case .string(let format)? = a[0] else { throw JinjaError.type("strftime_now() argument 'format' must be str") }
            return .string(now.strftime(format))
        })
        scope.vars["range"] = .callable(JinjaCallable(name: "range") { args in
            let ints = try args.positional.map { v -> Int in
                guard let i = v.intValue else { throw JinjaError.type("'\(v.typeName)' object cannot be interpreted as an integer") }
                return i
            }
            guard args.keyword.isEmpty, (1...3).contains(ints.count) else { throw JinjaError.type("range expected 1 to 3 integer arguments") }
            let start = ints.count == 1 ? 0 : ints[0]
            let stop = ints.count == 1 ? ints[0] : ints[1]
            let step = ints.count == 3 ? ints[2] : 1
            guard step != 0 else { throw JinjaError.runtime("ValueError: range() arg 3 must not be zero") }
            var items: [JinjaValue] = []
            var v = start
            while step > 0 ? v < stop : v > stop {
                guard items.count < 100_000 else {
                    throw JinjaError.runtime("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
                }
                items.append(.int(v))
                let (next, overflow) = v.addingReportingOverflow(step)
                if overflow { break }
                v = next
            }
            return .list(items)
        })
        scope.vars["dict"] = .callable(JinjaCallable(name: "dict") { args in
            var d = JinjaDict()
            if let first = args.positional.first {
                guard args.positional.count == 1 else { throw JinjaError.type("dict expected at most 1 argument, got \(args.positional.count)") }
                switch first {
                case .dict(let other): d = other
                default:
                    for pair in try interpreter.iterate(first) {
                        let kv = try interpreter.iterate(pair)
                        guard kv.count == 2 else { throw JinjaError.runtime("ValueError: dictionary update sequence element has length \(kv.count); 2 is required") }
                        try d.set(kv[0], kv[1])
                    }
                }
            }
            for (k, v) in args.keyword { d.set(string: k, v) }
            return try JinjaValue.dict(d).checkedNesting()
        })
        scope.vars["namespace"] = .callable(JinjaCallable(name: "namespace") { args in
            let ns = JinjaNamespace()
            if let first = args.positional.first {
                guard case .dict(let d) = first, args.positional.count == 1 else { throw JinjaError.type("namespace() takes a mapping and keyword arguments") }
                ns.attributes = d
            }
            for (k, v) in args.keyword {
                if k.hasPrefix("_") {
                    throw JinjaError.runtime("SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(k)'.")
                }
                ns.attributes.set(string: k, v)
            }
            return try JinjaValue.namespace(ns).checkedNesting()
        })
        scope.vars["joiner"] = .callable(JinjaCallable(name: "joiner") { args in
            let a = try args.bind("joiner", ["sep"])
            let sep = a[0]?.pyStr ?? ", "
            final class Used { var used = false }
            let state = Used()
            return .callable(JinjaCallable(name: "joiner") { _ in
                if state.used { return .string(sep) }
                state.used = true
                return .string("")
            })
        })
    }

    // MARK: attribute and item lookup

    private static func unsafeAttribute(_ name: String, _ value: JinjaValue) -> JinjaValue {
        .undefined("access to attribute '\(name)' of '\(value.typeName)' object is unsafe.")
    }

    private static func missing(_ value: JinjaValue, _ name: String) -> JinjaValue {
        .undefined("'\(value.typeName) object' has no attribute '\(name)'")
    }

    /// `value.name`: Python attributes (methods) first, then items, as the sandbox does.
    static func attribute(of value: JinjaValue, _ name: String, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        if case .undefined(let m) = value { throw JinjaOperators.undefinedError(m) }
        if name.hasPrefix("_") { return unsafeAttribute(name, value) }
        if let method = try method(of: value, name, interpreter) { return method }
        switch value {
        case .dict(let d): return d[string: name] ?? missing(value, name)
        case .namespace(let ns): return ns.attributes[string: name] ?? missing(value, name)
        default: return missing(value, name)
        }
    }

    /// `value[key]`: items first, then attributes for string keys.
    static func item(of value: JinjaValue, _ key: JinjaValue, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        if case .undefined(let m) = value { throw JinjaOperators.undefinedError(m) }
        switch value {
        case .dict(let d):
            if key.isHashable, let v = d[key] { return v }
        case .list(let items), .tuple(let items):
            if let i = key.intValue {
                let index = i < 0 ? i + items.count : i
                if index >= 0 && index < items.count { return items[index] }
                return .undefined("'\(value.typeName) object' has no element \(i)")
            }
        case .string(let s):
            if let i = key.intValue {
                let a = PyString.scalars(s)
                let index = i < 0 ? i + a.count : i
                if index >= 0 && index < a.count { return .string(String(a[index])) }
                return .undefined("'str object' has no element \(i)")
            }
        case .namespace(let ns):
            if case .string(let k) = key, let v = ns.attributes[string: k] { return v }
        default:
            break
        }
        if case .string(let name) = key {
            if name.hasPrefix("_") { return unsafeAttribute(name, value) }
            if let method = try method(of: value, name, interpreter) { return method }
            return missing(value, name)
        }
        return .undefined("'\(value.typeName) object' has no element \(key.pyRepr)")
    }

    static func sliceIndices(count n: Int, _ start: Int?, _ stop: Int?, _ step: Int?) throws -> [Int] {
        let step = step ?? 1
        guard step != 0 else { throw JinjaError.runtime("ValueError: slice step cannot be zero") }
        let lower = step > 0 ? 0 : -1
        let upper = step > 0 ? n : n - 1
        func clamp(_ v: Int?, _ defaultValue: Int) -> Int {
            guard var v else { return defaultValue }
            if v < 0 { v += n; if v < lower { v = lower } } else if v > upper { v = upper }
            return v
        }
        let s = clamp(start, step > 0 ? lower : upper)
        let e = clamp(stop, step > 0 ? upper : lower)
        var out: [Int] = []
        var i = s
        while step > 0 ? i < e : i > e {
            out.append(i)
            let (next, overflow) = i.addingReportingOverflow(step)
            if overflow { break }
            i = next
        }
        return out
    }

    static func slice(_ value: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        if case .undefined(let m) = value { throw JinjaOperators.undefinedError(m) }
        func index(_ v: JinjaValue?) -> (ok: Bool, value: Int?) {
            guard let v, !v.isNone else { return (true, nil) }
            guard let i = v.intValue else { return (false, nil) }
            return (true, i)
        }
        let (a, b, c) = (index(start), index(stop), index(step))
        guard a.ok && b.ok && c.ok else {
            throw JinjaError.type("slice indices must be integers or None or have an __index__ method")
        }
        switch value {
        case .list(let items), .tuple(let items):
            let picked = try sliceIndices(count: items.count, a.value, b.value, c.value).map { items[$0] }
            if case .tuple = value { return .tuple(picked) }
            return .list(picked)
        case .string(let s):
            let scalars = PyString.scalars(s)
            return .string(PyString.make(try sliceIndices(count: scalars.count, a.value, b.value, c.value).map { scalars[$0] }))
        case .dict:
            // Jinja subscripts slices directly (not through the sandbox's getitem), so Python's errors show.
            throw JinjaError.type("unhashable type: 'slice'")
        default:
            throw JinjaError.type("'\(value.typeName)' object is not subscriptable")
        }
    }

    private static func callable(_ name: String, _ body: @escaping (JinjaArguments) throws -> JinjaValue) -> JinjaValue {
        .callable(JinjaCallable(name: name, call: body))
    }

    private static func blocked(_ name: String, _ value: JinjaValue) -> JinjaValue {
        callable(name) { _ in
            throw JinjaError.runtime("SecurityError: access to attribute '\(name)' of '\(value.typeName)' object is unsafe.")
        }
    }

    private static func string(_ v: JinjaValue?, _ what: String) throws -> String? {
        guard let v, !v.isNone else { return nil }
        guard case .string(let s) = v else { throw JinjaError.type("\(what) must be str or None, not \(v.typeName)") }
        return s
    }

    private static func int(_ v: JinjaValue?, _ defaultValue: Int) throws -> Int {
        guard let v, !v.isNone else { return defaultValue }
        guard let i = v.intValue else { throw JinjaError.type("'\(v.typeName)' object cannot be interpreted as an integer") }
        return i
    }

    /// The bound methods of str, dict and list values that templates call.
    static func method(of value: JinjaValue, _ name: String, _ interpreter: JinjaInterpreter) throws -> JinjaValue? {
        switch value {
        case .string(let s): return stringMethod(s, name)
        case .dict(let d):
            switch name {
            case "items": return callable(name) { _ in .list(d.pairs.map { .tuple([$0.key, $0.value]) }) }
            case "keys": return callable(name) { _ in .list(d.keys) }
            case "values": return callable(name) { _ in .list(d.values) }
            case "get":
                return callable(name) { args in
                    let a = try args.bind("get", ["key", "default"])
                    guard let key = a[0] else { throw JinjaError.type("get expected at least 1 argument, got 0") }
                    return (key.isHashable ? d[key] : nil) ?? a[1] ?? .none
                }
            case "copy": return callable(name) { _ in .dict(d) }
            case "update", "pop", "popitem", "setdefault", "clear", "fromkeys": return blocked(name, value)
            default: return nil
            }
        case .list(let items), .tuple(let items):
            switch name {
            case "index":
                return callable(name) { args in
                    let a = try args.bind("index", ["value"])
                    guard let v = a[0], let i = items.firstIndex(where: { pyEqual($0, v) }) else {
                        throw JinjaError.runtime("ValueError: value is not in \(value.typeName)")
                    }
                    return .int(i)
                }
            case "count":
                return callable(name) { args in
                    let a = try args.bind("count", ["value"])
                    return .int(items.filter { pyEqual($0, a[0] ?? .none) }.count)
                }
            case "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse":
                if case .list = value { return blocked(name, value) }
                return nil
            default: return nil
            }
        default:
            return nil
        }
    }

    private static func stringMethod(_ s: String, _ name: String) -> JinjaValue? {
        func strArg(_ a: [JinjaValue?], _ i: Int, _ fn: String) throws -> String {
            guard case .string(let v)? = a[i] else {
                throw JinjaError.type("\(fn)() argument must be str, not \(a[i]?.typeName ?? "nothing")")
            }
            return v
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            return callable(name) { args in
                let a = try args.bind(name, ["chars"])
                return .string(PyString.strip(s, try string(a[0], "\(name) arg"), left: name != "rstrip", right: name != "lstrip"))
            }
        case "upper": return callable(name) { _ in .string(s.uppercased()) }
        case "lower", "casefold": return callable(name) { _ in .string(s.lowercased()) }
        case "title": return callable(name) { _ in .string(PyString.title(s)) }
        case "capitalize": return callable(name) { _ in .string(PyString.capitalize(s)) }
        case "swapcase":
            return callable(name) { _ in
                .string(s.unicodeScalars.map { c in
                    let ch = String(c)
                    return c.properties.isUppercase ? ch.lowercased() : (c.properties.isLowercase ? ch.uppercased() : ch)
                }.joined())
            }
        case "startswith", "endswith":
            return callable(name) { args in
                let a = try args.bind(name, ["prefix", "start", "end"])
                let sub = try slice(.string(s), a[1], a[2], nil)
                guard case .string(let target) = sub else { return .bool(false) }
                let candidates: [JinjaValue]
                if case .tuple(let t)? = a[0] { candidates = t } else { candidates = [a[0] ?? .none] }
                for c in candidates {
                    guard case .string(let p) = c else {
                        throw JinjaError.type("\(name) first arg must be str or a tuple of str, not \(c.typeName)")
                    }
                    let ts = PyString.scalars(target), ps = PyString.scalars(p)
                    if ps.count <= ts.count && (name == "startswith" ? Array(ts.prefix(ps.count)) == ps : Array(ts.suffix(ps.count)) == ps) {
                        return .bool(true)
                    }
                }
                return .bool(false)
            }
        case "split", "rsplit":
            return callable(name) { args in
                let a = try args.bind(name, ["sep", "maxsplit"])
                let sep = try string(a[0], "sep")
                let max = try int(a[1], -1)
                let parts = name == "split" ? try PyString.split(s, sep, maxsplit: max) : try PyString.rsplit(s, sep, maxsplit: max)
                return .list(parts.map { .string($0) })
            }
        case "splitlines":
            return callable(name) { args in
                let a = try args.bind(name, ["keepends"])
                return .list(PyString.splitlines(s, keepends: a[0]?.truthy ?? false).map { .string($0) })
            }
        case "replace":
            return callable(name) { args in
                let a = try args.bind(name, ["old", "new", "count"])
                return .string(try PyString.replace(s, try strArg(a, 0, name), try strArg(a, 1, name), count: try int(a[2], -1)))
            }
        case "find", "rfind", "index", "rindex":
            return callable(name) { args in
                let a = try args.bind(name, ["sub"])
                let sub = try strArg(a, 0, name)
                let r = name.hasPrefix("r") ? PyString.rfind(sub, in: s) : PyString.find(sub, in: s)
                if r == nil && name.hasSuffix("index") { throw JinjaError.runtime("ValueError: substring not found") }
                return .int(r ?? -1)
            }
        case "count":
            return callable(name) { args in
                let a = try args.bind(name, ["sub"])
                return .int(PyString.count(try strArg(a, 0, name), in: s))
            }
        case "join":
            return callable(name) { args in
                let a = try args.bind(name, ["iterable"])
                guard let it = a[0] else { throw JinjaError.type("join() takes exactly one argument (0 given)") }
                var parts: [String] = []
                let items: [JinjaValue]
                switch it {
                case .list(let l), .tuple(let l): items = l
                case .dict(let d): items = d.keys
                case .string(let t): items = t.unicodeScalars.map { .string(String($0)) }
                default: throw JinjaError.type("can only join an iterable")
                }
                for (i, item) in items.enumerated() {
                    guard case .string(let p) = item else {
                        throw JinjaError.type("sequence item \(i): expected str instance, \(item.typeName) found")
                    }
                    parts.append(p)
                }
                return .string(parts.joined(separator: s))
            }
        case "format":
            return callable(name) { args in .string(try PyString.format(s, args)) }
        case "isdigit", "isnumeric", "isdecimal":
            return callable(name) { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil }) }
        case "isalpha":
            return callable(name) { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic }) }
        case "isalnum":
            return callable(name) { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil }) }
        case "isspace":
            return callable(name) { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(pyIsSpace)) }
        case "islower": return callable(name) { _ in .bool(PyString.isLower(s)) }
        case "isupper": return callable(name) { _ in .bool(PyString.isUpper(s)) }
        case "center", "ljust", "rjust":
            return callable(name) { args in
                let a = try args.bind(name, ["width", "fillchar"])
                let width = try int(a[0], 0)
                let fill = try string(a[1], "fillchar") ?? " "
                let n = s.unicodeScalars.count
                guard width > n else { return .string(s) }
                let pad = try JinjaOperators.repeatCount(width - n, max(1, fill.utf8.count))
                switch name {
                case "ljust": return .string(s + String(repeating: fill, count: pad))
                case "rjust": return .string(String(repeating: fill, count: pad) + s)
                default: return .string(PyString.center(s, width, fill: fill))
                }
            }
        case "zfill":
            return callable(name) { args in
                let a = try args.bind(name, ["width"])
                let width = try int(a[0], 0)
                let n = s.unicodeScalars.count
                guard width > n else { return .string(s) }
                let pad = String(repeating: "0", count: try JinjaOperators.repeatCount(width - n, 1))
                if let f = s.unicodeScalars.first, f == "-" || f == "+" { return .string(String(f) + pad + PyString.make(s.unicodeScalars.dropFirst())) }
                return .string(pad + s)
            }
        case "partition", "rpartition":
            return callable(name) { args in
                let a = try args.bind(name, ["sep"])
                let sep = try strArg(a, 0, name)
                let sc = PyString.scalars(s), n = sep.unicodeScalars.count
                guard let i = name == "partition" ? PyString.find(sep, in: s) : PyString.rfind(sep, in: s) else {
                    return name == "partition" ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)])
                }
                return .tuple([.string(PyString.make(sc[..<i])), .string(sep), .string(PyString.make(sc[(i + n)...]))])
            }
        case "removeprefix", "removesuffix":
            return callable(name) { args in
                let a = try args.bind(name, ["affix"])
                let p = PyString.scalars(try strArg(a, 0, name)), sc = PyString.scalars(s)
                if name == "removeprefix", sc.starts(with: p) { return .string(PyString.make(sc.dropFirst(p.count))) }
                if name == "removesuffix", !p.isEmpty, Array(sc.suffix(p.count)) == p { return .string(PyString.make(sc.dropLast(p.count))) }
                return .string(s)
            }
        default:
            return nil
        }
    }

    // MARK: filters

    /// `item.attr.0`-style attribute paths of sort, map, selectattr, ...
    private static func attributeGetter(_ path: JinjaValue, _ interpreter: JinjaInterpreter) -> (JinjaValue) throws -> JinjaValue {
        let parts: [JinjaValue]
        if case .string(let s) = path {
            parts = s.split(separator: ".", omittingEmptySubsequences: false).map { p in
                Int(p).map { .int($0) } ?? .string(String(p))
            }
        } else {
            parts = [path]
        }
        return { value in
            var v = value
            for p in parts { v = try item(of: v, p, interpreter) }
            return v
        }
    }

    private static func ignoreCase(_ v: JinjaValue) -> JinjaValue {
        if case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    private static func sorted(_ items: [JinjaValue], key: (JinjaValue) throws -> JinjaValue, reverse: Bool) throws -> [JinjaValue] {
        let keyed = try items.map { (try key($0), $0) }
        // Stable merge sort with a throwing comparison (Python's sorted, reverse keeps stability).
        var error: Error? = nil
        let indexed = Array(keyed.enumerated())
        let result = indexed.sorted { a, b in
            if error != nil { return false }
            do {
                let less = reverse ? try pyLess(b.element.0, a.element.0) : try pyLess(a.element.0, b.element.0)
                if less { return true }
                let greater = reverse ? try pyLess(a.element.0, b.element.0) : try pyLess(b.element.0, a.element.0)
                if greater { return false }
                return a.offset < b.offset
            } catch let e {
                error = e
                return false
            }
        }
        if let error { throw error }
        return result.map { $0.element.1 }
    }

    private static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    private static func htmlUnescape(_ s: String) -> String {
        var out = s
        for (entity, char) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#34;", "\""), ("&#39;", "'"), ("&nbsp;", "\u{A0}"), ("&amp;", "&")] {
            out = out.replacingOccurrences(of: entity, with: char)
        }
        return out
    }

    private static func pyInt(from value: JinjaValue, base: Int) -> Int? {
        switch value {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        case .double(let d):
            guard d.isFinite, abs(d) < 9.2e18 else { return nil }
            return Int(d.rounded(.towardZero))
        case .string(let s):
            var t = PyString.strip(s, nil).replacingOccurrences(of: "_", with: "")
            var negative = false
            if t.hasPrefix("-") { negative = true; t.removeFirst() } else if t.hasPrefix("+") { t.removeFirst() }
            var radix = base
            let lower = t.lowercased()
            if (base == 16 || base == 0) && lower.hasPrefix("0x") { radix = 16; t.removeFirst(2) } else if (base == 8 || base == 0) && lower.hasPrefix("0o") {
                radix = 8; t.removeFirst(2)
            } else if (base == 2 || base == 0) && lower.hasPrefix("0b") { radix = 2; t.removeFirst(2) }
            if radix == 0 { radix = 10 }
            if let i = Int(t, radix: radix) { return negative ? -i : i }
            if let d = pyFloat(from: .string(s)), d.isFinite, abs(d) < 9.2e18 { return Int(d.rounded(.towardZero)) }
            return nil
        default:
            return nil
        }
    }

    private static func pyFloat(from value: JinjaValue) -> Double? {
        switch value {
        case .string(let s):
            let t = PyString.strip(s, nil).replacingOccurrences(of: "_", with: "").lowercased()
            switch t {
            case "inf", "+inf", "infinity", "+infinity": return .infinity
            case "-inf", "-infinity": return -.infinity
            case "nan", "+nan", "-nan": return .nan
            default:
                guard !t.isEmpty, t.unicodeScalars.allSatisfy({ "0123456789.eE+-".unicodeScalars.contains($0) }) else { return nil }
                return Double(t)
            }
        default:
            return value.doubleValue
        }
    }

    private static func length(_ v: JinjaValue) throws -> Int {
        switch v {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .list(let a), .tuple(let a): return a.count
        case .dict(let d): return d.count
        default: throw JinjaError.type("object of type '\(v.typeName)' has no len()")
        }
    }

    /// The filters that are Python generator functions in Jinja: they return a generator at
    /// once and do their work (and raise their errors) when it is iterated.
    static let generatorFilters: Set<String> = ["batch", "items", "map", "reject", "rejectattr", "select", "selectattr", "unique"]

    static func applyFilter(_ name: String, _ value: JinjaValue, _ args: JinjaArguments, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        if generatorFilters.contains(name) {
            return .iterator(JinjaIterator("generator", lazy: {
                try interpreter.iterate(try eagerFilter(name, value, args, interpreter))
            }))
        }
        return try eagerFilter(name, value, args, interpreter)
    }

    private static func eagerFilter(_ name: String, _ value: JinjaValue, _ args: JinjaArguments, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        switch name {
        case "abs":
            _ = try args.bind(name, [])
            switch value {
            case .int(let i):
                guard i != Int.min else { throw JinjaError.runtime("OverflowError: integer overflow") }
                return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            case .undefined(let m): throw JinjaOperators.undefinedError(m)
            default: throw JinjaError.type("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            let a = try args.bind(name, ["name"])
            guard case .string(let attr)? = a[0] else { throw JinjaError.type("attribute name must be a string") }
            return try attribute(of: value, attr, interpreter)
        case "batch":
            let a = try args.bind(name, ["linecount", "fill_with"])
            let n = try int(a[0], 0)
            guard n > 0 else { throw JinjaError.runtime("ValueError: batch size must be positive") }
            guard n <= JinjaInterpreter.maxItems else { throw JinjaError.runtime("a batch of \(n) is too large") }
            var out: [JinjaValue] = [], row: [JinjaValue] = []
            for item in try interpreter.iterate(value) {
                row.append(item)
                if row.count == n { out.append(.list(row)); row = [] }
            }
            if !row.isEmpty {
                if let fill = a[1], !fill.isNone { row += Array(repeating: fill, count: n - row.count) }
                out.append(.list(row))
            }
            return .iterator(JinjaIterator("generator", out))
        case "capitalize":
            _ = try args.bind(name, [])
            return .string(PyString.capitalize(value.pyStr))
        case "center":
            let a = try args.bind(name, ["width"])
            let width = try int(a[0], 80)
            _ = try JinjaOperators.repeatCount(width, 1)
            return .string(PyString.center(value.pyStr, width))
        case "count", "length":
            _ = try args.bind(name, [])
            return .int(try length(value))
        case "d", "default":
            let a = try args.bind(name, ["default_value", "boolean"])
            if value.isUndefined || ((a[1]?.truthy ?? false) && !value.truthy) { return a[0] ?? .string("") }
            return value
        case "dictsort":
            let a = try args.bind(name, ["case_sensitive", "by", "reverse"])
            guard case .dict(let d) = value else { throw JinjaError.runtime("AttributeError: '\(value.typeName)' object has no attribute 'items'") }
            let by = try string(a[1], "by") ?? "key"
            guard by == "key" || by == "value" else { throw JinjaError.runtime("FilterArgumentError: You can only sort by either \"key\" or \"value\"") }
            let caseSensitive = a[0]?.truthy ?? false
            let pairs = d.pairs.map { JinjaValue.tuple([$0.key, $0.value]) }
            return .list(try sorted(pairs, key: { pair in
                guard case .tuple(let kv) = pair else { return pair }
                let k = by == "key" ? kv[0] : kv[1]
                return caseSensitive ? k : ignoreCase(k)
            }, reverse: a[2]?.truthy ?? false))
        case "e", "escape", "forceescape":
            _ = try args.bind(name, [])
            return .string(htmlEscape(value.pyStr))
        case "first":
            _ = try args.bind(name, [])
            if case .iterator(let it) = value { return try it.next() ?? .undefined("No first item, sequence was empty.") }
            return try interpreter.iterate(value).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            _ = try args.bind(name, [])
            if case .iterator = value { throw JinjaError.type("'\(value.typeName)' object is not reversible") }
            return try interpreter.iterate(value).last ?? .undefined("No last item, sequence was empty.")
        case "float":
            let a = try args.bind(name, ["default"])
            if case .undefined(let m) = value { throw JinjaOperators.undefinedError(m) }
            return .double(pyFloat(from: value) ?? a[0]?.doubleValue ?? 0)
        case "format":
            let s = value.pyStr
            if !args.keyword.isEmpty {
                guard args.positional.isEmpty else { throw JinjaError.runtime("FilterArgumentError: can't handle positional and keyword arguments at the same time") }
                var d = JinjaDict()
                for (k, v) in args.keyword { d.set(string: k, v) }
                return .string(try PyString.percentFormat(s, [.dict(d)], mapping: .dict(d)))
            }
            return .string(try PyString.percentFormat(s, args.positional, mapping: nil))
        case "indent":
            let a = try args.bind(name, ["width", "first", "blank"])
            let indention: String
            if case .string(let w)? = a[0] { indention = w } else { indention = String(repeating: " ", count: try JinjaOperators.repeatCount(try int(a[0], 4), 1)) }
            let s: String
            switch value {
            case .string(let text): s = text + "\n"
            case .undefined(let m): throw JinjaOperators.undefinedError(m)
            case .list: throw JinjaError.runtime("AttributeError: 'list' object has no attribute 'splitlines'")
            default: throw JinjaError.type("unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
            }
            var rv: String
            if a[2]?.truthy ?? false {
                rv = PyString.splitlines(s).joined(separator: "\n" + indention)
            } else {
                var lines = PyString.splitlines(s)
                rv = lines.isEmpty ? "" : lines.removeFirst()
                if !lines.isEmpty {
                    rv += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
                }
            }
            if a[1]?.truthy ?? false { rv = indention + rv }
            return .string(rv)
        case "int":
            let a = try args.bind(name, ["default", "base"])
            if case .undefined(let m) = value { throw JinjaOperators.undefinedError(m) }
            return .int(pyInt(from: value, base: try int(a[1], 10)) ?? a[0]?.intValue ?? 0)
        case "items":
            _ = try args.bind(name, [])
            switch value {
            case .undefined: return .iterator(JinjaIterator("generator", []))
            case .dict(let d): return .iterator(JinjaIterator("generator", d.pairs.map { .tuple([$0.key, $0.value]) }))
            default: throw JinjaError.runtime("FilterArgumentError: Can only get item pairs from a mapping.")
            }
        case "join":
            let a = try args.bind(name, ["d", "attribute"])
            var items = try interpreter.iterate(value)
            if let attr = a[1], !attr.isNone {
                let get = attributeGetter(attr, interpreter)
                items = try items.map(get)
            }
            let sep = a[0]?.pyStr ?? ""
            var out = ""
            for (i, item) in items.enumerated() {
                if i > 0 { out += sep }
                out += item.pyStr
                if out.utf8.count > JinjaInterpreter.maxStringBytes { throw JinjaError.runtime("a string grew longer than \(JinjaInterpreter.maxStringBytes) bytes") }
            }
            return .string(out)
        case "list":
            _ = try args.bind(name, [])
            return .list(try interpreter.iterate(value))
        case "lower":
            _ = try args.bind(name, [])
            return .string(value.pyStr.lowercased())
        case "upper":
            _ = try args.bind(name, [])
            return .string(value.pyStr.uppercased())
        case "map":
            guard value.truthy else { return .iterator(JinjaIterator("generator", [])) }
            let items = try interpreter.iterate(value)
            if args.positional.isEmpty, let attr = args.keyword.first(where: { $0.0 == "attribute" })?.1 {
                let defaultValue = args.keyword.first(where: { $0.0 == "default" })?.1
                if let extra = args.keyword.first(where: { $0.0 != "attribute" && $0.0 != "default" }) {
                    throw JinjaError.runtime("FilterArgumentError: Unexpected keyword argument '\(extra.0)'")
                }
                let get = attributeGetter(attr, interpreter)
                return .iterator(JinjaIterator("generator", try items.map { item in
                    let v = try get(item)
                    if v.isUndefined, let defaultValue, !defaultValue.isNone { return defaultValue }
                    return v
                }))
            }
            guard case .string(let filter)? = args.positional.first else {
                throw JinjaError.runtime("FilterArgumentError: map requires a filter argument")
            }
            guard filterNames.contains(filter) else { throw JinjaError.runtime("TemplateRuntimeError: No filter named '\(filter)'.") }
            let rest = JinjaArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            return .iterator(JinjaIterator("generator", try items.map { try applyFilter(filter, $0, rest, interpreter) }))
        case "max", "min":
            let a = try args.bind(name, ["case_sensitive", "attribute"])
            let items = try interpreter.iterate(value)
            guard !items.isEmpty else { return .undefined("No aggregated item, sequence was empty.") }
            let get: (JinjaValue) throws -> JinjaValue = (a[1].map { $0.isNone ? nil : attributeGetter($0, interpreter) } ?? nil) ?? { $0 }
            let caseSensitive = a[0]?.truthy ?? false
            var best = items[0]
            var bestKey = try get(best)
            if !caseSensitive { bestKey = ignoreCase(bestKey) }
            for item in items.dropFirst() {
                var k = try get(item)
                if !caseSensitive { k = ignoreCase(k) }
                if name == "max" ? try pyLess(bestKey, k) : try pyLess(k, bestKey) { best = item; bestKey = k }
            }
            return best
        case "reject", "select", "rejectattr", "selectattr":
            guard value.truthy else { return .iterator(JinjaIterator("generator", [])) }
            let items = try interpreter.iterate(value)
            let byAttribute = name.hasSuffix("attr")
            var rest = args.positional
            var get: (JinjaValue) throws -> JinjaValue = { $0 }
            if byAttribute {
                guard !rest.isEmpty else { throw JinjaError.runtime("FilterArgumentError: Missing parameter for attribute name") }
                get = attributeGetter(rest.removeFirst(), interpreter)
            }
            var test: ((JinjaValue) throws -> Bool)
            if !rest.isEmpty {
                guard case .string(let testName) = rest.removeFirst() else { throw JinjaError.type("test name must be a string") }
                guard testNames.contains(testName) else { throw JinjaError.runtime("TemplateRuntimeError: No test named '\(testName)'.") }
                let testArgs = JinjaArguments(positional: rest, keyword: args.keyword)
                test = { try applyTest(testName, $0, testArgs, interpreter) }
            } else {
                test = { $0.truthy }
            }
            let keep = name.hasPrefix("select")
            return .iterator(JinjaIterator("generator", try items.filter { try test(try get($0)) == keep }))
        case "replace":
            let a = try args.bind(name, ["old", "new", "count"])
            guard let old = a[0], let new = a[1] else { throw JinjaError.type("replace() missing required arguments") }
            return .string(try PyString.replace(value.pyStr, old.pyStr, new.pyStr, count: try int(a[2], -1)))
        case "reverse":
            _ = try args.bind(name, [])
            switch value {
            case .string(let s): return .string(PyString.make(s.unicodeScalars.reversed()))
            case .list(let items): return .iterator(JinjaIterator("list_reverseiterator", items.reversed()))
            case .tuple(let items): return .iterator(JinjaIterator("reversed", items.reversed()))
            case .dict(let d): return .iterator(JinjaIterator("dict_reversekeyiterator", d.keys.reversed()))
            default:
                do { return .list(try interpreter.iterate(value).reversed()) } catch {
                    throw JinjaError.runtime("FilterArgumentError: argument must be iterable")
                }
            }
        case "round":
            let a = try args.bind(name, ["precision", "method"])
            let precision = try int(a[0], 0)
            let method = try string(a[1], "method") ?? "common"
            guard ["common", "ceil", "floor"].contains(method) else {
                throw JinjaError.runtime("FilterArgumentError: method must be common, ceil or floor")
            }
            if case .undefined(let m) = value { throw JinjaOperators.undefinedError(m) }
            guard let d = value.doubleValue else { throw JinjaError.type("type \(value.typeName) doesn't define __round__ method") }
            if method == "common" {
                if let i = value.intValue, precision >= 0 { return .int(i) }
                return .double(roundHalfEven(d, precision))
            }
            let scale = pow(10.0, Double(precision))
            let scaled = d * scale
            return .double((method == "ceil" ? scaled.rounded(.up) : scaled.rounded(.down)) / scale)
        case "safe", "string":
            _ = try args.bind(name, [])
            return .string(value.pyStr)
        case "sort":
            let a = try args.bind(name, ["reverse", "case_sensitive", "attribute"])
            let items = try interpreter.iterate(value)
            let get: (JinjaValue) throws -> JinjaValue = (a[2].map { $0.isNone ? nil : attributeGetter($0, interpreter) } ?? nil) ?? { $0 }
            let caseSensitive = a[1]?.truthy ?? false
            return .list(try sorted(items, key: { caseSensitive ? try get($0) : ignoreCase(try get($0)) }, reverse: a[0]?.truthy ?? false))
        case "striptags":
            _ = try args.bind(name, [])
            var s = PyString.scalars(value.pyStr)
            var parts: [Unicode.Scalar] = []
            var pos = 0
            var found = false
            while let start = s[pos...].firstIndex(of: "<") {
                let isComment = Array(s[start...].prefix(4)) == Array("<!--".unicodeScalars)
                var end: Int?
                if isComment {
                    end = PyString.find("-->", in: PyString.make(s), from: start + 4).map { $0 + 3 }
                } else {
                    end = s[start...].firstIndex(of: ">").map { $0 + 1 }
                }
                guard let e = end else { break }
                parts += s[pos..<start]
                pos = e
                found = true
            }
            if found { parts += s[pos...]; s = parts }
            return .string(htmlUnescape(try PyString.split(PyString.make(s), nil).joined(separator: " ")))
        case "sum":
            let a = try args.bind(name, ["attribute", "start"])
            var total = a[1] ?? .int(0)
            let get: (JinjaValue) throws -> JinjaValue = (a[0].map { $0.isNone ? nil : attributeGetter($0, interpreter) } ?? nil) ?? { $0 }
            for item in try interpreter.iterate(value) { total = try JinjaOperators.binary("+", total, try get(item)) }
            return total
        case "title":
            _ = try args.bind(name, [])
            // Words start after '-', whitespace or an opening bracket.
            var out = "", atStart = true
            for c in value.pyStr.unicodeScalars {
                let isBoundary = c == "-" || pyIsSpace(c) || c == "(" || c == "{" || c == "[" || c == "<"
                if isBoundary { out.unicodeScalars.append(c); atStart = true; continue }
                out += atStart ? String(c).uppercased() : String(c).lowercased()
                atStart = false
            }
            return .string(out)
        case "tojson":
            let a = try args.bind(name, ["ensure_ascii", "indent", "separators", "sort_keys"])
            var options = PyJSONOptions()
            options.ensureASCII = a[0]?.truthy ?? false
            if let indent = a[1], !indent.isNone {
                if case .string(let s) = indent { options.indent = s } else if let n = indent.intValue {
                    options.indent = String(repeating: " ", count: max(0, min(n, 1024)))
                } else {
                    throw JinjaError.type("indent must be an int or a string")
                }
                options.itemSeparator = ","
            }
            if let separators = a[2], !separators.isNone {
                guard case .tuple(let parts) = separators.asSequence, parts.count == 2,
                      case .string(let item) = parts[0], case .string(let key) = parts[1] else {
                    throw JinjaError.runtime("ValueError: separators must be a (item_separator, key_separator) pair of strings")
                }
                options.itemSeparator = item
                options.keySeparator = key
            }
            options.sortKeys = a[3]?.truthy ?? false
            return .string(try pyJSON(value, options))
        case "trim":
            let a = try args.bind(name, ["chars"])
            return .string(PyString.strip(value.pyStr, try string(a[0], "chars")))
        case "truncate":
            let a = try args.bind(name, ["length", "killwords", "end", "leeway"])
            let length = try int(a[0], 255)
            guard case .string(let text) = value else {
                // Python's len() and slicing on whatever the value is.
                let n = try self.length(value)
                if n <= length + (try int(a[3], 5)) { return value }
                throw JinjaError.runtime("AttributeError: '\(value.typeName)' object has no attribute 'rsplit'")
            }
            let s = PyString.scalars(text)
            let end = a[2].map(\.pyStr) ?? "..."
            let leeway = try int(a[3], 5)
            let endCount = end.unicodeScalars.count
            guard length >= endCount, leeway >= 0 else { throw JinjaError.runtime("AssertionError: expected length >= \(endCount), got \(length)") }
            if s.count <= length + leeway { return .string(PyString.make(s)) }
            let head = PyString.make(s.prefix(length - endCount))
            if a[1]?.truthy ?? false { return .string(head + end) }
            return .string((try PyString.rsplit(head, " ", maxsplit: 1)).first.map { $0 + end } ?? end)
        case "unique":
            let a = try args.bind(name, ["case_sensitive", "attribute"])
            let get: (JinjaValue) throws -> JinjaValue = (a[1].map { $0.isNone ? nil : attributeGetter($0, interpreter) } ?? nil) ?? { $0 }
            let caseSensitive = a[0]?.truthy ?? false
            var seen: [JinjaValue] = [], out: [JinjaValue] = []
            for item in try interpreter.iterate(value) {
                var k = try get(item)
                if !caseSensitive { k = ignoreCase(k) }
                if !seen.contains(where: { pyEqual($0, k) }) { seen.append(k); out.append(item) }
            }
            return .iterator(JinjaIterator("generator", out))
        case "wordcount":
            _ = try args.bind(name, [])
            var count = 0, inWord = false
            for c in value.pyStr.unicodeScalars {
                let isWord = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        default:
            throw JinjaError.runtime("the '\(name)' filter is not supported by Tiller's chat-template interpreter")
        }
    }

    /// Python's round(x, n) for floats: round half to even on the exact binary value.
    static func roundHalfEven(_ d: Double, _ precision: Int) -> Double {
        guard d.isFinite else { return d }
        if precision == 0 { return d.rounded(.toNearestOrEven) }
        if precision > 0 {
            guard precision <= 300 else { return d }
            return Double(String(format: "%.\(precision)f", d)) ?? d
        }
        let scale = pow(10.0, Double(-precision))
        return (d / scale).rounded(.toNearestOrEven) * scale
    }

    // MARK: tests

    static func applyTest(_ name: String, _ value: JinjaValue, _ args: JinjaArguments, _ interpreter: JinjaInterpreter) throws -> Bool {
        func other() throws -> JinjaValue {
            let a = try args.bind(name, ["other"])
            guard let o = a[0] else { throw JinjaError.type("\(name)() missing 1 required positional argument") }
            return o
        }
        if ["defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string", "mapping",
            "callable", "iterable", "sequence", "escaped", "odd", "even", "lower", "upper", "filter", "test"].contains(name) {
            if !args.positional.isEmpty || !args.keyword.isEmpty {
                throw JinjaError.type("test_\(name)() takes 1 positional argument but \(1 + args.positional.count + args.keyword.count) were given")
            }
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.isNumber
        case "string": if case .string = value { return true } else { return false }
        case "mapping": if case .dict = value { return true } else { return false }
        case "callable":
            switch value {
            case .callable, .undefined: return true
            default: return false
            }
        case "iterable":
            switch value {
            case .undefined, .string, .list, .tuple, .dict, .iterator: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .string, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "escaped": return false
        case "odd", "even":
            let r = try JinjaOperators.binary("%", value, .int(2))
            return pyEqual(r, .int(name == "odd" ? 1 : 0))
        case "divisibleby":
            let r = try JinjaOperators.binary("%", value, try other())
            return pyEqual(r, .int(0))
        case "lower": return PyString.isLower(value.pyStr)
        case "upper": return PyString.isUpper(value.pyStr)
        case "eq", "equalto": return pyEqual(value, try other())
        case "ne": return !pyEqual(value, try other())
        case "lt", "lessthan": return try JinjaOperators.compare("<", value, try other())
        case "le": return try JinjaOperators.compare("<=", value, try other())
        case "gt", "greaterthan": return try JinjaOperators.compare(">", value, try other())
        case "ge": return try JinjaOperators.compare(">=", value, try other())
        case "in":
            let a = try args.bind(name, ["seq"])
            return try JinjaOperators.contains(a[0] ?? .none, value)
        case "sameas":
            let o = try other()
            switch (value, o) {
            case (.none, .none): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.namespace(let x), .namespace(let y)): return x === y
            case (.int(let x), .int(let y)): return x == y && x >= -5 && x <= 256
            default: return false
            }
        case "filter":
            guard case .string(let s) = value else { return false }
            return filterNames.contains(s)
        case "test":
            guard case .string(let s) = value else { return false }
            return testNames.contains(s)
        default:
            throw JinjaError.runtime("the '\(name)' test is not supported by Tiller's chat-template interpreter")
        }
    }
}

extension JinjaValue {
    /// A list as a tuple (for arguments Python accepts as either).
    var asSequence: JinjaValue {
        if case .list(let items) = self { return .tuple(items) }
        return self
    }
}
