/// A string compared, hashed and ordered by its Unicode scalars, as Python compares `str`.
///
/// Swift's `String` equality is canonical equivalence: "é" (U+00E9) equals "e" + U+0301, and the
/// Ohm sign U+2126 equals the Greek capital omega U+03A9. Keyed by `String`, a vocabulary would
/// merge such tokens, labels or condition names into one entry, where PyTorch, ONNX Runtime and a
/// Python script encoding the inputs keep them apart. Vocabularies, label sets, condition names
/// and BLEU's n-grams use this key instead. Its order is code-point order (UTF-8 byte order), the
/// order of Python's `sorted()`.
public struct ExactString: Hashable, Comparable, Sendable {
    public let string: String

    public init(_ string: String) { self.string = string }

    public static func == (a: ExactString, b: ExactString) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    public static func < (a: ExactString, b: ExactString) -> Bool {
        a.string.utf8.lexicographicallyPrecedes(b.string.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension Sequence where Element == String {
    /// The distinct strings (by their scalars, as Python's `set`), sorted by code point (Python's `sorted`).
    public func exactDistinctSorted() -> [String] {
        Set(map(ExactString.init)).sorted().map(\.string)
    }

    /// Whether no two strings are the same scalars (Python's `len(set(xs)) == len(xs)`).
    public func exactlyDistinct() -> Bool {
        var seen = Set<ExactString>()
        return allSatisfy { seen.insert(ExactString($0)).inserted }
    }

    /// Each string's position, by exact scalars (the first position for a repeated string).
    public func exactIndex() -> [ExactString: Int] {
        var index: [ExactString: Int] = [:]
        for (i, s) in enumerated() where index[ExactString(s)] == nil { index[ExactString(s)] = i }
        return index
    }
}

extension String {
    /// The pieces between separator scalars, empty pieces dropped, as Python splits a `str` (by
    /// code point). `split` on `Character`s would keep " " + U+0301 together: a space followed by
    /// a combining mark is one grapheme.
    public func splitScalars(where isSeparator: (Unicode.Scalar) -> Bool) -> [String] {
        var out: [String] = []
        var current = String.UnicodeScalarView()
        for s in unicodeScalars {
            if isSeparator(s) {
                if !current.isEmpty { out.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { out.append(String(current)) }
        return out
    }
}

extension Unicode.Scalar {
    /// Python's `str.isspace()` for one character: Unicode's White_Space, and the information
    /// separators U+001C–U+001F, which Python also splits at.
    public var isPythonSpace: Bool { properties.isWhitespace || (0x1C...0x1F).contains(value) }
}
