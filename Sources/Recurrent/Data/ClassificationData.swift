import Foundation

/// One labelled sentence and where it came from (for error messages).
public struct LabeledText: Sendable, Equatable {
    public var text: String
    public var label: String
    /// `file:line`.
    public var origin: String
    public init(text: String, label: String, origin: String) {
        self.text = text
        self.label = label
        self.origin = origin
    }
}

/// The layouts `ClassificationReader` understands.
public enum ClassificationFormat: String, CaseIterable, Sendable {
    /// Tab-separated columns, picked by header name (or by 1-based number with no header).
    case tsv
    /// `label sentence` per line, split at the first space (the stsa.binary and TREC files).
    case labelFirst = "label-first"
    /// A folder of `<Label>.txt` files, one example per line (the names data).
    case folder
    /// `folder` for a folder; `tsv` when the first line holds a tab; else `label-first`.
    case auto
}

/// Which columns of a TSV file hold the text and the label.
public struct TSVColumns: Sendable, Equatable {
    /// With a header: column names. Without: 1-based column numbers written as text ("1", "2").
    public var text: String
    public var label: String
    public var hasHeader: Bool
    public init(text: String = "sentence", label: String = "label", hasHeader: Bool = true) {
        self.text = text
        self.label = label
        self.hasHeader = hasHeader
    }
}

/// Readers of labelled sentences for the classifier. All of them read lines with `TextLines`
/// (split on "\n" only, trailing "\r" dropped, no final newline needed); empty lines and lines of
/// spaces and tabs only are skipped.
///
/// Errors are one line naming the file and line: an empty file, a TSV header without the named
/// column (or one column named for both text and label), a row with too few columns, an empty
/// label, an empty text (a sequence of length 0, which `pack_padded_sequence` refuses too), a file
/// with no examples.
public enum ClassificationReader {
    /// Reads `path` in `format`. Folders are read with `readFolder`.
    public static func read(path: String, format: ClassificationFormat = .auto, columns: TSVColumns = TSVColumns(),
                            encoding: TextEncoding = .utf8) throws -> [LabeledText] {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        if format == .folder || (format == .auto && exists && isDir.boolValue) {
            return try readFolder(path: path, encoding: encoding)
        }
        let lines = try TextLines.read(path: path, encoding: encoding)
        var resolved = format
        if format == .auto {
            resolved = (lines.first { !$0.text.isEmpty }?.text.contains("\t") ?? false) ? .tsv : .labelFirst
        }
        let examples: [LabeledText]
        switch resolved {
        case .tsv: examples = try parseTSV(lines, name: path, columns: columns)
        default: examples = try parseLabelFirst(lines, name: path)
        }
        if examples.isEmpty {
            throw RecurrentError(resolved == .tsv && columns.hasHeader ? "\(path): no examples under the header" : "\(path): no examples (every line is empty)")
        }
        return examples
    }

    /// TSV rows → examples (see `TSVColumns`).
    public static func parseTSV(_ lines: [TextLine], name: String, columns: TSVColumns) throws -> [LabeledText] {
        let rows = lines.filter { !isBlank($0.text) }
        guard let first = rows.first else { throw RecurrentError("\(name): the file is empty") }
        try TextLines.refuseLoneCR(first, name: name)
        let textIndex: Int, labelIndex: Int
        // A row is as wide as the header, or without one as most rows (empty trailing columns not
        // counted): one more tab inside a sentence would otherwise cut its text short and read a
        // word as the label.
        let cellsOfRows = rows.map { $0.text.split(separator: "\t", omittingEmptySubsequences: false) }
        let widths = cellsOfRows.map { cells in (cells.lastIndex { !isBlank($0) } ?? -1) + 1 }
        var body = Array(zip(rows, zip(cellsOfRows, widths)))[...]
        if columns.hasHeader {
            let header = cellsOfRows[0].map { $0.trimmingCharacters(in: .whitespaces) }
            guard let t = header.firstIndex(of: columns.text) else {
                throw RecurrentError("\(name):\(first.number): no column named '\(RecurrentError.shown(columns.text))' in the header (columns: \(RecurrentError.shownList(header))); use --text-column, or --no-header with column numbers")
            }
            guard let l = header.firstIndex(of: columns.label) else {
                throw RecurrentError("\(name):\(first.number): no column named '\(RecurrentError.shown(columns.label))' in the header (columns: \(RecurrentError.shownList(header))); use --label-column, or --no-header with column numbers")
            }
            textIndex = t
            labelIndex = l
            body = body.dropFirst()
        } else {
            guard let t = Int(columns.text), t >= 1 else { throw RecurrentError("--text-column '\(columns.text)': with --no-header give a column number (1 = first)") }
            guard let l = Int(columns.label), l >= 1 else { throw RecurrentError("--label-column '\(columns.label)': with --no-header give a column number (1 = first)") }
            textIndex = t - 1
            labelIndex = l - 1
        }
        guard textIndex != labelIndex else {
            throw RecurrentError("--text-column '\(columns.text)' and --label-column '\(columns.label)' name the same column of \(name); the label would be the input")
        }
        let needed = max(textIndex, labelIndex) + 1
        let usual: Int, widthSource: String
        if columns.hasHeader {
            usual = widths[0]
            widthSource = "the header (line \(first.number))"
        } else {
            // The most common width (the narrower of a tie), and at least the columns named.
            var counts: [Int: Int] = [:]
            for w in widths { counts[w, default: 0] += 1 }
            let common = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key ?? needed
            usual = max(needed, common)
            widthSource = usual == common ? "most rows" : "the columns named (--text-column, --label-column)"
        }
        var out: [LabeledText] = []
        out.reserveCapacity(body.count)
        for (row, (cells, w)) in body {
            guard cells.count >= needed else {
                throw RecurrentError("\(name):\(row.number): \(cells.count) column\(cells.count == 1 ? "" : "s"), expected at least \(needed)")
            }
            if w > usual {
                throw RecurrentError("\(name):\(row.number): \(w) columns, expected \(usual) as in \(widthSource); is there a tab inside the text?")
            }
            let label = cells[labelIndex].trimmingCharacters(in: .whitespaces)
            guard !label.isEmpty else { throw RecurrentError("\(name):\(row.number): the label is empty") }
            guard !isBlank(cells[textIndex]) else { throw RecurrentError("\(name):\(row.number): the text is empty") }
            out.append(LabeledText(text: String(cells[textIndex]), label: label, origin: "\(name):\(row.number)"))
        }
        return out
    }

