import Core
import Explain
import Foundation

/// Somewhere explained frames are written as they finish (`--json`, `--cams`), by the explain
/// stage alone.
public protocol ExplanationRecord: AnyObject {
    /// Writes one frame; frames arrive in decode order.
    func record(_ frame: Frame) throws
    /// Completes the file (called once, also after a failure, so that what was written is usable).
    func finish() throws
}

/// Exponential smoothing of the maps over time (`--smooth N`):
/// `shown_t = a · map_t + (1 - a) · shown_{t-1}`, `a = 2 / (N + 1)` (an N-frame span).
///
/// This changes what each frame shows: a frame's map is no longer its own explanation but a
/// decaying average of it and the frames before (a flickering map becomes steady, a moving
/// object leaves a short trail). The label and class stay the frame's own. It restarts when
/// the map's size changes.
public struct TemporalSmoothing: Sendable {
    /// The weight of the newest map.
    public let weight: Float
    /// The last shown map of each stream (a grid's tiles are separate streams).
    private var previous: [Int: Heatmap] = [:]

    /// Smoothing over a span of `frames` (1 = none); nil below 1.
    public init?(frames: Int) {
        guard frames >= 1 else { return nil }
        weight = 2 / Float(frames + 1)
    }

    /// The smoothed map for the next frame in order of `stream`.
    public mutating func smooth(_ map: Heatmap, stream: Int = 0) -> Heatmap {
        guard let last = previous[stream], last.width == map.width, last.height == map.height else {
            previous[stream] = map
            return map
        }
        let a = weight, b = 1 - weight
        var smoothed = map
        for i in smoothed.values.indices { smoothed.values[i] = a * map.values[i] + b * last.values[i] }
        previous[stream] = smoothed
        return smoothed
    }

    /// `explanation` with its map (or each tile's) smoothed; the first tile's stands for the frame's.
    public mutating func smooth(_ explanation: FrameExplanation) -> FrameExplanation {
        var smoothed = explanation
        if explanation.tiles.isEmpty {
            smoothed.heatmap = explanation.heatmap.map { smooth($0) }
        } else {
            for t in smoothed.tiles.indices {
                smoothed.tiles[t].heatmap = smoothed.tiles[t].heatmap.map { smooth($0, stream: t) }
            }
            smoothed.heatmap = smoothed.tiles[0].heatmap
        }
        return smoothed
    }
}

/// Where a map peaks and what it covers, in frame pixels.
public struct HeatmapSummary: Sendable, Equatable {
    /// The centre of the highest cell (the first one, row by row, among equals).
    public var peakX: Double, peakY: Double
    /// The bounding box of the cells at or above the threshold, when there are any.
    public var box: PixelRect?

    /// The summary of `map` drawn over a `frameWidth` x `frameHeight` frame; nil for an empty map.
    public init?(_ map: Heatmap, frameWidth: Int, frameHeight: Int, threshold: Float) {
        guard let peak = map.values.indices.max(by: { map.values[$0] < map.values[$1] }) else { return nil }
        let best = map.values.firstIndex(of: map.values[peak]) ?? peak
        let sx = Double(frameWidth) / Double(map.width), sy = Double(frameHeight) / Double(map.height)
        peakX = (Double(best % map.width) + 0.5) * sx
        peakY = (Double(best / map.width) + 0.5) * sy
        var left = Int.max, top = Int.max, right = -1, bottom = -1
        for y in 0..<map.height {
            for x in 0..<map.width where map.values[y * map.width + x] >= threshold {
                left = min(left, x); right = max(right, x)
                top = min(top, y); bottom = max(bottom, y)
            }
        }
        if right >= 0 {
            let x0 = Int((Double(left) * sx).rounded(.down)), y0 = Int((Double(top) * sy).rounded(.down))
            let x1 = min(frameWidth, Int((Double(right + 1) * sx).rounded(.up)))
            let y1 = min(frameHeight, Int((Double(bottom + 1) * sy).rounded(.up)))
            box = PixelRect(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
        } else {
            box = nil
        }
    }
}

/// `--json PATH`: one JSON object a line per explained frame, written as each batch finishes.
///
/// Fields: `frame` (index), `pts` (seconds), `class` (`index`, `name`, `probability` of the
/// explained class), `top5` (the five most probable classes), `peak` (`x`, `y` in frame
/// pixels), `box` (`x`, `y`, `width`, `height` in frame pixels of the map at or above the
/// threshold, or null).
///
/// A detector's line also has `detections`: each detection explained, highest score first, with its `box` (`x1`,
/// `y1`, `x2`, `y2` in frame pixels), `class` (`index`, `name`), `score`, `anchor` (where in the output it came from)
/// and `peak` (of its own map, in frame pixels); `peak` and `box` of the line are those of the combined map.
///
/// A grid's line (`--grid`, several `--class`) also has `tiles`: one object per tile in grid
/// order (left to right, top to bottom), each with its `method` and that tile's own `class`,
/// `top5`, `peak` and `box`; the line's own `class` … `box` repeat the first tile's, so a reader
/// of single-method lines reads a grid's first tile. Without a grid there is no `tiles` key.
///
/// With `--metrics`, the line (and each tile) also has `metrics`: the faithfulness scores asked for by name
/// (`drop`, `relative_drop`, `increase`, `road_morf`, `road_lerf`, `road`, `deletion`, `insertion`); without it
/// there is no `metrics` key.
public final class ExplanationLog: ExplanationRecord {
    /// Class names.
    public let labels: ClassLabels
    /// The map value at or above which a cell counts into `box`.
    public let boxThreshold: Float
    private let handle: FileHandle
    private let path: String
    private let encoder: JSONEncoder

