import Foundation
import Testing
@testable import Recurrent

/// `generate` and `forecast` end to end on tiny files, and their error paths.
@Suite(.serialized) struct GenerateForecastCLITests {
    func write(_ dir: URL, _ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// A seasonal series (period 6) with a trend, CRLF and no final newline, as the jbrownlee files.
    static let seriesCSV: String = {
        var rows = ["\"Month\",\"Value\""]
        for i in 0..<60 { rows.append("\"m\(i)\",\(Double(i) * 0.5 + 3 * sin(Double(i) * .pi / 3))") }
        return rows.joined(separator: "\r\n")
    }()

    static let tinyForecast = ["--hidden", "4", "--window", "6", "--horizon", "2", "--quiet", "--threads", "1", "--season", "6"]

    @Test func helpWorks() throws {
        for sub in [["generate"], ["generate", "train"], ["generate", "sample"], ["forecast"], ["forecast", "train"], ["forecast", "eval"], ["forecast", "predict"]] {
            let r = try CLI.run(sub + ["--help"])
            #expect(r.status == 0)
            #expect(r.stdout.contains("USAGE"))
        }
    }

    @Test func forecastTrainEvalPredict() throws {
        let dir = CLI.tempDir()
        let data = try write(dir, "series.csv", Self.seriesCSV)
        for mode in ["direct", "recursive"] {
            let model = dir.appendingPathComponent("\(mode).safetensors").path
            let t = try CLI.run(["forecast", "train", "--data", data, "--column", "Value", "--date-column", "Month", "--output", model,
                                 "--mode", mode, "--normalize", "window", "--epochs", "3"] + Self.tinyForecast)
            #expect(t.status == 0, "\(t.stderr)")
            #expect(t.stdout.contains("val rmse") && t.stdout.contains("saved"))
            let e = try CLI.run(["forecast", "eval", "--checkpoint", model, "--data", data, "--json"])
            #expect(e.status == 0, "\(e.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
            for key in ["rmse", "mae", "naive_rmse", "naive_mae", "seasonal_naive_rmse", "seasonal_naive_mae"] {
                #expect(json?[key] as? Double != nil, "\(key) in \(e.stdout)")
            }
            #expect(json?["points"] as? Int == 22, "12 test values, horizon 2: 11 origins × 2")
            #expect(json?["season"] as? Int == 6)
            let csv = dir.appendingPathComponent("\(mode).csv").path, svg = dir.appendingPathComponent("\(mode).svg").path
            let p = try CLI.run(["forecast", "predict", "--checkpoint", model, "--data", data, "--output", csv, "--svg", svg])
            #expect(p.status == 0, "\(p.stderr)")
            let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
            #expect(rows.first == "index,date,actual,forecast,origin")
            #expect(rows.count == 1 + 12 + 2)
            #expect(rows[1].hasPrefix("48,m48,"))
            #expect(rows.last?.hasPrefix("61,,,") == true)
            #expect(try String(contentsOfFile: svg, encoding: .utf8).contains("</svg>"))
        }
    }

    @Test func generateTrainAndSample() throws {
        let dir = CLI.tempDir()
        let folder = dir.appendingPathComponent("names")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        _ = try write(folder, "Alpha.txt", "anna\nanita\nannie\r\nana\nanja\nanke\nanouk\nantje\nanny\nangela")
        _ = try write(folder, "Beta.txt", "bob\nbert\nbodo\nboris\nbruno\nbernd\nbenno\nbjorn\nbasti\nbela\n")
        let model = dir.appendingPathComponent("g.safetensors").path
        let t = try CLI.run(["generate", "train", "--data", folder.path, "--output", model, "--hidden", "8", "--embedding", "4",
                             "--condition-size", "2", "--steps", "6", "--batch-size", "4", "--eval-every", "3", "--threads", "1"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("val loss") && t.stdout.contains("2 conditions"))
        let g = try CLI.run(["generate", "--checkpoint", model, "--condition", "Beta", "--prime", "b", "--count", "4", "--max-length", "6", "--seed", "3"])
        #expect(g.status == 0, "\(g.stderr)")
        let lines = g.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 4 && lines.allSatisfy { $0.hasPrefix("b") && $0.count <= 6 }, "\(g.stdout)")
        let again = try CLI.run(["generate", "sample", "--checkpoint", model, "--condition", "Beta", "--prime", "b", "--count", "4", "--max-length", "6", "--seed", "3"])
        #expect(again.stdout == g.stdout)
        let tsv = try write(dir, "pairs.tsv", "Alpha\tanna\nBeta\tbob\nAlpha\tanita\nBeta\tbert\n")
        let t2 = try CLI.run(["generate", "train", "--data", tsv, "--output", model, "--hidden", "4", "--steps", "1", "--valid-fraction", "0.5", "--quiet"])
        #expect(t2.status == 0, "\(t2.stderr)")
    }

    func expectFails(_ args: [String], mentions: String, output: String) throws {
        let r = try CLI.run(args + ["--output", output, "--steps", "1", "--threads", "1"])
        expectCleanError(r, mentions: mentions)
        #expect(!FileManager.default.fileExists(atPath: output), "a failed run must not write \(output)")
    }

    @Test func forecastBadInput() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("never.safetensors").path
        let good = try write(dir, "good.csv", Self.seriesCSV)
        try expectFails(["forecast", "train", "--data", good, "--column", "Close"], mentions: "good.csv:1: no column named 'Close' (--column); the header has 'Month', 'Value'", output: out)
        let text = try write(dir, "text.csv", "Date,Close\r\n1,2\r\n2,n/a3\r\n")
        try expectFails(["forecast", "train", "--data", text, "--column", "Close"], mentions: "text.csv:3: 'n/a3' in column 'Close' is not a number", output: out)
        let empty = try write(dir, "empty.csv", "")
        try expectFails(["forecast", "train", "--data", empty], mentions: "empty.csv: the file is empty", output: out)
        try expectFails(["forecast", "train", "--data", good, "--window", "100"], mentions: "--window 100:", output: out)
        try expectFails(["forecast", "train", "--data", good, "--window", "4", "--horizon", "6", "--test-fraction", "0.05"],
                        mentions: "--test-fraction 0.05: the test part of", output: out)
        let gap = try write(dir, "gap.csv", "Date,Close\n1,2\n2,\n")
        try expectFails(["forecast", "train", "--data", gap], mentions: "gap.csv:3: the value of 'Close' is missing", output: out)
        try expectFails(["forecast", "train", "--data", dir.appendingPathComponent("absent.csv").path], mentions: "absent.csv", output: out)
        expectCleanError(try CLI.run(["forecast", "train", "--data", good, "--mode", "sideways"]), mentions: "--mode")
        expectCleanError(try CLI.run(["forecast", "train", "--data", good, "--min-freq", "5"]), mentions: "--min-freq does not apply to forecast train")
        expectCleanError(try CLI.run(["forecast", "predict", "--checkpoint", good, "--data", good, "--output", good]), mentions: "is also --checkpoint")
        // eval and predict: a generator checkpoint is refused; a too-short series is named.
        let model = dir.appendingPathComponent("f.safetensors").path
        #expect(try CLI.run(["forecast", "train", "--data", good, "--output", model, "--steps", "1"] + Self.tinyForecast).status == 0)
        let short = try write(dir, "short.csv", "Month,Value\n1,2\n2,3\n")
        expectCleanError(try CLI.run(["forecast", "eval", "--checkpoint", model, "--data", short]), mentions: "short.csv: 2 values, but the model's window is 6")
        let csv = dir.appendingPathComponent("p.csv").path
        expectCleanError(try CLI.run(["forecast", "predict", "--checkpoint", model, "--data", short, "--output", csv]), mentions: "short.csv")
        expectCleanError(try CLI.run(["forecast", "predict", "--checkpoint", model, "--data", good, "--output", csv, "--svg", dir.path]),
                         mentions: "--svg \(dir.path): is a folder")
        #expect(!FileManager.default.fileExists(atPath: csv))
        #expect(!FileManager.default.fileExists(atPath: csv))
        expectCleanError(try CLI.run(["forecast", "eval", "--checkpoint", model, "--data", good, "--season", "59"]), mentions: "--season 59")
        // Stored defaults that no flag would pass are named as the checkpoint's.
        let saved = try SafeTensors.read(path: model)
        for (key, value, expected) in [("season", "-3", "a positive integer"), ("test_fraction", "1.5", "a number in (0, 1)"),
                                       ("missing", "bogus", "error, drop or previous"), ("series_std", "-5", "greater than 0")] {
            var meta = saved.metadata
            meta[key] = value
            let edited = dir.appendingPathComponent("edited.safetensors").path
            try SafeTensors.write(saved.order.map { ($0, saved.tensors[$0]!) }, metadata: meta, to: edited)
            expectCleanError(try CLI.run(["forecast", "eval", "--checkpoint", edited, "--data", good]), mentions: "metadata \(key) is")
            expectCleanError(try CLI.run(["forecast", "eval", "--checkpoint", edited, "--data", good]), mentions: expected)
        }
        // --missing is saved: eval accepts the gaps training accepted, unless told otherwise.
        let gaps = try write(dir, "gaps.csv", "Month,Value\n" + (0..<30).map { "\($0),\($0 % 7 == 3 ? "" : String($0 % 5))" }.joined(separator: "\n"))
        let filled = dir.appendingPathComponent("filled.safetensors").path
        #expect(try CLI.run(["forecast", "train", "--data", gaps, "--missing", "previous", "--output", filled, "--steps", "1"] + Self.tinyForecast).status == 0)
        #expect(try CLI.run(["forecast", "eval", "--checkpoint", filled, "--data", gaps]).status == 0)
        expectCleanError(try CLI.run(["forecast", "eval", "--checkpoint", filled, "--data", gaps, "--missing", "error"]), mentions: "gaps.csv:5:")
    }

