/// The `vocab` metadata of a checkpoint: a JSON array of one-character strings, e.g.
/// `["\n", " ", "a", "가"]`.
///
/// Writing escapes `"`, `\` and control characters (so Python's `json.loads` reads it back) and
/// U+FEFF (Foundation's JSON reader drops a raw one at the start of a string; `SafeTensors` escapes
/// raw ones in the header it reads, so files written by Python keep theirs), and writes everything
/// else raw as UTF-8. Reading also accepts what Python's `json.dumps` writes by
/// default: `\uXXXX` escapes for every non-ASCII character and surrogate pairs for characters
/// beyond the Basic Multilingual Plane.
extension CharVocabulary {
    /// The JSON array of one-character strings, elements separated by ", " as `json.dumps` does.
    public var json: String {
        var s = String.UnicodeScalarView()
        s.append("[")
        for (i, c) in characters.enumerated() {
            if i > 0 { s.append(contentsOf: ", ".unicodeScalars) }
            s.append("\"")
            switch c {
            case "\"": s.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": s.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": s.append(contentsOf: "\\n".unicodeScalars)
            case "\r": s.append(contentsOf: "\\r".unicodeScalars)
            case "\t": s.append(contentsOf: "\\t".unicodeScalars)
            case "\u{8}": s.append(contentsOf: "\\b".unicodeScalars)
            case "\u{C}": s.append(contentsOf: "\\f".unicodeScalars)
            default:
                if c.value < 0x20 || c.value == 0x7F || c.value == 0xFEFF {
                    let hex = String(c.value, radix: 16)
                    s.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
                } else {
                    s.append(c)
                }
            }
            s.append("\"")
        }
        s.append("]")
        return String(s)
    }

    /// Parses a JSON array of one-character strings. Every element must be exactly one Unicode
    /// scalar, the list must be non-empty and hold no duplicates; `source` labels errors.
    public init(json: String, source: String) throws {
        var parser = VocabJSONParser(text: Array(json.unicodeScalars), source: source)
        let characters = try parser.parseArray()
        try self.init(characters: characters, source: source)
    }
}

/// A parser for exactly one JSON value: an array of strings. Errors name the character position.
private struct VocabJSONParser {
    let text: [Unicode.Scalar]
    let source: String
    var p = 0

    init(text: [Unicode.Scalar], source: String) {
        self.text = text
        self.source = source
    }

    func fail(_ what: String) -> RecurrentError {
        RecurrentError("\(source): the vocabulary is not a JSON array of one-character strings (\(what) at position \(p))")
    }

    mutating func skipSpace() {
        while p < text.count, [" ", "\n", "\r", "\t"].contains(text[p]) { p += 1 }
    }

    mutating func expect(_ c: Unicode.Scalar) throws {
        skipSpace()
        guard p < text.count, text[p] == c else {
            throw fail(p < text.count ? "expected '\(c)', found '\(CharVocabulary.readable(text[p]))'" : "expected '\(c)', found the end")
        }
        p += 1
    }

    mutating func parseArray() throws -> [Unicode.Scalar] {
        try expect("[")
        var out: [Unicode.Scalar] = []
        skipSpace()
        if p < text.count, text[p] == "]" {
            p += 1
        } else {
            while true {
                skipSpace()
                let start = p
                let element = try parseString()
                guard element.count == 1 else {
                    p = start
                    throw fail("element \(out.count) has \(element.count) characters, expected exactly one")
                }
                out.append(element[0])
                skipSpace()
                guard p < text.count else { throw fail("expected ',' or ']', found the end") }
                if text[p] == "," { p += 1; continue }
                if text[p] == "]" { p += 1; break }
                throw fail("expected ',' or ']', found '\(CharVocabulary.readable(text[p]))'")
            }
        }
        skipSpace()
        guard p == text.count else { throw fail("unexpected text after the array") }
        return out
    }

    mutating func parseString() throws -> [Unicode.Scalar] {
        try expect("\"")
        var out: [Unicode.Scalar] = []
        while true {
            guard p < text.count else { throw fail("unterminated string") }
            let c = text[p]
            p += 1
            if c == "\"" { return out }
            if c.value < 0x20 { p -= 1; throw fail("raw control character \(CharVocabulary.codePoint(c)) in a string") }
            if c != "\\" { out.append(c); continue }
            guard p < text.count else { throw fail("unterminated escape") }
            let e = text[p]
            p += 1
            switch e {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "/": out.append("/")
            case "b": out.append("\u{8}")
            case "f": out.append("\u{C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "u":
                let first = try hex4()
                if (0xD800...0xDBFF).contains(first) {
                    guard p + 1 < text.count, text[p] == "\\", text[p + 1] == "u" else {
                        throw fail("high surrogate \\u\(String(first, radix: 16)) without a low surrogate")
                    }
                    p += 2
                    let second = try hex4()
                    guard (0xDC00...0xDFFF).contains(second) else {
                        throw fail("high surrogate \\u\(String(first, radix: 16)) followed by \\u\(String(second, radix: 16)), expected a low surrogate")
                    }
                    let v = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    guard let s = Unicode.Scalar(v) else { throw fail("invalid code point") }
                    out.append(s)
                } else {
                    guard let s = Unicode.Scalar(first) else {
                        throw fail("lone low surrogate \\u\(String(first, radix: 16))")
                    }
                    out.append(s)
                }
            default:
                p -= 1
                throw fail("unknown escape '\\\(CharVocabulary.readable(e))'")
            }
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard p + 4 <= text.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = text[p].value
            let d: UInt32
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: throw fail("bad hex digit in \\u escape")
            }
            v = v * 16 + d
            p += 1
        }
        return v
    }
}
