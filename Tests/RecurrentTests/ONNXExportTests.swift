import Foundation
import Testing
@testable import Recurrent

/// The ONNX export, read back by a protobuf reader written here and run by an evaluator of the
/// operators it uses, written from the ONNX operator documentation (LSTM gates i,o,f,c; GRU z,r,h
/// with linear_before_reset; RNN with its activation; both directions and sequence_lens; numpy
/// broadcasting), not from the exporter. Against ONNX Runtime
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
        var intsAttributes: [String: [Int64]] = [:]
        var stringAttributes: [String: String] = [:]
        var graphAttributes: [String: Graph] = [:]
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
        let parsed = try readGraph(graphData)
        g.nodes = parsed.nodes
        g.initializers = parsed.initializers
        g.inputs = parsed.inputs
        g.outputs = parsed.outputs
        return g
    }

    /// A GraphProto: nodes (with subgraph attributes), initializers, input and output names.
    static func readGraph(_ data: Data) throws -> Graph {
        var g = Graph()
        let graph = try Fields(data)
        for n in graph.all(1) {
            let f = try Fields(n)
            var ints: [String: Int64] = [:], strings: [String: [String]] = [:]
            var intLists: [String: [Int64]] = [:], string: [String: String] = [:], graphs: [String: Graph] = [:]
            for a in f.all(5) {
                let af = try Fields(a)
                let name = af.string(1) ?? ""
                if let i = af.int(3) { ints[name] = i }
                if !af.strings(9).isEmpty { strings[name] = af.strings(9) }
                if let s = af.string(4) { string[name] = s }
                let list = try af.ints(8)
                if !list.isEmpty { intLists[name] = list }
                if let body = af.all(6).first { graphs[name] = try readGraph(body) }
            }
            g.nodes.append(Node(op: f.string(4) ?? "", inputs: f.strings(1), outputs: f.strings(2), intAttributes: ints,
                                stringsAttributes: strings, intsAttributes: intLists, stringAttributes: string, graphAttributes: graphs))
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
            case 7, 11:   // int64, or float64 (evaluated in Float here)
                let words = stride(from: 0, to: raw.count, by: 8).map { o in (0..<8).reduce(UInt64(0)) { $0 | UInt64(raw[o + $1]) << (8 * UInt64($1)) } }
                if f.int(2) == 7 { v.ints = words.map { Int64(bitPattern: $0) } } else { v.floats = words.map { Float(Double(bitPattern: $0)) } }
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

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * shape[i + 1] }
        return s
    }

    /// Numpy broadcasting: the result's shape, and for each operand the flat index it reads at
    /// each flat index of the result.
    static func broadcast(_ shapes: [[Int]]) throws -> (shape: [Int], index: [[Int]]) {
        let rank = shapes.map(\.count).max() ?? 0
        let padded = shapes.map { [Int](repeating: 1, count: rank - $0.count) + $0 }
        var out = [Int](repeating: 1, count: rank)
        for d in 0..<rank {
            let sizes = Set(padded.map { $0[d] }).subtracting([1])
            guard sizes.count <= 1 else { throw ONNXReadError.unsupported("shapes \(shapes) do not broadcast") }
            out[d] = sizes.first ?? 1
        }
        let n = out.reduce(1, *), outStrides = strides(out)
        let index = padded.map { shape -> [Int] in
            let st = strides(shape)
            return (0..<n).map { flat in
                var k = 0
                for d in 0..<rank where shape[d] != 1 { k += (flat / outStrides[d] % out[d]) * st[d] }
                return k
            }
        }
        return (out, index)
    }

    static func run(_ g: Graph, feeds: [String: Value]) throws -> [String: Value] {
        var env = g.initializers.merging(feeds) { $1 }
        func get(_ name: String) throws -> Value {
            guard let v = env[name] else { throw ONNXReadError.unsupported("missing value \(name)") }
            return v
        }
        func isFloat(_ v: Value) -> Bool { v.ints.isEmpty }
        /// Elementwise over broadcast operands, in floats or in ints.
        func elementwise(_ vs: [Value], float: ([Float]) -> Float, int: ([Int64]) -> Int64) throws -> Value {
            let (shape, index) = try broadcast(vs.map(\.shape))
            let n = shape.reduce(1, *)
            if vs.allSatisfy(isFloat) {
                return Value(shape: shape, floats: (0..<n).map { i in float(vs.indices.map { vs[$0].floats[index[$0][i]] }) })
            }
            return Value(shape: shape, ints: (0..<n).map { i in int(vs.indices.map { vs[$0].ints[index[$0][i]] }) })
        }
        /// Reads `v`'s elements in another layout: out[i] = v[source(i)].
        func gather(_ v: Value, shape: [Int], _ source: [Int]) -> Value {
            isFloat(v) ? Value(shape: shape, floats: source.map { v.floats[$0] }) : Value(shape: shape, ints: source.map { v.ints[$0] })
        }
        for n in g.nodes {
            var out: [Value] = []
            switch n.op {
            case "Gather":   // axis 0
                let data = try get(n.inputs[0]), idx = try get(n.inputs[1])
                let row = data.shape.dropFirst().reduce(1, *)
                out = [gather(data, shape: idx.shape + data.shape.dropFirst(), idx.ints.flatMap { i in (Int(i) * row)..<((Int(i) + 1) * row) })]
            case "Squeeze", "Unsqueeze":
                let x = try get(n.inputs[0]), axes = try get(n.inputs[1]).ints.map(Int.init)
                var y = x
                if n.op == "Squeeze" {
                    y.shape = x.shape.enumerated().filter { !axes.contains($0.offset) }.map { $0.element }
                } else {
                    for a in axes.sorted() { y.shape.insert(1, at: a) }
                }
                out = [y]
            case "Concat":
                let parts = try n.inputs.map(get)
                let rank = parts[0].shape.count, axis = (Int(n.intAttributes["axis"]!) + rank) % rank
                let outer = parts[0].shape[..<axis].reduce(1, *)
                var shape = parts[0].shape
                shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
                var y = Value(shape: shape)
                for o in 0..<outer {
                    for p in parts {
                        let chunk = p.shape[axis...].reduce(1, *)
                        if isFloat(p) { y.floats += p.floats[(o * chunk)..<((o + 1) * chunk)] } else { y.ints += p.ints[(o * chunk)..<((o + 1) * chunk)] }
                    }
                }
                out = [y]
            case "Transpose":
                let x = try get(n.inputs[0]), perm = n.intsAttributes["perm"]!.map(Int.init)
                let shape = perm.map { x.shape[$0] }, st = strides(x.shape), outStrides = strides(shape)
                out = [gather(x, shape: shape, (0..<x.shape.reduce(1, *)).map { flat in
                    perm.indices.reduce(0) { $0 + (flat / outStrides[$1] % shape[$1]) * st[perm[$1]] }
                })]
            case "Reshape":   // 0 keeps the input's dimension, −1 takes the rest
                var y = try get(n.inputs[0])
                var shape = try get(n.inputs[1]).ints.enumerated().map { $0.element == 0 ? y.shape[$0.offset] : Int($0.element) }
                if let free = shape.firstIndex(of: -1) { shape[free] = y.shape.reduce(1, *) / shape.filter { $0 != -1 }.reduce(1, *) }
                y.shape = shape
                out = [y]
            case "Flatten":
                var y = try get(n.inputs[0])
                let axis = Int(n.intAttributes["axis"] ?? 1)
                y.shape = [y.shape[..<axis].reduce(1, *), y.shape[axis...].reduce(1, *)]
                out = [y]
            case "Expand":   // broadcast to a shape
                let x = try get(n.inputs[0]), shape = try get(n.inputs[1]).ints.map(Int.init)
                let (outShape, index) = try broadcast([x.shape, shape])
                out = [gather(x, shape: outShape, index[0])]
            case "Shape":
                let x = try get(n.inputs[0])
                out = [Value(shape: [x.shape.count], ints: x.shape.map(Int64.init))]
            case "Cast":   // to FLOAT or DOUBLE (both evaluated in Float), or to INT32/INT64 (kept as integers)
                let x = try get(n.inputs[0])
                out = [[1, 11].contains(n.intAttributes["to"]) ? Value(shape: x.shape, floats: isFloat(x) ? x.floats : x.ints.map(Float.init))
                                                  : Value(shape: x.shape, ints: isFloat(x) ? x.floats.map { Int64($0) } : x.ints)]
            case "Range":
                let start = try get(n.inputs[0]).ints[0], limit = try get(n.inputs[1]).ints[0], delta = try get(n.inputs[2]).ints[0]
                let values = Array(stride(from: start, to: limit, by: Int(delta)))
                out = [Value(shape: [values.count], ints: values)]
            case "Less", "Greater":   // a bool tensor, kept as 0/1
                let a = try get(n.inputs[0]), b = try get(n.inputs[1])
                let less = n.op == "Less"
                let r = try elementwise([a, b], float: { (less ? $0[0] < $0[1] : $0[0] > $0[1]) ? 1 : 0 }, int: { (less ? $0[0] < $0[1] : $0[0] > $0[1]) ? 1 : 0 })
                out = [Value(shape: r.shape, ints: isFloat(r) ? r.floats.map { Int64($0) } : r.ints)]
            case "Sqrt", "Abs", "Tanh":
                var y = try get(n.inputs[0])
                y.floats = y.floats.map { n.op == "Sqrt" ? $0.squareRoot() : n.op == "Abs" ? abs($0) : Foundation.tanh($0) }
                out = [y]
            case "Scan":   // the body once per step of the scan inputs' first axis, the states carried
                let body = try #require(n.graphAttributes["body"])
                let inputs = try n.inputs.map(get)
                let m = Int(n.intAttributes["num_scan_inputs"] ?? 1), states = inputs.count - m
                var carried = Array(inputs[..<states])
                var stacked = [Value](repeating: Value(shape: []), count: body.outputs.count - states)
                let steps = inputs[states].shape[0]
                for t in 0..<steps {
                    var feeds = env
                    for (i, name) in body.inputs.enumerated() {
                        if i < states { feeds[name] = carried[i]; continue }
                        let x = inputs[i], row = x.shape.dropFirst().reduce(1, *)
                        feeds[name] = gather(x, shape: Array(x.shape.dropFirst()), Array((t * row)..<((t + 1) * row)))
                    }
                    let result = try run(body, feeds: feeds)
                    let outs = try body.outputs.map { try #require(result[$0]) }
                    carried = Array(outs[..<states])
                    for (k, v) in outs[states...].enumerated() {
                        stacked[k].shape = [t + 1] + v.shape
                        stacked[k].floats += v.floats
                    }
                }
                out = carried + stacked
            case "Where":
                let cond = try get(n.inputs[0]), x = try get(n.inputs[1]), y = try get(n.inputs[2])
                let (shape, index) = try broadcast([cond.shape, x.shape, y.shape])
                out = [Value(shape: shape, floats: (0..<shape.reduce(1, *)).map { i in
                    cond.ints[index[0][i]] != 0 ? x.floats[index[1][i]] : y.floats[index[2][i]]
                })]
            case "Add", "Sub", "Mul", "Div", "Max", "Sum":
                let vs = try n.inputs.map(get)
                switch n.op {
                case "Add", "Sum": out = [try elementwise(vs, float: { $0.reduce(0, +) }, int: { $0.reduce(0, +) })]
                case "Sub": out = [try elementwise(vs, float: { $0[0] - $0[1] }, int: { $0[0] - $0[1] })]
                case "Mul": out = [try elementwise(vs, float: { $0[0] * $0[1] }, int: { $0[0] * $0[1] })]
                case "Div": out = [try elementwise(vs, float: { $0[0] / $0[1] }, int: { $0[0] / $0[1] })]
                default: out = [try elementwise(vs, float: { $0.max()! }, int: { $0.max()! })]
                }
            case "ReduceSum", "ReduceMax", "ReduceMean":   // over the listed axes (ReduceSum's as an input)
                let x = try get(n.inputs[0])
                let axes = n.op == "ReduceSum" ? try get(n.inputs[1]).ints.map(Int.init) : n.intsAttributes["axes"]!.map(Int.init)
                let count = Float(axes.reduce(1) { $0 * x.shape[$1] })
                let keep = (n.intAttributes["keepdims"] ?? 1) != 0
                let kept = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
                let st = strides(x.shape), keptStrides = strides(kept)
                var acc = [Float](repeating: n.op == "ReduceMax" ? -.infinity : 0, count: kept.reduce(1, *))
                for flat in 0..<x.floats.count {
                    let k = x.shape.indices.reduce(0) { $0 + (axes.contains($1) ? 0 : (flat / st[$1] % x.shape[$1]) * keptStrides[$1]) }
                    acc[k] = n.op == "ReduceMax" ? max(acc[k], x.floats[flat]) : acc[k] + x.floats[flat]
                }
                if n.op == "ReduceMean" { acc = acc.map { $0 / count } }
                out = [Value(shape: keep ? kept : x.shape.enumerated().filter { !axes.contains($0.offset) }.map { $0.element }, floats: acc)]
            case "Softmax":   // over the last axis
                let x = try get(n.inputs[0])
                #expect(n.intAttributes["axis"] == -1)
                let C = x.shape.last!
                var y = x
                for r in 0..<(x.floats.count / C) {
                    let row = x.floats[(r * C)..<((r + 1) * C)], m = row.max()!
                    let e = row.map { Foundation.exp($0 - m) }, s = e.reduce(0, +)
                    for c in 0..<C { y.floats[r * C + c] = e[c] / s }
                }
                out = [y]
            case "MatMul":   // (…, K) × (K, N)
                let a = try get(n.inputs[0]), b = try get(n.inputs[1])
                let K = b.shape[0], N = b.shape[1], rows = a.floats.count / K
                var y = Value(shape: a.shape.dropLast() + [N], floats: [Float](repeating: 0, count: rows * N))
                for r in 0..<rows { for k in 0..<K { for j in 0..<N { y.floats[r * N + j] += a.floats[r * K + k] * b.floats[k * N + j] } } }
                out = [y]
            case "LSTM", "GRU", "RNN":
                out = try recurrent(n, inputs: n.inputs.map { $0.isEmpty ? nil : try get($0) })
            default:
                throw ONNXReadError.unsupported(n.op)
            }
            for (name, v) in zip(n.outputs, out) where !name.isEmpty {
                #expect(max(v.floats.count, v.ints.count) == v.shape.reduce(1, *) || v.shape.reduce(1, *) == 0, "\(n.op) → \(name): shape \(v.shape)")
                env[name] = v
            }
        }
        return try Dictionary(uniqueKeysWithValues: g.outputs.map { ($0, try get($0)) })
    }

    /// ONNX's LSTM (gates i,o,f,c), GRU (z,r,h; linear_before_reset = 1) and RNN: directions
    /// forward or bidirectional; sequence_lens (the reverse direction starts at each stream's last
    /// real step; Y is zero past a stream's length); initial states zero when not given.
    static func recurrent(_ n: Node, inputs: [Value?]) throws -> [Value] {
        func input(_ i: Int) -> Value? { i < inputs.count ? inputs[i] : nil }
        let x = input(0)!, W = input(1)!, R = input(2)!, Bias = input(3)!
        let H = Int(n.intAttributes["hidden_size"] ?? 0)
        let directions = n.stringAttributes["direction"] == "bidirectional" ? 2 : 1
        #expect(W.shape[0] == directions && R.shape[0] == directions && Bias.shape[0] == directions)
        let T = x.shape[0], Bn = x.shape[1], I = x.shape[2]
        let G = W.shape[1] / H
        let lengths = input(4).map { $0.ints.map(Int.init) } ?? [Int](repeating: T, count: Bn)
        let activations = n.stringsAttributes["activations"] ?? [String](repeating: "Tanh", count: directions)
        if n.op == "GRU" { #expect(n.intAttributes["linear_before_reset"] == 1) }
        var Y = Value(shape: [T, directions, Bn, H], floats: [Float](repeating: 0, count: T * directions * Bn * H))
        var Yh = Value(shape: [directions, Bn, H], floats: input(5)?.floats ?? [Float](repeating: 0, count: directions * Bn * H))
        var Yc = Value(shape: [directions, Bn, H], floats: input(6)?.floats ?? [Float](repeating: 0, count: directions * Bn * H))
        for d in 0..<directions {
            // gate block q of a row vector times this direction's W (or R): Σ_k v[k]·M[d, q·H + j, k]
            func project(_ M: Value, _ v: ArraySlice<Float>, _ q: Int, _ j: Int) -> Float {
                let K = M.shape[2]
                var s: Float = 0
                for k in 0..<K { s += v[v.startIndex + k] * M.floats[((d * G + q) * H + j) * K + k] }
                return s
            }
            func wb(_ q: Int, _ j: Int) -> Float { Bias.floats[d * 2 * G * H + q * H + j] }
            func rb(_ q: Int, _ j: Int) -> Float { Bias.floats[d * 2 * G * H + G * H + q * H + j] }
            for b in 0..<Bn {
                var h = Array(Yh.floats[((d * Bn + b) * H)..<((d * Bn + b + 1) * H)])
                var c = Array(Yc.floats[((d * Bn + b) * H)..<((d * Bn + b + 1) * H)])
                for s in 0..<lengths[b] {
                    let t = d == 0 ? s : lengths[b] - 1 - s
                    let xt = x.floats[((t * Bn + b) * I)..<((t * Bn + b + 1) * I)]
                    let hp = h[...]
                    var hNew = h
                    for j in 0..<H {
                        func pre(_ q: Int) -> Float { project(W, xt, q, j) + project(R, hp, q, j) + wb(q, j) + rb(q, j) }
                        switch n.op {
                        case "LSTM":
                            let i = sigmoid(pre(0)), o = sigmoid(pre(1)), f = sigmoid(pre(2)), gg = Foundation.tanh(pre(3))
                            c[j] = f * c[j] + i * gg
                            hNew[j] = o * Foundation.tanh(c[j])
                        case "GRU":
                            let z = sigmoid(pre(0)), r = sigmoid(pre(1))
                            let hh = Foundation.tanh(project(W, xt, 2, j) + wb(2, j) + r * (project(R, hp, 2, j) + rb(2, j)))
                            hNew[j] = (1 - z) * hh + z * hp[j]
                        default:
                            hNew[j] = activations[d] == "Relu" ? max(0, pre(0)) : Foundation.tanh(pre(0))
                        }
                    }
                    h = hNew
                    for j in 0..<H { Y.floats[((t * directions + d) * Bn + b) * H + j] = h[j] }
                }
                for j in 0..<H {
                    Yh.floats[(d * Bn + b) * H + j] = h[j]
                    Yc.floats[(d * Bn + b) * H + j] = c[j]
                }
            }
        }
        return n.op == "LSTM" ? [Y, Yh, Yc] : [Y, Yh]
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

    /// Every cell, two layers, three streams with their own conditions and a random initial state.
    @Test(arguments: CellKind.allCases)
    func exportedGeneratorComputesTheModel(cell: CellKind) throws {
        var rng = SeededRNG(seed: 19)
        let vocab = GeneratorConfig.vocabulary(for: ["anna", "boris", "chen"])
        let config = GeneratorConfig(cell: cell, vocabulary: vocab, conditions: ["Russian", "Chinese", "Czech"],
                                     embeddingSize: 4, conditionSize: 3, hiddenSize: 5, numLayers: 2)
        let model = ConditionalGenerator(config: config, rng: &rng)
        Self.randomize(model.namedParameters, &rng)
        let B = 3, T = 4, L = 2, H = 5, V = vocab.count
        let texts: [[Int32]] = (0..<B).map { _ in (0..<(T - 1)).map { _ in Int32(4 + rng.next() % UInt64(V - 4)) } }
        let conditions: [Int32] = [2, 0, 1]
        let inputs = PaddedBatch(texts.map { [GeneratorConfig.sosIndex] + $0 })
        let state = RecurrentState(hidden: Tensor(shape: [L, B, H], data: (0..<(L * B * H)).map { _ in rng.uniform(-1, 1) }),
                                   cell: cell == .lstm ? Tensor(shape: [L, B, H], data: (0..<(L * B * H)).map { _ in rng.uniform(-1, 1) }) : nil)
        let f = model.forward(inputs, conditions: conditions, state: state, mode: .inference, rng: &rng)

        let g = try Self.read(GeneratorONNX.export(model))
        #expect(g.inputs == ["tokens", "condition", "h0"] + (cell == .lstm ? ["c0"] : []))
        #expect(g.metadata["model"] == "conditional-generator" && g.metadata["conditions"] == #"["Russian","Chinese","Czech"]"#)
        var feeds: [String: Value] = [
            "tokens": Value(shape: [T, B], ints: (0..<(T * B)).map { Int64(inputs.indices[($0 % B) * T + $0 / B]) }),   // time-major
            "condition": Value(shape: [B], ints: conditions.map(Int64.init)),
            "h0": Value(shape: [L, B, H], floats: state.hidden.data),
        ]
        if let c = state.cell { feeds["c0"] = Value(shape: [L, B, H], floats: c.data) }
        let out = try Self.run(g, feeds: feeds)
        let y = try #require(out["logits"])
        #expect(y.shape == [T, B, V])
        var worst: Float = 0
        for t in 0..<T { for b in 0..<B { for v in 0..<V { worst = max(worst, abs(y.floats[(t * B + b) * V + v] - f.logits.data[(b * T + t) * V + v])) } } }
        #expect(worst < 1e-5, "logits differ by \(worst)")
        let dh = Self.maxDifference(try #require(out["hn"]).floats, f.state.hidden.data)
        #expect(dh < 1e-5, "hn differs by \(dh)")
        if cell == .lstm {
            let dc = Self.maxDifference(try #require(out["cn"]).floats, f.state.cell!.data)
            #expect(dc < 1e-5, "cn differs by \(dc)")
        }
    }

    /// Every cell with every attention; two layers, a bidirectional encoder but for the GRU,
    /// sources of 3, 1 and 4 words, teacher-forced targets of different lengths.
    @Test(arguments: CellKind.allCases, AttentionKind.allCases)
    func exportedTranslatorComputesTheModel(cell: CellKind, attention: AttentionKind) throws {
        var rng = SeededRNG(seed: 23)
        let words = [["i", "am", "cold", "."], ["je", "suis", "froid", "!"]]
        let config = Seq2SeqConfig(cell: cell, attention: attention, source: TranslationVocabulary.make(counting: words),
                                   target: TranslationVocabulary.make(counting: words.reversed()), embeddingSize: 3, hiddenSize: 4,
                                   numLayers: 2, bidirectional: cell != .gru)
        let model = Seq2Seq(config: config, rng: &rng)
        Self.randomize(model.namedParameters, &rng)
        let sources: [[Int32]] = [[4, 5, 6], [7], [5, 4, 7, 6]], targets: [[Int32]] = [[4, 5], [6, 7, 4], [5]]
        let B = sources.count, T = (targets.map(\.count).max() ?? 0) + 1, V = config.target.count
        // The reference: the model's own encoder and decoder steps, teacher-forced.
        let source = Seq2Seq.sourceBatch(sources)
        let encoded = model.encode(source, mode: .inference, rng: &rng)
        var state = encoded.state
        var expected = [Float](repeating: 0, count: B * T * V)   // [B, T, V]
        var targetIn = [Int64](repeating: 0, count: B * T)
        for t in 0..<T {
            let tokens: [Int32] = (0..<B).map { b in t == 0 ? TranslationVocabulary.sosIndex : (t - 1 < targets[b].count ? targets[b][t - 1] : 0) }
            for b in 0..<B { targetIn[b * T + t] = Int64(tokens[b]) }
            let (z, next, _) = model.decoderStep(tokens, state: state, memory: encoded.memory, mode: .inference, rng: &rng)
            state = next
            for b in 0..<B { for v in 0..<V { expected[(b * T + t) * V + v] = z.data[b * V + v] } }
        }
        let g = try Self.read(TranslatorONNX.export(model, metadata: ["reverse": "false"]))
        #expect(g.inputs == ["source", "source_lengths", "target_in"] && g.outputs == ["logits"])
        #expect(g.metadata["model"] == "seq2seq" && g.metadata["attention"] == attention.rawValue && g.metadata["reverse"] == "false")
        let out = try Self.run(g, feeds: [
            "source": Value(shape: [B, source.steps], ints: source.indices.map(Int64.init)),
            "source_lengths": Value(shape: [B], ints: source.lengths.map(Int64.init)),
            "target_in": Value(shape: [B, T], ints: targetIn),
        ])
        let y = try #require(out["logits"])
        #expect(y.shape == [B, T, V])
        let d = Self.maxDifference(y.floats, expected)
        #expect(d < 1e-5, "logits differ by \(d)")
    }

    static func randomize(_ params: [(String, Parameter)], _ rng: inout SeededRNG) {
        // Every weight and bias away from zero (the padding rows too), so that a misplaced block shows.
        for (_, p) in params { p.value.data = p.value.data.map { _ in rng.uniform(-0.8, 0.8) } }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        #expect(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    static func classifier(cell: CellKind, pooling: Pooling, bidirectional: Bool, seed: UInt64) -> TextClassifier {
        var rng = SeededRNG(seed: seed)
        let vocab = TokenVocabulary(counting: [["a", "good", "film", "bad", "plot", "the"]])
        let config = ClassifierConfig(cell: cell, level: .word, lowercase: true, vocabulary: vocab, labels: ["neg", "neu", "pos"],
                                      embeddingSize: 4, hiddenSize: 5, numLayers: 2, bidirectional: bidirectional, pooling: pooling)
        let model = TextClassifier(config: config, rng: &rng)
        randomize(model.namedParameters, &rng)
        return model
    }

    /// Sentences of lengths 4, 1 and 3 (token indices), padded.
    static let sentences = PaddedBatch([[2, 3, 4, 5], [6], [7, 2, 3]])

    static func classifierFeeds(_ batch: PaddedBatch) -> [String: Value] {
        ["tokens": Value(shape: [batch.batch, batch.steps], ints: batch.indices.map(Int64.init)),
         "lengths": Value(shape: [batch.batch], ints: batch.lengths.map(Int64.init))]
    }

    /// Every cell with every pooling; bidirectional except the GRU, two layers.
    @Test(arguments: CellKind.allCases, Pooling.allCases)
    func exportedClassifierComputesTheModel(cell: CellKind, pooling: Pooling) throws {
        let model = Self.classifier(cell: cell, pooling: pooling, bidirectional: cell != .gru, seed: 13)
        let batch = Self.sentences
        let g = try Self.read(ClassifierONNX.export([model]))
        #expect(g.opset == 17 && g.inputs == ["tokens", "lengths"] && g.outputs == ["logits", "probabilities"])
        #expect(g.metadata["model"] == "text-classifier" && g.metadata["pooling"] == pooling.rawValue)
        #expect(g.metadata["vocab"] == model.config.vocabulary.json && g.metadata["labels"] == #"["neg","neu","pos"]"#)
        let out = try Self.run(g, feeds: Self.classifierFeeds(batch))
        let logits = try #require(out["logits"]), probabilities = try #require(out["probabilities"])
        #expect(logits.shape == [3, 3] && probabilities.shape == [3, 3])
        let dz = Self.maxDifference(logits.floats, model.logits(batch).data)
        #expect(dz < 1e-5, "logits differ by \(dz)")
        let dp = Self.maxDifference(probabilities.floats, model.probabilities(batch).data)
        #expect(dp < 1e-6, "probabilities differ by \(dp)")
    }

    @Test func exportedEnsembleAveragesItsMembersProbabilities() throws {
        let members = (0..<3).map { Self.classifier(cell: .lstm, pooling: .max, bidirectional: true, seed: 30 + UInt64($0)) }
        let batch = Self.sentences
        var expected = [Float](repeating: 0, count: 9)
        for m in members { for (i, p) in m.probabilities(batch).data.enumerated() { expected[i] += p / 3 } }
        let g = try Self.read(ClassifierONNX.export(members))
        #expect(g.outputs == ["probabilities"] && g.metadata["ensemble"] == "3")
        #expect(g.initializers["members.2.embedding.weight"]?.floats == members[2].embedding.weight.value.data)
        let out = try Self.run(g, feeds: Self.classifierFeeds(batch))
        let d = Self.maxDifference(try #require(out["probabilities"]).floats, expected)
        #expect(d < 1e-6, "probabilities differ by \(d)")
    }

    /// Every cell, two layers; a repeated word, an unknown one and a word longer than 32 characters.
    @Test(arguments: CellKind.allCases)
    func exportedTaggerComputesTheModel(cell: CellKind) throws {
        var rng = SeededRNG(seed: 21)
        let words = TokenVocabulary(counting: [["the", "dog", "runs", "fast"]])
        let chars = TokenVocabulary(counting: [Array("thedogrunsfa").map(String.init)])
        let config = TaggerConfig(cell: cell, words: words, chars: chars, lowercase: true, tags: ["DET", "NOUN", "VERB", "ADV"],
                                  wordEmbeddingSize: 3, charEmbeddingSize: 2, charHiddenSize: 2, hiddenSize: 3, numLayers: 2)
        let model = Tagger(config: config, rng: &rng)
        Self.randomize(model.namedParameters, &rng)
        let sentences = [["The", "dog", "runs", "fast", "dog"], ["Hot", String(repeating: "dog", count: 12)], ["x"]]
        let batch = model.makeBatch(sentences)
        let B = sentences.count, T = batch.words.steps, C = config.tags.count
        let W = TaggerConfig.maxWordCharacters
        var charIDs = [Int64](repeating: 0, count: B * T * W), charLengths = [Int64](repeating: 0, count: B * T)
        for (b, s) in sentences.enumerated() {
            for (t, word) in s.enumerated() {
                let ids = word.unicodeScalars.prefix(W).map { Int64(chars.encode(String($0))) }
                charLengths[b * T + t] = Int64(ids.count)
                for (k, id) in ids.enumerated() { charIDs[(b * T + t) * W + k] = id }
            }
        }
        let g = try Self.read(TaggerONNX.export(model))
        #expect(g.inputs == ["words", "lengths", "chars", "char_lengths"] && g.outputs == ["logits"])
        #expect(g.metadata["model"] == "tagger" && g.metadata["char_vocab"] == chars.json)
        let out = try Self.run(g, feeds: [
            "words": Value(shape: [B, T], ints: batch.words.indices.map(Int64.init)),
            "lengths": Value(shape: [B], ints: batch.words.lengths.map(Int64.init)),
            "chars": Value(shape: [B, T, W], ints: charIDs),
            "char_lengths": Value(shape: [B, T], ints: charLengths),
        ])
        let y = try #require(out["logits"])
        #expect(y.shape == [B, T, C])
        let expected = model.logits(batch).data, bias = model.head.bias.value.data
        var worst: Float = 0
        for b in 0..<B {
            for t in 0..<T {
                for c in 0..<C {
                    // Past a sentence's end the outputs are zero, so the logits are the head's bias.
                    let reference = t < sentences[b].count ? expected[(b * T + t) * C + c] : bias[c]
                    worst = max(worst, abs(y.floats[(b * T + t) * C + c] - reference))
                }
            }
        }
        #expect(worst < 1e-5, "logits differ by \(worst)")
    }

    /// Every cell and mode, each with both scalings; a flat stretch gives a window whose standard
    /// deviation is zero (scale 1).
    @Test(arguments: CellKind.allCases, ForecastMode.allCases)
    func exportedForecasterComputesTheForecasts(cell: CellKind, mode: ForecastMode) throws {
        let N = 6, H = 3
        let values: [Double] = (0..<40).map { (t: Int) -> Double in
            if t < N { return 50 }
            return 100 + 10 * sin(Double(t) / 3) + Double(t % 5)
        }
        let origins = [N, 10, 17, 25, 37]
        for normalization in ForecastNormalization.allCases {
            var rng = SeededRNG(seed: 17)
            let config = ForecasterConfig(cell: cell, hiddenSize: 4, numLayers: 2, window: N, horizon: H, mode: mode,
                                          normalization: normalization, seriesScale: WindowScale.of(values[..<30]))
            let model = Forecaster(config: config, rng: &rng)
            Self.randomize(model.namedParameters, &rng)
            let expected = model.forecast(values, origins: origins)
            let g = try Self.read(ForecasterONNX.export(model, metadata: ["column": "y"]))
            #expect(g.inputs == ["window"] && g.outputs == ["forecast"])
            if normalization == .window {
                // The constant-window test is relative, as WindowScale.of's: std > 1e-12·|mean| (it was
                // 1e-8·max(1, |mean|), which took a series in small units for constant). The evaluator
                // here runs in Float, so a series of 1e-30 is checked in onnxruntime (performance.md).
                #expect(g.initializers["rounding"]?.floats == [Float(1e-12)])
                #expect(g.nodes.contains { $0.op == "Mul" && $0.inputs == ["mean_magnitude", "rounding"] })
                #expect(!g.nodes.contains { $0.op == "Max" })
            }
            #expect(g.metadata["mode"] == mode.rawValue && g.metadata["normalize"] == normalization.rawValue && g.metadata["column"] == "y")
            let window = origins.flatMap { t in values[(t - N)..<t].map { Float($0) } }
            let out = try Self.run(g, feeds: ["window": Value(shape: [origins.count, N], floats: window)])
            let y = try #require(out["forecast"])
            #expect(y.shape == [origins.count, H])
            let d = Self.maxDifference(y.floats, expected.flatMap { $0.map { Float($0) } })
            #expect(d < 2e-3, "\(normalization): forecasts differ by \(d)")   // values near 100, evaluated in Float
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
        // A classifier ensemble and a tagger.
        let members = (0..<2).map { Self.classifier(cell: .gru, pooling: .mean, bidirectional: true, seed: 40 + UInt64($0)) }
        let classifier = dir.appendingPathComponent("c.safetensors").path
        try TaskCheckpoint.save(members, to: classifier)
        let r2 = try CLI.run(["export", "--checkpoint", classifier, "--onnx", onnx])
        #expect(r2.status == 0 && r2.stdout.contains("text-classifier"), "\(r2.stderr)")
        #expect(try ClassifierONNX.export(TaskCheckpoint.loadClassifiers(path: classifier)) == Data(contentsOf: URL(fileURLWithPath: onnx)))
        let tagger = dir.appendingPathComponent("t.safetensors").path
        try TaskCheckpoint.save(TaggerTests.makeModel(cell: .rnnTanh), to: tagger)
        let r3 = try CLI.run(["export", "--checkpoint", tagger, "--onnx", onnx])
        #expect(r3.status == 0 && r3.stdout.contains("tagger"), "\(r3.stderr)")
        #expect(try TaggerONNX.export(TaskCheckpoint.loadTagger(path: tagger)) == Data(contentsOf: URL(fileURLWithPath: onnx)))
        var rng2 = SeededRNG(seed: 8)
        let generator = dir.appendingPathComponent("g.safetensors").path
        let gconfig = GeneratorConfig(cell: .gru, vocabulary: GeneratorConfig.vocabulary(for: ["ab", "ba"]), conditions: ["x", "y"],
                                      embeddingSize: 2, conditionSize: 2, hiddenSize: 3, numLayers: 1)
        try TaskCheckpoint.save(ConditionalGenerator(config: gconfig, rng: &rng2), to: generator)
        let r5 = try CLI.run(["export", "--checkpoint", generator, "--onnx", onnx])
        #expect(r5.status == 0 && r5.stdout.contains("conditional-generator"), "\(r5.stderr)")
        #expect(try GeneratorONNX.export(TaskCheckpoint.loadGenerator(path: generator)) == Data(contentsOf: URL(fileURLWithPath: onnx)))
        let forecaster = dir.appendingPathComponent("f.safetensors").path
        let fconfig = ForecasterConfig(cell: .lstm, hiddenSize: 3, numLayers: 1, window: 4, horizon: 2, mode: .recursive,
                                       normalization: .window, seriesScale: WindowScale(mean: 0, scale: 1))
        try TaskCheckpoint.save(Forecaster(config: fconfig, rng: &rng2), to: forecaster, extra: ["column": "Passengers"])
        let r4 = try CLI.run(["export", "--checkpoint", forecaster, "--onnx", onnx])
        #expect(r4.status == 0 && r4.stdout.contains("forecaster"), "\(r4.stderr)")
        let (fmodel, fmeta) = try TaskCheckpoint.loadForecaster(path: forecaster)
        #expect(try ForecasterONNX.export(fmodel, metadata: fmeta) == Data(contentsOf: URL(fileURLWithPath: onnx)))
        #expect(try Self.read(Data(contentsOf: URL(fileURLWithPath: onnx))).metadata["column"] == "Passengers")
        let translator = dir.appendingPathComponent("tr.safetensors").path
        let words = [["i", "am"], ["je", "suis"]]
        let tconfig = Seq2SeqConfig(cell: .gru, attention: .luong, source: TranslationVocabulary.make(counting: words),
                                    target: TranslationVocabulary.make(counting: words), embeddingSize: 2, hiddenSize: 3, numLayers: 1, bidirectional: true)
        let settings = TaskCheckpoint.TranslationDataSettings(filter: .tutorial, reverse: false, splitSeed: 1, testFraction: 0.1, validFraction: 0.05)
        try TaskCheckpoint.save(Seq2Seq(config: tconfig, rng: &rng2), data: settings, to: translator)
        let r6 = try CLI.run(["export", "--checkpoint", translator, "--onnx", onnx])
        #expect(r6.status == 0 && r6.stdout.contains("seq2seq"), "\(r6.stderr)")
        let (tmodel, tsettings) = try TaskCheckpoint.loadSeq2Seq(path: translator)
        #expect(try TranslatorONNX.export(tmodel, metadata: tsettings.metadata) == Data(contentsOf: URL(fileURLWithPath: onnx)))
        // Another kind of checkpoint, a missing file, a folder that does not exist: one error line each, no file left.
        try SafeTensors.write([("w", Tensor(shape: [1], data: [1]))], metadata: ["model": "word2vec"], to: dir.appendingPathComponent("other.safetensors").path)
        expectCleanError(try CLI.run(["export", "--checkpoint", dir.appendingPathComponent("other.safetensors").path, "--onnx", dir.appendingPathComponent("x.onnx").path]), mentions: "other.safetensors")
        expectCleanError(try CLI.run(["export", "--checkpoint", dir.appendingPathComponent("none.safetensors").path, "--onnx", dir.appendingPathComponent("x.onnx").path]), mentions: "none.safetensors")
        expectCleanError(try CLI.run(["export", "--checkpoint", model, "--onnx", dir.appendingPathComponent("no/such/m.onnx").path]), mentions: "m.onnx")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.onnx").path))
    }
}
