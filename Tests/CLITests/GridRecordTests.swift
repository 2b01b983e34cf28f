import Foundation
import Media
import TestSupport
import Testing
import MediaTestSupport

/// `camvid IN OUT --grid … --json … --cams …`: every tile recorded, as single-method runs record it.
@Suite(.serialized) struct GridRecordTests {
    /// The JSON objects of a `--json` file, one per line.
    static func objects(_ url: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// A grid of Grad-CAM, LayerCAM and EigenCAM: one line per frame with one `tiles` entry per
    /// method in grid order, each equal to that method's own line; `--cams` is
    /// `[frames,3,224,224]`, `[f,t]` equal to tile t's method's own `[frames,224,224]`.
    @Test func gridRecordsEveryTileAsSingleMethodRunsDo() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-grid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("disc.mkv")
        let count = 4
        try MovingDiscClip.write(input, count: count, width: 160, height: 120)
        let methods = ["gradcam", "layercam", "eigencam"]

        func run(_ name: String, _ arguments: [String]) throws -> (json: URL, cams: URL) {
            let json = folder.appendingPathComponent("\(name).jsonl"), cams = folder.appendingPathComponent("\(name).npy")
            // One frame per network call: the pipeline batches whatever frames are waiting, and a batch of two sums in
            // another order than a batch of one, so exact comparisons between runs need the same batches.
            let result = try CamvidProcess.run([input.path, folder.appendingPathComponent("\(name).mkv").path, "--batch-size", "1",
                                                "--json", json.path, "--cams", cams.path] + arguments, in: folder)
            #expect(result.status == 0, "\(result.standardError)")
            return (json, cams)
        }
        let grid = try run("grid", ["--grid", methods.joined(separator: ",")])
        let singles = try methods.map { try run($0, ["--method", $0]) }

        let lines = try Self.objects(grid.json)
        #expect(lines.map { $0["frame"] as? Int } == Array(0..<count))
        let singleLines = try singles.map { try Self.objects($0.json) }
        for (f, line) in lines.enumerated() {
            let tiles = try #require(line["tiles"] as? [[String: Any]])
            #expect(tiles.map { $0["method"] as? String } == methods)
            for (t, tile) in tiles.enumerated() {
                // A single-method line keeps its format: no method, no tiles.
                var expected = singleLines[t][f]
                #expect(Set(expected.keys) == ["frame", "pts", "class", "top5", "peak", "box"])
                expected["frame"] = nil
                expected["pts"] = nil
                expected["method"] = methods[t]
                #expect(NSDictionary(dictionary: tile).isEqual(to: expected), "frame \(f), \(methods[t])")
            }
            var own = line, first = tiles[0]
            for key in ["frame", "pts", "tiles"] { own[key] = nil }
            first["method"] = nil
            #expect(NSDictionary(dictionary: own).isEqual(to: first), "frame \(f): the line's fields are the first tile's")
        }

        let (shape, maps) = try readNumPy(grid.cams)
        #expect(shape == [count, methods.count, 224, 224])
        #expect(maps.count == count * methods.count * 224 * 224)
        let plane = 224 * 224
        for (t, single) in singles.enumerated() {
            let (singleShape, singleMaps) = try readNumPy(single.cams)
            #expect(singleShape == [count, 224, 224])
            for f in 0..<count {
                let start = (f * methods.count + t) * plane
                // A Bool, so that a failure names the frame instead of printing 50,176 values.
                let same = Array(maps[start..<(start + plane)]) == Array(singleMaps[(f * plane)..<((f + 1) * plane)])
                #expect(same, "frame \(f), \(methods[t])")
            }
        }
        // Different methods, different maps, in every frame.
        for f in 0..<count {
            let tileMaps = (0..<methods.count).map { t in Array(maps[((f * methods.count + t) * plane)..<((f * methods.count + t + 1) * plane)]) }
            for a in 0..<methods.count {
                for b in (a + 1)..<methods.count {
                    let differ = tileMaps[a] != tileMaps[b]
                    #expect(differ, "frame \(f): \(methods[a]) and \(methods[b])")
                }
            }
        }
    }

    /// `--grid` with one method is a one-tile grid: the records keep the grid's layout.
    @Test func oneMethodGridKeepsTheGridLayout() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-grid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("disc.mkv")
        try MovingDiscClip.write(input, count: 2, width: 160, height: 120)
        let json = folder.appendingPathComponent("grid.jsonl"), cams = folder.appendingPathComponent("grid.npy")
        let result = try CamvidProcess.run([input.path, folder.appendingPathComponent("grid.mkv").path, "--grid", "gradcam",
                                            "--json", json.path, "--cams", cams.path], in: folder)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = try Self.objects(json)
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { ($0["tiles"] as? [[String: Any]])?.map { $0["method"] as? String } == ["gradcam"] })
        #expect(try readNumPy(cams).shape == [2, 1, 224, 224])
    }

    /// Ctrl-C during a grid run: the video, `--json` and `--cams` hold the same completed frames,
    /// and the array's header counts exactly the frames its data holds.
    @Test func interruptedGridKeepsMatchingRecords() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-grid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("long.mkv")
        let output = folder.appendingPathComponent("out.mkv")
        let json = folder.appendingPathComponent("frames.jsonl"), cams = folder.appendingPathComponent("cams.npy")
        let total = 400
        try PatternClips.write(input, count: total, width: 96, height: 64)

        let errors = folder.appendingPathComponent("stderr.txt")
        let process = try CamvidProcess.start([input.path, output.path, "--quiet", "--grid", "gradcam,layercam",
                                               "--json", json.path, "--cams", cams.path], errors: errors)
        let frameBytes = 2 * 224 * 224 * 4
        // Two frames recorded: the network runs and the signal handlers are installed.
        while process.isRunning, ((try? FileManager.default.attributesOfItem(atPath: cams.path)[.size] as? Int) ?? 0) < 128 + 2 * frameBytes {
            usleep(10_000)
        }
        process.interrupt()
        process.waitUntilExit()
        let standardError = try String(contentsOf: errors, encoding: .utf8)
        #expect(process.terminationStatus == 130, "\(standardError)")

        let written = try PatternClips.read(MediaInput(output.path))
        let (shape, maps) = try readNumPy(cams)
        let lines = try Self.objects(json)
        #expect(written.pts.count >= 2 && written.pts.count < total)
        #expect(shape == [written.pts.count, 2, 224, 224])
        #expect(maps.count == written.pts.count * 2 * 224 * 224)
        #expect(lines.map { $0["frame"] as? Int } == Array(0..<written.pts.count))
        #expect(lines.allSatisfy { ($0["tiles"] as? [Any])?.count == 2 })
    }
}
