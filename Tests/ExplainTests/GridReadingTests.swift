import Core
import Explain
import Testing

/// How target layers are read as grids: convolutions' NCHW, channels-last outputs, transformers' tokens.
@Suite struct GridReadingTests {
    @Test func readingsFollowTheShapes() {
        // A CNN's last stage, any input size whose grid rounds.
        #expect(GridReading.automatic(shape: [1, 1280, 7, 7], inputHeight: 224, inputWidth: 224) == .channelsFirst)
        #expect(GridReading.automatic(shape: [2, 512, 8, 11], inputHeight: 225, inputWidth: 321) == .channelsFirst)
        // Swin's channels-last stages, also where channels and the input's side are equal.
        #expect(GridReading.automatic(shape: [1, 7, 7, 768], inputHeight: 224, inputWidth: 224) == .channelsLast)
        #expect(GridReading.automatic(shape: [1, 56, 56, 96], inputHeight: 224, inputWidth: 224) == .channelsLast)
        #expect(GridReading.automatic(shape: [2, 8, 8, 32], inputHeight: 32, inputWidth: 32) == .channelsLast)
        // ViT (class token), DeiT distilled (two), registers (five), a non-square input.
        #expect(GridReading.automatic(shape: [1, 197, 192], inputHeight: 224, inputWidth: 224) == .tokens(leading: 1, height: 14, width: 14))
        #expect(GridReading.automatic(shape: [1, 198, 192], inputHeight: 224, inputWidth: 224) == .tokens(leading: 2, height: 14, width: 14))
        #expect(GridReading.automatic(shape: [2, 69, 32], inputHeight: 32, inputWidth: 32) == .tokens(leading: 5, height: 8, width: 8))
        #expect(GridReading.automatic(shape: [1, 129, 64], inputHeight: 128, inputWidth: 256) == .tokens(leading: 1, height: 8, width: 16))
        // Logits and pooled features are not on a grid.
        #expect(GridReading.automatic(shape: [1, 1000], inputHeight: 224, inputWidth: 224) == nil)
        #expect(GridReading.automatic(shape: [1, 2, 1000], inputHeight: 224, inputWidth: 224) == nil)
    }

    @Test func choicesParseAndResolve() throws {
        #expect(GridChoice(argument: "nhwc") == .fixed(.channelsLast))
        #expect(GridChoice(argument: "tokens:1") == .tokens(leading: 1))
        #expect(GridChoice(argument: "tokens:2:7x9") == .fixed(.tokens(leading: 2, height: 7, width: 9)))
        #expect(GridChoice(argument: "tokens:x") == nil && GridChoice(argument: "sideways") == nil)
        #expect(try GridChoice.tokens(leading: 1).reading(for: [1, 50, 8], inputHeight: 112, inputWidth: 112, layer: "t")
                == .tokens(leading: 1, height: 7, width: 7))
        #expect(throws: ExplainError.self) {
            try GridChoice.automatic.reading(for: [1, 1000], inputHeight: 224, inputWidth: 224, layer: "logits")
        }
        #expect(throws: ExplainError.self) {
            try GridChoice.fixed(.channelsLast).reading(for: [1, 197, 192], inputHeight: 224, inputWidth: 224, layer: "t")
        }
    }

    /// The grid is pytorch-grad-cam's `reshape_transform`: leading tokens dropped, the rest row by
    /// row, channels first; channels-last outputs transposed.
    @Test func gridsAreTheReshapeTransform() {
        // Two images of 1 + 2x3 tokens of 2 channels: value = 100·image + 10·token + channel.
        var values: [Float] = []
        for n in 0..<2 { for t in 0..<7 { for c in 0..<2 { values.append(Float(100 * n + 10 * t + c)) } } }
        let tokens = Tensor(shape: [2, 7, 2], storage: values)
        let grid = GridReading.tokens(leading: 1, height: 2, width: 3).grid(tokens)
        #expect(grid.shape == [2, 2, 2, 3])
        // Image 1, channel 1, row 1, column 2 is token 1 + 1·3 + 2 = 6.
        let cell: Int = ((1 * 2 + 1) * 2 + 1) * 3 + 2
        #expect(grid.storage[cell] == 161)
        let last = Tensor(shape: [1, 2, 3, 2], storage: (0..<12).map(Float.init))
        #expect(GridReading.channelsLast.grid(last).storage == [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11])
        #expect(GridReading.channelsFirst.grid(last) == last)
    }

    /// An ablated channel is set everywhere in the layer's own output, leading tokens included.
    @Test func ablationSetsTheWholeChannel() {
        let tokens = Tensor(shape: [3, 2], storage: [1, 2, 3, 4, 5, 6])
        let copies = GridReading.tokens(leading: 1, height: 1, width: 2).ablatedCopies(of: tokens, channels: [1, 0], value: -9)
        #expect(copies.shape == [2, 3, 2])
        #expect(copies.storage == [1, -9, 3, -9, 5, -9, -9, 2, -9, 4, -9, 6])
        let planes = Tensor(shape: [2, 1, 2], storage: [1, 2, 3, 4])
        #expect(GridReading.channelsFirst.ablatedCopies(of: planes, channels: [1], value: 0).storage == [1, 2, 0, 0])
    }
}
