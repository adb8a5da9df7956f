import Foundation
import Recurrent

extension Bench {
    /// The matrix products of one lstm512 training step (B 64, T 100, H 512, 4 gates) and a large
    /// square one, timed alone: GFLOP/s and the share of the machine's FMA ceiling for the thread
    /// count. `scripts/gemm_openblas.py` times the same shapes with NumPy's OpenBLAS.
    static let gemmShapes: [(name: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool)] = [
        ("x·W_ihᵀ (input projection)", 6400, 2048, 512, false, true),
        ("dPreᵀ·x (weight gradient)", 2048, 512, 6400, true, false),
        ("dPre·W_ih (input gradient)", 6400, 512, 2048, false, false),
        ("square 2048", 2048, 2048, 2048, false, false),
    ]

    func runGEMM() {
        var rng = SeededRNG(seed: seed)
        let peak = Bench.machinePeakGFLOPS(threads: Threading.count)
        var rows: [String] = []
        for s in Bench.gemmShapes {
            let a = (0..<(s.m * s.k)).map { _ in rng.uniform(-1, 1) }
            let b = (0..<(s.k * s.n)).map { _ in rng.uniform(-1, 1) }
            var c = [Float](repeating: 0, count: s.m * s.n)
            let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
            func once() {
                GEMM.multiply(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: a, lda: lda, b: b, ldb: ldb,
                              beta: 0, c: &c, ldc: s.n)
            }
            for _ in 0..<max(warmup, 1) { once() }
            var rates: [Double] = []
            for _ in 0..<repeats {
                var times: [Double] = []
                let end = Date().addingTimeInterval(seconds)
                while times.count < 3 || Date() < end {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    once()
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                times.sort()
                rates.append(2 * Double(s.m) * Double(s.n) * Double(s.k) / times[times.count / 2] / 1e9)
            }
            rates.sort()
            let median = rates[rates.count / 2]
            if json {
                rows.append(jsonObject([("shape", s.name), ("m", s.m), ("n", s.n), ("k", s.k), ("gflops", median),
                                        ("min", rates.first ?? 0), ("max", rates.last ?? 0), ("ceiling_share", median / peak)]))
            } else {
                Console.line("\(s.name) \(s.m)×\(s.n)×\(s.k): \(String(format: "%.0f", median)) GFLOP/s (min \(String(format: "%.0f", rates.first ?? 0)), max \(String(format: "%.0f", rates.last ?? 0))) = \(String(format: "%.0f", 100 * median / peak))% of \(String(format: "%.0f", peak))")
            }
        }
        if json {
            Console.line("{\"mode\": \"gemm\", \"threads\": \(Threading.count), \"isa\": \"\(GEMM.isa)\", \"ceiling_gflops\": \(peak), \"shapes\": [\(rows.joined(separator: ", "))]}")
        }
    }
}
