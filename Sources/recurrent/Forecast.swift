import ArgumentParser
import Foundation
import Recurrent

/// `recurrent forecast train|eval|predict`: time-series forecasting from a CSV column.
struct Forecast: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forecast a CSV column: windows of past values → the next values, directly or by feeding predictions back.",
        subcommands: [ForecastTrain.self, ForecastEval.self, ForecastPredict.self])
}

extension TaskDefaults {
    /// `forecast train`.
    static let forecaster = TaskDefaults(batchSize: 32, lr: 2e-3, minFreq: 1, patience: 5, ema: 0)
}

/// Where the series comes from.
struct SeriesOptions: ParsableArguments {
    @Option(help: "CSV file with a header row (CRLF or LF; quoted fields allowed, one line each).") var data: String
    @Option(help: "The column to forecast (default: train: the last named column; eval/predict: the checkpoint's).") var column: String?
    @Option(name: .customLong("date-column"), help: "A column of labels (dates) for the output CSV and the plot (default: eval/predict: the checkpoint's).") var dateColumn: String?
    @Option(help: "Empty or NA values: error (stop and name the line), drop (leave the row out) or previous (repeat the last value) (default: train: error; eval/predict: the checkpoint's).") var missing: String?

    func validate() throws {
        if let m = missing, MissingValues(rawValue: m) == nil { throw ValidationError("--missing must be error, drop or previous, got '\(m)'") }
    }

    /// The policy in force: the flag, else `stored` (a checkpoint's), else `error`.
    func missingValues(stored: String? = nil) -> MissingValues { MissingValues(rawValue: missing ?? stored ?? "error") ?? .error }

    func read(defaultColumn: String? = nil, defaultDateColumn: String? = nil, defaultMissing: String? = nil) throws -> TimeSeries {
        try TimeSeriesCSV.read(path: data, column: column ?? defaultColumn, dateColumn: dateColumn ?? defaultDateColumn,
                               missing: missingValues(stored: defaultMissing))
    }
}

func validateFraction(_ value: Double, _ flag: String) throws {
    if !(value > 0 && value < 1) { throw ValidationError("\(flag) must be in (0, 1), got \(value)") }
}

