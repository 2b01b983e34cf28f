import ArgumentParser

/// The `camvid` command: explains what a network sees in a video.
///
/// `camvid IN OUT [options]` runs the video command (the default subcommand).
public struct Camvid: AsyncParsableCommand {
    /// The command's name, summary, examples and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "camvid",
        abstract: "Explain what a neural network (classifier, YOLO detector, segmenter) sees in a video.",
        discussion: VideoCommand.examples,
        version: BuildInfo.versionLine,
        subcommands: [VideoCommand.self, ConcatCommand.self, ImageCommand.self, ReportCommand.self, LayersCommand.self, TensorCommand.self, VisualizeCommand.self, DoctorCommand.self],
        defaultSubcommand: VideoCommand.self
    )

    /// Creates the command (argument parsing fills it in).
    public init() {}

    /// Parses the process's arguments and runs the chosen command; any failure is one line on
    /// standard error and a non-zero exit status.
    public static func runFromCommandLine() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            ErrorReport.exit(with: error)
        }
    }
}
