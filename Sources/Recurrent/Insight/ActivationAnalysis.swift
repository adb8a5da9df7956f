import Foundation

/// What a char-LM does while it reads a text: every unit's hidden (and LSTM cell) value at every
/// character, how well each unit tracks simple properties of the text, how often each gate is
/// saturated, and the model's top-5 guesses for every next character.
///
/// Two passes over the text, each in chunks of `chunk` characters with the state carried (so the
/// result is one long forward pass in bounded memory): the first accumulates the correlation sums
/// and gate counts of every unit; the second keeps the values of the `stored` units only, the most
/// interpretable first, because those are what a page can afford to hold for a long text.
///
/// Series: layer l (0-based), kind h or c, unit j; index s = (l·K + kind)·H + j with K = 2 for LSTM
/// (h, c) and 1 otherwise. Values at position t are the state after reading character t.
public struct ActivationAnalysis: Sendable {
    public struct Series: Sendable {
        public var layer: Int
        /// The LSTM cell state c rather than the hidden state h.
        public var isCell: Bool
        public var unit: Int
        /// Pearson's r with each `TextProperty.allCases`, in that order.
        public var correlations: [Double]
        /// The property with the largest |r|.
        public var best: (property: TextProperty, r: Double) {
            let i = correlations.indices.max { abs(correlations[$0]) < abs(correlations[$1]) } ?? 0
            return (TextProperty.allCases[i], correlations.isEmpty ? 0 : correlations[i])
        }
        /// "layer 1 cell 17" (1-based layer, 0-based unit as in the weight rows).
        public var label: String { "layer \(layer + 1) \(isCell ? "cell" : "hidden") \(unit)" }
    }

    /// Gate saturation of one gate of one layer: per unit, the fraction of characters with the
    /// gate below 0.1 (left) and above 0.9 (right).
    public struct GateSaturation: Sendable {
        public var layer: Int
        public var gate: String
        public var left: [Double]
        public var right: [Double]
    }

    public var config: CharLMConfig
    /// The analysed text (N characters).
    public var text: [Unicode.Scalar]
    public var characters: Int { text.count }
    public var series: [Series]
    public var gates: [GateSaturation]
    /// Indices into `series` of the stored units, most interpretable (largest |r|) first.
    public var stored: [Int]
    /// values[i][t]: series stored[i] at character t.
    public var values: [[Float]]
    /// Per character, the 5 likeliest next characters (vocabulary indices) and their probabilities.
    public var topIndices: [Int32]
    public var topProbabilities: [Float]

    /// The gates whose saturation is counted: LSTM σi, σf, σo (slots 0, 1, 3 of i,f,g,o); GRU r, z.
    static func countedGates(_ kind: CellKind) -> [(name: String, slot: Int)] {
        switch kind {
        case .lstm: return [("input gate", 0), ("forget gate", 1), ("output gate", 3)]
        case .gru: return [("reset gate", 0), ("update gate", 1)]
        case .rnnTanh, .rnnRelu: return []
        }
    }

    /// The fewest characters that must differ from a property's most common value for its
    /// correlations to count (see `run`).
    public static let minVarying = 10

