import Foundation

/// Which optimizer to build, with PyTorch's hyperparameters.
public struct OptimizerSettings: Sendable, Equatable {
    public enum Kind: String, CaseIterable, Sendable { case sgd, rmsprop, adam }
    public var kind: Kind = .adam
    public var learningRate: Float = 2e-3
    public var momentum: Float = 0
    public var nesterov: Bool = false
    public var weightDecay: Float = 0
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var alpha: Float = 0.99
    public var eps: Float = 1e-8

    public init() {}

    public func make() -> Optimizer {
        switch kind {
        case .sgd: return SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        case .rmsprop: return RMSprop(learningRate: learningRate, alpha: alpha, eps: eps, weightDecay: weightDecay, momentum: momentum)
        case .adam: return Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        }
    }
}

/// How a char-LM is trained (defaults follow char-rnn: batch 50, sequence 50, clip 5).
public struct CharLMTrainingOptions: Sendable {
    public var batchSize = 50
    public var seqLen = 50
    public var optimizer = OptimizerSettings()
    public var schedule: LearningRateSchedule = .constant
    /// Epochs before the schedule starts to decay the rate (char-rnn's learning_rate_decay_after).
    public var decayAfterEpochs = 0
    /// Global-norm clipping (0 = off) and element clipping (0 = off).
    public var clipNorm: Float = 5
    public var clipValue: Float = 0
    /// Stop at whichever limit comes first (nil = no limit from that one; with all three nil,
    /// `run` trains until the process stops, so set one).
    public var maxSteps: Int?
    public var maxEpochs: Double?
    public var maxSeconds: Double?
    /// Validate every this many steps (and at the end).
    public var evalEvery = 1000
    public var seed: UInt64 = 123

    public init() {}
}

/// What the trainer reports as it goes.
public enum TrainingEvent: Sendable {
    /// After each step: `trainLoss` is the mean since the last report of this kind.
    case progress(TrainingProgress)
    /// After each validation; `improved` when it is the best so far.
    case validation(TrainingProgress, valLoss: Double, improved: Bool)
}

public struct TrainingProgress: Sendable {
    public var step: Int
    public var epoch: Double
    public var trainLoss: Double
    /// The loss of the latest step alone (nan before the first step).
    public var stepLoss: Double = .nan
    public var learningRate: Float
    public var gradNorm: Float
    public var charsPerSecond: Double
    public var elapsedSeconds: Double
    /// Estimated seconds left, from whichever limit ends the run first (nil when unknown).
    public var etaSeconds: Double?
    public var bestValLoss: Double?
}

/// Truncated-BPTT training of a `CharLM` on char-rnn-style streams (see `CharStreams`): the state
/// is carried from one batch to the next and reset at each epoch; the gradient stops at each
/// batch boundary.
public final class CharLMTrainer {
    public let model: CharLM
    public let options: CharLMTrainingOptions
    public let optimizer: Optimizer
    public let train: CharStreams
    public let validation: CharStreams?

    /// Where training stands; saved with `--resume` checkpoints.
    public private(set) var step = 0
    public private(set) var epoch = 0
    public private(set) var batchInEpoch = 0
    public private(set) var bestValLoss: Double?
    public private(set) var carried: RecurrentState?
    /// Where training stands in epochs (2.5 = half-way through the third), as progress lines show it.
    public var epochPosition: Double { Double(epoch) + Double(batchInEpoch) / Double(train.batchesPerEpoch) }
    private var rng: SeededRNG
    /// The training split's `DataFingerprint`, saved in the training state for `--resume` to check.
    public let dataFingerprint: String

    public init(model: CharLM, trainTokens: [Int32], validationTokens: [Int32], options: CharLMTrainingOptions, source: String) throws {
        let V = model.config.vocabulary.count
        for (name, tokens) in [("training", trainTokens), ("validation", validationTokens)] {
            if let bad = tokens.first(where: { $0 < 0 || Int($0) >= V }) {
                throw RecurrentError("\(source): the \(name) tokens hold id \(bad), outside the model's vocabulary of \(V)")
            }
        }
        self.model = model
        self.options = options
        self.optimizer = options.optimizer.make()
        self.train = try CharStreams(tokens: trainTokens, batchSize: options.batchSize, seqLen: options.seqLen, source: "\(source) (training split)")
        self.validation = try CharLMTrainer.validationStreams(validationTokens, batchSize: options.batchSize, seqLen: options.seqLen, source: source)
        self.rng = SeededRNG(seed: options.seed &+ 0x5eed)
        var fingerprint = DataFingerprint()
        fingerprint.add(trainTokens)
        self.dataFingerprint = fingerprint.hex
    }

    /// Validation streams as char-rnn cuts them, shrunk when the split is shorter than one batch.
    static func validationStreams(_ tokens: [Int32], batchSize: Int, seqLen: Int, source: String) throws -> CharStreams? {
        if tokens.isEmpty { return nil }
        guard tokens.count >= 2 else {
            throw RecurrentError("--val-fraction: the validation split of \(source) has \(tokens.count) character; it needs at least 2 (raise --val-fraction or use 0)")
        }
        let t = min(seqLen, tokens.count - 1)
        let b = max(1, min(batchSize, (tokens.count - 1) / t))
        return try CharStreams(tokens: tokens, batchSize: b, seqLen: t, source: "\(source) (validation split)")
    }

    /// Mean validation loss over every batch of the validation split, state carried between batches.
    public func validate() -> Double? {
        guard let v = validation else { return nil }
        var state: RecurrentState?
        var sum = 0.0
        for i in 0..<v.batchesPerEpoch {
            let (x, y) = v.batch(i)
            let (loss, s) = model.loss(inputs: x, targets: y, batch: v.batchSize, steps: v.seqLen, state: state, rng: &rng)
            sum += Double(loss)
            state = s
        }
        return sum / Double(v.batchesPerEpoch)
    }

