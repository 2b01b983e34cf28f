import ArgumentParser
import Core
import Engine
import Foundation
import Media

/// A command-line mistake found while running a command, said in one sentence.
struct CommandError: Error, CustomStringConvertible {
    /// The sentence.
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A failure while working on a file, reported with the file's name in front unless the error
/// already names it (Media's, the engine's and the record files' errors do).
struct FailureInFile: Error, CustomStringConvertible {
    let file: String
    let error: Error

    var description: String {
        let text = "\(error)"
        let namesItsFile = error is MediaError || error is EngineError || error is NumPyFile.FormatError || error is CommandError
            || error is ValidationError || text.contains(file)
        return namesItsFile ? text : "\(file): \(text)"
    }

    /// Runs `body`, its failures named after `file`.
    static func naming<T>(_ file: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ExitCode {
            throw error
        } catch {
            throw FailureInFile(file: file, error: error)
        }
    }
}

/// The one place failures reach the user: one line `camvid: MESSAGE` on standard error and a
/// non-zero exit status, whatever failed (the arguments, a file, a frame, an ONNX node).
enum ErrorReport {
    /// Writes `camvid: TEXT` as one line on standard error.
    static func note(_ text: String) {
        let line = text.replacingOccurrences(of: "\n", with: " ")
        FileHandle.standardError.write(Data("camvid: \(line)\n".utf8))
    }

    /// Reports `error` and ends the process with its status (help and `--version` print as usual).
    static func exit(with error: Error) -> Never {
        let code = Camvid.exitCode(for: error)
        if code == .success || error is CleanExit { Camvid.exit(withError: error) }
        let message = error is ExitCode ? "" : Camvid.message(for: error)
        if !message.isEmpty { note(message.replacingOccurrences(of: "Error: ", with: "")) }
        Foundation.exit(code.rawValue)
    }
}
