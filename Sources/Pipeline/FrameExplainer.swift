import Core
import Engine
import Render

/// What the network saw in one frame.
public struct FrameExplanation: Sendable, Equatable {
    /// The map to blend onto the frame, when the method draws one.
    public var heatmap: Heatmap?
    /// The text to write onto the frame (e.g. `tabby cat 87.3%`), when the method labels frames.
    public var label: String?
    /// The class the map explains, when there is one.
    public var classIndex: Int?
    /// The network's class probabilities, when computed.
    public var probabilities: [Float]?
    /// The method that made the map (`gradcam`, …), when a network explained the frame.
    public var method: String?
    /// For a grid (`--grid`): the same frame explained several ways, one tile each; the fields
    /// above then repeat the first tile's.
    public var tiles: [FrameExplanation] = []

    /// An explanation with the given parts (all absent by default: nothing to draw).
    public init(heatmap: Heatmap? = nil, label: String? = nil, classIndex: Int? = nil, probabilities: [Float]? = nil,
                method: String? = nil) {
        self.heatmap = heatmap
        self.label = label
        self.classIndex = classIndex
        self.probabilities = probabilities
        self.method = method
    }
}

/// One frame prepared for the network by the preprocess stage.
public struct ModelInput: Sendable {
    /// The frame's position in decode order.
    public var frameIndex: Int
    /// The network's input for this frame (e.g. resized and normalised CHW), when it needs one.
    public var tensor: Tensor?

    /// An input for frame `frameIndex`.
    public init(frameIndex: Int, tensor: Tensor?) {
        self.frameIndex = frameIndex
        self.tensor = tensor
    }
}

/// The explain stage: a network and a method turning frames into explanations.
public protocol FrameExplainer: Sendable {
    /// Per-frame preparation done in the preprocess stage (resize, normalise), off the explain stage.
    func prepare(_ frame: VideoFrame) throws -> ModelInput
    /// One explanation per input, in the same order; `batch` holds 1…batchSize frames.
    func explain(_ batch: [ModelInput]) async throws -> [FrameExplanation]
}

/// `--method none`: explains nothing, so the pipeline re-encodes every frame unchanged.
public struct IdentityExplainer: FrameExplainer {
    /// The identity explainer.
    public init() {}

    /// Keeps only the frame index: the network is not run.
    public func prepare(_ frame: VideoFrame) throws -> ModelInput {
        ModelInput(frameIndex: frame.index, tensor: nil)
    }

    /// An empty explanation (no heatmap, no label) per frame.
    public func explain(_ batch: [ModelInput]) async throws -> [FrameExplanation] {
        batch.map { _ in FrameExplanation() }
    }
}

/// The blend stage: draws an explanation onto its frame.
public protocol FrameOverlay: Sendable {
    /// Draws `explanation`'s heatmap and label (those present) onto `image`.
    func draw(_ explanation: FrameExplanation, on image: inout RGBImage) throws
}

/// The blend stage of camvid: Render's overlay (heat map upsampled, coloured and blended,
/// then the label), drawing only the layers an explanation carries.
public struct HeatmapOverlay: FrameOverlay {
    /// Colormap, opacity, label style and font.
    public let overlay: Overlay

    /// An overlay drawing with Render's `overlay`.
    public init(_ overlay: Overlay) {
        self.overlay = overlay
    }

    /// Blends the heat map (when present) and writes the label (when present) onto `image`.
    public func draw(_ explanation: FrameExplanation, on image: inout RGBImage) throws {
        overlay.apply(explanation.heatmap, label: explanation.label, to: &image)
    }
}