    /// Restores the position, optimizer state and dropout RNG written by `trainingState()` (`rng`:
    /// its metadata's four words; a state without them, written before they were saved, reseeds
    /// from the step, so that run's dropout masks differ from an uninterrupted run's).
    public func restore(step: Int, epoch: Int, batchInEpoch: Int, bestValLoss: Double?, carried: RecurrentState?,
                        optimizerState: [String: Tensor], rng words: [UInt64]? = nil) throws {
        self.step = step
        self.epoch = epoch
        self.batchInEpoch = min(batchInEpoch, train.batchesPerEpoch)
        self.bestValLoss = bestValLoss
        self.carried = carried
        try optimizer.loadState(optimizerState, for: model.parameters)
        rng = words.flatMap { SeededRNG(state: $0) } ?? SeededRNG(seed: options.seed &+ 0x5eed &+ UInt64(step))
    }

    /// The tensors and metadata needed to resume exactly where training stands.
    public func trainingState() -> (tensors: [(String, Tensor)], metadata: [String: String]) {
        var tensors = optimizer.stateTensors(for: model.parameters)
        if let c = carried {
            tensors.append(("carried.hidden", c.hidden))
            if let cell = c.cell { tensors.append(("carried.cell", cell)) }
        }
        var meta: [String: String] = [
            "model": "char-lm-training-state",
            "step": String(step), "epoch": String(epoch), "batch_in_epoch": String(batchInEpoch),
            "optimizer": options.optimizer.kind.rawValue,
            "batch_size": String(options.batchSize), "seq_len": String(options.seqLen),
            "rng": rng.state.map { String($0, radix: 16) }.joined(separator: ","),
            "data": dataFingerprint,
        ]
        if let b = bestValLoss { meta["best_val_loss"] = String(b) }
        return (tensors, meta)
    }

    /// Trains until a limit is reached, calling `onEvent` after each step and each validation.
    /// Throws `Divergence`'s error, before the optimizer step, once a loss or gradient norm is not
    /// finite, and once a validation loss is not; rethrows `onEvent`'s errors.
    public func run(onEvent: (TrainingEvent) throws -> Void) throws {
        let charsPerStep = Double(options.batchSize * options.seqLen)
        let start = Date()
        let startStep = step
        var lossSum = 0.0, lossCount = 0
        var lastNorm: Float = 0
        var lastLoss = Double.nan
        let params = model.parameters
        let perEpoch = train.batchesPerEpoch

        func progress() -> TrainingProgress {
            let elapsed = Date().timeIntervalSince(start)
            let done = Double(step - startStep)
            let secPerStep = done > 0 ? elapsed / done : 0
            var eta: Double?
            if done > 0 {
                var candidates: [Double] = []
                if let s = options.maxSteps { candidates.append(Double(max(0, s - step)) * secPerStep) }
                if let e = options.maxEpochs { candidates.append(max(0, e * Double(perEpoch) - Double(epoch * perEpoch + batchInEpoch)) * secPerStep) }
                if let m = options.maxSeconds { candidates.append(max(0, m - elapsed)) }
                eta = candidates.min()
            }
            return TrainingProgress(
                step: step, epoch: epochPosition,
                trainLoss: lossCount > 0 ? lossSum / Double(lossCount) : .nan, stepLoss: lastLoss,
                learningRate: optimizer.learningRate, gradNorm: lastNorm,
                charsPerSecond: elapsed > 0 ? done * charsPerStep / elapsed : 0,
                elapsedSeconds: elapsed, etaSeconds: eta, bestValLoss: bestValLoss)
        }

        func finished() -> Bool {
            if let s = options.maxSteps, step >= s { return true }
            if let e = options.maxEpochs, epochPosition >= e - 1e-9 { return true }
            if let m = options.maxSeconds, Date().timeIntervalSince(start) >= m { return true }
            return false
        }

        func evaluate() throws {
            guard let v = validate() else { return }
            try Divergence.checkValidation(step, "loss", v)
            let improved = bestValLoss.map { v < $0 } ?? true
            if improved { bestValLoss = v }
            try onEvent(.validation(progress(), valLoss: v, improved: improved))
            lossSum = 0
            lossCount = 0
        }

        var validatedAt = -1
        while !finished() {
            if batchInEpoch >= perEpoch {
                epoch += 1
                batchInEpoch = 0
                carried = nil
                if finished() { break }
            }
            optimizer.learningRate = options.schedule.rate(base: options.optimizer.learningRate, epoch: LearningRateSchedule.decayEpoch(epoch, after: options.decayAfterEpochs))
            let (x, y) = train.batch(batchInEpoch)
            model.zeroGrad()
            let (loss, state) = model.trainStep(inputs: x, targets: y, batch: options.batchSize, steps: options.seqLen, state: carried, rng: &rng)
            carried = state
            if options.clipValue > 0 { GradientClipping.clipValue(params, value: options.clipValue) }
            if options.clipNorm > 0 {
                lastNorm = GradientClipping.clipNorm(params, maxNorm: options.clipNorm)
            } else {
                lastNorm = GradientClipping.globalNorm(params)
            }
            try Divergence.checkStep(step + 1, loss: Double(loss), gradientNorm: lastNorm)
            optimizer.step(params)
            step += 1
            batchInEpoch += 1
            lossSum += Double(loss)
            lossCount += 1
            lastLoss = Double(loss)
            try onEvent(.progress(progress()))
            if options.evalEvery > 0, step % options.evalEvery == 0 {
                try evaluate()
                validatedAt = step
            }
        }
        if validatedAt != step, validation != nil { try evaluate() }
    }
}
