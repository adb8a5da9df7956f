import ArgumentParser
import Foundation
import Recurrent

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a char-LM checkpoint as an ONNX model (opset 17) for ONNX Runtime.",
        discussion: """
        Inputs tokens int64 [seq, batch], h0 float [layers, batch, hidden] (and c0 for an LSTM: zeros \
        for a fresh start); outputs logits [seq, batch, vocab], hn (and cn). Time-major, as ONNX's \
        LSTM/GRU/RNN operators are. The vocabulary is in the model's metadata (vocab). See \
        docs/onnx.md.
        """)

    @Option(help: "The char-LM checkpoint (.safetensors).")
    var checkpoint: String

    @Option(help: "The ONNX file to write (written atomically).")
    var onnx: String

    func run() throws {
        try CharLMONNX.export(checkpoint: checkpoint, to: onnx)
        let size = (try? FileManager.default.attributesOfItem(atPath: onnx)[.size] as? Int) ?? 0
        Console.line("wrote \(onnx) (\(Format.grouped(Double(size) / 1024)) KiB, opset \(CharLMONNX.opset))")
    }
}
