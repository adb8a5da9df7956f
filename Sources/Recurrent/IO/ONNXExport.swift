import Foundation

/// ONNX export of a char-LM: the same weights as one ONNX model that ONNX Runtime (or any ONNX
/// runtime with opset 17) runs without this package.
///
/// The graph, time-major as ONNX's recurrent operators are (T steps, B streams, L layers):
///
///     inputs   tokens int64 [T, B]; h0 float [L, B, H]; c0 float [L, B, H] (LSTM only)
///     Gather(embedding.weight, tokens)                      → [T, B, E]
///     per layer l: LSTM / GRU / RNN (one direction), initial state Gather(h0, [l])
///                  → Y [T, 1, B, H] → Squeeze(axis 1) → the next layer's input
///     MatMul(Y, head.weightᵀ) + head.bias                   → logits [T, B, V]
///     outputs  logits [T, B, V]; hn [L, B, H]; cn [L, B, H] (LSTM only)
///
/// T and B are free (`seq`, `batch`). A fresh start passes zeros for h0 (and c0); to continue a
/// text, pass the previous call's hn (and cn). The vocabulary is stored in the model's metadata
/// (`vocab`, the checkpoint's JSON array), with the architecture keys of the checkpoint.
///
/// PyTorch's gate blocks are reordered to ONNX's (the operators' documentation):
/// LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h with `linear_before_reset = 1` (PyTorch's
/// r ⊙ (W_hn·h + b_hn)); RNN with activation Tanh or Relu. Biases become ONNX's B = [W_b, R_b].
public enum CharLMONNX {
    /// The opset the graph is written for (Squeeze takes its axes as an input from 13 on).
    public static let opset = 17

