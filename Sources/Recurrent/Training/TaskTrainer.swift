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
    /// Epochs before `schedule` starts to decay the rate (char-rnn's learning_rate_decay_after).
    public var decayAfterEpochs = 0
    /// Reduce-on-plateau, as PyTorch's `ReduceLROnPlateau(mode="max", factor: plateauFactor,
    /// patience: plateauPatience, threshold: plateauThreshold, threshold_mode="rel", cooldown=0)`
    /// on the validation score: a score counts as better than the best so far only when it passes
    /// best + |best|·threshold (for the negated losses and errors some trainers score by, this is
    /// `mode="min"` on the loss); once more than `plateauPatience` validations in a row were not
    /// better, the rate is multiplied by `plateauFactor` (1 = off; skipped, as torch's eps = 1e-8,
    /// when that would change it by no more than 1e-8) and the count starts again. The
    /// multiplier applies on top of `schedule`. (Model selection and `patience` count any strict
    /// improvement, as before.)
    public var plateauFactor: Float = 1
    public var plateauPatience = 1
    public var plateauThreshold = 1e-4
    /// Exponential moving average of the weights (Polyak averaging; 0 = off): after every step
    /// `avg = d·avg + (1−d)·w` with `d = min(emaDecay, (1+step)/(10+step))`, from the initial weights
    /// (TensorFlow's `ExponentialMovingAverage` with `num_updates`); validation, saving
    /// and early stopping then use the averaged weights, training continues on the raw ones.
    public var emaDecay: Float = 0
    /// Global-norm clipping (0 = off) and element clipping (0 = off; applied first, as `recurrent train`).
    public var clipNorm: Float = 5
    public var clipValue: Float = 0
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
    /// What the run trains on (`DataFingerprint`), saved in the training state; a resumed run
    /// whose fingerprint differs is refused (nil: not recorded or checked).
    public var dataFingerprint: String?

    public init() {}
}

/// What the trainer reports as it goes.
public enum TaskTrainingEvent: Sendable {
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
    /// Estimated seconds left, from whichever of --steps, --epochs, --minutes ends the run first
    /// (nil when unknown; early stopping by patience may end it sooner).
    public var etaSeconds: Double? = nil
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
    /// The best validation score so far, of the validations whose model the checkpoint may hold
    /// (a save is due when a validation beats it): the scheduled ones, the one at the end of a run
    /// that stopped between two of them, and `keepBest`.
    public private(set) var bestAccuracy: Double?
    /// Why the run ended: "steps", "epochs", "minutes" or "patience".
    public private(set) var stopReason = ""
    /// The step of the last validation (nil before the first).
    private var validatedStep: Int?
    private let lengths: [Int]
    private var loop: LoopState
    /// True while the parameters hold the weight average and `loop.average` the raw weights.
    private var averageInPlace = false

    /// Where a run stands between two steps, besides `step`, `bestAccuracy`, the weights and the
    /// optimizer: everything `--resume` needs to continue exactly as an uninterrupted run would.
    private struct LoopState {
        var rng: SeededRNG
        var epoch = 0
        /// The current epoch's batches and the next one to run.
        var plan: [[Int]]
        var position = 0
        /// The best score of the scheduled validations (every `evalEvery` steps or epoch), which
        /// patience counts from; the validation at the end of a run that stops between two is not
        /// one of them, so a resumed run goes on as an uninterrupted one would.
        var scheduledBest: Double?
        var sinceBest = 0
        /// The training losses since the last scheduled validation (their mean is printed with the next).
        var lossSum = 0.0
        var lossCount = 0
        var plateauScale: Float = 1
        /// Validations in a row not better than `plateauBest` (PyTorch's num_bad_epochs).
        var sincePlateauCut = 0
        /// The best score by the plateau's threshold (PyTorch's best); nil before the first.
        var plateauBest: Double?
        /// The weight average (empty when `emaDecay` is 0), in `parameters` order.
        var average: [[Float]]
    }

