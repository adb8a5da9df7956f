import Foundation

/// Folders that a command writes several files into (`train --report`, `--tensorboard`).
public enum OutputFolder {
    /// Creates `path` (one level: its parent must exist) when missing; fails when it is a file.
    /// Errors name `flag` and the path.
    public static func ensure(_ path: String, flag: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw RecurrentError("\(flag) \(path): is a file, expected a folder") }
            return
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDir) else {
            throw RecurrentError("\(flag) \(path): the folder \(parent) does not exist")
        }
        guard isDir.boolValue else { throw RecurrentError("\(flag) \(path): \(parent) is a file, not a folder") }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) } catch {
            throw RecurrentError("\(flag) \(path): cannot create the folder in \(parent) (not writable?)")
        }
    }
}
