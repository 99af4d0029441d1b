// The Jinja2 parser for the subset chat templates use. The expression grammar follows
// jinja2/parser.py (precedence, `is` tests and filters binding tighter than `not`, left
// associative `**`, chained comparisons). Left-associative chains (+ -, * / // %, **, ~, and,
// or) are kept flat so evaluating a long concatenation does not recurse once per operator;
// nesting (parentheses, brackets, filters, statements) is limited so hostile templates
// cannot exhaust the stack.

final class JinjaExpr {
    indirect enum Kind {
        case literal(JinjaValue)
        case name(String)
        case list([JinjaExpr])
        case tuple([JinjaExpr])
        case dict([(JinjaExpr, JinjaExpr)])
        case getattr(JinjaExpr, String)
        case getitem(JinjaExpr, JinjaExpr)
        case slice(JinjaExpr?, JinjaExpr?, JinjaExpr?)
        case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
        case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
        case test(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)], negated: Bool)
        case not(JinjaExpr)
        case negate(JinjaExpr)
        case plus(JinjaExpr)
        /// A left-associative chain of arithmetic operators of one precedence level.
        case arithmetic(JinjaExpr, [(String, JinjaExpr)])
        case concat([JinjaExpr])
        case and([JinjaExpr])
        case or([JinjaExpr])
        case compare(JinjaExpr, [(String, JinjaExpr)])
        case conditional(test: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
    }

    let kind: Kind
    let pos: Int
    let depth: Int

    init(_ kind: Kind, pos: Int, children: [JinjaExpr?] = []) {
        self.kind = kind
        self.pos = pos
        depth = 1 + (children.compactMap { $0?.depth }.max() ?? 0)
    }
}

enum JinjaTarget {
    case name(String)
    case attribute(String, String)
    case tuple([JinjaTarget])
}

struct JinjaFilterCall {
    let name: String
    let args: [JinjaExpr]
    let kwargs: [(String, JinjaExpr)]
    let pos: Int
}

final class JinjaMacro {
    let name: String
    let parameters: [(String, JinjaExpr?)]
    let body: [JinjaNode]
    init(name: String, parameters: [(String, JinjaExpr?)], body: [JinjaNode]) {
        self.name = name
        self.parameters = parameters
        self.body = body
    }
}

final class JinjaForLoop {
    let target: JinjaTarget
    let iterable: JinjaExpr
    let condition: JinjaExpr?
    let body: [JinjaNode]
    let otherwise: [JinjaNode]
    let pos: Int
    init(target: JinjaTarget, iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], pos: Int) {
        self.target = target
        self.iterable = iterable
        self.condition = condition
        self.body = body
        self.otherwise = otherwise
        self.pos = pos
    }
}

indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpr)
    case conditional([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case loop(JinjaForLoop)
    case assign(JinjaTarget, JinjaExpr, pos: Int)
    case assignBlock(JinjaTarget, [JinjaNode], filters: [JinjaFilterCall], pos: Int)
    case macro(JinjaMacro)
    case with([(JinjaTarget, JinjaExpr)], [JinjaNode])
    case filterBlock([JinjaFilterCall], [JinjaNode])
    case breakLoop(pos: Int)
    case continueLoop(pos: Int)
    case block([JinjaNode])
}

struct JinjaParser {
    /// The deepest expression tree, and the deepest nesting of brackets and unary operators
    /// (each costs the recursive-descent parser a dozen stack frames).
    static let maxExpressionDepth = 64
    static let maxNesting = 24
    static let maxBlockDepth = 48

    private var tokens: [JinjaToken]
    private var i = 0
    private var blockDepth = 0
    private var parenDepth = 0
    /// The tags the enclosing blocks wait for, innermost last, for error messages.
    private var endTagStack: [(tag: String, ends: [String])] = []

    private init(tokens: [JinjaToken]) { self.tokens = tokens }

    static func parse(_ tokens: [JinjaToken]) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: tokens)
        let (body, _) = try parser.parseBody(until: [])
        return body
    }

    // MARK: token stream

    private var current: JinjaToken { tokens[min(i, tokens.count - 1)] }
    private func peek(_ k: Int = 1) -> JinjaToken { tokens[min(i + k, tokens.count - 1)] }
    private mutating func advance() -> JinjaToken {
        let t = current
        if i < tokens.count - 1 { i += 1 }
        return t
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op && current.text == op }
    private func isName(_ name: String) -> Bool { current.kind == .name && current.text == name }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { _ = advance(); return true }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { _ = advance(); return true }
        return false
    }

    private func fail(_ message: String, _ token: JinjaToken? = nil) -> JinjaError {
        JinjaError.syntax(message, at: (token ?? current).pos)
    }

    private func unexpected(expected: String) -> JinjaError {
        if current.kind == .eof { return fail("unexpected end of template, expected \(expected).") }
        return fail("expected token \(expected), got '\(current.describe)'")
    }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw unexpected(expected: "'\(op)'") }
    }

    private mutating func expectName() throws -> JinjaToken {
        guard current.kind == .name else { throw unexpected(expected: "'name'") }
        return advance()
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw unexpected(expected: "'end of statement block'") }
        _ = advance()
    }

    private func checked(_ e: JinjaExpr) throws -> JinjaExpr {
        if e.depth > Self.maxExpressionDepth {
            throw JinjaError.syntax("expression nested more than \(Self.maxExpressionDepth) levels deep", at: e.pos)
        }
        return e
    }

    // MARK: template structure

    /// Parses nodes up to a `{% name %}` tag whose name is in `ends` (consuming the name) or
    /// the end of the template (only allowed when `ends` is empty).
    private mutating func parseBody(until ends: [String]) throws -> ([JinjaNode], String?) {
        var nodes: [JinjaNode] = []
        while true {
            let t = current
            switch t.kind {
            case .data:
                _ = advance()
                nodes.append(.text(t.text))
            case .variableBegin:
                _ = advance()
                let e = try parseTuple()
                guard current.kind == .variableEnd else { throw unexpected(expected: "'end of print statement'") }
                _ = advance()
                nodes.append(.output(e))
            case .blockBegin:
                _ = advance()
                if current.kind == .name, ends.contains(current.text) {
                    return (nodes, advance().text)
                }
                nodes.append(try parseStatement())
            case .eof:
                if let innermost = endTagStack.last {
                    let looking = innermost.ends.map { "'\($0)'" }.joined(separator: " or ")
                    throw fail("Unexpected end of template. Jinja was looking for the following tags: \(looking). The innermost block that needs to be closed is '\(innermost.tag)'.")
                }
                return (nodes, nil)
            default:
                throw fail("unexpected '\(t.describe)'")
            }
        }
    }

    private mutating func parseBlock(_ tag: String, until ends: [String]) throws -> ([JinjaNode], String) {
        blockDepth += 1
        defer { blockDepth -= 1 }
        guard blockDepth <= Self.maxBlockDepth else { throw fail("blocks nested more than \(Self.maxBlockDepth) levels deep") }
        endTagStack.append((tag, ends))
        defer { endTagStack.removeLast() }
        let (body, end) = try parseBody(until: ends)
        return (body, end ?? "")
    }

    private static let unsupportedTags: Set<String> = [
        "block", "extends", "include", "import", "from", "call", "autoescape", "print",
    ]

    private mutating func parseStatement() throws -> JinjaNode {
        let tagToken = current
        guard tagToken.kind == .name else { throw fail("tag name expected") }
        switch tagToken.text {
        case "if": _ = advance(); return try parseIf()
        case "for": _ = advance(); return try parseFor(tagToken)
        case "set": _ = advance(); return try parseSet(tagToken)
        case "with": _ = advance(); return try parseWith()
        case "macro": _ = advance(); return try parseMacro()
        case "filter": _ = advance(); return try parseFilterBlock()
        case "break", "continue":
            _ = advance()
            try expectBlockEnd()
            guard endTagStack.contains(where: { $0.tag == "for" }) else {
                throw fail("'\(tagToken.text)' outside of a for loop", tagToken)
            }
            return tagToken.text == "break" ? .breakLoop(pos: tagToken.pos) : .continueLoop(pos: tagToken.pos)
        case "generation":
            // transformers' {% generation %} marks assistant text; rendering just keeps it.
            _ = advance()
            try expectBlockEnd()
            let (body, _) = try parseBlock("generation", until: ["endgeneration"])
            try expectBlockEnd()
            return .block(body)
        default:
            if Self.unsupportedTags.contains(tagToken.text) {
                throw fail("the '\(tagToken.text)' tag is not supported by Tiller's chat-template interpreter")
            }
            var message = "Encountered unknown tag '\(tagToken.text)'."
            if let innermost = endTagStack.last {
                let looking = innermost.ends.map { "'\($0)'" }.joined(separator: " or ")
                message += " Jinja was looking for the following tags: \(looking). The innermost block that needs to be closed is '\(innermost.tag)'."
            }
            throw fail(message)
        }
    }

    private mutating func parseIf() throws -> JinjaNode {
        var branches: [(JinjaExpr, [JinjaNode])] = []
        var otherwise: [JinjaNode] = []
        var condition = try parseTuple(withCondexpr: false)
        try expectBlockEnd()
        while true {
            let (body, end) = try parseBlock("if", until: ["elif", "else", "endif"])
            branches.append((condition, body))
            if end == "elif" {
                condition = try parseTuple(withCondexpr: false)
                try expectBlockEnd()
                continue
            }
            if end == "else" {
                try expectBlockEnd()
                (otherwise, _) = try parseBlock("if", until: ["endif"])
            }
            try expectBlockEnd()
            return .conditional(branches, otherwise: otherwise)
        }
    }

    private mutating func parseFor(_ tag: JinjaToken) throws -> JinjaNode {
        let target = try parseAssignTarget(allowAttribute: false, endNames: ["in"])
        guard skipName("in") else { throw unexpected(expected: "'in'") }
        let iterable = try parseTuple(withCondexpr: false, endNames: ["recursive"])
        var condition: JinjaExpr? = nil
        if skipName("if") { condition = try checked(parseExpression()) }
        if isName("recursive") { throw fail("recursive for loops are not supported by Tiller's chat-template interpreter") }
        try expectBlockEnd()
        let (body, end) = try parseBlock("for", until: ["endfor", "else"])
        var otherwise: [JinjaNode] = []
        if end == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseBlock("for", until: ["endfor"])
        }
        try expectBlockEnd()
        return .loop(JinjaForLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise, pos: tag.pos))
    }

    private mutating func parseSet(_ tag: JinjaToken) throws -> JinjaNode {
        let target = try parseAssignTarget(allowAttribute: true, endNames: [])
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .assign(target, value, pos: tag.pos)
        }
        let filters = try parseFilterChain()
        try expectBlockEnd()
        let (body, _) = try parseBlock("set", until: ["endset"])
        try expectBlockEnd()
        return .assignBlock(target, body, filters: filters, pos: tag.pos)
    }

    private mutating func parseWith() throws -> JinjaNode {
        var assignments: [(JinjaTarget, JinjaExpr)] = []
        while current.kind != .blockEnd {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget(allowAttribute: false, endNames: [])
            try expectOp("=")
            assignments.append((target, try checked(parseExpression())))
        }
        try expectBlockEnd()
        let (body, _) = try parseBlock("with", until: ["endwith"])
        try expectBlockEnd()
        return .with(assignments, body)
    }

    private mutating func parseMacro() throws -> JinjaNode {
        let name = try expectName().text
        try expectOp("(")
        var parameters: [(String, JinjaExpr?)] = []
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let p = try expectName().text
            var value: JinjaExpr? = nil
            if skipOp("=") { value = try checked(parseExpression()) } else if parameters.contains(where: { $0.1 != nil }) {
                throw fail("non-default argument follows default argument")
            }
            parameters.append((p, value))
        }
        try expectOp(")")
        try expectBlockEnd()
        let (body, _) = try parseBlock("macro", until: ["endmacro"])
        if current.kind == .name { _ = advance() }  // {% endmacro name %}
        try expectBlockEnd()
        return .macro(JinjaMacro(name: name, parameters: parameters, body: body))
    }

    private mutating func parseFilterBlock() throws -> JinjaNode {
        let filters = try parseFilterChain(first: true)
        try expectBlockEnd()
        let (body, _) = try parseBlock("filter", until: ["endfilter"])
        try expectBlockEnd()
        return .filterBlock(filters, body)
    }

    /// `| name(args) | name ...` (or, for a filter block, the first name without a pipe).
    private mutating func parseFilterChain(first: Bool = false) throws -> [JinjaFilterCall] {
        var filters: [JinjaFilterCall] = []
        var needPipe = !first
        while true {
            if needPipe { guard skipOp("|") else { break } }
            needPipe = true
            let nameToken = try expectName()
            let name = try dottedName(nameToken.text)
            try checkFilter(name, nameToken)
            var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
            if isOp("(") { (args, kwargs) = try parseCallArguments() }
            filters.append(JinjaFilterCall(name: name, args: args, kwargs: kwargs, pos: nameToken.pos))
        }
        return filters
    }

    private mutating func parseAssignTarget(allowAttribute: Bool, endNames: Set<String>) throws -> JinjaTarget {
        func one(_ parser: inout JinjaParser) throws -> JinjaTarget {
            if parser.skipOp("(") {
                let t = try parser.parseAssignTarget(allowAttribute: false, endNames: [])
                try parser.expectOp(")")
                return t
            }
            let name = try parser.expectName()
            if allowAttribute && parser.isOp(".") {
                _ = parser.advance()
                let attr = try parser.expectName()
                return .attribute(name.text, attr.text)
            }
            if ["true", "false", "none", "True", "False", "None"].contains(name.text) {
                throw parser.fail("can't assign to '\(name.text)'", name)
            }
            return .name(name.text)
        }
        let first = try one(&self)
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if current.kind == .blockEnd || isOp("=") || isOp(")") || (current.kind == .name && endNames.contains(current.text)) { break }
            items.append(try one(&self))
        }
        for item in items { if case .attribute = item { throw fail("can't assign to a namespace attribute in a tuple") } }
        return .tuple(items)
    }

    // MARK: expressions

    private func isTupleEnd(_ endNames: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .eof: return true
        case .op: return current.text == ")"
        case .name: return endNames.contains(current.text)
        default: return false
        }
    }

    /// Jinja's parse_tuple: an expression, or a tuple when commas separate several.
    private mutating func parseTuple(withCondexpr: Bool = true, endNames: Set<String> = [], explicitParentheses: Bool = false) throws -> JinjaExpr {
        let pos = current.pos
        var items: [JinjaExpr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(endNames) { break }
            items.append(try checked(parseExpression(withCondexpr: withCondexpr)))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got '\(current.describe)'") }
        }
        return try checked(JinjaExpr(.tuple(items), pos: pos, children: items))
    }

    private mutating func parseExpression(withCondexpr: Bool = true) throws -> JinjaExpr {
        withCondexpr ? try parseConditional() : try parseOr()
    }

    private mutating func parseConditional() throws -> JinjaExpr {
        var expr = try parseOr()
        while isName("if") {
            let pos = advance().pos
            let test = try parseOr()
            var otherwise: JinjaExpr? = nil
            if skipName("else") { otherwise = try parseConditional() }
            expr = try checked(JinjaExpr(.conditional(test: test, then: expr, otherwise: otherwise), pos: pos, children: [test, expr, otherwise]))
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpr {
        let first = try parseAnd()
        guard isName("or") else { return first }
        var items = [first]
        while skipName("or") { items.append(try parseAnd()) }
        return try checked(JinjaExpr(.or(items), pos: first.pos, children: items))
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        let first = try parseNot()
        guard isName("and") else { return first }
        var items = [first]
        while skipName("and") { items.append(try parseNot()) }
        return try checked(JinjaExpr(.and(items), pos: first.pos, children: items))
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if isName("not") {
            let pos = advance().pos
            let operand = try parseNot()
            return try checked(JinjaExpr(.not(operand), pos: pos, children: [operand]))
        }
        return try parseCompare()
    }

    private static let compareOps: Set<String> = ["==", "!=", "<", "<=", ">", ">="]

    private mutating func parseCompare() throws -> JinjaExpr {
        let first = try parseMath1()
        var ops: [(String, JinjaExpr)] = []
        while true {
            if current.kind == .op, Self.compareOps.contains(current.text) {
                let op = advance().text
                ops.append((op, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if isName("not") && peek().kind == .name && peek().text == "in" {
                _ = advance(); _ = advance()
                ops.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        if ops.isEmpty { return first }
        return try checked(JinjaExpr(.compare(first, ops), pos: first.pos, children: [first] + ops.map(\.1)))
    }

    private static let math1Ops: Set<String> = ["+", "-"]
    private static let math2Ops: Set<String> = ["*", "/", "//", "%"]

    private func arithmetic(_ first: JinjaExpr, _ rest: [(String, JinjaExpr)]) throws -> JinjaExpr {
        if rest.isEmpty { return first }
        return try checked(JinjaExpr(.arithmetic(first, rest), pos: first.pos, children: [first] + rest.map(\.1)))
    }

    private mutating func parseMath1() throws -> JinjaExpr {
        let first = try parseConcat()
        var rest: [(String, JinjaExpr)] = []
        while current.kind == .op, Self.math1Ops.contains(current.text) {
            let op = advance().text
            rest.append((op, try parseConcat()))
        }
        return try arithmetic(first, rest)
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        let first = try parseMath2()
        guard isOp("~") else { return first }
        var items = [first]
        while skipOp("~") { items.append(try parseMath2()) }
        return try checked(JinjaExpr(.concat(items), pos: first.pos, children: items))
    }

    private mutating func parseMath2() throws -> JinjaExpr {
        let first = try parsePow()
        var rest: [(String, JinjaExpr)] = []
        while current.kind == .op, Self.math2Ops.contains(current.text) {
            let op = advance().text
            rest.append((op, try parsePow()))
        }
        return try arithmetic(first, rest)
    }

    private mutating func parsePow() throws -> JinjaExpr {
        let first = try parseUnary()
        var rest: [(String, JinjaExpr)] = []
        while isOp("**") {
            _ = advance()
            rest.append(("**", try parseUnary()))
        }
        return try arithmetic(first, rest)
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        parenDepth += 1
        defer { parenDepth -= 1 }
        guard parenDepth <= Self.maxNesting else { throw fail("expression nested more than \(Self.maxNesting) levels deep") }
        var node: JinjaExpr
        if isOp("-") || isOp("+") {
            let t = advance()
            let operand = try parseUnary(withFilter: false)
            node = JinjaExpr(t.text == "-" ? .negate(operand) : .plus(operand), pos: t.pos, children: [operand])
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return try checked(node)
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let t = current
        switch t.kind {
        case .name:
            _ = advance()
            switch t.text {
            case "true", "True": return JinjaExpr(.literal(.bool(true)), pos: t.pos)
            case "false", "False": return JinjaExpr(.literal(.bool(false)), pos: t.pos)
            case "none", "None": return JinjaExpr(.literal(.none), pos: t.pos)
            default: return JinjaExpr(.name(t.text), pos: t.pos)
            }
        case .string:
            var s = advance().text
            while current.kind == .string { s += advance().text }
            return JinjaExpr(.literal(.string(s)), pos: t.pos)
        case .integer:
            _ = advance()
            return JinjaExpr(.literal(.int(t.intValue)), pos: t.pos)
        case .float:
            _ = advance()
            return JinjaExpr(.literal(.double(t.floatValue)), pos: t.pos)
        case .op where t.text == "(":
            _ = advance()
            let e = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return e
        case .op where t.text == "[":
            return try parseList()
        case .op where t.text == "{":
            return try parseDict()
        default:
            throw fail("unexpected '\(t.describe)'")
        }
    }

    private mutating func parseList() throws -> JinjaExpr {
        let pos = advance().pos
        var items: [JinjaExpr] = []
        while !isOp("]") {
            if !items.isEmpty { try expectOp(",") }
            if isOp("]") { break }
            items.append(try checked(parseExpression()))
        }
        try expectOp("]")
        return try checked(JinjaExpr(.list(items), pos: pos, children: items))
    }

    private mutating func parseDict() throws -> JinjaExpr {
        let pos = advance().pos
        var items: [(JinjaExpr, JinjaExpr)] = []
        while !isOp("}") {
            if !items.isEmpty { try expectOp(",") }
            if isOp("}") { break }
            let key = try checked(parseExpression())
            try expectOp(":")
            items.append((key, try checked(parseExpression())))
        }
        try expectOp("}")
        return try checked(JinjaExpr(.dict(items), pos: pos, children: items.map(\.0) + items.map(\.1)))
    }

    private mutating func parsePostfix(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if isOp(".") {
                let dot = advance()
                let t = current
                if t.kind == .name {
                    _ = advance()
                    node = JinjaExpr(.getattr(node, t.text), pos: dot.pos, children: [node])
                } else if t.kind == .integer {
                    _ = advance()
                    let index = JinjaExpr(.literal(.int(t.intValue)), pos: t.pos)
                    node = JinjaExpr(.getitem(node, index), pos: dot.pos, children: [node])
                } else {
                    throw fail("expected name or number")
                }
            } else if isOp("[") {
                let bracket = advance()
                var args: [JinjaExpr] = []
                while !isOp("]") {
                    if !args.isEmpty { try expectOp(",") }
                    args.append(try parseSubscribed())
                }
                try expectOp("]")
                let arg = args.count == 1 ? args[0] : JinjaExpr(.tuple(args), pos: bracket.pos, children: args)
                node = JinjaExpr(.getitem(node, arg), pos: bracket.pos, children: [node, arg])
            } else if isOp("(") {
                let (args, kwargs) = try parseCallArguments()
                node = JinjaExpr(.call(node, args, kwargs), pos: node.pos, children: [node] + args + kwargs.map(\.1))
            } else {
                return try checked(node)
            }
            node = try checked(node)
        }
    }

    private mutating func parseSubscribed() throws -> JinjaExpr {
        let pos = current.pos
        var parts: [JinjaExpr?] = []
        if isOp(":") {
            _ = advance()
            parts.append(nil)
        } else {
            let e = try checked(parseExpression())
            guard isOp(":") else { return e }
            _ = advance()
            parts.append(e)
        }
        if isOp(":") {
            parts.append(nil)
        } else if !isOp("]") && !isOp(",") {
            parts.append(try checked(parseExpression()))
        } else {
            parts.append(nil)
        }
        if skipOp(":") {
            if !isOp("]") && !isOp(",") { parts.append(try checked(parseExpression())) } else { parts.append(nil) }
        } else {
            parts.append(nil)
        }
        return JinjaExpr(.slice(parts[0], parts[1], parts[2]), pos: pos, children: parts)
    }

    private mutating func parseCallArguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        try expectOp("(")
        var args: [JinjaExpr] = []
        var kwargs: [(String, JinjaExpr)] = []
        var first = true
        while !isOp(")") {
            if !first { try expectOp(",") }
            first = false
            if isOp(")") { break }
            if isOp("*") || isOp("**") { throw fail("*args and **kwargs in calls are not supported by Tiller's chat-template interpreter") }
            if current.kind == .name && peek().kind == .op && peek().text == "=" {
                let key = advance().text
                _ = advance()
                kwargs.append((key, try checked(parseExpression())))
            } else {
                if !kwargs.isEmpty { throw fail("invalid syntax for function call expression") }
                args.append(try checked(parseExpression()))
            }
        }
        try expectOp(")")
        return (args, kwargs)
    }

    private mutating func dottedName(_ start: String) throws -> String {
        var name = start
        while isOp(".") {
            _ = advance()
            name += "." + (try expectName().text)
        }
        return name
    }

    private func checkFilter(_ name: String, _ token: JinjaToken) throws {
        guard JinjaBuiltins.filterNames.contains(name) else { throw fail("No filter named '\(name)'.", token) }
    }

    private mutating func parseFilterExpression(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if isOp("|") {
                _ = advance()
                let nameToken = try expectName()
                let name = try dottedName(nameToken.text)
                try checkFilter(name, nameToken)
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                if isOp("(") { (args, kwargs) = try parseCallArguments() }
                node = JinjaExpr(.filter(node, name, args, kwargs), pos: nameToken.pos, children: [node] + args + kwargs.map(\.1))
            } else if isName("is") {
                _ = advance()
                let negated = skipName("not")
                let nameToken = try expectName()
                let name = try dottedName(nameToken.text)
                guard JinjaBuiltins.testNames.contains(name) else { throw fail("No test named '\(name)'.", nameToken) }
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                if isOp("(") {
                    (args, kwargs) = try parseCallArguments()
                } else if startsTestArgument() {
                    if isName("is") { throw fail("You cannot chain multiple tests with is") }
                    let arg = try parsePostfix(try parsePrimary())
                    args = [arg]
                }
                node = JinjaExpr(.test(node, name, args, kwargs, negated: negated), pos: nameToken.pos, children: [node] + args + kwargs.map(\.1))
            } else if isOp("(") {
                let (args, kwargs) = try parseCallArguments()
                node = JinjaExpr(.call(node, args, kwargs), pos: node.pos, children: [node] + args + kwargs.map(\.1))
            } else {
                return node
            }
            node = try checked(node)
        }
    }

    private func startsTestArgument() -> Bool {
        switch current.kind {
        case .name: return !["else", "or", "and"].contains(current.text)
        case .string, .integer, .float: return true
        case .op: return current.text == "(" || current.text == "[" || current.text == "{"
        default: return false
        }
    }
}
