import CKernels

/// Gradient clipping over a whole model, as `torch.nn.utils.clip_grad_norm_` (norm type 2) and
/// `clip_grad_value_`. Both act on `Parameter.grad` in place, after backward and before `step`.
public enum GradientClipping {
    /// torch.nn.utils.clip_grad_norm_ (norm_type 2): total = sqrt(sum of squares over all grads); coef = maxNorm / (total + 1e-6); if coef < 1 scale every grad by coef. Returns the total norm before clipping.
    ///
    /// The 1e-6 keeps the coefficient finite when every gradient is zero. A non-finite total
    /// (inf or nan gradients) is returned as is and the gradients are then scaled by 0 or nan,
    /// as in PyTorch; callers that care should check the returned norm.
    @discardableResult
    public static func clipNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
        let total = globalNorm(parameters)
        let coef = maxNorm / (total + 1e-6)
        if coef < 1 || !coef.isFinite {
            for p in parameters {
                p.grad.data.withUnsafeMutableBufferPointer { g in
                    for j in 0..<g.count { g[j] = g[j] * coef }
                }
            }
        }
        return total
    }

    /// clip_grad_value_: clamp every gradient element to [-value, value].
    public static func clipValue(_ parameters: [Parameter], value: Float) {
        precondition(value >= 0, "clip value must be non-negative, got \(value)")
        for p in parameters {
            p.grad.data.withUnsafeMutableBufferPointer { g in
                for j in 0..<g.count { g[j] = min(max(g[j], -value), value) }
            }
        }
    }

    /// The global L2 norm of all grads (no change).
    ///
    /// Like PyTorch: the L2 norm of each gradient tensor, then the L2 norm of those norms. Sums are
    /// accumulated in Double so large models do not lose the small contributions, in 16 lanes
    /// (`rc_sum_squares`: one running sum was a chain of dependent adds, 0.3 ms per step of rnn256).
    public static func globalNorm(_ parameters: [Parameter]) -> Float {
        var sumOfNormSquares: Double = 0
        for p in parameters {
            var sum: Double = 0
            p.grad.data.withUnsafeBufferPointer { g in
                if let base = g.baseAddress { sum = rc_sum_squares(g.count, base) }
            }
            let norm = Float(sum.squareRoot())
            sumOfNormSquares += Double(norm) * Double(norm)
        }
        return Float(sumOfNormSquares.squareRoot())
    }
}
