import ArgumentParser
import Foundation
import Recurrent

struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an HTML page of a char-LM's activations on a text: units as colours, next-character guesses, gate saturation.",
        discussion: """
        One self-contained file (no network). The text is coloured per character by a chosen unit's \
        hidden or cell value (blue negative, white 0, red positive); hovering a character shows the \
        model's top-5 guesses for the next one. Units are ranked by their correlation with simple \
        properties of the text (inside quotes, bracket depth, position in the line, start of a word, \
        vowel); the page stores the values of the --units most interpretable ones. Gate saturation \
        (LSTM i, f, o; GRU r, z) as in Karpathy, Johnson and Fei-Fei (2015).
        """)

    @Option(help: "The char-LM checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "The UTF-8 text to read (every character must be in the model's vocabulary).") var text: String
    @Option(help: "The HTML page to write.") var output: String
    @Option(help: "Units whose values the page stores, most interpretable first (default: as many as fit 2 million values, at least 16).") var units: Int?
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let u = units, u < 1 { throw ValidationError("--units must be a positive integer, got \(u)") }
        if output.isEmpty { throw ValidationError("--output must name a file") }
    }

    static let maxCharacters = 200_000

    func run() throws {
        compute.apply()
        try ensureWritable(output, inputs: [("--checkpoint", checkpoint), ("--text", text)])
        let model = try CharLMCheckpoint.load(path: checkpoint)
        // The page holds every character and the stored units' value at each: past this many, it
        // grows beyond what a browser opens (5 MB of text made a 187 MB page). The rest is only
        // counted, a piece at a time (a 167 MB text took 1.5 GB when read whole).
        var scalars: [Unicode.Scalar] = [], total = 0
        try TextFile.forEachChunk(path: text) { piece, _ in
            if scalars.count < Self.maxCharacters { scalars += piece.prefix(Self.maxCharacters - scalars.count) }
            total += piece.count
            return true
        }
        if total > Self.maxCharacters {
            Console.warn("--text \(text) holds \(Format.grouped(Double(total))) characters; visualize reads the first \(Format.grouped(Double(Self.maxCharacters)))")
        }
        guard !scalars.isEmpty else { throw RecurrentError("\(text): the text is empty; visualize needs at least one character") }
        let tokens = try model.config.vocabulary.encode(scalars, source: text)
        let start = Date()
        let stored = units ?? max(16, 2_000_000 / scalars.count)
        let analysis = ActivationAnalysis.run(model: model, tokens: tokens, text: scalars, storedUnits: stored)
        let c = model.config
        let title = "\(checkpoint) (\(c.cell.cliName) \(c.numLayers)×\(c.hiddenSize)) reading \(text) (\(scalars.count) characters)"
        let html = analysis.page(title: title)
        try HTMLPage.write(html, to: output)
        Console.wrote(output, "wrote \(output): \(Format.grouped(Double(html.utf8.count))) bytes, \(analysis.stored.count) of \(analysis.series.count) units stored; analysis \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        let tracking = analysis.stored.prefix(5).filter { analysis.series[$0].best.r != 0 }
        if tracking.isEmpty { Console.line("  no unit tracks any of the properties (none varies in this text, or no unit does)") }
        for s in tracking {
            let b = analysis.series[s].best
            Console.line("  \(analysis.series[s].label) tracks \(b.property.rawValue) (r = \(String(format: "%+.2f", b.r)))")
        }
    }
}
