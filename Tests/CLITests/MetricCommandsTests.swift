import Core
import Foundation
import Media
import MediaTestSupport
import Testing
import TestSupport

/// `--metrics` on `tensor`, `image` and `video`: printed and recorded as the user reads them.
@Suite(.serialized) struct MetricCommandsTests {
    /// `name value` pairs of a printed scores line.
    static func printed(_ line: Substring) -> [String: Double] {
        let words = line.split(separator: ":").last?.split(separator: " ") ?? []
        var values: [String: Double] = [:]
        for i in stride(from: 0, to: words.count - 1, by: 2) { values[String(words[i])] = Double(words[i + 1]) }
        return values
    }

    /// `camvid tensor --metrics all --metric-noise 0` prints, for the reference's Grad-CAM case, the peers' own values.
    @Test func tensorPrintsThePeersScores() throws {
        guard let reference = ReferenceData.referenceOrSkip("MetricCommandsTests.tensorPrintsThePeersScores") else { return }
        let data = try Data(contentsOf: ReferenceData.packageFile("Tests/Fixtures/Metrics/manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let entry = try #require((manifest["metrics"] as? [[String: Any]])?.first { $0["method"] as? String == "gradcam" && $0["layer"] as? String == "head" })
        let result = try CamvidProcess.run([
            "tensor", "--model", reference.appendingPathComponent("models/efficientnet_lite0.onnx").path,
            "--input", reference.appendingPathComponent(try #require(entry["input"] as? String)).path,
            "--method", "gradcam", "--metrics", "all", "--metric-noise", "0",
        ])
        #expect(result.status == 0, "\(result.standardError)")
        let line = try #require(result.standardOutput.split(separator: "\n").first)
        #expect(line.hasPrefix("0: gradcam class \(try #require(entry["class"] as? Int)) "), "\(line)")
        let values = Self.printed(line)
        var expected = try #require(entry["pytorch_grad_cam"] as? [String: Double])
        for (name, value) in try #require(entry["torchcam"] as? [String: Double]) { expected[name] = value }
        #expect(Set(values.keys) == Set(expected.keys))
        for (name, value) in expected {
            #expect(abs((values[name] ?? .infinity) - value) <= 1e-3, "\(name): printed \(values[name] ?? .nan), peer \(value)")
        }
    }

    /// `camvid image --grid … --metrics … --json`: one printed line per tile, and the same values in each tile's
    /// `metrics` in the JSON line; only the metrics asked for.
    @Test func imagePrintsAndRecordsEveryTilesScores() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-metrics-image")
        defer { try? FileManager.default.removeItem(at: folder) }
        let picture = folder.appendingPathComponent("p.png"), json = folder.appendingPathComponent("p.jsonl")
        try PictureFile.write(MethodCommandsTests.testPicture(width: 96, height: 80), to: picture.path)
        let result = try CamvidProcess.run(["image", picture.path, folder.appendingPathComponent("out.png").path,
                                            "--grid", "gradcam,eigencam", "--metrics", "drop,increase,road", "--json", json.path])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.map { $0.split(separator: ":")[0] } == ["gradcam", "eigencam"])
        let record = try #require(try GridRecordTests.objects(json).first)
        let tiles = try #require(record["tiles"] as? [[String: Any]])
        for (tile, line) in zip(tiles, lines) {
            let metrics = try #require(tile["metrics"] as? [String: Double])
            #expect(Set(metrics.keys) == ["drop", "relative_drop", "increase", "road_morf", "road_lerf", "road"])
            let printed = Self.printed(line)
            for (name, value) in metrics { #expect(abs((printed[name] ?? .infinity) - value) <= 5e-5, "\(name)") }
            #expect(metrics["increase"] == 0 || metrics["increase"] == 1)
            #expect((metrics["drop"] ?? -1) >= 0 && (metrics["relative_drop"] ?? 2) <= 1)
        }
        #expect(record["metrics"] as? NSDictionary == tiles[0]["metrics"] as? NSDictionary, "the line's fields are the first tile's")
    }

    /// `camvid IN OUT --metrics deletion,insertion --json`: every frame's line has both AUCs (between 0 and 1, a
    /// probability's area); without `--metrics` no line has the key.
    @Test func videoRecordsEachFramesScores() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-metrics-video")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("disc.mkv")
        try MovingDiscClip.write(input, count: 3, width: 96, height: 72)
        let json = folder.appendingPathComponent("v.jsonl"), plain = folder.appendingPathComponent("plain.jsonl")
        var result = try CamvidProcess.run([input.path, folder.appendingPathComponent("o.mkv").path, "--quiet",
                                            "--metrics", "deletion,insertion", "--metric-steps", "5", "--json", json.path], in: folder)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = try GridRecordTests.objects(json)
        #expect(lines.count == 3)
        for line in lines {
            let metrics = try #require(line["metrics"] as? [String: Double])
            #expect(Set(metrics.keys) == ["deletion", "insertion"])
            #expect(metrics.values.allSatisfy { (0...1).contains($0) })
        }
        result = try CamvidProcess.run([input.path, folder.appendingPathComponent("p.mkv").path, "--quiet", "--json", plain.path], in: folder)
        #expect(result.status == 0)
        #expect(try GridRecordTests.objects(plain).allSatisfy { $0["metrics"] == nil })
    }

    @Test func badMetricOptionsFailWithOneLine() throws {
        let cases: [([String], String)] = [
            (["tensor", "--input", "x.npy", "--metrics", "drop,speed"], "unknown metric 'speed'"),
            (["image", "a.png", "b.png", "--metrics", "road", "--metric-noise=-1"], "noise must be 0 or more"),
            (["image", "a.png", "b.png", "--metrics", "deletion", "--metric-steps", "0"], "at least 1 step"),
            (["a.mp4", "b.mp4", "--method", "none", "--metrics", "drop"], "need a method"),
        ]
        for (arguments, message) in cases {
            let result = try CamvidProcess.run(arguments)
            #expect(result.status != 0 && result.errorLines.count == 1 && result.standardError.contains(message),
                    "\(arguments): \(result.standardError)")
        }
    }
}
