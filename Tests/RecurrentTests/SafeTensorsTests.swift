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

    @Test func rejectsBadFiles() throws {
        #expect(throws: RecurrentError.self) { try SafeTensors.decode(Data([1, 2, 3]), name: "t") }
        var bad = Data(count: 8); bad[0] = 200
        #expect(throws: RecurrentError.self) { try SafeTensors.decode(bad + Data("{}".utf8), name: "t") }
        let good = try SafeTensors.encode([("a", Tensor(shape: [4], data: [1, 2, 3, 4]))], metadata: [:])
        #expect(throws: RecurrentError.self) { try SafeTensors.decode(good.prefix(good.count - 4), name: "t") }
    }
}
