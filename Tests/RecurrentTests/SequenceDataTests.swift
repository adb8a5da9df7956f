import Foundation
import Testing
@testable import Recurrent

private func tempFile(_ bytes: [UInt8], suffix: String = ".txt") throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-seq-\(UUID().uuidString)\(suffix)")
    try Data(bytes).write(to: url)
    return url.path
}

private func errorMessage(_ body: () throws -> Void) -> String? {
    do { try body() } catch let e as RecurrentError { return e.message } catch { return "\(error)" }
    return nil
}

@Suite struct TextLinesTests {
    @Test func crlfAndNoFinalNewline() throws {
        let lines = try TextLines.split(Array("a\tb\r\nc\td\r\ne".utf8), name: "f")
        #expect(lines.map(\.text) == ["a\tb", "c\td", "e"])
        #expect(lines.map(\.number) == [1, 2, 3])
    }

    @Test func nelStaysInsideTheLine() throws {
        let lines = try TextLines.split(Array("one\u{85}two\t1\nthree\t0\n".utf8), name: "f")
        #expect(lines.count == 2)
        #expect(lines[0].text == "one\u{85}two\t1")
    }

    @Test func latin1ByteIsAnErrorNamingLineAndOffset() throws {
        let bytes: [UInt8] = Array("ok line\nbad ".utf8) + [0xF0] + Array(" here\n".utf8)
        let m = errorMessage { _ = try TextLines.split(bytes, name: "trec.txt") }
        #expect(m?.contains("trec.txt:2") == true, "\(m ?? "")")
        #expect(m?.contains("byte offset 12") == true, "\(m ?? "")")
        #expect(m?.contains("--encoding latin1") == true)
        let lines = try TextLines.split(bytes, name: "trec.txt", encoding: .latin1)
        #expect(lines[1].text == "bad \u{F0} here")
    }

    @Test func bomIsDropped() throws {
        #expect(try TextLines.split([0xEF, 0xBB, 0xBF] + Array("x\n".utf8), name: "f").map(\.text) == ["x"])
        // A part of a longer input (standard input read as it arrives) is numbered as in the whole.
        let part = try TextLines.split(Array("a\nb\n".utf8), name: "s", firstLine: 7, byteOffset: 100)
        #expect(part.map(\.number) == [7, 8])
        do {
            _ = try TextLines.split(Array("ok\nbad ".utf8) + [0xE9] + Array("\n".utf8), name: "standard input", firstLine: 7500, byteOffset: 156_000)
            Issue.record("expected an error")
        } catch let e as RecurrentError {
            #expect(e.message.hasPrefix("standard input:7501: invalid UTF-8 at byte offset 156007"), "\(e.message)")
        }
    }
}

@Suite struct ClassificationReaderTests {
    @Test func tsvWithHeaderPicksNamedColumns() throws {
        let lines = try TextLines.split(Array("id\tlabel\tsentence\r\n1\tpos\tgood film \r\n\r\n2\tneg\tbad\r\n".utf8), name: "t.tsv")
        let ex = try ClassificationReader.parseTSV(lines, name: "t.tsv", columns: TSVColumns())
        #expect(ex.map(\.label) == ["pos", "neg"])
        #expect(ex.map(\.text) == ["good film ", "bad"])
        #expect(ex[1].origin == "t.tsv:4")
    }

    @Test func tsvWithoutHeaderUsesColumnNumbers() throws {
        let lines = try TextLines.split(Array("great\u{85} stuff\t1\nmeh\t0".utf8), name: "u.txt")
        let ex = try ClassificationReader.parseTSV(lines, name: "u.txt", columns: TSVColumns(text: "1", label: "2", hasHeader: false))
        #expect(ex.map(\.label) == ["1", "0"])
        #expect(ex[0].text == "great\u{85} stuff")
    }

