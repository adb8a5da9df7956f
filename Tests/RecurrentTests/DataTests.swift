import Foundation
import Testing
@testable import Recurrent

/// A fresh temporary file holding `bytes`; removed by the caller.
private func temporaryFile(_ bytes: [UInt8], name: String = "text") throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("recurrent-data-\(UUID().uuidString)-\(name).txt")
    try Data(bytes).write(to: url)
    return url.path
}

private func message(_ body: () throws -> Void) -> String? {
    do { try body() } catch let e as RecurrentError { return e.message } catch { return "\(error)" }
    return nil
}

@Suite struct TextFileTests {
    @Test func decodesKoreanAndEmoji() throws {
        let text = "한국어 ok 😀\n"
        let got = try TextFile.decodeUTF8(Array(text.utf8), name: "t")
        #expect(got == Array(text.unicodeScalars))
        #expect(got.map(\.value) == [0xD55C, 0xAD6D, 0xC5B4, 0x20, 0x6F, 0x6B, 0x20, 0x1F600, 0x0A])
        // Boundary scalars of each length.
        let edges: [UInt32] = [0x0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF]
        let s = String(String.UnicodeScalarView(edges.compactMap(Unicode.Scalar.init)))
        #expect(try TextFile.decodeUTF8(Array(s.utf8), name: "t").map(\.value) == edges)
    }

    @Test(arguments: [
        ([0x61, 0x80], 1),                     // stray continuation byte
        ([0x61, 0x62, 0xC0, 0xAF], 2),         // overlong '/' (C0)
        ([0xC1, 0xBF], 0),                     // overlong (C1)
        ([0x61, 0xE0, 0x80, 0xAF], 1),         // overlong 3-byte
        ([0xF0, 0x80, 0x80, 0xAF], 0),         // overlong 4-byte
        ([0x61, 0x62, 0x63, 0xED, 0xA0, 0x80], 3), // surrogate U+D800
        ([0xED, 0xBF, 0xBF], 0),               // surrogate U+DFFF
        ([0xF4, 0x90, 0x80, 0x80], 0),         // above U+10FFFF
        ([0x61, 0xF5, 0x80, 0x80, 0x80], 1),   // byte > 0xF4
        ([0xFF], 0),
        ([0x61, 0xE2, 0x82], 1),               // truncated at the end
        ([0xE2, 0x82, 0x61, 0x62], 0),         // truncated by an ASCII byte
        ([0xEA, 0xB0, 0x80, 0xF0, 0x9F, 0x98], 3), // '가' then a truncated emoji
    ] as [([UInt8], Int)])
    func rejectsInvalidUTF8(bytes: [UInt8], offset: Int) {
        let m = message { _ = try TextFile.decodeUTF8(bytes, name: "in.txt") }
        #expect(m == "in.txt: invalid UTF-8 at byte offset \(offset) (expected UTF-8 text)")
    }

