import ArgumentParser

/// The `camvid` command: explains what a convolutional network sees in a video.
public struct Camvid: AsyncParsableCommand {
    /// The command's name, summary and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "camvid",
        abstract: "Explain what a convolutional network sees in a video.",
        version: "0.1.0",
        subcommands: [LayersCommand.self, TensorCommand.self]
    )

    /// Creates the command (argument parsing fills it in).
    public init() {}

    /// Runs the command.
    public func run() async throws {
        print(Camvid.helpMessage())
    }
}
