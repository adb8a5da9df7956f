import CKernels
import Foundation

/// Runs a `CharLM` one character at a time at batch 1, fast: the inference path of `CharSampler`.
///
///     logits[t] = head(cell_L(… cell_1(embedding[token[t]], state_1) …, state_L))
///
/// The weights are copied once at `init` into a layout read once per step (see
/// Sources/CKernels/README-gemv.md): per layer, blocks of hidden units holding all their gate
/// rows, input part and recurrent part side by side; layer 0's input product is a precomputed
/// (V, G·H) table (embedding·W_ih0ᵀ + biases), so it reads only W_hh. The product of each layer is
/// split over up to `Threading.count` threads (a spinning hand-off; results do not depend on the
/// thread count). Nothing is allocated per step.
///
/// The stepper is a snapshot: later changes to the model's parameters are not seen. Not
/// thread-safe: use one stepper per thread.
///
/// Shapes (V vocabulary, E embedding, H hidden, L layers, G gates): logits (V); state as
/// `RecurrentState` (L,1,H). Memory: the packed weights (`weightBytes`: L·G·H·(D+H) minus layer
/// 0's input part, plus V·H, times 4 bytes or 2 for bf16) and the table (V·G·H floats).
public final class CharLMStepper {
    /// Storage of the packed weights.
    public enum Precision: Sendable, Equatable {
        /// Exact float32 weights: logits match `CharLM.logits` to rounding (≈1e-6).
        case float32
        /// Weights rounded to bfloat16 (activations stay float32): half the bytes per step.
        case bfloat16
        /// Weights as int8 with one float scale per row (absmax / 127), and each layer's inputs
        /// quantised to int8 per step with their own scale (absmax / 127); exact integer sums
        /// (AVX-512 VNNI where the CPU has it), so the AVX2 and AVX-512 paths give the same bits at
        /// any thread count (the portable path, whose sigmoid and tanh use no FMA, its own bits).
        /// A quarter of the bytes per step. Hidden size at most 16,384. Check the loss
        /// (`evaluate`) before relying on it.
        case int8
    }

    public let config: CharLMConfig
    public let precision: Precision
    private let handle: OpaquePointer
    private let vocabularyCount: Int
    private let scratch: UnsafeMutablePointer<Float>
    private var current: UnsafePointer<Float>?
    /// Threads per step (the caller plus helpers); nil follows `Threading.count`.
    public var threads: Int?