struct ForecastTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a forecaster: window → LSTM/GRU/RNN → linear → the next --horizon values (MSE).",
        discussion: """
        The series is split by time: the last --test-fraction is kept for forecast eval, and the \
        last --valid-fraction of the rest validates every epoch (or --eval-every steps) by RMSE in \
        the series' units; the checkpoint at --output is written atomically whenever that RMSE \
        improves, and training stops after --patience validations without improvement. \
        --mode direct predicts all --horizon values from the last state; --mode recursive trains a \
        one-step model with teacher forcing and feeds each prediction back as the next input. \
        Normalisation (--normalize series|window) and the split settings are saved in the checkpoint.
        """)

    @OptionGroup var series: SeriesOptions
    @Option(help: "Checkpoint to write.") var output = "forecaster.safetensors"
    @Option(help: "Input steps per window.") var window = 24
    @Option(help: "Values predicted per window.") var horizon = 1
    @Option(help: "direct (a linear head outputs all --horizon values) or recursive (one step at a time, fed back).") var mode = "direct"
    @Option(help: "Scaling: series (mean/std of the training part) or window (each window by its own mean/std).") var normalize = "series"
    @Option(help: "Cell: lstm, gru, rnn-tanh or rnn-relu.") var cell = "lstm"
    @Option(help: "Hidden units per layer.") var hidden = 32
    @Option(help: "Recurrent layers.") var layers = 1
    @Option(help: "Dropout between recurrent layers, in [0, 1).") var dropout: Float = 0
    @Option(name: .customLong("test-fraction"), help: "The last share of the series kept for testing.") var testFraction = 0.2
    @Option(name: .customLong("valid-fraction"), help: "The last share of the remaining series used for validation (early stopping).") var validFraction = 0.1
    @Option(help: "Season length for the seasonal-naive baseline of forecast eval (stored; 12 for monthly data, 365 for daily temperatures; 1 = naive).") var season = 1
    @OptionGroup var training: TaskTrainingFlags
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if ForecastMode(rawValue: mode) == nil { throw ValidationError("--mode must be direct or recursive, got '\(mode)'") }
        if ForecastNormalization(rawValue: normalize) == nil { throw ValidationError("--normalize must be series or window, got '\(normalize)'") }
        if CellKind(name: cell) == nil { throw ValidationError("--cell must be lstm, gru, rnn-tanh or rnn-relu, got '\(cell)'") }
        try training.rejectVocabularyFlags(["--min-freq": training.minFreqFlag != nil, "--max-vocab": training.maxVocab != nil, "--lowercase": training.lowercase],
                                           tool: "forecast train (a series has no vocabulary)")
        for (name, value) in [("--window", window), ("--horizon", horizon), ("--hidden", hidden), ("--layers", layers), ("--season", season)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        var size = ModelSize(flags: [("--layers", layers), ("--hidden", hidden), ("--window", window), ("--horizon", horizon)])
        size.addRecurrent(cell: cell, input: 1, hidden: hidden, layers: layers)
        size.activations = 32 * Double(window) * Double(layers) * Double(hidden) * 8
        try size.check()
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        try validateFraction(testFraction, "--test-fraction")
        try validateFraction(validFraction, "--valid-fraction")
    }

    func run() throws {
        compute.apply()
        let started = Date()
        try ensureTrainingOutput(output, inputs: [("--data", series.data)], report: training.report)
        let s = try series.read()
        let values = s.values, n = values.count
        let split = SeriesSplit(count: n, testFraction: testFraction, validFraction: validFraction)
        if window + horizon > split.validStart {
            throw RecurrentError("--window \(window)\(horizon > 1 ? " --horizon \(horizon)" : ""): \(s.source) has \(n) values, of which the training part holds \(split.validStart); it needs more than --window + --horizon = \(window + horizon) (lower --window or the fractions)")
        }
        if season > split.testStart {
            throw RecurrentError("--season \(season): \(s.source) has \(split.testStart) values before the test part; the seasonal-naive baseline needs a full season of them")
        }
        let trainOrigins = SeriesSplit.origins(in: split.trainPart, window: window, horizon: horizon)
        let validOrigins = SeriesSplit.origins(in: split.validPart, window: window, horizon: horizon)
        if validOrigins.isEmpty {
            throw RecurrentError("--valid-fraction \(validFraction): the validation part of \(s.source) (\(split.validPart.count) values) is shorter than --horizon \(horizon)")
        }
        if SeriesSplit.origins(in: split.testPart, window: window, horizon: horizon).isEmpty {   // else eval could never score it
            throw RecurrentError("--test-fraction \(testFraction): the test part of \(s.source) (\(split.testPart.count) values) is shorter than --horizon \(horizon)")
        }
        let config = ForecasterConfig(cell: CellKind(name: cell) ?? .lstm, hiddenSize: hidden, numLayers: layers, window: window,
                                      horizon: horizon, mode: ForecastMode(rawValue: mode) ?? .direct,
                                      normalization: ForecastNormalization(rawValue: normalize) ?? .series,
                                      seriesScale: WindowScale.of(values[split.trainPart]), dropout: dropout)
        var rng = SeededRNG(seed: training.seed)
        let model = Forecaster(config: config, rng: &rng)
        let (trainX, trainY) = model.examples(values, origins: trainOrigins)
        let validTruth = validOrigins.map { Array(values[$0..<($0 + horizon)]) }

        Console.line("model: \(config.cell.cliName) \(layers)×\(hidden), \(mode), window \(window), horizon \(horizon), normalize \(normalize), \(Format.grouped(Double(model.parameterCount))) parameters; kernels \(GEMM.isa), \(Threading.count) thread\(Threading.count == 1 ? "" : "s")")
        Console.line("data: \(s.source) column '\(s.column)', \(n) values: \(trainOrigins.count) training windows, \(validOrigins.count) validation windows, test part \(split.testPart.count) values")

        let trainer = TaskTrainer(parameters: model.parameters, lengths: trainX.map(\.count), options: training.options(.forecaster, data: DataFingerprint.of([values], trainOrigins)))
        var settings = training.metadata(.forecaster).merging([
            "column": s.column, "season": String(season), "test_fraction": String(testFraction), "valid_fraction": String(validFraction),
            "dropout": String(dropout), "missing": series.missingValues().rawValue,
        ]) { $1 }
        if let d = series.dateColumn { settings["date_column"] = d }
        try training.restoreIfResuming(trainer, architecture: TaskCheckpoint.forecasterMetadata(config), settings: settings, load: { _ = try TaskCheckpoint.loadForecaster(path: $0) })
        var saved = false
        try runTaskTrainer(trainer, quiet: training.quiet, unit: "windows", output: output, metric: .rmse,
            folders: try training.monitorFolders(member: 0, of: 1), title: "forecast train --data \(series.data)",
            step: { batch, rng in model.trainStep(inputs: batch.map { trainX[$0] }, targets: batch.map { trainY[$0] }, rng: &rng) },
            validate: { -ForecastBaselines.errors(model.forecast(values, origins: validOrigins), validTruth).rmse },
            save: { step, score in
                let extra = settings.merging(["step": String(step), "valid_rmse": String(-score)]) { $1 }
                try TaskCheckpoint.save(model, to: output, extra: extra)
                saved = true
            })
        let best = trainer.bestAccuracy.map { "best validation RMSE \(Format.significant(-$0)); " } ?? ""
        Console.line("done: \(trainer.step) steps in \(Format.duration(Date().timeIntervalSince(started))) (stopped by \(trainer.stopReason)); \(best)checkpoint \(saved ? output : "not written")")
    }
}

