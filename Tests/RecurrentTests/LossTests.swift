import CKernels
import Foundation
import Testing
@testable import Recurrent

@Suite struct LossTests {
    /// The rows are split across threads and their losses added in row order afterwards: the loss
    /// and the gradient are bit for bit those of the serial C kernel (rc_softmax_xent), for 1, 2
    /// and 3 threads, with ignored rows among them.
    @Test func threadedRowsGiveTheSerialKernelsBits() {
        let saved = Threading.count
        defer { Threading.count = saved }
        var rng = SeededRNG(seed: 48)
        let N = 1003, V = 65
        let logits = (0..<N * V).map { _ in rng.uniform(-6, 6) }
        let targets = (0..<N).map { n in n % 11 == 3 ? Int32(-100) : Int32((n * 7 + n / 5) % V) }
        let valid = targets.filter { $0 != -100 }.count
        let scale = 1 / Double(valid)
        var dSerial = [Float](repeating: 0, count: N * V)
        let total = rc_softmax_xent(N, V, logits, targets, -100, Float(scale), &dSerial)
        let lossSerial = Float(total * scale)
        for threads in [1, 2, 3] {
            Threading.count = threads
            let (loss, d) = Loss.softmaxCrossEntropy(logits: Tensor(shape: [N, V], data: logits), targets: targets)
            #expect(loss.bitPattern == lossSerial.bitPattern, "\(threads) threads: loss \(loss) vs \(lossSerial)")
            let differing = zip(d.data, dSerial).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(threads) threads: \(differing) gradient elements differ")
            // The Double sum itself, before its rounding to Float.
            var dRows = [Float](repeating: 0, count: N * V)
            let sum = dRows.withUnsafeMutableBufferPointer { dp in
                logits.withUnsafeBufferPointer { lp in
                    Loss.summedCrossEntropy(rows: N, classes: V, logits: lp.baseAddress!, targets: targets, ignoreIndex: -100,
                                            scale: scale, dLogits: dp.baseAddress!)
                }
            }
            #expect(sum.bitPattern == total.bitPattern, "\(threads) threads: sum \(sum) vs \(total)")
        }
    }

    /// The fused kernel against a Double reference for row lengths with and without a ragged tail
    /// (the tail runs as the row's last 16 elements, overlapping, or element by element below 16),
    /// on every ISA path.
    @Test(arguments: [1, 3, 15, 16, 17, 31, 33, 65, 100])
    func kernelMatchesDoubleReference(classes V: Int) {
        var rng = SeededRNG(seed: UInt64(60 + V))
        let N = 7
        let logits = (0..<N * V).map { _ in rng.uniform(-8, 8) }
        let targets = (0..<N).map { Int32(($0 * 5 + 2) % V) }
        let scale = 1.0 / Double(N)
        var lossRef = 0.0
        var dRef = [Double](repeating: 0, count: N * V)
        for n in 0..<N {
            let row = logits[(n * V)..<((n + 1) * V)].map(Double.init)
            let m = row.max()!
            let sum = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            lossRef += Foundation.log(sum) + m - row[Int(targets[n])]
            for v in 0..<V { dRef[n * V + v] = Foundation.exp(row[v] - m) / sum * scale }
            dRef[n * V + Int(targets[n])] -= scale
        }
        CellKernelTests.forEachISA { isa in
            var d = [Float](repeating: .nan, count: N * V)
            let total = rc_softmax_xent(N, V, logits, targets, -100, Float(scale), &d)
            #expect(abs(total - lossRef) <= 1e-5 * Swift.max(1, abs(lossRef)), "\(isa) V \(V): loss \(total) vs \(lossRef)")
            let worst = zip(d, dRef).map { abs(Double($0) - $1) }.max() ?? .nan
            #expect(worst <= 1e-7, "\(isa) V \(V): gradient off by \(worst)")
        }
    }

