/// IFEval's punctuation rule (instructions.py: CommaChecker).
enum PunctuationRules {
    /// No ASCII comma anywhere (IFEval's pattern is a plain ","; "，" and "、" do not count).
    static func hasNoComma(_ response: String) -> Bool { !response.contains(",") }
}
