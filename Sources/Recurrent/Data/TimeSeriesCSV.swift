import CSV
import Foundation

/// One numeric column of a CSV file, in file order.
public struct TimeSeries: Sendable, Equatable {
    /// The column's values, one per kept data row.
    public var values: [Double]
    /// The date column's text per value (empty strings when no date column was asked for).
    public var dates: [String]
    /// The 1-based file line of every value (for messages).
    public var lines: [Int]
    public var column: String
    public var source: String

    public init(values: [Double], dates: [String], lines: [Int], column: String, source: String) {
        self.values = values
        self.dates = dates
        self.lines = lines
        self.column = column
        self.source = source
    }
}

/// What to do with an empty cell (or `NA`, `NaN`, `null`) in the value column.
public enum MissingValues: String, CaseIterable, Sendable {
    /// Stop with an error naming the file and line (the default: gaps change what a window means).
    case error
    /// Leave the row out.
    case drop
    /// Repeat the previous value (the first value cannot be missing).
    case previous
}

/// Reads a time series from a CSV file with a header row.
///
/// Parsing is done by yaslab/CSV.swift (RFC 4180: quoted fields, doubled quotes, CRLF or LF, no
/// final newline needed). It was chosen over SwiftCSV because it keeps a short row short (SwiftCSV
/// pads it, so a missing cell and an empty one look alike) and shows a blank line as one empty
/// field, so both can be reported or skipped on purpose. Line numbers count physical lines, the
/// header being line 1; a quoted field may not hold a line break (see the errors).
///
/// Errors (one line each): an empty file or no data rows, a column that does not exist (the
/// available ones are listed), a row without the column, a cell that runs over several lines (an
/// unclosed quote, which would silently swallow the rows after it), a value that is not
/// a decimal number within float32's range (file:line), a missing value under `MissingValues.error`.
public enum TimeSeriesCSV {
    /// Reads `path`; `column` nil means the last named column of the header.
    public static func read(path: String, column: String?, dateColumn: String? = nil, missing: MissingValues = .error) throws -> TimeSeries {
        let bytes = try TextFile.readBytes(path: path)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw RecurrentError("\(path): the file is not valid UTF-8") }
        return try parse(text, name: path, column: column, dateColumn: dateColumn, missing: missing)
    }

    /// Parses CSV text (see the type's doc); `name` labels errors.
    public static func parse(_ text: String, name: String, column: String?, dateColumn: String? = nil,
                             missing: MissingValues = .error) throws -> TimeSeries {
        var body = text
        if body.hasPrefix("\u{FEFF}") { body.removeFirst() }
        if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw RecurrentError("\(name): the file is empty") }
        let reader: CSVReader
        do { reader = try CSVReader(string: body, hasHeaderRow: true) } catch {
            throw RecurrentError("\(name): cannot read the CSV header (\(error))")
        }
        let header = (reader.headerRow ?? []).map { $0.trimmingCharacters(in: .whitespaces) }
        let available = RecurrentError.shownList(header.map { "'\($0)'" })
        // The header's named columns (a trailing comma, as spreadsheets write, adds an empty one).
        let headerWidth = (header.lastIndex { !$0.isEmpty } ?? -1) + 1
        func find(_ wanted: String, flag: String) throws -> Int {
            if let i = header.firstIndex(of: wanted) { return i }
            if let i = header.firstIndex(where: { $0.lowercased() == wanted.lowercased() }) { return i }
            throw RecurrentError("\(name):1: no column named '\(RecurrentError.shown(wanted))' (\(flag)); the header has \(available)")
        }
        let valueIndex = try column.map { try find($0, flag: "--column") } ?? (headerWidth > 0 ? headerWidth - 1 : header.count - 1)
        let dateIndex = try dateColumn.map { try find($0, flag: "--date-column") }
        let columnName = header[valueIndex]
        var line = 1 + newlines(header.joined())
        var series = TimeSeries(values: [], dates: [], lines: [], column: columnName, source: name)
        while let row = reader.next() {
            line += 1
            let rowLine = line
            line += row.reduce(0) { $0 + newlines($1) }
            if row.count == 1 && row[0].trimmingCharacters(in: .whitespaces).isEmpty { continue }  // blank line
            if let index = row.firstIndex(where: { $0.contains("\n") || $0.contains("\r") }) {
                let column = index < header.count ? "'\(header[index])'" : "number \(index + 1)"
                throw RecurrentError("\(name):\(rowLine): the cell of column \(column) runs over \(newlines(row[index]) + 1) lines; is a quote left open? (cells may be quoted, one line each)")
            }
            guard row.count > max(valueIndex, dateIndex ?? 0) else {
                throw RecurrentError("\(name):\(rowLine): \(row.count) field\(row.count == 1 ? "" : "s"), expected at least \(max(valueIndex, dateIndex ?? 0) + 1) (column '\(columnName)' is number \(valueIndex + 1))")
            }
            // A row longer than the header (empty trailing fields aside) shifts its values: an
            // unquoted decimal comma, "193,47", would otherwise be read as 193.
            let fields = (row.lastIndex { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? -1) + 1
            if fields > headerWidth {
                throw RecurrentError("\(name):\(rowLine): \(fields) fields, the header has \(headerWidth); an unquoted comma splits a field (quote a field that holds one; write decimals with a point: 193.47)")
            }
            let cell = row[valueIndex].trimmingCharacters(in: .whitespaces)
            let value: Double
            if ["", "na", "nan", "null", "n/a", "."].contains(cell.lowercased()) {
                switch missing {
                case .error:
                    throw RecurrentError("\(name):\(rowLine): the value of '\(columnName)' is missing ('\(cell)'); use --missing drop or --missing previous to accept gaps")
                case .drop: continue
                case .previous:
                    guard let last = series.values.last else {
                        throw RecurrentError("\(name):\(rowLine): the first value of '\(columnName)' is missing; --missing previous needs one before it")
                    }
                    value = last
                }
            } else {
                // Decimal only (Double(_:) also reads hexadecimal such as 0x1F), and within float32's
                // range, in which the model computes.
                guard let v = Double(cell), v.isFinite, !cell.lowercased().contains("x") else {
                    throw RecurrentError("\(name):\(rowLine): '\(cell)' in column '\(columnName)' is not a number")
                }
                guard abs(v) <= Double(Float.greatestFiniteMagnitude) else {
                    throw RecurrentError("\(name):\(rowLine): '\(cell)' in column '\(columnName)' is beyond float32's range (±3.4e38)")
                }
                value = v
            }
            series.values.append(value)
            series.dates.append(dateIndex.map { row[$0].trimmingCharacters(in: .whitespaces) } ?? "")
            series.lines.append(rowLine)
        }
        if let error = reader.error { throw RecurrentError("\(name):\(line): cannot parse the CSV (\(error))") }
        if series.values.isEmpty {
            throw RecurrentError(line > 1 + newlines(header.joined()) && missing == .drop
                                 ? "\(name): every value of '\(columnName)' is missing (--missing drop left none)" : "\(name): no data rows under the header")
        }
        return series
    }

    /// Line feeds inside a field (CRLF counts once: its "\n").
    static func newlines(_ s: String) -> Int { s.unicodeScalars.reduce(0) { $0 + ($1 == "\n" ? 1 : 0) } }
}