    /// Creates (or truncates) the file at `path`; `-` is standard output.
    public init(path: String, labels: ClassLabels, boxThreshold: Float = 0.5) throws {
        self.path = path
        self.labels = labels
        self.boxThreshold = boxThreshold
        if path == "-" {
            handle = FileHandle.standardOutput
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
                throw RecordError(path: path, frame: nil, reason: "cannot create the file")
            }
            handle = file
        }
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    struct ClassEntry: Encodable { var index: Int; var name: String; var probability: Float }
    struct Point: Encodable { var x: Double; var y: Double }
    struct Box: Encodable { var x: Int; var y: Int; var width: Int; var height: Int }

    /// What one explanation says: the fields a single-method line and a grid tile share.
    struct Fields {
        var `class`: ClassEntry?
        var top5: [ClassEntry]
        var peak: Point?
        var box: Box?
        /// The faithfulness scores by name; nil without `--metrics` (the key is then left out).
        var metrics: [String: Float]?

        /// Writes the fields, absent ones as null (a reader finds every key on every line); `metrics` only when scored.
        func encode<Key: CodingKey>(into container: inout KeyedEncodingContainer<Key>, keys: (Key, Key, Key, Key, Key)) throws {
            try container.encode(`class`, forKey: keys.0)
            try container.encode(top5, forKey: keys.1)
            try container.encode(peak, forKey: keys.2)
            try container.encode(box, forKey: keys.3)
            if let metrics { try container.encode(metrics, forKey: keys.4) }
        }
    }

    struct DetectionEntry: Encodable {
        struct Corners: Encodable { var x1: Double; var y1: Double; var x2: Double; var y2: Double }
        struct Class: Encodable { var index: Int; var name: String }
        var box: Corners
        var `class`: Class
        var score: Float
        var anchor: Int
        var peak: Point

        init(_ detection: FrameDetection) {
            box = Corners(x1: detection.x1, y1: detection.y1, x2: detection.x2, y2: detection.y2)
            `class` = Class(index: detection.classIndex, name: detection.name)
            (score, anchor, peak) = (detection.score, detection.anchor, Point(x: detection.peakX, y: detection.peakY))
        }
    }

    struct Tile: Encodable {
        var method: String?
        var fields: Fields
        var detections: [DetectionEntry]?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(method, forKey: .method)
            try fields.encode(into: &container, keys: (.class, .top5, .peak, .box, .metrics))
            try container.encodeIfPresent(detections, forKey: .detections)
        }

        enum CodingKeys: String, CodingKey { case method, `class`, top5, peak, box, metrics, detections }
    }

