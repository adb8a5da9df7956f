/// A first-order optimizer with PyTorch's update rules.
///
/// The caller runs backward (which accumulates into every `Parameter.grad`), optionally clips,
/// calls `step`, and zeroes the gradients itself; `step` never touches `grad`.
///
/// State (momentum buffers, moment estimates) is kept per parameter object and created on the
/// first `step`, as PyTorch does. For checkpoints it is exported as named tensors keyed by the
/// parameter's position in the list passed in:
///
///     optim.step               [1]      number of steps taken so far
///     optim.<i>.<slot>         shape of parameter i, for example optim.3.exp_avg
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// One update of every parameter from its current .grad (does not zero the grads).
    func step(_ parameters: [Parameter])
    /// The optimizer's state as named tensors (for resumable checkpoints), keyed by the parameter's position in the list and a slot, e.g. "optim.3.exp_avg"; scalars like Adam's step count stored as 1-element tensors ("optim.step").
    func stateTensors(for parameters: [Parameter]) -> [(String, Tensor)]
    /// Restores what stateTensors wrote; throws RecurrentError (Sources/Recurrent/IO/RecurrentError.swift) naming what is missing or mis-shaped.
    func loadState(_ tensors: [String: Tensor], for parameters: [Parameter]) throws
}

/// Per-parameter buffers shared by the optimizers: a step counter and, for each parameter object,
/// a few named tensors of the parameter's shape.
///
/// Buffers are keyed by object identity rather than list position, so calling `step` with the
/// same parameters in another order (or two models sharing one optimizer) cannot mix them up.
/// The parameter itself is retained beside its buffers so that its identifier cannot be reused.
struct OptimizerSlots {
    /// Steps taken (PyTorch keeps one per parameter; they are always equal here).
    var stepCount = 0
    private var buffers: [ObjectIdentifier: (owner: Parameter, slots: [String: Tensor])] = [:]

    /// The buffer `slot` of `parameter`, if it has been created.
    func buffer(_ slot: String, of parameter: Parameter) -> Tensor? {
        buffers[ObjectIdentifier(parameter)]?.slots[slot]
    }

    /// Removes and returns the buffer (so it can be mutated without a copy), or zeros of the
    /// parameter's shape when it does not exist yet. Put it back with `store`.
    mutating func take(_ slot: String, of parameter: Parameter) -> Tensor {
        let id = ObjectIdentifier(parameter)
        require(parameter.grad.count == parameter.value.count,
                     "\(parameter.name): its gradient has shape \(parameter.grad.shape) but its value \(parameter.shape) (the value was replaced by one of another shape after the gradient was made)")
        if let t = buffers[id]?.slots.removeValue(forKey: slot) {
            require(t.count == parameter.value.count,
                         "\(parameter.name): the optimizer's \(slot) has shape \(t.shape) but the parameter \(parameter.shape) (reshaped after the optimizer's first step)")
            return t
        }
        return Tensor.zeros(like: parameter.value)
    }

    mutating func store(_ tensor: Tensor, as slot: String, of parameter: Parameter) {
        let id = ObjectIdentifier(parameter)
        if buffers[id] == nil { buffers[id] = (parameter, [:]) }
        buffers[id]?.slots[slot] = tensor
    }

    mutating func reset() {
        stepCount = 0
        buffers = [:]
    }

    /// `optim.step`, then `optim.<i>.<slot>` for every existing buffer, in parameter order.
    func tensors(for parameters: [Parameter], slots: [String]) -> [(String, Tensor)] {
        var out: [(String, Tensor)] = [("optim.step", Tensor(shape: [1], data: [Float(stepCount)]))]
        for (i, p) in parameters.enumerated() {
            for slot in slots {
                if let t = buffer(slot, of: p) { out.append(("optim.\(i).\(slot)", t)) }
            }
        }
        return out
    }

    /// Replaces all state by what `tensors(for:slots:)` wrote. When the saved step count is
    /// positive every slot in `required` must be present for every parameter with its shape;
    /// `optional` slots are restored when present. Nothing changes if an error is thrown.
    mutating func load(
        _ tensors: [String: Tensor], for parameters: [Parameter], required: [String], optional: [String] = []
    ) throws {
        guard let stepTensor = tensors["optim.step"] else {
            throw RecurrentError("optimizer state: missing optim.step")
        }
        guard stepTensor.count == 1, let raw = stepTensor.data.first, raw >= 0, raw == raw.rounded(),
              raw < 16_777_216 else {
            throw RecurrentError("optimizer state: optim.step must be one non-negative whole number, got \(stepTensor.shape) \(stepTensor.data.prefix(4))")
        }
        // A slot for a parameter the model does not have means the state belongs to another model.
        for key in tensors.keys where key.hasPrefix("optim.") && key != "optim.step" {
            let parts = key.split(separator: ".")
            if parts.count >= 3, let i = Int(parts[1]), i >= parameters.count {
                throw RecurrentError("optimizer state: \(key) refers to parameter \(i) but there are only \(parameters.count) parameters")
            }
        }
        var restored = OptimizerSlots()
        restored.stepCount = Int(raw)
        for (i, p) in parameters.enumerated() {
            for slot in required + optional {
                let key = "optim.\(i).\(slot)"
                guard let t = tensors[key] else {
                    if restored.stepCount > 0 && required.contains(slot) {
                        throw RecurrentError("optimizer state: missing \(key) (for \(p.name), shape \(p.shape))")
                    }
                    continue
                }
                guard t.shape == p.shape else {
                    throw RecurrentError("optimizer state: \(key) has shape \(t.shape) but \(p.name) has shape \(p.shape)")
                }
                restored.store(t, as: slot, of: p)
            }
        }
        self = restored
    }
}

/// The Double a user meant when writing the Float `x`: `0.9` rather than `0.899999976158...`.
///
/// PyTorch keeps hyperparameters as Python (double) floats and rounds to float32 only where a
/// scalar meets a tensor, so `1 - beta1^t` is computed from the double 0.9. A Float's description
/// is the shortest decimal that round-trips, which recovers that double for any typed-in constant.
func decimalValue(_ x: Float) -> Double {
    Double(x.description) ?? Double(x)
}

/// `torch.lerp` with a scalar weight, in the form PyTorch's CPU kernel uses for each half of the
/// range (it switches formula at 0.5 so that both ends are exact).
@inline(__always)
func lerp(_ start: Float, _ end: Float, _ weight: Float) -> Float {
    abs(weight) < 0.5 ? start + weight * (end - start) : end - (end - start) * (1 - weight)
}
