import Foundation

/// Which attention a decoder uses (`--attention`).
public enum AttentionKind: String, CaseIterable, Sendable {
    /// No attention: the decoder sees the source only through its initial state.
    case none
    /// Additive attention (Bahdanau et al. 2015), as in the PyTorch seq2seq tutorial.
    case bahdanau
    /// Multiplicative attention, Luong et al. 2015's "general" score.
    case luong
}

/// The encoder side of attention, computed once per batch: the encoder outputs (values), their
/// projection (keys) and the source lengths (the mask).
///
/// Shapes (B batch, S source steps, K encoder output width = R·H, H decoder hidden):
/// values (B,S,K) (zero past each length), keys (B,S,H), lengths B values in 1...S.
public struct AttentionMemory {
    public var values: Tensor
    public var keys: Tensor
    public var lengths: [Int]

    var batch: Int { values.shape[0] }
    var steps: Int { values.shape[1] }

    /// The memory of the given batch rows, in that order (beam search repeats one sentence's memory).
    func rows(_ rows: [Int]) -> AttentionMemory {
        AttentionMemory(values: Self.gather(values, rows), keys: Self.gather(keys, rows), lengths: rows.map { lengths[$0] })
    }

    static func gather(_ t: Tensor, _ rows: [Int]) -> Tensor {
        let row = t.count / max(t.shape[0], 1)
        var out = Tensor(shape: [rows.count] + t.shape.dropFirst())
        for (i, r) in rows.enumerated() { out.data.replaceSubrange(i * row ..< (i + 1) * row, with: t.data[r * row ..< (r + 1) * row]) }
        return out
    }
}

/// What `Attention.backward` reads from one decoder step.
struct AttentionStep {
    /// The query (B,H).
    var query: Tensor
    /// The attention weights (B,S), zero past each length.
    var weights: Tensor
    /// Bahdanau only: e = tanh(keys + Wa·q) (B,S,H).
    var energies: Tensor?
}

/// Attention of a decoder state over the encoder outputs, with the masks of variable-length sources.
///
///     bahdanau:  keys = Ua(enc) (once per batch);  e[j] = tanh(keys[j] + Wa(q));  s[j] = Va(e[j])
///     luong:     keys = enc·Waᵀ (once per batch);  s[j] = q·keys[j]            ("general" score)
///     a = softmax(s) over j < length (the padding gets weight 0);  context = Σ_j a[j]·enc[j]
///
/// PyTorch (Bahdanau, the tutorial's module): `Wa = nn.Linear(H, H)`, `Ua = nn.Linear(K, H)`,
/// `Va = nn.Linear(H, 1)`; Luong: `Wa = nn.Linear(K, H, bias=False)`. Parameter names
/// `Wa.weight`, `Wa.bias`, `Ua.weight`, `Ua.bias`, `Va.weight`, `Va.bias` (Luong: `Wa.weight`).
///
/// Shapes (B batch, S source steps, K key/value width, H query width): query (B,H) → context (B,K).
/// Cost per decoder step: B·S·H (Bahdanau: also one (B×H×H) product), B·S·K for the context.
/// Memory per step: the weights (B,S), plus the energies (B,S,H) for Bahdanau.
public final class Attention: ParameterizedModule, @unchecked Sendable {
    public let kind: AttentionKind
    public let keySize: Int
    public let querySize: Int
    /// Bahdanau: query projection Wa (H→H), key projection Ua (K→H), score Va (H→1).
    let wa: Linear?
    let ua: Linear?
    let va: Linear?
    /// Luong: Wa (H,K), no bias.
    let general: Parameter?

