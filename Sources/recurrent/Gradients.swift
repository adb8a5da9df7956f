import ArgumentParser
import Foundation
import Recurrent

struct Gradients: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how gradients flow back through time: ‖∂loss_T/∂h_t‖ for t = T … 1, on a log-scale chart.",
        discussion: """
        Without --checkpoint: fresh one-layer stacks (--cell, --init; each may be repeated), random \
        inputs, loss_T = u·h_T for a random unit vector u, so every curve starts at 1. With no --cell \
        and no --init, the standard comparison: rnn-tanh, rnn-sigmoid, rnn-relu, lstm and gru at PyTorch's \
        default initialisation, rnn-tanh orthogonal and identity, rnn-relu identity, and an exploding \
        case (rnn-relu, identity × --explode-scale) before and after clip_grad_norm_(--clip). \
        rnn-sigmoid is not a PyTorch cell: it is computed here, on rnn-tanh's weights, for this diagnostic only. \
        With --checkpoint: the char-LM's layers, loss_T the cross-entropy of the character after step T, \
        over windows of --text (random characters of the vocabulary when no text is given).
        """)

    @Option(help: "A char-LM checkpoint to measure instead of fresh layers.") var checkpoint: String?
    @Option(help: "With --checkpoint: the UTF-8 text the windows are taken from.") var text: String?
    @Option(help: "Cell: rnn-tanh, rnn-sigmoid, rnn-relu, lstm or gru (repeat for several).") var cell: [String] = []
    @Option(help: "Initialisation of the recurrent weights: default, orthogonal or identity (repeat for several).") var `init`: [String] = []
    @Option(help: "Hidden units.") var hidden = 64
    @Option(help: "Input features (fresh layers).") var input = 16
    @Option(help: "Sequence length T.") var length = 100
    @Option(help: "Sequences averaged over.") var sequences = 4
    @Option(name: .customLong("identity-scale"), help: "The scale of the identity initialisation.") var identityScale: Float = 1
    @Option(name: .customLong("forget-bias"), help: "LSTM forget-gate bias (in the standard comparison, an extra LSTM curve; default 1).") var forgetBias: Float?
    @Option(name: .customLong("explode-scale"), help: "The exploding case: rnn-relu with weight_hh = this × I (0 = leave it out).") var explodeScale: Float = 1.1
    @Option(help: "The clip_grad_norm_ threshold shown on the exploding case.") var clip: Float = 5
    @Option(help: "The HTML page to write.") var output: String?
    @Flag(help: "Print the curves as JSON on standard output.") var json = false
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        for c in cell where GradientFlow.Cell(rawValue: c.lowercased()) == nil {
            throw ValidationError("--cell must be rnn-tanh, rnn-sigmoid, rnn-relu, lstm or gru, got '\(c)'")
        }
        for i in `init` where GradientFlow.Init(rawValue: i.lowercased()) == nil {
            throw ValidationError("--init must be default, orthogonal or identity, got '\(i)'")
        }
        for (name, value) in [("--hidden", hidden), ("--input", input), ("--sequences", sequences)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        if length < 2 { throw ValidationError("--length must be at least 2, got \(length)") }
        if hidden > 4096 || length > 10_000 || sequences > 256 { throw ValidationError("--hidden ≤ 4096, --length ≤ 10000 and --sequences ≤ 256, please") }
        if !(identityScale > 0) || !identityScale.isFinite { throw ValidationError("--identity-scale must be a finite number greater than 0, got \(identityScale)") }
        if !(explodeScale >= 0) || !explodeScale.isFinite { throw ValidationError("--explode-scale must be 0 (off) or a finite positive number, got \(explodeScale)") }
        if let f = forgetBias, !f.isFinite { throw ValidationError("--forget-bias must be a finite number") }
        if !(clip > 0) || !clip.isFinite { throw ValidationError("--clip must be a finite number greater than 0, got \(clip)") }
        if output == nil && !json { throw ValidationError("--output: give --output PAGE.html, --json, or both") }
        if checkpoint == nil && text != nil { throw ValidationError("--text needs --checkpoint") }
        if checkpoint != nil && (!cell.isEmpty || !`init`.isEmpty) { throw ValidationError("--cell and --init describe fresh layers; they cannot be combined with --checkpoint") }
        if checkpoint != nil {
            // The fresh layers' flags, when changed from their defaults, would be ignored.
            let fresh: [(String, Bool)] = [("--hidden", hidden != 64), ("--input", input != 16), ("--identity-scale", identityScale != 1),
                                           ("--forget-bias", forgetBias != nil), ("--explode-scale", explodeScale != 1.1), ("--clip", clip != 5)]
            if let flag = fresh.first(where: { $0.1 })?.0 { throw ValidationError("\(flag) describes fresh layers; with --checkpoint the model's own sizes and weights are measured") }
        }
    }

    func run() throws {
        compute.apply()
        if let output { try ensureWritable(output, inputs: [("--checkpoint", checkpoint), ("--text", text)]) }
        var curves: [GradientFlow.Curve] = []
        var clipNote: String?
        var description: String
        var reportedHidden = hidden
        if let checkpoint {
            let model = try CharLMCheckpoint.load(path: checkpoint)
            reportedHidden = model.config.hiddenSize
            let windows = try self.windows(model)
            curves = GradientFlow.measure(model: model, windows: windows)
            description = "Checkpoint \(checkpoint) (\(model.config.cell.cliName) \(model.config.numLayers)×\(model.config.hiddenSize)); "
                + "loss_T = cross-entropy of the character after step T = \(length), mean over \(windows.count) windows of "
                + (text.map { "\($0)" } ?? "random characters") + "; one curve per layer. For a lower layer the curve is the gradient "
                + "on the state it carries from step t to t+1 (not the path into the layer above at step t), so it is 0 at t = T."
        } else {
            for setup in setups() { curves.append(GradientFlow.measure(setup)) }
            if explodeScale > 0 && cell.isEmpty && `init`.isEmpty {
                var setup = baseSetup(.rnnRelu, .identity)
                setup.scale = explodeScale
                let exploding = GradientFlow.measure(setup)
                let total = exploding.parameterGradientNorm ?? 0
                let coef = min(1, Double(clip) / (total + 1e-6))
                curves.append(GradientFlow.Curve(name: "\(setup.label) (exploding)", norms: exploding.norms, parameterGradientNorm: total,
                                                 forwardOverflow: exploding.forwardOverflow))
                curves.append(GradientFlow.Curve(name: "\(setup.label) after clip_grad_norm_(\(clip))", norms: exploding.norms.map { $0 * coef },
                                                 parameterGradientNorm: total * coef, forwardOverflow: exploding.forwardOverflow))
                clipNote = "The exploding case (\(setup.label)): the parameter gradient's global norm is \(String(format: "%.4g", total)); "
                    + "clip_grad_norm_(\(clip)) multiplies every gradient by \(String(format: "%.4g", coef)), so the whole curve moves down by that factor "
                    + "and keeps its shape: clipping bounds the size of the update, not the imbalance between recent and distant steps."
            }
            description = "Fresh one-layer stacks, H = \(hidden), input \(input), T = \(length), mean over \(sequences) random sequences "
                + "(x ~ N(0,1)); loss_T = u·h_T with u a random unit vector, so the norm at t = T is 1. "
                + "rnn-sigmoid is not a PyTorch cell: an Elman RNN with σ instead of tanh on rnn-tanh's weights, computed for this diagnostic only. "
                + "Identity: weight_hh = \(identityScale) × I and zero biases; orthogonal: weight_hh orthogonal, bias_hh 0. Seed \(seed)."
        }
        if let output { try HTMLPage.write(GradientFlow.page(curves, description: description, clipNote: clipNote), to: output) }
        if json {
            Console.write(GradientFlow.json(curves, meta: [("length", String(length)), ("hidden", String(reportedHidden)),
                                                           ("source", HTMLPage.jsString(checkpoint ?? "fresh layers"))]))
        } else {
            for c in curves {
                let factor = c.factorPerStep.map { String(format: "%.4f", $0) } ?? "-"
                let below = c.forwardOverflow.map { "the forward pass leaves Float's range at step \($0): not a measurement" }
                    ?? c.stepsBelow(1e-3).map { "below 1e-3 after \($0) steps" }
                    ?? c.overflowStep.map { "overflows Float after \($0) steps" } ?? "never below 1e-3"
                Console.line("\(c.name): factor per step \(factor), \(below)")
            }
            if let output { Console.wrote(output, "wrote \(output)") }
        }
    }

    func baseSetup(_ cell: GradientFlow.Cell, _ initialisation: GradientFlow.Init) -> GradientFlow.Setup {
        var s = GradientFlow.Setup(cell: cell, initialisation: initialisation)
        s.hidden = hidden
        s.input = input
        s.length = length
        s.sequences = sequences
        s.seed = seed
        if initialisation == .identity { s.scale = identityScale }
        return s
    }

    /// The standard comparison's extra LSTM: forget bias --forget-bias (default 1, as Jozefowicz et al. 2015 advise).
    func lstmWithForgetBias() -> GradientFlow.Setup {
        var s = baseSetup(.lstm, .pytorchDefault)
        s.forgetBias = forgetBias ?? 1
        return s
    }

    /// The cross product of --cell and --init, or the standard comparison when neither is given.
    func setups() -> [GradientFlow.Setup] {
        if cell.isEmpty && `init`.isEmpty {
            return GradientFlow.Cell.allCases.map { baseSetup($0, .pytorchDefault) }
                + [lstmWithForgetBias(), baseSetup(.rnnTanh, .orthogonal), baseSetup(.rnnTanh, .identity), baseSetup(.rnnRelu, .identity)]
        }
        let cells = cell.isEmpty ? GradientFlow.Cell.allCases : cell.compactMap { GradientFlow.Cell(rawValue: $0.lowercased()) }
        let inits = `init`.isEmpty ? [.pytorchDefault] : `init`.compactMap { GradientFlow.Init(rawValue: $0.lowercased()) }
        return cells.flatMap { c in
            inits.map { i in
                var s = baseSetup(c, i)
                if c == .lstm { s.forgetBias = forgetBias }
                return s
            }
        }
    }

    /// --sequences windows of T+1 characters, evenly spaced through --text (or random characters).
    func windows(_ model: CharLM) throws -> [[Int32]] {
        let V = model.config.vocabulary.count
        guard let text else {
            var rng = SeededRNG(seed: seed)
            return (0..<sequences).map { _ in (0...length).map { _ in Int32(rng.next() % UInt64(V)) } }
        }
        // One pass a piece at a time, keeping only the token ids (4 bytes a character, where the
        // bytes, scalars and ids of the whole text took 9): a pipe or FIFO can be read only once.
        let vocabulary = model.config.vocabulary
        var tokens: [Int32] = []
        try TextFile.forEachChunk(path: text) { piece, first in
            tokens += try vocabulary.encode(piece, source: text, firstPosition: first)
            return true
        }
        guard tokens.count >= length + 1 else {
            throw RecurrentError("\(text): the text has \(tokens.count) characters; --length \(length) needs at least \(length + 1)")
        }
        let room = tokens.count - (length + 1)
        let windows = (0..<sequences).map { q in
            let start = sequences == 1 ? 0 : room * q / (sequences - 1)
            return Array(tokens[start...(start + length)])
        }
        return windows
    }
}
