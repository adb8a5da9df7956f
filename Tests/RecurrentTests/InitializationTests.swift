import Testing
@testable import Recurrent

/// The parameters of one recurrent layer in PyTorch naming, all zero.
private func layer(_ kind: CellKind, inputSize D: Int, hiddenSize H: Int, suffix: String = "") -> [Parameter] {
    let G = kind.gateCount
    return [
        Parameter(name: "weight_ih_l0" + suffix, value: Tensor(shape: [G * H, D])),
        Parameter(name: "weight_hh_l0" + suffix, value: Tensor(shape: [G * H, H])),
        Parameter(name: "bias_ih_l0" + suffix, value: Tensor(shape: [G * H])),
        Parameter(name: "bias_hh_l0" + suffix, value: Tensor(shape: [G * H])),
    ]
}

/// Sample mean and variance.
private func moments(_ x: [Float]) -> (mean: Double, variance: Double) {
    let n = Double(x.count)
    let mean = x.reduce(0.0) { $0 + Double($1) } / n
    let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
    return (mean, variance)
}

/// max |MᵀM - I| for the (rows, cols) row-major block starting at `offset`, over its columns.
private func columnOrthonormalityError(_ w: [Float], offset: Int, rows: Int, cols: Int) -> Double {
    var worst = 0.0
    for a in 0..<cols {
        for b in 0..<cols {
            var dot = 0.0
            for r in 0..<rows { dot += Double(w[offset + r * cols + a]) * Double(w[offset + r * cols + b]) }
            worst = max(worst, abs(dot - (a == b ? 1 : 0)))
        }
    }
    return worst
}

@Suite struct InitializationTests {
    @Test func orthogonalRecurrentBlocks() {
        let H = 8, D = 5
        for kind in CellKind.allCases {
            let ps = layer(kind, inputSize: D, hiddenSize: H)
            var rng = SeededRNG(seed: 1)
            Initialization.apply(kind: kind, hiddenSize: H, parameters: ps, input: .orthogonal, recurrent: .orthogonal, forgetBias: nil, rng: &rng)
            for gate in 0..<kind.gateCount {
                // Each (H, H) block of weight_hh: QᵀQ = I.
                let errHH = columnOrthonormalityError(ps[1].value.data, offset: gate * H * H, rows: H, cols: H)
                #expect(errHH < 1e-4, "\(kind) weight_hh block \(gate): \(errHH)")
                // Each (H, D) block of weight_ih with H > D has orthonormal columns.
                let errIH = columnOrthonormalityError(ps[0].value.data, offset: gate * H * D, rows: H, cols: D)
                #expect(errIH < 1e-4, "\(kind) weight_ih block \(gate): \(errIH)")
            }
            #expect(ps[2].value.data.allSatisfy { $0 == 0 } && ps[3].value.data.allSatisfy { $0 == 0 })
        }
        // Blocks differ from each other (not one block copied G times).
        let ps = layer(.lstm, inputSize: D, hiddenSize: H)
        var rng = SeededRNG(seed: 2)
        Initialization.apply(kind: .lstm, hiddenSize: H, parameters: ps, input: .xavierUniform, recurrent: .orthogonal, forgetBias: nil, rng: &rng)
        let w = ps[1].value.data
        #expect(Array(w[0..<(H * H)]) != Array(w[(H * H)..<(2 * H * H)]))
    }

    @Test func orthogonalWideMatrixHasOrthonormalRows() {
        var t = Tensor(shape: [3, 7])
        var rng = SeededRNG(seed: 3)
        Initialization.fill(&t, scheme: .orthogonal, hiddenSize: 3, rng: &rng)
        // Rows orthonormal: the transpose (7, 3) has orthonormal columns.
        var transposed = [Float](repeating: 0, count: 21)
        for r in 0..<3 { for c in 0..<7 { transposed[c * 3 + r] = t.data[r * 7 + c] } }
        #expect(columnOrthonormalityError(transposed, offset: 0, rows: 7, cols: 3) < 1e-4)
    }

    @Test func orthogonalLargeBlockStaysOrthogonal() {
        var t = Tensor(shape: [128, 128])
        var rng = SeededRNG(seed: 4)
        Initialization.fill(&t, scheme: .orthogonal, hiddenSize: 128, rng: &rng)
        #expect(columnOrthonormalityError(t.data, offset: 0, rows: 128, cols: 128) < 1e-4)
    }

    @Test func varianceMatchesFormula() {
        let rows = 300, cols = 400
        let cases: [(Initializer, Double)] = [
            (.xavierUniform, 2.0 / Double(rows + cols)),
            (.xavierNormal, 2.0 / Double(rows + cols)),
            (.kaimingUniform, 2.0 / Double(cols)),
            (.kaimingNormal, 2.0 / Double(cols)),
            (.pytorchDefault, 1.0 / (3.0 * 64)),     // U(±1/sqrt(64)): variance bound²/3
        ]
        for (scheme, expected) in cases {
            var t = Tensor(shape: [rows, cols])
            var rng = SeededRNG(seed: 5)
            Initialization.fill(&t, scheme: scheme, hiddenSize: 64, rng: &rng)
            let (mean, variance) = moments(t.data)
            #expect(abs(variance / expected - 1) < 0.02, "\(scheme): variance \(variance), expected \(expected)")
            #expect(abs(mean) < 0.01 * expected.squareRoot() * 10, "\(scheme): mean \(mean)")
        }
    }

