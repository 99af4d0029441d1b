/// Turns ids into text one at a time, as they are generated. `push` returns the text that has become
/// final (possibly empty); `finish` returns what is left. The pieces concatenate to exactly
/// `decode(allIDs)`, and a piece never ends in half a UTF-8 character: while the text so far ends in
/// U+FFFD (an incomplete byte sequence), or in a run of byte-fallback tokens that the next token
/// could still invalidate, the text is held back.
///
/// It decodes a short window of recent ids on each push (the ids since the last text that was given
/// out, plus that text's ids as context), so its cost does not grow with the length of the stream.
public final class StreamingDecoder {
    let tokenizer: Tokenizer
    let skipSpecialTokens: Bool
    /// Recent ids: the context (already given out) followed by the pending ones.
    private var window: [Int32] = []
    /// How many ids at the front of `window` have been given out.
    private var contextCount = 0
    /// decode(window[0..<contextCount]) as UTF-8.
    private var contextText: [UInt8] = []

    init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Feeds one id; returns the text that became final (often empty while a character is incomplete).
    public func push(_ id: Int32) -> String {
        window.append(id)
        if tokenizer.holdsByteRuns, endsInByteRun() { return "" }
        let text = decodeWindow()
        if endsInReplacementCharacter(text) { return "" }
        return emit(text)
    }

    /// Returns whatever is still held back and resets the decoder for a new stream.
    public func finish() -> String {
        defer {
            window.removeAll()
            contextCount = 0
            contextText.removeAll()
        }
        if window.count == contextCount { return "" }
        let text = decodeWindow()
        return String(decoding: suffix(of: text), as: UTF8.self)
    }

    private func decodeWindow() -> [UInt8] {
        tokenizer.decodeBytes(tokenizer.tokenStrings(window, skipSpecialTokens: skipSpecialTokens))
    }

    /// The part of `text` after the context.
    private func suffix(of text: [UInt8]) -> ArraySlice<UInt8> {
        if text.starts(with: contextText) { return text[contextText.count...] }
        // Only a decoder whose output for earlier tokens depends on later ones gets here; give out
        // what lies past the length already given out rather than repeat text.
        return text[min(contextText.count, text.count)...]
    }

    private func emit(_ text: [UInt8]) -> String {
        let piece = String(decoding: suffix(of: text), as: UTF8.self)
        // The ids just given out become the context for the next ones, provided they decode to
        // something on their own: a decoder that strips a leading space (Llama 2's Strip) or drops the
        // first metaspace must find it in the context, not in the new text. Otherwise the whole window
        // stays as context.
        let fresh = Array(window[contextCount...])
        let freshText = fresh.isEmpty ? [] :
            tokenizer.decodeBytes(tokenizer.tokenStrings(fresh, skipSpecialTokens: skipSpecialTokens))
        if !freshText.isEmpty && !endsInReplacementCharacter(freshText) {
            window = fresh
            contextText = freshText
        } else {
            contextText = text
        }
        contextCount = window.count
        return piece
    }

    /// Whether the last id that survives skipping is a "<0xAB>" byte-fallback token.
    private func endsInByteRun() -> Bool {
        for id in window.reversed() {
            guard let token = tokenizer.tokenStrings([id], skipSpecialTokens: skipSpecialTokens).first else { continue }
            return TokDecoder.fallbackByte(token) != nil
        }
        return false
    }

    private func endsInReplacementCharacter(_ text: [UInt8]) -> Bool {
        text.count >= 3 && text[text.count - 3] == 0xEF && text[text.count - 2] == 0xBF && text[text.count - 1] == 0xBD
    }
}
