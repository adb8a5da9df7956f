import Foundation

/// A vocabulary of word or character tokens with PyTorch-style reserved entries:
/// index 0 is `<pad>` (padding, never a real token) and index 1 is `<unk>` (anything unseen or
/// too rare). Real tokens follow in order of falling frequency, ties by first appearance, so a
/// vocabulary built twice from the same data is identical.
public struct TokenVocabulary: Sendable, Equatable {
    public static let pad = "<pad>"
    public static let unk = "<unk>"
    public static let padIndex: Int32 = 0
    public static let unkIndex: Int32 = 1

    /// Every token in index order, `<pad>` and `<unk>` first.
    public let tokens: [String]
    /// Each token's index, keyed by its exact scalars (`ExactString`: "é" and "e" + U+0301 are two tokens).
    private let index: [ExactString: Int32]

    public var count: Int { tokens.count }

    /// Builds the vocabulary from token streams.
    /// - Parameters:
    ///   - minFrequency: tokens seen fewer times are left out (they map to `<unk>`).
    ///   - maxSize: at most this many entries in all, `<pad>` and `<unk>` included (nil = no limit).
    public init<S: Sequence>(counting sequences: S, minFrequency: Int = 1, maxSize: Int? = nil) where S.Element == [String] {
        var counts: [ExactString: Int] = [:]
        var firstSeen: [ExactString: Int] = [:]
        var n = 0
        for seq in sequences {
            for t in seq {
                let key = ExactString(t)
                counts[key, default: 0] += 1
                if firstSeen[key] == nil { firstSeen[key] = n; n += 1 }
            }
        }
        let reserved: Set = [ExactString(Self.pad), ExactString(Self.unk)]
        var kept = counts.filter { $0.value >= max(1, minFrequency) && !reserved.contains($0.key) }.map { $0.key }
        kept.sort { a, b in
            let ca = counts[a] ?? 0, cb = counts[b] ?? 0
            return ca != cb ? ca > cb : (firstSeen[a] ?? 0) < (firstSeen[b] ?? 0)
        }
        if let maxSize { kept = Array(kept.prefix(max(0, maxSize - 2))) }
        self.init(uncheckedTokens: [Self.pad, Self.unk] + kept.map(\.string))
    }

    private init(uncheckedTokens: [String]) {
        tokens = uncheckedTokens
        var map: [ExactString: Int32] = [:]
        for (i, t) in uncheckedTokens.enumerated() { map[ExactString(t)] = Int32(i) }
        index = map
    }

    /// A vocabulary from its token list (as stored in a checkpoint): `<pad>`, `<unk>`, then
    /// distinct tokens. `source` labels errors.
    public init(tokens: [String], source: String) throws {
        guard tokens.count >= 2, ExactString(tokens[0]) == ExactString(Self.pad), ExactString(tokens[1]) == ExactString(Self.unk) else {
            throw RecurrentError("\(source): a vocabulary must start with \(Self.pad) and \(Self.unk)")
        }
        guard tokens.exactlyDistinct() else { throw RecurrentError("\(source): the vocabulary repeats a token") }
        self.init(uncheckedTokens: tokens)
    }

    /// The index of `token`, or `<unk>`'s.
    public func encode(_ token: String) -> Int32 { index[ExactString(token)] ?? Self.unkIndex }

    public func encode(_ tokens: [String]) -> [Int32] { tokens.map(encode) }

    /// Whether `token` has its own entry.
    public func contains(_ token: String) -> Bool { index[ExactString(token)] != nil }

    /// The token list as a JSON array (checkpoint metadata).
    public var json: String { jsonArray(tokens) }

    /// Parses `json` (an array of strings) back into a vocabulary.
    public init(json: String, source: String) throws {
        try self.init(tokens: try parseJSONStringArray(json, source: source), source: source)
    }
}

/// How sentences become tokens.
public enum Tokenization: String, CaseIterable, Sendable {
    /// Whitespace-separated words (the data files are already tokenised).
    case word
    /// Unicode scalars, spaces included.
    case char

    /// The tokens of `text`, optionally lower-cased (as Python's `str.lower()`). Words are split
    /// at spaces and tabs only (Python: `text.replace("\t", " ").split(" ")`, empty strings
    /// dropped); characters are taken after trimming outer spaces and tabs (`text.strip(" \t")`).
    public func tokens(_ text: String, lowercase: Bool) -> [String] {
        let t = lowercase ? text.pythonLowercased() : text
        switch self {
        case .word: return t.splitScalars { $0 == " " || $0 == "\t" }
        case .char: return t.strippingSpacesAndTabs().unicodeScalars.map { String($0) }
        }
    }
}

extension String {
    /// Without its outer spaces and tabs, as Python's `text.strip(" \t")` (other whitespace, such
    /// as a no-break space, stays).
    public func strippingSpacesAndTabs() -> String {
        let scalars = unicodeScalars
        let blank: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = scalars.firstIndex(where: { !blank($0) }), let last = scalars.lastIndex(where: { !blank($0) }) else { return "" }
        return String(scalars[first...last])
    }

    /// Lower case as Python's `str.lower()`: each scalar's full lowercase mapping, and capital
    /// sigma as final ς where Unicode's Final_Sigma context holds (after a cased letter and any
    /// case-ignorable ones, and not before a cased letter): "ΟΔΟΣ" → "οδος". Swift's
    /// `lowercased()` maps every Σ to σ.
    public func pythonLowercased() -> String {
        let scalars = Array(unicodeScalars)
        guard scalars.contains("\u{3A3}") else { return lowercased() }
        var out = String.UnicodeScalarView()
        for (i, s) in scalars.enumerated() {
            guard s == "\u{3A3}" else { out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars); continue }
            func cased(after range: some Sequence<Int>) -> Bool {
                for j in range {
                    if scalars[j].properties.isCaseIgnorable { continue }
                    return scalars[j].properties.isCased
                }
                return false
            }
            let final = cased(after: stride(from: i - 1, through: 0, by: -1)) && !cased(after: (i + 1)..<scalars.count)
            out.append(final ? "\u{3C2}" : "\u{3C3}")
        }
        return String(out)
    }
}

/// A JSON array of strings (via JSONSerialization, so every character is escaped correctly).
func jsonArray(_ strings: [String]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: strings, options: []),
          let s = String(data: data, encoding: .utf8) else { return "[]" }
    return s
}

func parseJSONStringArray(_ json: String, source: String) throws -> [String] {
    guard let data = json.data(using: .utf8),
          let array = try? JSONSerialization.jsonObject(with: data, options: []) as? [String] else {
        throw RecurrentError("\(source): expected a JSON array of strings")
    }
    return array
}