    public init(kind: AttentionKind, keySize: Int, querySize: Int, rng: inout SeededRNG) {
        require(kind != .none, "no attention to build")
        self.kind = kind
        self.keySize = keySize
        self.querySize = querySize
        if kind == .bahdanau {
            wa = Linear(inputSize: querySize, outputSize: querySize, rng: &rng)
            ua = Linear(inputSize: keySize, outputSize: querySize, rng: &rng)
            va = Linear(inputSize: querySize, outputSize: 1, rng: &rng)
            general = nil
        } else {
            let bound = 1 / Float(keySize).squareRoot()
            var w = Tensor(shape: [querySize, keySize])
            for i in 0..<w.count { w.data[i] = rng.uniform(-bound, bound) }
            general = Parameter(name: "Wa.weight", value: w)
            wa = nil; ua = nil; va = nil
        }
    }

    public var namedParameters: [(String, Parameter)] {
        if let general { return [("Wa.weight", general)] }
        var out: [(String, Parameter)] = []
        for (name, layer) in [("Wa", wa), ("Ua", ua), ("Va", va)] {
            if let layer { out += layer.parameters.map { ("\(name).\($0.name)", $0) } }
        }
        return out
    }

    public var parameters: [Parameter] { namedParameters.map { $0.1 } }

    /// Projects the encoder outputs `values` (B,S,K) into keys (B,S,H), once per batch.
    public func memory(values: Tensor, lengths: [Int]) -> AttentionMemory {
        let B = values.shape[0], S = values.shape[1], K = keySize, H = querySize
        require(values.shape == [B, S, K] && lengths.count == B && lengths.allSatisfy { $0 >= 1 && $0 <= S },
                     "attention memory expects values (B,S,\(K)) and B lengths in 1...S")
        if let ua { return AttentionMemory(values: values, keys: ua.forward(values), lengths: lengths) }
        var keys = Tensor(shape: [B, S, H])
        withGeneral { w in
            values.data.withUnsafeBufferPointer { v in
                keys.data.withUnsafeMutableBufferPointer { k in
                    guard let vp = v.baseAddress, let kp = k.baseAddress else { return }
                    GEMM.multiply(transA: false, transB: true, m: B * S, n: H, k: K, a: vp, lda: K, b: w, ldb: K, beta: 0, c: kp, ldc: H)
                }
            }
        }
        return AttentionMemory(values: values, keys: keys, lengths: lengths)
    }

    /// Backward of `memory`: accumulates the key projection's gradients and adds dKeys' share to `dValues` (B,S,K).
    public func memoryBackward(dKeys: Tensor, memory m: AttentionMemory, dValues: inout Tensor) {
        if let ua {
            let dv = ua.backward(dKeys, input: m.values)
            for i in 0..<dValues.count { dValues.data[i] += dv.data[i] }
            return
        }
        guard let general else { return }
        let rows = m.batch * m.steps, K = keySize, H = querySize
        dKeys.data.withUnsafeBufferPointer { dk in
            m.values.data.withUnsafeBufferPointer { v in
                general.grad.data.withUnsafeMutableBufferPointer { dw in
                    dValues.data.withUnsafeMutableBufferPointer { dvb in
                        general.value.data.withUnsafeBufferPointer { w in
                            guard let dkp = dk.baseAddress, let vp = v.baseAddress, let dwp = dw.baseAddress,
                                  let dvp = dvb.baseAddress, let wp = w.baseAddress else { return }
                            // dWa += dKeysᵀ·values (H,K);  dValues += dKeys·Wa (B·S,K).
                            GEMM.multiply(transA: true, transB: false, m: H, n: K, k: rows, a: dkp, lda: H, b: vp, ldb: K, beta: 1, c: dwp, ldc: K)
                            GEMM.multiply(transA: false, transB: false, m: rows, n: K, k: H, a: dkp, lda: H, b: wp, ldb: K, beta: 1, c: dvp, ldc: K)
                        }
                    }
                }
            }
        }
    }

