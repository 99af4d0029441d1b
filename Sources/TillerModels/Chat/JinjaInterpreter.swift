import Foundation

/// A variable scope. Jinja gives each for-loop iteration, macro call and with-block a fresh
/// child scope (so `{% set %}` inside them does not leak out); `if` blocks do not.
final class JinjaScope {
    var vars: [String: JinjaValue] = [:]
    let parent: JinjaScope?
    /// A for-loop iteration's `loop` variable, built when the template reads it.
    var loop: JinjaLoopState? = nil

    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaValue? {
        var scope: JinjaScope? = self
        while let s = scope {
            if let v = s.vars[name] { return v }
            if let loop = s.loop, name == "loop" { return loop.value }
            scope = s.parent
        }
        return nil
    }
}

/// Where a for loop is: the `loop` object's index, first, last, length, previtem, cycle, ...
struct JinjaLoopState {
    final class Changed { var last: [JinjaValue]? = nil }

    let index: Int
    let items: [JinjaValue]
    let changed: Changed

    var value: JinjaValue {
        let n = items.count
        let index = index, changed = changed
        // Loops are not recursive here, so depth is always 1 (as in Jinja without `recursive`).
        var pairs: [(String, JinjaValue)] = [
            ("index", .int(index + 1)), ("index0", .int(index)), ("revindex", .int(n - index)),
            ("revindex0", .int(n - index - 1)), ("first", .bool(index == 0)), ("last", .bool(index == n - 1)),
            ("length", .int(n)), ("depth", .int(1)), ("depth0", .int(0)),
        ]
        if index > 0 { pairs.append(("previtem", items[index - 1])) }
        if index + 1 < n { pairs.append(("nextitem", items[index + 1])) }
        pairs.append(("cycle", .callable(JinjaCallable(name: "cycle") { args in
            guard !args.positional.isEmpty else { throw JinjaError.type("no items for cycling given") }
            return args.positional[index % args.positional.count]
        })))
        pairs.append(("changed", .callable(JinjaCallable(name: "changed") { args in
            if let last = changed.last, last.count == args.positional.count,
               zip(last, args.positional).allSatisfy({ pyEqual($0, $1) }) {
                return .bool(false)
            }
            changed.last = args.positional
            return .bool(true)
        })))
        return .dict(JinjaDict(uniqueStringKeys: pairs))
    }
}

/// Renders parsed templates. One interpreter per render; not thread-safe.
final class JinjaInterpreter {
    /// Guards against templates that would run away with memory or time.
    static let maxStringBytes = 64 << 20
    static let maxItems = 10_000_000
    static let maxSteps = 2_000_000
    static let maxCallDepth = 24

    enum Flow { case normal, breakLoop, continueLoop }

    private var output = ""
    private var steps = 0
    private var callDepth = 0
    private var loopDepth = 0
    let globals: JinjaScope
    /// The clock strftime_now reads.
    let now: JinjaDate

    init(now: JinjaDate) {
        self.now = now
        globals = JinjaScope(parent: nil)
        JinjaBuiltins.installGlobals(in: globals, interpreter: self)
    }

    /// Renders a template with the given variables (on top of the globals).
    func render(_ nodes: [JinjaNode], variables: [String: JinjaValue]) throws -> String {
        let context = JinjaScope(parent: globals)
        context.vars = variables
        let top = JinjaScope(parent: context)
        output = ""
        _ = try render(nodes, top)
        return output
    }

    // MARK: statements

    private func append(_ s: String) throws {
        output += s
        if output.utf8.count > Self.maxStringBytes {
            throw JinjaError.runtime("the rendered text is longer than \(Self.maxStringBytes) bytes")
        }
    }

    private func capture(_ body: () throws -> Flow) throws -> (String, Flow) {
        let saved = output
        output = ""
        do {
            let flow = try body()
            let text = output
            output = saved
            return (text, flow)
        } catch {
            output = saved
            throw error
        }
    }

