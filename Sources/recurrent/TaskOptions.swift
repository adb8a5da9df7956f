import ArgumentParser
import Foundation
import Recurrent

/// Defaults of the shared training flags that differ between the tools.
struct TaskDefaults {
    var batchSize = 32
    var lr: Float = 1e-3
    var minFreq = 1
    var patience = 3
    var ema: Float = 0

    /// `tag train`.
    static let tagger = TaskDefaults()
    /// `classify train`: settings measured on SST-2 (docs/tasks.md).
    static let classifier = TaskDefaults(batchSize: 16, lr: 2e-3, minFreq: 2, patience: 6, ema: 0.998)
}

/// Training flags shared by `classify train`, `tag train`, `generate train` and `forecast train`
/// (the names of `recurrent train`'s); `--min-freq`, `--max-vocab` and `--lowercase` apply to the
/// tools with a vocabulary (`generate` uses `--lowercase` only).
/// Flags whose default differs per tool are optional here and resolved with `TaskDefaults`.
struct TaskTrainingFlags: ParsableArguments {
    @Option(name: .customLong("batch-size"), help: "Sequences per step (default: classify 16; tag, translate, generate, forecast 32).") var batchSizeFlag: Int?
    @Option(help: "Optimizer: sgd, rmsprop or adam.") var optimizer = "adam"
    @Option(name: .customLong("lr"), help: "Learning rate (default: tag, translate 0.001; classify, generate, forecast 0.002).") var lrFlag: Float?
    @Option(help: "Momentum (sgd, rmsprop).") var momentum: Float = 0
    @Flag(help: "Nesterov momentum (sgd).") var nesterov = false
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay.") var weightDecay: Float = 0
    @Option(help: "Adam's beta1.") var beta1: Float = 0.9
    @Option(help: "Adam's beta2.") var beta2: Float = 0.999
    @Option(help: "RMSprop's smoothing constant.") var alpha: Float = 0.99
    @Option(help: "The optimizer's epsilon.") var eps: Float = 1e-8
    @Option(name: .customLong("lr-decay"), help: "Learning-rate decay: none, step or exponential (per epoch) (default: exponential when --lr-decay-rate is below 1, else none).") var lrDecay: String?
    @Option(name: .customLong("lr-decay-rate"), help: "Decay factor gamma (default: 0.97 with --lr-decay step or exponential, else 1 = constant).") var lrDecayRateFlag: Float?
    @Option(name: .customLong("lr-decay-every"), help: "Epochs between decays (step decay).") var lrDecayEvery = 1
    @Option(name: .customLong("lr-decay-after"), help: "Epochs at the base rate before the first decay (char-rnn's learning_rate_decay_after; 0 and 1 both decay from the second epoch).") var lrDecayAfter = 0
    @Option(name: .customLong("lr-plateau-factor"), help: "Multiply the learning rate by this once more than --lr-plateau-patience validations in a row were not better (by a relative 1e-4) than the best (1 = off; ReduceLROnPlateau).") var lrPlateauFactor: Float = 1
    @Option(name: .customLong("lr-plateau-patience"), help: "Validations in a row without improvement that are tolerated: the next one cuts the rate (ReduceLROnPlateau's patience).") var lrPlateauPatience = 1
    @Option(name: .customLong("ema"), help: "Validate and save an exponential moving average of the weights with this decay per step (0 = off; default: classify 0.998, the others 0).") var emaFlag: Float?
    @Option(help: "Clip the gradients' global L2 norm to this (0 = off).") var clip: Float = 5
    @Option(name: .customLong("clip-value"), help: "Clamp every gradient element to ±this (0 = off).") var clipValue: Float = 0
    @Option(help: "Stop after this many steps.") var steps: Int?
    @Option(help: "Stop after this many epochs (default 20 when no limit is given).") var epochs: Double?
    @Option(help: "Stop after this many minutes of training.") var minutes: Double?
    @Option(name: .customLong("patience"), help: "Stop after this many validations in a row without a better validation score (0 = never; default: classify 6, tag 3, translate 0, generate 4, forecast 5; classify and tag validate by accuracy, translate by BLEU, generate by loss, forecast by RMSE).") var patienceFlag: Int?
    @Option(name: .customLong("eval-every"), help: "Validate (and save when better) every this many steps (default: every epoch).") var evalEvery: Int?
    @Option(name: .customLong("min-freq"), help: "Tokens seen fewer times in training become <unk> (default: classify 2, tag and translate 1).") var minFreqFlag: Int?
    @Option(name: .customLong("max-vocab"), help: "At most this many vocabulary entries, <pad> and <unk> included.") var maxVocab: Int?
    @Flag(help: "Lower-case words before looking them up.") var lowercase = false
    @Option(help: "Random seed (initialisation, shuffling, dropout).") var seed: UInt64 = 123
    @Flag(help: "Print only the model and data lines, the validation lines and the summary (no per-step progress).") var quiet = false
    @Option(help: "Continue the run that wrote this checkpoint, from the training state saved beside it (<checkpoint>.training.safetensors, written at every validation); give the same data and flags.") var resume: String?
    @Option(help: "Keep an HTML report of the training curves in this folder (index.html, history.json and SVGs: loss, validation score, learning rate, gradient norm, speed; rewritten at each validation; a --resume run continues it; an ensemble's members in member-K subfolders).") var report: String?
    @Option(help: "Write TensorBoard event files into this folder: train/loss, train/learning_rate, train/grad_norm, train/<unit>_per_second every step, validation/<score> at each validation (an ensemble's members in member-K subfolders).") var tensorboard: String?