    @Test func readsFileAndDropsBOM() throws {
        let path = try temporaryFile([0xEF, 0xBB, 0xBF] + Array("가a\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try TextFile.read(path: path) == Array("가a\n".unicodeScalars))
        // decodeUTF8 keeps the BOM: it is a valid scalar.
        #expect(try TextFile.decodeUTF8([0xEF, 0xBB, 0xBF, 0x61], name: "t").map(\.value) == [0xFEFF, 0x61])
    }

    @Test func badOffsetCountsTheBOM() throws {
        let path = try temporaryFile([0xEF, 0xBB, 0xBF, 0x61, 0xFF])
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(message { _ = try TextFile.read(path: path) } == "\(path): invalid UTF-8 at byte offset 4 (expected UTF-8 text)")
    }

    @Test func fileErrors() throws {
        let empty = try temporaryFile([])
        let bomOnly = try temporaryFile([0xEF, 0xBB, 0xBF])
        defer {
            try? FileManager.default.removeItem(atPath: empty)
            try? FileManager.default.removeItem(atPath: bomOnly)
        }
        #expect(message { _ = try TextFile.read(path: empty) } == "\(empty): the file is empty")
        #expect(message { _ = try TextFile.read(path: bomOnly) } == "\(bomOnly): the file is empty")
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-no-such-\(UUID().uuidString).txt").path
        #expect(message { _ = try TextFile.read(path: missing) } == "\(missing): no such file")
        let folder = FileManager.default.temporaryDirectory.path
        #expect(message { _ = try TextFile.read(path: folder) } == "\(folder): is a folder, expected a text file")
        #expect(message { _ = try TextFile.read(path: "/dev/zero") } == "/dev/zero: is a device or socket, expected a text file")
    }

    /// Reading in pieces gives the scalars of `read(path:)` with their indices, whatever the piece
    /// size (sequences of 2–4 bytes cut at every place), the BOM dropped, the same errors with
    /// byte offsets counted from the start of the file, and stops when asked.
    @Test func readsInPiecesAsWhole() throws {
        let text = "a가\u{1F600}é\nxyz" + String(repeating: "q€", count: 7)
        let path = try temporaryFile([0xEF, 0xBB, 0xBF] + Array(text.utf8))
        let bad = try temporaryFile(Array("abc가de".utf8) + [0xE0, 0x80] + Array("fg".utf8))
        let stray = try temporaryFile(Array("ab".utf8) + [0xF0, 0x9F, 0x98, 0x80, 0x80] + Array("cd".utf8))
        let bomOnly = try temporaryFile([0xEF, 0xBB, 0xBF])
        defer { for p in [path, bad, stray, bomOnly] { try? FileManager.default.removeItem(atPath: p) } }
        let whole = try TextFile.read(path: path)
        for size in [1, 2, 3, 4, 5, 7, 64] {
            var got: [Unicode.Scalar] = []
            try TextFile.forEachChunk(path: path, chunkBytes: size) { piece, first in
                #expect(first == got.count)
                got += piece
                return true
            }
            #expect(got == whole, "pieces of \(size) bytes")
            #expect(message { try TextFile.forEachChunk(path: bad, chunkBytes: size) { _, _ in true } }
                    == "\(bad): invalid UTF-8 at byte offset 8 (expected UTF-8 text)", "pieces of \(size) bytes")
            #expect(message { try TextFile.forEachChunk(path: bomOnly, chunkBytes: size) { _, _ in true } } == "\(bomOnly): the file is empty")
            // A complete 4-byte character, then a stray continuation byte: the stray byte is the error.
            #expect(message { try TextFile.forEachChunk(path: stray, chunkBytes: size) { _, _ in true } }
                    == "\(stray): invalid UTF-8 at byte offset 6 (expected UTF-8 text)", "pieces of \(size) bytes")
        }
        var pieces = 0
        try TextFile.forEachChunk(path: path, chunkBytes: 4) { _, _ in pieces += 1; return pieces < 2 }
        #expect(pieces == 2)
    }