    func render(_ nodes: [JinjaNode], _ scope: JinjaScope) throws -> Flow {
        for node in nodes {
            let flow = try renderNode(node, scope)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func located<T>(_ pos: Int, _ body: () throws -> T) throws -> T {
        do { return try body() } catch var error as JinjaError where error.offset == nil {
            error.offset = pos
            throw error
        }
    }

    private func renderNode(_ node: JinjaNode, _ scope: JinjaScope) throws -> Flow {
        try tick()
        switch node {
        case .text(let s):
            try append(s)
        case .output(let e):
            let v = try eval(e, scope)
            try located(e.pos) { try append(v.pyStr) }
        case .conditional(let branches, let otherwise):
            for (condition, body) in branches where try eval(condition, scope).truthy {
                return try render(body, scope)
            }
            return try render(otherwise, scope)
        case .loop(let loop):
            return try located(loop.pos) { try renderLoop(loop, scope) }
        case .assign(let target, let e, let pos):
            let v = try eval(e, scope)
            try located(pos) { try assign(target, v, scope) }
        case .assignBlock(let target, let body, let filters, let pos):
            let (text, _) = try capture { try render(body, scope) }
            let v = try applyFilters(filters, to: .string(text), scope)
            try located(pos) { try assign(target, v, scope) }
        case .macro(let macro):
            scope.vars[macro.name] = makeMacro(macro, scope)
        case .with(let assignments, let body):
            let inner = JinjaScope(parent: scope)
            for (target, e) in assignments {
                let v = try eval(e, scope)
                try located(e.pos) { try assign(target, v, inner) }
            }
            return try render(body, inner)
        case .filterBlock(let filters, let body):
            let (text, _) = try capture { try render(body, JinjaScope(parent: scope)) }
            let v = try applyFilters(filters, to: .string(text), scope)
            try append(v.pyStr)
        case .breakLoop(let pos):
            guard loopDepth > 0 else { throw JinjaError(kind: .runtime, message: "'break' outside of a loop", offset: pos) }
            return .breakLoop
        case .continueLoop(let pos):
            guard loopDepth > 0 else { throw JinjaError(kind: .runtime, message: "'continue' outside of a loop", offset: pos) }
            return .continueLoop
        case .block(let body):
            return try render(body, scope)
        }
        return .normal
    }

    private func applyFilters(_ filters: [JinjaFilterCall], to value: JinjaValue, _ scope: JinjaScope) throws -> JinjaValue {
        var v = value
        for f in filters {
            let args = try arguments(f.args, f.kwargs, scope)
            v = try located(f.pos) { try JinjaBuiltins.applyFilter(f.name, v, args, self) }
        }
        return v
    }

    private func renderLoop(_ loop: JinjaForLoop, _ scope: JinjaScope) throws -> Flow {
        let iterable = try eval(loop.iterable, scope)
        var items = try iterate(iterable)
        if let condition = loop.condition {
            items = try items.filter { item in
                try tick()
                let s = JinjaScope(parent: scope)
                try assign(loop.target, item, s)
                return try eval(condition, s).truthy
            }
        }
        if items.isEmpty {
            return try render(loop.otherwise, JinjaScope(parent: scope))
        }
        loopDepth += 1
        defer { loopDepth -= 1 }
        let changed = JinjaLoopState.Changed()
        for (index, item) in items.enumerated() {
            try tick()
            let s = JinjaScope(parent: scope)
            try assign(loop.target, item, s)
            s.loop = JinjaLoopState(index: index, items: items, changed: changed)
            if try render(loop.body, s) == .breakLoop { break }
        }
        return .normal
    }

    private func makeMacro(_ macro: JinjaMacro, _ scope: JinjaScope) -> JinjaValue {
        .callable(JinjaCallable(name: macro.name) { [unowned self, weak scope] args in
            try self.callMacro(macro, scope ?? self.globals, args)
        })
    }

    private func callMacro(_ macro: JinjaMacro, _ definition: JinjaScope, _ args: JinjaArguments) throws -> JinjaValue {
        callDepth += 1
        defer { callDepth -= 1 }
        guard callDepth <= Self.maxCallDepth else {
            throw JinjaError.runtime("macro calls nested more than \(Self.maxCallDepth) levels deep")
        }
        if args.positional.count > macro.parameters.count {
            throw JinjaError.type("macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)")
        }
        for (key, _) in args.keyword where !macro.parameters.contains(where: { $0.0 == key }) {
            throw JinjaError.type("macro '\(macro.name)' takes no keyword argument '\(key)'")
        }
        let s = JinjaScope(parent: definition)
        for (i, (name, defaultValue)) in macro.parameters.enumerated() {
            if i < args.positional.count {
                s.vars[name] = args.positional[i]
            } else if let kw = args.keyword.first(where: { $0.0 == name }) {
                s.vars[name] = kw.1
            } else if let defaultValue {
                s.vars[name] = try eval(defaultValue, s)
            } else {
                s.vars[name] = .undefined("parameter '\(name)' was not provided")
            }
        }
        let savedLoopDepth = loopDepth
        loopDepth = 0
        defer { loopDepth = savedLoopDepth }
        let (text, _) = try capture { try render(macro.body, s) }
        return .string(text)
    }

    /// The items a for loop (or an unpacking) walks: a string's characters, a dict's keys.
    func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case .list(let items), .tuple(let items): return items
        case .dict(let d): return d.keys
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .iterator(let it): return try it.drain()
        default: throw JinjaError.type("'\(value.typeName)' object is not iterable")
        }
    }