    func validate() throws {
        let batchSize = batchSizeFlag ?? 1, minFreq = minFreqFlag ?? 1, lr = lrFlag ?? 1, patience = patienceFlag ?? 0, ema = emaFlag ?? 0
        for (name, value) in [("--batch-size", batchSize), ("--min-freq", minFreq)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        if let m = maxVocab, m < 3 { throw ValidationError("--max-vocab must be at least 3 (<pad>, <unk> and one token), got \(m)") }
        try OptimizerSettings.checkFlags(optimizer, lr: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                                         beta1: beta1, beta2: beta2, alpha: alpha, eps: eps)
        if let d = lrDecay, !["none", "step", "exponential", "exp"].contains(d) { throw ValidationError("--lr-decay must be none, step or exponential, got '\(d)'") }
        if !(lrDecayRate > 0 && lrDecayRate <= 1) { throw ValidationError("--lr-decay-rate must be in (0, 1], got \(lrDecayRate)") }
        if lrDecayEvery < 1 { throw ValidationError("--lr-decay-every must be a positive integer, got \(lrDecayEvery)") }
        if lrDecayAfter < 0 { throw ValidationError("--lr-decay-after must be zero or more, got \(lrDecayAfter)") }
        if !(lrPlateauFactor > 0 && lrPlateauFactor <= 1) { throw ValidationError("--lr-plateau-factor must be in (0, 1], got \(lrPlateauFactor)") }
        if lrPlateauPatience < 0 { throw ValidationError("--lr-plateau-patience must be a non-negative integer, got \(lrPlateauPatience)") }
        if !(ema >= 0 && ema < 1) { throw ValidationError("--ema must be in [0, 1), got \(ema)") }
        if !(clip >= 0) || !clip.isFinite { throw ValidationError("--clip must be zero (off) or positive, got \(clip)") }
        if !(clipValue >= 0) || !clipValue.isFinite { throw ValidationError("--clip-value must be zero (off) or positive, got \(clipValue)") }
        if let s = steps, s < 1 { throw ValidationError("--steps must be a positive integer, got \(s)") }
        if let e = epochs, !(e > 0) || !e.isFinite { throw ValidationError("--epochs must be greater than 0, got \(e)") }
        if let m = minutes, !(m > 0) || !m.isFinite { throw ValidationError("--minutes must be greater than 0, got \(m)") }
        if patience < 0 { throw ValidationError("--patience must be zero (never stop early) or more, got \(patience)") }
        if let e = evalEvery, e < 1 { throw ValidationError("--eval-every must be a positive integer, got \(e)") }
        if let r = resume, r.isEmpty { throw ValidationError("--resume must name a checkpoint") }
        if report?.isEmpty == true { throw ValidationError("--report must name a folder") }
        if tensorboard?.isEmpty == true { throw ValidationError("--tensorboard must name a folder") }
    }

    /// `--report` and `--tensorboard` for one run: the folders themselves, or with an ensemble,
    /// `member-K` inside them (the parents created).
    func monitorFolders(member: Int, of count: Int) throws -> (report: String?, tensorboard: String?) {
        guard count > 1 else { return (report, tensorboard) }
        func inside(_ folder: String?, _ flag: String) throws -> String? {
            guard let folder else { return nil }
            try OutputFolder.ensure(folder, flag: flag)
            return URL(fileURLWithPath: folder).appendingPathComponent("member-\(member + 1)").path
        }
        return (try inside(report, "--report"), try inside(tensorboard, "--tensorboard"))
    }

    /// Throws for the vocabulary flags (name: given) that `tool` has no use for, instead of ignoring them.
    func rejectVocabularyFlags(_ given: KeyValuePairs<String, Bool>, tool: String) throws {
        if let flag = given.first(where: { $0.value })?.key { throw ValidationError("\(flag) does not apply to \(tool)") }
    }

    /// With --resume, loads the saved training state into `trainer` (weights, optimizer, batch
    /// plan, counters); the model must have been built from the same data and flags.
    ///
    /// `architecture` and `settings` are the metadata this run would write into its checkpoint,
    /// compared first with what the run being resumed wrote: an architecture key that differs (a
    /// model flag that no weight shape shows, such as --pooling or --attention) is refused, a
    /// vocabulary that differs too; a training setting that differs (--lr, --dropout, …) is
    /// allowed, as when a PyTorch run is resumed with a new learning rate, with a warning line.
    ///
    /// `load` reads the checkpoint as its own kind's loader does (metadata, every tensor's name,
    /// shape and finiteness), so a resumed checkpoint is checked as strictly as one given to eval.
    func restoreIfResuming(_ trainer: TaskTrainer, architecture: [String: String], settings: [String: String],
                           load: (String) throws -> Void) throws {
        guard let resume else { return }
        let path = CharLMCheckpoint.trainingStatePath(for: resume)
        guard FileManager.default.fileExists(atPath: path) else {
            throw RecurrentError("--resume \(resume): \(path) does not exist; it is written beside the checkpoint at every validation")
        }
        do { try load(resume) } catch let e as RecurrentError { throw RecurrentError("--resume \(e.message)") }
        let saved = try SafeTensors.metadata(path: resume)
        let vocabularies: Set = ["vocab", "char_vocab", "source_vocab", "target_vocab", "labels", "conditions"]
        for key in architecture.keys.sorted() where saved[key] != nil && saved[key] != architecture[key] {
            if vocabularies.contains(key) {
                throw RecurrentError("--resume \(resume): its \(key) differs from this run's (other data, or other --min-freq, --max-vocab or --lowercase)")
            }
            throw RecurrentError("--resume \(resume): the run being resumed had \(key) \(saved[key] ?? ""), this run \(architecture[key] ?? ""); give the same model flags")
        }
        try trainer.restore(from: try SafeTensors.read(path: path), name: path)
        // The checkpoint is written before the state: a run stopped between the two (a kill, a
        // full disk) left a checkpoint newer than its state. The run continues from the state,
        // and the checkpoint's score is the one to beat, so it is not replaced by a worse model.
        let scores = [("valid_accuracy", 1.0), ("valid_bleu", 1.0), ("valid_rmse", -1.0), ("valid_loss", -1.0)]
        if let (key, sign) = scores.first(where: { saved[$0.0] != nil }), let value = saved[key].flatMap(Double.init), value.isFinite {
            trainer.keepBest(atLeast: sign * value)
            if let step = saved["step"].flatMap(Int.init), step > trainer.step {
                Console.warn("--resume \(resume): the checkpoint is from step \(step), its training state from step \(trainer.step) (the run stopped between writing the two); continuing from step \(trainer.step), keeping the checkpoint unless a validation beats its \(key.replacingOccurrences(of: "_", with: " ")) \(value)")
            }
        }
        if let s = steps, trainer.step >= s {
            throw RecurrentError("--steps \(s): the resumed run is already at step \(trainer.step); ask for more steps")
        }
        if let e = epochs, trainer.epoch >= e - 1e-9 {
            throw RecurrentError("--epochs \(Format.fixed(e, 2)): the resumed run is already at epoch \(Format.fixed(trainer.epoch, 2)); ask for more epochs")
        }
        // After the state's own refusals (optimizer, batch size, data, steps), so that a refused run prints no warning.
        let changed = settings.keys.sorted().filter { saved[$0] != nil && saved[$0] != settings[$0] }
        if !changed.isEmpty {
            Console.warn("--resume: training settings changed from the run being resumed: " + changed.map { "\($0) \(saved[$0] ?? "") → \(settings[$0] ?? "")" }.joined(separator: ", "))
        }
        Console.line("resumed \(resume) at step \(trainer.step), epoch \(Format.fixed(trainer.epoch, 2))")
    }

    /// 0.97 with an explicit --lr-decay (as `recurrent train`), else 1 (constant).
    var lrDecayRate: Float { lrDecayRateFlag ?? ((lrDecay ?? "none") == "none" ? 1 : 0.97) }

    /// --lr-decay as given; without it, a --lr-decay-rate below 1 decays exponentially.
    var schedule: LearningRateSchedule {
        switch lrDecay ?? (lrDecayRate < 1 ? "exponential" : "none") {
        case "step": return .step(every: lrDecayEvery, gamma: lrDecayRate)
        case "exponential", "exp": return .exponential(gamma: lrDecayRate)
        default: return .constant
        }
    }

    func batchSize(_ d: TaskDefaults) -> Int { batchSizeFlag ?? d.batchSize }
    func lr(_ d: TaskDefaults) -> Float { lrFlag ?? d.lr }
    func minFreq(_ d: TaskDefaults) -> Int { minFreqFlag ?? d.minFreq }
    func patience(_ d: TaskDefaults) -> Int { patienceFlag ?? d.patience }
    func ema(_ d: TaskDefaults) -> Float { emaFlag ?? d.ema }

    /// The training hyperparameters, for the checkpoint's metadata.
    func metadata(_ d: TaskDefaults) -> [String: String] {
        let lr = lr(d), batchSize = batchSize(d), minFreq = minFreq(d), ema = ema(d)
        var m = ["optimizer": optimizer, "lr": String(lr), "batch_size": String(batchSize), "clip": String(clip),
                 "weight_decay": String(weightDecay), "lr_decay_rate": String(lrDecayRate),
                 "lr_decay": lrDecay ?? (lrDecayRate < 1 ? "exponential" : "none"), "lr_decay_every": String(lrDecayEvery),
                 "lr_decay_after": String(lrDecayAfter), "clip_value": String(clipValue), "momentum": String(momentum), "nesterov": String(nesterov),
                 "beta1": String(beta1), "beta2": String(beta2), "alpha": String(alpha), "eps": String(eps), "lr_plateau_factor": String(lrPlateauFactor), "ema": String(ema), "min_freq": String(minFreq), "seed": String(seed)]
        if let v = maxVocab { m["max_vocab"] = String(v) }
        return m
    }

    /// `data`: the training data's `DataFingerprint`, which --resume checks.
    func options(_ d: TaskDefaults, data: String) -> TaskTrainingOptions {
        let lr = lr(d), batchSize = batchSize(d), patience = patience(d), ema = ema(d)
        var o = TaskTrainingOptions()
        o.dataFingerprint = data
        o.batchSize = batchSize
        o.optimizer = .fromFlags(optimizer, lr: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                                 beta1: beta1, beta2: beta2, alpha: alpha, eps: eps)
        o.schedule = schedule
        o.decayAfterEpochs = lrDecayAfter
        o.plateauFactor = lrPlateauFactor
        o.plateauPatience = lrPlateauPatience
        o.emaDecay = ema
        o.clipNorm = clip
        o.clipValue = clipValue
        o.maxSteps = steps
        o.maxEpochs = epochs ?? ((steps == nil && minutes == nil) ? 20 : nil)
        o.maxSeconds = minutes.map { $0 * 60 }
        o.patience = patience > 0 ? patience : nil
        o.evalEvery = evalEvery
        o.seed = seed
        return o
    }
}

/// Fails before any work when the checkpoint (or the file of `flag`) could not be written at the end,
/// or when writing it, or the files written `beside` it (a checkpoint's training state), would
/// destroy one of the command's `inputs` (flag, path): the same file, or a file inside an input
/// folder (a folder of <Label>.txt files is read whole). The folder is probed by creating and
/// removing a file in it (permission bits do not tell a read-only mount or /proc).
func ensureWritable(_ path: String, flag: String = "--output", inputs: [(String, String?)] = [], beside: [String] = []) throws {
    if path.isEmpty { throw RecurrentError("\(flag) must name a file") }
    if AtomicFile.isStream(path) { return }   // a device or a FIFO is written as it is
    let dir = URL(fileURLWithPath: AtomicFile.resolvingLinks(path)).deletingLastPathComponent().path
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
        throw RecurrentError("\(flag) \(path): the folder \(dir) does not exist")
    }
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
        throw RecurrentError("\(flag) \(path): is a folder, expected a file name")
    }
    for case let (inputFlag, input?) in inputs {
        if sameFile(input, path) { throw RecurrentError("\(flag) \(path): is also \(inputFlag), which writing it would destroy; name another file") }
        if let other = beside.first(where: { sameFile(input, $0) }) {
            throw RecurrentError("\(flag) \(path): writes \(other) beside it, which is \(inputFlag); name another file")
        }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isFolder), isFolder.boolValue,
           ([path] + beside).contains(where: { isInside($0, folder: input) }) {
            throw RecurrentError("\(flag) \(path): is inside \(inputFlag)'s folder \(input), which is read as data; name a file elsewhere")
        }
    }
    // Before the work, not after it: a run would otherwise train, then fail to save.
    if let file = ([path] + beside).first(where: AtomicFile.isReadOnly) {
        throw RecurrentError("\(flag) \(path): \(file == path ? "the file" : file) is read-only")
    }
    let probe = URL(fileURLWithPath: dir).appendingPathComponent(".recurrent-write-check-\(getpid())").path
    try SaveGuard.holding {   // a signal between the two would leave the probe behind
        guard FileManager.default.createFile(atPath: probe, contents: nil) else {
            throw RecurrentError("\(flag) \(path): the folder \(dir) is not writable")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }
}