    /// One decoder step: the context (B,K) for `query` (B,H), and what backward needs.
    func forward(query: Tensor, memory m: AttentionMemory) -> (context: Tensor, step: AttentionStep) {
        let B = m.batch, S = m.steps, K = keySize, H = querySize
        require(query.shape == [B, H], "attention query must be (\(B),\(H)), got \(query.shape)")
        var scores = Tensor(shape: [B, S])
        var energies: Tensor?
        if let wa, let va {
            // e[b,j] = tanh(keys[b,j] + Wa·q[b]);  s[b,j] = Va·e[b,j] (Va's bias shifts every score alike).
            let qp = wa.forward(query)
            var e = Tensor(shape: [B, S, H])
            for b in 0..<B {
                for j in 0..<m.lengths[b] {
                    let row = (b * S + j) * H
                    for h in 0..<H { e.data[row + h] = m.keys.data[row + h] + qp.data[b * H + h] }
                }
            }
            e.data.withUnsafeMutableBufferPointer { p in if let base = p.baseAddress { Vector.tanh(base, count: p.count) } }
            let s = va.forward(e)  // (B,S,1)
            for b in 0..<B { for j in 0..<m.lengths[b] { scores.data[b * S + j] = s.data[b * S + j] } }
            energies = e
        } else {
            // s[b, :len] = keys[b, :len]·q[b]   (len×H)·(H×1)
            m.keys.data.withUnsafeBufferPointer { k in
                query.data.withUnsafeBufferPointer { q in
                    scores.data.withUnsafeMutableBufferPointer { s in
                        guard let kp = k.baseAddress, let qp = q.baseAddress, let sp = s.baseAddress else { return }
                        for b in 0..<B {
                            GEMM.multiply(transA: false, transB: false, m: m.lengths[b], n: 1, k: H, a: kp + b * S * H, lda: H,
                                          b: qp + b * H, ldb: 1, beta: 0, c: sp + b * S, ldc: 1)
                        }
                    }
                }
            }
        }
        // Masked softmax over j < length.
        var weights = Tensor(shape: [B, S])
        for b in 0..<B {
            let n = m.lengths[b], row = b * S
            var top = -Float.infinity
            for j in 0..<n { top = max(top, scores.data[row + j]) }
            var sum: Float = 0
            for j in 0..<n { let w = Foundation.exp(scores.data[row + j] - top); weights.data[row + j] = w; sum += w }
            for j in 0..<n { weights.data[row + j] /= sum }
        }
        // context[b] = a[b, :len]·values[b, :len]   (1×len)·(len×K)
        var context = Tensor(shape: [B, K])
        weights.data.withUnsafeBufferPointer { a in
            m.values.data.withUnsafeBufferPointer { v in
                context.data.withUnsafeMutableBufferPointer { c in
                    guard let ap = a.baseAddress, let vp = v.baseAddress, let cp = c.baseAddress else { return }
                    for b in 0..<B {
                        GEMM.multiply(transA: false, transB: false, m: 1, n: K, k: m.lengths[b], a: ap + b * S, lda: S,
                                      b: vp + b * S * K, ldb: K, beta: 0, c: cp + b * K, ldc: K)
                    }
                }
            }
        }
        return (context, AttentionStep(query: query, weights: weights, energies: energies))
    }

