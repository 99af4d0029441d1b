import TillerCore

// Reads the parts of a tokenizer.json into the pipeline stages, with one-line errors that name the
// file and what is wrong.

struct TokLoader {
    let path: String

    /// The error for this file. The detail is kept to one line (tokens quoted in it may hold newlines
    /// or other control characters; they are written as escapes) and to a readable length.
    func fail(_ detail: String) -> TillerError {
        var line = ""
        var count = 0
        for scalar in detail.unicodeScalars {
            count += 1
            if count > 300 { line += "..."; break }
            switch scalar.value {
            case 0x0A: line += "\\n"
            case 0x0D: line += "\\r"
            case 0x09: line += "\\t"
            case 0..<0x20, 0x7F, 0x85, 0x2028, 0x2029: line += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: line.unicodeScalars.append(scalar)
            }
        }
        return TillerError.io(path: path, detail: line)
    }

    private func type(of json: JSONValue, at where_: String) throws -> String {
        guard case .object = json else { throw fail("\(where_) is \(json.kindName), not an object") }
        guard let t = json["type"]?.stringValue else { throw fail("\(where_) has no \"type\"") }
        return t
    }

    private func bool(_ json: JSONValue, _ key: String, default value: Bool, at where_: String) throws -> Bool {
        guard let v = json[key], !v.isNull else { return value }
        guard let b = v.boolValue else { throw fail("\(where_).\(key) is \(v.kindName), not a boolean") }
        return b
    }

    private func string(_ json: JSONValue, _ key: String, at where_: String) throws -> String {
        guard let v = json[key] else { throw fail("\(where_) has no \"\(key)\"") }
        guard let s = v.stringValue else { throw fail("\(where_).\(key) is \(v.kindName), not a string") }
        return s
    }