    /// Packs the model's current weights.
    ///
    /// - Parameters:
    ///   - model: a unidirectional char-LM (any cell, layers and sizes).
    ///   - precision: `.float32` (default) or `.bfloat16`.
    ///   - isa: force a kernel path ("generic", "avx2", "avx512"; lowered to what the CPU has);
    ///     nil picks the current one (`GEMM.isa`).
    public init(model: CharLM, precision: Precision = .float32, isa: String? = nil) {
        let c = model.config
        require(!model.rnn.bidirectional, "CharLMStepper runs unidirectional models only")
        config = c
        self.precision = precision
        vocabularyCount = c.vocabulary.count
        let cell: Int32
        switch c.cell {
        case .lstm: cell = Int32(RC_CELL_LSTM)
        case .gru: cell = Int32(RC_CELL_GRU)
        case .rnnTanh: cell = Int32(RC_CELL_RNN_TANH)
        case .rnnRelu: cell = Int32(RC_CELL_RNN_RELU)
        }
        let isaIndex: Int32
        switch isa {
        case "generic": isaIndex = 0
        case "avx2": isaIndex = 1
        case "avx512": isaIndex = 2
        default: isaIndex = -1
        }
        let prec: Int32
        switch precision {
        case .float32: prec = Int32(RC_PREC_F32)
        case .bfloat16: prec = Int32(RC_PREC_BF16)
        case .int8: prec = Int32(RC_PREC_INT8)
        }
        guard let h = rc_stepper_new(cell, Int32(c.numLayers), Int32(c.vocabulary.count), Int32(c.embeddingSize),
                                     Int32(c.hiddenSize), prec, isaIndex) else {
            fatalError(precision == .int8 && c.hiddenSize > 16384
                       ? "CharLMStepper: int8 needs a hidden size of at most 16384"
                       : "CharLMStepper: cannot allocate the packed weights")
        }
        handle = h
        scratch = .allocate(capacity: 2 * max(vocabularyCount, 1))
        model.embedding.weight.value.data.withUnsafeBufferPointer { rc_stepper_set_embedding(h, $0.baseAddress) }
        let byName = Dictionary(model.rnn.parameters.map { ($0.name, $0.value.data) }, uniquingKeysWith: { a, _ in a })
        for l in 0..<c.numLayers {
            guard let wih = byName["weight_ih_l\(l)"], let whh = byName["weight_hh_l\(l)"],
                  let bih = byName["bias_ih_l\(l)"], let bhh = byName["bias_hh_l\(l)"] else {
                fatalError("CharLMStepper: layer \(l) parameters missing")
            }
            wih.withUnsafeBufferPointer { a in whh.withUnsafeBufferPointer { b in
                bih.withUnsafeBufferPointer { c in bhh.withUnsafeBufferPointer { d in
                    rc_stepper_set_layer(h, Int32(l), a.baseAddress, b.baseAddress, c.baseAddress, d.baseAddress)
                } }
            } }
        }
        model.head.weight.value.data.withUnsafeBufferPointer { w in
            model.head.bias.value.data.withUnsafeBufferPointer { b in rc_stepper_set_head(h, w.baseAddress, b.baseAddress) }
        }
        rc_stepper_reset(h)
    }

    deinit {
        rc_stepper_free(handle)
        scratch.deallocate()
    }

    /// The kernel path in use ("generic", "avx2", "avx512").
    public var isa: String { String(cString: rc_stepper_isa(handle)) }

    /// Parses "f32", "bf16" or "int8".
    public static func precision(named name: String) -> Precision? {
        switch name.lowercased() {
        case "f32", "float32", "fp32": return .float32
        case "bf16", "bfloat16": return .bfloat16
        case "int8", "i8": return .int8
        default: return nil
        }
    }

    /// Bytes of packed weights read per step.
    public var weightBytes: Int { rc_stepper_weight_bytes(handle) }

    /// Zero state; forgets the last logits.
    public func reset() {
        rc_stepper_reset(handle)
        current = nil
    }

    /// Feeds one token and returns the logits (V) of the next one. The buffer stays valid until
    /// the next `step`, `reset` or the stepper's end.
    @discardableResult
    public func step(token: Int32) -> UnsafeBufferPointer<Float> {
        require(token >= 0 && Int(token) < vocabularyCount, "token \(token) outside 0..<\(vocabularyCount)")
        let p = rc_stepper_step(handle, token, Int32(clamping: threads ?? Int(rc_get_threads())))
        current = p
        return UnsafeBufferPointer(start: p, count: vocabularyCount)
    }

