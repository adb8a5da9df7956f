import Foundation

/// How a classifier or tagger is trained: mini-batches of whole sequences, validation accuracy
/// for model selection and early stopping.
public struct TaskTrainingOptions: Sendable {
    public var batchSize = 32
    public var optimizer: OptimizerSettings = {
        var o = OptimizerSettings()
        o.learningRate = 1e-3
        return o
    }()
    public var schedule: LearningRateSchedule = .constant
    /// Reduce-on-plateau (as `ReduceLROnPlateau(mode="max")` on the validation accuracy): after
    /// `plateauPatience` validations in a row without a better accuracy, the rate is multiplied by
    /// `plateauFactor` (1 = off); the multiplier applies on top of `schedule`.
    public var plateauFactor: Float = 1
    public var plateauPatience = 1
    /// Exponential moving average of the weights (Polyak averaging; 0 = off): after every step
    /// `avg = d·avg + (1−d)·w` with `d = min(emaDecay, (1+step)/(10+step))`; validation, saving
    /// and early stopping then use the averaged weights, training continues on the raw ones.
    public var emaDecay: Float = 0
    /// Global-norm clipping (0 = off).
    public var clipNorm: Float = 5
    /// Stop at whichever limit comes first (nil = no limit from that one).
    public var maxSteps: Int?
    public var maxEpochs: Double?
    public var maxSeconds: Double?
    /// Stop after this many validations in a row without a better accuracy (nil = never).
    public var patience: Int?
    /// Validate every this many steps; nil = at the end of every epoch.
    public var evalEvery: Int?
    /// Batches sorted by length within pools of this many (see `BatchPlan`); 1 = plain shuffle.
    public var poolBatches = 20
    public var seed: UInt64 = 123

    public init() {}
}

/// What the trainer reports as it goes.
public enum TaskTrainingEvent {
    case progress(TaskProgress)
    /// After each validation; `improved` when the accuracy is the best so far (save then).
    case validation(TaskProgress, accuracy: Double, improved: Bool)
}

public struct TaskProgress: Sendable {
    public var step: Int
    public var epoch: Double
    /// Mean training loss since the last validation.
    public var trainLoss: Double
    public var learningRate: Float
    public var gradNorm: Float
    public var examplesPerSecond: Double
    public var elapsedSeconds: Double
    public var bestAccuracy: Double?
}

/// The training loop shared by the sequence tasks: shuffled, length-pooled batches per epoch (seeded),
/// one `step` closure per batch (forward + backward, returning the loss), clipping, an optimizer
/// step, validation by accuracy, early stopping after `patience` validations without improvement.
public final class TaskTrainer {
    public let options: TaskTrainingOptions
    public let optimizer: Optimizer
    public let parameters: [Parameter]
    public private(set) var step = 0
    public private(set) var bestAccuracy: Double?
    /// Why the run ended: "steps", "epochs", "minutes" or "patience".
    public private(set) var stopReason = ""
    private let lengths: [Int]

    /// - Parameters:
    ///   - lengths: one per training example (batches group similar lengths).
    public init(parameters: [Parameter], lengths: [Int], options: TaskTrainingOptions) {
        self.parameters = parameters
        self.lengths = lengths
        self.options = options
        self.optimizer = options.optimizer.make()
    }