    private func optionalString(_ json: JSONValue, _ key: String, at where_: String) throws -> String? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw fail("\(where_).\(key) is \(v.kindName), not a string") }
        return s
    }

    private func int(_ json: JSONValue, _ key: String, default value: Int, at where_: String) throws -> Int {
        guard let v = json[key], !v.isNull else { return value }
        guard let i = v.intValue else { throw fail("\(where_).\(key) is \(v.kindName), not an integer") }
        return i
    }

    private func array(_ json: JSONValue, _ key: String, at where_: String) throws -> [JSONValue] {
        guard let v = json[key] else { throw fail("\(where_) has no \"\(key)\"") }
        guard let a = v.arrayValue else { throw fail("\(where_).\(key) is \(v.kindName), not an array") }
        return a
    }

    private func scalar(_ json: JSONValue, _ key: String, at where_: String) throws -> Unicode.Scalar {
        let s = try string(json, key, at: where_)
        let scalars = Array(s.unicodeScalars)
        guard scalars.count == 1 else { throw fail("\(where_).\(key) must be a single character") }
        return scalars[0]
    }

    private func regex(_ pattern: String, at where_: String) throws -> TokRegex {
        do {
            return try TokRegex(pattern)
        } catch {
            let short = pattern.count > 60 ? String(pattern.prefix(60)) + "..." : pattern
            throw fail("\(where_): unsupported regex \"\(short)\" (\(String(describing: error).split(separator: "\n").first ?? ""))")
        }
    }

    /// {"String": "..."} or {"Regex": "..."}.
    private func pattern(_ json: JSONValue, at where_: String) throws -> TokPattern {
        guard let p = json["pattern"] else { throw fail("\(where_) has no \"pattern\"") }
        if let s = p["String"]?.stringValue {
            guard !s.isEmpty else { throw fail("\(where_).pattern is an empty string") }
            return .string(TokText.bytes(s))
        }
        if let r = p["Regex"]?.stringValue { return .regex(try regex(r, at: where_)) }
        if let s = p.stringValue, !s.isEmpty { return .string(TokText.bytes(s)) }
        throw fail("\(where_).pattern is neither {\"String\": ...} nor {\"Regex\": ...}")
    }

    // MARK: - Model

    func model(_ json: JSONValue?) throws -> TokBPE {
        guard let json, !json.isNull else { throw fail("no \"model\"") }
        guard case .object = json else { throw fail("model is \(json.kindName), not an object") }
        let type = json["type"]?.stringValue ?? (json["merges"] != nil ? "BPE" : "(none)")
        guard type == "BPE" else { throw fail("unsupported model type '\(type)' (only BPE is supported)") }

        guard let vocabJSON = json["vocab"], !vocabJSON.isNull else { throw fail("BPE model has no vocab") }
        guard let vocabMembers = vocabJSON.objectValue else {
            throw fail("model.vocab is \(vocabJSON.kindName), not an object")
        }
        var vocab: [[UInt8]: Int32] = [:]
        vocab.reserveCapacity(vocabMembers.count)
        var maxID = -1
        for member in vocabMembers {
            guard let id = member.value.intValue, id >= 0, id < 1 << 24 else {
                throw fail("model.vocab[\"\(member.key)\"] is not an id in 0..<16777216")
            }
            vocab[TokText.bytes(member.key)] = Int32(id)
            maxID = max(maxID, id)
        }
        var tokens = [[UInt8]?](repeating: nil, count: maxID + 1)
        for (bytes, id) in vocab { tokens[Int(id)] = bytes }

        let continuingPrefix = try optionalString(json, "continuing_subword_prefix", at: "model").map(TokText.bytes)
        let endSuffix = try optionalString(json, "end_of_word_suffix", at: "model").map(TokText.bytes)

        guard let mergesJSON = json["merges"], !mergesJSON.isNull else { throw fail("BPE model has no merges") }
        guard let mergeList = mergesJSON.arrayValue else {
            throw fail("model.merges is \(mergesJSON.kindName), not an array")
        }
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        let prefixLength = continuingPrefix?.count ?? 0
        for (rank, entry) in mergeList.enumerated() {
            let left: [UInt8], right: [UInt8]
            if let s = entry.stringValue {
                let parts = s.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank) \"\(s)\" is not two tokens separated by a space") }
                left = Array(parts[0])
                right = Array(parts[1])
            } else if let pair = entry.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                left = TokText.bytes(a)
                right = TokText.bytes(b)
            } else {
                throw fail("merge \(rank) is neither \"a b\" nor [\"a\", \"b\"]")
            }
            guard let a = vocab[left] else {
                throw fail("merge \(rank): token \"\(TokText.string(left))\" is not in the vocab")
            }
            guard let b = vocab[right] else {
                throw fail("merge \(rank): token \"\(TokText.string(right))\" is not in the vocab")
            }
            let mergedBytes = left + (right.count >= prefixLength ? Array(right[prefixLength...]) : right)
            guard let merged = vocab[mergedBytes] else {
                throw fail("merge \(rank): merged token \"\(TokText.string(mergedBytes))\" is not in the vocab")
            }
            merges[TokBPE.pairKey(a, b)] = (Int32(rank), merged)
        }

        var unkID: Int32? = nil
        if let unk = try optionalString(json, "unk_token", at: "model") { unkID = vocab[TokText.bytes(unk)] }
        return TokBPE(vocab: vocab, tokens: tokens, merges: merges, unkID: unkID,
                      byteFallback: try bool(json, "byte_fallback", default: false, at: "model"),
                      fuseUnk: try bool(json, "fuse_unk", default: false, at: "model"),
                      ignoreMerges: try bool(json, "ignore_merges", default: false, at: "model"),
                      continuingSubwordPrefix: continuingPrefix, endOfWordSuffix: endSuffix)
    }

    // MARK: - Added tokens

    func addedTokens(_ json: JSONValue?) throws -> [TokAddedToken] {
        guard let json, !json.isNull else { return [] }
        guard let list = json.arrayValue else { throw fail("added_tokens is \(json.kindName), not an array") }
        var out: [TokAddedToken] = []
        for (i, item) in list.enumerated() {
            let at = "added_tokens[\(i)]"
            guard case .object = item else { throw fail("\(at) is \(item.kindName), not an object") }
            guard let id = item["id"]?.intValue, id >= 0, id < 1 << 24 else { throw fail("\(at) has no valid \"id\"") }
            let content = try string(item, "content", at: at)
            guard !content.isEmpty else { continue }
            let special = try bool(item, "special", default: false, at: at)
            out.append(TokAddedToken(
                id: Int32(id), content: TokText.bytes(content),
                singleWord: try bool(item, "single_word", default: false, at: at),
                lstrip: try bool(item, "lstrip", default: false, at: at),
                rstrip: try bool(item, "rstrip", default: false, at: at),
                normalized: try bool(item, "normalized", default: !special, at: at),
                special: special))
        }
        return out
    }

    // MARK: - Normalizer

    func normalizer(_ json: JSONValue?, at where_: String) throws -> TokNormalizer? {
        guard let json, !json.isNull else { return nil }
        let t = try type(of: json, at: where_)
        switch t {
        case "Sequence":
            let steps = try array(json, "normalizers", at: where_)
            return .sequence(try steps.enumerated().compactMap { try normalizer($1, at: "\(where_).normalizers[\($0)]") })
        case "Prepend":
            return .prepend(TokText.bytes(try string(json, "prepend", at: where_)))
        case "Replace":
            return .replace(pattern: try pattern(json, at: where_), content: TokText.bytes(try string(json, "content", at: where_)))
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Strip":
            return .strip(left: try bool(json, "strip_left", default: true, at: where_),
                          right: try bool(json, "strip_right", default: true, at: where_))
        case "StripAccents": return .stripAccents
        case "ByteLevel": return .byteLevel
        default:
            throw fail("unsupported normalizer type '\(t)' at \(where_)")
        }
    }

    // MARK: - Pre-tokenizer

    func preTokenizer(_ json: JSONValue?, at where_: String) throws -> TokPreTokenizer? {
        guard let json, !json.isNull else { return nil }
        let t = try type(of: json, at: where_)
        switch t {
        case "Sequence":
            let steps = try array(json, "pretokenizers", at: where_)
            return .sequence(try steps.enumerated().compactMap { try preTokenizer($1, at: "\(where_).pretokenizers[\($0)]") })
        case "Split":
            let behaviorName = try string(json, "behavior", at: where_)
            guard let behavior = TokSplitBehavior(json: behaviorName) else {
                throw fail("\(where_): unknown split behavior '\(behaviorName)'")
            }
            return .split(pattern: try pattern(json, at: where_), behavior: behavior,
                          invert: try bool(json, "invert", default: false, at: where_))
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try bool(json, "add_prefix_space", default: true, at: where_),
                              useRegex: try bool(json, "use_regex", default: true, at: where_))
        case "Metaspace":
            return .metaspace(replacement: try scalar(json, "replacement", at: where_),
                              prependScheme: try prependScheme(json, at: where_),
                              split: try bool(json, "split", default: true, at: where_))
        case "Digits":
            return .digits(individual: try bool(json, "individual_digits", default: false, at: where_))
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Punctuation":
            let name = try optionalString(json, "behavior", at: where_) ?? "Isolated"
            guard let behavior = TokSplitBehavior(json: name) else {
                throw fail("\(where_): unknown split behavior '\(name)'")
            }
            return .punctuation(behavior)
        default:
            throw fail("unsupported pre_tokenizer type '\(t)' at \(where_)")
        }
    }

    private func prependScheme(_ json: JSONValue, at where_: String) throws -> TokPrependScheme {
        if let scheme = try optionalString(json, "prepend_scheme", at: where_) {
            switch scheme {
            case "always": return .always
            case "first": return .first
            case "never": return .never
            default: throw fail("\(where_): unknown prepend_scheme '\(scheme)'")
            }
        }
        // Files written before prepend_scheme existed carry add_prefix_space.
        return try bool(json, "add_prefix_space", default: true, at: where_) ? .always : .never
    }

    // MARK: - Decoder

    func decoder(_ json: JSONValue?, at where_: String) throws -> TokDecoder? {
        guard let json, !json.isNull else { return nil }
        let t = try type(of: json, at: where_)
        switch t {
        case "Sequence":
            let steps = try array(json, "decoders", at: where_)
            return .sequence(try steps.enumerated().compactMap { try decoder($1, at: "\(where_).decoders[\($0)]") })
        case "ByteLevel":
            return .byteLevel
        case "Metaspace":
            return .metaspace(replacement: try scalar(json, "replacement", at: where_),
                              dropFirstReplacement: try prependScheme(json, at: where_) != .never)
        case "Replace":
            return .replace(pattern: try pattern(json, at: where_), content: TokText.bytes(try string(json, "content", at: where_)))
        case "ByteFallback":
            return .byteFallback
        case "Fuse":
            return .fuse
        case "Strip":
            let start = try int(json, "start", default: 0, at: where_)
            let stop = try int(json, "stop", default: 0, at: where_)
            guard start >= 0, stop >= 0 else { throw fail("\(where_): negative strip counts") }
            return .strip(content: try scalar(json, "content", at: where_), start: start, stop: stop)
        case "BPEDecoder":
            return .bpeSuffix(TokText.bytes(try optionalString(json, "suffix", at: where_) ?? "</w>"))
        default:
            throw fail("unsupported decoder type '\(t)' at \(where_)")
        }
    }

    // MARK: - Post-processor

    func postProcessor(_ json: JSONValue?, at where_: String, ids: [[UInt8]: Int32]) throws -> TokPostProcessor? {
        guard let json, !json.isNull else { return nil }
        let t = try type(of: json, at: where_)
        switch t {
        case "Sequence":
            let steps = try array(json, "processors", at: where_)
            return .sequence(try steps.enumerated().compactMap {
                try postProcessor($1, at: "\(where_).processors[\($0)]", ids: ids)
            })
        case "ByteLevel":
            return .passThrough
        case "TemplateProcessing":
            let single = try array(json, "single", at: where_)
            let specials = json["special_tokens"]
            var before: [Int32] = []
            var after: [Int32] = []
            var sawSequence = false
            for (i, item) in single.enumerated() {
                if item["Sequence"] != nil {
                    sawSequence = true
                } else if let special = item["SpecialToken"] {
                    let name = try string(special, "id", at: "\(where_).single[\(i)].SpecialToken")
                    var tokenIDs: [Int32] = []
                    if let entry = specials?[name], let list = entry["ids"]?.arrayValue {
                        for v in list {
                            guard let id = v.intValue, id >= 0, id < 1 << 24 else {
                                throw fail("\(where_).special_tokens[\"\(name)\"] has an invalid id")
                            }
                            tokenIDs.append(Int32(id))
                        }
                    } else if let id = ids[TokText.bytes(name)] {
                        tokenIDs = [id]
                    } else {
                        throw fail("\(where_): special token '\(name)' is not defined")
                    }
                    if sawSequence { after += tokenIDs } else { before += tokenIDs }
                } else {
                    throw fail("\(where_).single[\(i)] is neither a Sequence nor a SpecialToken")
                }
            }
            return .template(before: before, after: after)
        case "BertProcessing", "RobertaProcessing":
            func pair(_ key: String) throws -> Int32 {
                guard let p = json[key]?.arrayValue, p.count == 2, let id = p[1].intValue, id >= 0, id < 1 << 24 else {
                    throw fail("\(where_).\(key) is not a [token, id] pair")
                }
                return Int32(id)
            }
            return .clsSep(cls: try pair("cls"), sep: try pair("sep"))
        default:
            throw fail("unsupported post_processor type '\(t)' at \(where_)")
        }
    }
}
