import Foundation
import Testing
@testable import Recurrent

/// CSV reading, windows, normalisation, baselines and the forecaster's shapes and gradients.
struct ForecastTests {
    // MARK: CSV

    @Test func csvWithCRLFQuotesAndNoFinalNewline() throws {
        let s = try TimeSeriesCSV.parse("\"Month\",\"Passengers\"\r\n\"1949-01\",112\r\n\"1949-02\",118", name: "a.csv", column: "Passengers", dateColumn: "Month")
        #expect(s.values == [112, 118])
        #expect(s.dates == ["1949-01", "1949-02"])
        #expect(s.lines == [2, 3])
        #expect(s.column == "Passengers")
        let lf = try TimeSeriesCSV.parse("Date,Open,Close\n\"1,5\",1,2.5\n\n2,1,3.5\n", name: "b.csv", column: "close")
        #expect(lf.values == [2.5, 3.5])
        #expect(lf.lines == [2, 4], "a blank line is skipped but counted")
        let last = try TimeSeriesCSV.parse("a,b\n1,2\n", name: "c.csv", column: nil)
        #expect(last.values == [2] && last.column == "b")
    }

    @Test func csvErrorsNameFileLineAndColumns() throws {
        func message(_ text: String, column: String? = "Close", missing: MissingValues = .error) -> String {
            do { _ = try TimeSeriesCSV.parse(text, name: "x.csv", column: column, missing: missing); return "" } catch let e as RecurrentError {
                return e.message
            } catch { return "\(error)" }
        }
        #expect(message("Date,Open\n1,2\n") == "x.csv:1: no column named 'Close' (--column); the header has 'Date', 'Open'")
        #expect(message("Date,Close\n1,2\r\n2,abc\r\n").hasPrefix("x.csv:3: 'abc' in column 'Close' is not a number"))
        #expect(message("Date,Close\n1,2\n2,\n").hasPrefix("x.csv:3: the value of 'Close' is missing"))
        #expect(message("Date,Close\n1,2\n2\n").hasPrefix("x.csv:3: 1 field, expected at least 2"))
        // An unquoted decimal comma splits a value in two: refused, not read as its whole part.
        #expect(message("Date,Close\n1,2\n2,193,47\n") == "x.csv:3: 3 fields, the header has 2; an unquoted comma splits a field (quote a field that holds one; write decimals with a point: 193.47)")
        #expect(message("Date,Close,\n1,2\n2,193,47\n").hasPrefix("x.csv:3: 3 fields, the header has 2;"), "a trailing comma in the header adds no width")
        #expect(try TimeSeriesCSV.parse("Date,Close\n1,2,\n2,3, \n", name: "x.csv", column: "Close").values == [2, 3], "empty trailing fields")
        let excel = try TimeSeriesCSV.parse("date,value,\n1,2,\n2,3,\n", name: "x.csv", column: nil)
        #expect(excel.column == "value" && excel.values == [2, 3], "a trailing comma in the header adds no column to pick")
        #expect(message("") == "x.csv: the file is empty")
        #expect(message("Date,Close\r\n") == "x.csv: no data rows under the header")
        #expect(message("Date,Close\n1,\n2,3\n", missing: .previous).hasPrefix("x.csv:2: the first value"))
        // An unclosed quote would swallow the next row; hexadecimal and beyond float32 are refused.
        #expect(message("Date,Close\n1,5\n\"2,6\n3,7\n4,8\n").hasPrefix("x.csv:3: the cell of column 'Date' runs over 4 lines; is a quote left open?"))
        #expect(message("Date,Close\n1,NA\n2,\n", missing: .drop) == "x.csv: every value of 'Close' is missing (--missing drop left none)")
        #expect(message("Date,Close\n1,0x1F\n").hasPrefix("x.csv:2: '0x1F' in column 'Close' is not a number"))
        #expect(message("Date,Close\n1,1e39\n").hasPrefix("x.csv:2: '1e39' in column 'Close' is beyond float32's range"))
        #expect(try TimeSeriesCSV.parse("Date,Close\n1,-1.5e3\n2,+2\n", name: "x.csv", column: "Close").values == [-1500, 2])
        let dropped = try TimeSeriesCSV.parse("Date,Close\n1,5\n2,NA\n3,7\n", name: "x.csv", column: "Close", missing: .drop)
        #expect(dropped.values == [5, 7])
        let filled = try TimeSeriesCSV.parse("Date,Close\n1,5\n2,\n3,7\n", name: "x.csv", column: "Close", missing: .previous)
        #expect(filled.values == [5, 5, 7])
    }