    /// - Parameters:
    ///   - lengths: one per training example (batches group similar lengths).
    public init(parameters: [Parameter], lengths: [Int], options: TaskTrainingOptions) {
        require(!lengths.isEmpty, "a TaskTrainer needs at least one training example (lengths is empty)")
        require(options.batchSize > 0, "TaskTrainingOptions.batchSize must be at least 1, got \(options.batchSize)")
        require(options.evalEvery.map { $0 > 0 } ?? true, "TaskTrainingOptions.evalEvery must be at least 1 (nil: every epoch), got \(options.evalEvery ?? 0)")
        self.parameters = parameters
        self.lengths = lengths
        self.options = options
        self.optimizer = options.optimizer.make()
        var rng = SeededRNG(seed: options.seed &+ 0x7a5c)
        let plan = BatchPlan.batches(lengths: lengths, batchSize: options.batchSize, poolBatches: options.poolBatches, rng: &rng)
        loop = LoopState(rng: rng, plan: plan, average: options.emaDecay > 0 ? parameters.map { $0.value.data } : [])
    }

    private func swapAverage() {
        for i in loop.average.indices { swap(&parameters[i].value.data, &loop.average[i]) }
        averageInPlace.toggle()
    }

    /// The epoch as a fraction (2.5 = half-way through the third epoch).
    public var epoch: Double { Double(loop.epoch) + Double(loop.position) / Double(max(loop.plan.count, 1)) }

