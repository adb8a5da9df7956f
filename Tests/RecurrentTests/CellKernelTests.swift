import CKernels
import Foundation
import Testing
@testable import Recurrent

/// The fused C cell kernels (ckernels_cells.h) against the scalar Swift formulas of `CellMath`,
/// on odd sizes (vector tails), for every ISA path this CPU has (forced per thread).
@Suite struct CellKernelTests {
    static let isas = ["generic", "avx2", "avx512"]
    static let shapes: [(B: Int, H: Int)] = [(1, 1), (3, 5), (2, 17), (5, 33), (4, 64), (3, 71)]
    static let tolerance: Float = 2e-6

    static func random(_ n: Int, scale: Float = 3, rng: inout SeededRNG) -> [Float] {
        (0..<n).map { _ in rng.uniform(-scale, scale) }
    }

    /// Runs `body` once per available ISA with the calling thread's kernels forced to it.
    static func forEachISA(_ body: (String) -> Void) {
        defer { _ = rc_cells_set_thread_isa(nil) }
        for isa in isas where rc_isa_supported(isa) != 0 {
            #expect(rc_cells_set_thread_isa(isa) == 0)
            #expect(String(cString: rc_cells_isa()) == isa)
            body(isa)
        }
    }

    static func close(_ a: [Float], _ b: [Float], _ what: String, tol: Float = tolerance) {
        #expect(a.count == b.count)
        var worst: Float = 0
        for i in 0..<a.count {
            let e = abs(a[i] - b[i]) / max(1, abs(b[i]))
            if !(e <= worst) { worst = e }
        }
        #expect(worst <= tol, "\(what): max error \(worst)")
    }

    @Test func lstmMatchesScalarReference() {
        var rng = SeededRNG(seed: 41)
        for (B, H) in Self.shapes {
            let pre = Self.random(B * 4 * H, rng: &rng), bias = Self.random(4 * H, scale: 1, rng: &rng)
            let cPrev = Self.random(B * H, rng: &rng)
            let dOut = Self.random(B * (H + 3), rng: &rng)  // row stride H + 3
            let dhIn = Self.random(B * H, rng: &rng), dcIn = Self.random(B * H, rng: &rng)
            // Reference: CellMath on rows with the bias added first.
            var gRef = pre, cRef = [Float](repeating: 0, count: B * H), hRef = cRef
            var dRef = [Float](repeating: 0, count: B * 4 * H), dcRef = dcIn
            for b in 0..<B { for j in 0..<(4 * H) { gRef[b * 4 * H + j] += bias[j] } }
            gRef.withUnsafeMutableBufferPointer { g in cPrev.withUnsafeBufferPointer { cp in
                cRef.withUnsafeMutableBufferPointer { c in hRef.withUnsafeMutableBufferPointer { h in
                    dRef.withUnsafeMutableBufferPointer { d in dcRef.withUnsafeMutableBufferPointer { dc in
                        for b in 0..<B {
                            CellMath.lstmForward(gates: g.baseAddress! + b * 4 * H, cPrev: cp.baseAddress! + b * H,
                                                 cOut: c.baseAddress! + b * H, hOut: h.baseAddress! + b * H, H: H)
                            let dh = (0..<H).map { dOut[b * (H + 3) + $0] + dhIn[b * H + $0] }
                            CellMath.lstmBackward(gates: g.baseAddress! + b * 4 * H, cPrev: cp.baseAddress! + b * H,
                                                  cell: c.baseAddress! + b * H, dh: dh, dc: dc.baseAddress! + b * H,
                                                  dGates: d.baseAddress! + b * 4 * H, H: H)
                        }
                    } }
                } }
            } }
            Self.forEachISA { isa in
                var g = pre, c = [Float](repeating: 0, count: B * H), h = c
                rc_lstm_forward(B, H, &g, bias, cPrev, &c, &h)
                Self.close(g, gRef, "\(isa) lstm gates B\(B) H\(H)")
                Self.close(c, cRef, "\(isa) lstm c B\(B) H\(H)")
                Self.close(h, hRef, "\(isa) lstm h B\(B) H\(H)")
                var dh = dhIn, dc = dcIn, d = [Float](repeating: .nan, count: B * 4 * H)
                rc_lstm_backward(B, H, gRef, cPrev, cRef, dOut, H + 3, &dh, &dc, &d)
                Self.close(d, dRef, "\(isa) lstm dPre B\(B) H\(H)")
                Self.close(dc, dcRef, "\(isa) lstm dcPrev B\(B) H\(H)")
                #expect(dh == dhIn, "\(isa) lstm backward reads dhNext and leaves it")
            }
        }
    }

