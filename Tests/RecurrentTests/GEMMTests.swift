import CKernels
import Foundation
import Testing
@testable import Recurrent

/// Checks the blocked, dispatched GEMM against the naive reference, and the vectorised activations
/// against Foundation. Serialized because some tests switch the global ISA / thread count.
@Suite(.serialized) struct GEMMTests {
    static let isas = ["generic", "avx2", "avx512"]

    /// One random product through `rc_sgemm_isa` (or the public API when `isa` is nil), compared
    /// with the reference. Returns the worst relative error (scaled by magnitude of the terms).
    static func check(isa: String?, threads: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                      pad: Int, alpha: Float, beta: Float, rng: inout SeededRNG) -> Bool {
        let lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
        let aRows = transA ? k : m, bRows = transB ? n : k
        let a = (0..<max(1, aRows * lda)).map { _ in rng.uniform(-1, 1) }
        let b = (0..<max(1, bRows * ldb)).map { _ in rng.uniform(-1, 1) }
        var c = (0..<max(1, m * ldc)).map { _ in rng.uniform(-1, 1) }
        if beta == 0 { c = [Float](repeating: .nan, count: c.count) }
        var ref = c
        if beta == 0 { ref = [Float](repeating: 0, count: c.count) }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    if let isa {
                        let r = rc_sgemm_isa(isa, Int32(threads), transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha,
                                             ap.baseAddress, lda, bp.baseAddress, ldb, beta, cp.baseAddress, ldc)
                        precondition(r == 0)
                    } else {
                        Threading.count = threads
                        GEMM.multiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                      a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                      beta: beta, c: cp.baseAddress!, ldc: ldc)
                    }
                }
                ref.withUnsafeMutableBufferPointer { rp in
                    GEMM.reference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                   a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                   beta: beta, c: rp.baseAddress!, ldc: ldc)
                }
            }
        }
        let tol = 1e-5 * Float(max(k, 1))
        for i in 0..<m {
            for j in 0..<n {
                let x = c[i * ldc + j], r = ref[i * ldc + j]
                // entries are sums of k products of magnitude <= 1: scale the error accordingly
                let err = abs(x - r) / max(1, abs(r))
                if !(err <= tol) {
                    Issue.record("\(isa ?? "api") threads=\(threads) tA=\(transA) tB=\(transB) \(m)x\(n)x\(k) pad=\(pad) alpha=\(alpha) beta=\(beta): C[\(i),\(j)]=\(x) ref=\(r)")
                    return false
                }
            }
            // padding columns of C must be untouched
            for j in n..<ldc {
                let x = c[i * ldc + j], r = ref[i * ldc + j]
                if !(x == r || (x.isNaN && beta == 0)) {
                    Issue.record("padding of C modified at [\(i),\(j)]")
                    return false
                }
            }
        }
        return true
    }

    @Test func allPathsMatchReference() {
        var rng = SeededRNG(seed: 42)
        let sizes = [1, 3, 17, 31, 33, 65, 129, 200]
        for isa in Self.isas where rc_isa_supported(isa) != 0 {
            for threads in [1, 2] {
                for t in 0..<4 {
                    for (si, m) in sizes.enumerated() {
                        // a spread of (n, k) partners for each m rather than the full cube
                        let n = sizes[(si * 3 + t) % sizes.count]
                        let k = sizes[(si * 5 + t + 1) % sizes.count]
                        let alpha: Float = [1, -0.7, 2.5][(si + t) % 3]
                        let beta: Float = [0, 1, 0.5, -1.5][(si + t + threads) % 4]
                        let ok = Self.check(isa: isa, threads: threads, transA: t & 1 != 0, transB: t & 2 != 0,
                                            m: m, n: n, k: k, pad: (si + t) % 3 * 5, alpha: alpha, beta: beta, rng: &rng)
                        if !ok { return }
                    }
                }
            }
        }
    }

    /// The pre-packed right operand gives bitwise the products of `multiplySerial` (and the
    /// reference within rounding), on odd sizes, both layouts of B, K over several cache blocks.
    /// M of 8·n + 1 and 8·n + 2 take the thin-row kernels (one or two rows over several B panels),
    /// with N ending in a full, a partial and a lone panel.
    @Test func packedRightOperandMatches() {
        var rng = SeededRNG(seed: 11)
        for (m, n, k, transB) in [(1, 1, 1, false), (7, 49, 33, true), (17, 200, 65, false), (33, 96, 700, true), (64, 2048, 129, true), (5, 31, 513, false),
                                  (26, 256, 256, false), (10, 100, 300, true), (9, 520, 70, false), (2, 144, 40, true), (18, 150, 800, false), (25, 1024, 256, true),
                                  (13, 64, 300, false), (31, 16, 70, true), (16, 250, 40, false), (25, 256, 500, true)] {
            let lda = k + 2, ldb = (transB ? k : n) + 1, ldc = n + 3
            let a = (0..<(m * lda)).map { _ in rng.uniform(-1, 1) }
            let b = (0..<((transB ? n : k) * ldb)).map { _ in rng.uniform(-1, 1) }
            let c0 = (0..<(m * ldc)).map { _ in rng.uniform(-1, 1) }
            var packed = [Float](repeating: .nan, count: GEMM.packedCount(k: k, n: n))
            packed.withUnsafeMutableBufferPointer { p in GEMM.pack(transB: transB, k: k, n: n, b: b, ldb: ldb, into: p.baseAddress!) }
            for beta: Float in [0, 1] {
                var fast = c0, serial = c0, reference = c0
                GEMM.multiplyPacked(m: m, n: n, k: k, a: a, lda: lda, packed: packed, beta: beta, c: &fast, ldc: ldc)
                GEMM.multiplySerial(transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &serial, ldc: ldc)
                GEMM.reference(transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &reference, ldc: ldc)
                #expect(fast == serial, "m \(m) n \(n) k \(k) transB \(transB) beta \(beta)")
                // Asking for other rows meanwhile (here A's) changes nothing.
                var prefetching = c0
                a.withUnsafeBytes { ab in
                    GEMM.multiplyPacked(m: m, n: n, k: k, a: a, lda: lda, packed: packed, beta: beta, c: &prefetching, ldc: ldc,
                                        prefetching: ab.baseAddress!, bytes: ab.count)
                }
                #expect(prefetching == fast, "prefetching: m \(m) n \(n) k \(k) beta \(beta)")
                let err = zip(fast, reference).map { abs($0 - $1) }.max() ?? 0
                #expect(err < 1e-3, "m \(m) n \(n) k \(k): max |error| \(err)")
                // Only C's m×n block is written: the padding columns keep their values.
                #expect((0..<m).allSatisfy { r in (n..<ldc).allSatisfy { fast[r * ldc + $0] == c0[r * ldc + $0] } })
            }
        }
    }

    /// rc_pack_b_all shares its panels out across threads when the operand is big enough; the
    /// packed floats (padding included) are the same for 1, 2 and 3 threads.
    @Test func packingSplitAcrossThreadsGivesTheSameLayout() {
        let saved = Threading.count
        defer { Threading.count = saved }
        var rng = SeededRNG(seed: 50)
        for (k, n, transB) in [(256, 520, false), (700, 200, true), (128, 512, true), (1000, 50, false)] {
            let ldb = (transB ? k : n) + 1
            let b = (0..<((transB ? n : k) * ldb)).map { _ in rng.uniform(-1, 1) }
            var first: [Float]?
            for threads in [1, 2, 3] {
                Threading.count = threads
                var packed = [Float](repeating: .nan, count: GEMM.packedCount(k: k, n: n))
                packed.withUnsafeMutableBufferPointer { p in GEMM.pack(transB: transB, k: k, n: n, b: b, ldb: ldb, into: p.baseAddress!) }
                if let first {
                    let differing = zip(packed, first).filter { $0.bitPattern != $1.bitPattern }.count
                    #expect(differing == 0, "k \(k) n \(n) transB \(transB), \(threads) threads: \(differing) floats differ")
                } else {
                    #expect(!packed.contains { $0.isNaN }, "k \(k) n \(n): every float written")
                    first = packed
                }
            }
        }
    }

    @Test func largerShapesAndThreadSplits() {
        var rng = SeededRNG(seed: 7)
        // large enough to use several cache blocks (K > KC, M > MC, N > NC) and to be split across
        // threads (M*N*K above the threshold) in both directions
        let shapes: [(Int, Int, Int, Bool, Bool)] = [
            (300, 700, 300, false, false), (700, 40, 257, true, false), (50, 512, 128, false, true),
            (5, 3000, 200, true, true), (1000, 17, 150, false, false),
        ]
        let best = Self.isas.last { rc_isa_supported($0) != 0 }!
        for (m, n, k, tA, tB) in shapes {
            for threads in [1, 2, 3] {
                _ = Self.check(isa: best, threads: threads, transA: tA, transB: tB, m: m, n: n, k: k,
                               pad: 3, alpha: 0.5, beta: threads == 2 ? 0 : 1, rng: &rng)
            }
        }
    }

    @Test func publicAPIWithThreadCounts() {
        var rng = SeededRNG(seed: 3)
        let saved = Threading.count
        defer { Threading.count = saved }
        #expect(saved >= 1)
        for threads in [1, 2] {
            _ = Self.check(isa: nil, threads: threads, transA: false, transB: true, m: 129, n: 200, k: 65,
                           pad: 1, alpha: 1, beta: 0, rng: &rng)
            _ = Self.check(isa: nil, threads: threads, transA: true, transB: false, m: 33, n: 600, k: 31,
                           pad: 0, alpha: -1, beta: 1, rng: &rng)
        }
        Threading.count = 0
        #expect(Threading.count == 1)
    }

    /// Row-split products with N ≤ 256 and K blocks of at least 128 read A in place (the per-step
    /// products' tiles) where one thread packs it: the same bits for 1, 2 and 3 threads, also with K
    /// over several blocks, ragged M and N, padded rows and beta 1.
    @Test func inPlaceARowSplitMatchesOneThreadBitwise() {
        var rng = SeededRNG(seed: 19)
        let best = Self.isas.last { rc_isa_supported($0) != 0 }!
        for (m, n, k, transB) in [(1000, 256, 300, true), (2003, 65, 256, true), (777, 100, 129, false), (641, 17, 1000, false),
                                  (500, 250, 700, true)] {
            let lda = k + 3, ldb = (transB ? k : n) + 1, ldc = n + 2
            let a = (0..<(m * lda)).map { _ in rng.uniform(-1, 1) }
            let b = (0..<((transB ? n : k) * ldb)).map { _ in rng.uniform(-1, 1) }
            let c0 = (0..<(m * ldc)).map { _ in rng.uniform(-1, 1) }
            func run(_ threads: Int) -> [Float] {
                var c = c0
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            _ = rc_sgemm_isa(best, Int32(threads), 0, transB ? 1 : 0, m, n, k, 1, ap.baseAddress, lda,
                                             bp.baseAddress, ldb, 1, cp.baseAddress, ldc)
                        }
                    }
                }
                return c
            }
            let one = run(1)
            var ref = c0
            GEMM.reference(transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: &ref, ldc: ldc)
            let err = zip(one, ref).map { abs($0 - $1) }.max() ?? 0
            #expect(err < 1e-3, "m \(m) n \(n) k \(k): max |error| \(err)")
            for threads in [2, 3] {
                let other = run(threads)
                let differing = zip(one, other).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "m \(m) n \(n) k \(k) transB \(transB), \(threads) threads: \(differing) differ")
            }
        }
    }

    @Test func deterministicAcrossThreadCounts() {
        var rng = SeededRNG(seed: 11)
        let m = 123, n = 517, k = 300
        let a = (0..<m * k).map { _ in rng.uniform(-1, 1) }
        let b = (0..<k * n).map { _ in rng.uniform(-1, 1) }
        let best = Self.isas.last { rc_isa_supported($0) != 0 }!
        func run(_ threads: Int) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        _ = rc_sgemm_isa(best, Int32(threads), 0, 0, m, n, k, 1, ap.baseAddress, k,
                                         bp.baseAddress, n, 0, cp.baseAddress, n)
                    }
                }
            }
            return c
        }
        let one = run(1)
        #expect(run(1) == one)
        #expect(run(2) == run(2))
        #expect(run(2) == one)
    }

    /// The two split strategies of large products: K slices (long K against M and N, as the weight
    /// gradients) and row chunks sharing one packed B (alpha = 1). Both must match the reference
    /// and give the same bits for any thread count.
    @Test func kSplitAndSharedPackingMatchAndAreDeterministic() {
        var rng = SeededRNG(seed: 13)
        let best = Self.isas.last { rc_isa_supported($0) != 0 }!
        let shapes: [(Int, Int, Int, Bool, Bool)] = [
            (64, 48, 3000, true, false), (33, 70, 5003, false, true), (130, 65, 2600, true, true),   // K slices
            (700, 100, 300, false, true), (1000, 96, 200, true, false), (517, 61, 450, false, false), // shared packed B
        ]
        for (m, n, k, tA, tB) in shapes {
            for threads in [1, 2, 3] {
                _ = Self.check(isa: best, threads: threads, transA: tA, transB: tB, m: m, n: n, k: k,
                               pad: 2, alpha: 1, beta: threads == 2 ? 0 : 1, rng: &rng)
            }
            let a = (0..<m * k).map { _ in rng.uniform(-1, 1) }
            let b = (0..<k * n).map { _ in rng.uniform(-1, 1) }
            let c0 = (0..<m * n).map { _ in rng.uniform(-1, 1) }
            func run(_ threads: Int) -> [Float] {
                var c = c0
                _ = rc_sgemm_isa(best, Int32(threads), tA ? 1 : 0, tB ? 1 : 0, m, n, k, 1, a, tA ? m : k, b, tB ? k : n, 1, &c, n)
                return c
            }
            let one = run(1)
            #expect(run(2) == one, "\(m)x\(n)x\(k): 2 threads differ from 1")
            #expect(run(3) == one, "\(m)x\(n)x\(k): 3 threads differ from 1")
        }
    }

    /// A product big enough (M·N·K ≥ 2²⁶) for several guided-size row chunks per thread in the
    /// shared-B split: 2 and 3 threads give the bits of 1, and sampled rows (the last included)
    /// match the reference.
    @Test func guidedChunksOfBigProductsCoverEveryRow() {
        var rng = SeededRNG(seed: 31)
        let m = 1100, n = 64, k = 960
        let best = Self.isas.last { rc_isa_supported($0) != 0 }!
        let a = (0..<m * k).map { _ in rng.uniform(-1, 1) }
        let b = (0..<n * k).map { _ in rng.uniform(-1, 1) }
        let c0 = (0..<m * n).map { _ in rng.uniform(-1, 1) }
        func run(_ threads: Int) -> [Float] {
            var c = c0
            #expect(rc_sgemm_isa(best, Int32(threads), 0, 1, m, n, k, 1, a, k, b, k, 1, &c, n) == 0)
            return c
        }
        let one = run(1)
        for threads in [2, 3] {
            let got = run(threads)
            let differing = zip(got, one).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(threads) threads: \(differing) elements differ from 1 thread")
        }
        var worst: Float = 0
        for i in Array(stride(from: 0, to: m, by: 37)) + [m - 1] {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[j * k + p]) }
                let want = Float(s) + c0[i * n + j]
                worst = max(worst, abs(one[i * n + j] - want) / max(1, abs(want)))
            }
        }
        #expect(worst <= 1e-5 * Float(k), "error \(worst) against the reference")
    }

    /// Two products with one left operand (`rc_sgemm_pair`, a layer's dW_ih and dW_hh): on every
    /// path (K slices, shared packed B, serial with B read in place, too wide to pair) and ISA, with
    /// 1–3 threads, the bits of two `rc_sgemm` calls, within rounding of the reference, and the
    /// padding of both outputs untouched.
    @Test func pairOfProductsIsTwoProductsBitForBit() {
        var rng = SeededRNG(seed: 17)
        let shapes: [(m: Int, n: Int, k: Int, tA: Bool)] = [
            (96, 80, 1500, true),                           // K slices (the dW shapes)
            (300, 100, 200, true), (517, 61, 450, false),   // row split with a shared packed B
            (20, 30, 40, true), (17, 50, 9, false),         // serial, B read in place
            (9, 1000, 800, true),                           // blocks too large to pair: two products
        ]
        for s in shapes {
            let pad = 3, lda = (s.tA ? s.m : s.k) + pad, ldb = s.n + pad, ldc = s.n + pad
            let a = (0..<(s.tA ? s.k : s.m) * lda).map { _ in rng.uniform(-1, 1) }
            let b1 = (0..<s.k * ldb).map { _ in rng.uniform(-1, 1) }, b2 = (0..<s.k * ldb).map { _ in rng.uniform(-1, 1) }
            let c1 = (0..<s.m * ldc).map { _ in rng.uniform(-1, 1) }, c2 = (0..<s.m * ldc).map { _ in rng.uniform(-1, 1) }
            for isa in Self.isas where rc_isa_supported(isa) != 0 {
                for threads in [1, 2, 3] {
                    for beta: Float in [0, 1] {
                        let label = "\(isa) \(threads) threads \(s.m)×\(s.n)×\(s.k) tA \(s.tA) beta \(beta)"
                        var p1 = c1, p2 = c2, q1 = c1, q2 = c2
                        #expect(rc_sgemm_pair_isa(isa, Int32(threads), s.tA ? 1 : 0, 0, s.m, s.n, s.k, 1, a, lda,
                                                  b1, ldb, b2, ldb, beta, &p1, ldc, &p2, ldc) == 0)
                        _ = rc_sgemm_isa(isa, Int32(threads), s.tA ? 1 : 0, 0, s.m, s.n, s.k, 1, a, lda, b1, ldb, beta, &q1, ldc)
                        _ = rc_sgemm_isa(isa, Int32(threads), s.tA ? 1 : 0, 0, s.m, s.n, s.k, 1, a, lda, b2, ldb, beta, &q2, ldc)
                        #expect(p1.map(\.bitPattern) == q1.map(\.bitPattern), "\(label): first product")
                        #expect(p2.map(\.bitPattern) == q2.map(\.bitPattern), "\(label): second product")
                        guard isa == Self.isas.last(where: { rc_isa_supported($0) != 0 }), threads == 2 else { continue }
                        for (b, c, p) in [(b1, c1, p1), (b2, c2, p2)] {
                            var ref = c
                            GEMM.reference(transA: s.tA, transB: false, m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb,
                                           beta: beta, c: &ref, ldc: ldc)
                            let worst = zip(p, ref).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                            #expect(worst <= 1e-5 * Float(s.k), "\(label): error \(worst) against the reference")
                            for i in 0..<s.m { #expect(p[(i * ldc + s.n)..<((i + 1) * ldc)] == c[(i * ldc + s.n)..<((i + 1) * ldc)], "\(label): padding") }
                        }
                    }
                }
            }
        }
    }

    /// K-split products big enough that the slices' partial sums are added by row bands across
    /// threads (M·N·operands ≥ 2¹⁵): the same bits for 1, 2 and 3 threads, single and paired, and
    /// within rounding of the reference.
    @Test func kSplitPartialSumsAddedInBandsKeepTheBits() {
        var rng = SeededRNG(seed: 51)
        let isa = Self.isas.last { rc_isa_supported($0) != 0 }!
        for (m, n, k) in [(128, 128, 600), (192, 176, 420)] {
            let lda = m + 1, ldb = n + 2, ldc = n + 3
            let a = (0..<k * lda).map { _ in rng.uniform(-1, 1) }
            let b1 = (0..<k * ldb).map { _ in rng.uniform(-1, 1) }, b2 = (0..<k * ldb).map { _ in rng.uniform(-1, 1) }
            let c1 = (0..<m * ldc).map { _ in rng.uniform(-1, 1) }, c2 = (0..<m * ldc).map { _ in rng.uniform(-1, 1) }
            var firstSingle: [UInt32]?, firstPair: [[UInt32]]?
            for threads in [1, 2, 3] {
                var single = c1, p1 = c1, p2 = c2
                _ = rc_sgemm_isa(isa, Int32(threads), 1, 0, m, n, k, 1, a, lda, b1, ldb, 1, &single, ldc)
                #expect(rc_sgemm_pair_isa(isa, Int32(threads), 1, 0, m, n, k, 1, a, lda, b1, ldb, b2, ldb, 1, &p1, ldc, &p2, ldc) == 0)
                let label = "\(m)×\(n)×\(k), \(threads) threads"
                if let firstSingle, let firstPair {
                    #expect(single.map(\.bitPattern) == firstSingle, "\(label): single product")
                    #expect([p1.map(\.bitPattern), p2.map(\.bitPattern)] == firstPair, "\(label): pair")
                } else {
                    firstSingle = single.map(\.bitPattern)
                    firstPair = [p1.map(\.bitPattern), p2.map(\.bitPattern)]
                }
                var ref = c1
                GEMM.reference(transA: true, transB: false, m: m, n: n, k: k, a: a, lda: lda, b: b1, ldb: ldb, beta: 1, c: &ref, ldc: ldc)
                let worst = zip(single, ref).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst <= 1e-5 * Float(k).squareRoot(), "\(label): error \(worst) against the reference")
            }
        }
    }

    /// N over three NC blocks on every path: op(B) packed one block at a time, two at a time (a
    /// ragged last group) or all at once (the default) gives the same bits, serially and in the
    /// shared-B row split, with B read in place or packed; and the result is the product.
    @Test func columnGroupsGiveTheBitsOfOneBlockAtATime() {
        var rng = SeededRNG(seed: 29)
        let m = 40, n = 2100, k = 260, pad = 3
        let saved = rc_set_column_group_blocks(0)
        defer { rc_set_column_group_blocks(saved) }
        for transB in [false, true] {
            let lda = k + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
            let a = (0..<m * lda).map { _ in rng.uniform(-1, 1) }
            let b = (0..<(transB ? n : k) * ldb).map { _ in rng.uniform(-1, 1) }
            let c = (0..<m * ldc).map { _ in rng.uniform(-1, 1) }
            for isa in Self.isas where rc_isa_supported(isa) != 0 {
                for threads in [1, 2] {
                    var results: [[Float]] = []
                    for blocks in [1, 2, 0] {
                        rc_set_column_group_blocks(Int32(blocks))
                        var out = c
                        #expect(rc_sgemm_isa(isa, Int32(threads), 0, transB ? 1 : 0, m, n, k, 1, a, lda, b, ldb, 1, &out, ldc) == 0)
                        results.append(out)
                    }
                    let label = "\(isa) \(threads) threads transB \(transB)"
                    func differing(_ x: [Float], _ y: [Float]) -> Int { zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count }
                    #expect(differing(results[1], results[0]) == 0, "\(label): two blocks per group")
                    #expect(differing(results[2], results[0]) == 0, "\(label): one group")
                    var ref = c
                    GEMM.reference(transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                   beta: 1, c: &ref, ldc: ldc)
                    let worst = zip(results[2], ref).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                    #expect(worst <= 1e-5 * Float(k), "\(label): error \(worst) against the reference")
                }
            }
        }
    }

    /// Back-to-back pool jobs whose chunk counts alternate (as the shared-B products do: a pack
    /// job, then a compute job): every chunk runs exactly once, and before its job returns. A
    /// worker left over from the previous job once claimed a chunk that did not exist and
    /// counted it done in the next job, which then returned while it still ran.
    @Test func poolJobsRunEachChunkOnceBeforeReturning() {
        let saved = Threading.count
        defer { Threading.count = saved }
        Threading.count = 2
        let rounds = 20_000, width = 8
        let runs = UnsafeMutablePointer<Int32>.allocate(capacity: rounds * width)
        runs.initialize(repeating: 0, count: rounds * width)
        defer { runs.deallocate() }
        // Jobs back to back (checked afterwards), so a late worker overlaps the next job's set-up.
        for round in 0..<rounds {
            let n = round % 2 == 0 ? 2 : 7
            Threading.parallel(n) { i in runs[round * width + i] += 1 }
        }
        var bad = 0
        for round in 0..<rounds {
            let n = round % 2 == 0 ? 2 : 7
            for i in 0..<width where runs[round * width + i] != (i < n ? 1 : 0) { bad += 1 }
        }
        #expect(bad == 0, "\(bad) chunk slots ran a wrong number of times")
    }

    /// The same invariant at C speed, where jobs follow each other within nanoseconds (as the
    /// shared-B products' pack and compute jobs do).
    @Test func poolJobsBackToBackInC() {
        #expect(rc_pool_stress(200_000, 2) == 0)
    }

    /// Edge tiles (fewer rows than the register tile) run their own kernels; each element's sum
    /// must still be bitwise the one a full tile computes. Rows of a 25-row product (3 full
    /// tiles and a 1-row edge) against the same rows computed in full 8-row tiles.
    @Test func edgeTilesGiveTheBitsOfFullTiles() {
        var rng = SeededRNG(seed: 17)
        for (m, n, k) in [(25, 100, 130), (13, 48, 7), (31, 200, 64), (16, 256, 40), (9, 33, 500)] {
            let a = (0..<m * k).map { _ in rng.uniform(-1, 1) }
            let b = (0..<k * n).map { _ in rng.uniform(-1, 1) }
            for isa in Self.isas where rc_isa_supported(isa) != 0 {
                var whole = [Float](repeating: 0, count: m * n)
                _ = rc_sgemm_isa(isa, 1, 0, 0, m, n, k, 1, a, k, b, n, 0, &whole, n)
                // Each row r inside an 8-row product whose other rows are copies of it: a full tile.
                for r in 0..<m {
                    let rows8 = (0..<8).flatMap { _ in a[(r * k)..<(r * k + k)] }
                    var c8 = [Float](repeating: 0, count: 8 * n)
                    _ = rc_sgemm_isa(isa, 1, 0, 0, 8, n, k, 1, rows8, k, b, n, 0, &c8, n)
                    #expect(Array(c8[0..<n]) == Array(whole[(r * n)..<(r * n + n)]), "\(isa) \(m)x\(n)x\(k): row \(r) differs")
                }
                // Ragged column panels (n = 100 = 2·48 + 4 needs one vector in its last panel, 200 =
                // 4·48 + 8 one as well): the same bits as in a product wide enough to have no
                // ragged panel, whose extra columns are random.
                let wideN = (n + 47) / 48 * 48 + 48
                var bWide = [Float](repeating: 0, count: k * wideN)
                for kk in 0..<k {
                    for j in 0..<wideN { bWide[kk * wideN + j] = j < n ? b[kk * n + j] : rng.uniform(-1, 1) }
                }
                var wide = [Float](repeating: 0, count: m * wideN)
                _ = rc_sgemm_isa(isa, 1, 0, 0, m, wideN, k, 1, a, k, bWide, wideN, 0, &wide, wideN)
                for r in 0..<m {
                    #expect(Array(wide[(r * wideN)..<(r * wideN + n)]) == Array(whole[(r * n)..<(r * n + n)]),
                            "\(isa) \(m)x\(n)x\(k): row \(r) differs from the wide product")
                }
            }
        }
    }

    @Test func concurrentCallers() {
        // Several threads calling the threaded GEMM at once: one gets the pool, the others run
        // serially; every result must still match the reference.
        let saved = Threading.count
        defer { Threading.count = saved }
        Threading.count = 2
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            var rng = SeededRNG(seed: UInt64(100 + t))
            for round in 0..<3 {
                let ok = Self.check(isa: nil, threads: 2, transA: t & 1 != 0, transB: round & 1 != 0,
                                    m: 150 + t, n: 130, k: 140, pad: t, alpha: 1, beta: 0.5, rng: &rng)
                if !ok { failures.add() }
            }
        }
        #expect(failures.count == 0)
    }

    final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add() { lock.lock(); n += 1; lock.unlock() }
        var count: Int { lock.lock(); defer { lock.unlock() }; return n }
    }

    @Test func zeroDepthScalesC() {
        for isa in Self.isas where rc_isa_supported(isa) != 0 {
            var c: [Float] = [1, 2, 3, 4, 5, 6]
            let dummy: [Float] = [0]
            _ = rc_sgemm_isa(isa, 2, 0, 0, 2, 3, 0, 1, dummy, 1, dummy, 3, 0.5, &c, 3)
            #expect(c == [0.5, 1, 1.5, 2, 2.5, 3])
            c = [.nan, .nan, .nan, .nan, .nan, .nan]
            _ = rc_sgemm_isa(isa, 1, 1, 1, 2, 3, 0, 1, dummy, 2, dummy, 1, 0, &c, 3)
            #expect(c == [0, 0, 0, 0, 0, 0])
        }
    }

    @Test func forcedISA() {
        #expect(Self.isas.contains(GEMM.isa))
        let natural = GEMM.isa
        defer { _ = rc_force_isa(nil) }
        for isa in Self.isas where rc_isa_supported(isa) != 0 {
            #expect(rc_force_isa(isa) == 0)
            #expect(GEMM.isa == isa)
            var rng = SeededRNG(seed: 5)
            _ = Self.check(isa: nil, threads: 2, transA: true, transB: true, m: 65, n: 129, k: 17,
                           pad: 2, alpha: 1.5, beta: 0.5, rng: &rng)
        }
        #expect(rc_force_isa("bogus") == -1)
        _ = rc_force_isa(nil)
        #expect(GEMM.isa == natural)
    }

    // MARK: activations

    static func activationInputs() -> [Float] {
        var xs: [Float] = [0, -0.0, 1e-8, -1e-8, 1e-30, -1e-30, 0.1, -0.1, 0.5, -0.5, 0.6249, 0.625, -0.625,
                           1, -1, 2, -2, 5, -5, 9, -9, 15, -15, 20, -20, 40, -40, 87, -87, 88.5, -88.5, 89, -89,
                           100, -100, 103, -103, 110, -110, 1e10, -1e10, .greatestFiniteMagnitude,
                           -.greatestFiniteMagnitude, .infinity, -.infinity]
        var x: Float = -30
        while x <= 30 { xs.append(x); x += 0.0137 }
        return xs
    }

    static func checkActivations(_ label: String) {
        let xs = activationInputs()
        for (name, f, ref) in [("sigmoid", Vector.sigmoid, { (x: Double) in 1 / (1 + Foundation.exp(-x)) }),
                               ("tanh", Vector.tanh, { (x: Double) in Foundation.tanh(x) })] as
                [(String, (UnsafeMutablePointer<Float>, Int) -> Void, (Double) -> Double)] {
            // every length 0..<40 exercises the vector tails too
            for len in [xs.count, 1, 7, 17, 33] {
                var v = Array(xs.prefix(len))
                v.withUnsafeMutableBufferPointer { f($0.baseAddress!, len) }
                for i in 0..<len {
                    let r = ref(Double(xs[i]))
                    let got = Double(v[i])
                    let err = abs(got - r)
                    if !(err <= 2e-6 * abs(r) + 1e-38) {
                        Issue.record("\(label) \(name)(\(xs[i])) = \(got), expected \(r)")
                        return
                    }
                }
            }
            var z: [Float] = [0]
            z.withUnsafeMutableBufferPointer { f($0.baseAddress!, 1) }
            #expect(z[0] == (name == "tanh" ? 0 : 0.5), "\(label) \(name)(0)")
            var inf: [Float] = [.infinity, -.infinity, 1e30, -1e30]
            inf.withUnsafeMutableBufferPointer { f($0.baseAddress!, 4) }
            if name == "tanh" { #expect(inf == [1, -1, 1, -1], "\(label)") } else { #expect(inf == [1, 0, 1, 0], "\(label)") }
        }
    }

    @Test func activationsMatchFoundation() {
        defer { _ = rc_force_isa(nil) }
        for isa in Self.isas where rc_isa_supported(isa) != 0 {
            #expect(rc_force_isa(isa) == 0)
            Self.checkActivations(isa)
        }
    }
}