/// A checkpoint and the series it is applied to, cut as at training time unless flags override.
struct LoadedForecast {
    var model: Forecaster
    var series: TimeSeries
    var split: SeriesSplit
    var season: Int

    init(checkpoint: String, series options: SeriesOptions, testFraction: Double?, season seasonFlag: Int?) throws {
        let (model, meta) = try TaskCheckpoint.loadForecaster(path: checkpoint)
        self.model = model
        // The stored defaults are checked as the flags are, naming the checkpoint.
        func bad(_ key: String, _ expected: String) -> RecurrentError {
            RecurrentError("\(checkpoint): metadata \(key) is '\(RecurrentError.shown(meta[key] ?? ""))', expected \(expected)")
        }
        if let m = meta["missing"], MissingValues(rawValue: m) == nil { throw bad("missing", "error, drop or previous") }
        let storedTest = try meta["test_fraction"].map { s -> Double in
            guard let v = Double(s), v > 0, v < 1 else { throw bad("test_fraction", "a number in (0, 1)") }
            return v
        }
        let storedSeason = try meta["season"].map { s -> Int in
            guard let v = Int(s), v >= 1 else { throw bad("season", "a positive integer") }
            return v
        }
        series = try options.read(defaultColumn: meta["column"], defaultDateColumn: meta["date_column"], defaultMissing: meta["missing"])
        let test = testFraction ?? storedTest ?? 0.2
        split = SeriesSplit(count: series.values.count, testFraction: test, validFraction: 0)
        season = seasonFlag ?? storedSeason ?? 1
        let N = model.config.window
        if series.values.count <= N {
            throw RecurrentError("\(series.source): \(series.values.count) values, but the model's window is \(N) (it needs more values than that)")
        }
    }
}

struct ForecastEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "RMSE and MAE on the test part (rolling origin, every step), with naive and seasonal-naive baselines on the same points.")

    @Option(help: "Forecaster checkpoint from forecast train.") var checkpoint: String
    @OptionGroup var series: SeriesOptions
    @Option(name: .customLong("test-fraction"), help: "The last share of the series to score (default: the checkpoint's).") var testFraction: Double?
    @Option(help: "Season length of the seasonal-naive baseline (default: the checkpoint's).") var season: Int?
    @Flag(help: "Print one JSON object: rmse, mae, naive_rmse, naive_mae, seasonal_naive_rmse, seasonal_naive_mae, points, origins, horizon, season.") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let t = testFraction { try validateFraction(t, "--test-fraction") }
        if let s = season, s < 1 { throw ValidationError("--season must be a positive integer, got \(s)") }
    }

    func run() throws {
        compute.apply()
        let loaded = try LoadedForecast(checkpoint: checkpoint, series: series, testFraction: testFraction, season: season)
        let scores = try ForecastScores.evaluate(loaded.model, values: loaded.series.values, split: loaded.split, season: loaded.season, source: loaded.series.source)
        let H = loaded.model.config.horizon
        if json {
            Console.line(jsonObject([("rmse", scores.rmse), ("mae", scores.mae), ("naive_rmse", scores.naiveRMSE), ("naive_mae", scores.naiveMAE),
                                     ("seasonal_naive_rmse", scores.seasonalNaiveRMSE), ("seasonal_naive_mae", scores.seasonalNaiveMAE),
                                     ("points", scores.points), ("origins", scores.origins), ("horizon", H), ("season", loaded.season)]))
            return
        }
        Console.line("\(loaded.series.source) column '\(loaded.series.column)': \(scores.origins) origins × horizon \(H) = \(scores.points) points")
        Console.line("model           RMSE \(Format.fixed(scores.rmse))  MAE \(Format.fixed(scores.mae))")
        Console.line("naive           RMSE \(Format.fixed(scores.naiveRMSE))  MAE \(Format.fixed(scores.naiveMAE))")
        Console.line("seasonal naive  RMSE \(Format.fixed(scores.seasonalNaiveRMSE))  MAE \(Format.fixed(scores.seasonalNaiveMAE))  (season \(loaded.season))")
    }
}

