import Foundation

/// Corpus BLEU-4 with sacreBLEU's defaults (one reference per sentence): the 13a tokenisation,
/// clipped n-gram counts for n = 1…4 summed over the corpus, the "exp" smoothing of zero counts,
/// and the brevity penalty. The score is 0…100, as sacreBLEU prints it.
///
///     p_n = 100·correct_n / total_n   (correct_n = 0: p_n = 100 / (2^k · total_n), k-th such order)
///     BP  = 1 if c ≥ r else exp(1 − r/c)   (c, r: hypothesis and reference words; 0 when c = 0)
///     BLEU = BP · exp(Σ_n log p_n / 4)      (0 when no n-gram matches at all)
public enum BLEU {
    /// The sufficient statistics of a corpus.
    public struct Statistics: Sendable, Equatable {
        public var correct = [Int](repeating: 0, count: 4)
        public var total = [Int](repeating: 0, count: 4)
        public var hypothesisLength = 0
        public var referenceLength = 0
        public init() {}
    }

    /// Corpus BLEU (0…100) of `hypotheses` against `references` (one each, same order).
    public static func corpus(hypotheses: [String], references: [String]) -> Double {
        score(statistics(hypotheses: hypotheses, references: references))
    }

    public static func statistics(hypotheses: [String], references: [String]) -> Statistics {
        require(hypotheses.count == references.count, "one reference per hypothesis")
        var s = Statistics()
        for (h, r) in zip(hypotheses, references) {
            let hyp = tokenize13a(h).splitScalars { $0 == " " }
            let ref = tokenize13a(r).splitScalars { $0 == " " }
            s.hypothesisLength += hyp.count
            s.referenceLength += ref.count
            for n in 1...4 {
                let hc = ngrams(hyp, n), rc = ngrams(ref, n)
                for (g, c) in hc {
                    s.total[n - 1] += c
                    s.correct[n - 1] += min(c, rc[g] ?? 0)
                }
            }
        }
        return s
    }

    /// BLEU from corpus statistics (sacreBLEU's `compute_bleu` with smooth_method "exp").
    public static func score(_ s: Statistics) -> Double {
        let c = Double(s.hypothesisLength), r = Double(s.referenceLength)
        let bp = c < r ? (c > 0 ? exp(1 - r / c) : 0) : 1
        if s.correct.allSatisfy({ $0 == 0 }) { return 0 }
        var precisions = [Double](repeating: 0, count: 4)
        var smooth = 1.0
        for n in 0..<4 {
            if s.total[n] == 0 { break }
            if s.correct[n] == 0 {
                smooth *= 2
                precisions[n] = 100 / (smooth * Double(s.total[n]))
            } else {
                precisions[n] = 100 * Double(s.correct[n]) / Double(s.total[n])
            }
        }
        // sacreBLEU's my_log(0) = −9999999999: an order with no n-grams at all sinks the score to 0.
        let logs = precisions.map { $0 == 0 ? -9_999_999_999 : log($0) }
        return bp * exp(logs.reduce(0, +) / 4)
    }

    /// Counts of the n-grams, matched by exact scalars as sacreBLEU's Python strings are.
    static func ngrams(_ words: [String], _ n: Int) -> [ExactString: Int] {
        var counts: [ExactString: Int] = [:]
        if words.count < n { return counts }
        for i in 0...(words.count - n) { counts[ExactString(words[i..<(i + n)].joined(separator: " ")), default: 0] += 1 }
        return counts
    }

    /// mteval-v13a's tokenisation (sacreBLEU's `13a`): drop `<skipped>`, join "-\n", unescape
    /// &quot; &amp; &lt; &gt;, then space out ASCII punctuation except `'`, `-`, `.`, `,`; space out
    /// `.` and `,` unless between digits; split `-` after a digit; collapse whitespace.
    public static func tokenize13a(_ line: String) -> String {
        var s = line
        while let last = s.unicodeScalars.last, last.isPythonSpace { s.unicodeScalars.removeLast() }  // rstrip
        s = s.replacingOccurrences(of: "<skipped>", with: "").replacingOccurrences(of: "-\n", with: "")
            .replacingOccurrences(of: "\n", with: " ")
        if s.contains("&") {
            s = s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        }
        s = " " + s + " "
        for (regex, template) in rules {
            s = regex.stringByReplacingMatches(in: s, options: [], range: NSRange(s.startIndex..., in: s), withTemplate: template)
        }
        return s.splitScalars { $0.isPythonSpace }.joined(separator: " ")   // Python's " ".join(s.split())
    }

    private static let rules: [(NSRegularExpression, String)] = [
        (#"([\{-\~\[-\` -\&\(-\+\:-\@\/])"#, " $1 "),
        (#"([^0-9])([\.,])"#, "$1 $2 "),
        (#"([\.,])([^0-9])"#, " $1 $2"),
        (#"([0-9])(-)"#, "$1 $2 "),
    ].map { pattern, template in
        guard let r = try? NSRegularExpression(pattern: pattern) else { fatalError("bad 13a pattern \(pattern)") }
        return (r, template)
    }
}
