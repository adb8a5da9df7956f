/// How a forecaster produces H values.
public enum ForecastMode: String, CaseIterable, Sendable {
    /// A linear head maps the last hidden state to all H values at once.
    case direct
    /// A one-step model; each prediction is fed back as the next input until H values exist.
    case recursive
}

/// The architecture and data settings of a forecaster (all stored in the checkpoint).
public struct ForecasterConfig: Sendable, Equatable {
    public var cell: CellKind
    public var hiddenSize: Int
    public var numLayers: Int
    /// Input steps N.
    public var window: Int
    /// Predicted steps H.
    public var horizon: Int
    public var mode: ForecastMode
    public var normalization: ForecastNormalization
    /// The training part's statistics (used by `.series`).
    public var seriesScale: WindowScale
    /// Dropout between recurrent layers (training only).
    public var dropout: Float

    public init(cell: CellKind, hiddenSize: Int, numLayers: Int, window: Int, horizon: Int, mode: ForecastMode,
                normalization: ForecastNormalization, seriesScale: WindowScale, dropout: Float = 0) {
        self.cell = cell
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.window = window
        self.horizon = horizon
        self.mode = mode
        self.normalization = normalization
        self.seriesScale = seriesScale
        self.dropout = dropout
    }

    /// The scaling for a window of inputs.
    public func scale(for inputs: ArraySlice<Double>) -> WindowScale {
        normalization == .series ? seriesScale : WindowScale.of(inputs)
    }
}

/// A sequence-to-value forecaster over one series, with the layout of this PyTorch module (its
/// `state_dict` names are the checkpoint's tensor names):
///
///     class Forecaster(nn.Module):
///         def __init__(self, Hd, L, horizon, mode, p):
///             super().__init__()
///             self.rnn = nn.LSTM(1, Hd, L, batch_first=True, dropout=p if L > 1 else 0)   # or nn.GRU/nn.RNN
///             self.head = nn.Linear(Hd, horizon if mode == "direct" else 1)
///         def forward(self, x, state=None):                 # x (B,T,1), already normalised
///             y, state = self.rnn(x, state)
///             if self.mode == "direct":
///                 h_n = state[0] if isinstance(state, tuple) else state
///                 return self.head(h_n[-1])                 # (B,H): the next H values
///             return self.head(y), state                    # (B,T,1): the value after every step
///
///     direct:    loss = F.mse_loss(model(x), targets)                       # x = window (B,N,1)
///     recursive: teacher forcing over window + targets: inputs s[0 ..< N+H−1], outputs compared
///                with s[1 ..< N+H]; loss = F.mse_loss(model(inputs)[0], outputs). Forecasting runs
///                the window, then feeds each prediction back as the next input (H−1 times).
///
/// Shapes (B windows, N window, H horizon, Hd hidden): inputs (B,N,1) → outputs (B,N,Hd) →
/// direct (B,H) | recursive (B,N+H−1,1). Loss: mean squared error in normalised units.
public final class Forecaster: ParameterizedModule, @unchecked Sendable {
    public let config: ForecasterConfig
    public let rnn: RecurrentLayer
    public let head: Linear

    public init(config: ForecasterConfig, rng: inout SeededRNG) {
        self.config = config
        rnn = RecurrentLayer(kind: config.cell, inputSize: 1, hiddenSize: config.hiddenSize, numLayers: config.numLayers,
                             dropout: config.numLayers > 1 ? config.dropout : 0, rng: &rng)
        head = Linear(inputSize: config.hiddenSize, outputSize: config.mode == .direct ? config.horizon : 1, rng: &rng)
    }

    public var namedParameters: [(String, Parameter)] {
        rnn.parameters.map { ("rnn." + $0.name, $0) } + head.parameters.map { ("head." + $0.name, $0) }
    }