/// `ensureWritable` for a training command's `--output` and the training state written beside it,
/// then the output's lock (`OutputLock`), held until the run ends. Unless the command reads
/// folders (`readsFolders`: classify and generate), an input that is a folder is refused first.
func ensureTrainingOutput(_ output: String, inputs: [(String, String?)], readsFolders: Bool = false, report: String? = nil) throws {
    for case let (flag, input?) in inputs where !readsFolders {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isFolder), isFolder.boolValue {
            throw RecurrentError("\(flag) \(input): is a folder, expected a file")
        }
    }
    if AtomicFile.isStream(output) {   // a device, a FIFO, /dev/stdout
        throw RecurrentError("--output \(output): training writes its checkpoint again at every better validation, with a training state beside it; name a regular file")
    }
    try ensureWritable(output, inputs: inputs, beside: [CharLMCheckpoint.trainingStatePath(for: output)])
    // The report rewrites index.html, history.json and its charts (NAME-steps.svg, NAME-time.svg) in its folder.
    if let report {
        for case let (flag, path?) in inputs + [("--output", output)]
        where canonical(URL(fileURLWithPath: path).deletingLastPathComponent().path) == canonical(report) {
            let name = URL(fileURLWithPath: path).lastPathComponent
            if name == "index.html" || name == "history.json" || name.hasSuffix("-steps.svg") || name.hasSuffix("-time.svg") {
                throw RecurrentError("--report \(report): would rewrite \(flag) \(path) (the report writes index.html, history.json and its charts there); name another folder")
            }
        }
    }
    try OutputLock.hold(output)
}