    @Test func generateBadInput() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("never.safetensors").path
        let emptyFolder = dir.appendingPathComponent("nothing")
        try FileManager.default.createDirectory(at: emptyFolder, withIntermediateDirectories: true)
        try expectFails(["generate", "train", "--data", emptyFolder.path], mentions: "nothing: the folder holds no .txt files", output: out)
        let empty = try write(dir, "empty.tsv", "")
        try expectFails(["generate", "train", "--data", empty], mentions: "empty.tsv", output: out)
        let short = try write(dir, "short.tsv", "Alpha\tanna\nBeta\n")
        try expectFails(["generate", "train", "--data", short], mentions: "short.tsv:2:", output: out)
        let tsv = try write(dir, "pairs.tsv", "Alpha\tanna\nBeta\tbob\nAlpha\tanita\nBeta\tbert\n")
        let model = dir.appendingPathComponent("g.safetensors").path
        #expect(try CLI.run(["generate", "train", "--data", tsv, "--output", model, "--hidden", "4", "--steps", "1", "--valid-fraction", "0.5", "--quiet"]).status == 0)
        expectCleanError(try CLI.run(["generate", "--checkpoint", model, "--condition", "Gamma"]), mentions: "--condition 'Gamma' is not one the model knows (Alpha, Beta)")
        expectCleanError(try CLI.run(["generate", "train", "--data", tsv, "--max-vocab", "10"]), mentions: "--max-vocab does not apply to generate train")
        // A checkpoint written into the folder of <Class>.txt files would be read as data, or replace one.
        expectCleanError(try CLI.run(["generate", "train", "--data", emptyFolder.path, "--output", emptyFolder.appendingPathComponent("Alpha.txt").path]),
                         mentions: "is inside --data's folder")
        // Commands that read no folders say so first, not that the output is inside the folder.
        expectCleanError(try CLI.run(["train", "--data", emptyFolder.path, "--output", emptyFolder.appendingPathComponent("m.safetensors").path]),
                         mentions: "--data \(emptyFolder.path): is a folder, expected a file")
        expectCleanError(try CLI.run(["forecast", "train", "--data", emptyFolder.path, "--output", out]),
                         mentions: "--data \(emptyFolder.path): is a folder, expected a file")
        expectCleanError(try CLI.run(["generate", "--checkpoint", model, "--condition", "Alpha", "--prime", "anna", "--max-length", "3"]),
                         mentions: "more than --max-length 3 allows")
        expectCleanError(try CLI.run(["generate", "--checkpoint", model, "--condition", "Alpha", "--prime", "z"]), mentions: "--prime 'z'")
        expectCleanError(try CLI.run(["generate", "--checkpoint", model, "--condition", "Alpha", "--count", "0"]), mentions: "--count")
        expectCleanError(try CLI.run(["forecast", "eval", "--checkpoint", model, "--data", tsv]), mentions: "expected a forecaster checkpoint")
    }

    /// The optimiser, learning-rate, clipping and run flags of `recurrent train` (issue 5: every
    /// `... train` takes them where they apply).
    static let trainFlags = ["--optimizer", "--lr", "--momentum", "--nesterov", "--weight-decay", "--beta1", "--beta2", "--alpha", "--eps",
                             "--lr-decay", "--lr-decay-rate", "--lr-decay-every", "--lr-decay-after", "--clip", "--clip-value",
                             "--steps", "--epochs", "--minutes", "--eval-every", "--output", "--resume", "--seed", "--quiet", "--threads"]

    /// Whether a --help text lists `flag` as an option of its own.
    static func lists(_ help: String, _ flag: String) -> Bool { help.contains("\n  \(flag) ") || help.contains("\n  \(flag)\n") }

    @Test func taskTrainersTakeTheTrainingFlagsOfTrain() throws {
        let train = try CLI.run(["train", "--help"])
        for flag in Self.trainFlags { #expect(Self.lists(train.stdout, flag), "train \(flag)") }
        for tool in ["translate", "generate", "forecast", "classify", "tag"] {
            let help = try CLI.run([tool, "train", "--help"])
            for flag in Self.trainFlags { #expect(Self.lists(help.stdout, flag), "\(tool) train \(flag)") }
        }
        // They act: step decay after two epochs at the base rate halves it at the third (char-rnn's
        // learning_rate_decay_after); element clipping is on.
        let dir = CLI.tempDir()
        let data = try write(dir, "series.csv", Self.seriesCSV)
        let model = dir.appendingPathComponent("f.safetensors").path
        let r = try CLI.run(["forecast", "train", "--data", data, "--output", model, "--epochs", "3", "--patience", "0", "--lr", "0.01",
                             "--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--lr-decay", "step", "--lr-decay-rate", "0.5",
                             "--lr-decay-after", "2", "--clip-value", "0.01"] + Self.tinyForecast)
        #expect(r.status == 0, "\(r.stderr)")
        let rates = r.stdout.split(separator: "\n").filter { $0.contains("val rmse") }.compactMap { $0.components(separatedBy: "  lr ").last?.prefix(8) }
        #expect(rates == ["1.00e-02", "1.00e-02", "5.00e-03"], "\(r.stdout)")
        // The same progress line as `recurrent train`: the same fields in the same order.
        func fields(_ line: Substring) -> [String] {
            line.components(separatedBy: "  ").map { $0.hasSuffix("/s") ? "rate" : String($0.split(separator: " ").first ?? "") }
        }
        let text = try write(dir, "text.txt", String(repeating: "abcdefgh ", count: 60))
        let lm = try CLI.run(["train", "--data", text, "--output", dir.appendingPathComponent("lm.safetensors").path, "--hidden", "4", "--embedding", "4",
                              "--layers", "1", "--batch-size", "2", "--seq-len", "8", "--steps", "2", "--eval-every", "2", "--threads", "1"])
        let lmLine = try #require(lm.stdout.split(separator: "\n").first { $0.contains("  val ") && $0.hasPrefix("step 2 ") })
        let taskLine = try #require(r.stdout.split(separator: "\n").first { $0.contains("  val rmse ") })
        #expect(fields(lmLine).prefix(9) == fields(taskLine).prefix(9), "\(lmLine)\n\(taskLine)")
        #expect(fields(taskLine).prefix(9) == ["step", "epoch", "time", "train", "val", "lr", "|g|", "rate", "ETA"])
        let meta = try SafeTensors.read(path: model).metadata
        #expect(meta["lr_decay"] == "step" && meta["clip_value"] == "0.01" && meta["nesterov"] == "true" && meta["lr_decay_after"] == "2")
        expectCleanError(try CLI.run(["forecast", "train", "--data", data, "--optimizer", "sgd", "--nesterov"]), mentions: "--nesterov needs --momentum")
        expectCleanError(try CLI.run(["forecast", "train", "--data", data, "--nesterov"]), mentions: "--nesterov applies to --optimizer sgd only")
        expectCleanError(try CLI.run(["generate", "train", "--data", data, "--lr-decay", "cosine"]), mentions: "--lr-decay must be none, step or exponential")
    }

    @Test func forecastTrainNamesHorizonAndSeasonThatDoNotFit() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("never.safetensors").path
        let good = try write(dir, "good.csv", Self.seriesCSV)
        try expectFails(["forecast", "train", "--data", good, "--window", "6", "--horizon", "1000"], mentions: "--horizon 1000", output: out)
        // 60 values, 12 tested: a season of 49 cannot be scored by forecast eval, so training refuses it.
        try expectFails(["forecast", "train", "--data", good, "--window", "6", "--season", "49"], mentions: "--season 49", output: out)
    }

    @Test func generateRunsLargeCountsInBoundedBatches() throws {
        let dir = CLI.tempDir()
        let tsv = try write(dir, "pairs.tsv", "Alpha\tanna\nBeta\tbob\nAlpha\tanita\nBeta\tbert\n")
        let model = dir.appendingPathComponent("g.safetensors").path
        #expect(try CLI.run(["generate", "train", "--data", tsv, "--output", model, "--hidden", "4", "--steps", "1", "--valid-fraction", "0.5", "--quiet"]).status == 0)
        let args = ["generate", "--checkpoint", model, "--condition", "Alpha", "--max-length", "3", "--seed", "5", "--threads", "1"]
        let many = try CLI.run(args + ["--count", "2500"]), batch = try CLI.run(args + ["--count", "1000"])
        #expect(many.status == 0, "\(many.stderr)")
        let lines = many.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 2500)
        // Sampled 1,000 at a time (memory stays bounded for any --count): the first batch is --count 1000's.
        #expect(many.stdout.hasPrefix(batch.stdout) && batch.stdout.split(separator: "\n", omittingEmptySubsequences: false).count == 1001)
    }
}
