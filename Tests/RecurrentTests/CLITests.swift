import Foundation
import Testing
@testable import Recurrent

/// Runs the built `recurrent` binary, as a user would.
enum CLI {
    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("recurrent").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        for b in Bundle.allBundles {
            let candidate = b.bundleURL.deletingLastPathComponent().appendingPathComponent("recurrent").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "recurrent"
    }()

    /// Runs the tool (or `executable`, such as a shell that runs it) with `args`.
    static func run(_ args: [String], stdin: String? = nil, executable: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try p.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        // Read both pipes before waiting so a chatty child cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter(); DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    static func tempDir() -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-cli-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }
}

/// One error line on stderr naming `mention`, a non-zero exit, and no traceback.
func expectCleanError(_ r: CLI.Result, mentions mention: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status != 0, "expected a non-zero exit; stdout: \(r.stdout)", sourceLocation: sourceLocation)
    let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
    #expect(lines.count == 1, "expected one error line, got: \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.stderr.hasPrefix("error: "), "got: \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.stderr.contains(mention), "error should mention \(mention): \(r.stderr)", sourceLocation: sourceLocation)
}

@Suite(.serialized) struct CLITests {
    @Test func helpWorks() throws {
        for sub in [[], ["train"], ["sample"], ["eval"], ["demo"]] {
            let r = try CLI.run(sub + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("USAGE"))
        }
    }