/// An absolute path with `.`, `..` and symbolic links resolved.
func canonical(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }

/// Whether `path` lies in `folder` or below it (symbolic links resolved).
func isInside(_ path: String, folder: String) -> Bool {
    let parent = canonical(URL(fileURLWithPath: path).deletingLastPathComponent().path), root = canonical(folder)
    return parent == root || parent.hasPrefix(root.hasSuffix("/") ? root : root + "/")
}

/// Whether two paths name one file: the same device and inode when both exist, else the same
/// absolute path with symbolic links resolved.
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
    return canonical(a) == canonical(b)
}

/// Lines to predict on: a file, or standard input when no file is named.
/// The input of the `predict` commands: one sentence per line, from a file or standard input.
struct PredictInput: ParsableArguments {
    @Argument(help: "A text file with one sentence per line (default, or -: standard input).") var file: String?
    @Option(help: "Text encoding of the input: utf8 or latin1.") var encoding = "utf8"

    func validate() throws { _ = try parseEncoding(encoding) }

    /// The lines of the file, or of standard input when no file is given.
    func lines() throws -> [TextLine] { try readInputLines(file, encoding: try parseEncoding(encoding)) }

    /// The same lines in chunks, standard input's as they arrive (see `forEachInputChunk`).
    func forEachChunk(_ body: ([TextLine]) throws -> Void) throws {
        try forEachInputChunk(file, encoding: try parseEncoding(encoding), body)
    }
}

