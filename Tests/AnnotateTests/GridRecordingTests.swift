import Annotate
import Core
import Engine
import Explain
import Foundation
import Media
import Pipeline
import TestSupport
import Testing
import MediaTestSupport

/// `--json` and `--cams` for a grid: every tile recorded, in grid order, on real frames.
@Suite(.serialized) struct GridRecordingTests {
    static let methods: [ExplanationMethod] = [.gradcam, .layercam]

    /// Two frames of the sample explained by a Grad-CAM | LayerCAM grid, as the pipeline's explain stage gives them.
    static func gridRecords() throws -> [Frame] {
        let network = try Network(contentsOf: DefaultModel.url)
        let labels = ClassLabels(names: ImageNetClasses.names)
        let tiles = try methods.map { try NetworkExplainer(network: network, method: $0, labels: labels) }
        let grid = try #require(GridExplainer(tiles: tiles))
        var frames = Array(try decodedFrames(NetworkExplainerTests.sample, span: TimeSpan(start: 2, duration: 0.08),
                                             preprocessor: FramePreprocessor(inputWidth: 224, inputHeight: 224)).prefix(2))
        #expect(frames.count == 2)
        try grid.explain(&frames)
        return frames
    }

    /// Each tile carries its method; the grid's own fields are the first tile's.
    @Test func gridExplanationsNameTheirMethods() throws {
        for record in try Self.gridRecords() {
            let explanation = try #require(record.explanation)
            #expect(explanation.tiles.map(\.method) == Self.methods.map(\.rawValue))
            // Bools, so that a failure does not print every value of the maps.
            let firstTileIsTheGrids = explanation.heatmap == explanation.tiles[0].heatmap
            let tilesDiffer = explanation.tiles[0].heatmap != explanation.tiles[1].heatmap
            #expect(explanation.method == "gradcam" && firstTileIsTheGrids)
            #expect(tilesDiffer)
        }
    }

    /// A grid's line has one `tiles` entry per tile in grid order, each the fields a line of that
    /// explanation alone has plus its `method`; a single explanation's line has no `tiles` key.
    @Test func logLineHasOneEntryPerTile() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-grid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let log = try ExplanationLog(path: folder.appendingPathComponent("frames.jsonl").path,
                                     labels: ClassLabels(names: ImageNetClasses.names))
        defer { try? log.finish() }
        for record in try Self.gridRecords() {
            let line = try Self.object(try log.line(for: record))
            let tiles = try #require(line["tiles"] as? [[String: Any]])
            #expect(tiles.map { $0["method"] as? String } == Self.methods.map(\.rawValue))
            for (tile, explanation) in zip(tiles, record.explanation?.tiles ?? []) {
                var alone = record
                alone.explanation = explanation
                let single = try Self.object(try log.line(for: alone))
                #expect(Set(single.keys) == ["frame", "pts", "class", "top5", "peak", "box"])
                #expect(Set(tile.keys) == ["method", "class", "top5", "peak", "box"])
                var expected = single
                expected["frame"] = nil
                expected["pts"] = nil
                expected["method"] = explanation.method
                #expect(NSDictionary(dictionary: tile).isEqual(to: expected), "frame \(record.index)")
            }
            // The grid's own fields repeat the first tile's.
            var own = line, first = tiles[0]
            for key in ["frame", "pts", "tiles"] { own[key] = nil }
            first["method"] = nil
            #expect(NSDictionary(dictionary: own).isEqual(to: first))
            // Same network and frame: the same classes; different methods: different maps.
            #expect(NSArray(array: tiles[0]["top5"] as? [Any] ?? []).isEqual(to: tiles[1]["top5"] as? [Any] ?? [1]))
            let maps = record.explanation?.tiles.compactMap(\.heatmap) ?? []
            let mapsDiffer = maps.count == 2 && maps[0].values != maps[1].values
            #expect(mapsDiffer)
        }
    }

    /// `[frames,tiles,h,w]`: tile t of frame f is that tile's map; after every frame the file
    /// reads as the frames so far (a run killed before `finish` leaves a valid array).
    @Test func arrayFileHoldsEveryTileAndReadsBeforeFinish() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-grid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let records = try Self.gridRecords()
        let gridPath = folder.appendingPathComponent("grid.npy").path, singlePath = folder.appendingPathComponent("single.npy").path
        let grid = try HeatmapArrayFile(path: gridPath, tiles: 2), single = try HeatmapArrayFile(path: singlePath)
        #expect(try Self.shape(gridPath) == [0, 2, 0, 0])
        #expect(try Self.shape(singlePath) == [0, 0, 0])
        for (n, record) in records.enumerated() {
            try grid.record(record)
            try single.record(record)
            let written = try NumPyFile.read(path: gridPath)
            #expect(written.shape == [n + 1, 2, 224, 224])
            let alone = try NumPyFile.read(path: singlePath)
            #expect(alone.shape == [n + 1, 224, 224])
            let plane = 224 * 224
            for (f, frame) in records.prefix(n + 1).enumerated() {
                for (t, tile) in (frame.explanation?.tiles ?? []).enumerated() {
                    let start = (f * 2 + t) * plane
                    let same = Array(written.storage[start..<(start + plane)]) == tile.heatmap?.values
                    #expect(same, "frame \(f) tile \(t)")
                }
                let same = Array(alone.storage[(f * plane)..<((f + 1) * plane)]) == frame.explanation?.heatmap?.values
                #expect(same, "frame \(f) without tiles")
            }
        }
        try grid.finish()
        try single.finish()
        #expect(try NumPyFile.read(path: gridPath).shape == [2, 2, 224, 224])
        let size = try #require(try FileManager.default.attributesOfItem(atPath: gridPath)[.size] as? Int)
        #expect(size == 128 + 2 * 2 * 224 * 224 * 4)

        // A frame with another number of tiles is refused, naming the file and frame.
        let three = try HeatmapArrayFile(path: folder.appendingPathComponent("three.npy").path, tiles: 3)
        #expect {
            try three.record(records[0])
        } throws: { error in
            "\(error)".contains("frame 0") && "\(error)".contains("three.npy") && "\(error)".contains("2 tiles")
        }
        try three.finish()
    }

    /// The JSON object of one line.
    static func object(_ line: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// The shape in a `.npy` header (also of an empty array).
    static func shape(_ path: String) throws -> [Int] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let header = String(decoding: data.prefix(128), as: UTF8.self)
        let open = try #require(header.range(of: "'shape': ("))
        let close = try #require(header[open.upperBound...].firstIndex(of: ")"))
        return header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }
}
