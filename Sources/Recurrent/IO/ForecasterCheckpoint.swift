/// Checkpoints of the forecaster: the `state_dict` of the module documented on `Forecaster`
/// (`rnn.*`, `head.weight`, `head.bias`) and `__metadata__` with model = "forecaster", cell,
/// num_layers, hidden_size, window, horizon, mode (direct|recursive), normalize (series|window),
/// series_mean and series_std (the training part's statistics), plus what `extra` adds (the CLI
/// stores column, date_column, season, test_fraction, valid_fraction so eval and predict cut the
/// series the same way). Written atomically.
extension TaskCheckpoint {
    public static func save(_ model: Forecaster, to path: String, extra: [String: String] = [:]) throws {
        let s = model.config.seriesScale
        // What loadForecaster accepts, so that no file is written that cannot be read back.
        guard s.mean.isFinite, s.scale.isFinite, model.config.normalization != .series || s.scale > 0 else {
            throw RecurrentError("\(path): the series scale (mean \(s.mean), std \(s.scale)) must be finite, and the std above 0 with series normalisation; not saved")
        }
        try write(model.namedParameters, architecture: forecasterMetadata(model.config), extra: extra, to: path)
    }

    /// The architecture keys of a forecaster checkpoint (also the ONNX export's metadata).
    public static func forecasterMetadata(_ c: ForecasterConfig) -> [String: String] {
        [
            "model": "forecaster", "cell": c.cell.rawValue, "num_layers": String(c.numLayers), "hidden_size": String(c.hiddenSize),
            "window": String(c.window), "horizon": String(c.horizon), "mode": c.mode.rawValue, "normalize": c.normalization.rawValue,
            "series_mean": String(c.seriesScale.mean), "series_std": String(c.seriesScale.scale),
        ]
    }

    /// The model and the checkpoint's whole metadata (for the CLI's stored settings).
    public static func loadForecaster(path: String) throws -> (model: Forecaster, metadata: [String: String]) {
        let file = try SafeTensors.read(path: path)
        let m = Meta(file: file, path: path, kind: "forecaster")
        try m.expectModel()
        try m.checkSizes([["num_layers", "hidden_size", "hidden_size"], ["horizon", "hidden_size"]])
        func number(_ key: String) throws -> Double {
            let s = try m.string(key)
            guard let v = Double(s), v.isFinite else { throw RecurrentError("\(path): metadata \(key) is '\(RecurrentError.shown(s))', expected a number") }
            return v
        }
        let normalization = try m.enumValue("normalize", ForecastNormalization.init(rawValue:))
        // Window normalisation never reads the series' scale (the library may leave it 0).
        func positiveScale() throws -> Double {
            let v = try number("series_std")
            guard v > 0 || normalization != .series else { throw RecurrentError("\(path): metadata series_std is '\(v)', expected a number greater than 0") }
            return v
        }
        let config = ForecasterConfig(
            cell: try m.cell(), hiddenSize: try m.positive("hidden_size"), numLayers: try m.positive("num_layers"),
            window: try m.positive("window"), horizon: try m.positive("horizon"),
            mode: try m.enumValue("mode", ForecastMode.init(rawValue:)),
            normalization: normalization,
            seriesScale: WindowScale(mean: try number("series_mean"), scale: try positiveScale()))
        var rng = SeededRNG(seed: 0)
        let model = Forecaster(config: config, rng: &rng)
        try assign(file, to: model.namedParameters, path: path)
        return (model, file.metadata)
    }
}