    /// The serialized ONNX model (ModelProto).
    public static func export(_ model: CharLM) -> Data {
        let c = model.config
        let V = c.vocabulary.count, E = c.embeddingSize, H = c.hiddenSize, L = c.numLayers
        let G = c.cell.gateCount
        let lstm = c.cell == .lstm
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.0, $0.1.value) })
        func tensor(_ name: String) -> Tensor { params[name]! }

        // ONNX block order as indices of PyTorch's blocks.
        let order: [Int]
        switch c.cell {
        case .lstm: order = [0, 3, 1, 2]
        case .gru: order = [1, 0, 2]
        case .rnnTanh, .rnnRelu: order = [0]
        }
        func reorderRows(_ t: Tensor) -> [Float] {   // (G·H, K) or (G·H,) with PyTorch's blocks → ONNX's
            let k = t.count / (G * H)
            var out: [Float] = []
            out.reserveCapacity(t.count)
            for b in order { out.append(contentsOf: t.data[(b * H * k)..<((b + 1) * H * k)]) }
            return out
        }

        var graph = ONNXProto.Message()
        var initializers: [ONNXProto.Message] = []
        var nodes: [ONNXProto.Message] = []
        initializers.append(ONNXProto.floatTensor("embedding.weight", dims: [V, E], tensor("embedding.weight").data))
        nodes.append(ONNXProto.node("Gather", inputs: ["embedding.weight", "tokens"], outputs: ["embedded"], name: "embedding"))
        initializers.append(ONNXProto.int64Tensor("squeeze_axes", dims: [1], [1]))
        var x = "embedded"
        var finalH: [String] = [], finalC: [String] = []
        for l in 0..<L {
            let wih = tensor("rnn.weight_ih_l\(l)"), whh = tensor("rnn.weight_hh_l\(l)")
            let bih = tensor("rnn.bias_ih_l\(l)"), bhh = tensor("rnn.bias_hh_l\(l)")
            let din = wih.shape[1]
            initializers.append(ONNXProto.floatTensor("W_l\(l)", dims: [1, G * H, din], reorderRows(wih)))
            initializers.append(ONNXProto.floatTensor("R_l\(l)", dims: [1, G * H, H], reorderRows(whh)))
            initializers.append(ONNXProto.floatTensor("B_l\(l)", dims: [1, 2 * G * H], reorderRows(bih) + reorderRows(bhh)))
            initializers.append(ONNXProto.int64Tensor("layer_\(l)", dims: [1], [Int64(l)]))
            nodes.append(ONNXProto.node("Gather", inputs: ["h0", "layer_\(l)"], outputs: ["h0_l\(l)"], name: "h0_l\(l)"))
            var inputs = [x, "W_l\(l)", "R_l\(l)", "B_l\(l)", "", "h0_l\(l)"]
            var outputs = ["Y_l\(l)", "hn_l\(l)"]
            if lstm {
                nodes.append(ONNXProto.node("Gather", inputs: ["c0", "layer_\(l)"], outputs: ["c0_l\(l)"], name: "c0_l\(l)"))
                inputs.append("c0_l\(l)")
                outputs.append("cn_l\(l)")
            }
            var attributes = [ONNXProto.intAttribute("hidden_size", Int64(H))]
            let op: String
            switch c.cell {
            case .lstm: op = "LSTM"
            case .gru:
                op = "GRU"
                attributes.append(ONNXProto.intAttribute("linear_before_reset", 1))
            case .rnnTanh, .rnnRelu:
                op = "RNN"
                attributes.append(ONNXProto.stringsAttribute("activations", [c.cell == .rnnTanh ? "Tanh" : "Relu"]))
            }
            nodes.append(ONNXProto.node(op, inputs: inputs, outputs: outputs, name: "rnn_l\(l)", attributes: attributes))
            nodes.append(ONNXProto.node("Squeeze", inputs: ["Y_l\(l)", "squeeze_axes"], outputs: ["out_l\(l)"], name: "squeeze_l\(l)"))
            x = "out_l\(l)"
            finalH.append("hn_l\(l)")
            if lstm { finalC.append("cn_l\(l)") }
        }
        nodes.append(ONNXProto.node("Concat", inputs: finalH, outputs: ["hn"], name: "hn", attributes: [ONNXProto.intAttribute("axis", 0)]))
        if lstm {
            nodes.append(ONNXProto.node("Concat", inputs: finalC, outputs: ["cn"], name: "cn", attributes: [ONNXProto.intAttribute("axis", 0)]))
        }
        let w = tensor("head.weight")   // (V, H) → (H, V)
        var wt = [Float](repeating: 0, count: V * H)
        for v in 0..<V { for h in 0..<H { wt[h * V + v] = w.data[v * H + h] } }
        initializers.append(ONNXProto.floatTensor("head.weight_t", dims: [H, V], wt))
        initializers.append(ONNXProto.floatTensor("head.bias", dims: [V], tensor("head.bias").data))
        nodes.append(ONNXProto.node("MatMul", inputs: [x, "head.weight_t"], outputs: ["head_mm"], name: "head_matmul"))
        nodes.append(ONNXProto.node("Add", inputs: ["head_mm", "head.bias"], outputs: ["logits"], name: "head_bias"))

        for n in nodes { graph.message(1, n) }
        graph.string(2, "char_lm")
        for t in initializers { graph.message(5, t) }
        let seq = ONNXProto.Dim.param("seq"), batch = ONNXProto.Dim.param("batch")
        graph.message(11, ONNXProto.valueInfo("tokens", elemType: ONNXProto.int64, dims: [seq, batch]))
        graph.message(11, ONNXProto.valueInfo("h0", elemType: ONNXProto.float, dims: [.value(L), batch, .value(H)]))
        if lstm { graph.message(11, ONNXProto.valueInfo("c0", elemType: ONNXProto.float, dims: [.value(L), batch, .value(H)])) }
        graph.message(12, ONNXProto.valueInfo("logits", elemType: ONNXProto.float, dims: [seq, batch, .value(V)]))
        graph.message(12, ONNXProto.valueInfo("hn", elemType: ONNXProto.float, dims: [.value(L), batch, .value(H)]))
        if lstm { graph.message(12, ONNXProto.valueInfo("cn", elemType: ONNXProto.float, dims: [.value(L), batch, .value(H)])) }

        var m = ONNXProto.Message()
        m.int(1, 8)                                // ir_version
        m.string(2, "recurrent")                   // producer_name
        m.message(7, graph)
        var opsetID = ONNXProto.Message()
        opsetID.string(1, "")
        opsetID.int(2, Int64(opset))
        m.message(8, opsetID)
        for (k, v) in CharLMCheckpoint.metadata(for: c).sorted(by: { $0.key < $1.key }) {
            var entry = ONNXProto.Message()
            entry.string(1, k)
            entry.string(2, v)
            m.message(14, entry)                   // metadata_props
        }
        return m.bytes
    }

    /// Reads a char-LM checkpoint and writes its ONNX model atomically to `path`.
    public static func export(checkpoint: String, to path: String) throws {
        let model = try CharLMCheckpoint.load(path: checkpoint)
        try AtomicFile.write(export(model), to: path)
    }
}

