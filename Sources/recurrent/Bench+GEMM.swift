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

extension Bench {
    /// An FMA loop on `Threading.count` threads at once (registers only, the ISA path in use):
    /// the multiply-add ceiling this process can reach now, against the fixed figure the shares
    /// elsewhere use (`machinePeakGFLOPS`, from the speed issue's measurement).
    func runPeak() {
        let threads = Threading.count
        // Calibrate one thread to about 0.25 s per call.
        var n = 1 << 16
        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = GEMM.fmaLoop(n)
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if dt > 0.05 || n > 1 << 30 { n = Int(Double(n) * 0.25 / max(dt, 1e-6)); break }
            n *= 4
        }
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
}
