/// A trainable tensor and its gradient, named as in PyTorch's `state_dict` (relative to its module).
///
/// Backward passes *accumulate* into `grad` (`+=`); the trainer zeroes all gradients in one place
/// before each step, so several backward calls (for example truncated-BPTT chunks or several
/// heads) can add up their contributions.
public final class Parameter: @unchecked Sendable {
    /// The name relative to the owning module, for example `weight_ih_l0`.
    public let name: String
    /// The weights. A new value must keep the shape the parameter was made with (the layers read
    /// their weights by their own sizes): another shape stops the program with a message naming the
    /// parameter. To load weights from a file with one-line errors instead, use
    /// `ParameterizedModule.load(_:prefix:path:)`.
    public var value: Tensor {
        get { storage }
        set {
            check(newValue)
            storage = newValue
        }
        // In place, from any module: `value.data.withUnsafeMutableBufferPointer` and
        // `value.data[i] = x` reach the storage itself. (A `didSet` observer did so only inside
        // this module; from another, every such change copied the whole tensor.)
        _modify {
            defer { check(storage) }
            yield &storage
        }
    }
    private var storage: Tensor
    private let fixedShape: [Int]
    private let fixedCount: Int
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
        require(value.data.count == value.shape.reduce(1, *), "parameter \(name): shape \(value.shape) holds \(value.shape.reduce(1, *)) numbers, the data \(value.data.count)")
        self.name = name
        storage = value
        fixedShape = value.shape
        fixedCount = value.data.count
    }

    public var shape: [Int] { value.shape }

    private func check(_ v: Tensor) {
        require(v.shape == fixedShape && v.data.count == fixedCount,
                "parameter \(name): a value of shape \(v.shape) with \(v.data.count) numbers, expected shape \(fixedShape) (\(fixedCount) numbers)")
    }
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
    /// The parameters under their `state_dict` names relative to this module (for a model,
    /// dotted: `rnn.weight_ih_l0`); by default each parameter's own name.
    var namedParameters: [(String, Parameter)] { get }
}

extension ParameterizedModule {
    public var namedParameters: [(String, Parameter)] { parameters.map { ($0.name, $0) } }

    /// Loads weights as PyTorch's strict `load_state_dict` does: each of `namedParameters`, with
    /// `prefix` before its name (`"rnn."` for a layer stored inside a model), must be in `file`
    /// with the parameter's shape and finite values, and no other tensor under `prefix` may be
    /// there (tensors outside it are not this module's and are left alone; with the empty prefix,
    /// every tensor of the file counts). Throws one line naming `path` and the tensor; nothing is
    /// copied when a check fails.
    public func load(_ file: SafeTensorsFile, prefix: String = "", path: String) throws {
        try TaskCheckpoint.assign(file, to: namedParameters.map { (prefix + $0.0, $0.1) }, path: path, within: prefix)
    }
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