    struct Line: Encodable {
        var frame: Int
        var pts: Double
        var fields: Fields
        /// Nil but for a detector: the key is then left out.
        var detections: [DetectionEntry]?
        /// Empty without a grid: the key is then left out.
        var tiles: [Tile]

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(frame, forKey: .frame)
            try container.encode(pts, forKey: .pts)
            try fields.encode(into: &container, keys: (.class, .top5, .peak, .box, .metrics))
            try container.encodeIfPresent(detections, forKey: .detections)
            if !tiles.isEmpty { try container.encode(tiles, forKey: .tiles) }
        }

        enum CodingKeys: String, CodingKey { case frame, pts, `class`, top5, peak, box, metrics, detections, tiles }
    }

    /// The line for one frame, without the newline.
    public func line(for frame: Frame) throws -> String {
        let explanation = frame.explanation ?? FrameExplanation()
        let (width, height) = (frame.image.width, frame.image.height)
        let tiles = explanation.tiles.map { tile in
            Tile(method: tile.method, fields: fields(of: tile, frameWidth: width, frameHeight: height),
                 detections: tile.detections.map { $0.map(DetectionEntry.init) })
        }
        let line = Line(frame: frame.index, pts: frame.seconds,
                        fields: tiles.first?.fields ?? fields(of: explanation, frameWidth: width, frameHeight: height),
                        detections: (tiles.first.map { $0.detections } ?? explanation.detections.map { $0.map(DetectionEntry.init) }),
                        tiles: tiles)
        return String(decoding: try encoder.encode(line), as: UTF8.self)
    }

    /// The class, top five, peak and box of one explanation of a `frameWidth` x `frameHeight` frame.
    private func fields(of explanation: FrameExplanation, frameWidth: Int, frameHeight: Int) -> Fields {
        let probabilities = explanation.probabilities ?? []
        let ranked = probabilities.indices.sorted { probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 < $1 }
        let top5 = ranked.prefix(5).map { ClassEntry(index: $0, name: labels.name(of: $0), probability: probabilities[$0]) }
        let explained = explanation.classIndex.map {
            ClassEntry(index: $0, name: labels.name(of: $0), probability: probabilities.indices.contains($0) ? probabilities[$0] : 0)
        }
        let summary = explanation.heatmap.flatMap {
            HeatmapSummary($0, frameWidth: frameWidth, frameHeight: frameHeight, threshold: boxThreshold)
        }
        return Fields(class: explained, top5: top5, peak: summary.map { Point(x: $0.peakX, y: $0.peakY) },
                      box: summary?.box.map { Box(x: $0.x, y: $0.y, width: $0.width, height: $0.height) },
                      metrics: explanation.metrics.map { Dictionary(uniqueKeysWithValues: $0.named.map { ($0.name, $0.value) }) })
    }

    /// Writes the frame's line.
    public func record(_ frame: Frame) throws {
        let text = try line(for: frame) + "\n"
        do {
            try handle.write(contentsOf: Data(text.utf8))
        } catch {
            throw RecordError(path: path, frame: frame.index, reason: error.localizedDescription)
        }
    }

    /// Closes the file.
    public func finish() throws {
        if path != "-" { try handle.close() }
    }

    /// `line` (one this log wrote) with its frame number `local` replaced by `global`; nil when it
    /// does not say it is frame `local`. The keys are sorted and no other object has a `frame` key,
    /// so the first `"frame":` that is not inside a string (where quotes are escaped) is the line's own.
    public static func renumbered(_ line: String, from local: Int, to global: Int) -> String? {
        let key = "\"frame\":\(local)"
        guard let range = line.range(of: key), let after = line[range.upperBound...].first, after == "," || after == "}" else { return nil }
        return line.replacingCharacters(in: range, with: "\"frame\":\(global)")
    }
}

/// `--cams PATH.npy`: every frame's map (as drawn, in frame orientation) in one float32 NumPy
/// array, streamed to the file so that memory stays flat for any length.
///
/// Without a grid the array is `[frames,h,w]`; with a grid of T tiles it is
/// `[frames,T,h,w]`, `[f,t]` being tile t's map (grid order) of frame f, the same map a
/// single-method run of that tile's method and class writes. The header is rewritten after
/// every frame and at the end, so the file always reads as the frames written so far, even if
/// the run stops without `finish`.
public final class HeatmapArrayFile: ExplanationRecord {
    /// Tiles per frame for a grid's `[frames,tiles,h,w]`; nil for `[frames,h,w]`.
    public let tiles: Int?
    private let handle: FileHandle
    private let path: String
    private var frames = 0
    private var size: (width: Int, height: Int)?
    /// Header bytes reserved (a multiple of 64, as NumPy aligns), enough for any frame count.
    static let headerLength = 128

