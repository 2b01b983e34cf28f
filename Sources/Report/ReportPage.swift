import Explain
import Foundation

/// A `ComparisonReport` as one self-contained HTML page, viewable offline: no script, no request; pictures are data
/// URIs and plots inline SVG.
///
/// The page: a table of each method's scores over the sampled frames (mean ± standard deviation) and its cost in
/// ms per frame, the best of each column marked; each score over time, one line per method; the top-1 class and its
/// probability over time; a contact sheet of the sampled frames with each method's overlay side by side; what each
/// score means.
public enum ReportPage {
    /// The methods' colours (Tableau 10), in method order, repeating.
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    /// What each score says, by `--json` name.
    static let meanings: [(name: String, meaning: String)] = [
        ("drop", "the probability lost when the input is multiplied by the map, max(before − after, 0) (pytorch-grad-cam DropInConfidence). A faithful map keeps what the network needs: lower is better."),
        ("relative_drop", "the same loss relative to the probability, relu(before − after) / before (torchcam's Average Drop term). Lower is better."),
        ("increase", "1 when the map-multiplied input scores higher than the input, else 0 (IncreaseInConfidence); its mean is the share of frames. Higher is better."),
        ("road_morf", "ROAD, most relevant first: the change in probability when the pixels the map ranks highest are removed and filled in from their neighbours (noisy linear imputation), averaged over 10%…90% removed. Removing what matters should hurt: lower (more negative) is better."),
        ("road_lerf", "ROAD, least relevant first: the same for the pixels the map ranks lowest. Removing what does not matter should not hurt: higher is better."),
        ("road", "ROAD combined, (least − most relevant first) / 2 (pytorch-grad-cam ROADCombined). Higher is better."),
        ("deletion", "the area under the probability as the map's most relevant pixels are set to the baseline (0, the mean colour), step by step (torchcam). Lower is better."),
        ("insertion", "the area under the probability as the map's most relevant pixels are put back onto the baseline, step by step (torchcam). Higher is better."),
    ]

