import Foundation

/// The softmax of `logits`, the exponentials of their differences from the largest summed in
/// Double: probabilities that add up to 1 for any range of logits.
public func softmax(_ logits: [Float]) -> [Float] {
    guard let high = logits.max() else { return [] }
    let exps = logits.map { Foundation.exp(Double($0 - high)) }
    let sum = exps.reduce(0, +)
    return exps.map { Float($0 / sum) }
}
