import Testing
import TillerLab
import TillerEvaluation

/// The claims table is read off the numbers: hand-made rows where the expected verdicts are known.
@Suite struct LabClaimsTests {
    @Test func verdictsFollowTheNumbers() {
        let persona = LabClaims.TargetScores(kind: .persona, target: "cheerful",
                                             traitAtC80: ["a-psr-mse": 90, "s-psr-mse": 90, "s-const-mse": 40, "diffmean": 55],
                                             headline: [:])
        // A tie of S-PSR and S-Const breaks the strict claim only.
        let tied = LabClaims.TargetScores(kind: .persona, target: "gloomy",
                                          traitAtC80: ["a-psr-mse": 10, "s-psr-mse": 30, "s-const-mse": 30, "diffmean": 30],
                                          headline: [:])
        let format = LabClaims.TargetScores(kind: .format, target: "capitals", traitAtC80: [:],
                                            headline: ["prompt": 0.67, "prompt+a-psr-mse": 0.7, "prompt+s-psr-mse": 0.5])
        // Relative RMSE: lower holds, on any kind.
        let fitted = LabClaims.TargetScores(kind: .concept, target: "pottery", traitAtC80: [:], headline: [:],
                                            relativeRMSE: ["a-psr-mse": 0.5, "s-const-mse": 0.9, "a-const-mse": 0.4])
        let verdicts = LabClaims.verdicts([persona, tied, format, fitted])
        func holds(_ left: String, _ right: String, _ target: String) -> Bool? {
            verdicts.first { $0.claim.left == left && $0.claim.right == right && $0.target == target }?.holds
        }
        #expect(holds("a-psr-mse", "s-psr-mse", "cheerful") == true)   // 90 >= 90
        #expect(holds("s-psr-mse", "s-const-mse", "cheerful") == true) // 90 > 40
        #expect(holds("s-const-mse", "diffmean", "cheerful") == false) // 40 < 55
        #expect(holds("a-psr-mse", "s-psr-mse", "gloomy") == false)    // 10 < 30
        #expect(holds("s-psr-mse", "s-const-mse", "gloomy") == false)  // 30 > 30 is false
        #expect(holds("s-const-mse", "diffmean", "gloomy") == true)    // 30 >= 30
        #expect(holds("prompt+a-psr-mse", "prompt", "capitals") == true)
        #expect(holds("prompt+s-psr-mse", "prompt", "capitals") == false)
        // S-PSR(LL) stacked was not run, and persona claims are not checked on a format target.
        #expect(holds("prompt+s-psr-ll", "prompt", "capitals") == nil)
        #expect(!verdicts.contains { $0.target == "capitals" && $0.claim.kind == .persona })
        #expect(holds("a-psr-mse", "s-const-mse", "pottery") == true)  // 0.5 < 0.9
        #expect(holds("a-psr-mse", "a-const-mse", "pottery") == false) // 0.5 > 0.4
        #expect(verdicts.count == 10)
        // Each verdict carries the two numbers it compared.
        let v = verdicts.first { $0.claim.left == "s-const-mse" && $0.target == "cheerful" }
        #expect(v?.left == 40 && v?.right == 55)

        let table = LabClaims.markdown(verdicts)
        #expect(table.contains("| S-Const(MSE) >= DiffMean (TA@C80) | persona cheerful | 40 | 55 | no |"), "\(table)")
        #expect(table.contains("| prompt + A-PSR(MSE) >= prompt (pass x coherence) | format capitals | 0.70 | 0.67 | yes |"), "\(table)")
        #expect(LabClaims.markdown([]).contains("No claim"))
    }
}
