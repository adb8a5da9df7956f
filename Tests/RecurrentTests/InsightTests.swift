import Foundation
import Testing
@testable import Recurrent

@Suite struct InsightStatisticsTests {
    @Test func pearsonKnownValues() {
        #expect(abs(InsightStatistics.pearson([1, 2, 3, 4], [3, 5, 7, 9]) - 1) < 1e-12)
        #expect(abs(InsightStatistics.pearson([1, 2, 3, 4], [4, 3, 2, 1]) + 1) < 1e-12)
        // dx = dy = (−1.5, ∓0.5, ±0.5, 1.5): Σdxdy = 4, Σdx² = Σdy² = 5, r = 0.8.
        #expect(abs(InsightStatistics.pearson([1, 2, 3, 4], [1, 3, 2, 4]) - 0.8) < 1e-12)
        #expect(InsightStatistics.pearson([1, 1, 1], [1, 2, 3]) == 0)
        #expect(InsightStatistics.pearson([], []) == 0)
    }

    /// A synthetic "unit" that is the quote indicator plus noise of known size: r = 1/√(1 + σ²/p(1−p)).
    @Test func unitTrackingQuotesIsFound() {
        let text = Array(String(repeating: "he said \"go home\" and left. ", count: 200).unicodeScalars)
        let quotes = TextProperty.insideQuotes.values(text)
        let p = Double(quotes.reduce(0, +)) / Double(quotes.count)
        var rng = SeededRNG(seed: 3)
        let sigma: Float = 0.3
        let unit = quotes.map { $0 + sigma * rng.normal() }
        let expected = 1 / (1 + Double(sigma * sigma) / (p * (1 - p))).squareRoot()
        let r = InsightStatistics.pearson(unit, quotes)
        #expect(abs(r - expected) < 0.02, "r \(r), expected \(expected)")
        #expect(abs(InsightStatistics.pearson(unit, TextProperty.vowel.values(text))) < 0.3)
    }

    @Test func textProperties() {
        let text = Array("ab \"c(d)\"\nxe".unicodeScalars)
        #expect(TextProperty.insideQuotes.values(text) == [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0])
        #expect(TextProperty.bracketDepth.values(text) == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
        #expect(TextProperty.positionInLine.values(text) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2])
        #expect(TextProperty.wordStart.values(text) == [1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0])
        #expect(TextProperty.vowel.values(text) == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    }

    @Test func saturationFractions() {
        let s = InsightStatistics.saturation([0.05, 0.5, 0.95, 0.92, 0.0, 0.1, 0.9, 0.3])
        #expect(s.left == 2.0 / 8 && s.right == 2.0 / 8)
        let strided: [Float] = [0.0, 1, 0.95, 1, 0.5, 1]
        let t = strided.withUnsafeBufferPointer { InsightStatistics.saturation($0, stride: 2) }
        #expect(abs(t.left - 1.0 / 3) < 1e-12 && abs(t.right - 1.0 / 3) < 1e-12)
    }
}

@Suite struct GradientFlowTests {
    /// A one-layer RNN with W_ih = 0, W_hh = w·I and the given bias on b_ih.
    func diagonalRNN(_ kind: CellKind, hidden H: Int, w: Float, bias: Float) -> RecurrentLayer {
        var rng = SeededRNG(seed: 1)
        let layer = RecurrentLayer(kind: kind, inputSize: 3, hiddenSize: H, numLayers: 1, rng: &rng)
        layer.parameters[0].value.zero()
        layer.parameters[1].value.zero()
        for j in 0..<H { layer.parameters[1].value.data[j * H + j] = w }
        for j in 0..<H { layer.parameters[2].value.data[j] = bias }
        layer.parameters[3].value.zero()
        return layer
    }

    func probes(_ S: Int, _ T: Int, _ H: Int) -> (Tensor, Tensor) { GradientFlow.probes(sequences: S, length: T, input: 3, hidden: H, seed: 5) }