/// Calls `body` with the lines to predict on, at most `chunk` at a time: a file's in order, and
/// standard input's as they arrive (the complete lines of each read), so that a pipe's output
/// follows its input and an interactive session answers each line as it is typed.
func forEachInputChunk(_ path: String?, encoding: TextEncoding, chunk: Int = 256, _ body: ([TextLine]) throws -> Void) throws {
    func deliver(_ lines: [TextLine]) throws {
        for start in stride(from: 0, to: lines.count, by: chunk) { try body(Array(lines[start..<min(lines.count, start + chunk)])) }
    }
    if let path, path != "-" { try deliver(try readInputLines(path, encoding: encoding)); return }
    var pending: [UInt8] = [], first = 1, offset = 0
    func split(_ bytes: [UInt8]) throws {
        // Lines break only at "\n", which never occurs inside a UTF-8 sequence, so each read's
        // complete lines decode alone; a byte-order mark can only lead the first.
        let lines = try TextLines.split(bytes, name: "standard input", encoding: encoding, firstLine: first, byteOffset: offset)
        first += bytes.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
        offset += bytes.count
        try deliver(lines)
    }
    while true {
        let data = try Console.readInput()
        if data.isEmpty { break }
        pending += data
        if let end = pending.lastIndex(of: 10) {
            let complete = Array(pending[...end])
            pending.removeFirst(end + 1)
            try split(complete)
        }
    }
    if !pending.isEmpty { try split(pending) }
}

