import Foundation
import Testing
import Explain
import TestSupport

@Suite struct TargetTests {
    let labels = ClassLabels(names: ["tiger shark", "crane bird", "tiger cat", "tiger", "crane", "maillot", "maillot tank suit", "zebra"])

    /// An exporter's `names` metadata: ultralytics' Python dict (keys in any order, either quote, escapes), a list.
    @Test func namesFromModelMetadata() {
        #expect(ClassLabels(metadataNames: "{0: 'person', 2: \"traffic light\", 1: 'it\\'s a bike'}")?.names
                == ["person", "it's a bike", "traffic light"])
        #expect(ClassLabels(metadataNames: " ['cat', \"dog\"] ")?.names == ["cat", "dog"])
        #expect(ClassLabels(metadataNames: "{0: 'a', 2: 'c'}") == nil, "a missing index")
        #expect(ClassLabels(metadataNames: "{0: 'a', 0: 'b'}") == nil, "a repeated index")
        #expect(ClassLabels(metadataNames: "person, bicycle") == nil)
        #expect(ClassLabels(metadataNames: "{0: 'unterminated}") == nil)
    }

    @Test func exactMatchWinsOverPrefix() throws {
        #expect(try labels.index(of: "tiger") == 3)
        #expect(try labels.index(of: "CRANE") == 4)
        #expect(try labels.index(of: "Maillot") == 5)
    }

    @Test func uniquePrefixCaseInsensitive() throws {
        #expect(try labels.index(of: "Tiger c") == 2)
        #expect(try labels.index(of: "maillot t") == 6)
        #expect(try labels.index(of: "zeb") == 7)
    }

    @Test func ambiguousPrefixListsCandidates() {
        #expect(throws: ExplainError.ambiguousLabel("tig", candidates: ["0 tiger shark", "2 tiger cat", "3 tiger"])) {
            try labels.index(of: "tig")
        }
        let duplicates = ClassLabels(names: ["crane", "kite", "crane"])
        #expect(throws: ExplainError.ambiguousLabel("crane", candidates: ["0 crane", "2 crane"])) {
            try duplicates.index(of: "crane")
        }
    }

    @Test func unknownLabelListsClosestNames() {
        #expect(throws: ExplainError.unknownLabel("shark", candidates: ["0 tiger shark"])) { try labels.index(of: "shark") }
        do {
            _ = try labels.index(of: "zebrra")
            Issue.record("an unknown label must throw")
        } catch let error as ExplainError {
            guard case let .unknownLabel(_, candidates) = error else { Issue.record("wrong error \(error)"); return }
            #expect(candidates.first == "7 zebra")
            #expect(error.description.contains("zebra"))
        } catch {
            Issue.record("wrong error \(error)")
        }
    }

    @Test func resolveTargetsAgainstLogits() throws {
        let logits: [Float] = [0.1, 3, -1, 3, 0, 0, 0, 0]
        #expect(try labels.resolve(.top1, logits: logits) == 1, "the first of equal maxima, like NumPy's argmax")
        #expect(try labels.resolve(.index(5), logits: logits) == 5)
        #expect(try labels.resolve(.label("zebra"), logits: logits) == 7)
        #expect(throws: ExplainError.classIndexOutOfRange(8, classes: 8)) { try labels.resolve(.index(8), logits: logits) }
        #expect(throws: ExplainError.classIndexOutOfRange(-1, classes: 8)) { try labels.resolve(.index(-1), logits: logits) }
    }

    @Test func parseArguments() {
        #expect(ClassTarget(argument: "top1") == .top1)
        #expect(ClassTarget(argument: "TOP1") == .top1)
        #expect(ClassTarget(argument: "285") == .index(285))
        #expect(ClassTarget(argument: "Egyptian cat") == .label("Egyptian cat"))
    }

    @Test func imagenetNames() throws {
        guard let directory = ReferenceData.referenceOrSkip("TargetTests.imagenetNames") else { return }
        let text = try String(contentsOf: directory.appendingPathComponent("imagenet_classes.txt"), encoding: .utf8)
        let imagenet = ClassLabels(lines: text)
        #expect(imagenet.names.count == 1000)
        #expect(try imagenet.index(of: "Egyptian cat") == 285)
        #expect(try imagenet.index(of: "egyptian") == 285)
        #expect(try imagenet.index(of: "tiger") == 292)
        #expect(try imagenet.index(of: "crane") == 517)
        #expect(throws: ExplainError.self) { try imagenet.index(of: "tig") }
        #expect(throws: ExplainError.self) { try imagenet.index(of: "no such animal") }
    }
}
