import CKernels
import Foundation
import Testing
@testable import Recurrent

/// The batch-1 stepper against the whole-sequence model, and its GEMV kernels against the
/// reference loop.
struct StepperTests {
    static let isas = ["generic", "avx2", "avx512"].filter { (name: String) in rc_isa_supported(name) != 0 }

    static func model(_ kind: CellKind, layers: Int, hidden: Int, embedding: Int, vocabulary: Int, seed: UInt64) -> CharLM {
        let chars = Array("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars.prefix(vocabulary))
        var rng = SeededRNG(seed: seed)
        return CharLM(config: CharLMConfig(cell: kind, vocabulary: CharVocabulary(text: chars), embeddingSize: embedding,
                                           hiddenSize: hidden, numLayers: layers), rng: &rng)
    }

    /// Teacher-forced logits of the stepper vs `CharLM.logits` over one sequence, state carried.
    static func maxDifference(_ m: CharLM, tokens: [Int32], precision: CharLMStepper.Precision = .float32,
                              isa: String?, threads: Int) -> (logits: Float, state: Float) {
        var rng = SeededRNG(seed: 0)
        let V = m.config.vocabulary.count
        let (z, s) = m.logits(inputs: tokens, batch: 1, steps: tokens.count, state: nil, rng: &rng)
        let stepper = CharLMStepper(model: m, precision: precision, isa: isa)
        stepper.threads = threads
        var worst: Float = 0
        for (t, token) in tokens.enumerated() {
            let out = stepper.step(token: token)
            for v in 0..<V {
                let d = abs(out[v] - z.data[t * V + v]) / max(1, abs(z.data[t * V + v]))
                worst = d.isNaN ? .infinity : max(worst, d)   // NaN fails the check
            }
        }
        let st = stepper.state
        var ws: Float = 0
        for i in 0..<s.hidden.count { let d = abs(st.hidden.data[i] - s.hidden.data[i]); ws = d.isNaN ? .infinity : max(ws, d) }
        if let c = s.cell, let sc = st.cell { for i in 0..<c.count { ws = max(ws, abs(sc.data[i] - c.data[i])) } }
        return (worst, ws)
    }

    @Test(arguments: CellKind.allCases)
    func matchesModel(kind: CellKind) {
        var rng = SeededRNG(seed: 7)
        for (layers, hidden, embedding, vocabulary) in [(1, 37, 13, 11), (3, 37, 20, 11), (2, 64, 64, 40), (1, 5, 3, 2)] {
            let m = Self.model(kind, layers: layers, hidden: hidden, embedding: embedding, vocabulary: vocabulary, seed: rng.next())
            let tokens = (0..<23).map { _ in Int32(rng.next() % UInt64(vocabulary)) }
            for isa in Self.isas {
                for threads in [1, 2] {
                    let d = Self.maxDifference(m, tokens: tokens, isa: isa, threads: threads)
                    #expect(d.logits < 1e-5, "\(kind) L\(layers) H\(hidden) \(isa) \(threads) threads: logits off by \(d.logits)")
                    #expect(d.state < 1e-5, "\(kind) L\(layers) H\(hidden) \(isa) \(threads) threads: state off by \(d.state)")
                }
            }
        }
    }

    @Test(arguments: [CharLMStepper.Precision.bfloat16, .int8])
    func reducedPrecisionIsClose(precision: CharLMStepper.Precision) {
        for kind in CellKind.allCases {
            let m = Self.model(kind, layers: 2, hidden: 37, embedding: 16, vocabulary: 11, seed: 3)
            let tokens: [Int32] = (0..<40).map { Int32(($0 * 7 + 3) % 11) }
            for isa in Self.isas {
                let d = Self.maxDifference(m, tokens: tokens, precision: precision, isa: isa, threads: 2)
                #expect(d.logits < 3e-2, "\(kind) \(isa): \(precision) logits off by \(d.logits)")
            }
        }
        // The loss of a text changes by well under 0.01 nats/char.
        let m = Self.model(.lstm, layers: 2, hidden: 96, embedding: 32, vocabulary: 30, seed: 8)
        var rng = SeededRNG(seed: 4)
        let text = (0..<600).map { _ in Int32(rng.next() % 30) }
        let exact = CharLMStepper(model: m).evaluate(tokens: text).loss
        let reduced = CharLMStepper(model: m, precision: precision).evaluate(tokens: text).loss
        #expect(abs(exact - reduced) < 0.01, "\(precision): loss \(exact) → \(reduced)")
    }

    @Test func threadCountDoesNotChangeResults() {
        let m = Self.model(.lstm, layers: 2, hidden: 100, embedding: 30, vocabulary: 17, seed: 11)
        let one = CharLMStepper(model: m), two = CharLMStepper(model: m)
        one.threads = 1
        two.threads = 2
        for t in 0..<30 {
            let a = Array(one.step(token: Int32(t % 17))), b = Array(two.step(token: Int32(t % 17)))
            #expect(a == b)
        }
    }

    /// int8 sums are exact integers, so every ISA path (VNNI or portable C) and any thread count
    /// give the same bits; and they are those of a plain scalar model of the arithmetic.
    @Test func int8IsBitwiseTheSameOnEveryPath() {
        // The int8 sums are exact everywhere. The AVX2 and AVX-512 paths also share their
        // activations' arithmetic (FMA), so they give the same bits at any thread count; the
        // portable path computes sigmoid and tanh without FMA, so it agrees with itself across
        // thread counts and with the others to float rounding.
        for kind in CellKind.allCases {
            let m = Self.model(kind, layers: 2, hidden: 70, embedding: 12, vocabulary: 19, seed: 21)
            var reference: [String: [[Float]]] = [:]
            for isa in Self.isas {
                for threads in [1, 2] {
                    let s = CharLMStepper(model: m, precision: .int8, isa: isa)
                    #expect(s.isa == isa)
                    s.threads = threads
                    let run = (0..<25).map { Array(s.step(token: Int32(($0 * 5 + 1) % 19))) }
                    let family = isa == "generic" ? "generic" : "fma"
                    if let earlier = reference[family] {
                        #expect(run == earlier, "\(kind) \(isa) \(threads) threads differs")
                    } else {
                        reference[family] = run
                    }
                }
            }
            if let fma = reference["fma"], let portable = reference["generic"] {
                let d = zip(fma.joined(), portable.joined()).map { abs($0 - $1) }.max() ?? 0
                #expect(d < 2e-3, "\(kind): the portable path's logits differ by \(d)")
            }
        }
        // The kernel against the arithmetic written out: q = round(x·127/max|x|), W likewise per
        // row, y = init + float(Σ q_x q_w) · (s_row · s_x).
        var rng = SeededRNG(seed: 5)
        let rows = 37, k = 29
        let w = (0..<rows * k).map { _ in rng.uniform(-1, 1) }
        let x = (0..<k).map { _ in rng.uniform(-2, 2) }
        let initial = (0..<rows).map { _ in rng.uniform(-1, 1) }
        let xmax = x.map(abs).max()!, xs = xmax / 127, inv = 127 / xmax
        let qx = x.map { max(-127, min(127, ($0 * inv).rounded(.toNearestOrEven))) }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: rc_gemv_packed_bytes(rows, k, Int32(RC_PREC_INT8)), alignment: 64)
        defer { packed.deallocate() }
        rc_gemv_pack(w, rows, k, k, Int32(RC_PREC_INT8), packed)
        var expected = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let row = w[(r * k)..<(r * k + k)]
            let sw = row.map(abs).max()! / 127
            var sum = 0
            for (j, v) in row.enumerated() { sum += Int(max(-127, min(127, (v / sw).rounded(.toNearestOrEven)))) * Int(qx[j]) }
            expected[r] = initial[r].addingProduct(Float(sum), sw * xs)
        }
        for isa in Self.isas {
            var y = [Float](repeating: .nan, count: rows)
            #expect(rc_gemv_isa(isa, Int32(RC_PREC_INT8), packed, rows, k, x, initial, &y) == 0)
            #expect(y == expected, "\(isa): int8 kernel differs from the written-out arithmetic")
        }
    }

    /// A model whose state overflows has NaN logits: drawing from them is an error (as
    /// torch.multinomial's), greedy or not, where it drew a character as if they were a distribution.
    @Test func samplingNaNLogitsThrows() throws {
        let m = Self.model(.rnnRelu, layers: 1, hidden: 8, embedding: 4, vocabulary: 6, seed: 3)
        for p in m.rnn.parameters { p.value.data = p.value.data.map { $0 * 1e6 } }   // overflows within a few steps
        for greedy in [false, true] {
            let s = CharSampler(model: m, settings: SamplingSettings(temperature: 1, greedy: greedy), seed: 1)
            s.prime([1, 2, 3, 4, 5, 1, 2, 3])
            #expect(s.stepper.logits.contains { $0.isNaN }, "\(Array(s.stepper.logits))")
            #expect(throws: RecurrentError.nonFiniteLogits) { _ = try s.next() }
        }
        let logits: [Float] = [0, .infinity, 1]
        var scratch = [Float](repeating: 0, count: 6)
        #expect(rc_sample_logits(logits, 3, 1, 0, 1, 0.5, &scratch) == 1)    // greedy: +inf is the largest
        #expect(rc_sample_logits(logits, 3, 1, 0, 0, 0.5, &scratch) == -1)   // no softmax of +inf
    }

    /// Top-k keeps every value above the k-th and, of those equal to it, the lowest indices (as
    /// torch.topk): [5, 5, 9] with k 2 kept both 5s and dropped the 9.
    @Test func topKKeepsTheLargestPastTies() throws {
        var p = [Float](repeating: 0, count: 3), scratch = [Float](repeating: 0, count: 6)
        rc_softmax_topk([5, 5, 9], 3, 1, 2, &p, &scratch)
        #expect(p[1] == 0 && abs(p[2] - 1 / (1 + exp(-4))) < 1e-6 && abs(p[0] - exp(-4) / (1 + exp(-4))) < 1e-6, "\(p)")
        var q = [Float](repeating: 0, count: 4), s2 = [Float](repeating: 0, count: 8)
        rc_softmax_topk([7, 9, 7, 7], 4, 1, 3, &q, &s2)
        #expect(q[3] == 0 && q[0] > 0 && q[2] > 0 && q[1] > q[0], "\(q)")
        // Every score -inf: nothing to draw. A temperature of 0 or below is refused, not clamped.
        #expect(rc_sample_logits([-.infinity, -.infinity], 2, 1, 0, 0, 0.5, &scratch) == -1)
        #expect(rc_sample_logits([-.infinity, -.infinity], 2, 1, 0, 1, 0.5, &scratch) == -1)
        let m = Self.model(.gru, layers: 1, hidden: 8, embedding: 4, vocabulary: 6, seed: 3)
        for t: Float in [0, -1, .nan] {
            let sampler = CharSampler(model: m, settings: SamplingSettings(temperature: t), seed: 1)
            sampler.prime([1])
            #expect(throws: RecurrentError.self) { _ = try sampler.next() }
        }
    }

    @Test func samplerIsDeterministicAndMatchesEvaluate() throws {
        let m = Self.model(.gru, layers: 2, hidden: 48, embedding: 16, vocabulary: 20, seed: 5)
        func run() throws -> [Int32] {
            let s = CharSampler(model: m, settings: SamplingSettings(temperature: 0.8, topK: 5), seed: 42)
            s.prime([1, 2, 3])
            return try (0..<50).map { _ in try s.next() }
        }
        let a = try run()
        #expect(try a == run())
        let p = CharSampler(model: m, settings: SamplingSettings(temperature: 0.8, topK: 5), seed: 42)
        p.prime([1])
        let dist = p.distribution()
        #expect(abs(dist.reduce(0, +) - 1) < 1e-5)
        #expect(dist.filter { $0 > 0 }.count == 5)
        let tokens: [Int32] = [1, 2, 3] + a
        let e1 = m.evaluate(tokens: tokens), e2 = CharLMStepper(model: m).evaluate(tokens: tokens)
        #expect(abs(e1.loss - e2.loss) < 1e-5)
        // Fed in uneven pieces, the evaluator scores the same chunks: the same bits.
        for chunk in [1, 3, 7] {
            let evaluator = CharLMEvaluator(model: m, chunk: chunk)
            var start = 0, size = 1
            while start < tokens.count {
                evaluator.feed(Array(tokens[start..<min(tokens.count, start + size)]))
                start += size
                size = size % 5 + 1
            }
            let fed = evaluator.finish()
            #expect(fed == m.evaluate(tokens: tokens, chunk: chunk), "chunk \(chunk)")
            #expect(fed.characters == tokens.count - 1)
        }
    }

    @Test func gemvMatchesReference() {
        var rng = SeededRNG(seed: 99)
        for (rows, k) in [(1, 1), (16, 1), (17, 3), (37, 29), (48, 64), (64, 100), (5, 513), (128, 77)] {
            let w = (0..<rows * k).map { _ in rng.uniform(-1, 1) }
            let x = (0..<k).map { _ in rng.uniform(-1, 1) }
            let initial = (0..<rows).map { _ in rng.uniform(-1, 1) }
            var ref = [Float](repeating: 0, count: rows)
            rc_gemv_reference(w, rows, k, k, x, initial, &ref)
            for precision in [Int32(RC_PREC_F32), Int32(RC_PREC_BF16), Int32(RC_PREC_INT8)] {
                let bytes = rc_gemv_packed_bytes(rows, k, precision)
                let packed = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                defer { packed.deallocate() }
                rc_gemv_pack(w, rows, k, k, precision, packed)
                // bf16: compare with the reference over the rounded weights' bound.
                let tol: Float = precision == RC_PREC_F32 ? 1e-5 : (precision == RC_PREC_BF16 ? 1e-2 : 2e-2)
                for isa in Self.isas {
                    var y = [Float](repeating: .nan, count: rows)
                    #expect(rc_gemv_isa(isa, precision, packed, rows, k, x, initial, &y) == 0)
                    let scale = Float(k).squareRoot()
                    let err = zip(y, ref).map { abs($0 - $1) }.max() ?? 0
                    #expect(err < tol * scale, "\(isa) prec \(precision) \(rows)x\(k): \(err)")
                }
            }
        }
    }
}