    private func assign(_ target: JinjaTarget, _ value: JinjaValue, _ scope: JinjaScope) throws {
        switch target {
        case .name(let name):
            scope.vars[name] = value
        case .attribute(let name, let attribute):
            guard case .namespace(let ns)? = scope.lookup(name) else {
                throw JinjaError.runtime("TemplateRuntimeError: cannot assign attribute on non-namespace object")
            }
            if attribute.hasPrefix("_") {
                throw JinjaError.runtime("SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(attribute)'.")
            }
            ns.attributes.set(string: attribute, value)
            if JinjaValue.namespace(ns).nestsDeeper(than: JinjaValue.maxNesting) {
                ns.attributes.set(string: attribute, .none)
                throw JinjaError.runtime("a value is nested more than \(JinjaValue.maxNesting) levels deep")
            }
        case .tuple(let targets):
            let items = try iterate(value)
            if items.count > targets.count {
                throw JinjaError.runtime("ValueError: too many values to unpack (expected \(targets.count))")
            }
            if items.count < targets.count {
                throw JinjaError.runtime("ValueError: not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope) }
        }
    }

    // MARK: expressions

    func arguments(_ args: [JinjaExpr], _ kwargs: [(String, JinjaExpr)], _ scope: JinjaScope) throws -> JinjaArguments {
        JinjaArguments(positional: try args.map { try eval($0, scope) },
                       keyword: try kwargs.map { ($0.0, try eval($0.1, scope)) })
    }

    /// Counts one step of work (an expression, a statement, a loop iteration).
    private func tick() throws {
        steps += 1
        if steps > Self.maxSteps {
            throw JinjaError.runtime("the template took more than \(Self.maxSteps) evaluation steps")
        }
    }

    func eval(_ e: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        do {
            try tick()
            return try evalKind(e, scope)
        } catch var error as JinjaError where error.offset == nil {
            error.offset = e.pos
            throw error
        }
    }

    // evalKind only dispatches: in debug builds a function's frame holds every local of every
    // branch, and evaluation recurses through it once per level of nesting, so the work of each
    // kind of expression lives in its own small function.
    private func evalKind(_ e: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        switch e.kind {
        case .literal(let v): return v
        case .name(let name): return scope.lookup(name) ?? .undefined("'\(name)' is undefined")
        case .list(let items): return try evalList(items, scope, tuple: false)
        case .tuple(let items): return try evalList(items, scope, tuple: true)
        case .dict(let pairs): return try evalDict(pairs, scope)
        case .getattr(let object, let name): return try evalAttribute(object, name, scope)
        case .getitem(let object, let key): return try evalItem(object, key, scope)
        case .slice: throw JinjaError.syntax("a slice is only allowed in a subscript", at: e.pos)
        case .call(let callee, let args, let kwargs): return try evalCall(callee, args, kwargs, scope)
        case .filter(let base, let name, let args, let kwargs): return try evalFilter(base, name, args, kwargs, scope)
        case .test(let base, let name, let args, let kwargs, let negated): return try evalTest(base, name, args, kwargs, negated, scope)
        case .not(let operand): return try evalNot(operand, scope)
        case .negate(let operand): return try evalNegate(operand, scope)
        case .plus(let operand): return try evalPlus(operand, scope)
        case .arithmetic(let first, let rest): return try evalArithmetic(first, rest, scope)
        case .concat(let items): return try evalConcat(items, scope)
        case .and(let items): return try evalLogic(items, scope, isAnd: true)
        case .or(let items): return try evalLogic(items, scope, isAnd: false)
        case .compare(let first, let ops): return try evalCompare(first, ops, scope)
        case .conditional(let test, let then, let otherwise): return try evalConditional(test, then, otherwise, scope)
        }
    }

    private func evalList(_ items: [JinjaExpr], _ scope: JinjaScope, tuple: Bool) throws -> JinjaValue {
        let values = try items.map { try eval($0, scope) }
        return try (tuple ? JinjaValue.tuple(values) : JinjaValue.list(values)).checkedNesting()
    }

    private func evalDict(_ pairs: [(JinjaExpr, JinjaExpr)], _ scope: JinjaScope) throws -> JinjaValue {
        var d = JinjaDict()
        for (k, v) in pairs { try d.set(try eval(k, scope), try eval(v, scope)) }
        return try JinjaValue.dict(d).checkedNesting()
    }

    private func evalAttribute(_ object: JinjaExpr, _ name: String, _ scope: JinjaScope) throws -> JinjaValue {
        try JinjaBuiltins.attribute(of: try eval(object, scope), name, self)
    }

    private func evalItem(_ object: JinjaExpr, _ key: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        let value = try eval(object, scope)
        if case .slice(let start, let stop, let step) = key.kind {
            return try JinjaBuiltins.slice(value, start.map { try eval($0, scope) }, stop.map { try eval($0, scope) },
                                           step.map { try eval($0, scope) })
        }
        return try JinjaBuiltins.item(of: value, try eval(key, scope), self)
    }

    private func evalCall(_ callee: JinjaExpr, _ args: [JinjaExpr], _ kwargs: [(String, JinjaExpr)], _ scope: JinjaScope) throws -> JinjaValue {
        let f = try eval(callee, scope)
        let a = try arguments(args, kwargs, scope)
        return try checkSize(try call(f, a))
    }

    private func evalFilter(_ base: JinjaExpr, _ name: String, _ args: [JinjaExpr], _ kwargs: [(String, JinjaExpr)], _ scope: JinjaScope) throws -> JinjaValue {
        let v = try eval(base, scope)
        let a = try arguments(args, kwargs, scope)
        return try checkSize(try JinjaBuiltins.applyFilter(name, v, a, self))
    }

    private func evalTest(_ base: JinjaExpr, _ name: String, _ args: [JinjaExpr], _ kwargs: [(String, JinjaExpr)], _ negated: Bool,
                          _ scope: JinjaScope) throws -> JinjaValue {
        let v = try eval(base, scope)
        let a = try arguments(args, kwargs, scope)
        return .bool(try JinjaBuiltins.applyTest(name, v, a, self) != negated)
    }

    private func evalNot(_ operand: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        .bool(!(try eval(operand, scope).truthy))
    }

    private func evalNegate(_ operand: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        try JinjaOperators.negate(try eval(operand, scope))
    }

    private func evalPlus(_ operand: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        let v = try eval(operand, scope)
        if case .undefined(let m) = v { throw JinjaOperators.undefinedError(m) }
        guard v.isNumber else { throw JinjaError.type("bad operand type for unary +: '\(v.typeName)'") }
        if case .bool(let b) = v { return .int(b ? 1 : 0) }
        return v
    }

    private func evalArithmetic(_ first: JinjaExpr, _ rest: [(String, JinjaExpr)], _ scope: JinjaScope) throws -> JinjaValue {
        var v = try eval(first, scope)
        for (op, operand) in rest {
            let rhs = try eval(operand, scope)
            v = try checkSize(try JinjaOperators.binary(op, v, rhs))
        }
        return v
    }

    private func evalConcat(_ items: [JinjaExpr], _ scope: JinjaScope) throws -> JinjaValue {
        var s = ""
        for item in items {
            s += try eval(item, scope).pyStr
            if s.utf8.count > Self.maxStringBytes { throw JinjaError.runtime("a string grew longer than \(Self.maxStringBytes) bytes") }
        }
        return .string(s)
    }

    /// `and` / `or`: Python's short circuit, returning the deciding operand.
    private func evalLogic(_ items: [JinjaExpr], _ scope: JinjaScope, isAnd: Bool) throws -> JinjaValue {
        var v = try eval(items[0], scope)
        for item in items.dropFirst() {
            if v.truthy != isAnd { return v }
            v = try eval(item, scope)
        }
        return v
    }

    private func evalCompare(_ first: JinjaExpr, _ ops: [(String, JinjaExpr)], _ scope: JinjaScope) throws -> JinjaValue {
        var lhs = try eval(first, scope)
        for (op, operand) in ops {
            let rhs = try eval(operand, scope)
            if !(try JinjaOperators.compare(op, lhs, rhs)) { return .bool(false) }
            lhs = rhs
        }
        return .bool(true)
    }

    private func evalConditional(_ test: JinjaExpr, _ then: JinjaExpr, _ otherwise: JinjaExpr?, _ scope: JinjaScope) throws -> JinjaValue {
        if try eval(test, scope).truthy { return try eval(then, scope) }
        if let otherwise { return try eval(otherwise, scope) }
        return .undefined("the inline if-expression evaluated to false and no else section was defined.")
    }

    func call(_ f: JinjaValue, _ args: JinjaArguments) throws -> JinjaValue {
        switch f {
        case .callable(let c): return try c.call(args)
        case .undefined(let m): throw JinjaOperators.undefinedError(m)
        default: throw JinjaError.type("'\(f.typeName)' object is not callable")
        }
    }

    func checkSize(_ v: JinjaValue) throws -> JinjaValue {
        switch v {
        case .string(let s) where s.utf8.count > Self.maxStringBytes:
            throw JinjaError.runtime("a string grew longer than \(Self.maxStringBytes) bytes")
        case .list(let a) where a.count > Self.maxItems, .tuple(let a) where a.count > Self.maxItems:
            throw JinjaError.runtime("a list grew longer than \(Self.maxItems) items")
        default:
            return v
        }
    }
}

/// Python's arithmetic and comparison operators on template values.
enum JinjaOperators {
    static func undefinedError(_ message: String) -> JinjaError { JinjaError.runtime("UndefinedError: " + message) }

    static func negate(_ v: JinjaValue) throws -> JinjaValue {
        switch v {
        case .undefined(let m): throw undefinedError(m)
        case .bool(let b): return .int(b ? -1 : 0)
        case .int(let i):
            guard i != Int.min else { throw JinjaError.runtime("OverflowError: integer overflow") }
            return .int(-i)
        case .double(let d): return .double(-d)
        default: throw JinjaError.type("bad operand type for unary -: '\(v.typeName)'")
        }
    }

    private static func overflow() -> JinjaError { JinjaError.runtime("OverflowError: integer overflow") }

    private static func unsupported(_ op: String, _ a: JinjaValue, _ b: JinjaValue) -> JinjaError {
        JinjaError.type("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
    }

    static func repeatCount(_ count: Int, _ unit: Int) throws -> Int {
        let n = max(0, count)
        if n > 0 && unit > 0 && n > JinjaInterpreter.maxStringBytes / unit {
            throw JinjaError.runtime("a repeated value would be longer than \(JinjaInterpreter.maxStringBytes) bytes")
        }
        return n
    }

    static func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if case .undefined(let m) = a { throw undefinedError(m) }
        if case .undefined(let m) = b { throw undefinedError(m) }
        switch op {
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.list(let x), .list(let y)): return .list(x + y)
            case (.tuple(let x), .tuple(let y)): return .tuple(x + y)
            case (.string, _): throw JinjaError.type("can only concatenate str (not \"\(b.typeName)\") to str")
            case (.list, _): throw JinjaError.type("can only concatenate list (not \"\(b.typeName)\") to list")
            case (.tuple, _): throw JinjaError.type("can only concatenate tuple (not \"\(b.typeName)\") to tuple")
            default:
                if let x = a.intValue, let y = b.intValue {
                    let (r, o) = x.addingReportingOverflow(y)
                    if o { throw overflow() }
                    return .int(r)
                }
                if let x = a.doubleValue, let y = b.doubleValue { return .double(x + y) }
                throw unsupported("+", a, b)
            }
        case "-":
            if let x = a.intValue, let y = b.intValue {
                let (r, o) = x.subtractingReportingOverflow(y)
                if o { throw overflow() }
                return .int(r)
            }
            if let x = a.doubleValue, let y = b.doubleValue { return .double(x - y) }
            throw unsupported("-", a, b)
        case "*":
            switch (a, b) {
            case (.string(let s), _) where b.intValue != nil, (_, .string(let s)) where a.intValue != nil:
                let n = try repeatCount(a.intValue ?? b.intValue ?? 0, s.utf8.count)
                return .string(String(repeating: s, count: n))
            case (.list(let l), _) where b.intValue != nil, (_, .list(let l)) where a.intValue != nil:
                let n = try repeatCount(a.intValue ?? b.intValue ?? 0, l.count * 16)
                return .list(Array([[JinjaValue]](repeating: l, count: n).joined()))
            case (.tuple(let l), _) where b.intValue != nil, (_, .tuple(let l)) where a.intValue != nil:
                let n = try repeatCount(a.intValue ?? b.intValue ?? 0, l.count * 16)
                return .tuple(Array([[JinjaValue]](repeating: l, count: n).joined()))
            default:
                if let x = a.intValue, let y = b.intValue {
                    let (r, o) = x.multipliedReportingOverflow(by: y)
                    if o { throw overflow() }
                    return .int(r)
                }
                if let x = a.doubleValue, let y = b.doubleValue { return .double(x * y) }
                throw unsupported("*", a, b)
            }
        case "/":
            guard let x = a.doubleValue, let y = b.doubleValue else { throw unsupported("/", a, b) }
            if y == 0 { throw JinjaError.runtime("ZeroDivisionError: division by zero") }
            return .double(x / y)
        case "//", "%":
            if op == "%", case .string(let s) = a {
                let args: [JinjaValue]
                if case .tuple(let t) = b { args = t } else { args = [b] }
                return .string(try JinjaBuiltins.percentFormat(s, args, mapping: b))
            }
            if let x = a.intValue, let y = b.intValue {
                if y == 0 { throw JinjaError.runtime("ZeroDivisionError: integer division or modulo by zero") }
                if x == Int.min && y == -1 { throw overflow() }
                var q = x / y, r = x % y
                if r != 0 && ((r < 0) != (y < 0)) { q -= 1; r += y }
                return .int(op == "//" ? q : r)
            }
            guard let x = a.doubleValue, let y = b.doubleValue else { throw unsupported(op, a, b) }
            if y == 0 {
                throw JinjaError.runtime(op == "//" ? "ZeroDivisionError: float floor division by zero" : "ZeroDivisionError: float modulo")
            }
            var mod = fmod(x, y)
            if mod != 0 {
                if (y < 0) != (mod < 0) { mod += y }
            } else {
                mod = copysign(0, y)
            }
            if op == "%" { return .double(mod) }
            let div = (x - mod) / y
            var floordiv: Double
            if div != 0 {
                floordiv = div.rounded(.down)
                if div - floordiv > 0.5 { floordiv += 1 }
            } else {
                floordiv = copysign(0, x / y)
            }
            return .double(floordiv)
        case "**":
            if let x = a.intValue, let y = b.intValue {
                if y < 0 {
                    if x == 0 { throw JinjaError.runtime("ZeroDivisionError: 0.0 cannot be raised to a negative power") }
                    return .double(pow(Double(x), Double(y)))
                }
                var result = 1, base = x, e = y
                while e > 0 {
                    if e & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        result = r
                    }
                    e >>= 1
                    if e > 0 {
                        let (sq, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        base = sq
                    }
                }
                return .int(result)
            }
            guard let x = a.doubleValue, let y = b.doubleValue else { throw unsupported("** or pow()", a, b) }
            if x == 0 && y < 0 { throw JinjaError.runtime("ZeroDivisionError: 0.0 cannot be raised to a negative power") }
            return .double(pow(x, y))
        default:
            throw JinjaError.runtime("unknown operator \(op)")
        }
    }