    @Test func tsvErrorsNameFileAndLine() throws {
        let missing = try TextLines.split(Array("text\tlabel\nx\t1\n".utf8), name: "m.tsv")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(missing, name: "m.tsv", columns: TSVColumns()) }?.contains("m.tsv:1: no column named 'sentence'") == true)
        let short = try TextLines.split(Array("sentence\tlabel\na\t1\nb\n".utf8), name: "s.tsv")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(short, name: "s.tsv", columns: TSVColumns()) }?.hasPrefix("s.tsv:3: 1 column") == true)
        // A tab inside a sentence would read a word as the label: refused against the header's width,
        // or without a header the first row's; empty trailing columns are allowed.
        let long = try TextLines.split(Array("sentence\tlabel\ngood film\tpos\nthe film\twas great\tpos\n".utf8), name: "l.tsv")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(long, name: "l.tsv", columns: TSVColumns()) }
                == "l.tsv:3: 3 columns, expected 2 as in the header (line 1); is there a tab inside the text?")
        let trailing = try TextLines.split(Array("sentence\tlabel\ngood film\tpos\t\nbad\tneg\t \n".utf8), name: "t.tsv")
        #expect(try ClassificationReader.parseTSV(trailing, name: "t.tsv", columns: TSVColumns()).map(\.label) == ["pos", "neg"])
        let noHeader = try TextLines.split(Array("fine\t1\nnot\tso fine\t0\nok\t1\n".utf8), name: "n.txt")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(noHeader, name: "n.txt", columns: TSVColumns(text: "1", label: "2", hasHeader: false)) }
                == "n.txt:2: 3 columns, expected 2 as in most rows; is there a tab inside the text?")
        // The odd row may be the first, and a trailing tab on the first row or the header sets no width.
        let oddFirst = try TextLines.split(Array("bad\tfilm\t0\ngood\t1\nok\t1\n".utf8), name: "f.txt")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(oddFirst, name: "f.txt", columns: TSVColumns(text: "1", label: "2", hasHeader: false)) }
                == "f.txt:1: 3 columns, expected 2 as in most rows; is there a tab inside the text?")
        let trailingHeader = try TextLines.split(Array("sentence\tlabel\t\ngood\t1\ngood\tmovie\t1\n".utf8), name: "h.tsv")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(trailingHeader, name: "h.tsv", columns: TSVColumns()) }
                == "h.tsv:3: 3 columns, expected 2 as in the header (line 1); is there a tab inside the text?")
    }

    @Test func labelFirstLines() throws {
        let lines = try TextLines.split(Array("1 a fine film .\n0 dull\nNUM:dist How far ?".utf8), name: "l")
        let ex = try ClassificationReader.parseLabelFirst(lines, name: "l")
        #expect(ex.map(\.label) == ["1", "0", "NUM:dist"])
        #expect(ex[0].text == "a fine film .")
        let bad = try TextLines.split(Array("1 ok\nnolabel\n".utf8), name: "b")
        #expect(errorMessage { _ = try ClassificationReader.parseLabelFirst(bad, name: "b") }?.hasPrefix("b:2:") == true)
    }

    @Test func blankLinesEmptyTextsAndOneColumnForBoth() throws {
        // A tab after the label separates it like a space; lines of spaces only are skipped.
        let lines = try TextLines.split(Array("1 fine\n   \n0\tdull film\n\t\n".utf8), name: "l")
        let ex = try ClassificationReader.parseLabelFirst(lines, name: "l")
        #expect(ex.map(\.label) == ["1", "0"] && ex[1].text == "dull film")
        let empty = try TextLines.split(Array("1 fine\n0 \n".utf8), name: "e")
        #expect(errorMessage { _ = try ClassificationReader.parseLabelFirst(empty, name: "e") } == "e:2: the text after the label '0' is empty")
        let tsv = try TextLines.split(Array("sentence\tlabel\ngood\t1\n \t0\n".utf8), name: "t.tsv")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(tsv, name: "t.tsv", columns: TSVColumns()) } == "t.tsv:3: the text is empty")
        let same = try TextLines.split(Array("a\tb\nx\t1\n".utf8), name: "s.tsv")
        #expect(errorMessage { _ = try ClassificationReader.parseTSV(same, name: "s.tsv", columns: TSVColumns(text: "2", label: "2", hasHeader: false)) }?
            .contains("name the same column") == true)
        let headerOnly = try tempFile(Array("sentence\tlabel\n".utf8))
        #expect(errorMessage { _ = try ClassificationReader.read(path: headerOnly) } == "\(headerOnly): no examples under the header")
    }

    @Test func autoDetectsFormatAndRejectsEmptyFiles() throws {
        let tsv = try tempFile(Array("sentence\tlabel\nhi\t1\n".utf8))
        #expect(try ClassificationReader.read(path: tsv).map(\.label) == ["1"])
        let lf = try tempFile(Array("0 bad film".utf8))
        #expect(try ClassificationReader.read(path: lf).map(\.text) == ["bad film"])
        let empty = try tempFile([])
        #expect(errorMessage { _ = try ClassificationReader.read(path: empty) }?.contains("empty") == true)
        let blank = try tempFile(Array("\n\n".utf8))
        #expect(errorMessage { _ = try ClassificationReader.read(path: blank) } != nil)
    }

    @Test func folderOfLabelFilesAndSeededStratifiedSplit() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-names-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data((0..<20).map { "Ab\($0)" }.joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("Arabic.txt"))
        try Data((0..<10).map { "Ko\($0)" }.joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("Korean.txt"))
        let all = try ClassificationReader.read(path: dir.path)
        #expect(all.count == 30)
        #expect(Set(all.map(\.label)) == ["Arabic", "Korean"])
        let parts = ClassificationReader.split(all, fractions: [0.8, 0.1, 0.1], seed: 7)
        #expect(parts.map(\.count) == [24, 3, 3])
        #expect(parts[1].filter { $0.label == "Korean" }.count == 1)
        #expect(Set(parts.flatMap { $0.map(\.text) }).count == 30)
        #expect(ClassificationReader.split(all, fractions: [0.8, 0.1, 0.1], seed: 7) == parts)
    }
}

