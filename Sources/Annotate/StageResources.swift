import Core
import Media
import Pipeline
import Render

/// The decode stage of camvid: FFmpeg's decoder, frames and the other streams' packets in file
/// order, up to `frameLimit` frames (a picture is the first frame of its file).
public struct DecoderSource: PipelineSource {
    private let decoder: FrameDecoder
    private let frameLimit: Int?
    private var frames = 0

    /// A source reading `decoder`, stopping after `frameLimit` frames when given.
    public init(_ decoder: FrameDecoder, frameLimit: Int? = nil) {
        self.decoder = decoder
        self.frameLimit = frameLimit
    }

    /// The next frame or packet, or nil at the end of the input (or span, or limit).
    public mutating func next() throws -> DecodedItem? {
        if let frameLimit, frames >= frameLimit { return nil }
        let item = try decoder.next()
        if item?.isFrame == true { frames += 1 }
        return item
    }
}

/// The convert stage of camvid: each decoded picture to RGB at its own size (swscale), and, when
/// a network explains the frames, the network's input made from it.
public struct FrameConverter: PipelineConverter {
    private let pixels: PixelConverter
    private var preprocessor: FramePreprocessor?

    /// A converter naming `file` in its errors, preparing network inputs with `preprocessor`.
    public init(file: String, preprocessor: FramePreprocessor?) {
        pixels = PixelConverter(file: file)
        self.preprocessor = preprocessor
    }

    /// `decoded` as a frame at `index`, with its network input when there is a network.
    public mutating func convert(_ decoded: DecodedFrame, index: Int) throws -> Frame {
        let image = RGBImage(width: decoded.width, height: decoded.height, pixels: try pixels.rgb(decoded))
        var frame = Frame(timing: FrameTiming(index: index, pts: decoded.pts, duration: decoded.duration),
                          timeBase: decoded.timeBase, image: image)
        frame.input = preprocessor?.input(for: image)
        return frame
    }
}

/// The explain stage of camvid: a network explainer (one, or a grid of them; none for
/// `--method none`), the temporal smoothing of the maps, and the records written beside the
/// video, each frame recorded in decode order as its batch finishes.
public struct VideoExplainer: PipelineExplainer {
    /// How the frames are explained.
    public enum Explaining: Sendable {
        /// Not at all: every frame is re-encoded unchanged (`--method none`).
        case none
        /// By one network and method.
        case network(NetworkExplainer)
        /// By several, one tile each.
        case grid(GridExplainer)
    }

    private let explaining: Explaining
    private var smoothing: TemporalSmoothing?
    private let records: [any ExplanationRecord]

    /// An explain stage: `explaining`, then `smoothing` (when on), then `records` (in order).
    public init(_ explaining: Explaining, smoothing: TemporalSmoothing? = nil, records: [any ExplanationRecord] = []) {
        self.explaining = explaining
        self.smoothing = smoothing
        self.records = records
    }

    /// Explains, smooths and records `frames`; their network inputs are freed once explained.
    public mutating func explain(_ frames: inout [Frame]) throws {
        switch explaining {
        case .none: return
        case .network(let network): try network.explain(&frames)
        case .grid(let grid): try grid.explain(&frames)
        }
        for i in frames.indices {
            frames[i].input = nil
            if let explanation = frames[i].explanation {
                frames[i].explanation = smoothing?.smooth(explanation) ?? explanation
            }
            for record in records { try record.record(frames[i]) }
        }
    }

    /// Completes every record; the first failure is thrown after all are tried.
    public mutating func finish() throws {
        var failure: Error?
        for record in records {
            do { try record.finish() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }
}

/// The blend stage of camvid: each frame's explanation drawn onto its picture in place (a grid's
/// tiles side by side at the picture's size); frames without one pass unchanged.
public struct ExplanationOverlay: PipelineOverlay {
    private var overlay: Overlay

    /// An overlay drawing with Render's `overlay` (colormap, opacity, label style, font).
    public init(_ overlay: Overlay) {
        self.overlay = overlay
    }

    /// Draws the frame's map and label, or its tiles.
    public mutating func draw(_ frame: inout Frame) {
        guard let explanation = frame.explanation else { return }
        if explanation.tiles.isEmpty {
            overlay.apply(explanation.heatmap, label: explanation.label, boxes: explanation.boxes, to: &frame.image)
        } else {
            overlay.applyGrid(explanation.tiles.map { ($0.heatmap, $0.label, $0.boxes) }, to: &frame.image)
        }
    }
}

/// The encode stage of camvid for a video: FFmpeg's encoder and muxer.
public struct VideoSink: PipelineSink {
    private let encoder: FrameEncoder

    /// A sink writing to `encoder`.
    public init(_ encoder: FrameEncoder) {
        self.encoder = encoder
    }

    /// Encodes the frame's picture at its own pts and duration.
    public func encode(_ frame: Frame) throws {
        try encoder.encode(rgb: frame.image.pixels, width: frame.image.width, height: frame.image.height, timing: frame.timing)
    }

    /// Copies a packet of an audio or subtitle stream.
    public func copy(_ packet: StreamPacket) throws {
        try encoder.write(packet)
    }

    /// Flushes the encoder and writes the trailer.
    public func finish() throws {
        try encoder.finish()
    }
}

/// The encode stage of camvid for a picture: the one frame written as a picture file (the format
/// from its extension), handed to `written` as it was drawn.
public struct PictureSink: PipelineSink {
    private let path: String
    private let written: @Sendable (Frame) -> Void

    /// A sink writing the picture to `path`.
    public init(path: String, written: @escaping @Sendable (Frame) -> Void = { _ in }) {
        self.path = path
        self.written = written
    }

    /// Writes the frame as the picture.
    public func encode(_ frame: Frame) throws {
        try PictureFile.write(frame.image, to: path)
        written(frame)
    }

    /// A picture has no other streams.
    public func copy(_ packet: StreamPacket) throws {}

    /// The picture is complete once written.
    public func finish() throws {}
}
