/// RMSprop as `torch.optim.RMSprop`:
///
///     g = grad + weightDecay·w
///     v = alpha·v + (1 - alpha)·g²                   square_avg, starts at 0
///     centered:  a = alpha·a + (1 - alpha)·g           grad_avg (lerp), starts at 0
///                avg = sqrt(v - a²) + eps
///     otherwise: avg = sqrt(v) + eps
///     momentum > 0:  buf = momentum·buf + g / avg;  w = w - lr·buf
///     otherwise:     w = w - lr·g / avg
///
/// State: `square_avg`, plus `grad_avg` when centered and `momentum_buffer` when momentum > 0.
/// Reference: https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html
public final class RMSprop: Optimizer {
    public var learningRate: Float
    public let alpha: Float
    public let eps: Float
    public let weightDecay: Float
    public let momentum: Float
    public let centered: Bool
    private var state = OptimizerSlots()

    public init(learningRate: Float = 0.01, alpha: Float = 0.99, eps: Float = 1e-8, weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false) {
        // PyTorch's checks (its ValueErrors).
        require(learningRate >= 0, "RMSprop: invalid learning rate \(learningRate)")
        require(eps >= 0, "RMSprop: invalid epsilon value \(eps)")
        require(momentum >= 0, "RMSprop: invalid momentum value \(momentum)")
        require(weightDecay >= 0, "RMSprop: invalid weight_decay value \(weightDecay)")
        require(alpha >= 0, "RMSprop: invalid alpha value \(alpha)")
        self.learningRate = learningRate
        self.alpha = alpha
        self.eps = eps
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
    }

    public func step(_ parameters: [Parameter]) {
        let lr = learningRate, alpha = alpha, eps = eps, wd = weightDecay, mu = momentum, centered = centered
        let oneMinusAlpha = Float(1 - decimalValue(alpha))
        for p in parameters {
            var sq = state.take("square_avg", of: p)
            var ga = centered ? state.take("grad_avg", of: p) : Tensor(shape: [0])
            var buf = mu > 0 ? state.take("momentum_buffer", of: p) : Tensor(shape: [0])
            p.grad.data.withUnsafeBufferPointer { g in
                p.value.data.withUnsafeMutableBufferPointer { w in
                    sq.data.withUnsafeMutableBufferPointer { v in
                        ga.data.withUnsafeMutableBufferPointer { a in
                            buf.data.withUnsafeMutableBufferPointer { b in
                                for j in 0..<w.count {
                                    var gj = g[j]
                                    if wd != 0 { gj = gj + wd * w[j] }
                                    v[j] = v[j] * alpha + oneMinusAlpha * gj * gj
                                    var avg: Float
                                    if centered {
                                        a[j] = lerp(a[j], gj, oneMinusAlpha)
                                        avg = (v[j] + (-1) * a[j] * a[j]).squareRoot()
                                    } else {
                                        avg = v[j].squareRoot()
                                    }
                                    avg = avg + eps
                                    if mu > 0 {
                                        b[j] = b[j] * mu + gj / avg
                                        w[j] = w[j] + (-lr) * b[j]
                                    } else {
                                        w[j] = w[j] + (-lr) * gj / avg
                                    }
                                }
                            }
                        }
                    }
                }
            }
            state.store(sq, as: "square_avg", of: p)
            if centered { state.store(ga, as: "grad_avg", of: p) }
            if mu > 0 { state.store(buf, as: "momentum_buffer", of: p) }
        }
        state.stepCount += 1
    }

    public func stateTensors(for parameters: [Parameter]) -> [(String, Tensor)] {
        state.tensors(for: parameters, slots: ["square_avg", "grad_avg", "momentum_buffer"])
    }

    public func loadState(_ tensors: [String: Tensor], for parameters: [Parameter]) throws {
        var required = ["square_avg"]
        if centered { required.append("grad_avg") }
        if momentum > 0 { required.append("momentum_buffer") }
        try state.load(tensors, for: parameters, required: required)
    }
}

