import Foundation
import TillerLab

/// Which of the PSR paper's claims hold on the lab, read off `tiller lab compare`'s numbers: each
/// claim compares two rows of one target on one score and holds or not; a claim whose rows were not
/// run is left out.
public enum LabClaims {
    public enum Score: Sendable {
        /// Persona: the trait score at coherence 80 (TA@C80).
        case traitAtC80
        /// The kind's headline score on the scored half (format: pass rate x coherence / 100).
        case headline
        /// The relative RMSE against Delta_PS at the compare layer (lower holds): any kind.
        case relativeRMSE
    }

    public struct Claim: Sendable {
        /// nil: every kind.
        public let kind: LabKind?
        public let left: String, right: String
        /// left > right rather than left >= right.
        public let strict: Bool
        public let score: Score

        public var text: String {
            switch score {
            case .traitAtC80: return "\(LabComparison.label(left)) \(strict ? ">" : ">=") \(LabComparison.label(right)) (TA@C80)"
            case .headline: return "\(LabComparison.label(left)) \(strict ? ">" : ">=") \(LabComparison.label(right)) (pass x coherence)"
            case .relativeRMSE: return "\(LabComparison.label(left)) \(strict ? "<" : "<=") \(LabComparison.label(right)) (relative RMSE)"
            }
        }

        /// Whether left compares to right as claimed.
        func holds(_ left: Double, _ right: Double) -> Bool {
            switch score {
            case .relativeRMSE: return strict ? left < right : left <= right
            case .traitAtC80, .headline: return strict ? left > right : left >= right
            }
        }
    }

    /// The claims checked: at matched coherence A-PSR >= S-PSR > S-Const >= DiffMean on persona;
    /// PSR stacked on the prompt >= the prompt on format; A-PSR's relative RMSE below the constant
    /// heads' (S-Const, A-Const: replays of the trained rows at the compare layer, every target).
    public static let claims: [Claim] = [
        Claim(kind: .persona, left: "a-psr-mse", right: "s-psr-mse", strict: false, score: .traitAtC80),
        Claim(kind: .persona, left: "s-psr-mse", right: "s-const-mse", strict: true, score: .traitAtC80),
        Claim(kind: .persona, left: "s-const-mse", right: "diffmean", strict: false, score: .traitAtC80),
    ] + ["s-psr-mse", "a-psr-mse", "s-psr-ll"].map {
        Claim(kind: .format, left: LabComparison.stackedName($0), right: "prompt", strict: false, score: .headline)
    } + ["s-const-mse", "a-const-mse"].map {
        Claim(kind: nil, left: "a-psr-mse", right: $0, strict: true, score: .relativeRMSE)
    }

    /// One target's numbers: per row (method name) its TA@C80 (persona) and headline score.
    public struct TargetScores: Sendable {
        public let kind: LabKind
        public let target: String
        public let traitAtC80: [String: Double]
        public let headline: [String: Double]
        public let relativeRMSE: [String: Double]

        public init(kind: LabKind, target: String, traitAtC80: [String: Double], headline: [String: Double],
                    relativeRMSE: [String: Double] = [:]) {
            self.relativeRMSE = relativeRMSE
            self.kind = kind
            self.target = target
            self.traitAtC80 = traitAtC80
            self.headline = headline
        }
    }

    public struct Verdict: Sendable {
        public let claim: Claim
        public let target: String
        public let kind: LabKind
        public let left: Double, right: Double
        public let holds: Bool
    }

    /// Every claim on every target of its kind where both rows were measured.
    public static func verdicts(_ targets: [TargetScores], claims: [Claim] = LabClaims.claims) -> [Verdict] {
        claims.flatMap { claim in
            targets.filter { claim.kind == nil || $0.kind == claim.kind }.compactMap { target -> Verdict? in
                let scores: [String: Double]
                switch claim.score {
                case .traitAtC80: scores = target.traitAtC80
                case .headline: scores = target.headline
                case .relativeRMSE: scores = target.relativeRMSE
                }
                guard let left = scores[claim.left], let right = scores[claim.right], left.isFinite, right.isFinite else { return nil }
                return Verdict(claim: claim, target: target.target, kind: target.kind, left: left, right: right,
                               holds: claim.holds(left, right))
            }
        }
    }

    /// The verdicts as a markdown table (a row per claim and target).
    public static func markdown(_ verdicts: [Verdict]) -> String {
        guard !verdicts.isEmpty else { return "No claim could be checked: the rows it compares were not run.\n" }
        var lines = ["| claim | target | left | right | holds |", "|---|---|---:|---:|---|"]
        for v in verdicts {
            let format = v.claim.score == .traitAtC80 ? "%.0f" : v.claim.score == .relativeRMSE ? "%.3f" : "%.2f"
            lines.append("| \(v.claim.text) | \(v.kind.rawValue) \(v.target) | \(String(format: format, v.left)) | "
                         + "\(String(format: format, v.right)) | \(v.holds ? "yes" : "no") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
