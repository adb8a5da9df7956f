// Temporary until the kernels branch lands.
public enum Threading { nonisolated(unsafe) public static var count: Int = 1 }
