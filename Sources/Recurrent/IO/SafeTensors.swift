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

    /// The `__metadata__` map of a safetensors file, reading only its header. A file that does not
    /// parse is read whole, so that the error is the one `read(path:)` gives.
    public static func metadata(path: String) throws -> [String: String] {
        if let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            if let prefix = try? handle.read(upToCount: 8), prefix.count == 8 {
                let n = prefix.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                if n <= UInt64(maxHeaderBytes), let header = try? handle.read(upToCount: Int(n)), header.count == Int(n),
                   let object = headerObject(header) as? [String: Any] {
                    if object["__metadata__"] == nil { return [:] }
                    if let meta = object["__metadata__"] as? [String: String] { return meta }
                }
            }
        }
        return try read(path: path).metadata
    }

    /// The header's JSON value. Foundation's reader drops a raw U+FEFF (bytes EF BB BF) inside a
    /// string, where Python's `json.dumps(..., ensure_ascii=False)` writes one (a vocabulary with a
    /// zero-width no-break space), so it is escaped as `\ufeff` first, which the reader keeps.
    /// Those bytes can only be that character in UTF-8, and outside a string it is not JSON either
    /// way.
    static func headerObject(_ header: Data) -> Any? {
        let bom = Data([0xEF, 0xBB, 0xBF])
        guard header.firstRange(of: bom) != nil else { return try? JSONSerialization.jsonObject(with: header) }
        var escaped = Data(capacity: header.count + 16)
        var rest = header[...]
        while let r = rest.firstRange(of: bom) {
            escaped.append(rest[rest.startIndex..<r.lowerBound])
            escaped.append(contentsOf: Array("\\ufeff".utf8))
            rest = rest[r.upperBound...]
        }
        escaped.append(rest)
        return try? JSONSerialization.jsonObject(with: escaped)
    }

    /// Decodes safetensors bytes; `name` labels error messages.
    public static func decode(_ data: Data, name: String) throws -> SafeTensorsFile {
        try data.withUnsafeBytes { try decode(bytes: $0, name: name) }
    }

    /// Decodes safetensors bytes in place (no copy of the file).
    static func decode(bytes: UnsafeRawBufferPointer, name: String) throws -> SafeTensorsFile {
        guard bytes.count >= 8 else {
            throw RecurrentError("\(name): not a safetensors file (\(bytes.count) bytes, expected at least an 8-byte header length)")
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderBytes), 8 + Int(n) <= bytes.count else {
            throw RecurrentError("\(name): not a safetensors file or truncated (header length \(n) but the file has \(bytes.count) bytes)")
        }
        let headerEnd = 8 + Int(n)
        let headerBytes = Data(UnsafeRawBufferPointer(rebasing: bytes[8..<headerEnd]))
        guard let object = headerObject(headerBytes), let header = object as? [String: Any] else {
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
                guard let i = wholeNumber(v) else {
                    throw RecurrentError("\(name): tensor \(key) has a bad shape \(shapeAny)")
                }
                return i
            }
            guard let begin = wholeNumber(offsetsAny[0]), let end = wholeNumber(offsetsAny[1]), end >= begin else {
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
            let source = UnsafeRawBufferPointer(rebasing: bytes[(headerEnd + begin)..<(headerEnd + end)])
            let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                Self.convert(source, dtype: dtype, into: buffer)
                initialized = count
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

    /// A JSON number that is a whole number ≥ 0 written as one (as the format's u64 fields are):
    /// nil for 58.9, -1, 1e3 or 2^64, which `intValue` would truncate or wrap.
    private static func wholeNumber(_ v: Any) -> Int? {
        guard let n = v as? NSNumber else { return nil }
        let s = n.stringValue
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(s)
    }

    /// Little-endian `dtype` elements (F32, BF16, F16, I32, I64 or F64) as floats.
    private static func convert(_ source: UnsafeRawBufferPointer, dtype: String, into out: UnsafeMutableBufferPointer<Float>) {
        func word<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
            T(littleEndian: source.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
        }
        switch dtype {
        case "F32":
            #if _endian(little)
            UnsafeMutableRawBufferPointer(out).copyMemory(from: source)
            #else
            for i in out.indices { out[i] = Float(bitPattern: word(i, UInt32.self)) }
            #endif
        case "BF16": for i in out.indices { out[i] = Float(bitPattern: UInt32(word(i, UInt16.self)) << 16) }
        case "F16": for i in out.indices { out[i] = Float(halfBits: word(i, UInt16.self)) }
        case "I32": for i in out.indices { out[i] = Float(Int32(bitPattern: word(i, UInt32.self))) }
        case "I64": for i in out.indices { out[i] = Float(Int64(bitPattern: word(i, UInt64.self))) }
        default: for i in out.indices { out[i] = Float(Double(bitPattern: word(i, UInt64.self))) }   // F64
        }
    }

    /// Encodes tensors (in the given order) and metadata as safetensors bytes, float32. Throws for
    /// a name given twice, the reserved `__metadata__`, or a tensor whose shape does not match its
    /// data: such a file could not be read back.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String]) throws -> Data {
        var names = Set<String>()
        for (name, t) in tensors {
            guard name != "__metadata__" else { throw RecurrentError("safetensors: a tensor cannot be named __metadata__ (the format reserves it)") }
            guard names.insert(name).inserted else { throw RecurrentError("safetensors: tensor \(name) is given twice") }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.count else {
                throw RecurrentError("safetensors: tensor \(name) has shape \(t.shape) but \(t.count) numbers")
            }
        }
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
///
/// A symbolic link is written through (its target is replaced, the link stays); an existing file
/// keeps its permissions (and its owner, where the process may set it); a file without write
/// permission is refused. A character device or a FIFO (`/dev/null`, a named pipe) cannot be
/// replaced, so it is written to directly, and so is a descriptor already open (`/dev/stdout`,
/// `/dev/fd/N`); any other kind of file is refused. A write also removes the temporary files of
/// its target that a killed process left.
public enum AtomicFile {
    /// Runs each write, from creating the temporary file to the rename. A program that handles
    /// signals sets this to hold them meanwhile, so that an interrupted write leaves no
    /// temporary file behind (the command-line tool does).
    nonisolated(unsafe) public static var section: ((() throws -> Void) throws -> Void)?

    public static func write(_ data: Data, to path: String) throws {
        try write(pieces: [data], to: path)
    }

    /// Whether writes to `path` go to it as it is rather than through a temporary file: a
    /// character device or a FIFO (through links), or a descriptor already open (`/dev/stdout`,
    /// `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`: redirected to a file, it is that file, to be
    /// written to at the shell's offset, not replaced).
    public static func isStream(_ path: String) -> Bool {
        if descriptor(path) != nil { return true }
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFCHR || info.st_mode & S_IFMT == S_IFIFO
    }

    /// Whether `path` (through links) is an existing regular file that a write would refuse as
    /// read-only: one this process may not write, or, for root (which `access` lets write
    /// anything), one without any write bit, as rm and editors treat it.
    public static func isReadOnly(_ path: String) -> Bool {
        let target = resolvingLinks(path)
        var info = stat()
        guard lstat(target, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        return access(target, W_OK) != 0 || (geteuid() == 0 && info.st_mode & 0o222 == 0)
    }

    /// The open descriptor a path names: /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N
    /// (or /proc/PID/fd/N of this process), written any way that reaches one of them: through
    /// symbolic links, `//`, `/./` or a linked folder.
    static func descriptor(_ path: String) -> Int32? {
        for step in [path] + linkSteps(path) {
            if let fd = namedDescriptor(step) { return fd }
        }
        return nil
    }

    private static func namedDescriptor(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdout": return STDOUT_FILENO
        case "/dev/stderr": return STDERR_FILENO
        default:
            for prefix in ["/dev/fd/", "/proc/self/fd/", "/proc/\(getpid())/fd/"] where path.hasPrefix(prefix) {
                guard let fd = Int32(path.dropFirst(prefix.count)), fd >= 0, fcntl(fd, F_GETFD) != -1 else { return nil }
                return fd
            }
            return nil
        }
    }

    /// Writes `pieces` one after the other as the file's bytes, atomically.
    public static func write(pieces: [Data], to path: String) throws {
        try write(files: [(pieces, path)])
    }

    /// Writes several files that belong together (a checkpoint and its training state): every
    /// temporary file is written in full first, then they are renamed into place one right after
    /// the other, in the order given. A failure before the renames leaves every target as it was.
    public static func write(files: [(pieces: [Data], path: String)]) throws {
        // A device or a FIFO (through links the kernel follows: /dev/stdout → /proc/self/fd/1 → a
        // pipe) is written as it is, outside the signal hold: a FIFO without a reader blocks as
        // `cat > fifo` does, and Ctrl-C must still end it.
        var regular: [(pieces: [Data], path: String)] = []
        for file in files {
            if isStream(file.path) { try writeDirectly(file.pieces, to: file.path, path: file.path) } else { regular.append(file) }
        }
        if regular.isEmpty { return }
        let files = regular
        let body = {
            var prepared: [(tmp: URL, target: String, path: String)] = []
            func discard() { for p in prepared { try? FileManager.default.removeItem(at: p.tmp) } }
            do {
                for (pieces, path) in files {
                    if let p = try prepare(pieces, path) { prepared.append(p) }
                }
            } catch {
                discard()
                throw error
            }
            for (i, p) in prepared.enumerated() where rename(p.tmp.path, p.target) != 0 {
                let reason = String(cString: strerror(errno))
                prepared = Array(prepared[i...])
                discard()
                throw RecurrentError("\(p.path): cannot write the file (\(reason))")
            }
        }
        if let section { try section(body) } else { try body() }
    }

    /// Writes `pieces` to a temporary file beside `path`'s target, ready to be renamed over it
    /// (nil: the target is a device or a FIFO and has been written directly).
    private static func prepare(_ pieces: [Data], _ path: String) throws -> (tmp: URL, target: String, path: String)? {
        let target = resolvingLinks(path)
        var info = stat()
        let exists = lstat(target, &info) == 0
        if exists {
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                if isReadOnly(target) { throw RecurrentError("\(path): the file is read-only") }
            case S_IFCHR, S_IFIFO:   // became one since `write(files:)` looked
                try writeDirectly(pieces, to: target, path: path)
                return nil
            case S_IFDIR:
                throw RecurrentError("\(path): is a folder, expected a file path")
            default:
                throw RecurrentError("\(path): is not a regular file")
            }
        }
        let url = URL(fileURLWithPath: target)
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw RecurrentError("\(path): the folder \(dir.path) does not exist")
        }
        removeStaleTemporaries(of: url.lastPathComponent, in: dir)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            if pieces.count == 1 {
                try pieces[0].write(to: tmp)
            } else {
                guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
                    throw RecurrentError("cannot create \(tmp.path)")
                }
                let handle = try FileHandle(forWritingTo: tmp)
                defer { try? handle.close() }
                for piece in pieces { try handle.write(contentsOf: piece) }
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw RecurrentError("\(path): cannot write the file (\(error.localizedDescription))")
        }
        if exists {
            _ = chmod(tmp.path, info.st_mode & 0o7777)
            _ = chown(tmp.path, info.st_uid, info.st_gid)
        }
        return (tmp, target, path)
    }

    /// The file a path names, its symbolic links followed as the kernel follows them: the folder
    /// part resolved by `realpath`, then a link in the last part followed from that folder, again
    /// and again (a chain that ends at a missing file gives the path it would be created at).
    public static func resolvingLinks(_ path: String) -> String {
        linkSteps(path).last ?? path
    }

    /// The paths the kernel goes through to reach `path`'s file, in order: the path with its folder
    /// resolved (realpath), then each symbolic link's target in turn, the same way (at most 40).
    private static func linkSteps(_ path: String) -> [String] {
        var steps: [String] = []
        var current = path
        for _ in 0..<40 {
            let url = URL(fileURLWithPath: current)
            let name = url.lastPathComponent
            var folder = url.deletingLastPathComponent().path
            if let real = realpath(folder, nil) {
                folder = String(cString: real)
                free(real)
            }
            let full = folder == "/" ? "/" + name : folder + "/" + name
            steps.append(full)
            var info = stat()
            guard lstat(full, &info) == 0, info.st_mode & S_IFMT == S_IFLNK,
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: full) else { return steps }
            current = target.hasPrefix("/") ? target : folder + "/" + target
        }
        steps.append(current)
        return steps
    }

    /// Writes every byte to the descriptor (again after EINTR or a short write); returns the errno
    /// of a failed write, nil when all went out.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return nil
    }

    /// Removes temporary files of `name` that a process killed mid-write (SIGKILL, the OOM killer)
    /// left behind: `.name.tmp-PID-N` whose PID no longer runs on this machine.
    private static func removeStaleTemporaries(of name: String, in dir: URL) {
        let prefix = ".\(name).tmp-"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
        for entry in entries where entry.hasPrefix(prefix) {
            let rest = entry.dropFirst(prefix.count).split(separator: "-")
            guard rest.count == 2, let pid = Int32(rest[0]), UInt32(rest[1]) != nil, pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(at: dir.appendingPathComponent(entry)) }
        }
    }

    /// Writes to a device or a FIFO as it is.
    private static func writeDirectly(_ pieces: [Data], to target: String, path: String) throws {
        // A descriptor already open is written at its offset, as a shell redirection set it.
        var fd = descriptor(target) ?? -1
        let owned = fd < 0
        if owned {
            repeat { fd = open(target, O_WRONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
            guard fd >= 0 else { throw RecurrentError("\(path): cannot write the file (\(String(cString: strerror(errno))))") }
        }
        defer { if owned { close(fd) } }
        for piece in pieces {
            if let failure = piece.withUnsafeBytes({ writeAll(fd, $0) }) {
                throw RecurrentError("\(path): cannot write the file (\(String(cString: strerror(failure))))")
            }
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
