import Annotate
import ArgumentParser
import Core
import Engine
import Explain
import Foundation

/// `camvid layers`: every tensor of a network with its producing operator and shape.
public struct LayersCommand: ParsableCommand {
    /// The command's name and summary.
    public static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "List every tensor of a network (producing op, shape for a 224x224 input, how CAM methods read it as maps); * marks the default target layer."
    )

    @OptionGroup(title: "Model") var model: ModelOptions

    /// Creates the command (argument parsing fills it in).
    public init() {}

    /// Prints the table.
    public func run() throws {
        let (network, labels) = try model.load()
        print(LayersCommand.table(network), terminator: "")
        let task = ModelTask(network: network, labels: labels)
        print("the model is \(task.map(\.description) ?? "none camvid explains (its output is no classifier's, YOLO detector's or segmenter's)")")
    }

    /// The listing as text: one line per tensor, `*` before the default target layer.
    public static func table(_ network: Network) -> String {
        let layers = network.layers
        let nameWidth = min(max(layers.map(\.name.count).max() ?? 4, 4), 60)
        let opWidth = max(layers.map(\.opType.count).max() ?? 2, 2)
        var text = "  " + "tensor".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
            + "op".padding(toLength: opWidth, withPad: " ", startingAt: 0) + "  shape  grid  node  (storage)\n"
        let target = EngineNetwork(network).defaultTargetLayer
        for layer in layers {
            let mark = layer.name == target ? "* " : "  "
            let name = layer.name.count > nameWidth ? layer.name : layer.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            // How CAM methods would read the tensor as maps (`--layer-grid auto`), `-` when not at all.
            let grid = GridReading.automatic(shape: layer.shape, inputHeight: network.inputShape[2], inputWidth: network.inputShape[3])
            text += mark + name + "  " + layer.opType.padding(toLength: opWidth, withPad: " ", startingAt: 0)
                + "  [" + layer.shape.map(String.init).joined(separator: ",") + "]  " + (grid?.description ?? "-") + "  "
                + layer.nodeName + "  (" + layer.storage + ")\n"
        }
        text += "input \(network.inputName) \(network.inputShape), output \(network.outputName), default target layer \(target)\n"
        return text
    }
}