/// Lines to predict on. An empty file, like empty standard input, has none (as `sort` or `wc` read it).
func readInputLines(_ path: String?, encoding: TextEncoding) throws -> [TextLine] {
    if let path, path != "-" {
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size == 0 { return [] }
        return try TextLines.read(path: path, encoding: encoding)
    }
    return try TextLines.split(try Console.readAllInput(), name: "standard input", encoding: encoding)
}

/// What the validation score of a task is. The trainer maximises its score, so a loss is passed
/// to it negated (`validate` returns −loss) and shown positive again.
enum ValidationMetric {
    case accuracy
    case bleu
    case loss
    case rmse

    func show(_ score: Double) -> String {
        switch self {
        case .accuracy: return "val acc \(Format.fixed(score))"
        case .bleu: return "val bleu \(Format.fixed(score))"
        case .loss: return "val loss \(Format.fixed(-score))"
        case .rmse: return "val rmse \(Format.significant(-score))"
        }
    }

    /// The score's name in TensorBoard tags (`validation/accuracy`, …).
    var name: String {
        switch self {
        case .accuracy: return "accuracy"
        case .bleu: return "bleu"
        case .loss: return "loss"
        case .rmse: return "rmse"
        }
    }

    /// The score as printed: the loss and RMSE are kept negated (higher is better) in the trainer.
    func value(_ score: Double) -> Double {
        switch self {
        case .accuracy, .bleu: return score
        case .loss, .rmse: return -score
        }
    }

    func reportLabels(unit: String) -> TrainingReport.Labels {
        switch self {
        case .accuracy: return .init(loss: "cross-entropy (nats)", unit: unit, validation: "validation accuracy", validationIsLoss: false, higherIsBetter: true)
        case .bleu: return .init(loss: "cross-entropy per target word (nats)", unit: unit, validation: "validation BLEU", validationIsLoss: false, higherIsBetter: true)
        case .loss: return .init(loss: "cross-entropy (nats/char)", unit: unit, validation: "validation loss", validationIsLoss: true, higherIsBetter: false)
        case .rmse: return .init(loss: "MSE on normalised values", unit: unit, validation: "validation RMSE", validationIsLoss: false, higherIsBetter: false)
        }
    }
}

/// A progress line for the sequence tasks, laid out as `recurrent train`'s.
func taskProgressLine(_ p: TaskProgress, accuracy: Double?, unit: String, metric: ValidationMetric = .accuracy) -> String {
    var parts = ["step \(p.step)", "epoch \(Format.fixed(p.epoch, 2))", "time \(Format.duration(p.elapsedSeconds))"]
    parts.append("train \(p.trainLoss.isFinite ? Format.fixed(p.trainLoss) : "-")")
    if let accuracy { parts.append(metric.show(accuracy)) } else if let b = p.bestAccuracy { parts.append("best " + metric.show(b)) }
    parts.append("lr \(String(format: "%.2e", Double(p.learningRate)))")
    parts.append("|g| \(String(format: "%.2f", Double(p.gradNorm)))")
    parts.append("\(Format.grouped(p.examplesPerSecond)) \(unit)/s")
    parts.append("ETA \(p.etaSeconds.map(Format.duration) ?? "?")")
    return parts.joined(separator: "  ")
}

