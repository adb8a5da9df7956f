/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2
/// weight decay, exactly as `torch.optim.SGD`:
///
///     g = grad + weightDecay·w
///     buf = g                                      on the first step
///     buf = momentum·buf + (1 - dampening)·g       afterwards
///     d = nesterov ? g + momentum·buf : buf        (d = g when momentum == 0)
///     w = w - lr·d
///
/// State: `momentum_buffer` per parameter (only when momentum != 0).
/// Reference: https://pytorch.org/docs/stable/generated/torch.optim.SGD.html
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let dampening: Float
    public let nesterov: Bool
    public let weightDecay: Float
    private var state = OptimizerSlots()

    /// - Precondition: Nesterov momentum needs `momentum > 0` and `dampening == 0` (as in PyTorch).
    public init(learningRate: Float, momentum: Float = 0, dampening: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        require(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum requires a momentum and zero dampening")
        // PyTorch's checks (its ValueErrors).
        require(learningRate >= 0, "SGD: invalid learning rate \(learningRate)")
        require(momentum >= 0, "SGD: invalid momentum value \(momentum)")
        require(weightDecay >= 0, "SGD: invalid weight_decay value \(weightDecay)")
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) {
        let lr = learningRate, mu = momentum, wd = weightDecay, nesterov = nesterov
        let keep = Float(1 - decimalValue(dampening))
        for p in parameters {
            require(p.grad.count == p.value.count, "\(p.name): its gradient has shape \(p.grad.shape) but its value \(p.shape)")
            // PyTorch starts the buffer at the first gradient (not at zero, and without dampening).
            let fresh = state.buffer("momentum_buffer", of: p) == nil
            var buf = mu != 0 ? state.take("momentum_buffer", of: p) : Tensor(shape: [0])
            p.grad.data.withUnsafeBufferPointer { g in
                buf.data.withUnsafeMutableBufferPointer { b in
                    p.value.data.withUnsafeMutableBufferPointer { w in
                        for j in 0..<w.count {
                            var d = g[j]
                            if wd != 0 { d = d + wd * w[j] }
                            if mu != 0 {
                                b[j] = fresh ? d : b[j] * mu + keep * d
                                d = nesterov ? d + mu * b[j] : b[j]
                            }
                            w[j] = w[j] + (-lr) * d
                        }
                    }
                }
            }
            if mu != 0 { state.store(buf, as: "momentum_buffer", of: p) }
        }
        state.stepCount += 1
    }

    public func stateTensors(for parameters: [Parameter]) -> [(String, Tensor)] {
        state.tensors(for: parameters, slots: ["momentum_buffer"])
    }

    public func loadState(_ tensors: [String: Tensor], for parameters: [Parameter]) throws {
        try state.load(tensors, for: parameters, required: momentum != 0 ? ["momentum_buffer"] : [])
    }
}