    /// Runs until a limit; `step` gets the example indices of a batch and an RNG for dropout, and
    /// returns the batch's mean loss after accumulating gradients; `validate` returns an accuracy.
    /// After `restore(from:)`, continues where the saved run stood. Throws `Divergence`'s error,
    /// before the optimizer step, once a loss or gradient norm is not finite, and once a
    /// validation score is not; rethrows `onEvent`'s errors.
    public func run(step trainStep: ([Int], inout SeededRNG) -> Float, validate: () throws -> Double,
                    onEvent: (TaskTrainingEvent) throws -> Void) throws {
        let start = Date()
        var examples = 0
        var lastNorm: Float = 0

        let startStep = step
        func progress() -> TaskProgress {
            let elapsed = Date().timeIntervalSince(start)
            let done = Double(step - startStep), secPerStep = done > 0 ? elapsed / done : 0
            var eta: Double?
            if done > 0 {
                var candidates: [Double] = []
                if let s = options.maxSteps { candidates.append(Double(max(0, s - step)) * secPerStep) }
                if let e = options.maxEpochs { candidates.append(max(0, e - epoch) * Double(max(loop.plan.count, 1)) * secPerStep) }
                if let m = options.maxSeconds { candidates.append(max(0, m - elapsed)) }
                eta = candidates.min()
            }
            return TaskProgress(step: step, epoch: epoch,
                                trainLoss: loop.lossCount > 0 ? loop.lossSum / Double(loop.lossCount) : .nan,
                                learningRate: optimizer.learningRate, gradNorm: lastNorm,
                                examplesPerSecond: elapsed > 0 ? Double(examples) / elapsed : 0,
                                elapsedSeconds: elapsed, etaSeconds: eta, bestAccuracy: bestAccuracy)
        }
        func limitReached() -> Bool {
            if let s = options.maxSteps, step >= s { stopReason = "steps"; return true }
            if let e = options.maxEpochs, epoch >= e - 1e-9 { stopReason = "epochs"; return true }
            if let m = options.maxSeconds, Date().timeIntervalSince(start) >= m { stopReason = "minutes"; return true }
            return false
        }
        func updateAverage() {
            guard !loop.average.isEmpty else { return }
            let d = min(options.emaDecay, Float(1 + step) / Float(10 + step)), e = 1 - d
            for (i, p) in parameters.enumerated() {
                p.value.data.withUnsafeBufferPointer { w in
                    loop.average[i].withUnsafeMutableBufferPointer { a in
                        for j in 0..<a.count { a[j] = d * a[j] + e * w[j] }
                    }
                }
            }
        }
        /// Returns true when patience ran out. `scheduled`: one of the validations every
        /// `evalEvery` steps (or epoch); the one at the end of a run that stopped between two only
        /// decides whether the checkpoint is replaced, and leaves patience, the plateau and the
        /// loss mean as they were (and so the training state it writes).
        func evaluate(scheduled: Bool) throws -> Bool {
            // With averaging, the averaged weights are validated and saved (by the event handler,
            // with the training state), then the raw ones restored.
            swapAverage()
            defer { swapAverage() }
            let accuracy = try validate()
            try Divergence.checkValidation(step, "score", accuracy)
            let improved = bestAccuracy.map { accuracy > $0 } ?? true
            if improved { bestAccuracy = accuracy }
            guard scheduled else {
                try onEvent(.validation(progress(), accuracy: accuracy, improved: improved))
                return false
            }
            if loop.scheduledBest.map({ accuracy > $0 }) ?? true { loop.scheduledBest = accuracy; loop.sinceBest = 0 } else { loop.sinceBest += 1 }
            if loop.plateauBest.map({ accuracy > $0 + abs($0) * options.plateauThreshold }) ?? true {
                loop.plateauBest = accuracy
                loop.sincePlateauCut = 0
            } else {
                loop.sincePlateauCut += 1
            }
            if options.plateauFactor < 1, loop.sincePlateauCut > options.plateauPatience {
                // As torch, a cut that would change the current rate by no more than eps = 1e-8 is skipped.
                let rate = Double(optimizer.learningRate)
                if rate - rate * Double(options.plateauFactor) > 1e-8 { loop.plateauScale *= options.plateauFactor }
                loop.sincePlateauCut = 0
            }
            let shown = progress()   // with the mean training loss since the last validation, which starts again
            loop.lossSum = 0
            loop.lossCount = 0
            try onEvent(.validation(shown, accuracy: accuracy, improved: improved))
            if let p = options.patience, loop.sinceBest >= p { stopReason = "patience"; return true }
            return false
        }

        // A resumed run whose patience had already run out stops where the uninterrupted one did.
        if let p = options.patience, p > 0, loop.sinceBest >= p, validatedStep == nil, step > 0 {
            stopReason = "patience"
            validatedStep = step
            return
        }
        while !limitReached() {
            if loop.position >= loop.plan.count {
                loop.epoch += 1
                loop.position = 0
                loop.plan = BatchPlan.batches(lengths: lengths, batchSize: options.batchSize, poolBatches: options.poolBatches, rng: &loop.rng)
                if limitReached() { break }
            }
            optimizer.learningRate = options.schedule.rate(base: options.optimizer.learningRate,
                                                            epoch: LearningRateSchedule.decayEpoch(loop.epoch, after: options.decayAfterEpochs)) * loop.plateauScale
            let batch = loop.plan[loop.position]
            for p in parameters { p.grad.zero() }
            let loss = trainStep(batch, &loop.rng)
            if options.clipValue > 0 { GradientClipping.clipValue(parameters, value: options.clipValue) }
            lastNorm = options.clipNorm > 0 ? GradientClipping.clipNorm(parameters, maxNorm: options.clipNorm)
                : GradientClipping.globalNorm(parameters)
            try Divergence.checkStep(step + 1, loss: Double(loss), gradientNorm: lastNorm)
            optimizer.step(parameters)
            step += 1
            updateAverage()
            loop.position += 1
            examples += batch.count
            loop.lossSum += Double(loss)
            loop.lossCount += 1
            try onEvent(.progress(progress()))
            let due = options.evalEvery.map { step % $0 == 0 } ?? (loop.position == loop.plan.count)
            if due {
                validatedStep = step
                if try evaluate(scheduled: true) { return }
            }
        }
        // Once per step: a second `run` after the limit neither validates again nor changes stopReason.
        if validatedStep != step {
            validatedStep = step
            _ = try evaluate(scheduled: false)
        }
    }
}

