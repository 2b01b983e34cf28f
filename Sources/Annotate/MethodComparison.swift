import Core
import Explain
import Media
import Render

/// Which frames of a video a comparison looks at (`camvid report --frames / --every`).
public struct FrameSampling: Sendable, Equatable {
    /// The frames sampled, when known in advance (`evenly`).
    private let picks: Set<Int>?
    /// Every `step`-th frame from the first (`every`).
    private let step: Int
    /// The most frames sampled.
    private let limit: Int

    /// `count` frames spread evenly over `total`: the middle frame of each of `count` equal parts (every frame when
    /// `count >= total`).
    public static func evenly(count: Int, of total: Int) -> FrameSampling {
        let parts = max(1, min(count, total))
        return FrameSampling(picks: Set((0..<parts).map { (2 * $0 + 1) * total / (2 * parts) }), step: 1, limit: parts)
    }

    /// Every `step`-th frame from the first, at most `limit` of them when given.
    public static func every(_ step: Int, limit: Int? = nil) -> FrameSampling {
        FrameSampling(picks: nil, step: max(1, step), limit: limit ?? .max)
    }

    /// Whether frame `index` (decode order, from 0) is sampled.
    public func takes(_ index: Int) -> Bool {
        picks.map { $0.contains(index) } ?? (index % step == 0)
    }

    /// Whether no frame at or after `index` can be sampled once `taken` are.
    public func isDone(at index: Int, taken: Int) -> Bool {
        taken >= limit || picks.map { index > ($0.max() ?? -1) } == true
    }
}

/// One method's explanation of a sampled frame.
public struct ComparedExplanation: Sendable {
    /// The explanation: map, class, probabilities, metrics.
    public var explanation: FrameExplanation
    /// Its overlay on the frame's thumbnail.
    public var overlay: RGBImage
    /// What the method took on this frame, and what scoring its explanation took.
    public var explaining: Duration, scoring: Duration
}

/// One sampled frame explained by every method of a comparison.
public struct ComparedFrame: Sendable {
    /// The frame's index in decode order and its time in seconds.
    public var index: Int, seconds: Double
    /// The frame shrunk to the comparison's thumbnail width.
    public var thumbnail: RGBImage
    /// Each method's explanation, in the comparison's order.
    public var explained: [ComparedExplanation]
}

/// `camvid report`'s work: sampled frames of a video explained by several methods, each explanation scored and timed.
///
/// Frames are decoded in order and only the sampled ones converted; each goes through each method on its own (batch
/// of one), so the times are per frame and comparable between methods.
public struct MethodComparison {
    /// One explainer per method, each scoring its explanations.
    public let explainers: [NetworkExplainer]
    /// How each frame becomes the network's input.
    public let preprocessor: FramePreprocessor
    /// How each overlay is drawn.
    public var overlay: Overlay
    /// The width of the thumbnails (the frame's aspect kept).
    public let thumbnailWidth: Int
    private var shrinking = PlanCache<AreaResampling>()

    /// A comparison of `explainers` on frames prepared by `preprocessor`, drawn with `overlay` on thumbnails
    /// `thumbnailWidth` pixels wide.
    public init(explainers: [NetworkExplainer], preprocessor: FramePreprocessor, overlay: Overlay, thumbnailWidth: Int = 320) {
        self.explainers = explainers
        self.preprocessor = preprocessor
        self.overlay = overlay
        self.thumbnailWidth = max(1, thumbnailWidth)
    }

    /// Explains the frames of `decoder` that `sampling` picks; `progress` hears of each finished frame.
    public mutating func run(_ decoder: FrameDecoder, sampling: FrameSampling,
                             progress: (ComparedFrame) -> Void = { _ in }) throws -> [ComparedFrame] {
        var converter = FrameConverter(file: decoder.input.location, preprocessor: preprocessor)
        var compared: [ComparedFrame] = []
        var index = 0
        while !sampling.isDone(at: index, taken: compared.count), let item = try decoder.next() {
            guard case .frame(let decoded) = item else { continue }
            defer { index += 1 }
            guard sampling.takes(index) else { continue }
            let frame = try converter.convert(decoded, index: index)
            let batch = try NetworkExplainer.batch([frame])
            let image = frame.image
            let height = max(1, (image.height * thumbnailWidth + image.width / 2) / image.width)
            let thumbnail = image.width == thumbnailWidth && image.height == height ? image
                : shrinking.plan(width: image.width, height: image.height, toWidth: thumbnailWidth, toHeight: height).resample(image)
            var result = ComparedFrame(index: index, seconds: frame.seconds, thumbnail: thumbnail, explained: [])
            for explainer in explainers {
                let (explanations, explaining, scoring) = try explainer.timedExplanations(of: batch, frames: [frame])
                var drawn = thumbnail
                overlay.apply(explanations[0].heatmap, label: nil, to: &drawn)
                result.explained.append(ComparedExplanation(explanation: explanations[0], overlay: drawn, explaining: explaining, scoring: scoring))
            }
            compared.append(result)
            progress(result)
        }
        return compared
    }
}