    @Test func uniformSchemesStayInBounds() {
        var t = Tensor(shape: [50, 30])
        var rng = SeededRNG(seed: 6)
        Initialization.fill(&t, scheme: .xavierUniform, hiddenSize: 1, rng: &rng)
        #expect(t.data.allSatisfy { abs($0) <= (6.0 / 80.0 as Float).squareRoot() })
        Initialization.fill(&t, scheme: .kaimingUniform, hiddenSize: 1, rng: &rng)
        #expect(t.data.allSatisfy { abs($0) <= (6.0 / 30.0 as Float).squareRoot() })
    }

    @Test func fansArePerGateBlock() {
        // LSTM weight_ih is (4H, D); xavier must use fanOut = H, not 4H.
        let H = 128, D = 64
        let ps = layer(.lstm, inputSize: D, hiddenSize: H)
        var rng = SeededRNG(seed: 7)
        Initialization.apply(kind: .lstm, hiddenSize: H, parameters: ps, input: .xavierNormal, recurrent: .kaimingNormal, forgetBias: nil, rng: &rng)
        let vIH = moments(ps[0].value.data).variance, vHH = moments(ps[1].value.data).variance
        #expect(abs(vIH / (2.0 / Double(H + D)) - 1) < 0.03, "weight_ih variance \(vIH)")
        #expect(abs(vHH / (2.0 / Double(H)) - 1) < 0.03, "weight_hh variance \(vHH)")
    }

    @Test func pytorchDefaultBoundsEverything() {
        let H = 16
        let ps = layer(.gru, inputSize: 10, hiddenSize: H, suffix: "_reverse")
        var rng = SeededRNG(seed: 8)
        Initialization.apply(kind: .gru, hiddenSize: H, parameters: ps, input: .pytorchDefault, recurrent: .pytorchDefault, forgetBias: 1, rng: &rng)
        let bound: Float = 0.25
        for p in ps {
            #expect(p.value.data.allSatisfy { abs($0) <= bound }, "\(p.name)")
            #expect(p.value.data.contains { $0 != 0 }, "\(p.name) left at zero")
        }
    }

    @Test func forgetBiasSlice() {
        let H = 6
        for scheme in [Initializer.pytorchDefault, .xavierUniform] {
            let ps = layer(.lstm, inputSize: 3, hiddenSize: H)
            var rng = SeededRNG(seed: 9)
            Initialization.apply(kind: .lstm, hiddenSize: H, parameters: ps, input: scheme, recurrent: scheme, forgetBias: 1, rng: &rng)
            let bih = ps[2].value.data, bhh = ps[3].value.data
            #expect(Array(bih[H..<(2 * H)]) == [Float](repeating: 1, count: H))
            #expect(Array(bhh[H..<(2 * H)]) == [Float](repeating: 0, count: H))
            let others = Array(bih[0..<H]) + Array(bih[(2 * H)...]) + Array(bhh[0..<H]) + Array(bhh[(2 * H)...])
            if scheme == .pytorchDefault {
                #expect(others.contains { $0 != 0 })
            } else {
                #expect(others.allSatisfy { $0 == 0 })
            }
        }
        // Ignored for cells without a forget gate.
        let gru = layer(.gru, inputSize: 3, hiddenSize: H)
        var rng = SeededRNG(seed: 9)
        Initialization.apply(kind: .gru, hiddenSize: H, parameters: gru, input: .xavierUniform, recurrent: .orthogonal, forgetBias: 1, rng: &rng)
        #expect(gru[2].value.data.allSatisfy { $0 == 0 })
    }

    @Test func otherParametersUntouched() {
        let extra = Parameter(name: "embedding.weight", value: Tensor(shape: [2, 2], data: [1, 2, 3, 4]))
        var rng = SeededRNG(seed: 10)
        Initialization.apply(kind: .rnnTanh, hiddenSize: 2, parameters: layer(.rnnTanh, inputSize: 2, hiddenSize: 2) + [extra],
                             input: .xavierUniform, recurrent: .orthogonal, forgetBias: nil, rng: &rng)
        #expect(extra.value.data == [1, 2, 3, 4])
    }

    @Test func seedsReproduce() {
        func run(_ seed: UInt64, _ scheme: Initializer) -> [Tensor] {
            let ps = layer(.lstm, inputSize: 5, hiddenSize: 4)
            var rng = SeededRNG(seed: seed)
            Initialization.apply(kind: .lstm, hiddenSize: 4, parameters: ps, input: scheme, recurrent: scheme, forgetBias: nil, rng: &rng)
            return ps.map(\.value)
        }
        for scheme in Initializer.allCases {
            #expect(run(42, scheme) == run(42, scheme), "\(scheme)")
            #expect(run(42, scheme) != run(43, scheme), "\(scheme)")
        }
    }

    @Test func rawValues() {
        #expect(Initializer(rawValue: "default") == .pytorchDefault)
        #expect(Initializer(rawValue: "kaiming-normal") == .kaimingNormal)
        #expect(Initializer.allCases.map(\.rawValue) == ["default", "xavier-uniform", "xavier-normal", "kaiming-uniform", "kaiming-normal", "orthogonal"])
    }
}
