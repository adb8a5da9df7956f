import ArgumentParser
import Foundation
import Recurrent

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a text with a char-LM: mean cross-entropy of every next character from a zero state.")

    @Option(help: "The char-LM checkpoint (.safetensors).")
    var checkpoint: String

    @Option(help: "The UTF-8 text to score.")
    var data: String

    @Flag(help: "Print one JSON object with keys loss, bits_per_char, perplexity, characters.")
    var json = false

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let model = try CharLMCheckpoint.load(path: checkpoint)
        // Read, encoded and scored a piece at a time: memory does not grow with the text.
        let evaluator = CharLMEvaluator(model: model)
        var count = 0
        try TextFile.forEachChunk(path: data) { scalars, first in
            evaluator.feed(try model.config.vocabulary.encode(scalars, source: data, firstPosition: first))
            count += scalars.count
            return true
        }
        guard count >= 2 else {
            throw RecurrentError("\(data): the text has \(count) character; scoring needs at least 2")
        }
        let result = evaluator.finish()
        if json {
            Console.line(jsonObject([
                ("loss", result.loss), ("bits_per_char", result.bitsPerChar),
                ("perplexity", result.perplexity), ("characters", result.characters),
            ]))
        } else {
            Console.line("loss \(Format.fixed(result.loss)) nats/char  \(Format.fixed(result.bitsPerChar)) bits/char  perplexity \(Format.fixed(result.perplexity, 3))  over \(result.characters) characters")
        }
    }
}
