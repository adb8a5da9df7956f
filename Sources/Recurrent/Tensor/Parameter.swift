/// A trainable tensor and its gradient, named as in PyTorch's `state_dict` (relative to its module).
///
/// Backward passes *accumulate* into `grad` (`+=`); the trainer zeroes all gradients in one place
/// before each step, so several backward calls (for example truncated-BPTT chunks or several
/// heads) can add up their contributions.
public final class Parameter: @unchecked Sendable {
    /// The name relative to the owning module, for example `weight_ih_l0`.
    public let name: String
    public var value: Tensor
    /// The gradient, zeros of `value`'s shape until a backward pass adds to it. It is allocated
    /// when first written, so a model that only runs inference holds its weights once, not twice.
    /// (Not a `lazy var`: mutating one goes through get and set, which copied the whole gradient
    /// at every `p.grad.data.withUnsafeMutableBufferPointer`; `_modify` yields it in place.)
    public var grad: Tensor {
        get { storedGrad ?? Tensor.zeros(like: value) }
        set { storedGrad = newValue }
        _modify {
            if storedGrad == nil { storedGrad = Tensor.zeros(like: value) }
            yield &storedGrad!
        }
    }
    private var storedGrad: Tensor?

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
    }

    public var shape: [Int] { value.shape }
}

/// A module that owns parameters and can list them under PyTorch-style dotted names.
///
/// **Threads.** The layers and models (`RecurrentLayer`, `Linear`, `Embedding`, `Attention`,
/// `CharLM`, `TextClassifier`, `Tagger`, `Forecaster`, `Seq2Seq`, `ConditionalGenerator`) are
/// `@unchecked Sendable`: inference and evaluation only read the weights, so one model may serve
/// them from any number of threads or tasks at once, with the results of serial calls bit for bit
/// (checked with ThreadSanitizer on every model kind, 2026-12-01). Anything that writes weights or
/// gradients (a training step, `backward`, an optimizer step, loading a state into the model, or
/// setting `dropout`) needs the model to itself: do not run it while other threads use that model.
/// Per-call objects that carry state (`CharSampler`, `CharLMStepper`, `CharLMEvaluator`, the
/// trainers, the optimizers) are for one thread at a time. `Threading.count` is one setting for
/// the whole process; the thread pool runs one parallel job at a time, and a call that finds it
/// busy runs its job on its own thread (the same results, fewer cores).
public protocol ParameterizedModule: AnyObject {
    /// The parameters in PyTorch's registration order, with names relative to this module.
    var parameters: [Parameter] { get }
}

extension ParameterizedModule {
    /// Sets every parameter's gradient to zero (large tensors split across threads).
    public func zeroGrad() {
        for p in parameters {
            p.grad.data.withUnsafeMutableBufferPointer { g in
                guard let base = g.baseAddress else { return }
                Vector.forRanges(g.count) { lo, hi in (base + lo).update(repeating: 0, count: hi - lo) }
            }
        }
    }
}
