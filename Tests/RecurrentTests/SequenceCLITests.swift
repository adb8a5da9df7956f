import Foundation
import Testing
@testable import Recurrent

/// `classify` and `tag` end to end on tiny files, and their error paths.
@Suite(.serialized) struct SequenceCLITests {
    static let tinyModel = ["--hidden", "8", "--embedding", "8", "--quiet", "--threads", "1"]

    /// Standard output of a shell pipeline (for feeding standard input).
    func shell(_ command: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func write(_ dir: URL, _ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    static let sentences = """
    sentence\tlabel
    a good film\tpos
    a bad film\tneg
    very good\tpos
    very bad\tneg
    good good\tpos
    bad bad\tneg
    """

    static let conllu = """
    # text = the dog runs
    1\tthe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
    2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_
    3\truns\trun\tVERB\tVBZ\t_\t0\troot\t_\t_

    1\ta\ta\tDET\tDT\t_\t2\tdet\t_\t_
    2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_
    3\tsleeps\tsleep\tVERB\tVBZ\t_\t0\troot\t_\t_

    """

    @Test func helpWorks() throws {
        for sub in [["classify"], ["classify", "train"], ["classify", "eval"], ["classify", "predict"],
                    ["tag"], ["tag", "train"], ["tag", "eval"], ["tag", "predict"]] {
            let r = try CLI.run(sub + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("USAGE"))
        }
    }

    /// Labels and words that Swift holds equal by canonical equivalence stay apart, as in Python:
    /// three labels, sorted by code point, and two words.
    @Test func canonicallyEquivalentLabelsAndWordsStayApart() throws {
        let dir = CLI.tempDir()
        let e1 = "\u{E9}", e2 = "e\u{301}"
        let rows = (0..<4).flatMap { _ in ["caf\(e1) one\t\(e1)", "caf\(e2) two\t\(e2)", "plain three\tx"] }
        let data = try write(dir, "train.tsv", "sentence\tlabel\n" + rows.joined(separator: "\n") + "\n")
        let model = dir.appendingPathComponent("m.safetensors").path
        let t = try CLI.run(["classify", "train", "--train", data, "--valid", data, "--output", model, "--steps", "2",
                             "--ensemble", "1"] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        let meta = try SafeTensors.metadata(path: model)
        let labels = try JSONSerialization.jsonObject(with: Data((meta["labels"] ?? "").utf8)) as? [String] ?? []
        #expect(labels.map { Array($0.utf8) } == [e2, "x", e1].map { Array($0.utf8) }, "\(meta["labels"] ?? "")")
        let vocab = try JSONSerialization.jsonObject(with: Data((meta["vocab"] ?? "").utf8)) as? [String] ?? []
        #expect(vocab.filter { $0.hasPrefix("caf") }.map { Array($0.utf8) }.count == 2, "\(vocab)")
        let e = try CLI.run(["classify", "eval", "--checkpoint", model, "--data", data, "--json"])
        #expect(e.status == 0, "\(e.stderr)")
    }

    @Test func classifyTrainEvalPredict() throws {
        let dir = CLI.tempDir()
        let data = try write(dir, "train.tsv", Self.sentences)
        let model = dir.appendingPathComponent("m.safetensors").path
        let t = try CLI.run(["classify", "train", "--train", data, "--valid", data, "--output", model, "--epochs", "30",
                             "--bidirectional", "--pooling", "mean", "--lr", "0.02", "--batch-size", "6", "--dropout", "0", "--ensemble", "1"] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("saved"))
        let e = try CLI.run(["classify", "eval", "--checkpoint", model, "--data", data, "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        #expect((json?["accuracy"] as? Double ?? 0) >= 0.99, "\(e.stdout)")
        #expect(json?["macro_f1"] as? Double != nil)
        #expect(json?["examples"] as? Int == 6)
        #expect((json?["labels"] as? [String]) == ["neg", "pos"])
        let plain = try CLI.run(["classify", "eval", "--checkpoint", model, "--data", data])
        #expect(plain.stdout.contains("confusion matrix"))
        let input = try write(dir, "in.txt", "very good film\r\nbad very bad bad bad")
        let p = try CLI.run(["classify", "predict", "--checkpoint", model, input])
        #expect(p.status == 0, "\(p.stderr)")
        let rows = p.stdout.split(separator: "\n").map { $0.split(separator: "\t") }
        #expect(rows.count == 2)
        #expect(rows.first?.first == "pos" && rows.last?.first == "neg", "\(p.stdout)")
        #expect(rows.allSatisfy { $0.count == 2 && (Double($0[1]) ?? 0) > 0.5 })
        // Standard input, when no file is named.
        let piped = try shell("printf 'very good film\\nbad very bad bad bad' | '\(CLI.binary)' classify predict --checkpoint '\(model)'")
        #expect(piped == p.stdout)
    }

    @Test func classifyFolderWithSplitAndCharLevel() throws {
        let dir = CLI.tempDir()
        let names = dir.appendingPathComponent("names")
        try FileManager.default.createDirectory(at: names, withIntermediateDirectories: true)
        _ = try write(names, "Alpha.txt", (0..<10).map { "aa\($0)" }.joined(separator: "\n"))
        _ = try write(names, "Beta.txt", (0..<10).map { "bb\($0)" }.joined(separator: "\n") + "\n")
        let model = dir.appendingPathComponent("n.safetensors").path
        let t = try CLI.run(["classify", "train", "--train", names.path, "--split", "0.6,0.2,0.2", "--level", "char",
                             "--output", model, "--steps", "20", "--lr", "0.02"] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        let e = try CLI.run(["classify", "eval", "--checkpoint", model, "--data", names.path, "--split", "0.6,0.2,0.2", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(e.stdout.contains("\"examples\": 4"), "\(e.stdout)")
    }

    @Test func tagTrainEvalPredict() throws {
        let dir = CLI.tempDir()
        let data = try write(dir, "t.conllu", Self.conllu)
        let model = dir.appendingPathComponent("t.safetensors").path
        let t = try CLI.run(["tag", "train", "--train", data, "--valid", data, "--output", model, "--epochs", "60", "--lr", "0.03",
                             "--char-hidden", "4", "--char-embedding", "4", "--dropout", "0", "--word-dropout", "0"] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        let e = try CLI.run(["tag", "eval", "--checkpoint", model, "--data", data, "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        #expect((json?["accuracy"] as? Double ?? 0) >= 0.99, "\(e.stdout)")
        #expect(json?["tokens"] as? Int == 6)
        #expect(json?["unseen_tokens"] as? Int == 0)
        #expect(json?["unseen_accuracy"] != nil)
        let input = try write(dir, "in.txt", "the cat runs\n\na dog\r\n")
        let p = try CLI.run(["tag", "predict", "--checkpoint", model, input])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stdout == "the/DET cat/NOUN runs/VERB\n\na/DET dog/NOUN\n", "\(p.stdout)")
    }

    // MARK: Error paths: one line naming file and line, non-zero exit, no checkpoint.

    func expectTrainFails(_ args: [String], mentions: String, output: String) throws {
        let r = try CLI.run(args + ["--output", output] + Self.tinyModel)
        expectCleanError(r, mentions: mentions)
        #expect(!FileManager.default.fileExists(atPath: output), "a failed run must not write \(output)")
    }

    @Test func classifyBadInput() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("never.safetensors").path
        let good = try write(dir, "good.tsv", Self.sentences)
        let empty = try write(dir, "empty.tsv", "")
        try expectTrainFails(["classify", "train", "--train", empty, "--valid", good], mentions: "empty.tsv", output: out)
        let noColumn = try write(dir, "nocol.tsv", "text\tlabel\nx\tpos\n")
        try expectTrainFails(["classify", "train", "--train", noColumn, "--valid", good], mentions: "nocol.tsv:1: no column named 'sentence'", output: out)
        let short = try write(dir, "short.tsv", "sentence\tlabel\nfine\tpos\nbroken row\n")
        try expectTrainFails(["classify", "train", "--train", good, "--valid", short], mentions: "short.tsv:3:", output: out)
        let latin = dir.appendingPathComponent("latin.txt").path
        try Data(Array("1 ok\n0 caf".utf8) + [0xE9] + Array("\n".utf8)).write(to: URL(fileURLWithPath: latin))
        try expectTrainFails(["classify", "train", "--train", latin, "--valid", latin], mentions: "latin.txt:2: invalid UTF-8 at byte offset 10", output: out)
        let ok = try CLI.run(["classify", "train", "--train", latin, "--valid", latin, "--encoding", "latin1", "--steps", "1", "--output", out, "--ensemble", "1"] + Self.tinyModel)
        #expect(ok.status == 0, "\(ok.stderr)")
        let unknown = try write(dir, "unknown.tsv", "sentence\tlabel\ngood\t1\nhmm\tneutral\n")
        let e = try CLI.run(["classify", "eval", "--checkpoint", out, "--data", unknown])
        expectCleanError(e, mentions: "unknown.tsv:3: label 'neutral'")
        let v = try CLI.run(["classify", "train", "--train", good, "--valid", good, "--pooling", "median"])
        expectCleanError(v, mentions: "--pooling")
    }

    @Test func tagBadInput() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("never.safetensors").path
        let good = try write(dir, "good.conllu", Self.conllu)
        let columns = try write(dir, "columns.conllu", "# c\n1\tthe\tthe\tDET\n")
        try expectTrainFails(["tag", "train", "--train", columns, "--valid", good], mentions: "columns.conllu:2:", output: out)
        let id = try write(dir, "id.conllu", "1\tthe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\nx\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n")
        try expectTrainFails(["tag", "train", "--train", good, "--valid", id], mentions: "id.conllu:2: the ID 'x'", output: out)
        let empty = try write(dir, "empty.conllu", "")
        try expectTrainFails(["tag", "train", "--train", empty, "--valid", good], mentions: "empty.conllu", output: out)
        let model = dir.appendingPathComponent("t.safetensors").path
        #expect(try CLI.run(["tag", "train", "--train", good, "--valid", good, "--steps", "1", "--output", model] + Self.tinyModel).status == 0)
        let odd = try write(dir, "odd.conllu", "1\tthe\tthe\tDET\tDT\t_\t0\troot\t_\t_\n2\tdog\tdog\tXYZ\tNN\t_\t1\tdet\t_\t_\n")
        expectCleanError(try CLI.run(["tag", "eval", "--checkpoint", model, "--data", odd]), mentions: "odd.conllu:1: tag 'XYZ'")
        expectCleanError(try CLI.run(["classify", "eval", "--checkpoint", model, "--data", good]), mentions: "expected a text-classifier checkpoint")
    }

    /// `--resume` continues exactly, for every task trainer: 4 steps, then 4 more resumed, give the
    /// weights, optimizer state and weight average of 8 uninterrupted steps (with dropout, word
    /// dropout and averaging on).
    @Test func taskTrainersResumeExactly() throws {
        let dir = CLI.tempDir()
        let tsv = try write(dir, "train.tsv", Self.sentences)
        let conllu = try write(dir, "train.conllu", Self.conllu)
        let series = try write(dir, "series.csv", GenerateForecastCLITests.seriesCSV)
        let names = try write(dir, "names.tsv", (0..<20).map { "\($0 % 2 == 0 ? "A" : "B")\t\($0 % 2 == 0 ? "an" : "bo")\(String(repeating: "a", count: $0 % 5))\n" }.joined())
        let pairs = try write(dir, "pairs.tsv", TranslateCLITests.pairs)
        let common = ["--batch-size", "2", "--eval-every", "2", "--patience", "0", "--quiet", "--threads", "1",
                      "--lr-plateau-factor", "0.5", "--lr-plateau-patience", "0"]
        for (tool, data, extra) in [("classify", tsv, ["--valid", tsv, "--dropout", "0.3", "--ema", "0.9", "--ensemble", "1", "--hidden", "8", "--embedding", "8"]),
                                    ("tag", conllu, ["--valid", conllu, "--dropout", "0.3", "--hidden", "8", "--embedding", "8"]),
                                    ("forecast", series, ["--column", "Value"] + GenerateForecastCLITests.tinyForecast),
                                    ("generate", names, ["--hidden", "8"]),
                                    ("translate", pairs, ["--hidden", "8", "--embedding", "8", "--teacher-forcing", "0.5", "--dropout", "0.2"])] {
            let dataFlag = ["classify": "--train", "tag": "--train", "translate": "--pairs"][tool] ?? "--data"
            let flags = [tool, "train", dataFlag, data] + common + extra
            let whole = dir.appendingPathComponent("\(tool)-whole.safetensors").path
            let split = dir.appendingPathComponent("\(tool)-split.safetensors").path
            let w = try CLI.run(flags + ["--output", whole, "--steps", "8"])
            #expect(w.status == 0, "\(w.stderr)")
            let a = try CLI.run(flags + ["--output", split, "--steps", "4"])
            #expect(a.status == 0, "\(a.stderr)")
            let b = try CLI.run(flags + ["--output", split, "--steps", "8", "--resume", split])
            #expect(b.status == 0, "\(b.stderr)")
            #expect(b.stdout.contains("resumed \(split) at step 4"), "\(b.stdout)")
            let s1 = try SafeTensors.read(path: whole + ".training.safetensors")
            let s2 = try SafeTensors.read(path: split + ".training.safetensors")
            #expect(s1.metadata["step"] == "8" && s2.metadata["step"] == "8")
            #expect(s1.metadata["rng"] == s2.metadata["rng"])
            #expect(Set(s1.tensors.keys) == Set(s2.tensors.keys))
            #expect(s1.tensors.keys.contains("optim.0.exp_avg"))
            for (name, t) in s1.tensors {
                let u = try #require(s2.tensors[name])
                let diff = zip(t.data, u.data).map { abs($0 - $1) }.max() ?? 0
                #expect(t.shape == u.shape && diff <= 1e-6, "\(tool) \(name): max |diff| \(diff)")
            }
            // Asking for no more steps than the state has, or a state that is not there, is a clean error.
            expectCleanError(try CLI.run(flags + ["--output", split, "--steps", "8", "--resume", split]), mentions: "already at step 8")
            expectCleanError(try CLI.run(flags + ["--output", split, "--epochs", "0.01", "--resume", split]), mentions: "--epochs 0.01: the resumed run is already at epoch")
            expectCleanError(try CLI.run(flags + ["--output", split, "--steps", "9", "--resume", data]), mentions: "--resume \(data)")
            expectCleanError(try CLI.run(flags + ["--output", split, "--steps", "9", "--resume", split, "--batch-size", "3"]), mentions: "--batch-size")
            // A model flag that no weight shape shows is refused; a new learning rate is taken, with a warning.
            if let (flag, value, saved) = ["classify": ("--pooling", "last", "max"), "forecast": ("--normalize", "window", "series")][tool] {
                expectCleanError(try CLI.run(flags + ["--output", split, "--steps", "9", "--resume", split, flag, value]),
                                 mentions: "had \(flag.dropFirst(2)) \(saved), this run \(value)")
            }
            if tool == "classify" {   // a flag that changes the data too is named, not reported as other data
                expectCleanError(try CLI.run(flags + ["--output", split, "--steps", "9", "--resume", split, "--lowercase"]),
                                 mentions: "had lowercase false, this run true")
            }
            let lr = try CLI.run(flags + ["--output", split, "--steps", "10", "--resume", split, "--lr", "0.0005"])
            #expect(lr.status == 0 && lr.stderr.contains("warning: --resume: training settings changed from the run being resumed: lr "), "\(tool): \(lr.stderr)")
        }
    }

    /// A run stopped between two validations validates once more at its end; resumed from there,
    /// training goes on as the uninterrupted run's (the same weights, optimizer, counters, patience
    /// and printed means), the extra validation only counting for which model the checkpoint holds.
    /// A run that stopped by patience stops again at once when resumed.
    @Test func resumeBetweenValidationsAndAfterPatience() throws {
        let dir = CLI.tempDir()
        let tsv = try write(dir, "train.tsv", Self.sentences)
        let flags = ["classify", "train", "--train", tsv, "--valid", tsv, "--ensemble", "1", "--batch-size", "2", "--eval-every", "2",
                     "--lr-plateau-factor", "0.5", "--lr-plateau-patience", "0", "--patience", "0", "--lr", "0.05"] + Self.tinyModel
        let whole = dir.appendingPathComponent("whole.safetensors").path, split = dir.appendingPathComponent("split.safetensors").path
        let w = try CLI.run(flags + ["--output", whole, "--steps", "9"])
        let a = try CLI.run(flags + ["--output", split, "--steps", "5"])
        let b = try CLI.run(flags + ["--output", split, "--steps", "9", "--resume", split])
        #expect(w.status == 0 && a.status == 0 && b.status == 0, "\(w.stderr) \(a.stderr) \(b.stderr)")
        let s1 = try SafeTensors.read(path: whole + ".training.safetensors"), s2 = try SafeTensors.read(path: split + ".training.safetensors")
        for key in Set(s1.metadata.keys).union(s2.metadata.keys) where key != "best_accuracy" {
            #expect(s1.metadata[key] == s2.metadata[key], "\(key): \(s1.metadata[key] ?? "none") vs \(s2.metadata[key] ?? "none")")
        }
        #expect(s1.metadata["loss_count"] == "1" && s1.metadata["scheduled_best"] != nil)
        for (name, t) in s1.tensors { #expect(s2.tensors[name]?.data == t.data, "\(name)") }
        // The validation lines of steps 6 and 8 (mean training loss, score, rate) read the same.
        func line(_ out: String, _ step: Int) -> String? {
            out.split(separator: "\n").first { $0.hasPrefix("step \(step) ") }.map { $0.replacingOccurrences(of: #"time \S+|\S+ examples/s|ETA \S+|  saved.*"#, with: "", options: .regularExpression) }
        }
        for step in [6, 8] { #expect(line(w.stdout, step) != nil && line(w.stdout, step) == line(b.stdout, step), "\(w.stdout)\n\(b.stdout)") }

        // Patience: once it has run out, a resumed run with room for more steps stops where it stood.
        let p = dir.appendingPathComponent("p.safetensors").path
        let patient = ["classify", "train", "--train", tsv, "--valid", tsv, "--ensemble", "1", "--batch-size", "2", "--eval-every", "1",
                       "--patience", "1", "--lr", "0.0001"] + Self.tinyModel
        let first = try CLI.run(patient + ["--output", p, "--steps", "60"])
        #expect(first.status == 0 && first.stdout.contains("(stopped by patience)"), "\(first.stdout)")
        let stopped = try SafeTensors.metadata(path: p + ".training.safetensors")["step"] ?? ""
        let again = try CLI.run(patient + ["--output", p, "--steps", "80", "--resume", p])
        #expect(again.status == 0 && again.stdout.contains("done: \(stopped) steps") && again.stdout.contains("(stopped by patience)"), "\(again.stdout)")
        #expect(try SafeTensors.metadata(path: p + ".training.safetensors")["step"] == stopped)
    }

    /// Every task trainer keeps `--report` and `--tensorboard`: the curves of each step, each
    /// validation's score as printed, and a resumed run continues the history in the same folder.
    @Test func taskTrainersKeepAReport() throws {
        let dir = CLI.tempDir()
        let tsv = try write(dir, "train.tsv", Self.sentences)
        let conllu = try write(dir, "train.conllu", Self.conllu)
        let series = try write(dir, "series.csv", GenerateForecastCLITests.seriesCSV)
        let names = try write(dir, "names.tsv", (0..<20).map { "\($0 % 2 == 0 ? "A" : "B")\t\($0 % 2 == 0 ? "an" : "bo")\(String(repeating: "a", count: $0 % 5))\n" }.joined())
        let pairs = try write(dir, "pairs.tsv", TranslateCLITests.pairs)
        let common = ["--batch-size", "2", "--eval-every", "2", "--patience", "0", "--quiet", "--threads", "1"]
        for (tool, data, extra, score, chart) in [("classify", tsv, ["--valid", tsv, "--ensemble", "1", "--hidden", "8", "--embedding", "8"], "val acc ", true),
                                                  ("tag", conllu, ["--valid", conllu, "--hidden", "8", "--embedding", "8"], "val acc ", true),
                                                  ("forecast", series, ["--column", "Value"] + GenerateForecastCLITests.tinyForecast, "val rmse ", true),
                                                  ("generate", names, ["--hidden", "8"], "val loss ", false),
                                                  ("translate", pairs, ["--hidden", "8", "--embedding", "8"], "val bleu ", true)] {
            let dataFlag = ["classify": "--train", "tag": "--train", "translate": "--pairs"][tool] ?? "--data"
            let report = dir.appendingPathComponent("\(tool)-report").path
            let model = dir.appendingPathComponent("\(tool).safetensors").path
            let tb = dir.appendingPathComponent("\(tool)-tb").path
            let flags = [tool, "train", dataFlag, data, "--output", model, "--report", report, "--tensorboard", tb] + common + extra
            let a = try CLI.run(flags + ["--steps", "4"])
            #expect(a.status == 0, "\(a.stderr)")
            let b = try CLI.run(flags + ["--steps", "8", "--resume", model])
            #expect(b.status == 0, "\(b.stderr)")
            let history = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report + "/history.json"))) as? [String: Any])
            let steps = try #require(history["steps"] as? [[Any]]), evaluations = try #require(history["evaluations"] as? [[String: Any]])
            #expect(steps.map { ($0[0] as? NSNumber)?.intValue ?? -1 } == Array(1...8), "\(tool)")
            #expect(steps.allSatisfy { ($0[2] as? NSNumber)?.doubleValue.isFinite == true }, "\(tool): every step's training loss")
            #expect(evaluations.map { ($0["step"] as? NSNumber)?.intValue ?? -1 } == [2, 4, 6, 8], "\(tool)")
            // Each validation's score is the one printed on its line (the loss and RMSE as such, not negated).
            let printed = (a.stdout + b.stdout).split(separator: "\n").compactMap { line -> String? in
                guard let r = line.range(of: score) else { return nil }
                return String(line[r.upperBound...].prefix { $0 != " " })
            }
            let saved = evaluations.compactMap { ($0["validation"] as? NSNumber)?.doubleValue }
            let shown = saved.map { $0 != 0 && abs($0) < 1e-3 && tool == "forecast" ? String(format: "%.4g", $0) : String(format: "%.4f", $0) }
            #expect(printed == shown, "\(tool): \(printed) vs \(saved)")
            let files = try FileManager.default.contentsOfDirectory(atPath: report)
            #expect(files.contains("index.html") && files.contains("loss-steps.svg") && files.contains("speed-time.svg"), "\(files)")
            #expect(files.contains("validation-steps.svg") == chart, "\(tool): the score's own chart when it is not the loss")
            // One event file per run, with the step scalars and the validation score under its name.
            let events = try FileManager.default.contentsOfDirectory(atPath: tb).filter { $0.hasPrefix("events.out.tfevents.") }
            #expect(events.count == 2, "\(tool): \(events)")
            let bytes = try events.map { try Data(contentsOf: URL(fileURLWithPath: tb + "/" + $0)) }.reduce(Data(), +)
            let name = ["classify": "accuracy", "tag": "accuracy", "forecast": "rmse", "generate": "loss", "translate": "bleu"][tool] ?? ""
            for tag in ["train/loss", "train/grad_norm", "validation/" + name] {
                #expect(bytes.range(of: Data(tag.utf8)) != nil, "\(tool): no \(tag)")
            }
            if tool == "classify" && Browser.enabled {   // every chart drawn: 8 steps, 4 validations
                Browser.expectRendered(try Browser.load(report + "/index.html"), minimumPoints: 4, "classify train --report")
            }
        }
        // An ensemble's members report into member-K; a report that would overwrite the output is refused.
        let report = dir.appendingPathComponent("ensemble-report").path
        let e = try CLI.run(["classify", "train", "--train", tsv, "--valid", tsv, "--output", dir.appendingPathComponent("e.safetensors").path,
                             "--ensemble", "2", "--steps", "2", "--report", report] + Self.tinyModel)
        #expect(e.status == 0, "\(e.stderr)")
        for k in 1...2 { #expect(FileManager.default.fileExists(atPath: report + "/member-\(k)/index.html")) }
        let tb = dir.appendingPathComponent("ensemble-tb").path
        let t = try CLI.run(["classify", "train", "--train", tsv, "--valid", tsv, "--output", dir.appendingPathComponent("t.safetensors").path,
                             "--ensemble", "2", "--steps", "2", "--tensorboard", tb] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tb).sorted() == ["member-1", "member-2"])
        expectCleanError(try CLI.run(["tag", "train", "--train", conllu, "--valid", conllu, "--output", report + "/history.json",
                                      "--report", report, "--steps", "2"] + Self.tinyModel), mentions: "--report \(report): would rewrite --output")
    }

    /// `--ensemble 2`: two members under `members.<k>.`, and predict prints the mean of their probabilities.
    @Test func classifyEnsemble() throws {
        let dir = CLI.tempDir()
        let data = try write(dir, "train.tsv", Self.sentences)
        let model = dir.appendingPathComponent("e.safetensors").path
        let t = try CLI.run(["classify", "train", "--train", data, "--valid", data, "--output", model, "--epochs", "3",
                             "--ensemble", "2", "--batch-size", "3", "--lr", "0.02"] + Self.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("ensemble of 2: validation accuracy"), "\(t.stdout)")
        let file = try SafeTensors.read(path: model)
        #expect(file.metadata["ensemble"] == "2")
        // The metadata's accuracy is the ensemble's, as printed; each member's is listed.
        let printed = t.stdout.split(separator: "\n").first { $0.hasPrefix("ensemble of 2") }.flatMap { $0.components(separatedBy: "accuracy ").last?.prefix(6) }
        #expect(file.metadata["valid_accuracy"].flatMap(Double.init).map { String(format: "%.4f", $0) } == printed.map(String.init), "\(file.metadata)")
        #expect(file.metadata["member_valid_accuracy"]?.split(separator: ",").count == 2 && file.metadata["member_steps"]?.split(separator: ",").count == 2)
        #expect(file.tensors["members.0.embedding.weight"] != nil && file.tensors["members.1.embedding.weight"] != nil)
        #expect(file.tensors["embedding.weight"] == nil)
        let members = try TaskCheckpoint.loadClassifiers(path: model)
        #expect(members.count == 2)
        // A blank line stays a blank line in the output.
        let blank = try CLI.run(["classify", "predict", "--checkpoint", model], stdin: "good film\n \t\nbad\n")
        let rows = blank.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(blank.status == 0 && rows.count == 4 && rows[1].isEmpty && !rows[0].isEmpty && !rows[2].isEmpty, "\(blank.stdout)")
        // An empty file is read as empty standard input is: no lines, no output.
        let empty = try write(dir, "empty.txt", "")
        let none = try CLI.run(["classify", "predict", "--checkpoint", model, empty])
        #expect(none.status == 0 && none.stdout.isEmpty && none.stderr.isEmpty, "\(none.stdout) \(none.stderr)")
        #expect(members[0].embedding.weight.value.data != members[1].embedding.weight.value.data)
        let e = try CLI.run(["classify", "eval", "--checkpoint", model, "--data", data, "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        #expect((json?["member_accuracy"] as? [Double])?.count == 2, "\(e.stdout)")
        let input = try write(dir, "in.txt", "very good film\n")
        let p = try CLI.run(["classify", "predict", "--checkpoint", model, input])
        #expect(p.status == 0, "\(p.stderr)")
        let fields = p.stdout.split(separator: "\t")
        let batch = PaddedBatch([members[0].encode("very good film")])
        let mean = zip(members[0].probabilities(batch).data, members[1].probabilities(batch).data).map { ($0 + $1) / 2 }
        let best = mean.indices.max { mean[$0] < mean[$1] } ?? 0
        #expect(String(fields[0]) == members[0].config.labels[best])
        #expect(abs((Double(fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1) - Double(mean[best])) < 1e-3, "\(p.stdout) vs \(mean)")
        expectCleanError(try CLI.run(["classify", "train", "--train", data, "--valid", data, "--output", model, "--ensemble", "2", "--resume", model]), mentions: "--ensemble 2")
        expectCleanError(try CLI.run(["classify", "train", "--train", data, "--valid", data, "--output", model, "--resume", model]), mentions: "ensemble of 2 models")
    }
}
