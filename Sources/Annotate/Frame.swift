import Core
import Explain
import Media
import Pipeline
import Render

/// A video frame on its way from the decoder to the encoder, carrying what each stage learns of
/// it: its timing and picture (convert stage), the network input made from it (convert stage),
/// and what the network saw (explain stage). No stage keeps a table of frames beside it.
public struct Frame: PipelineFrame {
    /// Index (decode order), pts and duration in the input stream's time base.
    public var timing: FrameTiming
    /// The unit of `timing`'s pts and duration.
    public var timeBase: Rational
    /// The picture at its own size; the blend stage draws on it in place.
    public var image: RGBImage
    /// The network's input made from the picture, when a network explains the frame.
    public var input: ModelInput?
    /// What the network saw, once explained.
    public var explanation: FrameExplanation?

    /// A frame of `image` at `timing` (in units of `timeBase`), not yet prepared or explained.
    public init(timing: FrameTiming, timeBase: Rational, image: RGBImage) {
        self.timing = timing
        self.timeBase = timeBase
        self.image = image
    }

    /// The frame's position in decode order (gaps mark frames dropped live).
    public var index: Int { timing.index }

    /// The presentation time in seconds.
    public var seconds: Double { timeBase.seconds(timing.pts) }
}

/// One frame prepared for a network: the input tensor and where the picture went in it.
public struct ModelInput: Sendable {
    /// `[1, 3, h, w]`, fitted and normalised.
    public var tensor: Tensor
    /// Where the picture lies in the input, and so where the input's map lies on the picture.
    public var geometry: ModelInputGeometry

    /// An input with its geometry.
    public init(tensor: Tensor, geometry: ModelInputGeometry) {
        self.tensor = tensor
        self.geometry = geometry
    }
}

/// What the network saw in one frame.
public struct FrameExplanation: Sendable, Equatable {
    /// The map over the frame (in frame orientation, the input's resolution), when the method draws one.
    public var heatmap: Heatmap?
    /// The text written onto the frame (e.g. `tabby cat 87.3%`).
    public var label: String?
    /// The class the map explains.
    public var classIndex: Int?
    /// The network's class probabilities (softmax of its logits).
    public var probabilities: [Float]?
    /// The method that made the map (`gradcam`, …).
    public var method: String?
    /// For a detector (nil for other models): each detection explained, highest score first (`heatmap` then
    /// combines their maps, each normalised within its box; none when there is no detection).
    public var detections: [FrameDetection]?
    /// How faithful the map is (`--metrics`), scored on the frame's own map before any `--smooth`.
    public var metrics: FaithfulnessScores?
    /// For a grid (`--grid`, several `--class`): the same frame explained several ways, one tile
    /// each, in reading order; the fields above then repeat the first tile's.
    public var tiles: [FrameExplanation] = []

    /// An explanation with the given parts.
    public init(heatmap: Heatmap? = nil, label: String? = nil, classIndex: Int? = nil, probabilities: [Float]? = nil,
                method: String? = nil) {
        self.heatmap = heatmap
        self.label = label
        self.classIndex = classIndex
        self.probabilities = probabilities
        self.method = method
    }
}

extension FrameExplanation {
    /// The detections as Render draws them.
    var boxes: [DetectionBox] {
        (detections ?? []).map { DetectionBox(rect: $0.rect, label: $0.label, classIndex: $0.classIndex) }
    }
}

/// A detection explained in a frame, in frame pixels.
public struct FrameDetection: Sendable, Equatable {
    /// Left, top, right, bottom edges in frame pixels, within the frame.
    public var x1: Double, y1: Double, x2: Double, y2: Double
    /// The class detected and its name.
    public var classIndex: Int, name: String
    /// The detection's score.
    public var score: Float
    /// Where in the detector's output it came from (the element its explanation targets).
    public var anchor: Int
    /// Where its own map peaks, in frame pixels.
    public var peakX: Double, peakY: Double

    /// A detection with the given parts.
    public init(x1: Double, y1: Double, x2: Double, y2: Double, classIndex: Int, name: String, score: Float, anchor: Int,
                peakX: Double, peakY: Double) {
        (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
        (self.classIndex, self.name, self.score, self.anchor, self.peakX, self.peakY) = (classIndex, name, score, anchor, peakX, peakY)
    }

    /// The label drawn on its box: the class name and the score to two places (as ultralytics draws it).
    public var label: String {
        let hundredths = Int((Double(min(max(score, 0), 1)) * 100).rounded())
        return "\(name) \(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }

    /// The box in whole frame pixels, for drawing.
    public var rect: PixelRect {
        let left = Int(x1.rounded(.down)), top = Int(y1.rounded(.down))
        return PixelRect(x: left, y: top, width: max(1, Int(x2.rounded(.up)) - left), height: max(1, Int(y2.rounded(.up)) - top))
    }
}