    public var parameters: [Parameter] { namedParameters.map { $0.1 } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Normalised training pairs for the origins `origins` of `values`: inputs (B·N) and targets (B·H).
    public func examples(_ values: [Double], origins: [Int]) -> (inputs: [[Float]], targets: [[Float]]) {
        let N = config.window, H = config.horizon
        var inputs: [[Float]] = [], targets: [[Float]] = []
        for t in origins {
            require(t >= N && t + H <= values.count,
                    "Forecaster.examples: origin \(t) needs the window's \(N) values before it and the horizon's \(H) from it (values 0..<\(values.count))")
            let s = config.scale(for: values[(t - N)..<t])
            inputs.append(values[(t - N)..<t].map(s.normalize))
            targets.append(values[t..<(t + H)].map(s.normalize))
        }
        return (inputs, targets)
    }

    /// One forward and backward pass on normalised windows; accumulates gradients, returns the MSE.
    public func trainStep(inputs: [[Float]], targets: [[Float]], rng: inout SeededRNG) -> Float {
        pass(inputs: inputs, targets: targets, mode: .training, rng: &rng)
    }

    /// The training loss (MSE in normalised units, teacher-forced for `.recursive`) without gradients.
    public func loss(inputs: [[Float]], targets: [[Float]]) -> Float {
        var rng = SeededRNG(seed: 0)
        return pass(inputs: inputs, targets: targets, mode: .inference, rng: &rng)
    }

    /// The loss, and in `.training` mode its backward pass.
    private func pass(inputs: [[Float]], targets: [[Float]], mode: ForwardMode, rng: inout SeededRNG) -> Float {
        let B = inputs.count, N = config.window, H = config.horizon, Hd = config.hiddenSize
        switch config.mode {
        case .direct:
            let x = Tensor(shape: [B, N, 1], data: inputs.flatMap { $0 })
            let (_, state, cache) = rnn.forward(x, state: nil, mode: mode, rng: &rng)
            let last = SequencePooling.lastState(state.hidden, numLayers: config.numLayers, directions: 1)
            let prediction = head.forward(last)
            let (loss, dp) = Loss.meanSquaredError(prediction, target: Tensor(shape: [B, H], data: targets.flatMap { $0 }))
            guard let cache else { return loss }
            let dLast = head.backward(dp, input: last)
            let dh = SequencePooling.lastStateBackward(dLast, numLayers: config.numLayers, directions: 1, hidden: Hd)
            _ = rnn.backward(dOutput: nil, dState: RecurrentState(hidden: dh, cell: nil), cache: cache)
            return loss
        case .recursive:
            let T = N + H - 1
            var x = Tensor(shape: [B, T, 1]), y = Tensor(shape: [B, T, 1])
            for b in 0..<B {
                let s = inputs[b] + targets[b]
                for t in 0..<T { x.data[b * T + t] = s[t]; y.data[b * T + t] = s[t + 1] }
            }
            let (out, _, cache) = rnn.forward(x, state: nil, mode: mode, rng: &rng)
            let flat = out.reshaped([B * T, Hd])
            let prediction = head.forward(flat)
            let (loss, dp) = Loss.meanSquaredError(prediction, target: y.reshaped([B * T, 1]))
            guard let cache else { return loss }
            let dOut = head.backward(dp, input: flat).reshaped([B, T, Hd])
            _ = rnn.backward(dOutput: dOut, dState: nil, cache: cache)
            return loss
        }
    }

    /// Normalised forecasts (B, H) for normalised windows (B, N), without gradients.
    public func predictNormalized(_ inputs: [[Float]]) -> [[Float]] {
        let B = inputs.count, N = config.window, H = config.horizon, Hd = config.hiddenSize
        guard B > 0 else { return [] }
        require(inputs.allSatisfy { $0.count == N }, "Forecaster.predictNormalized: every input must hold the window's \(N) values, got \(inputs.first { $0.count != N }?.count ?? 0)")
        var rng = SeededRNG(seed: 0)
        let x = Tensor(shape: [B, N, 1], data: inputs.flatMap { $0 })
        switch config.mode {
        case .direct:
            let (_, state, _) = rnn.forward(x, state: nil, mode: .inference, rng: &rng)
            let p = head.forward(SequencePooling.lastState(state.hidden, numLayers: config.numLayers, directions: 1))
            return (0..<B).map { Array(p.data[($0 * H)..<(($0 + 1) * H)]) }
        case .recursive:
            var (out, state, _) = rnn.forward(x, state: nil, mode: .inference, rng: &rng)
            var lastOutput = Tensor(shape: [B, Hd])
            for b in 0..<B { for j in 0..<Hd { lastOutput.data[b * Hd + j] = out.data[(b * N + N - 1) * Hd + j] } }
            var result = [[Float]](repeating: [], count: B)
            for step in 0..<H {
                let p = head.forward(lastOutput)  // (B,1)
                for b in 0..<B { result[b].append(p.data[b]) }
                if step == H - 1 { break }
                (out, state, _) = rnn.forward(p.reshaped([B, 1, 1]), state: state, mode: .inference, rng: &rng)
                lastOutput = out.reshaped([B, Hd])
            }
            return result
        }
    }

    /// Forecasts in the series' units for the origins `origins` of `values` (H values each),
    /// in batches of 256 windows.
    public func forecast(_ values: [Double], origins: [Int]) -> [[Double]] {
        let N = config.window
        require(origins.allSatisfy { $0 >= N && $0 <= values.count },
                "Forecaster.forecast: origin \(origins.first { $0 < N || $0 > values.count } ?? 0) needs the window's \(N) values before it (values 0..<\(values.count))")
        var out: [[Double]] = []
        out.reserveCapacity(origins.count)
        for start in stride(from: 0, to: origins.count, by: 256) {
            let chunk = origins[start..<min(origins.count, start + 256)]
            let scales = chunk.map { config.scale(for: values[($0 - N)..<$0]) }
            let inputs = zip(chunk, scales).map { t, s in values[(t - N)..<t].map(s.normalize) }
            for (p, s) in zip(predictNormalized(inputs), scales) { out.append(p.map(s.denormalize)) }
        }
        return out
    }
}