    /// The logits of the last `step` (empty before the first one).
    public var logits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: current, count: current == nil ? 0 : vocabularyCount)
    }

    /// Draws the next token from the last logits: the argmax when `settings.greedy`, else by
    /// inverse CDF of the temperature / top-k softmax with `uniform` in [0, 1). Throws
    /// `RecurrentError.nonFiniteLogits` when the logits hold NaN (or +inf, when not greedy) or
    /// are all −inf: an overflowing model has no distribution to draw from, as `torch.multinomial`
    /// refuses it. Throws too for a temperature not above 0 when not greedy.
    public func sample(settings: SamplingSettings, uniform: Float) throws -> Int32 {
        guard let p = current else { fatalError("sample before any step") }
        guard settings.greedy || settings.temperature > 0 else {
            throw RecurrentError("sampling temperature must be above 0, got \(settings.temperature)")
        }
        require(settings.topK >= 0, "sampling top-k must be 0 (all) or more, got \(settings.topK)")
        require(uniform >= 0 && uniform < 1, "sample(uniform:) takes a number in [0, 1), got \(uniform)")
        let token = rc_sample_logits(p, Int32(vocabularyCount), settings.temperature, Int32(clamping: settings.topK),
                                     settings.greedy ? 1 : 0, uniform, scratch)
        guard token >= 0 else { throw RecurrentError.nonFiniteLogits }
        return Int32(token)
    }

    /// The temperature / top-k probabilities of the next token (V values; empty before any step).
    /// As for `sample`, the temperature must be above 0 unless `greedy` (a temperature of 0 or less
    /// then gives the argmax all the mass), and top-k 0 (all) or more.
    public func probabilities(settings: SamplingSettings) -> [Float] {
        guard let p = current else { return [] }
        require(settings.greedy || settings.temperature > 0, "sampling temperature must be above 0, got \(settings.temperature)")
        require(settings.topK >= 0, "sampling top-k must be 0 (all) or more, got \(settings.topK)")
        var out = [Float](repeating: 0, count: vocabularyCount)
        out.withUnsafeMutableBufferPointer {
            rc_softmax_topk(p, Int32(vocabularyCount), settings.temperature, Int32(clamping: settings.topK), $0.baseAddress, scratch)
        }
        return out
    }

    /// The current state, shaped as the model's (L,1,H).
    public var state: RecurrentState {
        get {
            let L = config.numLayers, H = config.hiddenSize
            var s = RecurrentState.zeros(kind: config.cell, layers: L, batch: 1, hidden: H)
            for l in 0..<L {
                let h = UnsafeBufferPointer(start: rc_stepper_hidden(handle, Int32(l)), count: H)
                s.hidden.data.replaceSubrange(l * H..<(l + 1) * H, with: h)
                if let c = rc_stepper_cell(handle, Int32(l)) {
                    s.cell?.data.replaceSubrange(l * H..<(l + 1) * H, with: UnsafeBufferPointer(start: c, count: H))
                }
            }
            return s
        }
        set {
            let L = config.numLayers, H = config.hiddenSize
            require(newValue.hidden.shape == [L, 1, H], "the stepper's hidden state must be (\(L),1,\(H)), got \(newValue.hidden.shape)")
            if config.cell == .lstm {
                require(newValue.cell?.shape == [L, 1, H],
                        "the stepper's LSTM cell state must be (\(L),1,\(H)), got \(newValue.cell.map { "\($0.shape)" } ?? "none")")
            } else {
                require(newValue.cell == nil, "a \(config.cell) stepper has no cell state; pass none")
            }
            for l in 0..<L {
                let h = rc_stepper_hidden(handle, Int32(l))
                for j in 0..<H { h?[j] = newValue.hidden.data[l * H + j] }
                if let c = rc_stepper_cell(handle, Int32(l)), let cell = newValue.cell {
                    for j in 0..<H { c[j] = cell.data[l * H + j] }
                }
            }
        }
    }

    /// Mean cross-entropy of predicting every next character of `tokens` from a zero state
    /// (the stepper's counterpart of `CharLM.evaluate`; resets the state first).
    public func evaluate(tokens: [Int32]) -> CharLMEvaluation {
        guard tokens.count >= 2 else { return CharLMEvaluation(loss: .nan, characters: 0) }
        require(tokens.allSatisfy { $0 >= 0 && Int($0) < vocabularyCount }, "token ids must lie in 0..<\(vocabularyCount)")
        reset()
        var total = 0.0
        for t in 0..<tokens.count - 1 {
            let z = step(token: tokens[t])
            var m = -Float.infinity
            for v in z where v > m { m = v }
            var sum = 0.0
            for v in z { sum += Double(expOf(v - m)) }
            total += log(sum) + Double(m) - Double(z[Int(tokens[t + 1])])
        }
        return CharLMEvaluation(loss: total / Double(tokens.count - 1), characters: tokens.count - 1)
    }
}

@inline(__always) private func expOf(_ x: Float) -> Float { Foundation.exp(x) }
