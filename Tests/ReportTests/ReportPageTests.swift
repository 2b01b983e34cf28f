import Explain
import Foundation
import Report
import Testing

/// The report page's content, read back from its HTML (the browser test renders it: `ReportBrowserTests`).
@Suite struct ReportPageTests {
    static let picture = ComparisonReport.Picture(bytes: [0xFF, 0xD8, 0xFF, 0xD9], mimeType: "image/jpeg", width: 4, height: 3)

    static func scores(drop: Float, road: Float, increase: Float) -> FaithfulnessScores {
        var scores = FaithfulnessScores()
        scores.drop = drop
        scores.road = road
        scores.increase = increase
        return scores
    }

    /// Two methods over two frames: `<b>` and `plain`; `<b>` drops less (lower is better), `plain` has the higher
    /// road (higher is better), both never increase (a tie: no mark).
    static let report = ComparisonReport(
        title: "clip <1>.mp4", details: ["model & layer"], methods: ["<b>", "plain"],
        frames: (0..<2).map { f in
            ComparisonReport.SampledFrame(
                index: f * 10, seconds: Double(f) * 0.4, topClass: "cat \"&\" dog", topProbability: 0.5 + Float(f) / 10,
                picture: picture,
                explained: [
                    .init(picture: picture, caption: "x", scores: scores(drop: 0.1 + Float(f) / 10, road: 0.1, increase: 0),
                          explainingMilliseconds: 5, scoringMilliseconds: 50),
                    .init(picture: picture, caption: "y", scores: scores(drop: 0.3, road: 0.2 + Float(f) / 10, increase: 0),
                          explainingMilliseconds: 7, scoringMilliseconds: 40),
                ])
        })

    /// The `<td>` cells of the methods table's row for `method` (escaped as the page writes it).
    static func cells(_ html: String, row method: String) throws -> [String] {
        let table = try #require(html.components(separatedBy: "<table id=\"methods\">").last?.components(separatedBy: "</table>").first)
        let row = try #require(table.components(separatedBy: "<tr>").first { $0.contains(">\(method)</th>") })
        return row.components(separatedBy: "<td").dropFirst().map { String($0.prefix { $0 != "/" }) }
    }

    @Test func tableHasOneRowPerMethodWithTheBestOfEachColumnMarked() throws {
        let html = ReportPage.html(Self.report)
        let table = try #require(html.components(separatedBy: "<tbody>").dropFirst().first?.components(separatedBy: "</tbody>").first)
        #expect(table.components(separatedBy: "<tr>").count - 1 == 2)
        // Columns: drop, increase, road, method ms, scoring ms.
        let bold = try Self.cells(html, row: "&lt;b&gt;"), plain = try Self.cells(html, row: "plain")
        #expect(bold.count == 5 && plain.count == 5)
        #expect(bold[0].contains("class=\"best\"") && bold[0].contains("0.150") && !plain[0].contains("best"))
        #expect(!bold[1].contains("best") && !plain[1].contains("best"), "a tie marks nobody")
        #expect(plain[2].contains("class=\"best\"") && plain[2].contains("0.250") && !bold[2].contains("best"))
        #expect(bold[3].contains("best") && plain[4].contains("best"))
        // The spread is the sample standard deviation: drops 0.1 and 0.2 spread by 0.071.
        #expect(bold[0].contains("± 0.071"))
    }

    @Test func textIsEscapedAndPicturesAreInline() {
        let html = ReportPage.html(Self.report)
        #expect(!html.contains("<b>") && html.contains("&lt;b&gt;") && html.contains("clip &lt;1&gt;.mp4"))
        #expect(html.contains("cat &quot;&amp;&quot; dog") && html.contains("model &amp; layer"))
        #expect(html.components(separatedBy: "src=\"data:image/jpeg;base64,/9j/2Q==\"").count - 1 == 6)
        #expect(!html.contains("<script") && !html.contains("http"))
        // One plot per score, the cost, and the top-1 class.
        #expect(html.components(separatedBy: "<svg ").count - 1 == 5)
    }
}
