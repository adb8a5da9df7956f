/// A dense float32 tensor in row-major order, with value semantics (copy-on-write through `[Float]`).
///
/// Shape legend used across the library: B batch, T time, D input features, H hidden units,
/// V vocabulary, E embedding width, L layers, G gate rows (4H for LSTM, 3H for GRU, H for RNN).
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public var shape: [Int]
    /// The elements, `shape.reduce(1, *)` of them, last dimension contiguous.
    public var data: [Float]

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        require(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.data = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor over existing elements; `data.count` must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        require(data.count == shape.reduce(1, *), "data has \(data.count) elements, shape \(shape) needs \(shape.reduce(1, *))")
        self.shape = shape
        self.data = data
    }

    /// The number of elements.
    @inlinable public var count: Int { data.count }

    /// Zeros of the same shape.
    public static func zeros(like other: Tensor) -> Tensor { Tensor(shape: other.shape) }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor { Tensor(shape: newShape, data: data) }

    /// Sets every element to zero, keeping the storage.
    public mutating func zero() {
        data.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            base.update(repeating: 0, count: p.count)
        }
    }

    /// Largest absolute elementwise difference to `other` (same shape required).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        require(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<data.count { m = max(m, abs(data[i] - other.data[i])) }
        return m
    }
}