    /// Runs the analysis.
    ///
    /// - Parameters:
    ///   - tokens: the text encoded with the model's vocabulary; `text` the same characters.
    ///   - storedUnits: how many series to keep values of (clamped to the number of series).
    ///   - chunk: characters per forward pass.
    public static func run(model: CharLM, tokens: [Int32], text: [Unicode.Scalar], storedUnits: Int, chunk: Int = 1024) -> ActivationAnalysis {
        require(tokens.count == text.count && !tokens.isEmpty, "tokens and text must match and be non-empty")
        require(chunk > 0, "ActivationAnalysis.run: chunk must be at least 1 character, got \(chunk)")
        let cfg = model.config, N = tokens.count, H = cfg.hiddenSize, L = cfg.numLayers
        let K = cfg.cell.hasCellState ? 2 : 1, S = L * K * H
        let props = TextProperty.allCases.map { $0.values(text) }
        let P = props.count
        var sx = [Double](repeating: 0, count: S), sxx = sx
        var sxy = [Double](repeating: 0, count: S * P)
        let gateList = countedGates(cfg.cell)
        var leftCount = [Int](repeating: 0, count: L * gateList.count * H), rightCount = leftCount
        var topIndices = [Int32](repeating: 0, count: N * 5)
        var topProbabilities = [Float](repeating: 0, count: N * 5)

        // Pass 1: sums for every series, gate counts, top-5 guesses.
        sweep(model: model, tokens: tokens, chunk: chunk) { t0, n, l, hiddens, cells, gates, logits in
            for k in 0..<K {
                guard let buf = k == 0 ? hiddens : cells else { continue }
                let base = (l * K + k) * H
                for t in 0..<n {
                    let row = buf + (t + 1) * H
                    for j in 0..<H {
                        let x = Double(row[j])
                        sx[base + j] += x
                        sxx[base + j] += x * x
                    }
                    for p in 0..<P {
                        let y = Double(props[p][t0 + t])
                        if y == 0 { continue }
                        for j in 0..<H { sxy[(base + j) * P + p] += Double(row[j]) * y }
                    }
                }
            }
            if let gates {
                let GH = cfg.cell.gateCount * H
                for (gi, gate) in gateList.enumerated() {
                    let base = (l * gateList.count + gi) * H
                    for t in 0..<n {
                        let g = gates + t * GH + gate.slot * H
                        for j in 0..<H {
                            if g[j] < 0.1 { leftCount[base + j] += 1 } else if g[j] > 0.9 { rightCount[base + j] += 1 }
                        }
                    }
                }
            }
            if let logits { top5(logits, rows: n, vocabulary: cfg.vocabulary.count, into: &topIndices, &topProbabilities, at: t0) }
        }

        // Pearson's r from the sums: (nΣxy − ΣxΣy) / √((nΣx² − (Σx)²)(nΣy² − (Σy)²)). A property
        // that at most `minVarying` − 1 characters take away from its most common value (every
        // correlation over two characters is ±1; a text of one letter has one word start) says
        // nothing about a unit: its r is 0.
        let n = Double(N)
        let informative = props.map { values -> Bool in
            var counts: [Float: Int] = [:]
            for v in values { counts[v, default: 0] += 1 }
            return N - (counts.values.max() ?? N) >= Self.minVarying
        }
        let sy = props.map { $0.reduce(0.0) { $0 + Double($1) } }
        let syy = props.map { $0.reduce(0.0) { $0 + Double($1) * Double($1) } }
        var series: [Series] = []
        series.reserveCapacity(S)
        for l in 0..<L {
            for k in 0..<K {
                for j in 0..<H {
                    let s = (l * K + k) * H + j
                    let vx = n * sxx[s] - sx[s] * sx[s]
                    let rs: [Double] = (0..<P).map { p in
                        let vy = n * syy[p] - sy[p] * sy[p]
                        guard informative[p], vx > 1e-12 * max(1, n * sxx[s]), vy > 0 else { return 0 }
                        return max(-1, min(1, (n * sxy[s * P + p] - sx[s] * sy[p]) / (vx * vy).squareRoot()))
                    }
                    series.append(Series(layer: l, isCell: k == 1, unit: j, correlations: rs))
                }
            }
        }
        var gates: [GateSaturation] = []
        for l in 0..<L {
            for (gi, gate) in gateList.enumerated() {
                let base = (l * gateList.count + gi) * H
                gates.append(GateSaturation(layer: l, gate: gate.name, left: (0..<H).map { Double(leftCount[base + $0]) / n },
                                            right: (0..<H).map { Double(rightCount[base + $0]) / n }))
            }
        }

        // Pass 2: the values of the most interpretable series.
        let ranked = series.indices.sorted { abs(series[$0].best.r) > abs(series[$1].best.r) || (abs(series[$0].best.r) == abs(series[$1].best.r) && $0 < $1) }
        let stored = Array(ranked.prefix(max(1, min(storedUnits, S))))
        var slotOf = [Int](repeating: -1, count: S)
        for (i, s) in stored.enumerated() { slotOf[s] = i }
        var values = [[Float]](repeating: [Float](repeating: 0, count: N), count: stored.count)
        sweep(model: model, tokens: tokens, chunk: chunk, wantLogits: false) { t0, n, l, hiddens, cells, _, _ in
            for k in 0..<K {
                guard let buf = k == 0 ? hiddens : cells else { continue }
                for j in 0..<H {
                    let i = slotOf[(l * K + k) * H + j]
                    if i < 0 { continue }
                    for t in 0..<n { values[i][t0 + t] = buf[(t + 1) * H + j] }
                }
            }
        }
        return ActivationAnalysis(config: cfg, text: text, series: series, gates: gates, stored: stored, values: values,
                                  topIndices: topIndices, topProbabilities: topProbabilities)
    }