    /// The loss that adds a Linear layer's bias itself (the char-LM head's): the same loss and
    /// gradient bits as the plain loss on logits + bias, the bias gradient the rows' sum of the
    /// gradient (two fixed halves, so the same bits for 1, 2 and 3 threads); every ISA path for
    /// the kernel, ragged row lengths and ignored rows.
    @Test(arguments: [3, 17, 65])
    func biasAddingLossMatchesThePlainOneOnBiasedLogits(classes V: Int) {
        let saved = Threading.count
        defer { Threading.count = saved }
        var rng = SeededRNG(seed: UInt64(90 + V))
        let N = 1200
        let logits = (0..<N * V).map { _ in rng.uniform(-6, 6) }, bias = (0..<V).map { _ in rng.uniform(-2, 2) }
        let targets = (0..<N).map { n in n % 13 == 4 ? Int32(-100) : Int32((n * 7 + n / 3) % V) }
        let biased = (0..<N * V).map { logits[$0] + bias[$0 % V] }
        var dPlain = [Float](repeating: 0, count: N * V)
        let lossPlain = biased.withUnsafeBufferPointer { lp in
            dPlain.withUnsafeMutableBufferPointer { dp in
                Loss.softmaxCrossEntropy(rows: N, classes: V, logits: lp.baseAddress!, targets: targets, dLogits: dp.baseAddress!)
            }
        }
        var dbRef = [Float](repeating: 0, count: V), half = [Float](repeating: 0, count: V)
        for n in 0..<N { for v in 0..<V { if n < N / 2 { dbRef[v] += dPlain[n * V + v] } else { half[v] += dPlain[n * V + v] } } }
        for v in 0..<V { dbRef[v] += half[v] }
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            Threading.count = threads
            var z = logits, d = [Float](repeating: .nan, count: N * V), db = [Float](repeating: 0, count: V)
            let loss = z.withUnsafeMutableBufferPointer { zp in
                d.withUnsafeMutableBufferPointer { dp in
                    Loss.softmaxCrossEntropy(rows: N, classes: V, logits: zp.baseAddress!, bias: bias, targets: targets,
                                             dLogits: dp.baseAddress!, dBias: &db)
                }
            }
            #expect(loss.bitPattern == lossPlain.bitPattern && d == dPlain, "\(threads) threads V \(V)")
            #expect(z == logits, "the logits are only read")
            results.append(db)
        }
        #expect(results.allSatisfy { $0 == results[0] })
        let worst = zip(results[0], dbRef).map { abs($0 - $1) }.max() ?? .nan
        #expect(worst <= 1e-6, "V \(V): bias gradient off by \(worst)")
        CellKernelTests.forEachISA { isa in
            var d = [Float](repeating: .nan, count: 40 * V), dRef = d, db = [Float](repeating: 0.5, count: V)
            var rows = [Double](repeating: 0, count: 40), rowsRef = rows
            rc_softmax_xent_rows(40, V, biased, targets, -100, 0.01, &dRef, &rowsRef)
            rc_softmax_xent_bias_rows(40, V, logits, bias, targets, -100, 0.01, &d, &rows, &db)
            var dbWant = [Float](repeating: 0.5, count: V)
            for n in 0..<40 { for v in 0..<V { dbWant[v] += dRef[n * V + v] } }
            #expect(d == dRef && rows == rowsRef && db == dbWant, "\(isa) V \(V): fused kernel bits")
        }
    }

    @Test func uniformLogitsGiveLogV() {
        let V = 7
        let (loss, d) = Loss.softmaxCrossEntropy(logits: Tensor(shape: [3, V], repeating: 0.3), targets: [0, 6, 2])
        #expect(abs(loss - Float(Foundation.log(Double(V)))) < 1e-6)
        // (1/V − onehot)/N
        #expect(abs(d.data[0] - (1 / 7 - 1) / 3) < 1e-7)
        #expect(abs(d.data[1] - 1 / 21) < 1e-7)
    }

    @Test func handComputedValue() {
        // logits [1, 2, 3], target 2: log(e + e² + e³) − 3 = log(1 + e⁻¹ + e⁻²) ≈ 0.40760596
        let (loss, _) = Loss.softmaxCrossEntropy(logits: Tensor(shape: [1, 3], data: [1, 2, 3]), targets: [2])
        #expect(abs(loss - 0.40760596) < 1e-6)
        // Large logits do not overflow.
        let (big, _) = Loss.softmaxCrossEntropy(logits: Tensor(shape: [1, 3], data: [1001, 1002, 1003]), targets: [2])
        #expect(abs(big - 0.40760596) < 1e-5)
    }

    @Test func ignoreIndexIsLeftOutOfTheMean() {
        let logits = Tensor(shape: [3, 3], data: [1, 2, 3, 5, -1, 0, 1, 2, 3])
        let (all, _) = Loss.softmaxCrossEntropy(logits: Tensor(shape: [1, 3], data: [1, 2, 3]), targets: [2])
        let (masked, d) = Loss.softmaxCrossEntropy(logits: logits, targets: [2, -100, 2])
        #expect(abs(masked - all) < 1e-6)
        #expect(d.data[3 ..< 6].allSatisfy { $0 == 0 })
        let (none, dNone) = Loss.softmaxCrossEntropy(logits: logits, targets: [-1, -1, -1], ignoreIndex: -1)
        #expect(none == 0 && dNone.data.allSatisfy { $0 == 0 })
    }

    @Test func crossEntropyGradientMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 8)
        var logits = GradCheck.random([4, 5], scale: 2, rng: &rng)
        let targets: [Int32] = [3, -100, 0, 4]
        let (_, d) = Loss.softmaxCrossEntropy(logits: logits, targets: targets)
        let c = GradCheck.worst(analytic: d.data, eps: 1e-2, absTol: 1e-4, read: { logits.data[$0] },
                                write: { logits.data[$0] = $1 },
                                loss: { Double(Loss.softmaxCrossEntropy(logits: logits, targets: targets).loss) })
        #expect(c.ratio <= 1, "max abs error \(c.maxAbs)")
    }

    @Test func meanSquaredError() {
        let p = Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        let t = Tensor(shape: [2, 2], data: [1, 0, 4, 2])
        let (loss, d) = Loss.meanSquaredError(p, target: t)
        #expect(abs(loss - 9.0 / 4) < 1e-7)  // (0 + 4 + 1 + 4) / 4
        #expect(d.data == [0, 1, -0.5, 1])
        var rng = SeededRNG(seed: 9)
        var q = GradCheck.random([3, 3], rng: &rng)
        let target = GradCheck.random([3, 3], rng: &rng)
        let dq = Loss.meanSquaredError(q, target: target).dPrediction
        let c = GradCheck.worst(analytic: dq.data, absTol: 1e-4, read: { q.data[$0] }, write: { q.data[$0] = $1 },
                                loss: { Double(Loss.meanSquaredError(q, target: target).loss) })
        #expect(c.ratio <= 1, "max abs error \(c.maxAbs)")
    }
}