    /// Backward of one `forward`: returns dQuery (B,H); adds to `dKeys` (B,S,H) and `dValues` (B,S,K),
    /// accumulates Wa/Va's gradients (Bahdanau; Ua's come in `memoryBackward`).
    ///
    ///     da[j] = dc·enc[j];  dEnc[j] += a[j]·dc;  ds[j] = a[j]·(da[j] − Σ_i a[i]·da[i])
    ///     luong:    dq = Σ_j ds[j]·keys[j];  dKeys[j] += ds[j]·q
    ///     bahdanau: de[j] = ds[j]·Va.weight ⊙ (1 − e[j]²);  dKeys[j] += de[j];  dq = Wa backward of Σ_j de[j]
    func backward(dContext: Tensor, step: AttentionStep, memory m: AttentionMemory,
                  dKeys: inout Tensor, dValues: inout Tensor) -> Tensor {
        let B = m.batch, S = m.steps, K = keySize, H = querySize
        var dWeights = Tensor(shape: [B, S])
        dContext.data.withUnsafeBufferPointer { dc in
            m.values.data.withUnsafeBufferPointer { v in
                step.weights.data.withUnsafeBufferPointer { a in
                    dWeights.data.withUnsafeMutableBufferPointer { da in
                        dValues.data.withUnsafeMutableBufferPointer { dv in
                            guard let dcp = dc.baseAddress, let vp = v.baseAddress, let ap = a.baseAddress,
                                  let dap = da.baseAddress, let dvp = dv.baseAddress else { return }
                            for b in 0..<B {
                                let n = m.lengths[b]
                                // da[b, :n] = values[b, :n]·dc[b]   (n×K)·(K×1)
                                GEMM.multiply(transA: false, transB: false, m: n, n: 1, k: K, a: vp + b * S * K, lda: K,
                                              b: dcp + b * K, ldb: 1, beta: 0, c: dap + b * S, ldc: 1)
                                // dValues[b, :n] += a[b, :n]ᵀ·dc[b]   (n×1)·(1×K)
                                GEMM.multiply(transA: false, transB: false, m: n, n: K, k: 1, a: ap + b * S, lda: 1,
                                              b: dcp + b * K, ldb: K, beta: 1, c: dvp + b * S * K, ldc: K)
                            }
                        }
                    }
                }
            }
        }
        // Through the masked softmax.
        var dScores = Tensor(shape: [B, S])
        for b in 0..<B {
            let row = b * S
            var dot: Float = 0
            for j in 0..<m.lengths[b] { dot += step.weights.data[row + j] * dWeights.data[row + j] }
            for j in 0..<m.lengths[b] { dScores.data[row + j] = step.weights.data[row + j] * (dWeights.data[row + j] - dot) }
        }
        var dQuery = Tensor(shape: [B, H])
        if let wa, let va, let e = step.energies {
            // Va: dVa.weight += Σ ds·e, dVa.bias += Σ ds (zero up to rounding); de = ds·Va.weight ⊙ (1 − e²).
            let dE = va.backward(dScores.reshaped([B, S, 1]), input: e)
            var dqp = Tensor(shape: [B, H])
            for b in 0..<B {
                for j in 0..<m.lengths[b] {
                    let row = (b * S + j) * H
                    for h in 0..<H {
                        let ee = e.data[row + h]
                        let d = dE.data[row + h] * (1 - ee * ee)
                        dKeys.data[row + h] += d
                        dqp.data[b * H + h] += d
                    }
                }
            }
            dQuery = wa.backward(dqp, input: step.query)
        } else {
            m.keys.data.withUnsafeBufferPointer { k in
                step.query.data.withUnsafeBufferPointer { q in
                    dScores.data.withUnsafeBufferPointer { ds in
                        dQuery.data.withUnsafeMutableBufferPointer { dq in
                            dKeys.data.withUnsafeMutableBufferPointer { dk in
                                guard let kp = k.baseAddress, let qp = q.baseAddress, let dsp = ds.baseAddress,
                                      let dqp = dq.baseAddress, let dkp = dk.baseAddress else { return }
                                for b in 0..<B {
                                    let n = m.lengths[b]
                                    // dq[b] = ds[b, :n]·keys[b, :n]   (1×n)·(n×H);  dKeys[b, :n] += ds[b, :n]ᵀ·q[b]   (n×1)·(1×H)
                                    GEMM.multiply(transA: false, transB: false, m: 1, n: H, k: n, a: dsp + b * S, lda: S,
                                                  b: kp + b * S * H, ldb: H, beta: 0, c: dqp + b * H, ldc: H)
                                    GEMM.multiply(transA: false, transB: false, m: n, n: H, k: 1, a: dsp + b * S, lda: 1,
                                                  b: qp + b * H, ldb: H, beta: 1, c: dkp + b * S * H, ldc: H)
                                }
                            }
                        }
                    }
                }
            }
        }
        return dQuery
    }

    // MARK: Pointer plumbing

    private func withGeneral(_ body: (UnsafePointer<Float>) -> Void) {
        general?.value.data.withUnsafeBufferPointer { w in if let wp = w.baseAddress { body(wp) } }
    }

}