    /// Creates (or truncates) the file at `path`; `tiles` (at least 1) makes it a grid's
    /// `[frames,tiles,h,w]`.
    public init(path: String, tiles: Int? = nil) throws {
        self.path = path
        self.tiles = tiles
        if let tiles, tiles < 1 {
            throw RecordError(path: path, frame: nil, reason: "a grid needs at least one tile, got \(tiles)")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw RecordError(path: path, frame: nil, reason: "cannot create the file")
        }
        handle = file
        try write(NumPyFile.header(shape: shape(frames: 0), length: Self.headerLength), frame: nil)
    }

    /// The array's shape after `frames` frames (0x0 maps before the first).
    private func shape(frames: Int) -> [Int] {
        let height = size?.height ?? 0, width = size?.width ?? 0
        if let tiles { return [frames, tiles, height, width] }
        return [frames, height, width]
    }

    /// Appends the frame's map (a grid: every tile's, in order); every map must have the first one's size.
    public func record(_ frame: Frame) throws {
        let maps = try self.maps(of: frame)
        for map in maps {
            if let size, size != (map.width, map.height) {
                throw RecordError(path: path, frame: frame.index,
                                  reason: "the map is \(map.width)x\(map.height), earlier maps' \(size.width)x\(size.height) (the frame size changed)")
            }
            size = (map.width, map.height)
        }
        var bytes = Data(capacity: maps.count * maps[0].values.count * 4)
        for map in maps {
            #if _endian(little)
            // The array's memory already is the file's little-endian float32: one copy, not one append per value.
            map.values.withUnsafeBytes { bytes.append(contentsOf: $0) }
            #else
            for value in map.values {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
            }
            #endif
        }
        try write(bytes, frame: frame.index)
        frames += 1
        // The count follows the data: a run killed at any point leaves a readable file.
        try rewriteHeader(frame: frame.index)
    }

    /// The maps to write for `frame`: its own, or each of its `tiles` tiles'.
    private func maps(of frame: Frame) throws -> [Heatmap] {
        let explanation = frame.explanation ?? FrameExplanation()
        guard let tiles else {
            guard let map = explanation.heatmap else {
                throw RecordError(path: path, frame: frame.index, reason: "the method gave no map for this frame")
            }
            return [map]
        }
        guard explanation.tiles.count == tiles else {
            throw RecordError(path: path, frame: frame.index, reason: "the frame has \(explanation.tiles.count) tiles, the array \(tiles)")
        }
        return try explanation.tiles.enumerated().map { t, tile in
            guard let map = tile.heatmap else {
                throw RecordError(path: path, frame: frame.index, reason: "tile \(t) (\(tile.method ?? "no method")) gave no map for this frame")
            }
            return map
        }
    }

    /// Rewrites the header with the final frame count and closes the file.
    public func finish() throws {
        try rewriteHeader(frame: nil)
        do {
            try handle.close()
        } catch {
            throw RecordError(path: path, frame: nil, reason: error.localizedDescription)
        }
    }

    /// Writes the header for the frames so far over the old one, then returns to the end.
    private func rewriteHeader(frame: Int?) throws {
        do {
            try handle.seek(toOffset: 0)
            try handle.write(contentsOf: NumPyFile.header(shape: shape(frames: frames), length: Self.headerLength))
            try handle.seekToEnd()
        } catch {
            throw RecordError(path: path, frame: frame, reason: error.localizedDescription)
        }
    }

    private func write(_ data: Data, frame: Int?) throws {
        do {
            try handle.write(contentsOf: data)
        } catch {
            throw RecordError(path: path, frame: frame, reason: error.localizedDescription)
        }
    }
}

/// A record file that cannot be written, naming it (and the frame, when there is one).
public struct RecordError: Error, CustomStringConvertible, Sendable {
    /// The file.
    public let path: String
    /// The frame being written, if any.
    public let frame: Int?
    /// What went wrong.
    public let reason: String

    /// `PATH: frame N: REASON`.
    public var description: String {
        frame.map { "\(path): frame \($0): \(reason)" } ?? "\(path): \(reason)"
    }
}
