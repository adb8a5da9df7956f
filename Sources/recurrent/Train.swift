import ArgumentParser
import Foundation
import Recurrent

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a character-level language model on a UTF-8 text file (char-rnn style).",
        discussion: """
        The text is cut into --batch-size contiguous streams; each step takes --seq-len characters \
        from every stream, carrying the state from step to step (truncated BPTT) and resetting it at \
        each epoch. The last --val-fraction of the text is held out for validation. The checkpoint \
        at --output is written atomically whenever the validation loss improves (at the end when \
        there is no validation split), with the training state beside it for --resume.
        """)

    // Data and model
    @Option(help: "The UTF-8 training text.") var data: String
    @Option(help: "Cell: lstm, gru, rnn-tanh or rnn-relu.") var cell = "lstm"
    @Option(help: "Recurrent layers.") var layers = 2
    @Option(help: "Hidden units per layer.") var hidden = 128
    @Option(help: "Embedding width.") var embedding = 64
    @Option(help: "Dropout between recurrent layers (training only), in [0, 1).") var dropout: Float = 0

    // Batching
    @Option(name: .customLong("batch-size"), help: "Parallel streams per step.") var batchSize = 50
    @Option(name: .customLong("seq-len"), help: "Characters per stream per step (the BPTT length).") var seqLen = 50
    @Option(name: .customLong("val-fraction"), help: "Share of the text, from its end, held out for validation, in [0, 1).") var valFraction = 0.05

    // Optimisation
    @Option(help: "Optimizer: sgd, rmsprop or adam.") var optimizer = "adam"
    @Option(help: "Learning rate.") var lr: Float = 2e-3
    @Option(help: "Momentum (sgd, rmsprop).") var momentum: Float = 0
    @Flag(help: "Nesterov momentum (sgd).") var nesterov = false
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay.") var weightDecay: Float = 0
    @Option(help: "Adam's beta1.") var beta1: Float = 0.9
    @Option(help: "Adam's beta2.") var beta2: Float = 0.999
    @Option(help: "RMSprop's smoothing constant.") var alpha: Float = 0.99
    @Option(help: "The optimizer's epsilon.") var eps: Float = 1e-8
    @Option(name: .customLong("lr-decay"), help: "Learning-rate decay: none, step or exponential (per epoch) (default: exponential when --lr-decay-rate is below 1, else none).") var lrDecayFlag: String?
    @Option(name: .customLong("lr-decay-rate"), help: "Decay factor gamma (default: 0.97).") var lrDecayRateFlag: Float?
    @Option(name: .customLong("lr-decay-every"), help: "Epochs between decays (step decay).") var lrDecayEvery = 1
    @Option(name: .customLong("lr-decay-after"), help: "Epochs at the base rate before the first decay (char-rnn's learning_rate_decay_after; 0 and 1 both decay from the second epoch).") var lrDecayAfter = 0
    var lrDecayRate: Float { lrDecayRateFlag ?? 0.97 }
    /// --lr-decay as given; without it, a --lr-decay-rate below 1 decays exponentially (as the task trainers).
    var lrDecay: String { lrDecayFlag ?? ((lrDecayRateFlag ?? 1) < 1 ? "exponential" : "none") }
    @Option(help: "Clip the gradients' global L2 norm to this (0 = off).") var clip: Float = 5
    @Option(name: .customLong("clip-value"), help: "Clamp every gradient element to ±this (0 = off).") var clipValue: Float = 0

    // Initialisation
    @Option(help: "Initialiser of the recurrent layers' input weights: default, xavier-uniform, xavier-normal, kaiming-uniform, kaiming-normal, orthogonal.") var `init` = "default"
    @Option(name: .customLong("recurrent-init"), help: "Initialiser of the recurrent weights (default: as --init).") var recurrentInit: String?
    @Option(name: .customLong("forget-bias"), help: "LSTM forget-gate bias at initialisation.") var forgetBias: Float?

    // Length of the run
    @Option(help: "Stop after this many steps.") var steps: Int?
    @Option(help: "Stop after this many epochs (default 10 when no limit is given).") var epochs: Double?
    @Option(help: "Stop after this many minutes of training.") var minutes: Double?
    @Option(name: .customLong("eval-every"), help: "Validate (and save when better) every this many steps.") var evalEvery = 1000

    // Files
    @Option(help: "Checkpoint to write.") var output = "charlm.safetensors"
    @Option(name: .customLong("init-from"), help: "Start from this checkpoint's weights (its architecture and vocabulary).") var initFrom: String?
    @Option(help: "Resume from this checkpoint and the training state saved beside it.") var resume: String?

    @Option(help: "Keep an HTML report of the training curves and samples in this folder (index.html and SVGs, rewritten at each evaluation).") var report: String?
    @Option(help: "Write TensorBoard event files (scalars, and samples as text) into this folder.") var tensorboard: String?

    @Option(help: "Random seed.") var seed: UInt64 = 123
    @Flag(help: "Print only the model and data lines, the validation lines and the summary (no per-step progress).") var quiet = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if CellKind(name: cell) == nil { throw ValidationError("--cell must be lstm, gru, rnn-tanh or rnn-relu, got '\(cell)'") }
        for (name, value) in [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding),
                              ("--batch-size", batchSize), ("--seq-len", seqLen), ("--lr-decay-every", lrDecayEvery)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        var size = ModelSize(flags: [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding), ("--batch-size", batchSize), ("--seq-len", seqLen)])
        size.addRecurrent(cell: cell, input: embedding, hidden: hidden, layers: layers)
        size.activations = Double(batchSize) * Double(seqLen) * (Double(embedding) + Double(layers) * Double(hidden) * 8)
        try size.check()
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        if !(valFraction >= 0 && valFraction < 1) { throw ValidationError("--val-fraction must be in [0, 1), got \(valFraction)") }
        try OptimizerSettings.checkFlags(optimizer, lr: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                                         beta1: beta1, beta2: beta2, alpha: alpha, eps: eps)
        if !["none", "step", "exponential", "exp"].contains(lrDecay) { throw ValidationError("--lr-decay must be none, step or exponential, got '\(lrDecay)'") }
        if !(lrDecayRate > 0 && lrDecayRate <= 1) { throw ValidationError("--lr-decay-rate must be in (0, 1], got \(lrDecayRate)") }
        if lrDecayAfter < 0 { throw ValidationError("--lr-decay-after must be zero or more, got \(lrDecayAfter)") }
        if !(clip >= 0) || !clip.isFinite { throw ValidationError("--clip must be zero (off) or positive, got \(clip)") }
        if !(clipValue >= 0) || !clipValue.isFinite { throw ValidationError("--clip-value must be zero (off) or positive, got \(clipValue)") }
        if Initializer(rawValue: `init`) == nil { throw ValidationError("--init must be one of \(Initializer.allCases.map(\.rawValue).joined(separator: ", ")), got '\(`init`)'") }
        if let r = recurrentInit, Initializer(rawValue: r) == nil { throw ValidationError("--recurrent-init must be one of \(Initializer.allCases.map(\.rawValue).joined(separator: ", ")), got '\(r)'") }
        if let f = forgetBias, !f.isFinite { throw ValidationError("--forget-bias must be a finite number") }
        if forgetBias != nil && CellKind(name: cell) != .lstm && resume == nil && initFrom == nil {
            throw ValidationError("--forget-bias applies to --cell lstm only (a \(cell) has no forget gate)")
        }
        if let s = steps, s < 1 { throw ValidationError("--steps must be a positive integer, got \(s)") }
        if let e = epochs, !(e > 0) || !e.isFinite { throw ValidationError("--epochs must be greater than 0, got \(e)") }
        if let m = minutes, !(m > 0) || !m.isFinite { throw ValidationError("--minutes must be greater than 0, got \(m)") }
        if evalEvery < 1 { throw ValidationError("--eval-every must be a positive integer, got \(evalEvery)") }
        if initFrom != nil && resume != nil { throw ValidationError("--init-from and --resume cannot be combined: --resume already loads the weights") }
        if output.isEmpty { throw ValidationError("--output must name a file") }
        if report?.isEmpty == true { throw ValidationError("--report must name a folder") }
        if tensorboard?.isEmpty == true { throw ValidationError("--tensorboard must name a folder") }
    }

    func run() throws {
        compute.apply()
        let started = Date()
        try ensureTrainingOutput(output, inputs: [("--data", data), ("--init-from", initFrom)], report: report)
        if dropout > 0 && layers == 1 && resume == nil && initFrom == nil {
            Console.warn("--dropout \(dropout) has no effect with --layers 1: dropout acts between recurrent layers (as PyTorch's)")
        }
        let text = try TextFile.read(path: data)

        // The model: from a checkpoint (its architecture and vocabulary) or new.
        let model: CharLM
        var resumeState: SafeTensorsFile?
        if let source = resume ?? initFrom {
            model = try CharLMCheckpoint.load(path: source, dropout: dropout)
            if resume != nil {
                let statePath = CharLMCheckpoint.trainingStatePath(for: source)
                guard FileManager.default.fileExists(atPath: statePath) else {
                    throw RecurrentError("\(statePath): no such file; --resume needs the training state that train writes beside its checkpoint (use --init-from to start from the weights alone)")
                }
                resumeState = try SafeTensors.read(path: statePath)
            }
            reportIgnoredArchitectureFlags(model.config, source: source)
        } else {
            let vocab = CharVocabulary(text: text)
            let config = CharLMConfig(cell: CellKind(name: cell) ?? .lstm, vocabulary: vocab, embeddingSize: embedding,
                                      hiddenSize: hidden, numLayers: layers, dropout: dropout)
            var rng = SeededRNG(seed: seed)
            model = CharLM(config: config, rng: &rng)
            let inputScheme = Initializer(rawValue: `init`) ?? .pytorchDefault
            let recurrentScheme = recurrentInit.flatMap { Initializer(rawValue: $0) } ?? inputScheme
            if inputScheme != .pytorchDefault || recurrentScheme != .pytorchDefault || forgetBias != nil {
                Initialization.apply(kind: config.cell, hiddenSize: hidden, parameters: model.rnn.parameters,
                                     input: inputScheme, recurrent: recurrentScheme, forgetBias: forgetBias, rng: &rng)
            }
        }
        let tokens = try model.config.vocabulary.encode(text, source: data)
        let (trainTokens, valTokens) = splitTrainValidation(tokens, fraction: valFraction)

        var options = CharLMTrainingOptions()
        options.batchSize = batchSize
        options.seqLen = seqLen
        options.optimizer = .fromFlags(optimizer, lr: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                                       beta1: beta1, beta2: beta2, alpha: alpha, eps: eps)
        switch lrDecay {
        case "step": options.schedule = .step(every: lrDecayEvery, gamma: lrDecayRate)
        case "exponential", "exp": options.schedule = .exponential(gamma: lrDecayRate)
        default: options.schedule = .constant
        }
        options.decayAfterEpochs = lrDecayAfter
        options.clipNorm = clip
        options.clipValue = clipValue
        options.maxSteps = steps
        options.maxEpochs = epochs ?? ((steps == nil && minutes == nil) ? 10 : nil)
        options.maxSeconds = minutes.map { $0 * 60 }
        options.evalEvery = evalEvery
        options.seed = seed

        let trainer = try CharLMTrainer(model: model, trainTokens: trainTokens, validationTokens: valTokens, options: options, source: data)
        var idRNG = SeededRNG(seed: UInt64(Date().timeIntervalSince1970 * 1e6))
        let runID = String(format: "%016llx", idRNG.next())
        if let state = resumeState {
            try restore(trainer, from: state, checkpoint: resume ?? "")
        }

        let v = model.config.vocabulary.count
        Console.line("model: \(model.config.cell.cliName) \(model.config.numLayers)×\(model.config.hiddenSize), embedding \(model.config.embeddingSize), vocabulary \(v), \(Format.grouped(Double(model.parameterCount))) parameters; kernels \(GEMM.isa), \(Threading.count) thread\(Threading.count == 1 ? "" : "s")")
        Console.line("data: \(Format.grouped(Double(trainTokens.count))) training characters (\(trainer.train.batchesPerEpoch) step\(trainer.train.batchesPerEpoch == 1 ? "" : "s") per epoch), \(Format.grouped(Double(valTokens.count))) validation characters")

        let monitor = try TrainingMonitor(report: report, tensorboard: tensorboard, model: model, trainTokens: trainTokens,
                                          title: "\(model.config.cell.cliName) \(model.config.numLayers)×\(model.config.hiddenSize) on \(data), "
                                              + "batch \(batchSize) × \(seqLen), \(optimizer) lr \(lr), run \(runID)", seed: seed,
                                          resumedStep: resumeState == nil ? nil : trainer.step)
        var saved = false
        var lastPrint = Date.distantPast
        var liveLine = false
        func save(step: Int) throws {
            let meta = ["run_id": runID, "step": String(step)]
            let (tensors, stateMeta) = trainer.trainingState()
            // Both files are written in full, then renamed one right after the other: a failure
            // (a full disk, diverged weights) leaves the previous pair as it was.
            let statePath = CharLMCheckpoint.trainingStatePath(for: output)
            let state = try SafeTensors.encode(tensors, metadata: stateMeta.merging(meta) { $1 }.merging(settings) { $1 })
            let checkpoint = try CharLMCheckpoint.encode(model, extra: meta, path: output)
            try SaveGuard.holding {
                try AtomicFile.write(files: [([state], statePath), ([checkpoint], output)])
            }
            saved = true
        }
        do {
            try trainer.run { event in
                switch event {
                case .progress(let p):
                    monitor.record(p)
                    let now = Date()
                    let interval = Console.isTerminal ? 0.2 : 10
                    if !quiet, now.timeIntervalSince(lastPrint) >= interval {
                        lastPrint = now
                        let line = progressLine(p, val: nil)
                        if Console.isTerminal { Console.write("\r\u{1B}[K" + line); liveLine = true } else { Console.line(line) }
                    }
                case .validation(let p, let val, let improved):
                    var note = ""
                    if improved {
                        try save(step: p.step)
                        note = "  saved \(output)"
                    }
                    try monitor.evaluated(p, validationLoss: val)
                    if liveLine { Console.write("\r\u{1B}[K"); liveLine = false }
                    Console.line(progressLine(p, val: val) + note)
                }
            }
        } catch {
            // A diverged run still leaves its curves up to the step that failed.
            if liveLine { Console.write("\r\u{1B}[K"); liveLine = false }
            try? monitor.finish(all: true)
            throw error
        }
        if liveLine { Console.write("\r\u{1B}[K") }
        try monitor.finish()
        if trainer.validation == nil {
            try save(step: trainer.step)
            Console.line("saved \(output) (no validation split)")
        }
        let best = trainer.bestValLoss.map { "best validation loss \(Format.fixed($0)) nats/char; " } ?? ""
        Console.line("done: \(trainer.step) steps in \(Format.duration(Date().timeIntervalSince(started))); \(best)checkpoint \(saved ? output : "not written")")
    }

    func progressLine(_ p: TrainingProgress, val: Double?) -> String {
        var parts = ["step \(p.step)", "epoch \(Format.fixed(p.epoch, 2))", "time \(Format.duration(p.elapsedSeconds))"]
        parts.append("train \(p.trainLoss.isFinite ? Format.fixed(p.trainLoss) : "-")")
        if let val { parts.append("val \(Format.fixed(val))") } else if let b = p.bestValLoss { parts.append("best val \(Format.fixed(b))") }
        parts.append("lr \(String(format: "%.2e", Double(p.learningRate)))")
        parts.append("|g| \(String(format: "%.2f", Double(p.gradNorm)))")
        parts.append("\(Format.grouped(p.charsPerSecond)) chars/s")
        parts.append("ETA \(p.etaSeconds.map(Format.duration) ?? "?")")
        return parts.joined(separator: "  ")
    }

    func reportIgnoredArchitectureFlags(_ config: CharLMConfig, source: String) {
        let args = Set(CommandLine.arguments)
        for (flag, given, actual) in [("--cell", cell, config.cell.cliName), ("--layers", String(layers), String(config.numLayers)),
                                      ("--hidden", String(hidden), String(config.hiddenSize)), ("--embedding", String(embedding), String(config.embeddingSize))]
            where args.contains(flag) && given != actual && !(flag == "--cell" && CellKind(name: given) == config.cell) {
            Console.warn("\(flag) \(given) is ignored: the architecture comes from \(source) (\(flag) \(actual))")
        }
        let initialisers = ["--seed", "--init", "--recurrent-init", "--forget-bias"].filter { flag in
            CommandLine.arguments.contains { $0 == flag || $0.hasPrefix(flag + "=") }
        }
        if !initialisers.isEmpty {
            Console.warn("\(initialisers.joined(separator: ", ")) \(initialisers.count == 1 ? "is" : "are") ignored: the weights come from \(source)")
        }
    }

    /// The training settings a resumed run may change (as a PyTorch run resumed with a new
    /// learning rate), kept in the training state so that a change is reported.
    var settings: [String: String] {
        ["lr": String(lr), "momentum": String(momentum), "nesterov": String(nesterov), "weight_decay": String(weightDecay),
         "beta1": String(beta1), "beta2": String(beta2), "alpha": String(alpha), "eps": String(eps), "lr_decay": lrDecay,
         "lr_decay_rate": String(lrDecayRate), "lr_decay_every": String(lrDecayEvery), "lr_decay_after": String(lrDecayAfter),
         "clip": String(clip), "clip_value": String(clipValue), "dropout": String(dropout)]
    }

    func restore(_ trainer: CharLMTrainer, from state: SafeTensorsFile, checkpoint: String) throws {
        let path = CharLMCheckpoint.trainingStatePath(for: checkpoint)
        let ckpt = try SafeTensors.read(path: checkpoint)
        guard let run = state.metadata["run_id"], run == ckpt.metadata["run_id"], state.metadata["step"] == ckpt.metadata["step"] else {
            throw RecurrentError("\(path): this training state does not belong to \(checkpoint) (different run or step)")
        }
        guard state.metadata["optimizer"] == optimizer else {
            throw RecurrentError("--optimizer \(optimizer): the run being resumed used \(state.metadata["optimizer"] ?? "another optimizer")")
        }
        guard state.metadata["batch_size"] == String(batchSize), state.metadata["seq_len"] == String(seqLen) else {
            throw RecurrentError("--batch-size/--seq-len: the run being resumed used \(state.metadata["batch_size"] ?? "?")×\(state.metadata["seq_len"] ?? "?")")
        }
        func int(_ k: String) throws -> Int {
            guard let s = state.metadata[k], let v = Int(s), v >= 0, v <= 1 << 40 else { throw RecurrentError("\(path): metadata lacks a valid '\(k)' (a whole number from 0 to 2^40)") }
            return v
        }
        if let saved = state.metadata["data"], saved != trainer.dataFingerprint {
            throw RecurrentError("--data \(data): the run being resumed trained on another text (or another --val-fraction); give the same --data and --val-fraction")
        }
        let config = trainer.model.config
        var carried: RecurrentState?
        if let h = state.tensors["carried.hidden"] {
            let expected = [config.numLayers, batchSize, config.hiddenSize]
            guard h.shape == expected else { throw RecurrentError("\(path): carried.hidden has shape \(h.shape), expected \(expected)") }
            carried = RecurrentState(hidden: h, cell: config.cell.hasCellState ? state.tensors["carried.cell"] : nil)
            if config.cell.hasCellState && carried?.cell?.shape != expected {
                throw RecurrentError("\(path): carried.cell is missing or has the wrong shape, expected \(expected)")
            }
        }
        var rng: [UInt64]?
        if let s = state.metadata["rng"] {
            let words = s.split(separator: ",").compactMap { UInt64($0, radix: 16) }
            guard SeededRNG(state: words) != nil else { throw RecurrentError("\(path): metadata 'rng' is not four hexadecimal words") }
            rng = words
        }
        do {
            try trainer.restore(step: try int("step"), epoch: try int("epoch"), batchInEpoch: try int("batch_in_epoch"),
                                bestValLoss: state.metadata["best_val_loss"].flatMap(Double.init), carried: carried,
                                optimizerState: state.tensors, rng: rng)
        } catch let e as RecurrentError where !e.message.hasPrefix(path) {
            throw RecurrentError("\(path): \(e.message)")
        }
        if let s = steps, trainer.step >= s {
            throw RecurrentError("--steps \(s): the resumed run is already at step \(trainer.step); ask for more steps")
        }
        if let e = epochs, trainer.epochPosition >= e - 1e-9 {
            throw RecurrentError("--epochs \(Format.fixed(e, 2)): the resumed run is already at epoch \(Format.fixed(trainer.epochPosition, 2)); ask for more epochs")
        }
        let changed = settings.keys.sorted().filter { state.metadata[$0] != nil && state.metadata[$0] != settings[$0] }
        if !changed.isEmpty {
            Console.warn("--resume: training settings changed from the run being resumed: "
                         + changed.map { "\($0) \(state.metadata[$0] ?? "") → \(settings[$0] ?? "")" }.joined(separator: ", "))
        }
        Console.line("resumed \(checkpoint) at step \(trainer.step), epoch \(Format.fixed(trainer.epochPosition, 2))")
    }
}
