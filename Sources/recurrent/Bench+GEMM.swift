import Foundation
import Recurrent

extension Bench {
    /// The matrix products of one lstm512 training step (B 64, T 100, H 512, 4 gates) and a large
    /// square one, timed alone: GFLOP/s, the share of the fixed ceiling for the thread count
    /// (`machinePeakGFLOPS`), and the share of the FMA loop (`runPeak`'s) timed right before each
    /// repeat on the same threads: on a shared host whose speed drifts from minute to minute, and
    /// on any machine other than the one the fixed ceiling was measured on, that second share is
    /// the one that says how close a product comes to what the cores can do now.
    /// `scripts/gemm_openblas.py` times the same shapes with NumPy's OpenBLAS.
    static let gemmShapes: [(name: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool)] = [
        ("x·W_ihᵀ (input projection)", 6400, 2048, 512, false, true),
        ("dPreᵀ·x (weight gradient)", 2048, 512, 6400, true, false),
        ("dPre·W_ih (input gradient)", 6400, 512, 2048, false, false),
        ("square 2048", 2048, 2048, 2048, false, false),
    ]

    /// "MxNxK[:t|n[:t|n]]" → a shape (transposes of A and B), or nil.
    static func parseShape(_ text: String) -> (name: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let dims = parts[0].split(separator: "x").compactMap { Int($0) }
        guard parts.count <= 3, dims.count == 3, dims.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }),
              parts.dropFirst().allSatisfy({ $0 == "t" || $0 == "n" }) else { return nil }
        return (text, dims[0], dims[1], dims[2], parts.count > 1 && parts[1] == "t", parts.count > 2 && parts[2] == "t")
    }

    func runGEMM() {
        var rng = SeededRNG(seed: seed)
        let peak = Bench.machinePeakGFLOPS(threads: Threading.count)
        let loopCalls = Bench.fmaLoopCalls(seconds: 0.2)
        var rows: [String] = []
        let chosen = shapes.isEmpty ? Bench.gemmShapes : shapes.compactMap(Bench.parseShape)
        for s in chosen {
            let a = (0..<(s.m * s.k)).map { _ in rng.uniform(-1, 1) }
            let b = (0..<(s.k * s.n)).map { _ in rng.uniform(-1, 1) }
            var c = [Float](repeating: 0, count: s.m * s.n)
            let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
            func once() {
                GEMM.multiply(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb,
                              beta: 0, c: &c, ldc: s.n)
            }
            for _ in 0..<max(warmup, 1) { once() }
            var rates: [Double] = [], loops: [Double] = [], shares: [Double] = []
            for _ in 0..<repeats {
                let loop = GEMM.fmaLoopRate(loopCalls)
                var times: [Double] = []
                let end = Date().addingTimeInterval(seconds)
                while times.count < 3 || Date() < end {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    once()
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                times.sort()
                let rate = 2 * Double(s.m) * Double(s.n) * Double(s.k) / times[times.count / 2] / 1e9
                rates.append(rate)
                loops.append(loop)
                shares.append(rate / loop)
            }
            rates.sort()
            loops.sort()
            shares.sort()
            let median = rates[rates.count / 2], loop = loops[loops.count / 2], share = shares[shares.count / 2]
            if json {
                rows.append(jsonObject([("shape", s.name), ("m", s.m), ("n", s.n), ("k", s.k), ("gflops", median),
                                        ("min", rates.first ?? 0), ("max", rates.last ?? 0), ("ceiling_share", median / peak),
                                        ("loop_gflops", loop), ("loop_share", share)]))
            } else {
                Console.line("\(s.name) \(s.m)×\(s.n)×\(s.k): \(String(format: "%.0f", median)) GFLOP/s (min \(String(format: "%.0f", rates.first ?? 0)), max \(String(format: "%.0f", rates.last ?? 0))) = \(String(format: "%.0f", 100 * median / peak))% of \(String(format: "%.0f", peak)), \(String(format: "%.0f", 100 * share))% of the FMA loop beside it (median \(String(format: "%.0f", loop)))")
            }
        }
        if json {
            Console.line("{\"mode\": \"gemm\", \"threads\": \(Threading.count), \"isa\": \"\(GEMM.isa)\", \"ceiling_gflops\": \(peak), \"shapes\": [\(rows.joined(separator: ", "))]}")
        }
    }
}

extension Bench {
    /// An FMA loop on `Threading.count` threads at once (registers only, the ISA path in use):
    /// the multiply-add ceiling this process can reach now, against the fixed figure the shares
    /// elsewhere use (`machinePeakGFLOPS`, from the speed issue's measurement).
    func runPeak() {
        let threads = Threading.count
        let n = Bench.fmaLoopCalls(seconds: 0.25)
        var rates: [Double] = []
        for _ in 0..<repeats { rates.append(GEMM.fmaLoopRate(n)) }
        rates.sort()
        let median = rates[rates.count / 2], fixed = Bench.machinePeakGFLOPS(threads: threads)
        if json {
            Console.line(jsonObject([("mode", "peak"), ("threads", threads), ("isa", GEMM.isa), ("gflops", median),
                                     ("min", rates.first ?? 0), ("max", rates.last ?? 0), ("fixed_ceiling_gflops", fixed)]))
        } else {
            Console.line("FMA loop, \(threads) threads, \(GEMM.isa): \(String(format: "%.0f", median)) GFLOP/s (min \(String(format: "%.0f", rates.first ?? 0)), max \(String(format: "%.0f", rates.last ?? 0))); the fixed ceiling used for shares is \(String(format: "%.0f", fixed))")
        }
    }

    /// The iteration count for which one `GEMM.fmaLoop` call takes about `seconds` on one thread.
    static func fmaLoopCalls(seconds: Double) -> Int {
        var n = 1 << 16
        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = GEMM.fmaLoop(n)
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if dt > 0.05 || n > 1 << 30 { return max(1, Int(Double(n) * seconds / max(dt, 1e-6))) }
            n *= 4
        }
    }
}