    /// `label sentence` lines → examples (the label is everything before the first space or tab).
    public static func parseLabelFirst(_ lines: [TextLine], name: String) throws -> [LabeledText] {
        var out: [LabeledText] = []
        out.reserveCapacity(lines.count)
        for line in lines where !isBlank(line.text) {
            guard let space = line.text.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
                throw RecurrentError("\(name):\(line.number): expected 'label sentence' (a label, a space, the text), got no space")
            }
            let label = String(line.text[..<space])
            guard !label.isEmpty else { throw RecurrentError("\(name):\(line.number): the line starts with a space, expected a label first") }
            let text = line.text[line.text.index(after: space)...]
            guard !isBlank(text) else { throw RecurrentError("\(name):\(line.number): the text after the label '\(label)' is empty") }
            out.append(LabeledText(text: String(text), label: label, origin: "\(name):\(line.number)"))
        }
        return out
    }

    /// Empty, or spaces and tabs only.
    public static func isBlank<S: StringProtocol>(_ s: S) -> Bool { s.allSatisfy { $0 == " " || $0 == "\t" } }

    /// A folder of `<Label>.txt` files (one example per line; label = the file's stem), in
    /// label order, then line order. Other files are ignored.
    public static func readFolder(path: String, encoding: TextEncoding = .utf8) throws -> [LabeledText] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
            throw RecurrentError(exists && !isFolder.boolValue ? "\(path): is a file, but --format folder expects a folder of <Label>.txt files"
                                 : exists ? "\(path): cannot list the folder" : "\(path): no such folder")
        }
        let files = names.filter { $0.hasSuffix(".txt") && !$0.hasPrefix(".") }.sorted()
        if files.isEmpty { throw RecurrentError("\(path): the folder holds no .txt files (expected one <Label>.txt per class)") }
        var out: [LabeledText] = []
        for file in files {
            let label = String(file.dropLast(4))
            let full = (path as NSString).appendingPathComponent(file)
            // The label is printed as `label<TAB>probability`, one line per sentence.
            if label.contains(where: { $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
                throw RecurrentError("\(full): the label (the file's name) holds a tab or a line break")
            }
            for line in try TextLines.read(path: full, encoding: encoding) {
                let text = line.text.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                out.append(LabeledText(text: text, label: label, origin: "\(full):\(line.number)"))
            }
        }
        if out.isEmpty { throw RecurrentError("\(path): no examples in the folder's .txt files") }
        return out
    }

    /// A seeded split into parts of the given fractions (e.g. [0.8, 0.1, 0.1]), stratified by
    /// label so every class keeps its share. Fractions must be zero or more and sum to 1 (±1e-6).
    public static func split(_ examples: [LabeledText], fractions: [Double], seed: UInt64) -> [[LabeledText]] {
        require(fractions.allSatisfy { $0 >= 0 } && abs(fractions.reduce(0, +) - 1) < 1e-6,
                "ClassificationReader.split: fractions must be zero or more and sum to 1, got \(fractions)")
        var rng = SeededRNG(seed: seed)
        var parts = [[LabeledText]](repeating: [], count: fractions.count)
        var byLabel: [ExactString: [LabeledText]] = [:]
        var order: [ExactString] = []
        for e in examples {
            let label = ExactString(e.label)
            if byLabel[label] == nil { order.append(label) }
            byLabel[label, default: []].append(e)
        }
        for label in order {
            var group = byLabel[label] ?? []
            group.shuffle(using: &rng)
            var start = 0
            var cumulative = 0.0
            for (k, f) in fractions.enumerated() {
                cumulative += f
                let end = k == fractions.count - 1 ? group.count : min(group.count, Int((cumulative * Double(group.count)).rounded()))
                parts[k] += group[start..<max(start, end)]
                start = max(start, end)
            }
        }
        for k in parts.indices { parts[k].shuffle(using: &rng) }
        return parts
    }
}
