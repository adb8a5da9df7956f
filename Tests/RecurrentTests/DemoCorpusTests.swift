import Testing
@testable import Recurrent

@Suite struct DemoCorpusTests {
    @Test func deterministic() {
        var a = SeededRNG(seed: 7), b = SeededRNG(seed: 7), c = SeededRNG(seed: 8)
        let x = DemoCorpus.generate(characters: 5_000, rng: &a)
        #expect(x == DemoCorpus.generate(characters: 5_000, rng: &b))
        #expect(x != DemoCorpus.generate(characters: 5_000, rng: &c))
    }

    @Test func shapeOfTheCorpus() {
        var rng = SeededRNG(seed: 1)
        let text = DemoCorpus.generate(characters: 200_000, rng: &rng)
        #expect(text.utf8.count >= 200_000 && text.utf8.count <= 200_081)
        #expect(text.hasSuffix("\n"))
        let vocab = CharVocabulary(text: Array(text.unicodeScalars))
        #expect(vocab.count == 22)
        let lines = text.split(separator: "\n")
        #expect(lines.allSatisfy { (10...80).contains($0.utf8.count) })
        // Lengths vary, and nesting reaches every depth up to the maximum.
        let lengths = lines.map { $0.utf8.count }
        #expect(Set(lengths).count > 50)
        var depthCounts = [Int](repeating: 0, count: 6)
        for line in lines {
            var depth = 0, deepest = 0, inQuote = false
            for c in line.utf8 {
                if c == UInt8(ascii: "\"") { inQuote.toggle() } else if !inQuote {
                    if "([{".utf8.contains(c) { depth += 1; deepest = max(deepest, depth) }
                    if ")]}".utf8.contains(c) { depth -= 1 }
                }
            }
            depthCounts[deepest] += 1
        }
        #expect(depthCounts[0] == 0 && depthCounts[5] == 0)
        for d in 1...4 { #expect(depthCounts[d] > lines.count / 20, "depth \(d): \(depthCounts)") }
    }

    @Test(arguments: [1, 2, 4, 6])
    func ownLinesAllWellFormed(maxDepth: Int) {
        var rng = SeededRNG(seed: UInt64(maxDepth))
        let text = DemoCorpus.generate(characters: 100_000, maxDepth: maxDepth, rng: &rng)
        let r = StructureReport.measure(text)
        #expect(r.lines == text.split(separator: "\n").count)
        #expect(r.wellFormedLines == r.lines)
        #expect(r.correctClosers == r.closers && r.closers > 1000)
        #expect(r.closerAccuracy == 1 && r.wellFormedShare == 1)
    }
}

@Suite struct StructureReportTests {
    @Test func bracketsInsideQuotesIgnored() {
        let r = StructureReport.measure("(a, \"b) ]{\", [c])\n")
        #expect(r == StructureReport(closers: 2, correctClosers: 2, lines: 1, wellFormedLines: 1))
    }

    @Test func mismatchedCloserCountedWrong() {
        let r = StructureReport.measure("(a, [b)]\n")
        #expect(r.closers == 2 && r.correctClosers == 0)  // ')' closes '[' wrongly, ']' then closes '(' wrongly
        #expect(r.lines == 1 && r.wellFormedLines == 0)
        let extra = StructureReport.measure("(a))\n")
        #expect(extra == StructureReport(closers: 2, correctClosers: 1, lines: 1, wellFormedLines: 0))
        #expect(extra.closerAccuracy == 0.5)
    }

    @Test func unclosedAndUnbalancedLines() {
        #expect(StructureReport.measure("(a, [b]\n").wellFormedLines == 0)          // '(' left open
        #expect(StructureReport.measure("(a, \"b)\n").wellFormedLines == 0)       // open quote
        #expect(StructureReport.measure("abc\n").wellFormedLines == 0)             // no brackets at all
        let r = StructureReport.measure("(a)\n{b\n[c]\n(d")                         // state resets per line
        #expect(r == StructureReport(closers: 2, correctClosers: 2, lines: 3, wellFormedLines: 2))
        #expect(r.wellFormedShare == 2.0 / 3.0)
        #expect(StructureReport.measure("x)").closers == 1)                           // incomplete last line still counts closers
        #expect(StructureReport.measure("").closerAccuracy == 0)
        #expect(StructureReport.measure("").wellFormedShare == 0)
    }
}