    @Test func unreadableFile() throws {
        guard getuid() != 0 else { return }  // root reads anything
        let path = try temporaryFile(Array("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        chmod(path, 0)
        let m = message { _ = try TextFile.read(path: path) }
        #expect(m == "\(path): cannot read the file (permission denied)")
    }

    @Test func readsTinyShakespeareQuickly() throws {
        let path = Fixtures.data("tinyshakespeare/input.txt")
        guard FileManager.default.fileExists(atPath: path) else { return }
        let clock = ContinuousClock()
        let start = clock.now
        let text = try TextFile.read(path: path)
        let vocab = CharVocabulary(text: text)
        let tokens = try vocab.encode(text, source: path)
        let elapsed = clock.now - start
        #expect(text.count == 1_115_394)
        #expect(vocab.count == 65)
        #expect(tokens.count == text.count)
        #expect(elapsed < .seconds(1), "read + vocabulary + encode took \(elapsed)")
    }
}

@Suite struct CharVocabularyTests {
    @Test func sortedByCodePointLikePython() throws {
        let v = CharVocabulary(text: Array("😀a가A \nba A".unicodeScalars))
        #expect(v.characters == ["\n", " ", "A", "a", "b", "가", "😀"])
        #expect(v.count == 7)
        #expect(v.index(of: "가") == 5)
        #expect(v.index(of: "\n") == 0)
        #expect(v.index(of: "z") == nil)
        #expect(v.index(of: "😃") == nil)
        let tokens = try v.encode(Array("ba 가😀\n".unicodeScalars), source: "s")
        #expect(tokens == [4, 3, 1, 5, 6, 0])
        #expect(v.decode(tokens) == "ba 가😀\n")
    }

    @Test func explicitList() throws {
        let v = try CharVocabulary(characters: ["z", "a"])
        #expect(v.index(of: "z") == 0)
        #expect(throws: RecurrentError.self) { try CharVocabulary(characters: []) }
        #expect(throws: RecurrentError.self) { try CharVocabulary(characters: ["a", "b", "a"]) }
    }

    @Test func unknownCharacterMessage() throws {
        let v = CharVocabulary(text: Array("abc".unicodeScalars))
        #expect(message { _ = try v.encode(Array("abz".unicodeScalars), source: "prime") }
            == "prime: character 'z' (U+007A) at position 2 is not in the model's vocabulary")
        #expect(message { _ = try v.encode(Array("a\nb".unicodeScalars), source: "in.txt") }
            == "in.txt: character '\\n' (U+000A) at position 1 is not in the model's vocabulary")
        #expect(message { _ = try v.encode(Array("😀".unicodeScalars), source: "x") }
            == "x: character '😀' (U+1F600) at position 0 is not in the model's vocabulary")
    }

    @Test func jsonRoundTrip() throws {
        let v = try CharVocabulary(characters: ["\"", "\\", "\n", "\t", "\r", "\u{1}", "/", "é", "가", "😀", "a", " "])
        let json = v.json
        #expect(json.hasPrefix(#"["\"", "\\", "\n", "\t", "\r", "\u0001", "/", "é""#))
        #expect(!json.contains("\n"))
        #expect(try CharVocabulary(json: json, source: "t") == v)
        // Foundation's JSON reader (like Python's json.loads) reads it to the same characters.
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String]
        #expect(parsed == v.characters.map { String($0) })
    }

    @Test func parsesPythonEscapes() throws {
        // json.dumps(["\n", "é", "가", "😀", "/"]) with ensure_ascii (the default).
        let py = #"["\n", "\u00e9", "\uac00", "\ud83d\ude00", "\/"]"#
        let v = try CharVocabulary(json: py, source: "ckpt")
        #expect(v.characters == ["\n", "é", "가", "😀", "/"])
        #expect(try CharVocabulary(json: " [ \"a\" ,\"b\"] ", source: "t").characters == ["a", "b"])
    }

    @Test(arguments: [
        #"["ab"]"#, #"[""]"#, #"[]"#, #"["a", "a"]"#, #"["a""#, #"["a",]"#, #"{"a": 1}"#,
        #"["\ud83d"]"#, #"["\ude00"]"#, #"["\x"]"#, #"["a"] x"#, #"[1]"#, "[\"\n\"]",
    ])
    func rejectsBadJSON(json: String) {
        let m = message { _ = try CharVocabulary(json: json, source: "model.safetensors") }
        #expect(m?.hasPrefix("model.safetensors: ") == true)
        #expect(m?.contains("\n") == false)
    }

    @Test func checkpointVocabMatchesFixture() throws {
        let file = try SafeTensors.read(path: Fixtures.torch("charlm_lstm.checkpoint.safetensors"))
        let stored = try #require(file.metadata["vocab"])
        let v = try CharVocabulary(json: stored, source: "fixture")
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.torch("charlm_lstm.json")))) as? [String: Any]
        let expected = try #require(info?["vocab"] as? [String])
        #expect(v.characters.map { String($0) } == expected)
        #expect(v.count == 27)
        #expect(v.json == stored)  // we write the same form as json.dumps for ASCII
        // And it is Python's sorted(set(text)) of the fixture's text.
        let text = try TextFile.read(path: Fixtures.torch("charlm_lstm.txt"))
        #expect(CharVocabulary(text: text) == v)
    }
}