    /// relu(h + b) with h, b > 0 is linear with slope 1, so with W_hh = I the gradient keeps its norm.
    @Test func identityLinearRNNKeepsTheNorm() {
        let T = 20, H = 6
        let layer = diagonalRNN(.rnnRelu, hidden: H, w: 1, bias: 0.5)
        let (x, u) = probes(3, T, H)
        let norms = GradientFlow.hiddenGradientNorms(layer: layer, x: x, dFinal: u)[0]
        #expect(norms.count == T)
        for n in norms { #expect(abs(n - 1) < 1e-5) }
    }

    /// tanh with W_hh = εI, no input and no bias stays at h = 0, where tanh' = 1: the norm is ε^(T−t).
    @Test func smallTanhWeightsVanishGeometrically() {
        let T = 12, H = 5
        let eps: Float = 0.5
        let layer = diagonalRNN(.rnnTanh, hidden: H, w: eps, bias: 0)
        let (x, u) = probes(2, T, H)
        let norms = GradientFlow.hiddenGradientNorms(layer: layer, x: x, dFinal: u)[0]
        for (k, n) in norms.enumerated() { #expect(abs(n / pow(Double(eps), Double(k)) - 1) < 1e-4, "k \(k): \(n)") }
        let curve = GradientFlow.Curve(name: "t", norms: norms)
        #expect(abs((curve.factorPerStep ?? 0) - Double(eps)) < 1e-4)
        #expect(curve.stepsBelow(1e-3) == 10)  // 0.5^10 ≈ 9.8e-4
    }

    /// relu with W_hh = 3I: the states leave Float's range after about 81 steps (3⁸¹ > 3.4e38), and the
    /// gradients through them (0 here, from NaN states) must not read as "below 10⁻³".
    @Test func overflowIsNotVanishing() {
        let T = 120, H = 4
        let layer = diagonalRNN(.rnnRelu, hidden: H, w: 3, bias: 0.5)
        let (x, u) = probes(1, T, H)
        let overflow = GradientFlow.forwardOverflowStep(layer: layer, x: x)
        #expect((75...90).contains(overflow ?? 0), "forward overflow at \(overflow ?? -1)")
        let curve = GradientFlow.Curve(name: "relu 3I", norms: GradientFlow.hiddenGradientNorms(layer: layer, x: x, dFinal: u)[0], forwardOverflow: overflow)
        #expect(curve.stepsBelow(1e-3) == nil && curve.factorPerStep == nil)
        let json = GradientFlow.json([curve], meta: [])
        #expect(json.contains("\"forward_overflow_step\": \(overflow ?? -1)") && json.contains("\"steps_to_overflow\": null"))
        // Past t = T every norm goes through overflowed states: null, never a 0 that reads as measured.
        #expect(json.contains("\"norms\": [1, null, null") && curve.overflowStep == nil)
        #expect(GradientFlow.forwardOverflowStep(layer: diagonalRNN(.rnnRelu, hidden: H, w: 1, bias: 0.5), x: x) == nil)
        // A gradient that overflows on its own: nothing after the first inf counts.
        let exploding = GradientFlow.Curve(name: "e", norms: [1, 1e20, .infinity, .nan, 0, 0])
        #expect(exploding.overflowStep == 2 && exploding.stepsBelow(1e-3) == nil && exploding.factorPerStep == nil)
        // A gradient that vanishes below Float's range: the factor over the stretch before the zeros.
        let vanishing = GradientFlow.Curve(name: "v", norms: [1, 0.5, 0.25, 0.125, 0, 0])
        #expect(abs((vanishing.factorPerStep ?? 0) - 0.5) < 1e-12 && vanishing.stepsBelow(0.2) == 3)
    }

    /// The sigmoid RNN with W_hh = εI and no input settles at h* = σ(ε h*), where each step back
    /// multiplies the gradient by ε·h*(1 − h*).
    @Test func sigmoidRateMatchesTheFixedPoint() {
        let T = 30, H = 4
        let eps: Float = 0.8
        let layer = diagonalRNN(.rnnTanh, hidden: H, w: eps, bias: 0)
        let (x, u) = probes(1, T, H)
        let norms = GradientFlow.elmanNorms(layer: layer, x: x, dFinal: u, activation: .sigmoid)
        var h = 0.5
        for _ in 0..<200 { h = 1 / (1 + exp(-Double(eps) * h)) }
        let rate = Double(eps) * h * (1 - h)
        #expect(abs(norms[1] / norms[0] - rate) < 1e-6)
        #expect(abs(norms[2] / norms[1] - rate) < 1e-6)
    }

    /// The plain-loop reference with tanh agrees with the real layer's backward on random weights.
    @Test func plainLoopAgreesWithTheLayer() {
        var setup = GradientFlow.Setup(cell: .rnnTanh, initialisation: .orthogonal)
        setup.hidden = 8; setup.input = 3; setup.length = 15; setup.sequences = 2
        let layer = GradientFlow.makeLayer(setup)
        let (x, u) = GradientFlow.probes(sequences: 2, length: 15, input: 3, hidden: 8, seed: 9)
        let a = GradientFlow.hiddenGradientNorms(layer: layer, x: x, dFinal: u)[0]
        let b = GradientFlow.elmanNorms(layer: layer, x: x, dFinal: u, activation: .tanh)
        for k in 0..<15 { #expect(abs(a[k] / b[k] - 1) < 1e-3, "k \(k): \(a[k]) vs \(b[k])") }
    }

    /// The batched measurement of an LSTM agrees with a direct backward over the last s steps.
    @Test func lstmBatchedMatchesDirect() {
        var setup = GradientFlow.Setup(cell: .lstm, initialisation: .pytorchDefault)
        setup.hidden = 6; setup.input = 3; setup.length = 7; setup.sequences = 1
        let layer = GradientFlow.makeLayer(setup)
        let (x, u) = GradientFlow.probes(sequences: 1, length: 7, input: 3, hidden: 6, seed: 2)
        let batched = GradientFlow.hiddenGradientNorms(layer: layer, x: x, dFinal: u)[0]
        // Direct: ∂loss/∂h_0 from a plain backward over all 7 steps equals the curve one step past t = 1,
        // so compare t = 1 with a direct run over steps 2…7 from the state after step 1.
        var rng = SeededRNG(seed: 0)
        let first = layer.forward(Tensor(shape: [1, 1, 3], data: Array(x.data[0..<3])), state: nil, mode: .inference, rng: &rng).state
        let rest = Tensor(shape: [1, 6, 3], data: Array(x.data[3...]))
        let (_, _, cache) = layer.forward(rest, state: first, mode: .training, rng: &rng)
        var dState = RecurrentState.zeros(kind: .lstm, layers: 1, batch: 1, hidden: 6)
        dState.hidden = Tensor(shape: [1, 1, 6], data: u.data)
        let (_, dInit) = layer.backward(dOutput: nil, dState: dState, cache: cache!)
        let direct = dInit.hidden.data.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(abs(batched[6] / direct - 1) < 1e-4, "\(batched[6]) vs \(direct)")
    }

    /// The one-pass measurement (the gradient carried into every step, recorded in one backward
    /// pass) against its definition: for every sequence q and every t, a run over steps t + 1 … T
    /// from the states after t steps, whose initial-state gradient is ∂loss/∂h_t of each layer.
    @Test(arguments: CellKind.allCases)
    func onePassMatchesARunFromEveryStep(kind: CellKind) {
        let S = 2, T = 9, D = 3, H = 5, L = 3
        var rng = SeededRNG(seed: 4)
        let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L, rng: &rng)
        let (x, u) = GradientFlow.probes(sequences: S, length: T, input: D, hidden: H, seed: 3)
        let measured = GradientFlow.hiddenGradientNorms(layer: layer, x: x, dFinal: u)
        #expect(layer.parameters.allSatisfy { $0.grad.data.allSatisfy { $0 == 0 } }, "gradients left as they were")
        var expected = [[Double]](repeating: [Double](repeating: 0, count: T), count: L)
        for q in 0..<S {
            let row = { (t0: Int, t1: Int) in Tensor(shape: [1, t1 - t0, D], data: Array(x.data[((q * T + t0) * D)..<((q * T + t1) * D)])) }
            for t in 1...T {
                let start = layer.forward(row(0, t), state: nil, mode: .inference, rng: &rng).state
                var dState = RecurrentState.zeros(kind: kind, layers: L, batch: 1, hidden: H)
                for j in 0..<H { dState.hidden.data[(L - 1) * H + j] = u.data[q * H + j] }
                var dInitial = dState
                if t < T {
                    let (_, _, cache) = layer.forward(row(t, T), state: start, mode: .training, rng: &rng)
                    dInitial = layer.backward(dOutput: nil, dState: dState, cache: cache!).dInitialState
                }
                for l in 0..<L {
                    let n = (0..<H).reduce(0.0) { $0 + Double(dInitial.hidden.data[l * H + $1]) * Double(dInitial.hidden.data[l * H + $1]) }
                    expected[l][T - t] += n.squareRoot() / Double(S)
                }
            }
        }
        layer.zeroGrad()
        for l in 0..<L {
            for k in 0..<T {
                #expect(abs(measured[l][k] - expected[l][k]) <= 1e-5 * expected[l][k] + 1e-12,
                        "\(kind) layer \(l) k \(k): \(measured[l][k]) vs \(expected[l][k])")
            }
        }
        #expect(expected[0][T - 1] > 0 && expected[L - 1][0] > 0)
        // Sequences in groups of one (what long runs do to bound memory): the same bits.
        #expect(GradientFlow.hiddenGradientNorms(layer: layer, x: x, dFinal: u, floatsPerGroup: 1) == measured)
    }

    @Test func pageAndJSON() throws {
        let curves = [GradientFlow.Curve(name: "a <b>", norms: [1, 0.5, 0.25], parameterGradientNorm: 2),
                      GradientFlow.Curve(name: "zero", norms: [1, 0, 0])]
        let json = GradientFlow.json(curves, meta: [("length", "3")])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let list = try #require(obj["curves"] as? [[String: Any]])
        #expect(list.count == 2)
        #expect((list[0]["norms"] as? [Double]) == [1, 0.5, 0.25])
        #expect(abs((list[0]["factor_per_step"] as? Double ?? 0) - 0.5) < 1e-9)
        #expect(list[1]["factor_per_step"] is NSNull)
        let html = GradientFlow.page(curves, description: "d", clipNote: nil)
        #expect(html.contains("a &lt;b&gt;"))
        #expect(html.contains("data-n=\"3\""))  // the first series: 3 drawable points
        #expect(html.contains("data-n=\"1\""))  // the second: zeros are not drawn on a log axis
    }
}

@Suite struct ActivationAnalysisTests {
    /// Two characters, or a text of one letter, give no unit a property to track (every r over
    /// two points is ±1; one word start is not a pattern).
    @Test func degenerateTextsTrackNothing() throws {
        for text in [Array("ab".unicodeScalars), Array(String(repeating: "a", count: 105).unicodeScalars)] {
            let vocab = CharVocabulary(text: Array("ab".unicodeScalars))
            var rng = SeededRNG(seed: 4)
            let model = CharLM(config: CharLMConfig(cell: .lstm, vocabulary: vocab, embeddingSize: 3, hiddenSize: 4, numLayers: 1), rng: &rng)
            let a = ActivationAnalysis.run(model: model, tokens: try vocab.encode(text, source: "t"), text: text, storedUnits: 100)
            let tracked = a.series.filter { $0.best.r != 0 }.map(\.label)
            // Only position in the line varies in the long text; nothing does over two characters.
            #expect(text.count == 2 ? tracked.isEmpty : a.series.allSatisfy { $0.best.r == 0 || $0.best.property == .positionInLine }, "\(tracked)")
        }
    }

