import Foundation
import Recurrent

/// What `train --report` and `--tensorboard` keep: every step's scalars, and at each evaluation
/// the validation loss and a sample of 200 characters (temperature 0.8, primed with the first
/// training character), written to the HTML report and the TensorBoard event file.
final class TrainingMonitor {
    let report: TrainingReport?
    let events: TensorBoardWriter?
    let model: CharLM
    let prime: Int32
    let seed: UInt64

    /// Creates the folders and files before training starts, so bad paths fail at once.
    /// `resumedStep`: the step a resumed run starts from; the report continues the history it finds.
    init(report: String?, tensorboard: String?, model: CharLM, trainTokens: [Int32], title: String, seed: UInt64, resumedStep: Int? = nil) throws {
        self.report = try report.map { try TrainingReport(directory: $0, title: title, resumingAt: resumedStep) }
        self.events = try tensorboard.map { try TensorBoardWriter(directory: $0) }
        self.model = model
        self.prime = trainTokens.first ?? 0
        self.seed = seed
        events?.text("run", "    " + title, step: 0)
        try events?.flush()
    }

    var active: Bool { report != nil || events != nil }

    func record(_ p: TrainingProgress) {
        report?.record(p)
        guard let events else { return }
        if p.stepLoss.isFinite { events.scalar("train/loss", p.stepLoss, step: p.step) }
        events.scalar("train/learning_rate", Double(p.learningRate), step: p.step)
        events.scalar("train/grad_norm", Double(p.gradNorm), step: p.step)
        events.scalar("train/chars_per_second", p.charsPerSecond, step: p.step)
    }

    func evaluated(_ p: TrainingProgress, validationLoss: Double) throws {
        guard active else { return }
        let sample = takeSample(step: p.step)
        try report?.evaluated(p, validationLoss: validationLoss, sample: sample)
        if let events {
            events.scalar("validation/loss", validationLoss, step: p.step)
            // Indented four spaces: TensorBoard renders text as Markdown, and this keeps it verbatim.
            events.text("samples", sample.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"), step: p.step)
            try events.flush()
        }
    }

    /// Writes whatever is pending (the report also when no evaluation happened, or with `all`,
    /// when training stopped early, the steps since the last evaluation).
    func finish(all: Bool = false) throws {
        if let report, all || report.evaluations.isEmpty { try report.write() }
        try events?.flush()
    }

    func takeSample(step: Int) -> String {
        let sampler = CharSampler(model: model, settings: SamplingSettings(temperature: 0.8), seed: seed &+ UInt64(step))
        sampler.prime([prime])
        var tokens = [prime]
        for _ in 0..<200 {
            guard let t = try? sampler.next() else { break }   // a model whose scores overflow: what it drew so far
            tokens.append(t)
        }
        return model.config.vocabulary.decode(tokens)
    }
}
