import CKernels
import Foundation

/// Adam as `torch.optim.Adam` (L2 weight decay added to the gradient, not AdamW):
///
///     t = t + 1
///     g = grad + weightDecay·w
///     m = lerp(m, g, 1 - beta1)                     exp_avg, starts at 0
///     v = beta2·v + (1 - beta2)·g²                  exp_avg_sq, starts at 0
///     denom = sqrt(v) / sqrt(1 - beta2^t) + eps
///     w = w - (lr / (1 - beta1^t))·m / denom
///
/// The bias corrections are computed in Double (PyTorch computes them in Python floats, from the
/// decimal hyperparameters; see `decimalValue`) and the
/// element-wise work in Float, in PyTorch's order of operations, so results agree to rounding.
/// On the first step each weight moves by almost exactly lr·sign(g). Subnormal moments are
/// flushed to zero (computing with them is very slow) whenever that cannot change the denominator:
/// when √FLT_MIN/√(1−β2^t) is below half a unit in the last place of eps (eps ≥ about 1e-10 for the
/// default betas). With a smaller eps (0 included) they are kept, as PyTorch keeps them: a moment
/// flushed there could turn a step of lr·sign(g) into a division by zero.
///
/// State: `exp_avg` and `exp_avg_sq` per parameter, and the step count `optim.step`.
/// Reference: https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let eps: Float
    public let weightDecay: Float
    private var state = OptimizerSlots()

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        // PyTorch's checks (its ValueErrors).
        require(learningRate >= 0, "Adam: invalid learning rate \(learningRate)")
        require(eps >= 0, "Adam: invalid epsilon value \(eps)")
        require(beta1 >= 0 && beta1 < 1, "Adam: invalid beta parameter at index 0: \(beta1)")
        require(beta2 >= 0 && beta2 < 1, "Adam: invalid beta parameter at index 1: \(beta2)")
        require(weightDecay >= 0, "Adam: invalid weight_decay value \(weightDecay)")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) {
        state.stepCount += 1
        let t = Double(state.stepCount)
        let b1 = decimalValue(beta1), b2 = decimalValue(beta2)
        let biasCorrection1 = 1 - pow(b1, t)
        let biasCorrection2 = 1 - pow(b2, t)
        let stepSize = Float(decimalValue(learningRate) / biasCorrection1)
        let bc2Sqrt = Float(biasCorrection2.squareRoot())
        let w1 = Float(1 - b1), w2 = Float(1 - b2)
        let beta2 = beta2, eps = eps, wd = weightDecay

        // PyTorch's update, vectorised in C (rc_adam); moments of parameters that get no gradient
        // (embedding rows not in the batch) decay geometrically into subnormal floats, where every
        // multiply is ~25x slower on x86, so moments below the smallest normal float are flushed to
        // zero (they would move w by less than lr·1e-30) when the flush leaves every denominator's
        // bits as they are (see the type's doc).
        let hyper: [Float] = [w1, beta2, w2, bc2Sqrt, eps, stepSize, wd,
                              Self.flushes(eps: eps, bc2Sqrt: bc2Sqrt) ? Float.leastNormalMagnitude : 0]
        // All tensors' elements in one parallel job (the same arithmetic per element): one
        // contiguous share of the concatenated elements per thread, instead of a hand-off per large
        // tensor and the small ones on the calling thread.
        // The buffers are held by nested accesses, one level per parameter, so a model with
        // thousands of tensors is updated `heldAtOnce` tensors at a time (the stack stays shallow).
        var spans: [Span] = []
        var end = 0
        func hold(_ i: Int) {
            if i == end { Self.update(spans, hyper: hyper); return }
            let p = parameters[i]
            var m = state.take("exp_avg", of: p)
            var v = state.take("exp_avg_sq", of: p)
            p.grad.data.withUnsafeBufferPointer { g in
                p.value.data.withUnsafeMutableBufferPointer { w in
                    m.data.withUnsafeMutableBufferPointer { m in
                        v.data.withUnsafeMutableBufferPointer { v in
                            if let wp = w.baseAddress, let gp = g.baseAddress, let mp = m.baseAddress, let vp = v.baseAddress {
                                spans.append(Span(w: wp, g: gp, m: mp, v: vp, count: w.count))
                            }
                            hold(i + 1)
                        }
                    }
                }
            }
            state.store(m, as: "exp_avg", of: p)
            state.store(v, as: "exp_avg_sq", of: p)
        }
        // A parameter listed twice is updated twice, one after the other (its buffers cannot be
        // held twice at once).
        if Set(parameters.map(ObjectIdentifier.init)).count == parameters.count {
            for first in stride(from: 0, to: parameters.count, by: GradientClipping.heldAtOnce) {
                end = min(parameters.count, first + GradientClipping.heldAtOnce)
                spans.removeAll(keepingCapacity: true)
                hold(first)
            }
        } else {
            for p in parameters { state.stepCount -= 1; step([p]) }   // each with this step's count
        }
    }

    /// One parameter's buffers, held for the update.
    private struct Span {
        let w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
        let count: Int
    }

    /// Whether moments below FLT_MIN may be flushed at a step with √(1−β2^t) = `bc2Sqrt`: the
    /// largest flushed √v/√(1−β2^t) is then below half an ulp of eps (2⁻²⁴·eps), so
    /// √v/√(1−β2^t) + eps rounds to eps with or without it.
    static func flushes(eps: Float, bc2Sqrt: Float) -> Bool {
        Double(Float.leastNormalMagnitude).squareRoot() / Double(bc2Sqrt) < Double(eps) * 0x1p-24
    }

    /// rc_adam over the concatenated elements of `spans`, in contiguous shares in parallel when
    /// there are at least 2¹⁶ of them.
    private static func update(_ spans: [Span], hyper: [Float]) {
        var starts = [Int](), total = 0
        for span in spans { starts.append(total); total += span.count }
        Vector.forRanges(total) { lo, hi in
            for (i, span) in spans.enumerated() {
                let a = max(lo, starts[i]), b = min(hi, starts[i] + span.count)
                guard a < b else { continue }
                let o = a - starts[i]
                rc_adam(b - a, span.w + o, span.g + o, span.m + o, span.v + o, hyper)
            }
        }
    }

    public func stateTensors(for parameters: [Parameter]) -> [(String, Tensor)] {
        state.tensors(for: parameters, slots: ["exp_avg", "exp_avg_sq"])
    }

    public func loadState(_ tensors: [String: Tensor], for parameters: [Parameter]) throws {
        try state.load(tensors, for: parameters, required: ["exp_avg", "exp_avg_sq"])
    }
}

