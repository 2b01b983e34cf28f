import Explain
import Foundation

/// What a comparison report shows: sampled frames of one video, each explained by every method, with each
/// explanation's faithfulness scores, its cost and its overlay.
public struct ComparisonReport: Sendable {
    /// An encoded picture to embed (`bytes` in the format `mimeType` names).
    public struct Picture: Sendable, Equatable {
        /// The picture file's bytes.
        public var bytes: [UInt8]
        /// `image/jpeg`, `image/png`, …
        public var mimeType: String
        /// The picture's size in pixels.
        public var width: Int, height: Int

        /// A picture of `width` x `height` pixels encoded as `mimeType`.
        public init(bytes: [UInt8], mimeType: String, width: Int, height: Int) {
            self.bytes = bytes
            self.mimeType = mimeType
            self.width = width
            self.height = height
        }
    }

    /// One method's explanation of one frame.
    public struct Explained: Sendable {
        /// The overlay of the map on the frame.
        public var picture: Picture
        /// What the overlay explains (`Egyptian cat 77.7%`).
        public var caption: String
        /// The explanation's faithfulness.
        public var scores: FaithfulnessScores
        /// What the method took on this frame, and what its metrics took, in milliseconds.
        public var explainingMilliseconds: Double, scoringMilliseconds: Double

        /// An explanation's overlay, caption, scores and costs.
        public init(picture: Picture, caption: String, scores: FaithfulnessScores, explainingMilliseconds: Double, scoringMilliseconds: Double) {
            self.picture = picture
            self.caption = caption
            self.scores = scores
            self.explainingMilliseconds = explainingMilliseconds
            self.scoringMilliseconds = scoringMilliseconds
        }
    }

    /// One sampled frame.
    public struct SampledFrame: Sendable {
        /// Its index in decode order and its time in seconds.
        public var index: Int, seconds: Double
        /// The network's most probable class for the frame, and its probability.
        public var topClass: String, topProbability: Float
        /// The frame as it is.
        public var picture: Picture
        /// Each method's explanation, in the report's method order.
        public var explained: [Explained]

        /// A sampled frame with its explanations.
        public init(index: Int, seconds: Double, topClass: String, topProbability: Float, picture: Picture, explained: [Explained]) {
            self.index = index
            self.seconds = seconds
            self.topClass = topClass
            self.topProbability = topProbability
            self.picture = picture
            self.explained = explained
        }
    }

    /// The page's title (the video's name).
    public var title: String
    /// Lines saying how the report was made (model, sampling, metric settings, camvid's version).
    public var details: [String]
    /// The methods compared, in order.
    public var methods: [String]
    /// The sampled frames, in time order.
    public var frames: [SampledFrame]

    /// A report of `frames` explained by `methods`.
    public init(title: String, details: [String], methods: [String], frames: [SampledFrame]) {
        self.title = title
        self.details = details
        self.methods = methods
        self.frames = frames
    }

    /// The names of the scores the frames hold, in `FaithfulnessScores.named` order.
    public var scoreNames: [String] {
        var names: [String] = []
        for frame in frames {
            for explained in frame.explained {
                for (name, _) in explained.scores.named where !names.contains(name) { names.append(name) }
            }
        }
        return names
    }

    /// Per method, the named score of each frame (nil where a frame lacks it).
    func series(_ name: String) -> [[Float?]] {
        methods.indices.map { m in
            frames.map { frame in
                frame.explained.indices.contains(m) ? frame.explained[m].scores.named.first { $0.name == name }?.value : nil
            }
        }
    }
}
