import Foundation
import Testing
@testable import Recurrent

@Suite struct TensorBoardTests {
    /// Check values of CRC-32C: "123456789" (the standard check value) and RFC 3720 B.4's 32 zeros / 32 0xFF bytes.
    @Test func crc32cKnownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    /// Whole frames as the tensorboard package's own writer code frames them
    /// (struct.pack("<Q", n) + masked_crc32c(header) + data + masked_crc32c(data), with
    /// tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c).
    @Test func recordFramingMatchesTensorBoard() {
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(TFRecord.frame([])) == "000000000000000029039807d8ea82a2")
        #expect(hex(TFRecord.frame(Array("a".utf8))) == "01000000000000000175de4161786ee428")
        #expect(hex(TFRecord.frame(Array("hello".utf8))) == "0500000000000000eab2043e68656c6c6fbb1f1c19")
    }

    @Test func protobufVarints() {
        #expect(ProtoWriter.varint(0) == [0])
        #expect(ProtoWriter.varint(1) == [1])
        #expect(ProtoWriter.varint(300) == [0xAC, 0x02])
        #expect(ProtoWriter.string(1, "ab") == [0x0A, 2, 0x61, 0x62])
        #expect(ProtoWriter.float(2, 1) == [0x15, 0, 0, 0x80, 0x3F])
    }

    /// The writer's file parses back as frames whose CRCs hold, starting with the version event.
    @Test func eventFileFramesParse() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)").path
        let w = try TensorBoardWriter(directory: dir, wallTime: 1_700_000_000)
        w.scalar("loss", 1.5, step: 3, wallTime: 1_700_000_001)
        w.text("sample", "hi", step: 3, wallTime: 1_700_000_001)
        try w.flush()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: w.path)))
        var offset = 0, records: [[UInt8]] = []
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[o + $1]) << (8 * $1) } }
        while offset < bytes.count {
            let n = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) })
            #expect(u32(offset + 8) == CRC32C.masked(CRC32C.checksum(bytes[offset..<offset + 8])))
            let payload = Array(bytes[offset + 12..<offset + 12 + n])
            #expect(u32(offset + 12 + n) == CRC32C.masked(CRC32C.checksum(payload)))
            records.append(payload)
            offset += 16 + n
        }
        #expect(offset == bytes.count)
        #expect(records.count == 3)
        #expect(String(decoding: records[0], as: UTF8.self).contains("brain.Event:2"))
        #expect(String(decoding: records[2], as: UTF8.self).contains("text"))
    }
}