    /// Runs until a limit; `step` gets the example indices of a batch and an RNG for dropout, and
    /// returns the batch's mean loss after accumulating gradients; `validate` returns an accuracy.
    public func run(step trainStep: ([Int], inout SeededRNG) -> Float, validate: () -> Double,
                    onEvent: (TaskTrainingEvent) throws -> Void) rethrows {
        var rng = SeededRNG(seed: options.seed &+ 0x7a5c)
        let start = Date()
        var examples = 0
        var lossSum = 0.0, lossCount = 0
        var lastNorm: Float = 0
        var epoch = 0
        var sinceBest = 0
        var plateauScale: Float = 1
        var sincePlateauCut = 0
        var plan = BatchPlan.batches(lengths: lengths, batchSize: options.batchSize, poolBatches: options.poolBatches, rng: &rng)
        var position = 0

        func progress() -> TaskProgress {
            let elapsed = Date().timeIntervalSince(start)
            return TaskProgress(step: step, epoch: Double(epoch) + Double(position) / Double(max(plan.count, 1)),
                                trainLoss: lossCount > 0 ? lossSum / Double(lossCount) : .nan,
                                learningRate: optimizer.learningRate, gradNorm: lastNorm,
                                examplesPerSecond: elapsed > 0 ? Double(examples) / elapsed : 0,
                                elapsedSeconds: elapsed, bestAccuracy: bestAccuracy)
        }
        func limitReached() -> Bool {
            if let s = options.maxSteps, step >= s { stopReason = "steps"; return true }
            if let e = options.maxEpochs, Double(epoch) + Double(position) / Double(max(plan.count, 1)) >= e - 1e-9 { stopReason = "epochs"; return true }
            if let m = options.maxSeconds, Date().timeIntervalSince(start) >= m { stopReason = "minutes"; return true }
            return false
        }
        var average: [[Float]] = options.emaDecay > 0 ? parameters.map { $0.value.data } : []
        func swapAverage() {
            guard !average.isEmpty else { return }
            for (i, p) in parameters.enumerated() { swap(&p.value.data, &average[i]) }
        }
        func updateAverage() {
            guard !average.isEmpty else { return }
            let d = min(options.emaDecay, Float(1 + step) / Float(10 + step)), e = 1 - d
            for (i, p) in parameters.enumerated() {
                p.value.data.withUnsafeBufferPointer { w in
                    average[i].withUnsafeMutableBufferPointer { a in
                        for j in 0..<a.count { a[j] = d * a[j] + e * w[j] }
                    }
                }
            }
        }
        /// Returns true when patience ran out.
        func evaluate() throws -> Bool {
            // With averaging, the averaged weights are validated and saved, then the raw ones restored.
            swapAverage()
            defer { swapAverage() }
            let accuracy = validate()
            let improved = bestAccuracy.map { accuracy > $0 } ?? true
            if improved { bestAccuracy = accuracy; sinceBest = 0; sincePlateauCut = 0 } else { sinceBest += 1; sincePlateauCut += 1 }
            if options.plateauFactor < 1, sincePlateauCut >= max(options.plateauPatience, 1) {
                plateauScale *= options.plateauFactor
                sincePlateauCut = 0
            }
            try onEvent(.validation(progress(), accuracy: accuracy, improved: improved))
            lossSum = 0
            lossCount = 0
            if let p = options.patience, sinceBest >= p { stopReason = "patience"; return true }
            return false
        }

        var validatedAt = -1
        while !limitReached() {
            if position >= plan.count {
                epoch += 1
                position = 0
                plan = BatchPlan.batches(lengths: lengths, batchSize: options.batchSize, poolBatches: options.poolBatches, rng: &rng)
                if limitReached() { break }
            }
            optimizer.learningRate = options.schedule.rate(base: options.optimizer.learningRate, epoch: epoch) * plateauScale
            let batch = plan[position]
            for p in parameters { p.grad.zero() }
            let loss = trainStep(batch, &rng)
            lastNorm = options.clipNorm > 0 ? GradientClipping.clipNorm(parameters, maxNorm: options.clipNorm)
                : GradientClipping.globalNorm(parameters)
            optimizer.step(parameters)
            step += 1
            updateAverage()
            position += 1
            examples += batch.count
            lossSum += Double(loss)
            lossCount += 1
            try onEvent(.progress(progress()))
            let due = options.evalEvery.map { step % $0 == 0 } ?? (position == plan.count)
            if due {
                validatedAt = step
                if try evaluate() { return }
            }
        }
        if validatedAt != step { _ = try evaluate() }
    }
}
