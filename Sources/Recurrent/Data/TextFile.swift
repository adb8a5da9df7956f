#if canImport(Glibc)
import Glibc
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { Glibc.read(fd, buffer, count) }
#elseif canImport(Darwin)
import Darwin
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { Darwin.read(fd, buffer, count) }
#endif

/// Reading text files as Unicode scalars, strictly: a file that is not valid UTF-8 is an error
/// naming the byte offset of the first bad sequence, never a silent replacement character.
///
/// Works on `[UInt8]` and `[Unicode.Scalar]` throughout (no per-`Character` work), so reading and
/// decoding a megabyte takes milliseconds even in a debug build.
public enum TextFile {
    /// Reads a whole file as UTF-8 and returns its scalars. A leading byte order mark (EF BB BF)
    /// is dropped.
    ///
    /// Errors (one line each, naming `path`): no such file; is a folder (or a device); cannot read the file
    /// (with the system's reason, e.g. permission denied); the file is empty; invalid UTF-8 at
    /// byte offset N (offsets count from the start of the file, BOM included).
    public static func read(path: String) throws -> [Unicode.Scalar] {
        let bytes = try readBytes(path: path)
        let scalars = try decode(bytes, name: path, dropBOM: true)
        if scalars.isEmpty { throw RecurrentError("\(path): the file is empty") }
        return scalars
    }

    /// Decodes `bytes` as strict UTF-8 (Unicode 15, table 3-7): overlong forms, surrogates
    /// (ED A0..BF), code points above U+10FFFF, stray continuation bytes, truncated sequences and
    /// the bytes C0, C1, F5..FF are errors naming the byte offset where the bad sequence starts.
    /// A BOM is kept here (it is a valid scalar, U+FEFF); `read(path:)` drops it. `name` labels errors.
    public static func decodeUTF8(_ bytes: [UInt8], name: String) throws -> [Unicode.Scalar] {
        try decode(bytes, name: name, dropBOM: false)
    }

    static func decode(_ bytes: [UInt8], name: String, dropBOM: Bool, offset base: Int = 0) throws -> [Unicode.Scalar] {
        var start = 0
        if dropBOM, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
        var out: [UInt32] = []
        out.reserveCapacity(bytes.count - start)
        let bad: Int? = bytes.withUnsafeBufferPointer { p -> Int? in
            let n = p.count
            var i = start
            while i < n {
                let b0 = p[i]
                if b0 < 0x80 {
                    out.append(UInt32(b0))
                    i += 1
                    continue
                }
                // Length and the allowed range of the second byte, which is where overlongs,
                // surrogates and values above U+10FFFF are excluded.
                let length: Int
                var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
                switch b0 {
                case 0xC2...0xDF: length = 2
                case 0xE0: length = 3; lo = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: length = 3
                case 0xED: length = 3; hi = 0x9F
                case 0xF0: length = 4; lo = 0x90
                case 0xF1...0xF3: length = 4
                case 0xF4: length = 4; hi = 0x8F
                default: return i
                }
                guard i + length <= n else { return i }
                let b1 = p[i + 1]
                guard b1 >= lo, b1 <= hi else { return i }
                var v = UInt32(b0) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
                v = (v << 6) | UInt32(b1 & 0x3F)
                var k = 2
                while k < length {
                    let b = p[i + k]
                    guard b & 0xC0 == 0x80 else { return i }
                    v = (v << 6) | UInt32(b & 0x3F)
                    k += 1
                }
                out.append(v)
                i += length
            }
            return nil
        }
        if let offset = bad {
            throw RecurrentError("\(name): invalid UTF-8 at byte offset \(base + offset) (expected UTF-8 text)")
        }
        // Every value was validated above, so the failable initialiser cannot fail; the fallback
        // only keeps the library free of force-unwraps.
        return out.map { Unicode.Scalar($0) ?? "\u{FFFD}" }
    }

    /// The raw bytes of a regular file, with one-line errors for the usual failures.
    static func readBytes(path: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try forEachByteChunk(path: path) { chunk in bytes.append(contentsOf: chunk); return true }
        if bytes.isEmpty { throw RecurrentError("\(path): the file is empty") }
        return bytes
    }

    /// Reads a file as `read(path:)` does, in pieces of about `chunkBytes` bytes, so that memory does
    /// not grow with the file: `body` gets each piece's scalars (whole UTF-8 sequences only; the
    /// BOM dropped) with the index of its first scalar in the file, and returns false to stop
    /// reading. The same errors as `read(path:)`, invalid UTF-8 at its byte offset in the file
    /// (found when its piece is read, so after the pieces before it were handed over).
    public static func forEachChunk(path: String, chunkBytes: Int = 1 << 20,
                                    _ body: (_ scalars: [Unicode.Scalar], _ firstIndex: Int) throws -> Bool) throws {
        var pending: [UInt8] = [], offset = 0, index = 0, first = true, any = false, stopped = false
        func deliver(_ bytes: [UInt8], final: Bool) throws {
            var cut = bytes.count
            if !final {
                // A multi-byte sequence that the piece's last three bytes start and the piece does not
                // finish waits for the next piece; anything else (stray continuation bytes included)
                // is decoded here, so errors keep their offsets.
                for i in stride(from: bytes.count - 1, through: max(0, bytes.count - 3), by: -1) where bytes[i] >= 0xC0 {
                    let length = bytes[i] >= 0xF0 ? 4 : bytes[i] >= 0xE0 ? 3 : 2
                    if i + length > bytes.count { cut = i }
                    break
                }
            }
            let scalars = try decode(Array(bytes[..<cut]), name: path, dropBOM: first, offset: offset)
            if cut > 0 { first = false }
            offset += cut
            pending = Array(bytes[cut...])
            // (A piece of nothing but the BOM has no scalars: reading goes on.)
            if !scalars.isEmpty {
                any = true
                if try !body(scalars, index) { stopped = true }
                index += scalars.count
            }
        }
        try forEachByteChunk(path: path, size: chunkBytes) { chunk in
            pending.append(contentsOf: chunk)
            if pending.count >= chunkBytes { try deliver(pending, final: false) }
            return !stopped
        }
        if !stopped && !pending.isEmpty { try deliver(pending, final: true) }
        if !any { throw RecurrentError("\(path): the file is empty") }
    }

    /// Calls `body` with the bytes of a regular file, in reads of up to `size` bytes, until the end
    /// or until it returns false.
    private static func forEachByteChunk(path: String, size: Int = 1 << 16, _ body: (ArraySlice<UInt8>) throws -> Bool) throws {
        var st = stat()
        if stat(path, &st) != 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw RecurrentError("\(path): no such file") }
            throw RecurrentError("\(path): cannot read the file (\(reason(code)))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw RecurrentError("\(path): is a folder, expected a text file")
        }
        let kind = st.st_mode & S_IFMT
        if kind == S_IFCHR || kind == S_IFBLK || kind == S_IFSOCK {
            // Reading /dev/zero or a socket would never end or block; pipes (<(cmd)) are fine.
            throw RecurrentError("\(path): is a device or socket, expected a text file")
        }
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw RecurrentError("\(path): cannot read the file (\(reason(errno)))") }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: max(1, min(size, 1 << 16)))
        while true {
            let got = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw RecurrentError("\(path): cannot read the file (\(reason(errno)))")
            }
            if got == 0 { break }
            if try !body(chunk[0..<got]) { break }
        }
    }

    /// The system's description of `code`, lower-cased to read as part of a sentence.
    private static func reason(_ code: Int32) -> String {
        guard let c = strerror(code) else { return "error \(code)" }
        return String(cString: c).lowercased()
    }
}
