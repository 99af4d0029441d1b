import ArgumentParser
import TillerCore

/// The ranges of the numeric flags and the check every command's validate() runs on them, so a
/// bad number fails before any model is loaded with one line naming the flag, the value and the
/// range (`--batch-size: 0 is out of range (allowed 1...4096)`). ArgumentParser itself accepts
/// "nan" and "inf" for a Float or Double flag, and any Int: these checks are what stand between a
/// flag and the arithmetic.
enum NumericOptions {
    /// Max new tokens: any count; more than the context holds means "until the context is full"
    /// (the generator clamps it), so Int.max is a valid "no limit".
    static let tokenCount = 0...Int.max
    /// KV cache slots: a slot costs a whole context of cache, so thousands are already more memory
    /// than any machine has; the bound keeps slots x context x layers far from Int overflow.
    static let batchSize = 1...4096
    /// Tokens per sequence: 16M is past every released model's context and keeps the cache's
    /// byte count (batch x context x layers x kv width) within Int.
    static let contextLimit = 1...(1 << 24)
    /// Counts that only cut a list short (top-k, examples shown, --limit): any size does no harm.
    static let anyCount = 0...Int.max
    /// Adam steps: each is a full pass over the capture; a billion is days of work, not a typo we
    /// should start on.
    static let fitSteps = 0...1_000_000_000
    /// Adam's step size (on standardised units): above 1e3 every fit diverges to inf.
    static let learningRate = 1e-12...1e3
    /// A layer index before the model or capture is known (the command checks it against those
    /// later); the bound only rules out nonsense such as negative layers.
    static let layerIndex = 0...(1 << 20)

    /// Throws ArgumentParser's ValidationError (the one-line "Error: ..." with the usage line)
    /// with NumericRange's message.
    static func check<T: BinaryInteger>(_ flag: String, _ value: T, _ range: ClosedRange<T>) throws {
        do { try NumericRange.check(flag, value, in: range) } catch { throw ValidationError("\(error)") }
    }

    static func check<T: BinaryFloatingPoint>(_ flag: String, _ value: T, _ range: ClosedRange<T>) throws {
        do { try NumericRange.check(flag, value, in: range) } catch { throw ValidationError("\(error)") }
    }

    /// A temperature: finite and >= 0 (0 decodes greedily).
    static func checkTemperature(_ flag: String, _ value: Float) throws {
        try check(flag, value, 0...Float.greatestFiniteMagnitude)
    }

    /// A top-p: in (0, 1] (0 would keep no token).
    static func checkTopP(_ flag: String, _ value: Float) throws {
        do { try NumericRange.check(flag, value, above: 0, atMost: 1) } catch { throw ValidationError("\(error)") }
    }
}
