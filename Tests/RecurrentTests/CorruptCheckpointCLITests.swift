import Foundation
import Testing
@testable import Recurrent

/// Checkpoints and training states whose values pass a parser but not a sanity check: each is one
/// error line naming the file, before anything traps or allocates gigabytes.
@Suite(.serialized) struct CorruptCheckpointCLITests {
    /// Rewrites a safetensors file with `change` applied to its metadata (and tensors).
    static func rewrite(_ from: String, _ to: String, tensors change: (inout [String: Tensor]) -> Void = { _ in },
                        metadata edit: (inout [String: String]) -> Void) throws {
        let file = try SafeTensors.read(path: from)
        var meta = file.metadata, tensors = file.tensors
        edit(&meta)
        change(&tensors)
        try SafeTensors.write(file.order.map { ($0, tensors[$0]!) }, metadata: meta, to: to)
    }

    static func names(_ dir: URL) throws -> String {
        let folder = dir.appendingPathComponent("names")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        _ = try TranslateCLITests().write(folder, "Alpha.txt", "anna\nanita\nannie\nana\nanja\nanke\nanouk\nantje\nanny\nangela\n")
        _ = try TranslateCLITests().write(folder, "Beta.txt", "bob\nbert\nbodo\nboris\nbruno\nbernd\nbenno\nbjorn\nbasti\nbela\n")
        return folder.path
    }

    @Test func translateSplitFractionsOutOfRange() throws {
        let dir = CLI.tempDir()
        let data = try TranslateCLITests().write(dir, "pairs.tsv", TranslateCLITests.pairs)
        let model = dir.appendingPathComponent("m.safetensors").path
        #expect(try CLI.run(["translate", "train", "--pairs", data, "--output", model, "--steps", "2"] + TranslateCLITests.tinyModel).status == 0)
        let bad = dir.appendingPathComponent("bad.safetensors").path
        for (test, valid) in [("nan", "0.05"), ("inf", "0.05"), ("1e30", "0.05"), ("-1", "0.05"), ("0.5", "-0.4"), ("1", "0"), ("0.9", "0.9")] {
            try Self.rewrite(model, bad) { $0["test_fraction"] = test; $0["valid_fraction"] = valid }
            let r = try CLI.run(["translate", "eval", "--checkpoint", bad, "--pairs", data])
            expectCleanError(r, mentions: "test_fraction")
        }
    }

    @Test func resumeRefusesACorruptTrainingState() throws {
        let dir = CLI.tempDir()
        let data = try Self.names(dir)
        let model = dir.appendingPathComponent("g.safetensors").path
        let base = ["generate", "train", "--data", data, "--hidden", "8", "--embedding", "4", "--condition-size", "2",
                    "--batch-size", "4", "--eval-every", "2", "--threads", "1", "--quiet"]
        #expect(try CLI.run(base + ["--output", model, "--steps", "2"]).status == 0)
        let state = model + ".training.safetensors"
        let copy = dir.appendingPathComponent("c.safetensors").path
        try FileManager.default.copyItem(atPath: model, toPath: copy)
        for value: Float in [.nan, .infinity, 1e30, -1e30, 0.5] {
            try Self.rewrite(state, copy + ".training.safetensors", tensors: { $0["loop.plan_sizes"]!.data[0] = value }) { _ in }
            let r = try CLI.run(base + ["--output", dir.appendingPathComponent("out.safetensors").path, "--steps", "6", "--resume", copy])
            expectCleanError(r, mentions: "c.safetensors.training.safetensors")
        }
        try Self.rewrite(state, copy + ".training.safetensors", tensors: { $0["loop.plan"]!.data[0] = .nan }) { _ in }
        expectCleanError(try CLI.run(base + ["--output", dir.appendingPathComponent("out.safetensors").path, "--steps", "6", "--resume", copy]),
                         mentions: "batch plan")
        for key in ["epoch", "since_best", "since_plateau_cut", "step"] {
            try Self.rewrite(state, copy + ".training.safetensors") { $0[key] = "9223372036854775807" }
            let r = try CLI.run(base + ["--output", dir.appendingPathComponent("out.safetensors").path, "--epochs", "5", "--resume", copy])
            expectCleanError(r, mentions: "'\(key)'")
        }
        // The checkpoint itself is checked as strictly as eval checks it.
        try FileManager.default.copyItem(atPath: state, toPath: copy + ".training.safetensors.good")
        try FileManager.default.removeItem(atPath: copy + ".training.safetensors")
        try FileManager.default.moveItem(atPath: copy + ".training.safetensors.good", toPath: copy + ".training.safetensors")
        try Self.rewrite(model, copy, tensors: { t in t["head.weight"]!.data[0] = .nan }) { _ in }
        expectCleanError(try CLI.run(base + ["--output", dir.appendingPathComponent("out.safetensors").path, "--steps", "6", "--resume", copy]),
                         mentions: "nan or infinite")
        try Self.rewrite(model, copy) { $0["cell"] = nil }
        expectCleanError(try CLI.run(base + ["--output", dir.appendingPathComponent("out.safetensors").path, "--steps", "6", "--resume", copy]),
                         mentions: "cell")
    }

