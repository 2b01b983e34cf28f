import Core

/// Class model visualisation (Simonyan et al. 2014): the input that maximises a class logit under an
/// L2 penalty, `argmax_I S_c(I) - λ‖I‖²`, found by gradient ascent from a zero image.
public struct ClassModelVisualization: Sendable, Equatable {
    /// Gradient-ascent steps.
    public var steps: Int
    /// Step size.
    public var learningRate: Float
    /// The L2 weight λ.
    public var l2: Float

    /// A visualisation with the given schedule.
    public init(steps: Int = 100, learningRate: Float = 1, l2: Float = 0.01) {
        self.steps = steps
        self.learningRate = learningRate
        self.l2 = l2
    }

    /// The optimised input `[3,H,W]` for class `classIndex` of a network taking `[1,3,H,W]` inputs.
    ///
    /// Each step is `I += learningRate * (dS_c/dI - 2λI)`, the gradient coming through the protocol's
    /// input gradient; the CLI turns the result into a picture with `Explanation.viewable`.
    public func optimise<Network: ExplainableNetwork>(_ network: Network, classIndex: Int, height: Int = 224, width: Int = 224) throws -> Tensor {
        guard steps >= 0, learningRate > 0, l2 >= 0, height > 0, width > 0 else {
            throw ExplainError.invalidOption("class model visualisation needs steps ≥ 0, learning rate > 0, λ ≥ 0 and a positive size")
        }
        var image = Tensor(shape: [1, 3, height, width])
        for _ in 0..<steps {
            let pass = try network.forward(image, retaining: [network.inputName])
            let logits = network.logits(of: pass)
            guard logits.rank == 2, classIndex >= 0, classIndex < logits.shape[1] else {
                throw ExplainError.classIndexOutOfRange(classIndex, classes: logits.shape.last ?? 0)
            }
            var seed = Tensor(shape: logits.shape)
            seed.storage[classIndex] = 1
            let gradients = try network.gradients(of: pass, seed: seed, withRespectTo: [network.inputName], rules: .standard)
            guard let g = gradients[network.inputName], g.shape == image.shape else {
                throw ExplainError.missingTensor("no input gradient of shape \(image.shape) for '\(network.inputName)'")
            }
            for i in image.storage.indices {
                image.storage[i] += learningRate * (g.storage[i] - 2 * l2 * image.storage[i])
            }
        }
        return image.slice(0)
    }
}
