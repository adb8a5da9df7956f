import Foundation
import Testing
@testable import Recurrent

/// The ONNX export, read back by a protobuf reader written here and run by an evaluator of the
/// operators it uses, written from the ONNX operator documentation (LSTM gates i,o,f,c; GRU z,r,h
/// with linear_before_reset; RNN with its activation), not from the exporter. Against ONNX Runtime
/// itself: `scripts/check_onnx.py` (needs Python).
@Suite struct ONNXExportTests {
    // MARK: a protobuf reader

    /// A message's fields in order: (field number, varint value or length-delimited bytes).
    struct Fields {
        var entries: [(field: Int, varint: UInt64?, bytes: Data?)] = []

        /// Reads one varint of `b` at `i`.
        static func varint(_ b: [UInt8], _ i: inout Int) throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < b.count, shift < 64 else { throw ONNXReadError.truncated }
                let byte = b[i]
                i += 1
                v |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return v }
                shift += 7
            }
        }

        init(_ data: Data) throws {
            let b = [UInt8](data)
            var i = 0
            while i < b.count {
                let key = try Fields.varint(b, &i)
                let field = Int(key >> 3)
                switch key & 7 {
                case 0: entries.append((field, try Fields.varint(b, &i), nil))
                case 2:
                    let n = Int(try Fields.varint(b, &i))
                    guard n >= 0, i + n <= b.count else { throw ONNXReadError.truncated }
                    entries.append((field, nil, Data(b[i..<(i + n)])))
                    i += n
                default: throw ONNXReadError.wireType(Int(key & 7))
                }
            }
        }

        func all(_ f: Int) -> [Data] { entries.filter { $0.field == f }.compactMap { $0.bytes } }
        func strings(_ f: Int) -> [String] { all(f).map { String(decoding: $0, as: UTF8.self) } }
        func string(_ f: Int) -> String? { strings(f).first }
        func int(_ f: Int) -> Int64? { entries.first { $0.field == f && $0.varint != nil }.map { Int64(bitPattern: $0.varint!) } }
        /// Repeated int64, packed or not.
        func ints(_ f: Int) throws -> [Int64] {
            var out: [Int64] = []
            for e in entries where e.field == f {
                if let v = e.varint { out.append(Int64(bitPattern: v)) }
                if let d = e.bytes {
                    let b = [UInt8](d)
                    var i = 0
                    while i < b.count { out.append(Int64(bitPattern: try Fields.varint(b, &i))) }
                }
            }
            return out
        }
    }

    enum ONNXReadError: Error { case truncated, wireType(Int), unsupported(String) }

    struct Value {
        var shape: [Int]
        var floats: [Float] = []
        var ints: [Int64] = []
    }

    struct Node {
        var op: String
        var inputs: [String]
        var outputs: [String]
        var intAttributes: [String: Int64]
        var stringsAttributes: [String: [String]]
    }

    struct Graph {
        var nodes: [Node] = []
        var initializers: [String: Value] = [:]
        var inputs: [String] = []
        var outputs: [String] = []
        var opset: Int64 = 0
        var metadata: [String: String] = [:]
    }

    static func read(_ data: Data) throws -> Graph {
        let model = try Fields(data)
        var g = Graph()
        for op in model.all(8) { g.opset = try Fields(op).int(2) ?? 0 }
        for m in model.all(14) {
            let f = try Fields(m)
            g.metadata[f.string(1) ?? ""] = f.string(2) ?? ""
        }
        guard let graphData = model.all(7).first else { throw ONNXReadError.unsupported("no graph") }
        let graph = try Fields(graphData)
        for n in graph.all(1) {
            let f = try Fields(n)
            var ints: [String: Int64] = [:], strings: [String: [String]] = [:]
            for a in f.all(5) {
                let af = try Fields(a)
                let name = af.string(1) ?? ""
                if let i = af.int(3) { ints[name] = i }
                if !af.strings(9).isEmpty { strings[name] = af.strings(9) }
            }
            g.nodes.append(Node(op: f.string(4) ?? "", inputs: f.strings(1), outputs: f.strings(2), intAttributes: ints, stringsAttributes: strings))
        }
        for t in graph.all(5) {
            let f = try Fields(t)
            let dims = try f.ints(1).map(Int.init)
            let raw = [UInt8](f.all(9).first ?? Data())
            var v = Value(shape: dims)
            switch f.int(2) {
            case 1:
                v.floats = stride(from: 0, to: raw.count, by: 4).map { o in
                    Float(bitPattern: UInt32(raw[o]) | UInt32(raw[o + 1]) << 8 | UInt32(raw[o + 2]) << 16 | UInt32(raw[o + 3]) << 24)
                }
            case 7:
                v.ints = stride(from: 0, to: raw.count, by: 8).map { o in
                    Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(raw[o + $1]) << (8 * UInt64($1)) })
                }
            default: throw ONNXReadError.unsupported("tensor type \(String(describing: f.int(2)))")
            }
            #expect(max(v.floats.count, v.ints.count) == dims.reduce(1, *), "initializer \(f.string(8) ?? "?") size")
            g.initializers[f.string(8) ?? ""] = v
        }
        g.inputs = try graph.all(11).map { try Fields($0).string(1) ?? "" }
        g.outputs = try graph.all(12).map { try Fields($0).string(1) ?? "" }
        return g
    }

    // MARK: an evaluator of the operators, as the ONNX documentation defines them

    static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

    static func run(_ g: Graph, feeds: [String: Value]) throws -> [String: Value] {
        var env = g.initializers.merging(feeds) { $1 }
        func get(_ name: String) throws -> Value {
            guard let v = env[name] else { throw ONNXReadError.unsupported("missing value \(name)") }
            return v
        }
        for n in g.nodes {
            switch n.op {
            case "Gather":   // axis 0
                let data = try get(n.inputs[0]), idx = try get(n.inputs[1])
                let row = data.shape.dropFirst().reduce(1, *)
                var out = Value(shape: idx.shape + data.shape.dropFirst())
                for i in idx.ints { out.floats += data.floats[(Int(i) * row)..<((Int(i) + 1) * row)] }
                env[n.outputs[0]] = out
            case "Squeeze":
                let x = try get(n.inputs[0]), axes = try get(n.inputs[1]).ints.map(Int.init)
                var out = x
                out.shape = x.shape.enumerated().filter { !axes.contains($0.offset) }.map { $0.element }
                env[n.outputs[0]] = out
            case "Concat":   // axis 0
                let parts = try n.inputs.map(get)
                var out = Value(shape: parts[0].shape)
                out.shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
                for p in parts { out.floats += p.floats }
                env[n.outputs[0]] = out
            case "MatMul":   // (…, K) × (K, N)
                let a = try get(n.inputs[0]), b = try get(n.inputs[1])
                let K = b.shape[0], N = b.shape[1], rows = a.floats.count / K
                var out = Value(shape: a.shape.dropLast() + [N], floats: [Float](repeating: 0, count: rows * N))
                for r in 0..<rows { for k in 0..<K { for j in 0..<N { out.floats[r * N + j] += a.floats[r * K + k] * b.floats[k * N + j] } } }
                env[n.outputs[0]] = out
            case "Add":      // broadcast over the last axis
                let a = try get(n.inputs[0]), b = try get(n.inputs[1])
                var out = a
                for i in out.floats.indices { out.floats[i] += b.floats[i % b.floats.count] }
                env[n.outputs[0]] = out
            case "LSTM", "GRU", "RNN":
                let x = try get(n.inputs[0]), W = try get(n.inputs[1]), R = try get(n.inputs[2]), Bias = try get(n.inputs[3])
                #expect(n.inputs[4] == "", "sequence_lens is not given")
                let H = Int(n.intAttributes["hidden_size"] ?? 0)
                let T = x.shape[0], Bn = x.shape[1], I = x.shape[2]
                var h = try get(n.inputs[5]).floats
                var c = n.op == "LSTM" ? try get(n.inputs[6]).floats : []
                let G = W.shape[1] / H
                // gate block q of a row vector times W (or R): Σ_k v[k]·M[q·H + j, k]
                func project(_ M: Value, _ v: ArraySlice<Float>, _ q: Int, _ j: Int) -> Float {
                    let K = M.shape[2]
                    var s: Float = 0
                    for k in 0..<K { s += v[v.startIndex + k] * M.floats[(q * H + j) * K + k] }
                    return s
                }
                func wb(_ q: Int, _ j: Int) -> Float { Bias.floats[q * H + j] }
                func rb(_ q: Int, _ j: Int) -> Float { Bias.floats[G * H + q * H + j] }
                var Y = Value(shape: [T, 1, Bn, H], floats: [])
                for t in 0..<T {
                    var hNew = [Float](repeating: 0, count: Bn * H), cNew = c
                    for b in 0..<Bn {
                        let xt = x.floats[((t * Bn + b) * I)..<((t * Bn + b + 1) * I)]
                        let hp = h[(b * H)..<((b + 1) * H)]
                        for j in 0..<H {
                            func pre(_ q: Int) -> Float { project(W, xt, q, j) + project(R, hp, q, j) + wb(q, j) + rb(q, j) }
                            switch n.op {
                            case "LSTM":   // W = [W_i, W_o, W_f, W_c]
                                let i = sigmoid(pre(0)), o = sigmoid(pre(1)), f = sigmoid(pre(2)), g = Foundation.tanh(pre(3))
                                let cc = f * c[b * H + j] + i * g
                                cNew[b * H + j] = cc
                                hNew[b * H + j] = o * Foundation.tanh(cc)
                            case "GRU":    // W = [W_z, W_r, W_h], linear_before_reset = 1
                                #expect(n.intAttributes["linear_before_reset"] == 1)
                                let z = sigmoid(pre(0)), r = sigmoid(pre(1))
                                let hh = Foundation.tanh(project(W, xt, 2, j) + wb(2, j) + r * (project(R, hp, 2, j) + rb(2, j)))
                                hNew[b * H + j] = (1 - z) * hh + z * hp[hp.startIndex + j]
                            default:
                                let act = n.stringsAttributes["activations"] ?? ["Tanh"]
                                hNew[b * H + j] = act == ["Relu"] ? max(0, pre(0)) : Foundation.tanh(pre(0))
                            }
                        }
                    }
                    h = hNew
                    c = cNew
                    Y.floats += h
                }
                env[n.outputs[0]] = Y
                env[n.outputs[1]] = Value(shape: [1, Bn, H], floats: h)
                if n.op == "LSTM" { env[n.outputs[2]] = Value(shape: [1, Bn, H], floats: c) }
            default:
                throw ONNXReadError.unsupported(n.op)
            }
        }
        return try Dictionary(uniqueKeysWithValues: g.outputs.map { ($0, try get($0)) })
    }

    // MARK: the tests

    @Test(arguments: CellKind.allCases)
    func exportedGraphComputesTheModel(cell: CellKind) throws {
        var rng = SeededRNG(seed: 11)
        let vocab = CharVocabulary(text: Array("abcdefg xyz\n".unicodeScalars))
        let config = CharLMConfig(cell: cell, vocabulary: vocab, embeddingSize: 5, hiddenSize: 6, numLayers: 2)
        let model = CharLM(config: config, rng: &rng)
        // Biases away from zero, so that a misplaced bias block shows.
        for (_, p) in model.namedParameters { p.value.data = p.value.data.map { _ in rng.uniform(-0.8, 0.8) } }
        let B = 3, T = 4, L = 2, H = 6, V = vocab.count
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        var state = model.zeroState(batch: B)
        state.hidden.data = state.hidden.data.map { _ in rng.uniform(-1, 1) }
        if cell == .lstm { state.cell!.data = state.cell!.data.map { _ in rng.uniform(-1, 1) } }
        let (logits, final) = model.logits(inputs: tokens, batch: B, steps: T, state: state, rng: &rng)

        let g = try Self.read(CharLMONNX.export(model))
        #expect(g.opset == 17)
        #expect(g.metadata["vocab"] == vocab.json && g.metadata["cell"] == cell.rawValue)
        #expect(g.inputs == (cell == .lstm ? ["tokens", "h0", "c0"] : ["tokens", "h0"]))
        #expect(g.outputs == (cell == .lstm ? ["logits", "hn", "cn"] : ["logits", "hn"]))
        var feeds: [String: Value] = [
            "tokens": Value(shape: [T, B], ints: (0..<(T * B)).map { Int64(tokens[($0 % B) * T + $0 / B]) }),   // time-major
            "h0": Value(shape: [L, B, H], floats: state.hidden.data),
        ]
        if cell == .lstm { feeds["c0"] = Value(shape: [L, B, H], floats: state.cell!.data) }
        let out = try Self.run(g, feeds: feeds)
        let y = try #require(out["logits"])
        #expect(y.shape == [T, B, V])
        var worst: Float = 0
        for t in 0..<T { for b in 0..<B { for v in 0..<V {
            worst = max(worst, abs(y.floats[(t * B + b) * V + v] - logits.data[(b * T + t) * V + v]))
        } } }
        #expect(worst < 1e-4, "logits differ by \(worst)")
        let hn = try #require(out["hn"])
        #expect(hn.shape == [L, B, H])
        #expect(zip(hn.floats, final.hidden.data).allSatisfy { abs($0 - $1) < 1e-5 }, "hn")
        if cell == .lstm {
            let cn = try #require(out["cn"])
            #expect(zip(cn.floats, final.cell!.data).allSatisfy { abs($0 - $1) < 1e-5 }, "cn")
        }
    }

    @Test func exportCommandWritesTheModelAndRejectsOtherCheckpoints() throws {
        let dir = CLI.tempDir()
        let model = dir.appendingPathComponent("m.safetensors").path
        var rng = SeededRNG(seed: 5)
        let config = CharLMConfig(cell: .gru, vocabulary: CharVocabulary(text: Array("to be or not\n".unicodeScalars)),
                                  embeddingSize: 4, hiddenSize: 8, numLayers: 1)
        try CharLMCheckpoint.save(CharLM(config: config, rng: &rng), to: model)
        let onnx = dir.appendingPathComponent("m.onnx").path
        let r = try CLI.run(["export", "--checkpoint", model, "--onnx", onnx])
        #expect(r.status == 0, "\(r.stderr)")
        let g = try Self.read(Data(contentsOf: URL(fileURLWithPath: onnx)))
        #expect(g.nodes.map(\.op) == ["Gather", "Gather", "GRU", "Squeeze", "Concat", "MatMul", "Add"])
        #expect(try CharLMONNX.export(CharLMCheckpoint.load(path: model)) == Data(contentsOf: URL(fileURLWithPath: onnx)))
        // Not a char-LM checkpoint, a missing file, a folder that does not exist: one error line each, no file left.
        try SafeTensors.write([("w", Tensor(shape: [1], data: [1]))], metadata: ["model": "tagger"], to: dir.appendingPathComponent("tagger.safetensors").path)
        expectCleanError(try CLI.run(["export", "--checkpoint", dir.appendingPathComponent("tagger.safetensors").path, "--onnx", dir.appendingPathComponent("x.onnx").path]), mentions: "tagger.safetensors")
        expectCleanError(try CLI.run(["export", "--checkpoint", dir.appendingPathComponent("none.safetensors").path, "--onnx", dir.appendingPathComponent("x.onnx").path]), mentions: "none.safetensors")
        expectCleanError(try CLI.run(["export", "--checkpoint", model, "--onnx", dir.appendingPathComponent("no/such/m.onnx").path]), mentions: "m.onnx")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.onnx").path))
    }
}
