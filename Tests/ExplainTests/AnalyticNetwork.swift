import Core
import Engine
import Explain

/// A small network with hand-derivable gradients:
/// `A = act(P · avgpool2(x) + q)` `[C,h,w]`, `logits = W · mean_hw(A) + b`.
struct AnalyticNetwork: ExplainableNetwork {
    enum Activation { case relu, clip6, identity }
    struct Pass {
        let input: Tensor
        let preactivation: Tensor
        let features: Tensor
        let logits: Tensor
    }
    enum Failure: Error { case unknown(String) }

    static let channels = 4, classes = 5, size = 8, pooled = 4

    var activation: Activation = .relu
    var hasHead = true
    /// `[C,3]`
    var p: [Float] = [0.9, -0.4, 0.3,  -0.5, 0.8, 0.2,  0.4, 0.4, -0.9,  0.1, -0.3, 0.7]
    var q: [Float] = [0.05, -0.1, 0.0, -0.05]
    /// `[K,C]`
    var w: [Float] = [1.0, -0.5, 0.8, 0.3,  -0.7, 0.9, 0.2, -0.4,  0.5, 0.5, -1.0, 0.6,  0.2, -0.2, 0.4, 1.1,  -0.3, 0.7, 0.9, -0.8]
    var b: [Float] = [0.1, -0.2, 0.3, 0.0, 0.05]

    var inputName: String { "input" }
    var defaultTargetLayer: String { "features" }

    func forward(_ input: Tensor, retaining names: Set<String>) throws -> Pass {
        let n = input.shape[0], s = Self.size, h = Self.pooled, c = Self.channels
        var pre = [Float](repeating: 0, count: n * c * h * h)
        for i in 0..<n {
            for ch in 0..<c {
                for y in 0..<h {
                    for x in 0..<h {
                        var sum = q[ch]
                        for k in 0..<3 {
                            let base = ((i * 3 + k) * s + 2 * y) * s + 2 * x
                            let pooledValue = (input.storage[base] + input.storage[base + 1] + input.storage[base + s] + input.storage[base + s + 1]) / 4
                            sum += p[ch * 3 + k] * pooledValue
                        }
                        pre[((i * c + ch) * h + y) * h + x] = sum
                    }
                }
            }
        }
        let preactivation = Tensor(shape: [n, c, h, h], storage: pre)
        let features = Tensor(shape: preactivation.shape, storage: pre.map(act))
        return Pass(input: input, preactivation: preactivation, features: features, logits: head(features))
    }

    func act(_ v: Float) -> Float {
        switch activation {
        case .relu: max(v, 0)
        case .clip6: min(max(v, 0), 6)
        case .identity: v
        }
    }

    /// `W · mean_hw(A) + b` for `[M,C,h,w]`.
    func head(_ features: Tensor) -> Tensor {
        let m = features.shape[0], c = Self.channels, plane = features.shape[2] * features.shape[3]
        var out = [Float](repeating: 0, count: m * Self.classes)
        for i in 0..<m {
            let means = (0..<c).map { ch in
                (0..<plane).reduce(Float(0)) { $0 + features.storage[(i * c + ch) * plane + $1] } / Float(plane)
            }
            for k in 0..<Self.classes {
                out[i * Self.classes + k] = b[k] + (0..<c).reduce(Float(0)) { $0 + w[k * c + $1] * means[$1] }
            }
        }
        return Tensor(shape: [m, Self.classes], storage: out)
    }

    func logits(of pass: Pass) -> Tensor { pass.logits }

    func activation(_ name: String, in pass: Pass) throws -> Tensor {
        switch name {
        case "features": return pass.features
        case "input": return pass.input
        default: throw Failure.unknown(name)
        }
    }

    /// `d(sum seed·logits)/dA[i,c,y,x] = sum_k seed[i,k] W[k,c] / (h w)`.
    func featureGradient(seed: Tensor, batch n: Int) -> Tensor {
        let c = Self.channels, plane = Self.pooled * Self.pooled
        var g = [Float](repeating: 0, count: n * c * plane)
        for i in 0..<n {
            for ch in 0..<c {
                let value = (0..<Self.classes).reduce(Float(0)) { $0 + seed.storage[i * Self.classes + $1] * w[$1 * c + ch] } / Float(plane)
                for p in 0..<plane { g[(i * c + ch) * plane + p] = value }
            }
        }
        return Tensor(shape: [n, c, Self.pooled, Self.pooled], storage: g)
    }

    func gradients(of pass: Pass, seed: Tensor, withRespectTo names: Set<String>, rules: GradientRules) throws -> [String: Tensor] {
        let n = pass.input.shape[0], c = Self.channels, h = Self.pooled, s = Self.size
        let gA = featureGradient(seed: seed, batch: n)
        var result: [String: Tensor] = [:]
        for name in names {
            switch name {
            case "features":
                result[name] = gA
            case "input":
                var gPre = gA.storage
                for i in gPre.indices {
                    let v = pass.preactivation.storage[i], up = gA.storage[i]
                    switch activation {
                    case .relu:
                        gPre[i] = v > 0 && (!rules.guidedRelu || up > 0) ? up : 0
                    case .clip6:
                        gPre[i] = v > 0 && v < 6 && (!rules.guidedClip || up > 0) ? up : 0
                    case .identity:
                        gPre[i] = up
                    }
                }
                var gx = [Float](repeating: 0, count: n * 3 * s * s)
                for i in 0..<n {
                    for k in 0..<3 {
                        for y in 0..<s {
                            for x in 0..<s {
                                var sum: Float = 0
                                for ch in 0..<c { sum += gPre[((i * c + ch) * h + y / 2) * h + x / 2] * p[ch * 3 + k] }
                                gx[((i * 3 + k) * s + y) * s + x] = sum / 4
                            }
                        }
                    }
                }
                result[name] = Tensor(shape: pass.input.shape, storage: gx)
            default:
                throw Failure.unknown(name)
            }
        }
        return result
    }

    func logits(of pass: Pass, image: Int, replacing name: String, with value: Tensor) throws -> Tensor {
        guard name == "features", value.rank == 4, value.shape[1] == Self.channels else { throw Failure.unknown(name) }
        return head(value)
    }

    func linearHead() throws -> LinearHead {
        guard hasHead else { throw ExplainError.noLinearHead("the logits do not come from a Gemm after global average pooling") }
        return LinearHead(featureLayer: "features", weights: Tensor(shape: [Self.classes, Self.channels], storage: w),
                          bias: Tensor(shape: [Self.classes], storage: b))
    }

    /// Deterministic test images `[n,3,8,8]`, different per index.
    static func images(_ n: Int, seed: Int = 0) -> Tensor {
        var values: [Float] = []
        for i in 0..<(n * 3 * size * size) {
            let t = Float(i + 7 * seed)
            values.append(sin(t * 0.37) + 0.5 * cos(t * 1.3) + 0.2)
        }
        return Tensor(shape: [n, 3, size, size], storage: values)
    }
}

import Foundation