    /// Runs the model over `tokens` in chunks (batch 1, state carried) and calls `body` per chunk
    /// and layer with: the chunk's first position, its length n, the layer, hiddens (n+1,H)
    /// (slot 0 the state before the chunk), cells (LSTM), gates (n,G·H), and, for the last layer,
    /// the logits (n,V) when `wantLogits`.
    static func sweep(model: CharLM, tokens: [Int32], chunk: Int, wantLogits: Bool = true,
                      body: (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void) {
        var rng = SeededRNG(seed: 0)
        var state: RecurrentState?
        var t0 = 0
        let L = model.config.numLayers, H = model.config.hiddenSize
        while t0 < tokens.count {
            let n = min(chunk, tokens.count - t0)
            let x = model.embedding.forward(Array(tokens[t0..<t0 + n]), shape: [1, n])
            let (y, s, cacheOrNil) = model.rnn.forward(x, state: state, mode: .training, rng: &rng, applyingDropout: false)
            guard let cache = cacheOrNil else { fatalError("training forward returns a cache") }
            let logits = wantLogits ? model.head.forward(y.reshaped([n, H])) : nil
            for l in 0..<L {
                cache.withTrace(layer: l) { hiddens, cells, gates in
                    guard let hp = hiddens.baseAddress else { return }
                    let lastLogits = l == L - 1 ? logits : nil
                    lastLogits.withPointer { lp in body(t0, n, l, hp, cells?.baseAddress, gates?.baseAddress, lp) }
                }
            }
            state = s
            t0 += n
        }
    }

    /// The 5 largest softmax probabilities of each row of `logits` (rows × V), written at row t0 + r.
    static func top5(_ logits: UnsafePointer<Float>, rows: Int, vocabulary V: Int, into indices: inout [Int32], _ probabilities: inout [Float], at t0: Int) {
        for r in 0..<rows {
            let z = logits + r * V
            var m = -Float.infinity
            for v in 0..<V where z[v] > m { m = z[v] }
            var sum: Float = 0
            for v in 0..<V { sum += Foundation.exp(z[v] - m) }
            var best: [(Int32, Float)] = []
            for v in 0..<V {
                let p = Foundation.exp(z[v] - m) / sum
                if best.count < 5 || p > best[best.count - 1].1 {
                    best.append((Int32(v), p))
                    best.sort { $0.1 > $1.1 }
                    if best.count > 5 { best.removeLast() }
                }
            }
            for (k, b) in best.enumerated() {
                indices[(t0 + r) * 5 + k] = b.0
                probabilities[(t0 + r) * 5 + k] = b.1
            }
        }
    }
}

extension Optional where Wrapped == Tensor {
    /// Calls `body` with a pointer to the tensor's data, or nil.
    fileprivate func withPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let t): return t.data.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}
