import Core
import EngineTestSupport
import Explain
import Foundation
import Media
import MediaTestSupport
import Testing
import TestSupport

/// `camvid report` rendered by a real browser (Debian's headless Chromium): the page loads without an error, every
/// picture decodes, the table has one row per method. The screenshot is kept in `.build/test-artifacts/report/`.
@Suite(.serialized) struct ReportBrowserTests {
    /// Where the test leaves the page and its screenshot for a person to look at.
    static let artifacts = ReferenceData.packageFile(".build/test-artifacts/report")

    /// Chromium on the PATH, or nil after printing why the test is skipped.
    static func chromiumOrSkip(_ test: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            for name in ["chromium", "chromium-browser"] {
                let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            }
        }
        print("SKIPPED \(test): no chromium on the PATH (scripts/install-deps installs Debian's)")
        return nil
    }

    /// Checks the page makes once loaded, written into the page itself so `--dump-dom` returns them: every error
    /// event (scripts and resources, in the capture phase), every `console.error`, each picture decoded at its
    /// declared size, the rows of the methods table, the plots.
    static let probe = """
        <script>
        window.camvidErrors = [];
        window.addEventListener("error", e => window.camvidErrors.push("error: " + (e.message || (e.target && e.target.tagName) || "?")), true);
        const consoleError = console.error;
        console.error = (...parts) => { window.camvidErrors.push("console.error: " + parts.join(" ")); consoleError(...parts); };
        window.addEventListener("load", () => {
          const images = [...document.images];
          // Synchronous, so the result is in the page when it is dumped: a decoded picture has its declared size and
          // draws (drawImage decodes it whole).
          const canvas = document.createElement("canvas").getContext("2d");
          const decoded = images.map(i => {
            if (!i.complete || i.naturalWidth === 0 || i.naturalWidth !== +i.getAttribute("width") || i.naturalHeight !== +i.getAttribute("height")) return false;
            try { canvas.drawImage(i, 0, 0); return true; } catch (e) { return false; }
          });
          const out = document.createElement("pre");
          out.id = "camvid-check";
          out.textContent = JSON.stringify({images: images.length, decoded: decoded.filter(Boolean).length,
            rows: document.querySelectorAll("table#methods tbody tr").length, plots: document.querySelectorAll("svg").length,
            errors: window.camvidErrors});
          document.body.appendChild(out);
        });
        </script>
        """

    /// What the probe found in `page`, and the browser's console lines reporting errors.
    static func check(_ page: URL, chromium: URL) throws -> (found: [String: Any], consoleErrors: [Substring]) {
        let result = try CamvidProcess.run(chromium, [
            "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=10000", "--dump-dom", page.absoluteString,
        ])
        #expect(result.status == 0, "chromium: \(result.standardError.suffix(500))")
        let dom = result.standardOutput
        guard let start = dom.range(of: "<pre id=\"camvid-check\">"), let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex) else {
            Issue.record("the probe wrote nothing: the page did not finish loading")
            return ([:], [])
        }
        let json = dom[start.upperBound..<end.lowerBound].replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        let found = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        // Chromium logs the page's console messages as `CONSOLE(line)`; D-Bus and GPU noise are the browser's own.
        let consoleErrors = result.errorLines.filter { $0.contains("CONSOLE") && ($0.contains("ERROR") || $0.contains("Uncaught")) }
        return (found, consoleErrors)
    }

    /// A small seeded CNN on 32x32 inputs (two 3x3 convolutions with ReLU, global average pooling, a linear head to
    /// five named classes): every method and metric runs on it in milliseconds.
    static func writeSmallClassifier(to url: URL) throws {
        var noise = GaussianNoise(seed: 11)
        func weights(_ shape: [Int], scale: Float) -> Tensor {
            Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in noise.next() * scale })
        }
        var builder = ONNXModelBuilder(opset: 17, inputShape: [nil, 3, 32, 32])
        builder.addInitializer("w1", weights([8, 3, 3, 3], scale: 0.3))
        builder.addInitializer("w2", weights([8, 8, 3, 3], scale: 0.2))
        builder.addInitializer("w3", weights([5, 8], scale: 1))
        builder.addNode("Conv", inputs: ["input", "w1"], outputs: ["c1"], attributes: ["pads": .ints([1, 1, 1, 1])])
        builder.addNode("Relu", inputs: ["c1"], outputs: ["r1"])
        builder.addNode("Conv", inputs: ["r1", "w2"], outputs: ["c2"], attributes: ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])])
        builder.addNode("Relu", inputs: ["c2"], outputs: ["r2"])
        builder.addNode("GlobalAveragePool", inputs: ["r2"], outputs: ["g"])
        builder.addNode("Flatten", inputs: ["g"], outputs: ["f"])
        builder.addNode("Gemm", inputs: ["f", "w3"], outputs: ["logits"], attributes: ["transB": .int(1)])
        builder.addOutput("logits")
        builder.addMetadata("names", "['disc', 'ring', 'square', 'stripe', 'dot <&>']")
        try builder.serialized().write(to: url)
    }

    @Test func reportLoadsCleanlyInChromium() throws {
        guard let chromium = Self.chromiumOrSkip("ReportBrowserTests.reportLoadsCleanlyInChromium") else { return }
        let folder = try ReferenceData.temporaryDirectory("camvid-report")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("disc.mkv")
        try MovingDiscClip.write(clip, count: 6, width: 128, height: 96)
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let report = Self.artifacts.appendingPathComponent("report.html")
        let methods = ["gradcam", "gradcam++", "scorecam", "layercam", "eigencam"]
        let model = folder.appendingPathComponent("small.onnx")
        try Self.writeSmallClassifier(to: model)
        let made = try CamvidProcess.run(["report", clip.path, "-o", report.path, "--frames", "3", "--quiet", "--model", model.path,
                                          "--methods", methods.joined(separator: ",")])
        #expect(made.status == 0, "\(made.standardError)")

        // The page as written: no script of its own, nothing fetched.
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://") && !html.contains("src=\"file"))

        let probed = folder.appendingPathComponent("probed.html")
        try html.replacingOccurrences(of: "<head>", with: "<head>\n" + Self.probe).write(to: probed, atomically: true, encoding: .utf8)
        let (found, consoleErrors) = try Self.check(probed, chromium: chromium)
        // 3 frames, each as it is and under each of the 5 methods.
        #expect(found["images"] as? Int == 3 * (1 + methods.count))
        #expect(found["decoded"] as? Int == found["images"] as? Int, "every picture decodes")
        #expect(found["rows"] as? Int == methods.count, "one table row per method")
        // One plot per score (8) and the cost, and the top-1 class.
        #expect(found["plots"] as? Int == 10)
        #expect((found["errors"] as? [String])?.isEmpty == true, "\(found["errors"] ?? "")")
        #expect(consoleErrors.isEmpty, "\(consoleErrors)")

        // The probe itself sees a broken picture and an error: its silence above means something.
        let broken = folder.appendingPathComponent("broken.html")
        try html.replacingOccurrences(of: "<head>", with: "<head>\n" + Self.probe)
            .replacingOccurrences(of: "</body>", with: "<img src=\"data:image/jpeg;base64,AAAA\" alt=\"broken\"></body>")
            .write(to: broken, atomically: true, encoding: .utf8)
        let (brokenFound, _) = try Self.check(broken, chromium: chromium)
        #expect(brokenFound["decoded"] as? Int == 3 * (1 + methods.count))
        #expect(brokenFound["images"] as? Int == 3 * (1 + methods.count) + 1)
        #expect((brokenFound["errors"] as? [String])?.isEmpty == false)

        let screenshot = Self.artifacts.appendingPathComponent("report.png")
        try? FileManager.default.removeItem(at: screenshot)
        let shot = try CamvidProcess.run(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                    "--window-size=1280,1600", "--screenshot=\(screenshot.path)", report.absoluteString])
        #expect(shot.status == 0)
        let picture = try PictureFile.read(screenshot.path)
        #expect(picture.width == 1280 && picture.height == 1600)
        print("ReportBrowserTests: \(report.path) and its screenshot \(screenshot.path)")
    }

    @Test func badReportOptionsFailWithOneLine() throws {
        let cases: [([String], String)] = [
            (["report", "a.mp4", "-o", "r.html", "--methods", "gradcam,nosuch"], "--methods: unknown method 'nosuch'"),
            (["report", "a.mp4", "-o", "r.html", "--methods", "gradcam", "--method", "scorecam"], "not both"),
            (["report", "a.mp4", "-o", "r.html", "--frames", "0"], "--frames must be at least 1"),
            (["report", "a.mp4", "-o", "r.html", "--class", "1", "--class", "2"], "give one --class"),
            (["report", "/nonexistent/clip.mp4", "-o", "r.html", "--methods", "gradcam"], "/nonexistent/clip.mp4"),
        ]
        for (arguments, message) in cases {
            let result = try CamvidProcess.run(arguments)
            #expect(result.status != 0 && result.errorLines.count == 1 && result.standardError.contains(message),
                    "\(arguments): \(result.standardError)")
        }
    }
}