/// The few ONNX protobuf messages the exporter writes, encoded by hand (field numbers from
/// onnx.proto): varints, little-endian floats and length-delimited fields, nothing else.
enum ONNXProto {
    static let float: Int64 = 1   // TensorProto.DataType
    static let int64: Int64 = 7

    struct Message {
        var bytes = Data()

        mutating func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                bytes.append(UInt8(v & 0x7f) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(v))
        }
        mutating func key(_ field: Int, _ wire: UInt64) { varint(UInt64(field) << 3 | wire) }
        mutating func int(_ field: Int, _ v: Int64) {
            key(field, 0)
            varint(UInt64(bitPattern: v))
        }
        mutating func lengthDelimited(_ field: Int, _ d: Data) {
            key(field, 2)
            varint(UInt64(d.count))
            bytes.append(d)
        }
        mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Data(s.utf8)) }
        mutating func message(_ field: Int, _ m: Message) { lengthDelimited(field, m.bytes) }
        mutating func packedInts(_ field: Int, _ values: [Int64]) {
            var inner = Message()
            for v in values { inner.varint(UInt64(bitPattern: v)) }
            lengthDelimited(field, inner.bytes)
        }
    }

    enum Dim {
        case value(Int)
        case param(String)
    }

    static func floatTensor(_ name: String, dims: [Int], _ values: [Float]) -> Message {
        var raw = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        return tensor(name, dims: dims, type: float, raw: raw, count: values.count)
    }

    static func int64Tensor(_ name: String, dims: [Int], _ values: [Int64]) -> Message {
        var raw = Data(capacity: values.count * 8)
        for v in values { withUnsafeBytes(of: v.littleEndian) { raw.append(contentsOf: $0) } }
        return tensor(name, dims: dims, type: int64, raw: raw, count: values.count)
    }

    /// A TensorProto with its values in raw_data (little-endian, as ONNX requires).
    private static func tensor(_ name: String, dims: [Int], type: Int64, raw: Data, count: Int) -> Message {
        precondition(count == dims.reduce(1, *))
        var t = Message()
        t.packedInts(1, dims.map(Int64.init))
        t.int(2, type)
        t.string(8, name)
        t.lengthDelimited(9, raw)
        return t
    }

    static func intAttribute(_ name: String, _ v: Int64) -> Message {
        var a = Message()
        a.string(1, name)
        a.int(3, v)
        a.int(20, 2)                              // AttributeType.INT
        return a
    }

    static func stringsAttribute(_ name: String, _ values: [String]) -> Message {
        var a = Message()
        a.string(1, name)
        for s in values { a.string(9, s) }
        a.int(20, 8)                              // AttributeType.STRINGS
        return a
    }

    static func node(_ op: String, inputs: [String], outputs: [String], name: String, attributes: [Message] = []) -> Message {
        var n = Message()
        for i in inputs { n.string(1, i) }
        for o in outputs { n.string(2, o) }
        n.string(3, name)
        n.string(4, op)
        for a in attributes { n.message(5, a) }
        return n
    }

    static func valueInfo(_ name: String, elemType: Int64, dims: [Dim]) -> Message {
        var shape = Message()
        for d in dims {
            var dim = Message()
            switch d {
            case .value(let v): dim.int(1, Int64(v))
            case .param(let p): dim.string(2, p)
            }
            shape.message(1, dim)
        }
        var tensorType = Message()
        tensorType.int(1, elemType)
        tensorType.message(2, shape)
        var type = Message()
        type.message(1, tensorType)
        var info = Message()
        info.string(1, name)
        info.message(2, type)
        return info
    }
}
