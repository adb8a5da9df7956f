import Foundation

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord framing uses it, and the
/// "masked" form stored in record files: rotate right by 15 bits, add 0xA282EAD8.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    public static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }
}

/// TFRecord framing: length (UInt64 LE), masked CRC-32C of those 8 bytes (UInt32 LE), the
/// payload, masked CRC-32C of the payload (UInt32 LE).
public enum TFRecord {
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        let length = withUnsafeBytes(of: UInt64(payload.count).littleEndian, Array.init)
        out += length
        out += withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(length)).littleEndian, Array.init)
        out += payload
        out += withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(payload)).littleEndian, Array.init)
        return out
    }
}

/// The few protocol-buffer encodings the event files need (proto3 wire format).
enum ProtoWriter {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        repeat {
            let byte = UInt8(v & 0x7F)
            v >>= 7
            out.append(v == 0 ? byte : byte | 0x80)
        } while v != 0
        return out
    }
    static func key(_ field: Int, _ wire: Int) -> [UInt8] { varint(UInt64(field << 3 | wire)) }
    /// Wire type 2: bytes, strings and embedded messages.
    static func bytes(_ field: Int, _ value: [UInt8]) -> [UInt8] { key(field, 2) + varint(UInt64(value.count)) + value }
    static func string(_ field: Int, _ value: String) -> [UInt8] { bytes(field, Array(value.utf8)) }
    static func uint(_ field: Int, _ value: UInt64) -> [UInt8] { key(field, 0) + varint(value) }
    static func double(_ field: Int, _ value: Double) -> [UInt8] { key(field, 1) + withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
    static func float(_ field: Int, _ value: Float) -> [UInt8] { key(field, 5) + withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
}

/// Writes TensorBoard event files: `events.out.tfevents.<seconds>.<host>.<pid>` in `directory`,
/// a TFRecord file of `Event` protobufs, encoded by hand (field numbers from tensorboard's
/// event.proto, summary.proto and tensor.proto):
///
///     Event    { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5 }
///     Summary  { repeated Value value = 1 }
///     Value    { string tag = 1; float simple_value = 2; TensorProto tensor = 8; SummaryMetadata metadata = 9 }
///     SummaryMetadata { PluginData plugin_data = 1 }   PluginData { string plugin_name = 1; bytes content = 2 }
///     TensorProto { DataType dtype = 1 (DT_STRING = 7); TensorShapeProto tensor_shape = 2; repeated bytes string_val = 8 }
///
/// Scalars are `simple_value`s (the scalars dashboard reads them); texts are scalar string
/// tensors with the text plugin's metadata. The first record is the `file_version` event
/// "brain.Event:2". Records are appended as they come; `flush()` pushes them to disk.
public final class TensorBoardWriter {
    public let path: String
    private let handle: FileHandle
    private var pending: [UInt8] = []

    /// Creates `directory` (one level) when missing and opens a new event file in it.
    public init(directory: String, wallTime: Double = Date().timeIntervalSince1970) throws {
        try OutputFolder.ensure(directory, flag: "--tensorboard")
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        path = URL(fileURLWithPath: directory).appendingPathComponent("events.out.tfevents.\(Int(wallTime)).\(host).\(getpid())").path
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw RecurrentError("--tensorboard \(directory): cannot create \(path)")
        }
        handle = h
        write(event(wallTime: wallTime, step: 0, body: ProtoWriter.string(3, "brain.Event:2")))
        try flush()
    }

    deinit { try? handle.close() }

    func event(wallTime: Double, step: Int, body: [UInt8]) -> [UInt8] {
        ProtoWriter.double(1, wallTime) + ProtoWriter.uint(2, UInt64(max(0, step))) + body
    }

    private func write(_ event: [UInt8]) { pending += TFRecord.frame(event) }

    /// One scalar (`simple_value`) at `step`.
    public func scalar(_ tag: String, _ value: Double, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        let v = ProtoWriter.string(1, tag) + ProtoWriter.float(2, Float(value))
        write(event(wallTime: wallTime, step: step, body: ProtoWriter.bytes(5, ProtoWriter.bytes(1, v))))
    }

    /// One text (a scalar DT_STRING tensor, text plugin) at `step`; TensorBoard renders it as Markdown.
    public func text(_ tag: String, _ text: String, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        let tensor = ProtoWriter.uint(1, 7) + ProtoWriter.bytes(2, []) + ProtoWriter.bytes(8, Array(text.utf8))
        let metadata = ProtoWriter.bytes(1, ProtoWriter.string(1, "text"))
        let v = ProtoWriter.string(1, tag) + ProtoWriter.bytes(8, tensor) + ProtoWriter.bytes(9, metadata)
        write(event(wallTime: wallTime, step: step, body: ProtoWriter.bytes(5, ProtoWriter.bytes(1, v))))
    }

    /// Appends the pending records to the file and syncs it.
    public func flush() throws {
        guard !pending.isEmpty else { return }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(pending))
            try handle.synchronize()
        } catch {
            throw RecurrentError("\(path): cannot write the event file (\(error.localizedDescription))")
        }
        pending.removeAll(keepingCapacity: true)
    }
}
