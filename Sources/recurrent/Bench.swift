import ArgumentParser
import Foundation
import Recurrent

/// `recurrent bench`: the char-LM benchmark that mirrors ../shared/bench/torch_ref.py, so the two
/// can be run side by side on one machine (same model, same training step, same units).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training, evaluation and sampling speed of a char-LM (mirrors torch_ref.py).",
        discussion: """
        Model: Embedding(V,H) → RNN/LSTM/GRU(H, H, layers) → Linear(H,V), cross-entropy, Adam 2e-3, \
        clip 5, truncated BPTT over B contiguous streams (state carried, reset each epoch). Data: \
        --data, or generated text with a 65-character vocabulary. Figures: chars/s = B·T / median \
        step time (train, eval), or characters / run time (sample: a 20-character prime, then \
        2000 characters at temperature 0.8, batch 1); several timed repeats after a warm-up, \
        median and min–max over the repeats; peak resident memory of the process.
        Presets (--config): lstm128 (H128 B50 T50), lstm256 (H256 B50 T100), lstm512 (H512 B64 T100), \
        gru256, rnn256 (H256 B50 T100), eval512 (lstm512, forward only), sample (LSTM 2×512).
        """)

    @Option(help: "A preset: lstm128, lstm256, lstm512, gru256, rnn256, eval512, sample (sets the model and mode flags).")
    var config: String?
    @Option(name: .customLong("cell"), help: "Cell: lstm, gru, rnn-tanh, rnn-relu (default lstm).") var cellFlag: String?
    var cell: String { cellFlag ?? Bench.standard.cell }
    @Option(help: "Recurrent layers.") var layers = 2
    @Option(help: "Hidden units (also the embedding width, as in torch_ref.py).") var hidden = Bench.standard.hidden
    @Option(name: .customLong("batch-size"), help: "Streams per step.") var batchSize = Bench.standard.batch
    @Option(name: .customLong("seq-len"), help: "Steps per chunk.") var seqLen = Bench.standard.seq
    @Option(name: .customLong("mode"), help: "What to time: train, eval, sample, gemm (the matrix products alone: GFLOP/s, and the share of an FMA loop timed before each repeat) or peak (an FMA loop on every thread: the ceiling as measured now); default train.") var modeFlag: String?
    var mode: String { modeFlag ?? Bench.standard.mode }
    @Option(help: "Minimum timed seconds per repeat (train, eval).") var seconds: Double = 5
    @Option(help: "Timed repeats (median and spread over these).") var repeats = 3
    @Option(help: "Untimed warm-up iterations.") var warmup = 2
    @Option(help: "Text to train on (default: generated text, 65 characters).") var data: String?
    @Option(help: "Time a trained char-LM checkpoint instead of a freshly initialised model (its cell, size and vocabulary are timed, so --config, --cell, --layers and --hidden are refused beside it; --data must use only its characters). With --bf16/--int8 the reported loss change is then meaningful.") var checkpoint: String?
    @Option(name: .customLong("sample-length"), help: "Characters per sampling run.") var sampleLength = 2000
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Random seed.") var seed: UInt64 = 1234
    @Flag(help: "Sample with bfloat16 weights (--mode sample); also reports the loss change against float32.")
    var bf16 = false
    @Flag(help: "Sample with int8 weights and int8 layer inputs (--mode sample); also reports the loss change against float32.")
    var int8 = false
    @Option(name: .customLong("shape"), help: "With --mode gemm: time this product instead of the lstm512 set, as MxNxK with optional :t or :n for A, then for B (:t = transposed), e.g. 2048x512x6400:t:n. Repeatable.")
    var shapes: [String] = []
    @OptionGroup var compute: ComputeOptions

    /// The defaults of the flags a preset sets (lstm512's model, training).
    static let standard = (cell: "lstm", hidden: 512, batch: 64, seq: 100, mode: "train")

    static let presets: [String: (cell: String, hidden: Int, batch: Int, seq: Int, mode: String)] = [
        "lstm128": ("lstm", 128, 50, 50, "train"), "lstm256": ("lstm", 256, 50, 100, "train"),
        "lstm512": ("lstm", 512, 64, 100, "train"), "gru256": ("gru", 256, 50, 100, "train"),
        "rnn256": ("rnn-tanh", 256, 50, 100, "train"), "eval512": ("lstm", 512, 64, 100, "eval"),
        "sample": ("lstm", 512, 1, 1, "sample"),
    ]

    func validate() throws {
        if let c = config, Bench.presets[c] == nil {
            throw ValidationError("--config must be one of \(Bench.presets.keys.sorted().joined(separator: ", ")), got '\(c)'")
        }
        if CellKind(name: cell) == nil { throw ValidationError("--cell must be lstm, gru, rnn-tanh or rnn-relu, got '\(cell)'") }
        if !["train", "eval", "sample", "gemm", "peak"].contains(mode) { throw ValidationError("--mode must be train, eval, sample, gemm or peak, got '\(mode)'") }
        for (name, v) in [("--layers", layers), ("--hidden", hidden), ("--batch-size", batchSize), ("--seq-len", seqLen),
                          ("--repeats", repeats), ("--sample-length", sampleLength)] where v < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(v)")
        }
        var size = ModelSize(flags: [("--layers", layers), ("--hidden", hidden), ("--batch-size", batchSize), ("--seq-len", seqLen)])
        size.addRecurrent(cell: cell, input: hidden, hidden: hidden, layers: layers)
        size.activations = Double(batchSize) * Double(seqLen) * Double(layers) * Double(hidden) * 8
        try size.check()
        if bf16 && int8 { throw ValidationError("--bf16 and --int8 are exclusive") }
        if let c = config, let p = Bench.presets[c] {
            // A preset sets these; a different value given beside it would be dropped silently.
            let d = Bench.standard
            for (flag, given, standard, preset) in [("--cell", cellFlag ?? p.cell, "", p.cell), ("--layers", String(layers), "2", "2"),
                                                    ("--hidden", String(hidden), String(d.hidden), String(p.hidden)),
                                                    ("--batch-size", String(batchSize), String(d.batch), String(p.batch)),
                                                    ("--seq-len", String(seqLen), String(d.seq), String(p.seq)), ("--mode", modeFlag ?? p.mode, "", p.mode)]
            where given != standard && given != preset && !(flag == "--mode" && ["gemm", "peak"].contains(mode)) {
                throw ValidationError("\(flag) \(given) conflicts with --config \(c), which sets \(flag) \(preset); give one or the other")
            }
        }
        if checkpoint != nil, let flag = [("--cell", cellFlag != nil), ("--layers", layers != 2), ("--hidden", hidden != Bench.standard.hidden),
                                          ("--config", config != nil)].first(where: { $0.1 })?.0 {
            throw ValidationError("\(flag) describes a fresh model; with --checkpoint the checkpoint's cell and sizes are timed")
        }
        let effectiveMode = config.flatMap { Bench.presets[$0]?.mode } ?? mode
        if (bf16 || int8) && effectiveMode != "sample" { throw ValidationError("--\(bf16 ? "bf16" : "int8") applies to --mode sample only (the weights' precision when sampling)") }
        for s in shapes where Bench.parseShape(s) == nil {
            throw ValidationError("--shape must be MxNxK with optional :t or :n for A and B (e.g. 2048x512x6400:t:n), got '\(s)'")
        }
        if warmup < 0 { throw ValidationError("--warmup must be zero or more, got \(warmup)") }
        if !(seconds > 0) || !seconds.isFinite { throw ValidationError("--seconds must be a finite number greater than 0, got \(seconds)") }
    }

    func run() throws {
        compute.apply()
        if mode == "gemm" && config == nil { runGEMM(); return }
        if mode == "peak" && config == nil { runPeak(); return }
        var cellName = cell, H = hidden, B = batchSize, T = seqLen, what = mode
        if let c = config, let p = Bench.presets[c] {
            (cellName, H, B, T, what) = (p.cell, p.hidden, p.batch, p.seq, p.mode)
        }
        var kind = CellKind(name: cellName) ?? .lstm
        // A trained model brings its architecture and vocabulary; --data must use only its
        // characters, and without --data the generated text is drawn from them.
        let trained = try checkpoint.map { try CharLMCheckpoint.load(path: $0) }
        let text: [Unicode.Scalar]
        if let path = data {
            text = try TextFile.read(path: path)
        } else {
            text = Bench.generatedText(count: 1_115_394, seed: seed, alphabet: trained?.config.vocabulary.characters ?? Bench.alphabet)
        }
        var rng = SeededRNG(seed: seed)
        let model: CharLM
        if let trained {
            model = trained
            (kind, H) = (model.config.cell, model.config.hiddenSize)
        } else {
            model = CharLM(config: CharLMConfig(cell: kind, vocabulary: CharVocabulary(text: text), embeddingSize: H, hiddenSize: H,
                                                numLayers: layers), rng: &rng)
        }
        let vocab = model.config.vocabulary
        let layers = model.config.numLayers
        let tokens = try vocab.encode(text, source: data ?? "generated text")

        let units: Double
        var step: () -> Void
        var lossNote: String?
        var lossFields: [(String, Any)] = []
        switch what {
        case "sample":
            units = Double(sampleLength)
            let prime = Array(tokens.prefix(20))
            let precision: CharLMStepper.Precision = bf16 ? .bfloat16 : (int8 ? .int8 : .float32)
            let sampler = CharSampler(model: model, settings: SamplingSettings(temperature: 0.8), seed: seed, precision: precision)
            if precision != .float32 {
                // The loss of a text through the stepper both ways (the reduced precision's cost).
                // (the text's last 4,000 characters: the validation part of a `train --val-fraction` run)
                let text = Array(tokens.suffix(4000))
                let exact = CharLMStepper(model: model).evaluate(tokens: text).loss
                let reduced = CharLMStepper(model: model, precision: precision).evaluate(tokens: text).loss
                lossNote = String(format: "loss over %d characters: float32 %.5f, %@ %.5f nats/char (Δ %+.5f)",
                                  text.count - 1, exact, bf16 ? "bf16" : "int8", reduced, reduced - exact)
                lossFields = [("loss_characters", text.count - 1), ("loss_f32", exact), ("loss_reduced", reduced), ("loss_delta", reduced - exact)]
            }
            step = {
                sampler.reset()
                sampler.prime(prime)
                for _ in 0..<sampleLength { _ = try? sampler.next() }
            }
        default:
            let streams = try CharStreams(tokens: tokens, batchSize: B, seqLen: T, source: data ?? "generated text")
            units = Double(B * T)
            var i = 0
            var state: RecurrentState?
            let optimizer = Adam(learningRate: 2e-3)
            let params = model.parameters
            let train = what == "train"
            step = {
                if i == streams.batchesPerEpoch { i = 0; state = nil }
                let (x, y) = streams.batch(i)
                i += 1
                if train {
                    model.zeroGrad()
                    state = model.trainStep(inputs: x, targets: y, batch: B, steps: T, state: state, rng: &rng).state
                    GradientClipping.clipNorm(params, maxNorm: 5)
                    optimizer.step(params)
                } else {
                    state = model.loss(inputs: x, targets: y, batch: B, steps: T, state: state, rng: &rng).state
                }
            }
        }

        for _ in 0..<warmup { step() }
        var rates: [Double] = []
        var iterations: [Int] = []
        for _ in 0..<repeats {
            var times: [Double] = []
            let end = Date().addingTimeInterval(what == "sample" ? 0 : seconds)
            while times.count < (what == "sample" ? 1 : 3) || Date() < end {
                let t0 = DispatchTime.now().uptimeNanoseconds
                step()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            rates.append(units / Bench.median(times))
            iterations.append(times.count)
        }
        let sorted = rates.sorted()
        let median = Bench.median(rates)
        let rss = Bench.peakResidentBytes()
        let flopsPerChar = Bench.flopsPerCharacter(kind: kind, layers: layers, hidden: H, embedding: model.config.embeddingSize,
                                                   vocabulary: vocab.count, train: what == "train")
        let gflops = median * flopsPerChar / 1e9
        let executedPerChar = what == "sample" ? flopsPerChar
            : Bench.executedFlopsPerCharacter(nominal: flopsPerChar, kind: kind, hidden: H, embedding: model.config.embeddingSize,
                                              vocabulary: vocab.count, rows: B * T, train: what == "train")
        let executedGflops = median * executedPerChar / 1e9
        let peak = Bench.machinePeakGFLOPS(threads: Threading.count)
        let name = config ?? "\(kind.cliName)\(H)-\(what)"
        if json {
            Console.line(jsonObject([
                ("config", name), ("mode", what), ("cell", kind.rawValue), ("layers", layers), ("hidden", H),
                ("batch_size", what == "sample" ? 1 : B), ("seq_len", what == "sample" ? 1 : T),
                ("chars_per_second", median), ("min", sorted.first ?? 0), ("max", sorted.last ?? 0),
                ("spread", median > 0 ? ((sorted.last ?? 0) - (sorted.first ?? 0)) / 2 / median : 0),
                ("repeats", repeats), ("iterations", iterations.map(String.init).joined(separator: "/")),
                ("peak_rss_bytes", rss), ("threads", Threading.count), ("isa", GEMM.isa), ("precision", bf16 ? "bf16" : (int8 ? "int8" : "f32")),
                ("flops_per_char", flopsPerChar), ("gflops", gflops), ("ceiling_gflops", peak), ("ceiling_share", gflops / peak),
                ("executed_flops_per_char", executedPerChar), ("executed_gflops", executedGflops),
            ] + lossFields))
        } else {
            let spread = median > 0 ? 50 * ((sorted.last ?? 0) - (sorted.first ?? 0)) / median : 0
            Console.line("\(name): \(kind.cliName) \(layers)×\(H), \(what == "sample" ? "batch 1, \(sampleLength) characters" : "B \(B) × T \(T)"), \(what); \(Threading.count) threads, \(GEMM.isa)")
            Console.line("  \(Format.grouped(median)) chars/s (min \(Format.grouped(sorted.first ?? 0)), max \(Format.grouped(sorted.last ?? 0)), ±\(String(format: "%.0f", spread))%; iterations \(iterations.map(String.init).joined(separator: "/")))")
            Console.line("  \(String(format: "%.1f", gflops)) GFLOP/s = \(String(format: "%.0f", 100 * gflops / peak))% of the \(String(format: "%.0f", peak)) GFLOP/s ceiling (\(String(format: "%.2f", flopsPerChar / 1e6)) MFLOP per character)")
            if executedPerChar != flopsPerChar {
                Console.line("  embedding folded into layer 0: \(String(format: "%.2f", executedPerChar / 1e6)) MFLOP per character executed, \(String(format: "%.1f", executedGflops)) GFLOP/s")
            }
            Console.line("  peak resident memory \(Format.grouped(Double(rss) / 1_048_576)) MiB")
            if let lossNote { Console.line("  " + lossNote) }
        }
    }

    /// The median: the middle value, or the mean of the two middle ones for an even count.
    static func median(_ values: [Double]) -> Double {
        let s = values.sorted(), n = s.count
        guard n > 0 else { return 0 }
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    /// The generated text's 65 characters: tiny-shakespeare's.
    static let alphabet = Array("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".unicodeScalars)

    /// Random text over `alphabet` in which every character occurs.
    static func generatedText(count: Int, seed: UInt64, alphabet: [Unicode.Scalar] = Bench.alphabet) -> [Unicode.Scalar] {
        var rng = SeededRNG(seed: seed)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(count)
        out.append(contentsOf: alphabet)  // every character occurs
        while out.count < count { out.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
        return out
    }

    /// Multiply-adds ×2 per character: the recurrent layers' input and recurrent products, the
    /// head, and (training) twice that again for the backward products.
    /// The first layer's input is the embedding (E wide; E = H in the presets, as in torch_ref.py).
    static func flopsPerCharacter(kind: CellKind, layers: Int, hidden H: Int, embedding E: Int, vocabulary V: Int, train: Bool) -> Double {
        let G = Double(kind.gateCount), h = Double(H)
        let forward = 2 * G * h * (Double(E) + h) + Double(layers - 1) * 2 * G * h * (h + h) + 2 * h * Double(V)
        return train ? 3 * forward : forward
    }

    /// The FLOPs per character actually executed. When `CharLM` folds the embedding into layer 0
    /// (V < B·T), layer 0's input-side products (the projection, and in training dW_ih and dx) run
    /// over the V rows of the table once per chunk of B·T characters instead of once per character.
    static func executedFlopsPerCharacter(nominal: Double, kind: CellKind, hidden H: Int, embedding E: Int, vocabulary V: Int,
                                          rows: Int, train: Bool) -> Double {
        guard CharLM.folds(vocabulary: V, rows: rows) else { return nominal }
        let product = 2 * Double(kind.gateCount) * Double(H) * Double(E), n: Double = train ? 3 : 1
        return nominal - n * product * (1 - Double(V) / Double(rows))
    }

    /// The measured FMA limit of this machine kind: 265 GFLOP/s per core with AVX-512, 131.5 with AVX2.
    static func machinePeakGFLOPS(threads: Int) -> Double {
        let perCore: Double = GEMM.isa == "avx512" ? 265 : (GEMM.isa == "avx2" ? 131.5 : 32)
        return perCore * Double(min(threads, ProcessInfo.processInfo.activeProcessorCount))
    }

    /// Peak resident set size of this process, in bytes.
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }
}
