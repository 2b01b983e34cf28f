import ArgumentParser
import Core
import Engine
import Foundation
import Media

/// `camvid doctor`: what this camvid is and runs on, for a bug report.
public struct DoctorCommand: ParsableCommand {
    /// The command's name, summary and notes.
    public static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show what this camvid runs on, for a bug report: version and commit, FFmpeg and oneDNN as loaded, oneDNN's instruction set, CPU, threads, and where the bundled model comes from.",
        discussion: """
            Paste its output into a bug report. The bundled model is looked for in $CAMVID_MODEL_DIR when set, \
            else in <bin>/../share/camvid beside the executable's real path (where scripts/install puts it), \
            else in SwiftPM's resource bundle beside the executable (swift run); the exit status is 1 when it is in none.
            """
    )

    /// Creates the command (argument parsing fills it in).
    public init() {}

    /// Prints the report; fails when the bundled model is missing, after printing the rest.
    public func run() throws {
        let (text, modelError) = Self.report()
        print(text, terminator: "")
        if let modelError { throw modelError }
    }

    /// The report, one fact per line, and the error of a missing bundled model.
    public static func report() -> (text: String, modelError: Error?) {
        var lines = [BuildInfo.versionLine]
        lines.append("executable: " + (DefaultModel.runningExecutable?.path ?? "unknown"))
        let swiftRuntime = LoadedLibrary.file(ofLoaded: "libswiftCore.so", defining: "swift_retain")
        lines.append("Swift runtime: " + (swiftRuntime ?? "linked statically into the executable"))
        var modelError: Error?
        do {
            let place = try DefaultModel.location()
            lines.append("model: \(place.modelFile.path) (\(place.origin))")
        } catch {
            lines.append("model: not found (see the error below)")
            modelError = error
        }

        let ffmpeg = FFmpegLibraries.loaded()
        lines.append("FFmpeg: \(ffmpeg.release)")
        let nameWidth = ffmpeg.libraries.map(\.name.count).max() ?? 0, versionWidth = ffmpeg.libraries.map(\.version.count).max() ?? 0
        for library in ffmpeg.libraries {
            lines.append("  " + library.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + " "
                + library.version.padding(toLength: versionWidth, withPad: " ", startingAt: 0) + (library.file.map { "  \($0)" } ?? ""))
        }
        lines.append("  video encoder: " + (ffmpeg.videoEncoder ?? "none of \(EncoderSettings().codecNames.joined(separator: ", "))"))

        let engine = EngineRuntime.current()
        lines.append("oneDNN: \(engine.oneDNNVersion) (\(engine.threading))" + (engine.oneDNNFile.map { "  \($0)" } ?? ""))
        lines.append("  instruction set: \(engine.instructionSet)")
        lines.append("  threads per network call: \(engine.threadsPerCall) (OpenMP's default; camvid video uses --network-threads, 1 by default)")
        lines.append("CPU: \(engine.processor ?? "unknown"), \(engine.logicalProcessors) logical processors")
        return (lines.joined(separator: "\n") + "\n", modelError)
    }
}
