import Foundation

/// Runs the built `camvid` executable as a user would, capturing its exit status and output.
enum CamvidProcess {
    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var errorLines: [Substring] { standardError.split(separator: "\n") }
    }

    /// The `camvid` executable beside the test bundle (SwiftPM builds both into one folder).
    static var executable: URL? {
        let here = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let bundleFolder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [here, bundleFolder, bundleFolder.deletingLastPathComponent(),
                          Bundle.main.bundleURL.deletingLastPathComponent(), Bundle.main.bundleURL]
            .map { $0.appendingPathComponent("camvid") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Runs `camvid arguments…` to its end, capturing both output streams; `environment` replaces the test's own.
    static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        guard let executable else { throw Missing() }
        return try run(executable, arguments, environment: environment)
    }

    /// Runs `executable arguments…` to its end in `folder` (the test's own when nil), capturing both output streams;
    /// `environment` replaces the test's own.
    static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil, in folder: URL? = nil) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let folder { process.currentDirectoryURL = folder }
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read before waiting so a full pipe cannot block the child.
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, standardOutput: String(decoding: out, as: UTF8.self),
                      standardError: String(decoding: err, as: UTF8.self))
    }

    /// Starts `camvid arguments…` with standard input and output from and to files
    /// (the null device when not given) and standard error into `errors`.
    static func start(_ arguments: [String], input: URL? = nil, output: URL? = nil, errors: URL) throws -> Process {
        guard let executable else { throw Missing() }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = try input.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        if let output {
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: output)
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        return process
    }

    /// Runs `camvid arguments…` to its end with standard input and output from and to files
    /// (kept in `folder`); standard output is not captured.
    static func run(_ arguments: [String], in folder: URL, input: URL? = nil, output: URL? = nil) throws -> Result {
        let errors = folder.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        let process = try start(arguments, input: input, output: output, errors: errors)
        process.waitUntilExit()
        return Result(status: process.terminationStatus, standardOutput: "",
                      standardError: try String(contentsOf: errors, encoding: .utf8))
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "the camvid executable is not built beside the tests" }
    }
}
