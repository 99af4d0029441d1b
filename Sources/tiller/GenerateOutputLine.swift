import Foundation
import TillerModels
import TillerSteering

/// One line of `tiller generate`'s output: the result, and what produced it, so a line can be
/// matched to its input and reproduced without the input file: the input line's "id" (when it
/// has one), the steering actually applied (each file as the line or --steer named it, with the
/// alpha and location in force) and the seed its sampler used.
struct OutputLine: Encodable {
    var completion: String
    var ids: [Int32]
    var stop_reason: String
    var id: EchoedJSON?
    var seed: UInt64
    var steering: [AppliedSteering]

    /// One steering file as applied to a line; written in the form a prompt line's "steer" accepts.
    struct AppliedSteering: Encodable, Equatable {
        var file: String
        var alpha: Float
        var location: SteeringLocation

        enum CodingKeys: String, CodingKey { case file, alpha, location }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(file, forKey: .file)
            try c.encode(alpha, forKey: .alpha)
            switch location {
            case .mask(let prompt, let generated):
                try c.encode(EchoedJSON.object(["mask": .array(prompt.map { .int($0 ? 1 : 0) }), "generated": .bool(generated)]),
                             forKey: .location)
            default:
                try c.encode(location.name, forKey: .location)
            }
        }
    }

    /// Leaves "id" out when the input line has none.
    enum CodingKeys: String, CodingKey { case completion, ids, stop_reason, id, seed, steering }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(completion, forKey: .completion)
        try c.encode(ids, forKey: .ids)
        try c.encode(stop_reason, forKey: .stop_reason)
        try c.encodeIfPresent(id, forKey: .id)
        try c.encode(seed, forKey: .seed)
        try c.encode(steering, forKey: .steering)
    }

    init(completion: String, ids: [Int32], stop_reason: String, echo: Echo) {
        self.completion = completion
        self.ids = ids
        self.stop_reason = stop_reason
        id = echo.id
        seed = echo.seed
        steering = echo.steering
    }

    /// What an input line's output repeats of it, worked out before generation starts.
    struct Echo {
        var id: EchoedJSON?
        var seed: UInt64
        var steering: [AppliedSteering]

        /// `entries` are the line's steering entries (`GenerateSteering.entries`), in the order of
        /// `sequence.applications`; an application without its own alpha or location takes its file's.
        init(line: PromptFile.Line, entries: [SteerEntry], sequence: SequenceSteering, interventions: [Intervention], seed: UInt64) {
            id = line.id
            self.seed = seed
            steering = zip(entries, sequence.applications).map { entry, application in
                let file = interventions[application.intervention]
                return AppliedSteering(file: entry.name, alpha: application.alpha ?? file.alpha, location: application.location ?? file.location)
            }
        }
    }
}

/// A JSON value read with JSONSerialization, written back as it came (a line's "id" may be a
/// string, a number or anything else a user numbers lines with).
indirect enum EchoedJSON: Encodable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([EchoedJSON])
    case object([String: EchoedJSON])

    init(_ value: Any) {
        switch value {
        case let s as String: self = .string(s)
        case let n as NSNumber:
            // Booleans come back as NSNumbers too, of objCType "c".
            switch String(cString: n.objCType) {
            case "c": self = .bool(n.boolValue)
            case "d", "f": self = .double(n.doubleValue)
            default: self = .int(n.int64Value)
            }
        case let list as [Any]: self = .array(list.map(EchoedJSON.init))
        case let object as [String: Any]: self = .object(object.mapValues(EchoedJSON.init))
        default: self = .null
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .bool(let b): try c.encode(b)
        case .null: try c.encodeNil()
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