@Suite struct CoNLLUTests {
    static let sample = """
    # sent_id = 1\r
    # text = Don't go.\r
    1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\r
    1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\r
    2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\r
    3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\r
    3.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_\r
    4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\r
    \r
    1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_
    """

    @Test func skipsCommentsRangesAndEmptyNodes() throws {
        let s = try CoNLLU.parse(try TextLines.split(Array(Self.sample.utf8), name: "x.conllu"), name: "x.conllu")
        #expect(s.count == 2)
        #expect(s[0].words == ["Do", "n't", "go", "."])
        #expect(s[0].tags == ["AUX", "PART", "VERB", "PUNCT"])
        #expect(s[0].origin == "x.conllu:4")
        #expect(s[1].words == ["Hi"])
        let x = try CoNLLU.parse(try TextLines.split(Array(Self.sample.utf8), name: "x"), name: "x", tagColumn: .xpos)
        #expect(x[0].tags == ["VBP", "RB", "VB", "."])
    }

    @Test func malformedLinesNameFileAndLine() throws {
        let wrongColumns = "1\tDo\tdo\tAUX\n"
        #expect(errorMessage { _ = try CoNLLU.parse(try TextLines.split(Array(("# c\n" + wrongColumns).utf8), name: "a.conllu"), name: "a.conllu") }?
            .hasPrefix("a.conllu:2: a CoNLL-U token line has 10") == true)
        let badID = "x\tDo\tdo\tAUX\tVBP\t_\t0\troot\t_\t_\n"
        #expect(errorMessage { _ = try CoNLLU.parse(try TextLines.split(Array(badID.utf8), name: "b.conllu"), name: "b.conllu") }?
            .hasPrefix("b.conllu:1: the ID 'x'") == true)
    }
}

@Suite struct TokenVocabularyTests {
    @Test func padAndUnkFirstThenByFrequency() throws {
        let v = TokenVocabulary(counting: [["b", "a", "b"], ["c", "a", "b"]])
        #expect(v.tokens == ["<pad>", "<unk>", "b", "a", "c"])
        #expect(v.encode(["a", "zzz"]) == [3, 1])
    }

