/// The characters a character-level model knows, in index order (index = embedding row =
/// logit column).
///
/// Built from text it is Python's `sorted(set(text))`: distinct Unicode scalars sorted by code
/// point, so a vocabulary built here matches one built by a PyTorch script on the same text.
/// Stored in checkpoints as the `vocab` metadata: a JSON array of one-character strings.
///
/// Lookup is a 128-entry table for ASCII and a dictionary for everything else, so encoding a
/// megabyte of text is one table read per character.
public struct CharVocabulary: Sendable, Equatable {
    /// Characters in index order.
    public let characters: [Unicode.Scalar]
    /// Index of each ASCII scalar, -1 when absent.
    private let asciiIndex: [Int32]
    /// Index of each non-ASCII scalar.
    private let otherIndex: [UInt32: Int32]

    /// The number of characters (V).
    public var count: Int { characters.count }

    /// Python's `sorted(set(text))`: the distinct scalars sorted by code point.
    public init(text: [Unicode.Scalar]) {
        var seenASCII = [Bool](repeating: false, count: 128)
        var others = Set<UInt32>()
        for c in text {
            let v = c.value
            if v < 128 { seenASCII[Int(v)] = true } else { others.insert(v) }
        }
        var values: [UInt32] = (0..<128).filter { seenASCII[$0] }.map { UInt32($0) }
        values += others.sorted()
        self.init(validated: values.compactMap { Unicode.Scalar($0) })
    }

    /// A vocabulary in the given order (as read from a checkpoint).
    /// Throws when the list is empty or holds a character twice.
    public init(characters: [Unicode.Scalar]) throws {
        try self.init(characters: characters, source: "vocabulary")
    }

    init(characters: [Unicode.Scalar], source: String) throws {
        guard !characters.isEmpty else {
            throw RecurrentError("\(source): the vocabulary is empty (expected at least one character)")
        }
        var seen = Set<UInt32>()
        for (i, c) in characters.enumerated() where !seen.insert(c.value).inserted {
            throw RecurrentError("\(source): character \(CharVocabulary.describe(c)) appears twice in the vocabulary (again at index \(i))")
        }
        self.init(validated: characters)
    }

    private init(validated characters: [Unicode.Scalar]) {
        self.characters = characters
        var ascii = [Int32](repeating: -1, count: 128)
        var other: [UInt32: Int32] = [:]
        for (i, c) in characters.enumerated() {
            if c.value < 128 { ascii[Int(c.value)] = Int32(i) } else { other[c.value] = Int32(i) }
        }
        asciiIndex = ascii
        otherIndex = other
    }

    public static func == (a: CharVocabulary, b: CharVocabulary) -> Bool { a.characters == b.characters }

    /// The index of `c`, or nil when it is not in the vocabulary.
    @inline(__always)
    public func index(of c: Unicode.Scalar) -> Int32? {
        let v = c.value
        if v < 128 {
            let i = asciiIndex[Int(v)]
            return i >= 0 ? i : nil
        }
        return otherIndex[v]
    }

    /// The indices of `text`. An unknown character throws
    /// "SOURCE: character 'X' (U+XXXX) at position N is not in the model's vocabulary"
    /// (N counts characters from 0).
    public func encode(_ text: [Unicode.Scalar], source: String, firstPosition: Int = 0) throws -> [Int32] {
        var out = [Int32](repeating: 0, count: text.count)
        var failed: Int? = nil
        asciiIndex.withUnsafeBufferPointer { table in
            text.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for p in 0..<src.count {
                        let v = src[p].value
                        let i: Int32
                        if v < 128 {
                            i = table[Int(v)]
                        } else {
                            i = otherIndex[v] ?? -1
                        }
                        if i < 0 { failed = p; return }
                        dst[p] = i
                    }
                }
            }
        }
        if let p = failed {
            throw RecurrentError("\(source): character \(CharVocabulary.describe(text[p])) at position \(firstPosition + p) is not in the model's vocabulary")
        }
        return out
    }

    /// The text of `indices`; an index outside the vocabulary becomes U+FFFD.
    public func decode(_ indices: [Int32]) -> String {
        var s = String.UnicodeScalarView()
        for i in indices {
            s.append(i >= 0 && Int(i) < characters.count ? characters[Int(i)] : "\u{FFFD}")
        }
        return String(s)
    }

    /// A character as an error message shows it: `'a' (U+0061)`, `'\n' (U+000A)`.
    static func describe(_ c: Unicode.Scalar) -> String {
        "'\(readable(c))' (\(codePoint(c)))"
    }

    /// `U+XXXX` with at least four upper-case hex digits.
    static func codePoint(_ c: Unicode.Scalar) -> String {
        let hex = String(c.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// Control and invisible characters spelled as escapes, so an error message stays one line.
    static func readable(_ c: Unicode.Scalar) -> String {
        switch c {
        case "\n": return "\\n"
        case "\t": return "\\t"
        case "\r": return "\\r"
        case "\0": return "\\0"
        case "\\": return "\\\\"
        case "'": return "\\'"
        default:
            if c.value < 0x20 || (0x7F...0x9F).contains(c.value) || c.value == 0x2028 || c.value == 0x2029 || c.value == 0xFEFF {
                return "\\u{" + String(c.value, radix: 16, uppercase: true) + "}"
            }
            return String(c)
        }
    }
}
