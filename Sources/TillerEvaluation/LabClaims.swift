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
    }

    public struct Claim: Sendable {
        public let kind: LabKind
        public let left: String, right: String
        /// left > right rather than left >= right.
        public let strict: Bool
        public let score: Score

        public var text: String {
            "\(LabComparison.label(left)) \(strict ? ">" : ">=") \(LabComparison.label(right)) "
                + (score == .traitAtC80 ? "(TA@C80)" : "(pass x coherence)")
        }
    }

    /// The claims checked: at matched coherence A-PSR >= S-PSR > S-Const >= DiffMean on persona;
    /// PSR stacked on the prompt >= the prompt on format. (Relative RMSE, A-PSR below the constant
    /// methods, needs `tiller analyze --steer` replays of every layer and is not checked here.)
    public static let claims: [Claim] = [
        Claim(kind: .persona, left: "a-psr-mse", right: "s-psr-mse", strict: false, score: .traitAtC80),
        Claim(kind: .persona, left: "s-psr-mse", right: "s-const-mse", strict: true, score: .traitAtC80),
        Claim(kind: .persona, left: "s-const-mse", right: "diffmean", strict: false, score: .traitAtC80),
    ] + ["s-psr-mse", "a-psr-mse", "s-psr-ll"].map {
        Claim(kind: .format, left: LabComparison.stackedName($0), right: "prompt", strict: false, score: .headline)
    }

    /// One target's numbers: per row (method name) its TA@C80 (persona) and headline score.
    public struct TargetScores: Sendable {
        public let kind: LabKind
        public let target: String
        public let traitAtC80: [String: Double]
        public let headline: [String: Double]

        public init(kind: LabKind, target: String, traitAtC80: [String: Double], headline: [String: Double]) {
            self.kind = kind
            self.target = target
            self.traitAtC80 = traitAtC80
            self.headline = headline
        }
    }

    public struct Verdict: Sendable {
        public let claim: Claim
        public let target: String
        public let left: Double, right: Double
        public let holds: Bool
    }

    /// Every claim on every target of its kind where both rows were measured.
    public static func verdicts(_ targets: [TargetScores], claims: [Claim] = LabClaims.claims) -> [Verdict] {
        claims.flatMap { claim in
            targets.filter { $0.kind == claim.kind }.compactMap { target -> Verdict? in
                let scores = claim.score == .traitAtC80 ? target.traitAtC80 : target.headline
                guard let left = scores[claim.left], let right = scores[claim.right] else { return nil }
                return Verdict(claim: claim, target: target.target, left: left, right: right,
                               holds: claim.strict ? left > right : left >= right)
            }
        }
    }

    /// The verdicts as a markdown table (a row per claim and target).
    public static func markdown(_ verdicts: [Verdict]) -> String {
        guard !verdicts.isEmpty else { return "No claim could be checked: the rows it compares were not run.\n" }
        var lines = ["| claim | target | left | right | holds |", "|---|---|---:|---:|---|"]
        for v in verdicts {
            let format = v.claim.score == .traitAtC80 ? "%.0f" : "%.2f"
            lines.append("| \(v.claim.text) | \(v.claim.kind.rawValue) \(v.target) | \(String(format: format, v.left)) | "
                         + "\(String(format: format, v.right)) | \(v.holds ? "yes" : "no") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