    @Test func minFrequencyAndMaxSize() throws {
        let data = [["x", "x", "x", "y", "y", "z"]]
        #expect(TokenVocabulary(counting: data, minFrequency: 2).tokens == ["<pad>", "<unk>", "x", "y"])
        #expect(TokenVocabulary(counting: data, maxSize: 3).tokens == ["<pad>", "<unk>", "x"])
    }

    /// Words split at spaces by code point, as Python's split(" "): a space followed by a combining
    /// mark is one Swift Character, which kept "a \u{301}b" whole. BLEU's 13a tokens likewise.
    @Test func splittingIsByScalarsAsInPython() throws {
        func scalars(_ xs: [String]) -> [[UInt32]] { xs.map { $0.unicodeScalars.map(\.value) } }
        #expect(scalars(Tokenization.word.tokens("a \u{301}b\tc", lowercase: false)) == scalars(["a", "\u{301}b", "c"]))
        #expect(scalars(BLEU.tokenize13a("the cafe \u{301} is open").splitScalars { $0 == " " })
                == scalars(["the", "cafe", "\u{301}", "is", "open"]))
        #expect(BLEU.corpus(hypotheses: ["the cafe \u{301} is open"], references: ["the cafe is open"]) < 100)
        #expect(scalars("a\u{1C}b \u{A0}c".splitScalars { $0.isPythonSpace }) == scalars(["a", "b", "c"]))
        #expect(RecurrentError.shown("back\\nslash") == "back\\\\nslash" && RecurrentError.shown("a\nb") == "a\\nb")
        #expect(RecurrentError.shownList(["x", "y"], limit: 0) == "x, … (2 in all)")
    }

    @Test func lowercaseAndCharacterTokens() throws {
        #expect(Tokenization.word.tokens("The  CAT\tsat", lowercase: true) == ["the", "cat", "sat"])
        #expect(Tokenization.char.tokens("Né ", lowercase: false) == ["N", "é"])
        // Spaces and tabs only, as the docs' Python encoders (`split(" ")`, `strip(" \t")`) do.
        #expect(Tokenization.word.tokens("the\u{A0}old man", lowercase: false) == ["the\u{A0}old", "man"])
        #expect(Tokenization.char.tokens(" \tq\u{A0}\t ", lowercase: false) == ["q", "\u{A0}"])
        #expect(Tokenization.char.tokens(" \t", lowercase: false).isEmpty)
        // The generator's examples are stripped the same way (a no-break space stays).
        #expect(" \u{A0}Kim\t ".strippingSpacesAndTabs() == "\u{A0}Kim")
        #expect("\t \t".strippingSpacesAndTabs().isEmpty)
        // Python's str.lower(): final sigma where Unicode's Final_Sigma context holds.
        func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }
        #expect(scalars("ΟΔΟΣ".pythonLowercased()) == scalars("οδος"))
        #expect(scalars("ΑΣ ΣΑ Σ".pythonLowercased()) == scalars("ας σα σ"))
        #expect(scalars("ΑΣ'Σ".pythonLowercased()) == scalars("ασ'ς"))   // ' is case-ignorable: the first Σ is followed by a cased letter
        #expect(scalars("İX".pythonLowercased()) == scalars("i\u{307}x"))
    }

    /// Strings Swift holds equal by canonical equivalence are distinct tokens, as Python's `str`s
    /// are: "é" and "e" + U+0301, the Ohm sign and Ω. (They were merged into one entry.)
    @Test func canonicallyEquivalentTokensStayApart() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}", ohm = "\u{2126}", omega = "\u{3A9}"
        let v = TokenVocabulary(counting: [[composed, ohm, decomposed, omega, ohm]])
        func bytes(_ xs: [String]) -> [[UInt8]] { xs.map { Array($0.utf8) } }
        #expect(bytes(v.tokens) == bytes(["<pad>", "<unk>", ohm, composed, decomposed, omega]))
        #expect(v.encode([composed, decomposed, ohm, omega]) == [3, 4, 2, 5])
        let stored = try TokenVocabulary(tokens: ["<pad>", "<unk>", omega, ohm], source: "m")   // torch-made: two entries
        #expect(stored.encode([ohm, omega]) == [3, 2])
        #expect(errorMessage { _ = try TokenVocabulary(tokens: ["<pad>", "<unk>", omega, omega], source: "m") }?.contains("repeats") == true)
        // Python's sorted(set(...)): by code point.
        #expect(bytes(["x", "\u{E9}", "e\u{301}", "x"].exactDistinctSorted()) == bytes(["e\u{301}", "x", "\u{E9}"]))
        #expect(!["\u{E9}", "\u{E9}"].exactlyDistinct() && ["\u{E9}", "e\u{301}"].exactlyDistinct())
        #expect(BLEU.ngrams([composed, "x"], 1).count == 2 && BLEU.ngrams([composed, decomposed], 1).count == 2)
    }

    @Test func jsonRoundTripKeepsOddTokens() throws {
        let v = TokenVocabulary(counting: [["\"q\"", "back\\slash", "ü", "\u{85}"]])
        #expect(try TokenVocabulary(json: v.json, source: "t") == v)
        #expect(errorMessage { _ = try TokenVocabulary(json: "[\"a\"]", source: "m") }?.contains("<pad>") == true)
    }
}

