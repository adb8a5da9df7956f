import Foundation
import Testing
@testable import Recurrent

@Suite struct SafeTensorsTests {
    @Test func roundTrip() throws {
        let a = Tensor(shape: [2, 3], data: [1, -2, 3.5, 0, 1e-8, -7])
        let b = Tensor(shape: [4], data: [9, 8, 7, 6])
        let data = try SafeTensors.encode([("a", a), ("b.c", b)], metadata: ["model": "x"])
        let f = try SafeTensors.decode(data, name: "mem")
        #expect(f.tensors["a"] == a)
        #expect(f.tensors["b.c"] == b)
        #expect(f.metadata["model"] == "x")
        #expect(f.order == ["a", "b.c"])
    }

    @Test func readsTorchFixture() throws {
        let f = try SafeTensors.read(path: Fixtures.torch("charlm_lstm.checkpoint.safetensors"))
        #expect(f.metadata["cell"] == "lstm")
        #expect(f.tensors["embedding.weight"]?.shape == [27, 7])
        #expect(f.tensors["rnn.weight_ih_l0"]?.shape == [36, 7])
    }

    @Test func errorsCarryTheirMessageAsLocalizedDescription() {
        let error: Error = RecurrentError("m.safetensors: no such file")
        #expect(error.localizedDescription == "m.safetensors: no such file")
    }

    @Test func rejectsBadFiles() throws {
        #expect(throws: RecurrentError.self) { try SafeTensors.decode(Data([1, 2, 3]), name: "t") }
        var bad = Data(count: 8); bad[0] = 200
        #expect(throws: RecurrentError.self) { try SafeTensors.decode(bad + Data("{}".utf8), name: "t") }
        let good = try SafeTensors.encode([("a", Tensor(shape: [4], data: [1, 2, 3, 4]))], metadata: [:])
        #expect(throws: RecurrentError.self) { try SafeTensors.decode(good.prefix(good.count - 4), name: "t") }
    }

    /// safetensors bytes with this header JSON and `data` after it.
    func file(_ header: String, _ data: [UInt8]) -> Data {
        var out = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        return out + Data(header.utf8) + Data(data)
    }

    func message(_ data: Data) -> String {
        do { _ = try SafeTensors.decode(data, name: "f.safetensors"); return "no error" } catch { return "\(error)" }
    }

    @Test func rejectsShapesGapsAndTrailingBytesAsTheFormatsLoaderDoes() throws {
        let eight = [UInt8](repeating: 0, count: 8)
        #expect(message(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, eight)) == "no error")
        // A shape whose element count overflows: one line, not a crash.
        #expect(message(file(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,8]}}"#, eight))
                .contains("tensor a has shape"))
        #expect(message(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, eight)).contains("4 bytes after the last tensor"))
        #expect(message(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight)).contains("start at 4, expected 0"))
        #expect(message(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight))
                .contains("start at 4, expected 8"))
    }

    /// A small char-LM saved in a fresh folder: (the folder, the checkpoint's path).
    func savedCharLM(_ characters: String = "abc", cell: CellKind = .lstm) throws -> (URL, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = SeededRNG(seed: 3)
        let vocabulary = CharVocabulary(text: Array(characters.unicodeScalars))
        let model = CharLM(config: CharLMConfig(cell: cell, vocabulary: vocabulary, embeddingSize: 3, hiddenSize: 4, numLayers: 1), rng: &rng)
        let path = dir.appendingPathComponent("m.safetensors").path
        try CharLMCheckpoint.save(model, to: path)
        return (dir, path)
    }

    @Test func checkpointsLoadLikeAStrictStateDict() throws {
        let (dir, path) = try savedCharLM(cell: .gru)
        let good = try SafeTensors.read(path: path)
        func loadError(_ tensors: [(String, Tensor)]) -> String {
            let p = dir.appendingPathComponent("x.safetensors").path
            do { try SafeTensors.write(tensors, metadata: good.metadata, to: p); _ = try CharLMCheckpoint.load(path: p); return "no error" } catch { return "\(error)" }
        }
        let all = good.order.map { ($0, good.tensors[$0]!) }
        #expect(loadError(all) == "no error")
        #expect(loadError(all + [("extra.weight", Tensor(shape: [1], data: [0]))]).contains("unexpected tensor extra.weight"))
        var poisoned = all
        poisoned[1].1.data[0] = .nan
        #expect(loadError(poisoned).contains("tensor \(all[1].0) holds nan or infinite values"))
    }

    @Test func aByteOrderMarkInTheVocabularySurvivesTheCheckpoint() throws {
        let characters = "\u{FEFF}a\u{2028}b\u{200D}"
        let (_, path) = try savedCharLM(characters)
        #expect(try CharLMCheckpoint.load(path: path).config.vocabulary.characters == CharVocabulary(text: Array(characters.unicodeScalars)).characters)
    }

    /// Written raw, as Python's `json.dumps(vocab, ensure_ascii=False)` and the safetensors writer
    /// leave it, a U+FEFF inside the header's strings is kept too (Foundation's reader dropped it).
    @Test func aRawByteOrderMarkInTheHeaderIsKept() throws {
        let vocab = "[\"a\", \"\u{FEFF}\"]"
        let header = "{\"__metadata__\":{\"vocab\":\"\(vocab.replacingOccurrences(of: "\"", with: "\\\""))\",\"note\":\"\u{FEFF}x\u{FEFF}\"},"
            + "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        let json = Array(header.utf8)
        #expect(json.count > 3 && zip(json, json.dropFirst()).contains { $0 == 0xEF && $1 == 0xBB })   // raw, not escaped
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) } + json
        bytes += [0, 0, 128, 63]
        let path = CLI.tempDir().appendingPathComponent("raw-bom.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        for metadata in [try SafeTensors.read(path: path).metadata, try SafeTensors.metadata(path: path)] {
            #expect(metadata["note"]?.unicodeScalars.map(\.value) == [0xFEFF, 0x78, 0xFEFF])
            let parsed = try CharVocabulary(json: try #require(metadata["vocab"]), source: "vocab")
            #expect(parsed.characters == ["a", "\u{FEFF}"])
        }
        #expect(try SafeTensors.read(path: path).tensors["t"]?.data == [1])
    }

    /// Corrupt sizes in the metadata get one line before a model is allocated from them (they
    /// failed to allocate or ran for minutes).
    @Test(arguments: [("hidden_size", "3000000000"), ("num_layers", "999999999"), ("embedding_size", "999999999999")])
    func corruptSizesAreRefusedBeforeTheModelIsBuilt(key: String, value: String) throws {
        let (_, path) = try savedCharLM()
        let good = try SafeTensors.read(path: path)
        var meta = good.metadata
        meta[key] = value
        try SafeTensors.write(good.order.map { ($0, good.tensors[$0]!) }, metadata: meta, to: path)
        do {
            _ = try CharLMCheckpoint.load(path: path)
            Issue.record("expected an error")
        } catch let e as RecurrentError {
            #expect(e.message.contains("\(key) \(value)") && e.message.hasSuffix("the checkpoint is corrupt"), "\(e.message)")
        }
    }
}