// MARK: - Resuming

extension TaskTrainer {
    /// The training state for `--resume`: the raw weights (`weights.<i>`), the weight average
    /// (`average.<i>`), the optimizer's state (`optim.*`), the epoch's batch plan (`loop.plan`,
    /// `loop.plan_sizes`) and, in the metadata, the counters and the RNG.
    ///
    /// Inside a `.validation` event handler the averaged weights are in place (when averaging is
    /// on); the state still records the raw weights the run continues from.
    public func trainingState() -> (tensors: [(String, Tensor)], metadata: [String: String]) {
        var tensors: [(String, Tensor)] = []
        for (i, p) in parameters.enumerated() {
            if loop.average.isEmpty {
                tensors.append(("weights.\(i)", p.value))
            } else {
                let other = Tensor(shape: p.shape, data: loop.average[i])
                tensors.append(("weights.\(i)", averageInPlace ? other : p.value))
                tensors.append(("average.\(i)", averageInPlace ? p.value : other))
            }
        }
        tensors += optimizer.stateTensors(for: parameters)
        let flat = loop.plan.flatMap { $0 }.map(Float.init)
        tensors.append(("loop.plan", Tensor(shape: [flat.count], data: flat)))
        tensors.append(("loop.plan_sizes", Tensor(shape: [loop.plan.count], data: loop.plan.map { Float($0.count) })))
        var meta: [String: String] = [
            "model": "task-training-state", "step": String(step), "epoch": String(loop.epoch), "position": String(loop.position),
            "since_best": String(loop.sinceBest), "plateau_scale": String(loop.plateauScale), "since_plateau_cut": String(loop.sincePlateauCut),
            "rng": loop.rng.state.map { String($0, radix: 16) }.joined(separator: ","),
            "optimizer": options.optimizer.kind.rawValue, "batch_size": String(options.batchSize), "ema": String(options.emaDecay),
            "examples": String(lengths.count),
        ]
        if let b = bestAccuracy { meta["best_accuracy"] = String(b) }
        if let b = loop.scheduledBest { meta["scheduled_best"] = String(b) }
        if loop.lossCount > 0 { meta["loss_sum"] = String(loop.lossSum); meta["loss_count"] = String(loop.lossCount) }
        if let b = loop.plateauBest { meta["plateau_best"] = String(b) }
        if let f = options.dataFingerprint { meta["data"] = f }
        return (tensors, meta)
    }

