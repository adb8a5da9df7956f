import Foundation

/// Decoding with a trained `Seq2Seq`: greedy (batched over sentences) and beam search (one
/// sentence at a time, batched over its hypotheses). Both start from `<sos>`, stop a sentence at
/// `<eos>` (not part of the output) or after `maxLength` words. Neither ever emits `<pad>` or
/// `<sos>`: their scores are set to −∞ before choosing (an undertrained model can rank them first).
extension Seq2Seq {
    /// Indices a translation never contains.
    static let neverEmitted = [TranslationVocabulary.padIndex, TranslationVocabulary.sosIndex]

    /// Sets the scores of `neverEmitted` words to −∞ in every row of (rows, V) logits.
    static func maskNeverEmitted(_ logits: inout Tensor, width V: Int) {
        for r in 0..<(logits.data.count / V) {
            for w in neverEmitted { logits.data[r * V + Int(w)] = -.infinity }
        }
    }

    /// The argmax word at every step, for all `sources` (word indices, without `<eos>`) at once.
    public func greedy(_ sources: [[Int32]], maxLength: Int) -> [[Int32]] {
        require(maxLength >= 0, "greedy: maxLength must be 0 or more, got \(maxLength)")
        if sources.isEmpty { return [] }
        var rng = SeededRNG(seed: 0)
        let B = sources.count, V = config.target.count
        let encoded = encode(Self.sourceBatch(sources), mode: .inference, rng: &rng)
        var state = encoded.state
        var tokens = [Int32](repeating: TranslationVocabulary.sosIndex, count: B)
        var output = [[Int32]](repeating: [], count: B)
        var done = [Bool](repeating: false, count: B)
        for _ in 0..<maxLength {
            let (raw, next, _) = decoderStep(tokens, state: state, memory: encoded.memory, mode: .inference, rng: &rng)
            var logits = raw
            Self.maskNeverEmitted(&logits, width: V)
            state = next
            for b in 0..<B {
                let w = Self.argmax(logits.data, row: b, width: V)
                tokens[b] = w
                if done[b] { continue }
                if w == TranslationVocabulary.eosIndex { done[b] = true } else { output[b].append(w) }
            }
            if !done.contains(false) { break }
        }
        return output
    }

    /// Greedy decoding in batches of `batchSize` sentences of similar length.
    public func greedy(_ sources: [[Int32]], maxLength: Int, batchSize: Int) -> [[Int32]] {
        var out = [[Int32]](repeating: [], count: sources.count)
        for chunk in BatchPlan.byLength(sources.map(\.count), batchSize: batchSize) {
            for (i, y) in zip(chunk, greedy(chunk.map { sources[$0] }, maxLength: maxLength)) { out[i] = y }
        }
        return out
    }

    /// Beam search with `beam` hypotheses and length-normalised scores.
    ///
    /// Each step extends every live hypothesis by its `beam` best words and keeps the `beam` best
    /// extensions by total log-probability; an extension ending in `<eos>` is finished instead,
    /// scored by its total log-probability divided by its length (words + `<eos>`). The search ends
    /// when `beam` hypotheses have finished or after `maxLength` steps (live hypotheses then count
    /// as finished with their own length). The best normalised score wins. With `beam` 1 this is
    /// exactly greedy decoding.
    public func beamSearch(_ source: [Int32], beam: Int, maxLength: Int) -> [Int32] {
        require(beam >= 1, "beamSearch: beam must be at least 1, got \(beam)")
        require(maxLength >= 0, "beamSearch: maxLength must be 0 or more, got \(maxLength)")
        var rng = SeededRNG(seed: 0)
        let V = config.target.count
        let encoded = encode(Self.sourceBatch([source]), mode: .inference, rng: &rng)
        struct Hypothesis { var words: [Int32]; var logProbability: Double }
        var live = [Hypothesis(words: [], logProbability: 0)]
        var state = encoded.state
        var finished: [(words: [Int32], score: Double)] = []
        for _ in 0..<maxLength {
            let n = live.count
            let memory = encoded.memory.rows([Int](repeating: 0, count: n))
            let tokens = live.map { $0.words.last ?? TranslationVocabulary.sosIndex }
            let (raw, next, _) = decoderStep(tokens, state: state, memory: memory, mode: .inference, rng: &rng)
            var logits = raw
            Self.maskNeverEmitted(&logits, width: V)
            var candidates: [(from: Int, word: Int32, logProbability: Double)] = []
            for h in 0..<n {
                let row = Array(logits.data[h * V ..< (h + 1) * V])
                let top = row.max() ?? 0
                let logSum = Double(top) + log(row.reduce(0.0) { $0 + exp(Double($1 - top)) })
                let best = Self.topIndices(row, beam)
                for w in best where row[w] > -.infinity { candidates.append((h, Int32(w), live[h].logProbability + Double(row[w]) - logSum)) }
            }
            candidates.sort { $0.logProbability != $1.logProbability ? $0.logProbability > $1.logProbability
                : ($0.from, $0.word) < ($1.from, $1.word) }
            var nextLive: [Hypothesis] = [], rows: [Int] = []
            for c in candidates {
                if finished.count >= beam || nextLive.count >= beam { break }
                if c.word == TranslationVocabulary.eosIndex {
                    let words = live[c.from].words
                    finished.append((words, c.logProbability / Double(words.count + 1)))
                } else {
                    nextLive.append(Hypothesis(words: live[c.from].words + [c.word], logProbability: c.logProbability))
                    rows.append(c.from)
                }
            }
            if finished.count >= beam || nextLive.isEmpty { live = []; break }
            live = nextLive
            state = Self.gatherRows(next, rows)
        }
        for h in live { finished.append((h.words, h.logProbability / Double(max(h.words.count, 1)))) }
        var best = 0
        for i in finished.indices where finished[i].score > finished[best].score { best = i }
        return finished.isEmpty ? [] : finished[best].words
    }

    /// The indices of the `k` largest values, largest first (ties: lower index first), in O(n·k).
    static func topIndices(_ values: [Float], _ k: Int) -> [Int] {
        var top: [Int] = []
        for i in values.indices {
            if top.count == k, let last = top.last, values[i] <= values[last] { continue }
            var j = top.count
            while j > 0 && values[top[j - 1]] < values[i] { j -= 1 }
            top.insert(i, at: j)
            if top.count > k { top.removeLast() }
        }
        return top
    }

    /// The given batch rows of a state (L,B,H) → (L,rows,H).
    static func gatherRows(_ state: RecurrentState, _ rows: [Int]) -> RecurrentState {
        func gather(_ t: Tensor) -> Tensor {
            let L = t.shape[0], B = t.shape[1], H = t.shape[2]
            var out = Tensor(shape: [L, rows.count, H])
            for l in 0..<L {
                for (i, r) in rows.enumerated() {
                    out.data.replaceSubrange((l * rows.count + i) * H ..< (l * rows.count + i + 1) * H,
                                             with: t.data[(l * B + r) * H ..< (l * B + r + 1) * H])
                }
            }
            return out
        }
        return RecurrentState(hidden: gather(state.hidden), cell: state.cell.map(gather))
    }

    /// Translates word lists: greedy when `beam` is 1, else beam search per sentence. Returns words.
    public func translate(_ sentences: [[String]], beam: Int = 1, maxLength: Int) -> [[String]] {
        let sources = sentences.map { config.source.encode($0) }
        let indices = beam <= 1 ? greedy(sources, maxLength: maxLength, batchSize: 64)
            : sources.map { beamSearch($0, beam: beam, maxLength: maxLength) }
        return indices.map { $0.map { config.target.tokens[Int($0)] } }
    }
}
