/// One tagged sentence from a CoNLL-U file.
public struct TaggedSentence: Sendable, Equatable {
    public var words: [String]
    public var tags: [String]
    /// `file:line` of the sentence's first token line.
    public var origin: String
    public init(words: [String], tags: [String], origin: String) {
        self.words = words
        self.tags = tags
        self.origin = origin
    }
}

/// Which CoNLL-U column holds the tag.
public enum TagColumn: String, CaseIterable, Sendable {
    case upos   // column 4
    case xpos   // column 5

    var index: Int { self == .upos ? 3 : 4 }
}

/// A CoNLL-U reader (https://universaldependencies.org/format.html) for tagging.
///
/// Sentences are separated by blank lines; `#` lines are comments; multi-word token ranges
/// (`1-2`) and empty nodes (`1.1`) are skipped, so words are the syntactic words that carry tags.
/// Lines are read with `TextLines` (CRLF and a missing final newline are fine).
/// Errors name the file and line: a token line without 10 tab-separated columns, an ID that is
/// not an integer, a range or a decimal, an empty form or tag, a file without sentences.
public enum CoNLLU {
    public static func read(path: String, tagColumn: TagColumn = .upos, encoding: TextEncoding = .utf8) throws -> [TaggedSentence] {
        let sentences = try parse(try TextLines.read(path: path, encoding: encoding), name: path, tagColumn: tagColumn)
        if sentences.isEmpty { throw RecurrentError("\(path): no sentences (expected CoNLL-U token lines)") }
        return sentences
    }

    public static func parse(_ lines: [TextLine], name: String, tagColumn: TagColumn = .upos) throws -> [TaggedSentence] {
        var out: [TaggedSentence] = []
        var words: [String] = [], tags: [String] = []
        var firstLine = 0
        func flush() {
            if !words.isEmpty { out.append(TaggedSentence(words: words, tags: tags, origin: "\(name):\(firstLine)")) }
            words = []
            tags = []
        }
        for line in lines {
            let text = line.text
            if text.trimmingCharacters(in: .whitespaces).isEmpty { flush(); continue }
            if text.hasPrefix("#") { continue }
            let cols = text.split(separator: "\t", omittingEmptySubsequences: false)
            guard cols.count == 10 else {
                throw RecurrentError("\(name):\(line.number): a CoNLL-U token line has 10 tab-separated columns, this one has \(cols.count)")
            }
            let id = cols[0]
            if id.contains("-") || id.contains(".") {
                let parts = id.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "-" || $0 == "." })
                guard parts.count == 2, parts.allSatisfy({ Int($0) != nil }) else {
                    throw RecurrentError("\(name):\(line.number): the ID '\(id)' is not an integer, a range (1-2) or an empty node (1.1)")
                }
                continue
            }
            guard let n = Int(id), n >= 1 else {
                throw RecurrentError("\(name):\(line.number): the ID '\(id)' is not a positive integer")
            }
            _ = n
            let form = String(cols[1]), tag = String(cols[tagColumn.index])
            guard !form.isEmpty else { throw RecurrentError("\(name):\(line.number): the FORM column is empty") }
            guard !tag.isEmpty, tag != "_" || tagColumn == .xpos else {
                throw RecurrentError("\(name):\(line.number): the \(tagColumn.rawValue.uppercased()) column is empty")
            }
            if words.isEmpty { firstLine = line.number }
            words.append(form)
            tags.append(tag)
        }
        flush()
        return out
    }
}
