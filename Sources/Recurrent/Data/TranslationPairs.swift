import Foundation

/// Word vocabularies of a translator: `TokenVocabulary` with `<sos>` and `<eos>` fixed at 2 and 3.
public enum TranslationVocabulary {
    public static let sos = "<sos>"
    public static let eos = "<eos>"
    public static let padIndex: Int32 = 0
    public static let sosIndex: Int32 = 2
    public static let eosIndex: Int32 = 3

    /// `<pad>`, `<unk>`, `<sos>`, `<eos>`, then the words of `sentences` by falling frequency
    /// (those seen fewer than `minFrequency` times left out; at most `maxSize` entries in all).
    public static func make(counting sentences: [[String]], minFrequency: Int = 1, maxSize: Int? = nil) -> TokenVocabulary {
        let counted = TokenVocabulary(counting: sentences, minFrequency: minFrequency, maxSize: maxSize.map { max(2, $0 - 2) })
        let words = counted.tokens.dropFirst(2).filter { $0 != sos && $0 != eos }
        // Cannot fail: the reserved tokens lead and `counted` holds distinct tokens.
        return (try? TokenVocabulary(tokens: [TokenVocabulary.pad, TokenVocabulary.unk, sos, eos] + words, source: "vocabulary"))
            ?? counted
    }

    /// Whether `v` has the reserved entries at 0…3 (checked when loading a checkpoint).
    public static func isValid(_ v: TokenVocabulary) -> Bool {
        v.count > 4 && v.tokens[2] == sos && v.tokens[3] == eos
    }
}

/// One sentence pair, normalised and split into words, with the 1-based line it came from.
public struct TranslationPair: Sendable, Equatable {
    public var source: [String]
    public var target: [String]
    public var line: Int

    public init(source: [String], target: [String], line: Int) {
        self.source = source
        self.target = target
        self.line = line
    }
}

/// Which pairs a translator trains on, as the PyTorch seq2seq tutorial's `filterPairs`.
///
/// A pair is kept when both sides have at most `maxWords` words (after normalisation) and, if
/// `prefixes` is not empty, the first column's normalised text starts with one of them (for
/// eng_fra the English side, also with `reverse`). The tutorial keeps `len(words) < MAX_LENGTH = 10`,
/// which is `maxWords = 9`, with `tutorialPrefixes`.
public struct TranslationFilter: Sendable, Equatable {
    public var maxWords: Int?
    public var prefixes: [String]

    public init(maxWords: Int? = nil, prefixes: [String] = []) {
        self.maxWords = maxWords
        self.prefixes = prefixes
    }

    /// The tutorial's `eng_prefixes`.
    public static let tutorialPrefixes = ["i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ",
                                          "we are", "we re ", "they are", "they re "]

    /// The tutorial's whole filter: at most 9 words a side, English starting with `tutorialPrefixes`.
    public static let tutorial = TranslationFilter(maxWords: 9, prefixes: tutorialPrefixes)

    func keeps(firstColumn: String, _ a: [String], _ b: [String]) -> Bool {
        if let m = maxWords, a.count > m || b.count > m { return false }
        return prefixes.isEmpty || prefixes.contains { firstColumn.hasPrefix($0) }
    }
}

/// Reading `source<TAB>target` files (for example ../shared/data/eng_fra/fra.txt, `English<TAB>French`).
public enum TranslationData {
    /// The PyTorch tutorial's `normalizeString`: lower-case, accents stripped (NFD, marks dropped),
    /// a space before each of `.!?`, every run of other characters than a–z and `.!?` made one space,
    /// trimmed. "J'ai froid." → "j ai froid ."
    public static func normalize(_ text: String) -> String {
        var out = ""
        var pendingSpace = false
        for scalar in text.lowercased().decomposedStringWithCanonicalMapping.unicodeScalars {
            if scalar.properties.generalCategory == .nonspacingMark { continue }
            let v = scalar.value
            let letter = v >= 0x61 && v <= 0x7A, mark = scalar == "." || scalar == "!" || scalar == "?"
            if letter || mark {
                if (pendingSpace || mark) && !out.isEmpty && out.last != " " { out.append(" ") }
                pendingSpace = false
                out.unicodeScalars.append(scalar)
            } else {
                pendingSpace = true
            }
        }
        return out
    }

    /// Words of normalised text.
    public static func words(_ text: String) -> [String] { normalize(text).split(separator: " ").map(String.init) }

    /// Reads the pairs of `path`: the first two tab-separated columns (more are ignored), CRLF or
    /// LF, with or without a final newline; blank lines are skipped. `reverse` swaps the sides.
    /// Errors (one line, naming the file and line): a line without a tab, a side that is empty or
    /// has no words left after normalisation, and no pairs left after `filter`.
    public static func read(path: String, filter: TranslationFilter = TranslationFilter(), reverse: Bool = false,
                            encoding: TextEncoding = .utf8) throws -> [TranslationPair] {
        try parse(try TextLines.read(path: path, encoding: encoding), name: path, filter: filter, reverse: reverse)
    }

    public static func parse(_ lines: [TextLine], name: String, filter: TranslationFilter, reverse: Bool) throws -> [TranslationPair] {
        var pairs: [TranslationPair] = []
        var total = 0
        for line in lines {
            if line.text.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            try TextLines.refuseLoneCR(line, name: name)
            let columns = line.text.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard columns.count >= 2 else {
                throw RecurrentError("\(name):\(line.number): expected source<TAB>target, found no tab")
            }
            let first = normalize(String(columns[0])), second = normalize(String(columns[1]))
            for (side, text) in [("source", first), ("target", second)] where text.isEmpty {
                let raw = side == "source" ? columns[0] : columns[1]
                let what = raw.trimmingCharacters(in: .whitespaces).isEmpty ? "is empty" : "has no words after normalisation"
                throw RecurrentError("\(name):\(line.number): the \(reverse ? (side == "source" ? "target" : "source") : side) side \(what)")
            }
            total += 1
            let a = first.split(separator: " ").map(String.init), b = second.split(separator: " ").map(String.init)
            guard filter.keeps(firstColumn: first, a, b) else { continue }
            pairs.append(reverse ? TranslationPair(source: b, target: a, line: line.number)
                                 : TranslationPair(source: a, target: b, line: line.number))
        }
        if pairs.isEmpty {
            let why = total == 0 ? "no pairs" : "none of its \(total) pairs pass the filter (--max-words, --prefixes)"
            throw RecurrentError("\(name): \(why)")
        }
        return pairs
    }

    /// A seeded split of `count` pairs into train, valid and test index lists (each sorted):
    /// one shuffle, the first `testFraction` of it is test, the next `validFraction` valid.
    public static func split(count: Int, testFraction: Double, validFraction: Double, seed: UInt64) -> (train: [Int], valid: [Int], test: [Int]) {
        require(testFraction >= 0 && testFraction <= 1 && validFraction >= 0 && validFraction <= 1,
                     "fractions must lie in [0, 1], got \(testFraction) and \(validFraction)")
        var rng = SeededRNG(seed: seed)
        var order = Array(0..<count)
        order.shuffle(using: &rng)
        let nTest = Int((Double(count) * testFraction).rounded()), nValid = Int((Double(count) * validFraction).rounded())
        let test = Array(order[0..<min(nTest, count)]).sorted()
        let valid = Array(order[min(nTest, count)..<min(nTest + nValid, count)]).sorted()
        let train = Array(order[min(nTest + nValid, count)...]).sorted()
        return (train, valid, test)
    }
}
