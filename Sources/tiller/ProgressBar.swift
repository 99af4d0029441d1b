#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TillerModels

/// A progress bar on stderr: on a terminal one line redrawn in place at most ten times a second,
/// elsewhere (--progress into a file) one plain line a second.
final class ProgressBar {
    let enabled: Bool
    let inPlace: Bool
    private var lastDraw: Double = -1
    private var drawn = false

    init(enabled: Bool, inPlace: Bool = ProgressBar.stderrIsTerminal) {
        self.enabled = enabled
        self.inPlace = inPlace
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    func update(_ p: GenerationProgress, force: Bool = false) {
        let fraction = p.totalRequests > 0 ? Double(p.finishedRequests) / Double(p.totalRequests) : 1
        draw(fraction: fraction, "\(p.finishedRequests)/\(p.totalRequests) prompts, \(p.generatedTokens) tokens, "
             + String(format: "%.1f tok/s, %.1f s", p.tokensPerSecond, p.elapsed), elapsed: p.elapsed, force: force)
    }

    /// One bar of `fraction` done, followed by `text`.
    func draw(fraction: Double, _ text: String, elapsed: Double, force: Bool = false) {
        guard enabled, force || elapsed - lastDraw >= (inPlace ? 0.1 : 1) else { return }
        lastDraw = elapsed
        let width = 30
        let filled = max(0, min(width, Int(fraction * Double(width))))
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = "[\(bar)] " + text
        fputs(inPlace ? "\r\(line)\u{1B}[K" : line + "\n", stderr)
        fflush(stderr)
        drawn = true
    }

    /// Ends the line of a bar drawn with `draw`.
    func finish() {
        if enabled && drawn && inPlace { fputs("\n", stderr) }
        drawn = false
    }

    /// Ends the bar's line so what follows starts on a fresh one.
    func close(_ p: GenerationProgress) {
        guard enabled else { return }
        update(p, force: true)
        if drawn && inPlace { fputs("\n", stderr) }
    }
}