    /// Metadata sizes that a small file cannot hold are refused before the model is allocated.
    @Test func sizesBeyondTheFileAreRefusedUpFront() throws {
        let dir = CLI.tempDir()
        let data = try SequenceCLITests().write(dir, "train.tsv", SequenceCLITests.sentences)
        let model = dir.appendingPathComponent("m.safetensors").path
        #expect(try CLI.run(["classify", "train", "--train", data, "--valid", data, "--output", model, "--steps", "2",
                             "--ensemble", "1"] + SequenceCLITests.tinyModel).status == 0)
        let bad = dir.appendingPathComponent("bad.safetensors").path
        try Self.rewrite(model, bad) { $0["hidden_size"] = "1"; $0["embedding_size"] = "7914"; $0["ensemble"] = "7914" }
        expectCleanError(try CLI.run(["classify", "eval", "--checkpoint", bad, "--data", data]), mentions: "imply at least")

        let text = try SequenceCLITests().write(dir, "t.txt", String(repeating: "abcd efgh\n", count: 40))
        let lm = dir.appendingPathComponent("lm.safetensors").path
        #expect(try CLI.run(["train", "--data", text, "--hidden", "4", "--embedding", "2", "--layers", "1", "--batch-size", "2",
                             "--seq-len", "8", "--steps", "1", "--quiet", "--threads", "1", "--output", lm]).status == 0)
        let vocab = jsonArray((0..<50_000).map { String(Unicode.Scalar(0x10000 + $0)!) })   // 50,000 one-character entries
        let big = dir.appendingPathComponent("big.safetensors").path
        try Self.rewrite(lm, big) { $0["hidden_size"] = "1"; $0["num_layers"] = "1"; $0["embedding_size"] = "5290"; $0["vocab"] = vocab }
        expectCleanError(try CLI.run(["sample", "--checkpoint", big, "--length", "5"]), mentions: "imply at least")
    }

    /// Numbers in a safetensors header must be whole numbers written as such (intValue truncated
    /// 58.9 and wrapped 2^64 to 0).
    @Test func headerNumbersMustBeWhole() throws {
        for (shape, offsets) in [("[58.9, 8.5]", "[0, 16]"), ("[18446744073709551620, 1]", "[0, 16]"), ("[4]", "[-0.5, 16]"),
                                 ("[4]", "[0.9, 16.99]"), ("[4]", "[18446744073709551616, 18446744073709551632]")] {
            var header = Data("{\"w\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":\(offsets)}}".utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            var bytes = Data()
            var n = UInt64(header.count).littleEndian
            withUnsafeBytes(of: &n) { bytes.append(contentsOf: $0) }
            bytes.append(header)
            bytes.append(Data(count: 16))
            #expect(throws: RecurrentError.self) { _ = try SafeTensors.decode(bytes, name: "h.safetensors") }
        }
    }

    /// A TSV with lone CR line endings reads as one line: the error says so, in a short line.
    @Test func loneCRLineEndingsAreNamed() throws {
        let dir = CLI.tempDir()
        let rows = (0..<300).map { "a sentence number \($0) that is long enough\t\($0 % 2 == 0 ? "pos" : "neg")" }
        let data = try SequenceCLITests().write(dir, "cr.tsv", "sentence\tlabel\r" + rows.joined(separator: "\r") + "\r")
        let r = try CLI.run(["classify", "train", "--train", data, "--valid", data, "--output", dir.appendingPathComponent("m.safetensors").path,
                             "--steps", "1"] + SequenceCLITests.tinyModel)
        expectCleanError(r, mentions: "lone CR")
        #expect(r.stderr.count < 600, "\(r.stderr.count) characters")
    }
}
