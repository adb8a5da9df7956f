import Foundation
import Testing
@testable import Recurrent

/// `translate train|eval|run` end to end on a few synthetic pairs, and the error paths.
@Suite(.serialized) struct TranslateCLITests {
    static let tinyModel = ["--hidden", "16", "--embedding", "8", "--quiet", "--threads", "1"]

    /// The file and shell helpers of the classify/tag CLI tests.
    let helpers = SequenceCLITests()
    func write(_ dir: URL, _ name: String, _ text: String) throws -> String { try helpers.write(dir, name, text) }

    /// 24 pairs "X is Y ." → "x est y .", CRLF, an extra column and no final newline.
    static var pairs: String {
        let subjects = [("he", "il"), ("she", "elle"), ("it", "ca")]
        let adjectives = [("cold", "froid"), ("tall", "grand"), ("happy", "content"), ("tired", "fatigue"),
                          ("here", "ici"), ("late", "tard"), ("ready", "pret"), ("sad", "triste")]
        var lines: [String] = []
        for (e, f) in subjects { for (a, b) in adjectives { lines.append("\(e.capitalized) is \(a).\t\(f.capitalized) est \(b).\tCC-BY") } }
        return lines.joined(separator: "\r\n")
    }

    @Test func helpWorks() throws {
        for sub in [["translate"], ["translate", "train"], ["translate", "eval"], ["translate", "run"]] {
            let r = try CLI.run(sub + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("USAGE"))
        }
    }

    @Test func trainEvalTranslate() throws {
        let dir = CLI.tempDir()
        let data = try write(dir, "pairs.tsv", Self.pairs)
        let model = dir.appendingPathComponent("m.safetensors").path
        let log = dir.appendingPathComponent("log.csv").path
        let t = try CLI.run(["translate", "train", "--pairs", data, "--output", model, "--steps", "60", "--eval-every", "30", "--lr", "0.02",
                             "--test-fraction", "0.125", "--valid-fraction", "0.125", "--attention", "luong", "--bidirectional",
                             "--teacher-forcing", "1", "--teacher-forcing-decay", "linear", "--teacher-forcing-steps", "60",
                             "--dropout", "0", "--log", log] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("val bleu") && t.stdout.contains("saved"), "\(t.stdout)")
        #expect(t.stdout.contains("18 training, 3 validation, 3 held out"), "\(t.stdout)")
        let csv = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "step,seconds,teacher_forcing,train_loss,valid_loss,valid_bleu" && csv.count == 3, "\(csv)")
        #expect(csv.last?.hasPrefix("60,") == true && csv.last?.contains(",0.000,") == true, "\(csv)")