@Suite struct BatchingTests {
    @Test func paddedBatchHasLengthsAndPads() {
        let b = PaddedBatch([[5, 6, 7], [8], []])
        #expect(b.batch == 3 && b.steps == 3)
        #expect(b.lengths == [3, 1, 0])
        #expect(b.indices == [5, 6, 7, 8, 0, 0, 0, 0, 0])
    }

    @Test func planCoversEveryExampleOnceAndDependsOnTheSeed() {
        let lengths = (0..<103).map { ($0 * 37) % 11 }
        var rng = SeededRNG(seed: 3)
        let a = BatchPlan.batches(lengths: lengths, batchSize: 8, poolBatches: 4, rng: &rng)
        #expect(a.flatMap { $0 }.sorted() == Array(0..<103))
        #expect(a.allSatisfy { $0.count <= 8 })
        let b = BatchPlan.batches(lengths: lengths, batchSize: 8, poolBatches: 4, rng: &rng)
        #expect(a != b)
        var again = SeededRNG(seed: 3)
        #expect(BatchPlan.batches(lengths: lengths, batchSize: 8, poolBatches: 4, rng: &again) == a)
    }

    /// Evaluation batches: every example once, shortest first, 64 to a batch while the padded
    /// steps stay within 64 × 256; a very long example goes alone instead of padding 63 short ones.
    @Test func evaluationBatchesKeepLongExamplesApart() {
        let short = (0..<130).map { 1 + $0 % 40 }
        let plain = BatchPlan.byLength(short, batchSize: 64)
        #expect(plain.map(\.count) == [64, 64, 2])
        #expect(plain.flatMap { $0 }.map { short[$0] } == short.sorted())
        let mixed = [55_000] + Array(short.prefix(63))
        let batches = BatchPlan.byLength(mixed, batchSize: 64)
        #expect(batches == [Array(1...63).sorted { mixed[$0] != mixed[$1] ? mixed[$0] < mixed[$1] : $0 < $1 }, [0]])
        // Longer examples: smaller batches, none over the cap unless alone.
        let long = (0..<50).map { 100 + 97 * $0 }
        let cut = BatchPlan.byLength(long, batchSize: 64, maxSteps: 20_000)
        #expect(cut.flatMap { $0 }.sorted() == Array(0..<50))
        #expect(cut.allSatisfy { $0.count == 1 || $0.count * $0.map { long[$0] }.max()! <= 20_000 })
        #expect(cut.count > 1 && cut.first!.count > cut.last!.count)
    }
}