    /// Every cell kind: series and gate counts, correlations from the running sums equal Pearson's r
    /// on the stored values, values equal a plain forward pass, top-5 probabilities sorted and ≤ 1.
    @Test(arguments: CellKind.allCases)
    func analysisMatchesDirectComputation(kind: CellKind) throws {
        let text = Array("He said \"go (now)\" and left.\nShe [waited].\n".unicodeScalars) + Array("ab (c) \"d\" e\n".unicodeScalars)
        let vocab = CharVocabulary(text: text)
        var rng = SeededRNG(seed: 4)
        let model = CharLM(config: CharLMConfig(cell: kind, vocabulary: vocab, embeddingSize: 5, hiddenSize: 6, numLayers: 2), rng: &rng)
        let tokens = try vocab.encode(text, source: "t")
        let a = ActivationAnalysis.run(model: model, tokens: tokens, text: text, storedUnits: 1000, chunk: 7)
        let K = kind.hasCellState ? 2 : 1
        #expect(a.series.count == 2 * K * 6 && a.stored.count == a.series.count)
        #expect(a.gates.count == 2 * ActivationAnalysis.countedGates(kind).count)
        for g in a.gates { for (l, r) in zip(g.left, g.right) { #expect(l >= 0 && r >= 0 && l + r <= 1) } }
        // The top layer's hidden states from one plain forward pass over the whole text.
        var frng = SeededRNG(seed: 0)
        let (y, _, _) = model.rnn.forward(model.embedding.forward(tokens, shape: [1, tokens.count]), state: nil, mode: .inference, rng: &frng)
        let props = TextProperty.allCases.map { $0.values(text) }
        for (i, s) in a.stored.enumerated() {
            let item = a.series[s]
            for (p, values) in props.enumerated() {
                #expect(abs(item.correlations[p] - InsightStatistics.pearson(a.values[i], values)) < 1e-6)
            }
            if item.layer == 1 && !item.isCell {
                for t in 0..<tokens.count { #expect(abs(a.values[i][t] - y.data[t * 6 + item.unit]) < 1e-5) }
            }
        }
        for t in 0..<tokens.count {
            let p = Array(a.topProbabilities[t * 5..<t * 5 + 5])
            #expect(p == p.sorted(by: >) && p[0] <= 1 && p[4] > 0)
        }
        let html = a.page(title: "test")
        #expect(html.contains("data-s=\"0\"") && html.contains("var VALUES=["))
    }
}

@Suite struct ChartTests {
    /// A learning rate read back from a resumed report's history can differ from the new run's by
    /// one ulp; the chart must draw it as constant, not step through the gap (which never ends).
    @Test func nearlyConstantSeriesDraws() {
        #expect(SVG.ticks(0.002, 0.002.nextUp).count == 1)
        let chart = LineChart(title: "lr", xLabel: "step", yLabel: "lr",
                              series: [ChartSeries(name: "lr", points: [(1, 0.002), (2, 0.002.nextUp), (3, 0.002)])])
        let svg = chart.svg()
        #expect(svg.contains("data-n=\"3\"") && svg.components(separatedBy: "class=\"grid\"").count > 4)
    }

    /// A series with far more points than pixels is drawn through each half-pixel column's first,
    /// lowest, highest and last points: a bounded polyline with the same extremes, the y of every
    /// column kept; a series that fits is drawn point for point.
    @Test func longSeriesAreDrawnPerPixelColumn() throws {
        func vertices(_ svg: String) -> [(x: Double, y: Double)] {
            var out: [(x: Double, y: Double)] = []
            for part in svg.components(separatedBy: "points=\"").dropFirst() {
                let list = String(part.prefix { $0 != "\"" })
                for pair in list.split(separator: " ") {
                    let xy = pair.split(separator: ",").compactMap { Double(String($0)) }
                    out.append((x: xy[0], y: xy[1]))
                }
            }
            return out
        }
        let n = 1_000_000
        let points: [(x: Double, y: Double)] = (0..<n).map { i in
            let spike: Double = i % 1000 == 7 ? 3 : 0
            return (x: Double(i), y: sin(Double(i) / 5000) + spike)
        }
        let big = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [ChartSeries(name: "s", points: points)]).svg()
        let drawn = vertices(big)
        #expect(big.contains("data-n=\"\(n)\""))
        #expect(big.utf8.count < 200_000, "\(big.utf8.count) bytes")
        #expect(drawn.count > 2 * 630 && drawn.count <= 4 * 2 * 631)
        #expect(zip(drawn, drawn.dropFirst()).allSatisfy { $0.x <= $1.x }, "x in order")
        // The spikes (y + 3) stay: the highest vertex is as high as the highest point.
        let small = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [ChartSeries(name: "s", points: Array(points.prefix(500)))]).svg()
        #expect(vertices(small).count == 500)
        let ys = drawn.map { $0.y }
        let top = try #require(ys.min()), bottom = try #require(ys.max())
        // The forecast plot too: a million history points in a small file, a short line as it was.
        let history = ForecastPlot.Line(label: "history", points: points.map { (x: Int($0.x), y: $0.y) })
        let tail = ForecastPlot.Line(label: "truth", points: (n..<(n + 50)).map { (x: $0, y: 0.5) })
        let plot = ForecastPlot.svg(title: "t", history: history, truth: tail, forecast: tail, xLabels: [])
        #expect(plot.utf8.count < 200_000, "\(plot.utf8.count) bytes")
        #expect(plot.components(separatedBy: " L").count > 2 * 850 && plot.contains(" L\(String(format: "%.1f", 920.0))"))
        // A chart of two points with the same x and y ranges puts them where the extremes belong.
        let lowest = try #require(points.min { $0.y < $1.y }), highest = try #require(points.max { $0.y < $1.y })
        let frame = vertices(LineChart(title: "t", xLabel: "x", yLabel: "y",
                                       series: [ChartSeries(name: "s", points: [(x: 0, y: lowest.y), (x: Double(n - 1), y: highest.y)])]).svg())
        #expect(top == frame[1].y && bottom == frame[0].y, "extremes drawn: \(top) … \(bottom), expected \(frame[1].y) … \(frame[0].y)")
    }

    /// The standard gradients chart has 11 curves: no two may look alike but for one attribute.
    @Test func stylesDifferInTwoOfThree() {
        let styles = (0..<32).map { SeriesStyle($0) }
        for i in styles.indices {
            for j in styles.indices where j > i {
                let a = styles[i], b = styles[j]
                let differences = (a.colour != b.colour ? 1 : 0) + (a.dash != b.dash ? 1 : 0) + (a.marker != b.marker ? 1 : 0)
                #expect(differences >= 2, "series \(i) and \(j) differ in \(differences) of colour, dash, marker")
            }
        }
    }
}
