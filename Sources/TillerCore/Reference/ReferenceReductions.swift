extension ReferenceBackend {
    public func argmax(_ x: Tensor, out: Tensor) throws {
        let (rows, c) = try OpShapes.rowReduce("argmax", x, out: out, outDType: .i32)
        let xs = try read("argmax", x)
        var result: [Int] = []
        for r in 0..<rows {
            var best = 0
            for i in 1..<max(c, 1) where xs[r * c + i] > xs[r * c + best] { best = i }
            result.append(best)
        }
        try writeInts("argmax", result, to: out)
    }

    public func topK(_ x: Tensor, k: Int, values: Tensor, indices: Tensor) throws {
        let (rows, c) = try OpShapes.topK(x, k: k, values: values, indices: indices)
        let xs = try read("topK", x)
        var topValues: [Double] = [], topIndices: [Int] = []
        for r in 0..<rows {
            // A stable sort by value, descending, keeps lower indices first among equals.
            let order = (0..<c).sorted { xs[r * c + $0] > xs[r * c + $1] || (xs[r * c + $0] == xs[r * c + $1] && $0 < $1) }
            for i in order.prefix(k) {
                topValues.append(xs[r * c + i])
                topIndices.append(i)
            }
        }
        try write("topK", topValues, to: values)
        try writeInts("topK", topIndices, to: indices)
    }

    public func rowDot(_ a: Tensor, _ b: Tensor, out: Tensor) throws {
        let (rows, c, broadcast) = try OpShapes.rowDot(a, b, out: out)
        let xs = try read("rowDot", a), ys = try read("rowDot", b)
        let result = (0..<rows).map { r in
            (0..<c).reduce(0.0) { $0 + xs[r * c + $1] * ys[(broadcast ? 0 : r * c) + $1] }
        }
        try write("rowDot", result, to: out)
    }

    public func rowNorm(_ x: Tensor, out: Tensor) throws {
        let (rows, c) = try OpShapes.rowReduce("rowNorm", x, out: out)
        let xs = try read("rowNorm", x)
        let result = (0..<rows).map { r in (0..<c).reduce(0.0) { $0 + xs[r * c + $1] * xs[r * c + $1] }.squareRoot() }
        try write("rowNorm", result, to: out)
    }

    public func meanRows(_ x: Tensor, indices: Tensor, out: Tensor) throws {
        let (m, d, n) = try OpShapes.meanRows(x, indices: indices, out: out)
        _ = try checkedIndices("meanRows", "indices", indices, 0..<Int32(n))
        let xs = try read("meanRows", x), index = try readInts("meanRows", indices)
        var sum = [Double](repeating: 0, count: d)
        for (r, source) in index.enumerated() {
            for i in 0..<d { sum[i] += xs[source * d + i] }
        }
        try write("meanRows", sum.map { $0 / Double(m) }, to: out)
    }
}
