import Foundation
import Testing
@testable import Recurrent

@Suite struct TranslationDataTests {
    @Test func normalizationFollowsTheTutorial() {
        #expect(TranslationData.normalize("J'ai froid.") == "j ai froid .")
        #expect(TranslationData.normalize("  Ça va?!  ") == "ca va ? !")
        #expect(TranslationData.normalize("I'm 25 years old.") == "i m years old .")
        #expect(TranslationData.normalize("¿Qué?") == "que ?")
        #expect(TranslationData.normalize("Élève...") == "eleve . . .")
        #expect(TranslationData.normalize("123") == "")
    }

    @Test func readsPairsWithCRLFExtraColumnsAndNoFinalNewline() throws {
        let text = "I am cold.\tJ'ai froid.\tCC-BY 2.0\r\nHe is tall.\tIl est grand.\r\n\r\nGo.\tVa !"
        let lines = try TextLines.split(Array(text.utf8), name: "p.tsv")
        let pairs = try TranslationData.parse(lines, name: "p.tsv", filter: TranslationFilter(), reverse: false)
        #expect(pairs.map(\.source) == [["i", "am", "cold", "."], ["he", "is", "tall", "."], ["go", "."]])
        #expect(pairs.map(\.target) == [["j", "ai", "froid", "."], ["il", "est", "grand", "."], ["va", "!"]])
        #expect(pairs.map(\.line) == [1, 2, 4])
        let reversed = try TranslationData.parse(lines, name: "p.tsv", filter: TranslationFilter(), reverse: true)
        #expect(reversed[0].source == ["j", "ai", "froid", "."])
    }

    @Test func tutorialFilterKeepsShortPairsWithEnglishPrefixes() throws {
        let text = """
        I am cold.\tJ'ai froid.
        I'm very, very, very, very, very, very cold.\tJ'ai très froid.
        Go.\tVa !
        They're here.\tIls sont là.
        He's a teacher.\tIl est professeur.
        """
        let lines = try TextLines.split(Array(text.utf8), name: "p.tsv")
        let pairs = try TranslationData.parse(lines, name: "p.tsv", filter: .tutorial, reverse: true)
        #expect(pairs.map(\.line) == [1, 4, 5])
        #expect(pairs[0].target == ["i", "am", "cold", "."])
        let short = try TranslationData.parse(lines, name: "p.tsv", filter: TranslationFilter(maxWords: 2), reverse: false)
        #expect(short.map(\.line) == [3])
    }

    @Test func badPairsNameTheFileAndLine() throws {
        func error(_ text: String, filter: TranslationFilter = TranslationFilter()) -> String {
            do {
                _ = try TranslationData.parse(try TextLines.split(Array(text.utf8), name: "p.tsv"), name: "p.tsv", filter: filter, reverse: false)
                return "no error"
            } catch let e as RecurrentError { return e.message } catch { return "\(error)" }
        }
        #expect(error("a\tb\n\tc\n") == "p.tsv:2: the source side is empty")
        #expect(error("a\tb\nc\t  \n") == "p.tsv:2: the target side is empty")
        #expect(error("a\tb\nc d\n") == "p.tsv:2: expected source<TAB>target, found no tab")
        #expect(error("a\t123\n") == "p.tsv:1: the target side has no words after normalisation")
        #expect(error("a b c\td\n", filter: TranslationFilter(maxWords: 2)).contains("none of its 1 pairs pass the filter"))
        #expect(error("\n\n").contains("no pairs"))
    }

    @Test func splitIsSeededDisjointAndComplete() {
        let a = TranslationData.split(count: 100, testFraction: 0.1, validFraction: 0.05, seed: 4)
        let b = TranslationData.split(count: 100, testFraction: 0.1, validFraction: 0.05, seed: 4)
        #expect(a.test == b.test && a.valid == b.valid)
        #expect(a.test.count == 10 && a.valid.count == 5 && a.train.count == 85)
        #expect(Set(a.test + a.valid + a.train).count == 100)
        #expect(TranslationData.split(count: 100, testFraction: 0.1, validFraction: 0.05, seed: 5).test != a.test)
    }

    @Test func vocabularyReservesSpecialTokens() {
        let v = TranslationVocabulary.make(counting: [["b", "a", "b"], ["<eos>", "c"]])
        #expect(Array(v.tokens.prefix(5)) == ["<pad>", "<unk>", "<sos>", "<eos>", "b"])
        #expect(TranslationVocabulary.isValid(v))
        #expect(!v.tokens.dropFirst(4).contains("<eos>"))
    }
}

@Suite struct BLEUTests {
    @Test func tokenizer13aSplitsPunctuationLikeSacreBLEU() {
        #expect(BLEU.tokenize13a("Hello, world!") == "Hello , world !")
        #expect(BLEU.tokenize13a("It costs $3.50, ok?") == "It costs $ 3.50 , ok ?")
        #expect(BLEU.tokenize13a("l'homme (vieux) a-t-il 1-2 &amp; \"x\".") == "l'homme ( vieux ) a-t-il 1 - 2 & \" x \" .")
        #expect(BLEU.tokenize13a("  a   b  ") == "a b")
    }

    @Test func perfectAndEmptyTranslations() {
        #expect(abs(BLEU.corpus(hypotheses: ["the cat sat on the mat"], references: ["the cat sat on the mat"]) - 100) < 1e-9)
        #expect(BLEU.corpus(hypotheses: [""], references: ["the cat"]) == 0)
        #expect(BLEU.corpus(hypotheses: ["x y z w"], references: ["a b c d"]) == 0)
    }

    @Test func handComputedCorpusScore() {
        // hyp "the cat sat on mat" (5 words), ref "the cat sat on the mat" (6 words):
        // 1-grams 5/5, 2-grams 3/4 (the cat, cat sat, sat on), 3-grams 2/3, 4-grams 1/2;
        // BP = exp(1 − 6/5); BLEU = BP · (1 · 3/4 · 2/3 · 1/2)^(1/4) · 100.
        let expected = exp(1 - 6.0 / 5) * pow(1 * 0.75 * (2.0 / 3) * 0.5, 0.25) * 100
        let got = BLEU.corpus(hypotheses: ["the cat sat on mat"], references: ["the cat sat on the mat"])
        #expect(abs(got - expected) < 1e-9, "\(got) vs \(expected)")
        // Corpus statistics add up over sentences before the ratio is taken.
        let s = BLEU.statistics(hypotheses: ["a b c d", "e f"], references: ["a b c d", "e g"])
        #expect(s.correct == [5, 3, 2, 1] && s.total == [6, 4, 2, 1])
    }

    @Test func expSmoothingOfZeroCounts() {
        // hyp "a b c x y" vs ref "a b c d e": 1-grams 3/5, 2-grams 2/4, 3-grams 1/3, 4-grams 0/2 → 100/(2·2).
        let expected = exp((log(60.0) + log(50.0) + log(100.0 / 3) + log(25.0)) / 4)
        let got = BLEU.corpus(hypotheses: ["a b c x y"], references: ["a b c d e"])
        #expect(abs(got - expected) < 1e-9, "\(got) vs \(expected)")
        // Value from sacrebleu 2.x: sacrebleu.corpus_bleu(["a b c x y"], [["a b c d e"]]).score
        #expect(abs(got - 39.76353643835253) < 1e-6)
    }
}
