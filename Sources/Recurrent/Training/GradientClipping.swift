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
        if coef < 1 || coef.isNaN {   // clamp(coef, max: 1): an infinite coefficient leaves the gradients alone
            for p in parameters {
                p.grad.data.withUnsafeMutableBufferPointer { g in
                    guard let base = g.baseAddress else { return }
                    Vector.forRanges(g.count) { lo, hi in
                        for j in lo..<hi { base[j] = base[j] * coef }
                    }
                }
            }
        }
        return total
    }

    /// clip_grad_value_: clamp every gradient element to [-value, value].
    public static func clipValue(_ parameters: [Parameter], value: Float) {
        require(value >= 0, "clip value must be non-negative, got \(value)")
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
    ///
    /// With several threads the parameters are shared out in contiguous runs of about equal size;
    /// each tensor's sum is taken whole by one thread and the norms are combined in parameter
    /// order, so the result does not depend on the thread count.
    public static func globalNorm(_ parameters: [Parameter]) -> Float {
        var sums = [Double](repeating: 0, count: parameters.count)
        withGradients(parameters) { first, grads in
            let total = grads.reduce(0) { $0 + $1.count }
            let parts = total >= 1 << 16 ? min(Threading.count, grads.count) : 1
            // Part p takes the tensors whose first element falls in its share of all elements.
            var starts = [Int](), offset = 0
            for g in grads { starts.append(offset); offset += g.count }
            sums.withUnsafeMutableBufferPointer { out in
                Threading.parallel(parts) { part in
                    let lo = total * part / parts, hi = total * (part + 1) / parts
                    for i in grads.indices where starts[i] >= lo && starts[i] < hi {
                        if let base = grads[i].baseAddress { out[first + i] = rc_sum_squares(grads[i].count, base) }
                    }
                }
            }
        }
        var sumOfNormSquares: Double = 0
        for sum in sums {
            let norm = Float(sum.squareRoot())
            sumOfNormSquares += Double(norm) * Double(norm)
        }
        return Float(sumOfNormSquares.squareRoot())
    }

    /// The most parameters whose buffers are held at once by nested accesses (one stack level
    /// each): models with more tensors are taken in runs of this many.
    static let heldAtOnce = 256

    /// Runs `body(first, buffers)` with the gradient buffers of `parameters[first...]` held at once
    /// (nested accesses), at most `heldAtOnce` of them per call, so one parallel job can read them.
    static func withGradients(_ parameters: [Parameter], _ body: (_ first: Int, [UnsafeBufferPointer<Float>]) -> Void) {
        var held: [UnsafeBufferPointer<Float>] = []
        var end = 0
        func hold(_ i: Int, _ first: Int) {
            if i == end { body(first, held); return }
            parameters[i].grad.data.withUnsafeBufferPointer { g in
                held.append(g)
                hold(i + 1, first)
            }
        }
        for first in stride(from: 0, to: parameters.count, by: heldAtOnce) {
            end = min(parameters.count, first + heldAtOnce)
            held.removeAll(keepingCapacity: true)
            hold(first, first)
        }
    }
}
