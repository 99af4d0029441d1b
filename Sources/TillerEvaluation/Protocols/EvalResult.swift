import Foundation
import TillerCore
import TillerLab

/// One results line: the item, the steering, the prompt and response, and every score with the
/// judge's answers. Written as JSON Lines (keys sorted) and read back to resume a run and to
/// build the summary and the report.
public struct EvalResult {
    public var proto: EvalProtocol
    public var model: String
    public var id: String
    public var group: String
    /// `EvalArm.key`: what a resumed run matches lines by.
    public var steerKey: String
    public var steer: [String: Any]
    public var messages: [LabMessage]
    public var response: String
    public var stopReason: String
    public var metrics: [String: Double?]
    public var coherenceSource: String
    /// The rest of the line (checks, judge answers, NLL), kept as written.
    public var extra: [String: Any]

    public var alpha: Double? { (steer["alpha"] as? NSNumber)?.doubleValue }
    /// The answer's token ids (for the report's lambda colouring).
    public var responseIDs: [Int32] { (extra["response_ids"] as? [Any] ?? []).compactMap { ($0 as? NSNumber).map { Int32(truncating: $0) } } }
    public var mode: String { steer["mode"] as? String ?? "?" }

    public init(proto: EvalProtocol, model: String, request: EvalRequest, answer: EvalAnswer, scores: EvalScores, maxNewTokens: Int) {
        self.proto = proto
        self.model = model
        id = request.item.id
        group = request.item.target.group
        steerKey = request.arm.key
        steer = request.arm.json
        messages = answer.messages
        response = answer.result.completion
        stopReason = answer.result.stopReason.rawValue
        metrics = scores.metrics
        coherenceSource = scores.coherenceSource.rawValue
        var extra: [String: Any] = ["new_tokens": answer.result.ids.count, "response_ids": answer.result.ids.map(Int.init),
                                     "max_new_tokens": maxNewTokens]
        if let nll = scores.meanNLL, nll.isFinite { extra["mean_nll"] = nll }
        if !scores.judgments.isEmpty { extra["judge"] = scores.judgments.map(\.json) }
        if !scores.checks.isEmpty {
            let checks = scores.checks.map { check -> [String: Any] in
                ["instruction_id": check.instruction.id,
                 "kwargs": check.instruction.kwargs.mapValues(\.jsonObject),
                 "pass": check.strict.pass.map { $0 as Any } ?? NSNull(),
                 "pass_loose": check.loose.pass.map { $0 as Any } ?? NSNull(),
                 "unavailable": { if case .unavailable(let why) = check.strict { return why as Any } else { return NSNull() } }()]
            }
            extra["checks"] = checks
            // The single instruction of a format item, at the top as IFEval's results have it.
            if checks.count == 1 {
                extra["instruction_id"] = checks[0]["instruction_id"]
                extra["kwargs"] = checks[0]["kwargs"]
            }
        }
        self.extra = extra
    }

    /// The line's JSON object.
    public var json: [String: Any] {
        var object = extra
        object["protocol"] = proto.rawValue
        object["model"] = model
        object["id"] = id
        object["group"] = group
        object["steer_key"] = steerKey
        object["steer"] = steer
        object["messages"] = messages.map { ["role": $0.role, "content": $0.content] }
        object["response"] = response
        object["stop_reason"] = stopReason
        object["scores"] = metrics.mapValues { $0.map { $0 as Any } ?? NSNull() }
        object["coherence_source"] = coherenceSource
        if proto == .ifevalFormat { object["pass"] = (metrics["pass"] ?? nil).map { ($0 == 1) as Any } ?? NSNull() }
        return object
    }

    public func line() throws -> String {
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// A line read back; nil when it is not one of ours (the caller says where).
    public init?(json object: [String: Any]) {
        guard let protoName = object["protocol"] as? String, let proto = EvalProtocol(rawValue: protoName),
              let model = object["model"] as? String, let id = object["id"] as? String,
              let group = object["group"] as? String, let steerKey = object["steer_key"] as? String,
              let steer = object["steer"] as? [String: Any], let response = object["response"] as? String,
              let scores = object["scores"] as? [String: Any] else { return nil }
        self.proto = proto
        self.model = model
        self.id = id
        self.group = group
        self.steerKey = steerKey
        self.steer = steer
        self.response = response
        messages = (object["messages"] as? [[String: String]] ?? []).compactMap {
            guard let role = $0["role"], let content = $0["content"] else { return nil }
            return LabMessage(role: role, content: content)
        }
        stopReason = object["stop_reason"] as? String ?? "?"
        metrics = scores.mapValues { ($0 as? NSNumber)?.doubleValue }
        coherenceSource = object["coherence_source"] as? String ?? "?"
        var extra = object
        for key in ["protocol", "model", "id", "group", "steer_key", "steer", "messages", "response", "stop_reason", "scores",
                    "coherence_source", "pass"] {
            extra[key] = nil
        }
        self.extra = extra
    }
}
