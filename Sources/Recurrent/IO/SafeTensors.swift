import Foundation

/// Reading and writing the safetensors format (https://huggingface.co/docs/safetensors):
///
///     [8 bytes: N, little-endian u64] [N bytes: JSON header] [tensor bytes]
///
/// The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
/// (offsets relative to the end of the header) and may hold `"__metadata__"`: a map of strings.
/// Recurrent reads F32, F16, BF16, F64, I32 and I64 (converted to float32) and writes F32.
public struct SafeTensorsFile: Sendable {
    /// Tensors by name.
    public var tensors: [String: Tensor]
    /// The `__metadata__` string map (empty when absent).
    public var metadata: [String: String]
    /// Tensor names in the order of their data offsets.
    public var order: [String]

    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:], order: [String] = []) {
        self.tensors = tensors
        self.metadata = metadata
        self.order = order
    }
}

public enum SafeTensors {
    /// The largest header we accept (the format's own limit is 100 MB).
    static let maxHeaderBytes = 100_000_000

    /// Reads a whole safetensors file. Every malformed input is a `RecurrentError` naming `path`.
    public static func read(path: String) throws -> SafeTensorsFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            var isFolder: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                throw RecurrentError("\(path): no such file")
            }
            if isFolder.boolValue { throw RecurrentError("\(path): is a folder, expected a safetensors file") }
            throw RecurrentError("\(path): cannot read the file")
        }
        return try decode(data, name: path)
    }

    /// Decodes safetensors bytes; `name` labels error messages.
    public static func decode(_ data: Data, name: String) throws -> SafeTensorsFile {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else {
            throw RecurrentError("\(name): not a safetensors file (\(bytes.count) bytes, expected at least an 8-byte header length)")
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderBytes), 8 + Int(n) <= bytes.count else {
            throw RecurrentError("\(name): not a safetensors file or truncated (header length \(n) but the file has \(bytes.count) bytes)")
        }
        let headerEnd = 8 + Int(n)
        let headerBytes = Data(bytes[8..<headerEnd])
        guard let object = try? JSONSerialization.jsonObject(with: headerBytes), let header = object as? [String: Any] else {
            throw RecurrentError("\(name): not a safetensors file (its header is not a JSON object)")
        }
        var file = SafeTensorsFile()
        let payload = bytes.count - headerEnd
        var spans: [(String, Int, Int)] = []
        // Keys in order, so that a file with several faults always reports the same one.
        for key in header.keys.sorted() {
            let value = header[key]!
            if key == "__metadata__" {
                guard let meta = value as? [String: Any] else {
                    throw RecurrentError("\(name): __metadata__ is not a map of strings")
                }
                for (mk, mv) in meta {
                    guard let s = mv as? String else { throw RecurrentError("\(name): __metadata__ entry \(mk) is not a string") }
                    file.metadata[mk] = s
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw RecurrentError("\(name): tensor \(key) has a malformed header entry (expected dtype, shape and data_offsets)")
            }
            let shape = try shapeAny.map { v -> Int in
                guard let i = (v as? NSNumber)?.intValue, i >= 0 else {
                    throw RecurrentError("\(name): tensor \(key) has a bad shape \(shapeAny)")
                }
                return i
            }
            guard let begin = (offsetsAny[0] as? NSNumber)?.intValue, let end = (offsetsAny[1] as? NSNumber)?.intValue,
                  begin >= 0, end >= begin else {
                throw RecurrentError("\(name): tensor \(key) has bad data_offsets \(offsetsAny)")
            }
            guard end <= payload else {
                throw RecurrentError("\(name): tensor \(key) points past the end of the file (data_offsets end \(end), but only \(payload) data bytes); the file is truncated or corrupt")
            }
            let elementSize: Int
            switch dtype {
            case "F32": elementSize = 4
            case "F16", "BF16": elementSize = 2
            case "F64", "I64": elementSize = 8
            case "I32": elementSize = 4
            default: throw RecurrentError("\(name): tensor \(key) has dtype \(dtype); expected F32, F16, BF16, F64, I32 or I64")
            }
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, product <= payload else {
                    throw RecurrentError("\(name): tensor \(key) has shape \(shape), more elements than the file's \(payload) data bytes hold")
                }
                count = product
            }
            guard end - begin == count * elementSize else {
                throw RecurrentError("\(name): tensor \(key) has \(end - begin) bytes, but shape \(shape) of \(dtype) needs \(count * elementSize)")
            }
            var values = [Float](repeating: 0, count: count)
            let base = headerEnd + begin
            for i in 0..<count {
                let o = base + i * elementSize
                switch dtype {
                case "F32":
                    let u = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                    values[i] = Float(bitPattern: u)
                case "BF16":
                    let u = UInt32(bytes[o]) << 16 | UInt32(bytes[o + 1]) << 24
                    values[i] = Float(bitPattern: u)
                case "F16":
                    let u = UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8
                    values[i] = Float(halfBits: u)
                case "I32":
                    let u = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                    values[i] = Float(Int32(bitPattern: u))
                case "I64":
                    var u: UInt64 = 0
                    for j in 0..<8 { u |= UInt64(bytes[o + j]) << (8 * UInt64(j)) }
                    values[i] = Float(Int64(bitPattern: u))
                default:
                    var u: UInt64 = 0
                    for j in 0..<8 { u |= UInt64(bytes[o + j]) << (8 * UInt64(j)) }
                    values[i] = Float(Double(bitPattern: u))
                }
            }
            file.tensors[key] = Tensor(shape: shape, data: values)
            spans.append((key, begin, end))
        }
        spans.sort { $0.1 < $1.1 || ($0.1 == $1.1 && $0.2 < $1.2) }
        // As the format's own loader requires: the tensors' bytes follow one another with no gap
        // or overlap and fill the data part to its end.
        var covered = 0
        for (key, begin, end) in spans {
            guard begin == covered else {
                throw RecurrentError("\(name): tensor \(key)'s data_offsets start at \(begin), expected \(covered) (tensors must follow one another with no gap or overlap); the file is corrupt")
            }
            covered = end
        }
        guard covered == payload else {
            throw RecurrentError("\(name): \(payload - covered) bytes after the last tensor's data; the file is corrupt or has trailing bytes")
        }
        file.order = spans.map { $0.0 }
        return file
    }

    /// Encodes tensors (in the given order) and metadata as safetensors bytes, float32.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            let size = t.count * 4
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces so the data is 8-aligned
        var out = Data(capacity: 8 + json.count + offset)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in tensors {
            t.data.withUnsafeBytes { raw in
                #if _endian(big)
                for v in t.data { var b = v.bitPattern.littleEndian; withUnsafeBytes(of: &b) { out.append(contentsOf: $0) } }
                #else
                out.append(contentsOf: raw)
                #endif
            }
        }
        return out
    }

    /// Writes a safetensors file atomically: a temporary file beside `path`, then a rename,
    /// so a reader never sees a half-written checkpoint.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String], to path: String) throws {
        let data = try encode(tensors, metadata: metadata)
        try AtomicFile.write(data, to: path)
    }
}

/// Whole-file writes that are never seen half-done: write a temporary file in the same folder,
/// then rename it over the target (rename is atomic within one file system).
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw RecurrentError("\(path): the folder \(dir.path) does not exist")
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw RecurrentError("\(path): cannot write the file (\(error.localizedDescription))")
        }
        if rename(tmp.path, url.path) != 0 {
            try? FileManager.default.removeItem(at: tmp)
            throw RecurrentError("\(path): cannot write the file (rename failed)")
        }
    }
}

extension Float {
    /// Converts IEEE half-precision bits to float.
    init(halfBits h: UInt16) {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(mant) * Float(sign == 0 ? 1 : -1) / 16_777_216.0  // 2^-24
            self = v
        } else if exp == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
        }
    }
}
