import Core
import Foundation

/// Which class an explanation is about.
public enum ClassTarget: Sendable, Equatable {
    /// The highest logit of each image (each frame, each batch element).
    case top1
    /// A fixed class index.
    case index(Int)
    /// A class name: case-insensitive, exact or a unique prefix.
    case label(String)

    /// Parses a command-line word: `top1`, a class index, or a class label.
    public init(argument: String) {
        let trimmed = argument.trimmingCharacters(in: .whitespaces)
        if trimmed.lowercased() == "top1" {
            self = .top1
        } else if let index = Int(trimmed) {
            self = .index(index)
        } else {
            self = .label(trimmed)
        }
    }
}

/// The class names of a classifier in logit order, and the lookup of a class by name.
public struct ClassLabels: Sendable, Equatable {
    /// The names, index `i` naming logit `i`.
    public let names: [String]

    /// Labels from names in logit order.
    public init(names: [String]) {
        self.names = names
    }

    /// Labels from a text with one name a line (blank lines at the end ignored).
    public init(lines text: String) {
        var names = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        while names.last?.isEmpty == true { names.removeLast() }
        self.init(names: names)
    }

    /// Labels from an exporter's `names` metadata: ultralytics writes a Python dict, `{0: 'person', 1: "bicycle"}`;
    /// a list, `['cat', 'dog']` (or JSON), reads in order. Nil when the text is neither, or an index is missing.
    public init?(metadataNames text: String) {
        var scanner = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        guard let open = scanner.first, open == "{" || open == "[" else { return nil }
        let isDictionary = open == "{"
        scanner.removeFirst()
        var byIndex: [Int: String] = [:]
        var position = 0
        func skipSpace() { while let c = scanner.first, c.isWhitespace { scanner.removeFirst() } }
        /// A quoted string with backslash escapes, Python's or JSON's quotes.
        func quoted() -> String? {
            guard let quote = scanner.first, quote == "'" || quote == "\"" else { return nil }
            scanner.removeFirst()
            var value = ""
            while let c = scanner.first {
                scanner.removeFirst()
                if c == quote { return value }
                if c == "\\", let next = scanner.first { scanner.removeFirst(); value.append(next) } else { value.append(c) }
            }
            return nil
        }
        while true {
            skipSpace()
            if scanner.first == (isDictionary ? "}" : "]") { break }
            var index = position
            if isDictionary {
                let digits = scanner.prefix { $0.isNumber || $0 == "-" }
                guard let key = Int(digits) else { return nil }
                scanner.removeFirst(digits.count)
                skipSpace()
                guard scanner.first == ":" else { return nil }
                scanner.removeFirst()
                skipSpace()
                index = key
            }
            guard let name = quoted(), index >= 0, byIndex[index] == nil else { return nil }
            byIndex[index] = name
            position += 1
            skipSpace()
            if scanner.first == "," { scanner.removeFirst() }
        }
        guard !byIndex.isEmpty, byIndex.keys.sorted() == Array(0..<byIndex.count) else { return nil }
        self.init(names: (0..<byIndex.count).map { byIndex[$0]! })
    }

    /// The name of class `index`, or `class N` when there is none.
    public func name(of index: Int) -> String {
        names.indices.contains(index) ? names[index] : "class \(index)"
    }

    /// The index of the class named `label`: an exact case-insensitive match, else the unique name it is a prefix of.
    public func index(of label: String) throws -> Int {
        let wanted = label.lowercased().trimmingCharacters(in: .whitespaces)
        let lowered = names.map { $0.lowercased() }
        let exact = lowered.indices.filter { lowered[$0] == wanted }
        if exact.count == 1 { return exact[0] }
        if exact.count > 1 { throw ExplainError.ambiguousLabel(label, candidates: exact.map(describe)) }
        let prefixed = lowered.indices.filter { !wanted.isEmpty && lowered[$0].hasPrefix(wanted) }
        if prefixed.count == 1 { return prefixed[0] }
        if prefixed.count > 1 { throw ExplainError.ambiguousLabel(label, candidates: prefixed.map(describe)) }
        throw ExplainError.unknownLabel(label, candidates: closest(to: wanted, lowered: lowered).map(describe))
    }

    /// The class index a target picks for one image, given that image's logits `[K]`.
    public func resolve(_ target: ClassTarget, logits: [Float]) throws -> Int {
        switch target {
        case .top1:
            guard let best = logits.indices.max(by: { logits[$0] < logits[$1] }) else {
                throw ExplainError.badShape("top1 of empty logits")
            }
            // max(by:) keeps the last of equal maxima; NumPy's argmax (pytorch-grad-cam) keeps the first.
            return logits.firstIndex(of: logits[best]) ?? best
        case let .index(index):
            guard index >= 0, index < logits.count else {
                throw ExplainError.classIndexOutOfRange(index, classes: logits.count)
            }
            return index
        case let .label(label):
            let index = try index(of: label)
            guard index < logits.count else { throw ExplainError.classIndexOutOfRange(index, classes: logits.count) }
            return index
        }
    }

    /// The class a target holds fixed among `classes` (an index, or a label), nil for `top1`, which each output decides.
    public func fixedClass(_ target: ClassTarget, classes: Int) throws -> Int? {
        target == .top1 ? nil : try resolve(target, logits: [Float](repeating: 0, count: classes))
    }

    private func describe(_ index: Int) -> String {
        "\(index) \(names[index])"
    }

    /// Names containing the query, else the few nearest by edit distance.
    private func closest(to wanted: String, lowered: [String]) -> [Int] {
        let containing = lowered.indices.filter { !wanted.isEmpty && lowered[$0].contains(wanted) }
        if !containing.isEmpty { return Array(containing.prefix(10)) }
        let scored = lowered.indices.map { ($0, Self.editDistance(wanted, lowered[$0])) }
        return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(5).map(\.0)
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension ClassLabels {
    /// The 80 COCO class names in the order YOLO detectors trained on COCO score them (ultralytics' `coco.yaml`).
    public static let coco80 = ClassLabels(names: [
        "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
        "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
        "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
        "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
        "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
        "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
        "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
        "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
    ])
}
