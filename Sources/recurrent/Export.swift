import ArgumentParser
import Foundation
import Recurrent

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write any checkpoint (char-LM, generator, classifier, tagger, forecaster, translator) as an ONNX model (opset 17) for ONNX Runtime.",
        discussion: """
        char-LM: inputs tokens int64 [seq, batch] and h0 float [layers, batch, hidden] (and c0 for \
        an LSTM; zeros for a fresh start); outputs logits [seq, batch, vocab], hn (and cn). A \
        conditional generator takes condition int64 [batch] as well. \
        Classifier (an ensemble too): inputs tokens int64 [batch, seq] padded with 0 and lengths \
        int64 [batch]; outputs logits (one model) and probabilities [batch, labels]. Tagger: inputs \
        words [batch, seq], lengths [batch], chars [batch, seq, word_chars] and char_lengths \
        [batch, seq], all int64; output logits [batch, seq, tags]. Forecaster: input window double \
        [batch, window] in the series' units, output forecast double [batch, horizon]; the scaling \
        is in the graph. Translator: inputs source [batch, src] (with <eos>), source_lengths [batch] \
        and target_in [batch, tgt] (<sos> and the words so far), all int64; output logits [batch, \
        tgt, target vocab]. The vocabularies, labels and settings are in the model's metadata. See \
        docs/onnx.md.
        """)

    @Option(help: "The checkpoint (.safetensors) of any model: char-LM, generator, classifier, tagger, forecaster or translator.")
    var checkpoint: String

    @Option(help: "The ONNX file to write (written atomically).")
    var onnx: String

    func run() throws {
        try ensureWritable(onnx, flag: "--onnx", inputs: [("--checkpoint", checkpoint)])
        let kind = try ONNXExport.export(checkpoint: checkpoint, to: onnx)
        let size = (try? FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: onnx).resolvingSymlinksInPath().path)[.size] as? Int) ?? 0
        Console.wrote(onnx, "wrote \(onnx): \(kind)\(AtomicFile.isStream(onnx) ? "" : ", \(Format.grouped(Double(size) / 1024)) KiB"), opset \(ONNXExport.opset)")
    }
}
