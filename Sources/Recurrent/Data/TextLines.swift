/// How the bytes of a data file are turned into text.
public enum TextEncoding: String, CaseIterable, Sendable {
    /// Strict UTF-8; a bad byte is an error naming the file, line and byte offset.
    case utf8
    /// ISO-8859-1: every byte is the scalar of the same value, so decoding never fails.
    case latin1
}

/// One line of a data file, without its line ending, and its 1-based line number.
public struct TextLine: Sendable, Equatable {
    public var number: Int
    public var text: String
    public init(number: Int, text: String) {
        self.number = number
        self.text = text
    }
}

/// Splitting data files into lines the same way on every file.
///
/// Lines end at "\n" (byte 0x0A) only; one trailing "\r" is stripped, so CRLF files read like LF
/// files. Other Unicode line breaks (U+0085 NEL, U+2028) stay inside the line: the sentiment files
/// use NEL inside sentences. A missing final newline is fine; a final empty line is not returned.
/// A leading UTF-8 byte-order mark is dropped.
public enum TextLines {
    /// Throws when `line` holds a carriage return: lines end at \n (a \r before it is dropped), so
    /// a file with lone CR line endings reads as one line, which a tab-separated reader would
    /// otherwise report as a confusing column error.
    public static func refuseLoneCR(_ line: TextLine, name: String) throws {
        if line.text.unicodeScalars.contains("\r") {
            throw RecurrentError("\(name):\(line.number): the lines end in a lone CR (\\r), so the file reads as one line; save it with \\n or \\r\\n line endings")
        }
    }

    /// Reads `path` and returns its lines. Errors (one line, naming the file): no such file, empty
    /// file, and for UTF-8 the first invalid byte with its line and file byte offset.
    public static func read(path: String, encoding: TextEncoding = .utf8) throws -> [TextLine] {
        let bytes = try TextFile.readBytes(path: path)
        return try split(bytes, name: path, encoding: encoding)
    }

    /// Splits `bytes` (see the type's doc). `name` labels errors. A part of a longer input (read
    /// as it arrives) gives the line number of its first line and the byte offset of its first
    /// byte, so that lines and errors are numbered as in the whole.
    public static func split(_ bytes: [UInt8], name: String, encoding: TextEncoding = .utf8,
                             firstLine: Int = 1, byteOffset: Int = 0) throws -> [TextLine] {
        var start = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF, encoding == .utf8, byteOffset == 0 { start = 3 }
        var lines: [TextLine] = []
        var number = firstLine
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            var stop = end
            if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
            let slice = bytes[start..<stop]
            let text: String
            switch encoding {
            case .latin1:
                var s = String.UnicodeScalarView()
                for b in slice { s.append(Unicode.Scalar(b)) }
                text = String(s)
            case .utf8:
                guard let s = String(validating: slice, as: UTF8.self) else {
                    let offset = start + invalidUTF8Offset(slice)
                    throw RecurrentError("\(name):\(number): invalid UTF-8 at byte offset \(byteOffset + offset) (byte 0x\(String(bytes[offset], radix: 16, uppercase: true))); convert the file to UTF-8 or pass --encoding latin1")
                }
                text = s
            }
            lines.append(TextLine(number: number, text: text))
            number += 1
            start = end + 1
        }
        return lines
    }

    /// The offset within `bytes` where the first invalid UTF-8 sequence starts.
    static func invalidUTF8Offset(_ bytes: ArraySlice<UInt8>) -> Int {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .error: return offset
            case .emptyInput: return offset
            }
        }
    }
}
