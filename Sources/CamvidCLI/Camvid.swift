import ArgumentParser

/// The `camvid` command: explains what a convolutional network sees in a video.
///
/// `camvid IN OUT [options]` runs the video command (the default subcommand).
public struct Camvid: AsyncParsableCommand {
    /// The command's name, summary, examples and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "camvid",
        abstract: "Explain what a convolutional network sees in a video.",
        discussion: VideoCommand.examples,
        version: "0.1.0",
        subcommands: [VideoCommand.self, ImageCommand.self, LayersCommand.self, TensorCommand.self, VisualizeCommand.self],
        defaultSubcommand: VideoCommand.self
    )

    /// Creates the command (argument parsing fills it in).
    public init() {}

    /// Parses the process's arguments, runs the chosen command and exits with its status.
    public static func runFromCommandLine() async {
        await main()
    }
}