    /// Continues from a state written by `trainingState()`; `name` (the file) is named in errors.
    /// The data (example count), batch size, optimizer and averaging must be those of the saved run.
    public func restore(from state: SafeTensorsFile, name: String) throws {
        let meta = state.metadata
        func int(_ key: String) throws -> Int {
            // Counters far beyond any run (2^40) would overflow when incremented.
            guard let s = meta[key], let v = Int(s), v >= 0, v <= 1 << 40 else { throw RecurrentError("\(name): metadata lacks a valid '\(key)' (a whole number from 0 to 2^40)") }
            return v
        }
        guard meta["model"] == "task-training-state" else { throw RecurrentError("\(name): not a training state written by classify/tag train") }
        for (key, now, flag) in [("optimizer", options.optimizer.kind.rawValue, "--optimizer"), ("batch_size", String(options.batchSize), "--batch-size"),
                                 ("ema", String(options.emaDecay), "--ema")] where meta[key] != now {
            throw RecurrentError("\(flag): the run being resumed used \(key.replacingOccurrences(of: "_", with: " ")) \(meta[key] ?? "?"), this run \(now)")
        }
        if meta["examples"] != String(lengths.count) {
            throw RecurrentError("\(name): the run being resumed trained on \(meta["examples"] ?? "?") examples, this run on \(lengths.count) (other data, or other data or split flags)")
        }
        if let now = options.dataFingerprint, let saved = meta["data"], saved != now {
            throw RecurrentError("\(name): the run being resumed trained on other data (other examples, labels or order: fingerprint \(saved), this run \(now)); give the same data and data flags")
        }
        let averaging = options.emaDecay > 0
        var raw: [[Float]] = [], average: [[Float]] = []
        for (i, p) in parameters.enumerated() {
            for (prefix, averaged) in [("weights", false), ("average", true)] where !averaged || averaging {
                guard let t = state.tensors["\(prefix).\(i)"], t.shape == p.shape else {
                    throw RecurrentError("\(name): \(prefix).\(i) is missing or not of shape \(p.shape): the run being resumed had another model")
                }
                if averaged { average.append(t.data) } else { raw.append(t.data) }
            }
        }
        guard let flat = state.tensors["loop.plan"], let sizes = state.tensors["loop.plan_sizes"] else {
            throw RecurrentError("\(name): the batch plan is missing")
        }
        // Whole numbers in range, checked before any conversion (a NaN or 1e30 would trap).
        var plan: [[Int]] = [], offset = 0
        for size in sizes.data {
            guard let n = Int(exactly: size), n >= 0, n <= flat.count - offset else {
                throw RecurrentError("\(name): the batch plan is inconsistent (loop.plan_sizes holds \(size), with \(flat.count - offset) entries left)")
            }
            var batch: [Int] = []
            for v in flat.data[offset..<offset + n] {
                guard let i = Int(exactly: v), i >= 0, i < lengths.count else {
                    throw RecurrentError("\(name): the batch plan names example \(v), not one of --train's \(lengths.count)")
                }
                batch.append(i)
            }
            plan.append(batch)
            offset += n
        }
        guard offset == flat.count else { throw RecurrentError("\(name): the batch plan is inconsistent (loop.plan holds \(flat.count - offset) entries past its batches)") }
        let words = (meta["rng"] ?? "").split(separator: ",").compactMap { UInt64($0, radix: 16) }
        guard let rng = SeededRNG(state: words) else { throw RecurrentError("\(name): metadata lacks a valid 'rng'") }
        guard let scale = meta["plateau_scale"].flatMap(Float.init) else { throw RecurrentError("\(name): metadata lacks a valid 'plateau_scale'") }
        let position = try int("position")
        guard position <= plan.count else { throw RecurrentError("\(name): 'position' is beyond the batch plan") }
        do { try optimizer.loadState(state.tensors, for: parameters) } catch let e as RecurrentError { throw RecurrentError("\(name): \(e.message)") }
        for (p, w) in zip(parameters, raw) { p.value.data = w }
        step = try int("step")
        bestAccuracy = meta["best_accuracy"].flatMap(Double.init)
        // States written before the plateau and the scheduled validations kept their own best
        // (2026-12-01) resume from the best score.
        let lossCount = meta["loss_count"] == nil ? 0 : try int("loss_count")
        guard lossCount == 0 || meta["loss_sum"].flatMap(Double.init)?.isFinite == true else {
            throw RecurrentError("\(name): metadata lacks a valid 'loss_sum'")
        }
        loop = LoopState(rng: rng, epoch: try int("epoch"), plan: plan, position: position,
                         scheduledBest: meta["scheduled_best"].flatMap(Double.init) ?? bestAccuracy, sinceBest: try int("since_best"),
                         lossSum: lossCount > 0 ? meta["loss_sum"].flatMap(Double.init) ?? 0 : 0, lossCount: lossCount,
                         plateauScale: scale, sincePlateauCut: try int("since_plateau_cut"),
                         plateauBest: meta["plateau_best"].flatMap(Double.init) ?? bestAccuracy, average: average)
    }

    /// Records that the checkpoint on disk already holds a model of this validation score, so
    /// that only a better one replaces it (when a run stopped after writing its checkpoint but
    /// before writing the training state, the state's best is older than the checkpoint's).
    /// Patience still counts from the scheduled validations' best.
    public func keepBest(atLeast score: Double) {
        guard !score.isNaN else { return }
        if bestAccuracy.map({ score > $0 }) ?? true { bestAccuracy = score }
    }
}
