/// A 64-bit FNV-1a hash of what a run trains on, kept in its training state, so that `--resume`
/// with other data (other examples, labels or order) is refused instead of silently continuing on
/// it. Each `add` also hashes the element count, so [[1, 2], [3]] and [[1], [2, 3]] differ.
public struct DataFingerprint: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    private mutating func add(bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        value = h
    }

    public mutating func add<T: BitwiseCopyable>(_ values: [T]) {
        var n = UInt64(values.count)
        withUnsafeBytes(of: &n) { add(bytes: $0) }
        values.withUnsafeBytes { add(bytes: $0) }
    }

    public mutating func add(_ s: String) { add(Array(s.utf8)) }

    /// 16 hexadecimal digits, as stored in the training state's `data` metadata.
    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// The fingerprint of sequences (each added with its length) and their targets.
    public static func of<T: BitwiseCopyable, U: BitwiseCopyable>(_ inputs: [[T]], _ targets: [U]) -> String {
        var f = DataFingerprint()
        for x in inputs { f.add(x) }
        f.add(targets)
        return f.hex
    }

    /// The fingerprint of sequences and their target sequences.
    public static func of<T: BitwiseCopyable, U: BitwiseCopyable>(_ inputs: [[T]], _ targets: [[U]]) -> String {
        var f = DataFingerprint()
        for x in inputs { f.add(x) }
        for y in targets { f.add(y) }
        return f.hex
    }
}
