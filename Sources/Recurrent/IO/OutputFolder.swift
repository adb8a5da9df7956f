import Foundation

/// Folders that a command writes several files into (`train --report`, `--tensorboard`).
public enum OutputFolder {
    /// Creates `path` and any missing parent folders (as `mkdir -p`) when missing; fails when it,
    /// or the nearest existing folder above it, is a file. Errors name `flag` and the path.
    public static func ensure(_ path: String, flag: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw RecurrentError("\(flag) \(path): is a file, expected a folder") }
            return
        }
        var ancestor = URL(fileURLWithPath: path).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDir) && ancestor.path != "/" {
            ancestor = ancestor.deletingLastPathComponent()
        }
        guard isDir.boolValue else { throw RecurrentError("\(flag) \(path): \(ancestor.path) is a file, not a folder") }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw RecurrentError("\(flag) \(path): cannot create the folder in \(ancestor.path) (not writable?)")
        }
    }
}
