/// Range checks for the numbers users give (command-line flags, JSON fields), in one place so
/// every message reads the same: `--batch-size: 0 is out of range (allowed 1...4096)`.
///
/// Every number a user gives is checked where it is parsed, before any arithmetic: a value that
/// passes can be added to, multiplied by or used as a count of the other checked values without
/// overflowing, and a float that passes is finite (NaN passes no comparison, so a NaN left
/// unchecked would slip through `x > 0` style guards the wrong way round).
public enum NumericRange {
    /// Throws `TillerError.outOfRange` naming `name` unless `value` is in `range`.
    @discardableResult
    public static func check<T: BinaryInteger>(_ name: String, _ value: T, in range: ClosedRange<T>) throws -> T {
        guard range.contains(value) else {
            throw TillerError.outOfRange(name: name, value: "\(value)", allowed: describe(range))
        }
        return value
    }

    /// Throws unless `value` is finite and in `range`.
    @discardableResult
    public static func check<T: BinaryFloatingPoint>(_ name: String, _ value: T, in range: ClosedRange<T>) throws -> T {
        guard value.isFinite, range.contains(value) else {
            throw TillerError.outOfRange(name: name, value: "\(value)", allowed: describe(range))
        }
        return value
    }

    /// Throws unless `value` is finite and in (lower, upper]: for a bound that is itself excluded
    /// (a top-p of 0 keeps no token).
    @discardableResult
    public static func check<T: BinaryFloatingPoint>(_ name: String, _ value: T, above lower: T, atMost upper: T) throws -> T {
        guard value.isFinite, value > lower, value <= upper else {
            throw TillerError.outOfRange(name: name, value: "\(value)", allowed: "(\(lower), \(upper)]")
        }
        return value
    }

    /// A steering strength a user types (a --steer FILE:ALPHA, a prompt line's "alpha"): fitted
    /// files steer at 1 and useful strengths are within tens, while a million times a unit
    /// direction already swamps any residual stream. (A steering file's own alpha is any finite
    /// f32, stored exactly; a sweep checks that alpha x factor stays finite.)
    public static let steeringAlpha: ClosedRange<Float> = -1e6...1e6
    /// A sweep factor multiplying a steering file's alpha (--factors): positive, at most 1e6.
    public static let steeringFactor: ClosedRange<Double> = 1e-6...1e6

    /// `a + b` for counts, saturating at Int.max instead of trapping: a limit of "as many as
    /// possible" (a huge --max-new-tokens) stays a limit that is never reached.
    public static func saturatingSum(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? Int.max : Int.min) : sum
    }

    /// `lo...hi`, or `>= lo` / `<= hi` where a bound is the type's own limit (no one types 2^63 - 1).
    static func describe<T: BinaryInteger>(_ range: ClosedRange<T>) -> String {
        let unboundedAbove = range.upperBound == Int64.max || range.upperBound == UInt64.max || range.upperBound == Int32.max
        let unboundedBelow = range.lowerBound == Int64.min || range.lowerBound == Int32.min
        switch (unboundedBelow, unboundedAbove) {
        case (true, true): return "any integer"
        case (false, true): return ">= \(range.lowerBound)"
        case (true, false): return "<= \(range.upperBound)"
        case (false, false): return "\(range.lowerBound)...\(range.upperBound)"
        }
    }

    static func describe<T: BinaryFloatingPoint>(_ range: ClosedRange<T>) -> String {
        let unboundedAbove = range.upperBound == .greatestFiniteMagnitude
        let unboundedBelow = range.lowerBound == -.greatestFiniteMagnitude
        switch (unboundedBelow, unboundedAbove) {
        case (true, true): return "any finite number"
        case (false, true): return "finite, >= \(range.lowerBound)"
        case (true, false): return "finite, <= \(range.upperBound)"
        case (false, false): return "\(range.lowerBound)...\(range.upperBound)"
        }
    }
}