    @Test func gruMatchesScalarReference() {
        var rng = SeededRNG(seed: 42)
        for (B, H) in Self.shapes {
            let xg = Self.random(B * 3 * H, rng: &rng), hh = Self.random(B * 3 * H, rng: &rng)
            let bih = Self.random(3 * H, scale: 1, rng: &rng), bhh = Self.random(3 * H, scale: 1, rng: &rng)
            let hPrev = Self.random(B * H, scale: 1, rng: &rng)
            let dOut = Self.random(B * 2 * H, rng: &rng), dhIn = Self.random(B * H, rng: &rng)
            var gRef = xg, hnRef = [Float](repeating: 0, count: B * H), hRef = hnRef, dhRef = hnRef
            var diRef = [Float](repeating: 0, count: B * 3 * H), dhgRef = diRef
            for b in 0..<B { for j in 0..<(3 * H) { gRef[b * 3 * H + j] += bih[j] } }
            for b in 0..<B {
                gRef.withUnsafeMutableBufferPointer { g in hnRef.withUnsafeMutableBufferPointer { hn in
                    hRef.withUnsafeMutableBufferPointer { h in
                        CellMath.gruForward(gates: g.baseAddress! + b * 3 * H, hh: Array(hh[(b * 3 * H)...]), bhh: bhh,
                                            hPrev: Array(hPrev[(b * H)...]), hn: hn.baseAddress! + b * H,
                                            hOut: h.baseAddress! + b * H, H: H)
                    }
                } }
                let dh = (0..<H).map { dOut[b * 2 * H + $0] + dhIn[b * H + $0] }
                diRef.withUnsafeMutableBufferPointer { di in dhgRef.withUnsafeMutableBufferPointer { dhg in
                    dhRef.withUnsafeMutableBufferPointer { dhp in
                        CellMath.gruBackward(gates: Array(gRef[(b * 3 * H)...]), hn: Array(hnRef[(b * H)...]),
                                             hPrev: Array(hPrev[(b * H)...]), dh: dh, dInputGates: di.baseAddress! + b * 3 * H,
                                             dHiddenGates: dhg.baseAddress! + b * 3 * H, dhPrev: dhp.baseAddress! + b * H, H: H)
                    }
                } }
            }
            Self.forEachISA { isa in
                var g = xg, hn = [Float](repeating: 0, count: B * H), h = hn
                rc_gru_forward(B, H, &g, hh, bih, bhh, hPrev, &hn, &h)
                Self.close(g, gRef, "\(isa) gru gates B\(B) H\(H)")
                Self.close(hn, hnRef, "\(isa) gru hn B\(B) H\(H)")
                Self.close(h, hRef, "\(isa) gru h B\(B) H\(H)")
                // The input side's gradient is [dr, dz, dn]: the kernel writes the hidden side's and dn.
                let dnRef = (0..<(B * H)).map { diRef[($0 / H) * 3 * H + 2 * H + $0 % H] }
                for b in 0..<B { #expect(dhgRef[(b * 3 * H)..<(b * 3 * H + 2 * H)] == diRef[(b * 3 * H)..<(b * 3 * H + 2 * H)]) }
                var dhNext = dhIn, dhg = [Float](repeating: .nan, count: B * 3 * H), dn = [Float](repeating: .nan, count: B * H)
                rc_gru_backward(B, H, gRef, hnRef, hPrev, dOut, 2 * H, &dhNext, &dhg, &dn)
                Self.close(dhg, dhgRef, "\(isa) gru dPreHidden B\(B) H\(H)")
                Self.close(dn, dnRef, "\(isa) gru dPreInput's n part B\(B) H\(H)")
                Self.close(dhNext, dhRef, "\(isa) gru dhPrev B\(B) H\(H)")
                // Consuming the cache: dPreHidden over the gates and dn over hn give the same values.
                var gIn = gRef, hnIn = hnRef, dhNextIn = dhIn
                gIn.withUnsafeMutableBufferPointer { g in hnIn.withUnsafeMutableBufferPointer { hnp in
                    rc_gru_backward(B, H, g.baseAddress, hnp.baseAddress, hPrev, dOut, 2 * H, &dhNextIn, g.baseAddress, hnp.baseAddress)
                } }
                #expect(gIn == dhg && hnIn == dn && dhNextIn == dhNext, "\(isa) gru backward in place B\(B) H\(H)")
                // With the per-row running sums (fused in place, else added after): the same outputs, and
                // the sums those of rc_add_rows over the outputs, bit for bit.
                let start = Self.random(B * 4 * H, rng: &rng)
                for (inPlace, withN) in [(true, true), (true, false), (false, true)] {
                    var gS = gRef, hnS = hnRef, dhNextS = dhIn
                    var sums = Array(start[0..<(B * 3 * H)]), sumsN = Array(start[(B * 3 * H)...])
                    var outG = [Float](repeating: .nan, count: B * 3 * H), outN = [Float](repeating: .nan, count: B * H)
                    gS.withUnsafeMutableBufferPointer { g in hnS.withUnsafeMutableBufferPointer { hnp in
                        outG.withUnsafeMutableBufferPointer { og in outN.withUnsafeMutableBufferPointer { on in
                            sumsN.withUnsafeMutableBufferPointer { sn in
                                rc_gru_backward_sums(B, H, g.baseAddress, hnp.baseAddress, hPrev, dOut, 2 * H, &dhNextS,
                                                     inPlace ? g.baseAddress : og.baseAddress,
                                                     inPlace ? hnp.baseAddress : on.baseAddress, &sums,
                                                     withN ? sn.baseAddress : nil)
                            }
                        } }
                    } }
                    let gotG = inPlace ? gS : outG, gotN = inPlace ? hnS : outN
                    var sumsRef = Array(start[0..<(B * 3 * H)]), sumsNRef = Array(start[(B * 3 * H)...])
                    rc_add_rows(1, B * 3 * H, dhg, B * 3 * H, &sumsRef)
                    if withN { rc_add_rows(1, B * H, dn, B * H, &sumsNRef) }
                    #expect(gotG == dhg && gotN == dn && dhNextS == dhNext, "\(isa) gru backward with sums B\(B) H\(H)")
                    #expect(sums == sumsRef && sumsN == sumsNRef, "\(isa) gru row sums in place \(inPlace) with n \(withN) B\(B) H\(H)")
                }
            }
        }
    }

    @Test(arguments: [false, true])
    func rnnMatchesScalarReference(relu: Bool) {
        var rng = SeededRNG(seed: 43)
        for (B, H) in Self.shapes {
            let pre = Self.random(B * H, rng: &rng), bias = Self.random(H, scale: 1, rng: &rng)
            let dOut = Self.random(B * H, rng: &rng), dhIn = Self.random(B * H, rng: &rng)
            var hRef = pre, dRef = [Float](repeating: 0, count: B * H)
            for b in 0..<B { for j in 0..<H { hRef[b * H + j] += bias[j] } }
            hRef.withUnsafeMutableBufferPointer { CellMath.rnnForward($0.baseAddress!, relu: relu, H: B * H) }
            let dh = (0..<(B * H)).map { dOut[$0] + dhIn[$0] }
            dRef.withUnsafeMutableBufferPointer {
                CellMath.rnnBackward(h: hRef, dh: dh, dPre: $0.baseAddress!, relu: relu, H: B * H)
            }
            Self.forEachISA { isa in
                var h = pre
                rc_rnn_forward(B, H, &h, bias, relu ? 1 : 0)
                Self.close(h, hRef, "\(isa) rnn h B\(B) H\(H) relu \(relu)")
                var dhNext = dhIn, d = [Float](repeating: .nan, count: B * H)
                rc_rnn_backward(B, H, hRef, dOut, H, &dhNext, &d, relu ? 1 : 0)
                Self.close(d, dRef, "\(isa) rnn dPre B\(B) H\(H) relu \(relu)")
                #expect(dhNext == dhIn, "\(isa) rnn backward reads dhNext and leaves it")
                // With the per-row running sums (in place over dOut, or apart): the same dPre, and the
                // sums those of rc_add_rows over it afterwards, bit for bit.
                let start = Self.random(B * H, rng: &rng)
                var sumsRef = start
                rc_add_rows(1, B * H, d, B * H, &sumsRef)
                for inPlace in [true, false] {
                    var io = dOut, out = [Float](repeating: .nan, count: B * H), sums = start, dhS = dhIn
                    io.withUnsafeMutableBufferPointer { iop in
                        out.withUnsafeMutableBufferPointer { op in
                            rc_rnn_backward_sums(B, H, hRef, iop.baseAddress, H, &dhS, inPlace ? iop.baseAddress : op.baseAddress,
                                                 relu ? 1 : 0, &sums)
                        }
                    }
                    #expect((inPlace ? io : out) == d && dhS == dhIn, "\(isa) rnn backward with sums, in place \(inPlace)")
                    #expect(sums == sumsRef, "\(isa) rnn row sums in place \(inPlace) B\(B) H\(H) relu \(relu)")
                }
            }
        }
    }

    /// The cells' tanh (a rational fit, cells_math.h) within 6 ulp of Foundation's over a sweep of
    /// floats in [−12, 12] on every ISA path (5.05 at most over every float in [2⁻³¹, 12]), exact at
    /// 0 and tiny x, ±1 beyond the clamp, NaN kept.
    @Test func cellTanhWithinSixUlp() {
        var xs: [Float] = (0..<200_001).map { -12 + 24 * Float($0) / 200_000 }
        xs += [0, -0.0, 1e-30, -1e-30, 1e-8, 0.3, 0.625, 8.27, 9, 9.5, 40, .infinity, -.infinity, .nan]
        let zero = [Float](repeating: 0, count: xs.count)
        Self.forEachISA { isa in
            var h = xs
            rc_rnn_forward(1, xs.count, &h, zero, 0)
            var worst = 0.0, at: Float = 0
            for (x, y) in zip(xs, h) where !x.isNaN {
                let ref = Foundation.tanh(Double(x))
                let ulps = abs(Double(y) - ref) / Double(Float(ref).magnitude.ulp)
                if ulps > worst { worst = ulps; at = x }
            }
            #expect(worst <= 6, "\(isa) cell tanh: \(worst) ulp at \(at)")
            #expect(worst > 0.5, "\(isa) cell tanh: the sweep should show the fit's error")
            #expect(h[xs.count - 14] == 0 && h[xs.count - 13] == 0, "\(isa) tanh(±0)")
            #expect(h[xs.count - 12] == 1e-30 && h[xs.count - 4] == 1 && h[xs.count - 3] == 1 && h[xs.count - 2] == -1, "\(isa)")
            #expect(h[xs.count - 1].isNaN, "\(isa) tanh(NaN)")
        }
    }

    /// The `_x` forward kernels (input projection apart from the recurrent product, read in place or
    /// from table rows by id) give the bits of the plain kernels run on (projection + product).
    @Test func separateProjectionGivesTheSameBits() {
        var rng = SeededRNG(seed: 43)
        for (B, H) in Self.shapes {
            let V = 4
            let ids: [Int32] = (0..<B).map { Int32(($0 * 3 + 1) % V) }
            for G in [4, 3, 1] {
                let table = Self.random(V * G * H, rng: &rng), hh = Self.random(B * G * H, rng: &rng)
                let bias = Self.random(G * H, scale: 1, rng: &rng), bhh = Self.random(G * H, scale: 1, rng: &rng)
                let prev = Self.random(B * H, rng: &rng)
                // The projection rows gathered by id, and (for the plain kernels) plus the product.
                let gathered = (0..<(B * G * H)).map { table[Int(ids[$0 / (G * H)]) * G * H + $0 % (G * H)] }
                let summed = (0..<(B * G * H)).map { gathered[$0] + hh[$0] }
                Self.forEachISA { isa in
                    let zeros = [Float](repeating: 0, count: B * H)
                    switch G {
                    case 4:
                        var g = summed, c = zeros, h = zeros
                        rc_lstm_forward(B, H, &g, bias, prev, &c, &h)
                        var g1 = [Float](repeating: .nan, count: B * G * H), c1 = zeros, h1 = zeros
                        rc_lstm_forward_x(B, H, table, ids, hh, bias, prev, &g1, &c1, &h1)
                        var g2 = gathered, c2 = zeros, h2 = zeros
                        rc_lstm_forward_x(B, H, nil, nil, hh, bias, prev, &g2, &c2, &h2)
                        #expect(g1 == g && c1 == c && h1 == h, "\(isa) lstm from table rows B\(B) H\(H)")
                        #expect(g2 == g && c2 == c && h2 == h, "\(isa) lstm in place B\(B) H\(H)")
                    case 3:
                        var g = gathered, hn = zeros, h = zeros
                        rc_gru_forward(B, H, &g, hh, bias, bhh, prev, &hn, &h)
                        var g1 = [Float](repeating: .nan, count: B * G * H), hn1 = zeros, h1 = zeros
                        rc_gru_forward_x(B, H, table, ids, hh, bias, bhh, prev, &g1, &hn1, &h1)
                        var g2 = gathered, hn2 = zeros, h2 = zeros
                        rc_gru_forward_x(B, H, nil, nil, hh, bias, bhh, prev, &g2, &hn2, &h2)
                        #expect(g1 == g && hn1 == hn && h1 == h, "\(isa) gru from table rows B\(B) H\(H)")
                        #expect(g2 == g && hn2 == hn && h2 == h, "\(isa) gru in place B\(B) H\(H)")
                    default:
                        for relu: Int32 in [0, 1] {
                            var h = summed
                            rc_rnn_forward(B, H, &h, bias, relu)
                            var h1 = [Float](repeating: .nan, count: B * H)
                            rc_rnn_forward_x(B, H, table, ids, hh, bias, &h1, relu)
                            var h2 = gathered
                            rc_rnn_forward_x(B, H, nil, nil, hh, bias, &h2, relu)
                            #expect(h1 == h && h2 == h, "\(isa) rnn relu \(relu) B\(B) H\(H)")
                        }
                    }
                }
            }
        }
    }

    /// Saturation, signed zeros and NaN through the LSTM kernel's σ and tanh.
    @Test func lstmSpecialValues() {
        let xs: [Float] = [0, -0.0, 1e-8, -1e-8, 0.6249, -0.625, 20, -20, 90, -90, 1e30, -1e30, .infinity, -.infinity]
        Self.forEachISA { isa in
            for x in xs {
                var g: [Float] = [x, x, x, x]
                var c: [Float] = [0], h: [Float] = [0]
                rc_lstm_forward(1, 1, &g, [0, 0, 0, 0], [0], &c, &h)
                let s = Float(1 / (1 + Foundation.exp(-Double(x)))), t = Float(Foundation.tanh(Double(x)))
                #expect(abs(g[0] - s) <= 2e-7 && abs(g[2] - t) <= 2e-7, "\(isa) σ/tanh(\(x)) = \(g[0]), \(g[2])")
            }
            var g: [Float] = [.nan, 0, 0, 0], c: [Float] = [0], h: [Float] = [0]
            rc_lstm_forward(1, 1, &g, [0, 0, 0, 0], [0], &c, &h)
            #expect(g[0].isNaN && c[0].isNaN, "\(isa) NaN propagates")
        }
    }

    @Test func softmaxCrossEntropyMatchesDoubleReference() {
        var rng = SeededRNG(seed: 44)
        for (N, V) in [(1, 1), (3, 5), (4, 16), (7, 65), (2, 100), (3, 257)] {
            var z = Self.random(N * V, scale: 8, rng: &rng)
            z[0] += 500  // large logits must not overflow
            var targets = (0..<N).map { Int32($0 * 7 % V) }
            if N > 2 { targets[1] = -100 }
            let valid = targets.filter { $0 != -100 }.count
            let scale = 1 / Double(valid)
            var lossRef = 0.0, dRef = [Float](repeating: 0, count: N * V)
            for n in 0..<N where targets[n] != -100 {
                let row = z[(n * V)..<((n + 1) * V)].map(Double.init)
                let m = row.max()!
                let ls = Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) }) + m
                lossRef += ls - row[Int(targets[n])]
                for v in 0..<V { dRef[n * V + v] = Float((Foundation.exp(row[v] - ls) - (v == Int(targets[n]) ? 1 : 0)) * scale) }
            }
            Self.forEachISA { isa in
                var d = [Float](repeating: .nan, count: N * V)
                let loss = rc_softmax_xent(N, V, z, targets, -100, Float(scale), &d)
                #expect(abs(loss - lossRef) <= 1e-5 * max(1, abs(lossRef)), "\(isa) loss N\(N) V\(V): \(loss) vs \(lossRef)")
                Self.close(d, dRef, "\(isa) dLogits N\(N) V\(V)", tol: 1e-7)
            }
        }
    }

    @Test func addRowsSumsColumns() {
        var rng = SeededRNG(seed: 45)
        for (rows, cols) in [(1, 1), (3, 7), (17, 33), (50, 129)] {
            let x = Self.random(rows * (cols + 2), rng: &rng)
            let y0 = Self.random(cols, rng: &rng)
            var ref = y0
            for r in 0..<rows { for j in 0..<cols { ref[j] += x[r * (cols + 2) + j] } }
            Self.forEachISA { isa in
                var y = y0
                rc_add_rows(rows, cols, x, cols + 2, &y)
                Self.close(y, ref, "\(isa) add_rows \(rows)×\(cols)", tol: 1e-5)
            }
        }
    }

    /// Indexed rows: bit for bit the row-by-row rc_add_rows into the indexed rows (repeated and
    /// unused indices, a column offset and strides wider than the columns), within rounding of
    /// the plain sums.
    @Test func scatterAddRowsIsAddRowsRowByRow() {
        var rng = SeededRNG(seed: 47)
        for (rows, cols, V) in [(1, 1, 1), (5, 7, 3), (40, 33, 5), (257, 130, 65)] {
            let ldx = cols + 3, ldy = cols + 1
            let x = Self.random(rows * ldx, rng: &rng)
            let ids = (0..<rows).map { Int32(($0 * 7 + $0 / 3) % V) }
            let y0 = Self.random(V * ldy, rng: &rng)
            var plain = y0
            for r in 0..<rows { for j in 0..<cols { plain[Int(ids[r]) * ldy + j] += x[r * ldx + j] } }
            Self.forEachISA { isa in
                var rowByRow = y0
                rowByRow.withUnsafeMutableBufferPointer { y in
                    for r in 0..<rows {
                        x.withUnsafeBufferPointer { xp in
                            rc_add_rows(1, cols, xp.baseAddress! + r * ldx, ldx, y.baseAddress! + Int(ids[r]) * ldy)
                        }
                    }
                }
                var y = y0
                rc_scatter_add_rows(rows, cols, x, ldx, ids, &y, ldy)
                let differing = zip(y, rowByRow).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "\(isa) scatter \(rows)×\(cols) into \(V): \(differing) elements differ")
                Self.close(y, plain, "\(isa) scatter \(rows)×\(cols)", tol: 1e-4)
            }
        }
    }

    /// The gradient-norm sum: the 16-lane order written out in Swift, bit for bit on every ISA
    /// (squares of floats are exact in double), and within rounding of one running sum.
    @Test func sumOfSquaresIsTheSixteenLaneSumOnEveryISA() {
        var rng = SeededRNG(seed: 46)
        for n in [0, 1, 15, 16, 17, 100, 70_001] {
            let x = Self.random(n, scale: 2, rng: &rng)
            var lanes = [Double](repeating: 0, count: 16), plain = 0.0
            for i in 0..<n { lanes[i % 16] += Double(x[i]) * Double(x[i]); plain += Double(x[i]) * Double(x[i]) }
            let expected = lanes.reduce(0, +)
            Self.forEachISA { isa in
                let got = x.withUnsafeBufferPointer { rc_sum_squares(n, $0.baseAddress) }
                #expect(got.bitPattern == expected.bitPattern, "\(isa) n \(n): \(got) vs \(expected)")
                #expect(abs(got - plain) <= 1e-12 * max(1, plain), "\(isa) n \(n)")
            }
        }
    }

    @Test func unknownISAIsRefused() {
        #expect(rc_cells_set_thread_isa("bogus") == -1)
        #expect(rc_cells_set_thread_isa(nil) == 0)
    }
}