    @Test func realFilesRead() throws {
        let air = try TimeSeriesCSV.read(path: Fixtures.data("airline_passengers/airline-passengers.csv"), column: "Passengers", dateColumn: "Month")
        #expect(air.values.count == 144 && air.values.first == 112 && air.values.last == 432)
        let spx = try TimeSeriesCSV.read(path: Fixtures.data("sp500/sp500.csv"), column: "Close")
        #expect(spx.values.count == 4697)
    }

    // MARK: Windows and scaling

    @Test func splitAndOrigins() {
        let split = SeriesSplit(count: 20, testFraction: 0.2, validFraction: 0.25)
        #expect(split.testStart == 16 && split.validStart == 12)
        #expect(SeriesSplit.origins(in: split.trainPart, window: 4, horizon: 2) == Array(4...10))
        #expect(SeriesSplit.origins(in: split.validPart, window: 4, horizon: 2) == [12, 13, 14])
        #expect(SeriesSplit.origins(in: split.testPart, window: 4, horizon: 3) == [16, 17])
        #expect(SeriesSplit.origins(in: split.testPart, window: 17, horizon: 1) == [17, 18, 19])
        #expect(SeriesSplit.origins(in: 0..<5, window: 5, horizon: 1).isEmpty)
    }

    @Test func normalisationRoundTrips() {
        let values: [Double] = [3, 5, 7, 9, 11, 13]
        let s = WindowScale.of(values[0..<4])
        #expect(abs(s.mean - 6) < 1e-12 && abs(s.scale - 5.0.squareRoot()) < 1e-12)
        for v in values { #expect(abs(s.denormalize(s.normalize(v)) - v) < 1e-5) }
        #expect(WindowScale.of([4.0, 4, 4]).scale == 1, "a constant window keeps scale 1")
        #expect(WindowScale.of([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]).scale == 1, "rounding in the mean is not a deviation")
        // A series in small units is scaled as in large ones (1e-9 was taken as constant).
        for unit in [1.0, 1e-9, 1e-40] {
            let s = WindowScale.of([1.0, 3, 2, 4].map { $0 * unit })
            #expect(abs(s.scale / unit - 1.118033988749895) < 1e-12, "unit \(unit): \(s.scale)")
            #expect(abs(Double(s.normalize(4 * unit)) - 1.3416407) < 1e-6)
        }
        for normalization in ForecastNormalization.allCases {
            var rng = SeededRNG(seed: 1)
            let config = ForecasterConfig(cell: .gru, hiddenSize: 3, numLayers: 1, window: 3, horizon: 2, mode: .direct,
                                          normalization: normalization, seriesScale: WindowScale(mean: 8, scale: 2))
            let model = Forecaster(config: config, rng: &rng)
            let (x, y) = model.examples(values, origins: [3])
            let scale = normalization == .series ? WindowScale(mean: 8, scale: 2) : WindowScale.of(values[0..<3])
            #expect(x[0].map(scale.denormalize).enumerated().allSatisfy { abs($1 - values[$0]) < 1e-5 })
            #expect(y[0].map(scale.denormalize).enumerated().allSatisfy { abs($1 - values[3 + $0]) < 1e-5 })
        }
    }

    // MARK: Baselines

    @Test func baselinesExactOnATinySeries() {
        let y: [Double] = [1, 2, 3, 4, 5, 6, 7, 8]
        #expect(ForecastBaselines.naive(y, origin: 5, horizon: 3) == [5, 5, 5])
        #expect(ForecastBaselines.seasonalNaive(y, origin: 5, horizon: 3, season: 2) == [4, 5, 4])
        #expect(ForecastBaselines.seasonalNaive(y, origin: 6, horizon: 4, season: 3) == [4, 5, 6, 4])
        #expect(ForecastBaselines.seasonalNaive(y, origin: 5, horizon: 2, season: 1) == ForecastBaselines.naive(y, origin: 5, horizon: 2))
        let e = ForecastBaselines.errors([[1, 2], [3]], [[2, 2], [6]])
        #expect(abs(e.rmse - (10.0 / 3).squareRoot()) < 1e-12 && abs(e.mae - 4.0 / 3) < 1e-12 && e.points == 3)
    }

    @Test func scoresUseTheSamePoints() throws {
        let values = (0..<30).map { Double($0 % 5) }
        var rng = SeededRNG(seed: 2)
        let config = ForecasterConfig(cell: .lstm, hiddenSize: 4, numLayers: 1, window: 5, horizon: 2, mode: .direct,
                                      normalization: .series, seriesScale: WindowScale.of(values[0..<24]))
        let model = Forecaster(config: config, rng: &rng)
        let split = SeriesSplit(count: 30, testFraction: 0.2, validFraction: 0.1)
        let scores = try ForecastScores.evaluate(model, values: values, split: split, season: 5, source: "t")
        #expect(scores.origins == 5 && scores.points == 10)
        #expect(scores.seasonalNaiveRMSE == 0 && scores.seasonalNaiveMAE == 0, "a period-5 series is its own seasonal forecast")
        #expect(scores.naiveRMSE > 0)
        #expect(throws: RecurrentError.self) { try ForecastScores.evaluate(model, values: values, split: split, season: 25, source: "t") }
    }

    // MARK: Model

    func model(_ mode: ForecastMode, cell: CellKind = .lstm, layers: Int = 1, seed: UInt64 = 3) -> Forecaster {
        var rng = SeededRNG(seed: seed)
        let config = ForecasterConfig(cell: cell, hiddenSize: 4, numLayers: layers, window: 4, horizon: 3, mode: mode,
                                      normalization: .series, seriesScale: WindowScale(mean: 0, scale: 1))
        return Forecaster(config: config, rng: &rng)
    }

    @Test func directAndRecursiveShapes() {
        let inputs: [[Float]] = [[0.1, 0.2, 0.3, 0.4], [1, 0, -1, 0]]
        for mode in ForecastMode.allCases {
            let m = model(mode)
            #expect(m.head.outputSize == (mode == .direct ? 3 : 1))
            let p = m.predictNormalized(inputs)
            #expect(p.count == 2 && p.allSatisfy { $0.count == 3 })
            let values = (0..<12).map { Double($0) }
            let f = m.forecast(values, origins: [4, 9, 12])
            #expect(f.count == 3 && f.allSatisfy { $0.count == 3 })
        }
    }

    @Test func recursiveFeedsPredictionsBack() {
        // The second recursive value must equal one step from the first prediction appended to the window.
        let m = model(.recursive, cell: .gru)
        let window: [Float] = [0.5, -0.2, 0.1, 0.3]
        let p = m.predictNormalized([window])[0]
        var rng = SeededRNG(seed: 0)
        let x = Tensor(shape: [1, 5, 1], data: window + [p[0]])
        let (out, _, _) = m.rnn.forward(x, state: nil, mode: .inference, rng: &rng)
        let second = m.head.forward(Tensor(shape: [1, 4], data: Array(out.data[16..<20]))).data[0]
        #expect(abs(second - p[1]) < 1e-5)
    }

    @Test(arguments: [ForecastMode.direct, .recursive])
    func gradientsMatchFiniteDifferences(mode: ForecastMode) {
        let m = model(mode, cell: .lstm, layers: 2)
        let inputs: [[Float]] = [[0.1, -0.4, 0.3, 0.9], [1, 0.2, -0.5, 0]]
        let targets: [[Float]] = [[0.5, -0.1, 0.2], [0, 0.3, -0.7]]
        var rng = SeededRNG(seed: 0)
        m.zeroGrad()
        _ = m.trainStep(inputs: inputs, targets: targets, rng: &rng)
        for p in m.parameters {
            let r = GradCheck.parameter(p, eps: 1e-2) { Double(m.loss(inputs: inputs, targets: targets)) }
            #expect(r.ratio <= 1, "\(mode) \(p.name): ratio \(r.ratio), max abs \(r.maxAbs)")
        }
    }

    @Test func checkpointRoundTrip() throws {
        let m = model(.recursive, cell: .gru)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fc-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TaskCheckpoint.save(m, to: path, extra: ["column": "Close"])
        let (loaded, meta) = try TaskCheckpoint.loadForecaster(path: path)
        #expect(loaded.config == m.config)
        #expect(meta["column"] == "Close")
        let file = try SafeTensors.read(path: path)
        #expect(Set(file.tensors.keys) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.weight", "head.bias"])
        let inputs: [[Float]] = [[0.1, 0.2, 0.3, 0.4]]
        #expect(loaded.predictNormalized(inputs) == m.predictNormalized(inputs))
    }

    @Test func plotIsSelfContainedSVG() {
        let svg = ForecastPlot.svg(title: "t <1>", history: .init(label: "history", points: [(0, 1), (1, 2)]),
                                   truth: .init(label: "truth", points: [(2, 3), (3, 2)]),
                                   forecast: .init(label: "forecast", points: [(2, 2.5), (3, 2.2)]), xLabels: ["a", "b", "c", "d"])
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.contains("stroke-dasharray") && svg.contains("t &lt;1&gt;") && svg.contains(">forecast<"))
        #expect(!svg.contains("href") && !svg.contains("<script"))
    }
}