    /// The page for `report`.
    public static func html(_ report: ComparisonReport) -> String {
        let names = report.scoreNames
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>camvid report: \(escape(report.title))</title>
            <style>\(style)</style>
            </head>
            <body>
            <h1>Which explanation to trust: \(escape(report.title))</h1>

            """
        page += "<p class=\"details\">" + report.details.map(escape).joined(separator: "<br>\n") + "</p>\n"
        page += legend(report.methods)
        page += "<h2>Methods</h2>\n" + table(report, names: names)
        page += "<h2>Over time</h2>\n<div class=\"plots\">\n"
        for name in names {
            let arrow = FaithfulnessScores.higherIsBetter(name) ? "↑" : "↓"
            page += "<figure class=\"plot\"><figcaption>\(escape(name)) \(arrow)</figcaption>\n"
            page += chart(report, series: report.series(name), label: name) + "</figure>\n"
        }
        page += "<figure class=\"plot\"><figcaption>cost of the method, ms ↓</figcaption>\n"
        page += chart(report, series: report.methods.indices.map { m in report.frames.map { $0.explained.indices.contains(m) ? Float($0.explained[m].explainingMilliseconds) : nil } }, label: "ms")
        page += "</figure>\n</div>\n"
        page += "<h2>What the network sees: top-1 class over time</h2>\n" + topClassChart(report)
        page += "<h2>Contact sheet</h2>\n" + contactSheet(report)
        page += "<h2>Reading the scores</h2>\n<dl>\n"
        for (name, meaning) in meanings where names.contains(name) {
            page += "<dt>\(escape(name))</dt><dd>\(escape(meaning))</dd>\n"
        }
        page += """
            </dl>
            <p class="note">Each score perturbs the network's input according to the map and reads the explained class's
            probability. They disagree by design: ROAD imputes instead of blacking out, deletion and insertion move a step at a
            time. A method that is best on most columns, steadily over time, is the one to trust on this video.</p>
            </body>
            </html>

            """
        return page
    }

    private static let style = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff;max-width:1600px}
        h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
        .details{color:#555;margin:4px 0 12px}.note{color:#555;max-width:70em}
        table{border-collapse:collapse}th,td{padding:3px 7px;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}
        .wide{overflow-x:auto}.spread{color:#777;font-size:11px}
        th{font-weight:600;background:#fafafa}th[scope=row]{text-align:left}thead th{white-space:normal;vertical-align:bottom}
        td.best{font-weight:700;background:#eaf4ea}td.best::after{content:" ★";color:#2a7a2a}
        .swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
        .legend span.item{margin-right:16px;white-space:nowrap}
        .plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figure.plot{border:1px solid #eee;padding:6px}
        figcaption{font-weight:600;font-size:13px;margin-bottom:2px}
        svg text{font:11px system-ui,sans-serif;fill:#444}
        table.sheet td,table.sheet th{text-align:center;vertical-align:top}table.sheet td.frame{text-align:left}
        table.sheet img{display:block;max-width:100%;height:auto}table.sheet figcaption{font-weight:400;font-size:12px;color:#444}
        """

    /// `text` safe inside HTML and SVG text and attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    private static func color(_ method: Int) -> String { palette[method % palette.count] }

    private static func legend(_ methods: [String]) -> String {
        "<p class=\"legend\">" + methods.enumerated().map { m, name in
            "<span class=\"item\"><span class=\"swatch\" style=\"background:\(color(m))\"></span>\(escape(name))</span>"
        }.joined() + "</p>\n"
    }

    /// Mean and sample standard deviation of the present values; nil for none.
    static func meanAndSpread(_ values: [Float?]) -> (mean: Double, spread: Double)? {
        let present = values.compactMap { $0 }.map(Double.init)
        guard !present.isEmpty else { return nil }
        let mean = present.reduce(0, +) / Double(present.count)
        guard present.count > 1 else { return (mean, 0) }
        let variance = present.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(present.count - 1)
        return (mean, variance.squareRoot())
    }

    static func median(_ values: [Double]) -> Double? {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return nil }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// One row per method: each score's mean ± spread, then the costs; the best of each column marked.
    private static func table(_ report: ComparisonReport, names: [String]) -> String {
        let methods = report.methods
        // Columns: (heading, higher is better, per-method (sort key, text)).
        var columns: [(heading: String, higherIsBetter: Bool, cells: [(key: Double, text: String)?])] = []
        for name in names {
            let cells = report.series(name).map { values in
                meanAndSpread(values).map { (key: $0.mean, text: String(format: "%.3f<br><span class=\"spread\">± %.3f</span>", $0.mean, $0.spread)) }
            }
            columns.append((name, FaithfulnessScores.higherIsBetter(name), cells))
        }
        let costs: [(String, (ComparisonReport.Explained) -> Double)] = [
            ("method ms", { $0.explainingMilliseconds }), ("scoring ms", { $0.scoringMilliseconds }),
        ]
        for (heading, cost) in costs {
            let cells = methods.indices.map { m -> (key: Double, text: String)? in
                median(report.frames.compactMap { $0.explained.indices.contains(m) ? cost($0.explained[m]) : nil })
                    .map { (key: $0, text: String(format: "%.1f", $0)) }
            }
            columns.append((heading, false, cells))
        }
        var html = "<div class=\"wide\"><table id=\"methods\">\n<thead><tr><th scope=\"col\">method</th>"
        for column in columns { html += "<th scope=\"col\">\(escape(column.heading)) \(column.higherIsBetter ? "↑" : "↓")</th>" }
        html += "</tr></thead>\n<tbody>\n"
        let best = columns.map { column -> Double? in
            let keys = column.cells.compactMap { $0?.key }
            // One method, or all alike, has nothing to be better than.
            guard keys.count > 1, Set(keys).count > 1 else { return nil }
            return column.higherIsBetter ? keys.max() : keys.min()
        }
        for (m, method) in methods.enumerated() {
            html += "<tr><th scope=\"row\"><span class=\"swatch\" style=\"background:\(color(m))\"></span>\(escape(method))</th>"
            for (c, column) in columns.enumerated() {
                guard let cell = column.cells[m] else { html += "<td>–</td>"; continue }
                let isBest = best[c].map { cell.key == $0 } ?? false
                html += isBest ? "<td class=\"best\">\(cell.text)</td>" : "<td>\(cell.text)</td>"
            }
            html += "</tr>\n"
        }
        html += "</tbody>\n</table></div>\n"
        html += "<p class=\"note\">Scores: mean ± standard deviation over \(report.frames.count) sampled frame\(report.frames.count == 1 ? "" : "s"); "
            + "↑ higher is better, ↓ lower; ★ marks the best of each column. Costs: the median over the frames of what the method "
            + "took to explain one frame, and what scoring its explanation took.</p>\n"
        return html
    }

    // MARK: Plots

    /// About five round tick values covering `low…high`.
    static func ticks(_ low: Double, _ high: Double) -> [Double] {
        let span = max(high - low, 1e-9)
        let raw = span / 4
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var value = (low / step).rounded(.up) * step
        var ticks: [Double] = []
        while value <= high + step * 1e-6 {
            ticks.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return ticks
    }

    private static func label(_ value: Double) -> String {
        // Whole numbers in full (costs in ms), others to four significant digits.
        let text = abs(value) >= 1000 ? String(format: "%.0f", value) : String(format: "%.4g", value)
        return text == "-0" ? "0" : text
    }

    /// The frame of a plot: axes, grid and tick labels for `x` seconds and `y` values; returns the SVG's opening and
    /// the point mapping.
    private static func frame(width: Double, height: Double, x: (Double, Double), y: (Double, Double), yTitle: String)
        -> (svg: String, point: (Double, Double) -> (Double, Double)) {
        let (left, right, top, bottom) = (52.0, 12.0, 10.0, 30.0)
        let xSpan = x.1 > x.0 ? x.1 - x.0 : 1, ySpan = y.1 > y.0 ? y.1 - y.0 : 1
        let point = { (t: Double, v: Double) -> (Double, Double) in
            (left + (t - x.0) / xSpan * (width - left - right), height - bottom - (v - y.0) / ySpan * (height - top - bottom))
        }
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(yTitle)) over time\">"
        for tick in ticks(y.0, y.1) {
            let (_, py) = point(x.0, tick)
            svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>", left, py, width - right, py)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>", left - 4, py + 4, label(tick))
        }
        for tick in ticks(x.0, x.1) {
            let (px, _) = point(tick, y.0)
            svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\"/>", px, height - bottom, px, height - bottom + 4)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>", px, height - bottom + 16, label(tick))
        }
        svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>", left, height - bottom, width - right, height - bottom)
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">seconds</text>", width - right, height - 2)
        return (svg, point)
    }

    /// The time range of the frames, widened when there is one frame.
    private static func timeRange(_ report: ComparisonReport) -> (Double, Double) {
        let times = report.frames.map(\.seconds)
        let low = times.min() ?? 0, high = times.max() ?? 1
        return high > low ? (low, high) : (low - 0.5, high + 0.5)
    }

    /// One line per method of `series` (per method, per frame) over the frames' times.
    private static func chart(_ report: ComparisonReport, series: [[Float?]], label yTitle: String) -> String {
        let values = series.flatMap { $0.compactMap { $0 } }.map(Double.init)
        var low = values.min() ?? 0, high = values.max() ?? 1
        if high - low < 1e-9 { (low, high) = (low - 0.5, high + 0.5) }
        let pad = (high - low) * 0.05
        let (svg, point) = frame(width: 380, height: 210, x: timeRange(report), y: (low - pad, high + pad), yTitle: yTitle)
        var out = svg
        for (m, line) in series.enumerated() {
            let points = zip(report.frames, line).compactMap { frame, value in value.map { (frame.seconds, Double($0)) } }
            let drawn = points.map { point($0.0, $0.1) }
            if drawn.count > 1 {
                out += "<polyline fill=\"none\" stroke=\"\(color(m))\" stroke-width=\"1.8\" points=\""
                    + drawn.map { String(format: "%.1f,%.1f", $0.0, $0.1) }.joined(separator: " ") + "\"/>"
            }
            for (p, (t, v)) in zip(drawn, points) {
                out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%@\"><title>%@ at %.2f s: %@</title></circle>",
                              p.0, p.1, color(m), escape(report.methods[m]), t, String(format: "%.4g", v))
            }
        }
        return out + "</svg>\n"
    }

    /// The top-1 probability over time, each point coloured by its class, the class named where it changes.
    private static func topClassChart(_ report: ComparisonReport) -> String {
        var classes: [String] = []
        for frame in report.frames where !classes.contains(frame.topClass) { classes.append(frame.topClass) }
        let width = 860.0
        let (svg, point) = frame(width: width, height: 240, x: timeRange(report), y: (0, 1), yTitle: "top-1 probability")
        var out = "<figure class=\"plot\"><figcaption>top-1 probability; colour: the class</figcaption>\n" + svg
        let drawn = report.frames.map { point($0.seconds, Double($0.topProbability)) }
        if drawn.count > 1 {
            out += "<polyline fill=\"none\" stroke=\"#999\" stroke-width=\"1.4\" points=\""
                + drawn.map { String(format: "%.1f,%.1f", $0.0, $0.1) }.joined(separator: " ") + "\"/>"
        }
        var previous: String?
        for (frame, p) in zip(report.frames, drawn) {
            let c = palette[(classes.firstIndex(of: frame.topClass) ?? 0) % palette.count]
            out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%@\"><title>frame %d, %.2f s: %@ %.1f%%</title></circle>",
                          p.0, p.1, c, frame.index, frame.seconds, escape(frame.topClass), 100 * frame.topProbability)
            if frame.topClass != previous {
                // Names near the right edge end at their point instead of running off the plot.
                let nearEnd = p.0 > width - 150
                out += String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"%@\" text-anchor=\"%@\">%@</text>", p.0 + (nearEnd ? -5 : 5),
                              max(p.1 - 6, 10), c, nearEnd ? "end" : "start", escape(frame.topClass))
            }
            previous = frame.topClass
        }
        out += "</svg></figure>\n<p class=\"legend\">" + classes.enumerated().map { i, name in
            "<span class=\"item\"><span class=\"swatch\" style=\"background:\(palette[i % palette.count])\"></span>\(escape(name))</span>"
        }.joined() + "</p>\n"
        return out
    }

    // MARK: Contact sheet

    private static func image(_ picture: ComparisonReport.Picture, alt: String) -> String {
        "<img src=\"data:\(picture.mimeType);base64,\(Data(picture.bytes).base64EncodedString())\" width=\"\(picture.width)\" height=\"\(picture.height)\" alt=\"\(escape(alt))\">"
    }

    private static func contactSheet(_ report: ComparisonReport) -> String {
        var html = "<table class=\"sheet\">\n<thead><tr><th scope=\"col\">frame</th><th scope=\"col\">input</th>"
        for (m, method) in report.methods.enumerated() {
            html += "<th scope=\"col\"><span class=\"swatch\" style=\"background:\(color(m))\"></span>\(escape(method))</th>"
        }
        html += "</tr></thead>\n<tbody>\n"
        for frame in report.frames {
            html += String(format: "<tr><td class=\"frame\">#%d<br>%.2f s<br>%@<br>%.1f%%</td>", frame.index, frame.seconds,
                           escape(frame.topClass), 100 * frame.topProbability)
            html += "<td>" + image(frame.picture, alt: "frame \(frame.index)") + "</td>"
            for (m, explained) in frame.explained.enumerated() {
                let method = report.methods.indices.contains(m) ? report.methods[m] : "method \(m)"
                html += "<td><figure>" + image(explained.picture, alt: "\(method), frame \(frame.index)")
                    + "<figcaption>\(escape(explained.caption))</figcaption></figure></td>"
            }
            html += "</tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }
}