        let e = try CLI.run(["translate", "eval", "--checkpoint", model, "--pairs", data, "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        #expect(json?["pairs"] as? Int == 3, "\(e.stdout)")
        let bleu = json?["bleu"] as? Double ?? -1
        #expect(bleu >= 0 && bleu <= 100 + 1e-9, "\(bleu)")
        // The validation BLEU the training saved by is `translate eval`'s on the same pairs, with
        // a vocabulary that leaves words out (whose <unk> a hypothesis's <unk> must not match).
        let small = dir.appendingPathComponent("small.safetensors").path
        #expect(try CLI.run(["translate", "train", "--pairs", data, "--output", small, "--steps", "30", "--eval-every", "30", "--lr", "0.02",
                             "--max-vocab", "6", "--dropout", "0"] + Self.tinyModel).status == 0)
        let valid = try CLI.run(["translate", "eval", "--checkpoint", small, "--pairs", data, "--part", "valid", "--json"])
        let validBLEU = (try JSONSerialization.jsonObject(with: Data(valid.stdout.utf8)) as? [String: Any])?["bleu"] as? Double
        let savedBLEU = try SafeTensors.read(path: small).metadata["valid_bleu"].flatMap(Double.init)
        #expect(validBLEU != nil && savedBLEU != nil && abs((validBLEU ?? 0) - (savedBLEU ?? 1)) < 1e-9, "\(valid.stdout) vs \(savedBLEU ?? -1)")
        let all = try CLI.run(["translate", "eval", "--checkpoint", model, "--pairs", data, "--part", "all", "--beam", "3"])
        #expect(all.status == 0 && all.stdout.contains("on 24 pairs (all, beam 3)"), "\(all.stdout) \(all.stderr)")

        let r = try CLI.run(["translate", "--checkpoint", model, "He is cold.", "she is happy ."])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty, "\(r.stdout)")
        let beam = try CLI.run(["translate", "run", "--checkpoint", model, "--beam", "1", "He is cold.", "she is happy ."])
        #expect(beam.stdout == r.stdout)
        let piped = try helpers.shell("printf 'He is cold.\\r\\nshe is happy .' | '\(CLI.binary)' translate --checkpoint '\(model)'")
        #expect(piped == r.stdout)
    }

    @Test func validFileGoesThroughReverseAndFilter() throws {
        let dir = CLI.tempDir()
        let data = try write(dir, "pairs.tsv", Self.pairs)
        let valid = try write(dir, "valid.tsv", "He is cold.\tIl est froid.\nShe is here.\tElle est ici.\nIt is a very long sentence indeed.\tx y\n")
        let model = dir.appendingPathComponent("r.safetensors").path
        let t = try CLI.run(["translate", "train", "--pairs", data, "--valid", valid, "--reverse", "--max-words", "4", "--output", model,
                             "--steps", "2"] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("22 training, 2 validation, 2 held out"), "\(t.stdout)")
        let r = try CLI.run(["translate", "--checkpoint", model, "il est froid ."])
        #expect(r.status == 0 && r.stdout.split(separator: "\n").count == 1, "\(r.stdout) \(r.stderr)")
    }

    @Test func badInput() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("never.safetensors").path
        let good = try write(dir, "good.tsv", Self.pairs)
        func fails(_ args: [String], mentions: String) throws {
            expectCleanError(try CLI.run(["translate", "train", "--output", out] + args + Self.tinyModel), mentions: mentions)
            #expect(!FileManager.default.fileExists(atPath: out), "a failed run must not write \(out)")
        }
        try fails(["--pairs", try write(dir, "empty-side.tsv", "a b\tc d\n\te f\n")], mentions: "empty-side.tsv:2: the source side is empty")
        try fails(["--pairs", try write(dir, "no-tab.tsv", "a b\tc d\ne f\n")], mentions: "no-tab.tsv:2: expected source<TAB>target")
        try fails(["--pairs", good, "--max-words", "2"], mentions: "none of its 24 pairs pass the filter")
        try fails(["--pairs", good, "--prefixes", try write(dir, "we.txt", "we are \n")], mentions: "good.tsv: none of its 24 pairs")
        try fails(["--pairs", dir.appendingPathComponent("missing.tsv").path], mentions: "missing.tsv")
        try fails(["--pairs", good, "--prefixes", try write(dir, "prefixes.txt", "\n")], mentions: "--prefixes")
        try fails(["--pairs", good, "--teacher-forcing", "1.5"], mentions: "--teacher-forcing")
        try fails(["--pairs", good, "--teacher-forcing-decay", "cosine"], mentions: "--teacher-forcing-decay")
        try fails(["--pairs", good, "--attention", "dot-product"], mentions: "--attention")
        try fails(["--pairs", good, "--cell", "transformer"], mentions: "--cell")
        try fails(["--pairs", good, "--max-words", "0"], mentions: "--max-words")
        try fails(["--pairs", good, "--valid-fraction", "0"], mentions: "--valid-fraction")
        try fails(["--pairs", good, "--max-vocab", "4"], mentions: "--max-vocab must be at least 5")
        // A pair so long that its batch's attention could not fit is named before any work.
        let long = String(repeating: "a ", count: 20_000)
        let longPairs = "i am here .\tje suis la .\n" + String(repeating: "\(long)\t\(long)\n", count: 10)
        try fails(["--pairs", try write(dir, "long.tsv", longPairs), "--valid", good, "--attention", "bahdanau"],
                  mentions: "a pair of 20000 and 20000 words")
        expectCleanError(try CLI.run(["translate", "train", "--pairs", good, "--output", dir.appendingPathComponent("no/dir/m.safetensors").path]),
                         mentions: "no/dir")

        let model = dir.appendingPathComponent("m.safetensors").path
        #expect(try CLI.run(["translate", "train", "--pairs", good, "--output", model, "--steps", "1"] + Self.tinyModel).status == 0)
        expectCleanError(try CLI.run(["translate", "--checkpoint", model, "--beam", "0", "a"]), mentions: "--beam")
        expectCleanError(try CLI.run(["translate", "eval", "--checkpoint", model, "--pairs", good, "--part", "dev"]), mentions: "--part")
        expectCleanError(try CLI.run(["translate", "--checkpoint", good, "a"]), mentions: "good.tsv")
        expectCleanError(try CLI.run(["translate", "--checkpoint", model, "i am cold .", " "]), mentions: "sentence 2 given to translate has no words")
        expectCleanError(try CLI.run(["translate", "--checkpoint", model, "--beam", "100000", "a"]), mentions: "wider than the model's")
        // A sentence that starts with "-" is a sentence, not the flags -h…: it is translated.
        let dash = try CLI.run(["translate", "--checkpoint", model, "- he is cold ."])
        #expect(dash.status == 0 && dash.stdout.split(separator: "\n").count == 1 && !dash.stdout.contains("USAGE"), "\(dash.stdout) \(dash.stderr)")
        // With an option after it, it cannot be told from flags: one line says what to do (not the help).
        expectCleanError(try CLI.run(["translate", "--checkpoint", model, "- he is cold .", "--beam", "2"]), mentions: "give the options before the sentences")
        expectCleanError(try CLI.run(["translate", "--checkpoint", dir.path, "a"]), mentions: "is a folder, expected a safetensors file")
        // Blank lines of standard input stay blank in the output.
        let piped = try CLI.run(["translate", "--checkpoint", model], stdin: "he is cold .\n\nshe is here .\n")
        #expect(piped.status == 0 && piped.stdout.split(separator: "\n", omittingEmptySubsequences: false).count == 4 && piped.stdout.contains("\n\n"), "[\(piped.stdout)] [\(piped.stderr)]")
        expectCleanError(try CLI.run(["translate", "eval", "--checkpoint", model, "--pairs", try write(dir, "bad.tsv", "x\t\n")]),
                         mentions: "bad.tsv:1: the target side is empty")
    }

    @Test func errorsNameTheFlagOfTheFileAndStdinTakesAnEncoding() throws {
        let dir = CLI.tempDir()
        let good = try write(dir, "good.tsv", Self.pairs)
        let model = dir.appendingPathComponent("m.safetensors").path
        let missing = dir.appendingPathComponent("no/dir/x.csv").path
        let r = try CLI.run(["translate", "train", "--pairs", good, "--output", model, "--log", missing, "--steps", "1"] + Self.tinyModel)
        expectCleanError(r, mentions: "--log \(missing): the folder")
        #expect(!FileManager.default.fileExists(atPath: model))
        #expect(try CLI.run(["translate", "train", "--pairs", good, "--output", model, "--steps", "1"] + Self.tinyModel).status == 0)
        expectCleanError(try CLI.run(["translate", "eval", "--checkpoint", model, "--pairs", good, "--dump", dir.path]), mentions: "--dump \(dir.path): is a folder")
        // Latin-1 on standard input: the error's advice (--encoding latin1) works.
        let input = dir.appendingPathComponent("latin1.txt")
        try Data([0x69, 0x20, 0x61, 0x6D, 0x20, 0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: input)  // "i am café" in Latin-1
        func translate(_ extra: [String]) throws -> CLI.Result {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["translate", "--checkpoint", model] + extra
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            p.standardInput = try FileHandle(forReadingFrom: input)
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return CLI.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
        }
        expectCleanError(try translate([]), mentions: "standard input:1: invalid UTF-8")
        let ok = try translate(["--encoding", "latin1"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.split(separator: "\n").count == 1)
    }
}