    /// The one-step contract: one plain SGD step from each PyTorch checkpoint gives PyTorch's weights.
    @Test(arguments: ["lstm", "gru", "rnn_tanh"])
    func oneSGDStepMatchesPyTorch(cell: String) throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("after.safetensors").path
        let r = try CLI.run(["train", "--data", Fixtures.torch("charlm_\(cell).txt"),
                             "--init-from", Fixtures.torch("charlm_\(cell).checkpoint.safetensors"),
                             "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "1", "--seq-len", "60",
                             "--val-fraction", "0", "--clip", "0", "--dropout", "0", "--steps", "1", "--output", out, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let mine = try SafeTensors.read(path: out)
        let torch = try SafeTensors.read(path: Fixtures.torch("charlm_\(cell).after-sgd.safetensors"))
        #expect(Set(mine.tensors.keys) == Set(torch.tensors.keys))
        for (name, t) in torch.tensors {
            let m = try #require(mine.tensors[name])
            #expect(m.maxAbsDifference(t) < 1e-4, "\(name)")
        }
        #expect(mine.metadata["vocab"].map { try? CharVocabulary(json: $0, source: "t") } == torch.metadata["vocab"].map { try? CharVocabulary(json: $0, source: "t") })
    }

    @Test(arguments: ["lstm", "gru", "rnn_tanh"])
    func evalMatchesPyTorch(cell: String) throws {
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.torch("charlm_\(cell).json")))) as? [String: Any]
        let expected = try #require(meta?["mean_cross_entropy_nats"] as? Double)
        let r = try CLI.run(["eval", "--checkpoint", Fixtures.torch("charlm_\(cell).checkpoint.safetensors"),
                             "--data", Fixtures.torch("charlm_\(cell).txt"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let loss = try #require(obj["loss"] as? Double)
        #expect(abs(loss - expected) < 1e-4)
        #expect(obj["characters"] as? Int == 60)
        #expect(abs((obj["bits_per_char"] as? Double ?? 0) - expected / log(2)) < 1e-4)
        #expect(abs((obj["perplexity"] as? Double ?? 0) - exp(expected)) < 1e-3)
    }

    /// A fresh folder holding text.txt (`text`) and the path for a model m.safetensors beside it.
    static func textAndModel(_ text: String) throws -> (dir: URL, textPath: String, model: String) {
        let dir = CLI.tempDir()
        let textPath = dir.appendingPathComponent("text.txt").path
        try text.write(toFile: textPath, atomically: true, encoding: .utf8)
        return (dir, textPath, dir.appendingPathComponent("m.safetensors").path)
    }

    @Test func trainSampleEvalResume() throws {
        let (_, textPath, model) = try Self.textAndModel(String(repeating: "abcabcabd 가나다 😀\n", count: 60))
        var r = try CLI.run(["train", "--data", textPath, "--hidden", "16", "--embedding", "8", "--layers", "1",
                             "--batch-size", "4", "--seq-len", "16", "--steps", "30", "--eval-every", "10",
                             "--val-fraction", "0.1", "--output", model, "--threads", "1", "--lr", "0.01"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("val "))
        #expect(FileManager.default.fileExists(atPath: model))
        #expect(FileManager.default.fileExists(atPath: model + ".training.safetensors"))
        let ckpt = try SafeTensors.read(path: model)
        #expect(ckpt.metadata["model"] == "char-lm")
        #expect(ckpt.metadata["cell"] == "lstm")
        #expect(ckpt.tensors["rnn.weight_ih_l0"]?.shape == [64, 8])

        r = try CLI.run(["sample", "--checkpoint", model, "--length", "50", "--prime", "가", "--temperature", "0.5", "--top-k", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("가"))
        #expect(r.stdout.unicodeScalars.count >= 51)
        let again = try CLI.run(["sample", "--checkpoint", model, "--length", "50", "--prime", "가", "--temperature", "0.5", "--top-k", "3"])
        #expect(again.stdout == r.stdout, "same seed, same sample")
        r = try CLI.run(["sample", "--checkpoint", model, "--length", "20", "--greedy"])
        #expect(r.status == 0)

        r = try CLI.run(["eval", "--checkpoint", model, "--data", textPath])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("nats/char"))

        r = try CLI.run(["train", "--data", textPath, "--batch-size", "4", "--seq-len", "16", "--steps", "40",
                         "--eval-every", "10", "--val-fraction", "0.1", "--output", model, "--resume", model, "--threads", "1", "--lr", "0.01"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("resumed"))
        #expect(r.stdout.contains("step 40"))
    }

    /// A `--lr-decay-rate` below 1 without `--lr-decay` decays exponentially per epoch, as in the
    /// task trainers (it was ignored by `train`).
    @Test func aDecayRateAloneDecaysExponentially() throws {
        let (_, textPath, model) = try Self.textAndModel(String(repeating: "abcabcabd 가나다 😀\n", count: 60))
        let r = try CLI.run(["train", "--data", textPath, "--hidden", "8", "--embedding", "4", "--layers", "1", "--batch-size", "4",
                             "--seq-len", "16", "--epochs", "3", "--eval-every", "5", "--val-fraction", "0.1", "--output", model,
                             "--threads", "1", "--lr", "0.01", "--lr-decay-rate", "0.5"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("lr 1.00e-02") && r.stdout.contains("lr 5.00e-03") && r.stdout.contains("lr 2.50e-03"), "\(r.stdout)")
        let meta = try SafeTensors.metadata(path: model + ".training.safetensors")
        #expect(meta["lr_decay"] == "exponential" && meta["lr_decay_rate"] == "0.5", "the training state's settings")
    }

    /// `bench` on a trained checkpoint: sampling with int8 weights reports its speed and the loss
    /// change against float32 on the text's end; a text with characters the model lacks is a clean error.
    @Test func benchTimesATrainedCheckpoint() throws {
        let (dir, textPath, model) = try Self.textAndModel(String(repeating: "abcabcabd 가나다\n", count: 400))
        let t = try CLI.run(["train", "--data", textPath, "--hidden", "16", "--embedding", "8", "--layers", "2", "--batch-size", "4",
                             "--seq-len", "16", "--steps", "20", "--val-fraction", "0.1", "--output", model, "--threads", "1", "--lr", "0.01"])
        #expect(t.status == 0, "\(t.stderr)")
        for mode in ["sample", "eval"] {
            // Without --data, the generated text is drawn from the checkpoint's own characters.
            let r = try CLI.run(["bench", "--mode", mode, "--checkpoint", model] + (mode == "sample" ? ["--data", textPath, "--int8"] : [])
                                + ["--sample-length", "40", "--batch-size", "2", "--seq-len", "8", "--seconds", "0.05", "--repeats", "1",
                                   "--warmup", "0", "--json", "--threads", "1"])
            #expect(r.status == 0, "\(r.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            #expect((json?["chars_per_second"] as? Double ?? 0) > 0, "\(r.stdout)")
            #expect(json?["hidden"] as? Int == 16 && json?["layers"] as? Int == 2, "the checkpoint's architecture: \(r.stdout)")
            if mode == "sample" {
                // The loss change of the reduced precision, as the text output prints it.
                #expect(json?["precision"] as? String == "int8" && json?["loss_characters"] as? Int == 3999, "\(r.stdout)")
                let delta = (json?["loss_reduced"] as? Double ?? 0) - (json?["loss_f32"] as? Double ?? 0)
                #expect(abs(delta - (json?["loss_delta"] as? Double ?? 1)) < 1e-9)
            }
        }
        // Flags that would be ignored or never end are refused.
        expectCleanError(try CLI.run(["bench", "--mode", "train", "--int8"]), mentions: "--int8 applies to --mode sample only")
        expectCleanError(try CLI.run(["bench", "--seconds", "inf"]), mentions: "--seconds must be a finite number")
        expectCleanError(try CLI.run(["bench", "--config", "lstm128", "--hidden", "16"]), mentions: "--hidden 16 conflicts with --config lstm128")
        expectCleanError(try CLI.run(["bench", "--config", "eval512", "--mode", "train"]), mentions: "--mode train conflicts with --config eval512")
        expectCleanError(try CLI.run(["bench", "--config", "gru256", "--cell", "lstm"]), mentions: "--cell lstm conflicts with --config gru256")
        expectCleanError(try CLI.run(["bench", "--config", "gru256", "--layers", "1"]), mentions: "--layers 1 conflicts with --config gru256")
        expectCleanError(try CLI.run(["bench", "--checkpoint", model, "--hidden", "32"]), mentions: "--hidden describes a fresh model")
        expectCleanError(try CLI.run(["bench", "--checkpoint", model, "--config", "lstm512"]), mentions: "--config describes a fresh model")
        let plain = try CLI.run(["bench", "--mode", "sample", "--checkpoint", model, "--data", textPath, "--int8", "--sample-length", "40", "--repeats", "1"])
        #expect(plain.stdout.contains("loss over 3999 characters: float32"), "\(plain.stdout)")
        let other = dir.appendingPathComponent("other.txt").path
        try "xyz\n".write(toFile: other, atomically: true, encoding: .utf8)
        expectCleanError(try CLI.run(["bench", "--mode", "sample", "--checkpoint", model, "--data", other]), mentions: "other.txt")
    }

    /// `bench --mode gemm` reports each product against the FMA loop it timed beside it: with one
    /// repeat the share is exactly the product's rate over that loop's; a malformed shape is a
    /// clean error naming the flag.
    @Test func benchGEMMReportsTheShareOfTheLoopBesideIt() throws {
        let r = try CLI.run(["bench", "--mode", "gemm", "--shape", "64x48x32:t:n", "--shape", "9x100x7", "--seconds", "0.02",
                             "--repeats", "1", "--warmup", "1", "--threads", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let shapes = json?["shapes"] as? [[String: Any]] ?? []
        #expect(shapes.map { $0["shape"] as? String } == ["64x48x32:t:n", "9x100x7"], "\(r.stdout)")
        for s in shapes {
            let gflops = s["gflops"] as? Double ?? 0, loop = s["loop_gflops"] as? Double ?? 0, share = s["loop_share"] as? Double ?? 0
            #expect(gflops > 0 && loop > 0, "\(s)")
            #expect(abs(share - gflops / loop) <= 1e-12 * share, "\(s)")
            #expect(abs((s["ceiling_share"] as? Double ?? 0) - gflops / (json?["ceiling_gflops"] as? Double ?? 1)) <= 1e-12, "\(s)")
        }
        expectCleanError(try CLI.run(["bench", "--mode", "gemm", "--shape", "64x48"]), mentions: "--shape")
    }

    @Test func resumeContinuesExactly() throws {
        // 20 steps in one go == 10 steps, then resume for 10 more (no validation split, so the
        // checkpoint and its training state are written at the end of each run). Dropout on: the
        // masks after the resume come from the saved RNG state.
        let dir = CLI.tempDir()
        let textPath = dir.appendingPathComponent("t.txt").path
        try String(repeating: "the quick brown fox jumps over the lazy dog\n", count: 20).write(toFile: textPath, atomically: true, encoding: .utf8)
        let common = ["--data", textPath, "--hidden", "12", "--embedding", "6", "--batch-size", "3", "--seq-len", "10",
                      "--val-fraction", "0", "--threads", "1", "--cell", "gru", "--dropout", "0.3"]
        let whole = dir.appendingPathComponent("whole.safetensors").path
        let half = dir.appendingPathComponent("half.safetensors").path
        #expect(try CLI.run(["train"] + common + ["--steps", "20", "--output", whole]).status == 0)
        #expect(try CLI.run(["train"] + common + ["--steps", "10", "--output", half]).status == 0)
        let r = try CLI.run(["train"] + common.filter { $0 != "gru" && $0 != "--cell" } + ["--steps", "20", "--resume", half, "--output", half])
        #expect(r.status == 0, "\(r.stderr)")
        let a = try SafeTensors.read(path: whole), b = try SafeTensors.read(path: half)
        for (name, t) in a.tensors {
            #expect(t.maxAbsDifference(try #require(b.tensors[name])) < 1e-6, "\(name)")
        }
        expectCleanError(try CLI.run(["train"] + common + ["--epochs", "0.01", "--resume", half, "--output", half]),
                         mentions: "--epochs 0.01: the resumed run is already at epoch")
        // Another text of the same length is refused.
        let other = dir.appendingPathComponent("other.txt").path
        try String(repeating: "the quick brown fox jumps over the lazy cat\n", count: 20).write(toFile: other, atomically: true, encoding: .utf8)
        var args = ["train"] + common + ["--steps", "30", "--resume", half, "--output", half]
        args[2] = other
        expectCleanError(try CLI.run(args), mentions: "trained on another text")
        // A new learning rate is taken and reported; a seed, which cannot matter any more, is named as ignored.
        let changed = try CLI.run(["train"] + common + ["--steps", "30", "--resume", half, "--output", half, "--lr", "0.005", "--seed", "9"])
        #expect(changed.status == 0 && changed.stderr.contains("lr 0.002 → 0.005") && changed.stderr.contains("--seed is ignored"), "\(changed.stderr)")
    }

    @Test func badInputGetsOneClearLine() throws {
        let dir = CLI.tempDir()
        func file(_ name: String, _ bytes: [UInt8]) throws -> String {
            let p = dir.appendingPathComponent(name).path
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }
        let good = try file("good.txt", Array(String(repeating: "hello world\n", count: 40).utf8))
        let out = dir.appendingPathComponent("never.safetensors").path
        let small = ["--hidden", "8", "--embedding", "4", "--batch-size", "2", "--seq-len", "8", "--steps", "2", "--output", out]

        expectCleanError(try CLI.run(["train", "--data", dir.appendingPathComponent("missing.txt").path] + small), mentions: "missing.txt")
        expectCleanError(try CLI.run(["train", "--data", try file("empty.txt", [])] + small), mentions: "empty.txt")
        expectCleanError(try CLI.run(["train", "--data", dir.path] + small), mentions: dir.path)
        expectCleanError(try CLI.run(["train", "--data", try file("bad.txt", Array("héllo".utf8) + [0xC3, 0x28] + Array(String(repeating: "x", count: 100).utf8))] + small), mentions: "byte offset 6")
        expectCleanError(try CLI.run(["train", "--data", try file("short.txt", Array("abcdefghij".utf8))] + small), mentions: "short.txt")
        expectCleanError(try CLI.run(["train", "--data", good, "--hidden", "0"]), mentions: "--hidden")
        expectCleanError(try CLI.run(["train", "--data", good, "--batch-size", "-3"]), mentions: "--batch-size")
        expectCleanError(try CLI.run(["train", "--data", good, "--val-fraction", "1"]), mentions: "--val-fraction")
        expectCleanError(try CLI.run(["train", "--data", good, "--val-fraction", "-0.1"]), mentions: "--val-fraction")
        expectCleanError(try CLI.run(["train", "--data", good, "--cell", "transformer"]), mentions: "--cell")
        expectCleanError(try CLI.run(["train", "--data", good, "--optimizer", "lbfgs"]), mentions: "--optimizer")
        expectCleanError(try CLI.run(["train", "--data", good, "--lr", "0"]), mentions: "--lr")
        expectCleanError(try CLI.run(["train", "--data", good, "--momentum", "0.5"]), mentions: "--momentum applies to sgd and rmsprop, not adam")
        // Another optimizer's setting is refused too, for train and the task trainers alike.
        expectCleanError(try CLI.run(["train", "--data", good, "--optimizer", "sgd", "--beta1", "0.5"]), mentions: "--beta1 applies to --optimizer adam only, not sgd")
        expectCleanError(try CLI.run(["train", "--data", good, "--optimizer", "rmsprop", "--beta2", "0.9"]), mentions: "--beta2 applies to --optimizer adam only")
        expectCleanError(try CLI.run(["train", "--data", good, "--alpha", "0.9"]), mentions: "--alpha applies to --optimizer rmsprop only, not adam")
        expectCleanError(try CLI.run(["classify", "train", "--train", good, "--optimizer", "sgd", "--eps", "1e-6"]), mentions: "--eps applies to --optimizer adam and rmsprop, not sgd")
        expectCleanError(try CLI.run(["train", "--data", good, "--hidden", "abc"]), mentions: "--hidden")
        // Sizes beyond any memory: one line before any allocation (they trapped or failed to allocate).
        expectCleanError(try CLI.run(["train", "--data", good, "--hidden", "1000000"]), mentions: "--hidden 1000000")
        expectCleanError(try CLI.run(["train", "--data", good, "--hidden", "9223372036854775807"]), mentions: "more than this machine's")
        expectCleanError(try CLI.run(["train", "--data", good, "--embedding", "4000000000"]), mentions: "--embedding 4000000000")
        expectCleanError(try CLI.run(["classify", "train", "--train", good, "--valid", good, "--output", out, "--hidden", "9223372036854775807"]),
                         mentions: "--hidden 9223372036854775807")
        expectCleanError(try CLI.run(["train", "--data", good, "--unknown-flag"]), mentions: "--unknown-flag")
        expectCleanError(try CLI.run(["train", "--data", good, "--output", dir.appendingPathComponent("no/such/dir/m.safetensors").path] + small.dropLast(2)), mentions: "no/such/dir")
        // A run that blows up stops with one line, before a nan checkpoint is saved.
        let blown = dir.appendingPathComponent("blown.safetensors").path
        expectCleanError(try CLI.run(["train", "--data", good, "--hidden", "16", "--embedding", "4", "--layers", "1", "--batch-size", "4", "--seq-len", "8",
                                      "--steps", "40", "--eval-every", "10", "--cell", "rnn-relu", "--optimizer", "sgd", "--lr", "1e30", "--clip", "0",
                                      "--output", blown, "--report", dir.appendingPathComponent("report").path]), mentions: "training diverged at step")
        #expect(!FileManager.default.fileExists(atPath: blown))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("report/index.html").path), "the curves up to the failed step")
        expectCleanError(try CLI.run(["train", "--data", good, "--report", good + "/sub"] + small), mentions: "is a file, not a folder")
        #expect(!FileManager.default.fileExists(atPath: out))

        // A real checkpoint to break in various ways.
        let model = dir.appendingPathComponent("m.safetensors").path
        #expect(try CLI.run(["train", "--data", good, "--hidden", "8", "--embedding", "4", "--batch-size", "2", "--seq-len", "8",
                             "--steps", "2", "--val-fraction", "0", "--output", model]).status == 0)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: model)))
        // An output that is one of the inputs is refused, and the input left as it was.
        expectCleanError(try CLI.run(["train", "--data", good, "--output", good] + small.dropLast(2)), mentions: "is also --data")
        let state = try file("o.training.safetensors", Array(String(repeating: "hello world\n", count: 40).utf8))
        expectCleanError(try CLI.run(["train", "--data", state, "--output", dir.appendingPathComponent("o").path] + small.dropLast(2)),
                         mentions: "writes \(state) beside it, which is --data")
        let page = dir.appendingPathComponent("runs/index.html")
        try FileManager.default.createDirectory(at: page.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(String(repeating: "hello world\n", count: 40).utf8).write(to: page)
        expectCleanError(try CLI.run(["train", "--data", page.path, "--report", page.deletingLastPathComponent().path] + small),
                         mentions: "would rewrite --data")
        #expect(try String(contentsOf: page, encoding: .utf8).hasPrefix("hello world"))
        expectCleanError(try CLI.run(["export", "--checkpoint", model, "--onnx", dir.path + "/./m.safetensors"]), mentions: "is also --checkpoint")
        #expect(try Data(contentsOf: URL(fileURLWithPath: model)) == Data(bytes))
        #expect(try String(contentsOfFile: good, encoding: .utf8).hasPrefix("hello world"))
        expectCleanError(try CLI.run(["sample", "--checkpoint", model, "--temperature", "0"]), mentions: "--temperature")
        // A negative number after an option is its value (ArgumentParser alone reads it as a flag).
        expectCleanError(try CLI.run(["sample", "--checkpoint", model, "--temperature", "-1"]), mentions: "--temperature must be a finite number greater than 0, got -1")
        expectCleanError(try CLI.run(["sample", "--checkpoint", model, "--prime", "hello Z"]), mentions: "--prime")
        expectCleanError(try CLI.run(["sample", "--checkpoint", model, "--length", "-5"]), mentions: "--length")
        expectCleanError(try CLI.run(["eval", "--checkpoint", model, "--data", try file("other.txt", Array("hello QQ world".utf8))]), mentions: "other.txt")
        expectCleanError(try CLI.run(["eval", "--checkpoint", try file("trunc.safetensors", Array(bytes.prefix(bytes.count / 2))), "--data", good]), mentions: "trunc.safetensors")
        expectCleanError(try CLI.run(["eval", "--checkpoint", try file("tiny.safetensors", [1, 2, 3]), "--data", good]), mentions: "tiny.safetensors")
        expectCleanError(try CLI.run(["eval", "--checkpoint", good, "--data", good]), mentions: "good.txt")
        expectCleanError(try CLI.run(["eval", "--checkpoint", dir.appendingPathComponent("nope.safetensors").path, "--data", good]), mentions: "nope.safetensors")

        // Header pointing past the end of the file: enlarge one data offset.
        var header = try SafeTensors.read(path: model)
        let names = header.order
        var tensors = names.map { ($0, header.tensors[$0]!) }
        tensors[0].1 = Tensor(shape: [1], data: [0])  // wrong shape for the first tensor
        let wrongShape = dir.appendingPathComponent("shape.safetensors").path
        try SafeTensors.write(tensors, metadata: header.metadata, to: wrongShape)
        expectCleanError(try CLI.run(["eval", "--checkpoint", wrongShape, "--data", good]), mentions: "shape")
        header.tensors.removeValue(forKey: "head.bias")
        let missing = dir.appendingPathComponent("missing.safetensors").path
        try SafeTensors.write(header.order.filter { $0 != "head.bias" }.map { ($0, header.tensors[$0]!) }, metadata: header.metadata, to: missing)
        expectCleanError(try CLI.run(["eval", "--checkpoint", missing, "--data", good]), mentions: "head.bias")

        let n = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        var json = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        let last = bytes.count - 8 - n
        json = json.replacingOccurrences(of: "\(last)]", with: "\(last + 4000)]")
        var patched = Array(bytes.prefix(8)) + Array(json.utf8)
        while patched.count < 8 + n { patched.append(0x20) }
        patched = Array(patched.prefix(8 + n)) + Array(bytes[(8 + n)...])
        expectCleanError(try CLI.run(["eval", "--checkpoint", try file("past.safetensors", patched), "--data", good]), mentions: "past.safetensors")
    }
}
