import Testing
@testable import TillerEvaluation