    static func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch container {
        case .undefined: return false
        case .string(let s):
            guard case .string(let sub) = item else {
                if case .undefined(let m) = item { throw undefinedError(m) }
                throw JinjaError.type("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return JinjaBuiltins.find(sub, in: s) != nil
        case .list(let items), .tuple(let items):
            return items.contains { pyEqual($0, item) }
        case .iterator(let it):
            while let v = try it.next() { if pyEqual(v, item) { return true } }
            return false
        case .dict(let d):
            guard item.isHashable else { throw JinjaError.type("unhashable type: '\(item.typeName)'") }
            return d.index(of: item) != nil
        default:
            throw JinjaError.type("argument of type '\(container.typeName)' is not iterable")
        }
    }

    static func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return pyEqual(a, b)
        case "!=": return !pyEqual(a, b)
        case "in": return try contains(b, a)
        case "not in": return !(try contains(b, a))
        default:
            if case .undefined(let m) = a { throw undefinedError(m) }
            if case .undefined(let m) = b { throw undefinedError(m) }
            switch op {
            case "<": return try pyLess(a, b, op: op)
            case ">": return try pyLess(b, a, op: op)
            case "<=": return try pyLess(a, b, op: op) || pyEqual(a, b)
            case ">=": return try pyLess(b, a, op: op) || pyEqual(a, b)
            default: throw JinjaError.runtime("unknown comparison \(op)")
            }
        }
    }
}