struct ForecastPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Write forecasts over the test part and past the end as CSV, and optionally an SVG plot of history, truth and forecast.",
        discussion: """
        The test part is forecast from origins --horizon steps apart (each test value is predicted \
        once, from the latest origin at or before it), then --horizon values after the last one. \
        The CSV has the columns index, date, actual, forecast, origin (actual is empty past the end).
        """)

    @Option(help: "Forecaster checkpoint from forecast train.") var checkpoint: String
    @OptionGroup var series: SeriesOptions
    @Option(help: "CSV file to write.") var output: String
    @Option(help: "SVG plot to write as well.") var svg: String?
    @Option(name: .customLong("test-fraction"), help: "The last share of the series to forecast (default: the checkpoint's).") var testFraction: Double?
    @Option(help: "History values shown before the test part in the plot (default: three times the test part).") var history: Int?
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let t = testFraction { try validateFraction(t, "--test-fraction") }
        if let h = history, h < 0 { throw ValidationError("--history must be zero or more, got \(h)") }
    }

    func run() throws {
        compute.apply()
        let inputs = [("--checkpoint", checkpoint), ("--data", series.data)]
        try ensureWritable(output, inputs: inputs)
        if let svg { try ensureWritable(svg, flag: "--svg", inputs: inputs + [("--output", output)]) }
        let loaded = try LoadedForecast(checkpoint: checkpoint, series: series, testFraction: testFraction, season: nil)
        let values = loaded.series.values, n = values.count, H = loaded.model.config.horizon, N = loaded.model.config.window
        let start = max(loaded.split.testStart, N)
        var origins = Array(stride(from: start, to: n, by: H))
        origins.append(n)
        let forecasts = loaded.model.forecast(values, origins: origins)
        var rows: [(index: Int, forecast: Double, origin: Int)] = []
        for (t, f) in zip(origins, forecasts) {
            for (h, v) in f.enumerated() where t == n || t + h < n { rows.append((t + h, v, t)) }
        }
        let dates = loaded.series.dates
        var csv = "index,date,actual,forecast,origin\n"
        for r in rows {
            let date = r.index < n ? dates[r.index] : ""
            let actual = r.index < n ? String(values[r.index]) : ""
            csv += "\(r.index),\(csvField(date)),\(actual),\(r.forecast),\(r.origin)\n"
        }
        var files: [(pieces: [Data], path: String)] = [([Data(csv.utf8)], output)]
        if let svg {
            let shown = history ?? 3 * (n - start)
            let from = max(0, start - shown)
            let plot = ForecastPlot.svg(
                title: "\(URL(fileURLWithPath: loaded.series.source).lastPathComponent): \(loaded.series.column), window \(N), horizon \(H) (\(loaded.model.config.mode.rawValue))",
                history: .init(label: "history", points: (from...start).map { ($0, values[$0]) }),  // meets the truth line
                truth: .init(label: "truth (test part)", points: (start..<n).map { ($0, values[$0]) }),
                forecast: .init(label: "forecast", points: rows.map { ($0.index, $0.forecast) }),
                xLabels: dates)
            files.append(([Data(plot.utf8)], svg))
        }
        // Written together: a failure (a full disk) leaves neither file half-updated.
        try AtomicFile.write(files: files)
        Console.wrote(output, "wrote \(output): \(rows.count) forecasts (\(rows.count - H) over the test part from index \(start), \(H) past the end)")
        if let svg { Console.wrote(svg, "wrote \(svg)") }
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
func csvField(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return s }
    return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