/// Runs a task trainer with the progress-line conventions of `recurrent train`; `save` is called on
/// every improvement, and the training state for `--resume` is written beside `output` at every
/// validation. `note` adds to validation lines.
func runTaskTrainer(_ trainer: TaskTrainer, quiet: Bool, unit: String, output: String, metric: ValidationMetric = .accuracy,
                    folders: (report: String?, tensorboard: String?) = (nil, nil), title: String = "",
                    step: ([Int], inout SeededRNG) -> Float, validate: () throws -> Double, note: () -> String = { "" },
                    save: (Int, Double) throws -> Void) throws {
    var lastPrint = Date()
    var liveLine = false
    let report = try folders.report.map {
        try TrainingReport(directory: $0, title: title, labels: metric.reportLabels(unit: unit), resumingAt: trainer.step > 0 ? trainer.step : nil)
    }
    let events = try folders.tensorboard.map { try TensorBoardWriter(directory: $0) }
    events?.text("run", "    " + title, step: trainer.step)
    try events?.flush()
    var stepLoss = Float.nan
    do {
    try trainer.run(step: { batch, rng in stepLoss = step(batch, &rng); return stepLoss }, validate: validate) { event in
        switch event {
        case .progress(let p):
            report?.record(step: p.step, seconds: p.elapsedSeconds, trainLoss: Double(stepLoss), learningRate: Double(p.learningRate),
                           gradNorm: Double(p.gradNorm), perSecond: p.examplesPerSecond)
            if let events {
                if stepLoss.isFinite { events.scalar("train/loss", Double(stepLoss), step: p.step) }
                events.scalar("train/learning_rate", Double(p.learningRate), step: p.step)
                events.scalar("train/grad_norm", Double(p.gradNorm), step: p.step)
                events.scalar("train/\(unit)_per_second", p.examplesPerSecond, step: p.step)
            }
            let now = Date()
            let interval = Console.isTerminal ? 0.2 : 10
            if !quiet, now.timeIntervalSince(lastPrint) >= interval {
                lastPrint = now
                let line = taskProgressLine(p, accuracy: nil, unit: unit, metric: metric)
                if Console.isTerminal { Console.write("\r\u{1B}[K" + line); liveLine = true } else { Console.line(line) }
            }
        case .validation(let p, let accuracy, let improved):
            var saved = ""
            try SaveGuard.holding {
                if improved { try save(p.step, accuracy); saved = "  saved \(output)" }
                let (tensors, meta) = trainer.trainingState()
                try SafeTensors.write(tensors, metadata: meta, to: CharLMCheckpoint.trainingStatePath(for: output))
            }
            if liveLine { Console.write("\r\u{1B}[K"); liveLine = false }
            Console.line(taskProgressLine(p, accuracy: accuracy, unit: unit, metric: metric) + note() + saved)
            try report?.evaluated(step: p.step, seconds: p.elapsedSeconds, validation: metric.value(accuracy))
            events?.scalar("validation/\(metric.name)", metric.value(accuracy), step: p.step)
            try events?.flush()
        }
    }
    } catch {
        try? report?.write()   // the curves up to the step that failed (a diverged run)
        try? events?.flush()
        throw error
    }
    try report?.write()   // the steps after the last validation
    try events?.flush()
    if liveLine { Console.write("\r\u{1B}[K") }
}

/// A JSON string literal.
func jsonString(_ s: String) -> String {
    guard let d = try? JSONSerialization.data(withJSONObject: [s], options: []), let t = String(data: d, encoding: .utf8) else { return "\"\"" }
    return String(t.dropFirst().dropLast())
}

func parseEncoding(_ s: String) throws -> TextEncoding {
    guard let e = TextEncoding(rawValue: s.lowercased().replacingOccurrences(of: "-", with: "")) else {
        throw ValidationError("--encoding must be utf8 or latin1, got '\(s)'")
    }
    return e
}
