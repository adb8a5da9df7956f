/// How a classifier turns a recurrent layer's outputs into one vector per sequence.
///
///     last: h_n of the last layer; bidirectional: cat(h_n[-2], h_n[-1])  (forward final, backward final)
///     mean: Σ_{t<len} y[b,t,:] / len          (zeros when len = 0)
///     max:  max_{t<len} y[b,t,:]              (zeros when len = 0; ties go to the earliest step)
///
/// Shapes (B batch, T time, F = R·H features): output (B,T,F), h_n (L·R,B,H) → pooled (B,F).
/// Only real steps (t < length) take part, as with `pack_padded_sequence`.
public enum Pooling: String, CaseIterable, Sendable {
    case last, mean, max
}

/// Forward and backward of the pooling modes (see `Pooling`).
public enum SequencePooling {
    /// Mean or max over each sequence's real steps. Returns pooled (B,F) and, for max, the
    /// winning step per (b, f) (the cache backward reads).
    public static func forward(_ output: Tensor, lengths: [Int], mode: Pooling) -> (pooled: Tensor, argmax: [Int32]) {
        require(mode != .last, "use lastState for .last pooling")
        let B = output.shape[0], T = output.shape[1], F = output.shape[2]
        require(lengths.count == B, "SequencePooling: \(lengths.count) lengths for a batch of \(B)")
        var pooled = Tensor(shape: [B, F])
        var argmax = [Int32](repeating: -1, count: mode == .max ? B * F : 0)
        for b in 0..<B {
            let n = lengths[b]
            if n == 0 { continue }
            switch mode {
            case .mean:
                let scale = 1 / Float(n)
                for t in 0..<n { for f in 0..<F { pooled.data[b * F + f] += output.data[(b * T + t) * F + f] } }
                for f in 0..<F { pooled.data[b * F + f] *= scale }
            case .max:
                for f in 0..<F {
                    var best = output.data[b * T * F + f], at = 0
                    for t in 1..<max(n, 1) where output.data[(b * T + t) * F + f] > best {
                        best = output.data[(b * T + t) * F + f]
                        at = t
                    }
                    pooled.data[b * F + f] = best
                    argmax[b * F + f] = Int32(at)
                }
            case .last: break
            }
        }
        return (pooled, argmax)
    }

    /// dOutput (B,T,F) from dPooled (B,F): spread evenly (mean) or to the winning step (max).
    public static func backward(_ dPooled: Tensor, lengths: [Int], steps T: Int, mode: Pooling, argmax: [Int32]) -> Tensor {
        let B = dPooled.shape[0], F = dPooled.shape[1]
        var dOutput = Tensor(shape: [B, T, F])
        for b in 0..<B {
            let n = lengths[b]
            if n == 0 { continue }
            switch mode {
            case .mean:
                let scale = 1 / Float(n)
                for t in 0..<n { for f in 0..<F { dOutput.data[(b * T + t) * F + f] = dPooled.data[b * F + f] * scale } }
            case .max:
                for f in 0..<F {
                    let t = Int(argmax[b * F + f])
                    dOutput.data[(b * T + t) * F + f] += dPooled.data[b * F + f]
                }
            case .last: break
            }
        }
        return dOutput
    }

    /// The last layer's final hidden state(s) side by side: (B, R·H), forward direction first.
    public static func lastState(_ hidden: Tensor, numLayers L: Int, directions R: Int) -> Tensor {
        let B = hidden.shape[1], H = hidden.shape[2]
        var out = Tensor(shape: [B, R * H])
        for r in 0..<R {
            let base = ((L - 1) * R + r) * B * H
            for b in 0..<B { for h in 0..<H { out.data[b * R * H + r * H + h] = hidden.data[base + b * H + h] } }
        }
        return out
    }

    /// The gradient on h_n (L·R,B,H) from the gradient on `lastState`'s result (zeros for lower layers).
    public static func lastStateBackward(_ dPooled: Tensor, numLayers L: Int, directions R: Int, hidden H: Int) -> Tensor {
        let B = dPooled.shape[0]
        var dHidden = Tensor(shape: [L * R, B, H])
        for r in 0..<R {
            let base = ((L - 1) * R + r) * B * H
            for b in 0..<B { for h in 0..<H { dHidden.data[base + b * H + h] = dPooled.data[b * R * H + r * H + h] } }
        }
        return dHidden
    }
}