@Suite struct CharStreamsTests {
    @Test func twoStreamsOfThree() throws {
        // 20 tokens, B=2, T=3: n = 19/6*6 = 18; streams 0..<9 and 9..<18; 3 batches.
        let tokens = (0..<20).map { Int32($0) }
        let s = try CharStreams(tokens: tokens, batchSize: 2, seqLen: 3, source: "t")
        #expect(s.batchesPerEpoch == 3)
        #expect(s.batch(0).inputs == [0, 1, 2, 9, 10, 11])
        #expect(s.batch(0).targets == [1, 2, 3, 10, 11, 12])
        #expect(s.batch(1).inputs == [3, 4, 5, 12, 13, 14])
        #expect(s.batch(2).inputs == [6, 7, 8, 15, 16, 17])
        #expect(s.batch(2).targets == [7, 8, 9, 16, 17, 18])
    }

    @Test func matchesTorchViewFormula() throws {
        // A naive transcription of data[:n].view(B,-1)[:, i*T:(i+1)*T] over several shapes.
        let tokens = (0..<103).map { Int32($0 * 7 % 101) }
        for (B, T) in [(1, 1), (1, 7), (3, 4), (4, 5), (2, 50), (5, 1)] {
            let s = try CharStreams(tokens: tokens, batchSize: B, seqLen: T, source: "t")
            let n = (tokens.count - 1) / (B * T) * (B * T)
            let width = n / B
            #expect(s.batchesPerEpoch == width / T)
            for i in 0..<s.batchesPerEpoch {
                var x: [Int32] = [], y: [Int32] = []
                for b in 0..<B {
                    for t in 0..<T {
                        x.append(tokens[b * width + i * T + t])
                        y.append(tokens[1 + b * width + i * T + t])
                    }
                }
                let got = s.batch(i)
                #expect(got.inputs == x && got.targets == y, "B=\(B) T=\(T) i=\(i)")
            }
        }
    }

    @Test func fixtureCase() throws {
        let tokens = (0...60).map { Int32($0) }
        let s = try CharStreams(tokens: tokens, batchSize: 1, seqLen: 60, source: "t")
        #expect(s.batchesPerEpoch == 1)
        #expect(s.batch(0).inputs == (0..<60).map { Int32($0) })
        #expect(s.batch(0).targets == (1...60).map { Int32($0) })
    }

    @Test func tooShort() throws {
        let tokens = [Int32](repeating: 0, count: 60)
        #expect(message { _ = try CharStreams(tokens: tokens, batchSize: 2, seqLen: 30, source: "in.txt") }
            == "in.txt: 60 characters is too short for batches of 2 streams × 30 steps (--batch-size × --seq-len; needs at least 61)")
        #expect(throws: RecurrentError.self) { try CharStreams(tokens: tokens, batchSize: 0, seqLen: 3, source: "t") }
        #expect(throws: Never.self) { try CharStreams(tokens: tokens + [1], batchSize: 2, seqLen: 30, source: "t") }
    }
}

@Suite struct SplitTests {
    @Test func boundaries() {
        let t = (0..<10).map { Int32($0) }
        let none = splitTrainValidation(t, fraction: 0)
        #expect(none.train == t && none.validation.isEmpty)
        let tenth = splitTrainValidation(t, fraction: 0.1)
        #expect(tenth.train == Array(t[0..<9]) && tenth.validation == [9])
        let quarter = splitTrainValidation(t, fraction: 0.25)  // 2.5 rounds down
        #expect(quarter.train.count == 8 && quarter.validation == [8, 9])
        let small = splitTrainValidation(t, fraction: 0.05)
        #expect(small.train == t && small.validation.isEmpty)
        let most = splitTrainValidation(t, fraction: 0.99)
        #expect(most.train == [0] && most.validation == Array(t[1...]))
        let empty = splitTrainValidation([], fraction: 0.5)
        #expect(empty.train.isEmpty && empty.validation.isEmpty)
    }
}
