import Testing
import Explain

@Suite struct NormalizationTests {
    @Test func minMaxMatchesPytorchGradCam() {
        let scaled = Normalization.minMax([2, 4, 6])
        #expect(scaled[0] == 0)
        #expect(abs(scaled[1] - 0.5) < 1e-6)
        // In float32, 4 / (4 + 1e-7) rounds to exactly 1, as in NumPy.
        #expect(scaled[2] <= 1 && scaled[2] > 0.9999)
    }
}
