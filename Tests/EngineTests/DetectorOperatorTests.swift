import Core
import Foundation
import Testing
import Engine
import EngineTestSupport

/// One Resize (or Upsample) node on the input: its attributes and its scales, sizes and region of interest (constants),
/// and what onnxruntime 1.32 computes for it on `DetectorOperatorTests.x` (pasted in: scripts/make-detector-cases' venv,
/// `onnxruntime.InferenceSession` on the same one-node graph).
struct ResizeCase: Sendable, CustomTestStringConvertible {
    let label: String
    let opset: Int
    let op: String
    let attributes: [String: ONNXAttribute]
    let scales: [Float]?
    let sizes: [Int]?
    let roi: [Float]?
    let shape: [Int]
    let expected: [Float]

    init(_ label: String, opset: Int, op: String, _ attributes: [String: ONNXAttribute], scales: [Float]?, sizes: [Int]?,
         roi: [Float]?, shape: [Int], expected: [Float]) {
        (self.label, self.opset, self.op, self.attributes) = (label, opset, op, attributes)
        (self.scales, self.sizes, self.roi, self.shape, self.expected) = (scales, sizes, roi, shape, expected)
    }

    var testDescription: String { label }

    /// Adds the node, for an input of `channels` channels (sizes over all four axes follow it).
    func build(_ b: inout ONNXModelBuilder, channels: Int = 1) {
        var inputs = ["input"]
        if let scales {
            b.addInitializer("scales", Tensor(shape: [scales.count], storage: scales))
        }
        if op == "Upsample" || opset < 11 {
            inputs.append("scales")
        } else {
            if let roi { b.addInitializer("roi", Tensor(shape: [roi.count], storage: roi)) }
            inputs += [roi == nil ? "" : "roi", scales == nil ? "" : "scales"]
            if var sizes {
                if sizes.count == 4 { sizes[1] = channels }
                b.addInitializer("sizes", shape: [sizes.count], int64: sizes.map(Int64.init))
                inputs.append("sizes")
            }
        }
        b.addNode(op, inputs: inputs, outputs: ["output"], name: "resize", attributes: attributes)
    }
}

@Suite struct DetectorOperatorTests {
    /// The input of every value case: `(i * 5) % 12 - 6`, [1, 1, 3, 4].
    static let x = Tensor(shape: [1, 1, 3, 4], storage: (0..<12).map { Float(($0 * 5) % 12 - 6) })

    static let cases: [ResizeCase] = [
        ResizeCase("nearest asymmetric floor 2x", opset: 17, op: "Resize",
                   ["mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"), "nearest_mode": .string("floor")],
                   scales: [1, 1, 2, 2], sizes: nil, roi: nil,
                   shape: [1, 1, 6, 8],
                   expected: [-6, -6, -1, -1, 4, 4, -3, -3, -6, -6, -1, -1, 4, 4, -3, -3, 2, 2, -5, -5, 0, 0, 5, 5, 2, 2, -5, -5,
                              0, 0, 5, 5, -2, -2, 3, 3, -4, -4, 1, 1, -2, -2, 3, 3, -4, -4, 1, 1]),
        ResizeCase("nearest half_pixel round_prefer_floor", opset: 17, op: "Resize",
                   ["mode": .string("nearest")],
                   scales: [1, 1, 1.5, 0.75], sizes: nil, roi: nil,
                   shape: [1, 1, 4, 3],
                   expected: [-6, -1, -3, -6, -1, -3, 2, -5, 5, -2, 3, 1]),
        ResizeCase("nearest align_corners round_prefer_ceil", opset: 17, op: "Resize",
                   ["mode": .string("nearest"), "coordinate_transformation_mode": .string("align_corners"), "nearest_mode": .string("round_prefer_ceil")],
                   scales: nil, sizes: [1, 1, 5, 3], roi: nil,
                   shape: [1, 1, 5, 3],
                   expected: [-6, 4, -3, 2, 0, 5, 2, 0, 5, -2, -4, 1, -2, -4, 1]),
        ResizeCase("nearest pytorch_half_pixel ceil", opset: 17, op: "Resize",
                   ["mode": .string("nearest"), "coordinate_transformation_mode": .string("pytorch_half_pixel"), "nearest_mode": .string("ceil")],
                   scales: nil, sizes: [1, 1, 2, 7], roi: nil,
                   shape: [1, 1, 2, 7],
                   expected: [2, -5, -5, 0, 5, 5, 5, -2, 3, 3, -4, 1, 1, 1]),
        ResizeCase("linear half_pixel", opset: 17, op: "Resize",
                   ["mode": .string("linear")],
                   scales: [1, 1, 2, 2.5], sizes: nil, roi: nil,
                   shape: [1, 1, 6, 10],
                   expected: [-6, -5.499999523162842, -3.5, -1.5000001192092896, 0.4999997615814209, 2.500000238418579,
                              3.3000006675720215, 0.5, -2.3000006675720215, -3, -4, -3.799999475479126, -3, -2.200000047683716,
                              -0.5000002384185791, 1.500000238418579, 2.6000003814697266, 1, -0.600000262260437, -1, 0,
                              -0.40000006556510925, -2, -3.5999996662139893, -2.500000238418579, -0.4999997019767761,
                              1.1999998092651367, 2, 2.8000001907348633, 3, 1, 0.5999997854232788, -1, -2.5999996662139893,
                              -2.4000000953674316, -1.5999999046325684, -0.5000004768371582, 1.5, 3.500000476837158, 4, -1,
                              -0.7999999523162842, 0, 0.7999997138977051, -0.1999998688697815, -1.8000001907348633,
                              -2.500000476837158, -0.5, 1.5000004768371582, 2, -2, -1.499999761581421, 0.5, 2.499999761581421,
                              0.9000003337860107, -1.9000003337860107, -3.500000476837158, -1.5, 0.5000004768371582, 1]),
        ResizeCase("linear pytorch_half_pixel one row", opset: 17, op: "Resize",
                   ["mode": .string("linear"), "coordinate_transformation_mode": .string("pytorch_half_pixel")],
                   scales: nil, sizes: [1, 1, 1, 5], roi: nil,
                   shape: [1, 1, 1, 5],
                   expected: [-6, -2.499999761581421, 1.5, 1.9000003337860107, -3]),
        ResizeCase("linear align_corners", opset: 17, op: "Resize",
                   ["mode": .string("linear"), "coordinate_transformation_mode": .string("align_corners")],
                   scales: nil, sizes: [1, 1, 5, 7], roi: nil,
                   shape: [1, 1, 5, 7],
                   expected: [-6, -3.5, -1, 1.5, 4, 0.5, -3, -2, -2.5, -3, -0.5, 2, 1.5, 1, 2, -1.5, -5, -2.5, 0, 2.5, 5, 0, -0.5,
                              -1, -1.5, -2, 0.5, 3, -2, 0.5, 3, -0.5, -4, -1.5, 1]),
        ResizeCase("linear asymmetric", opset: 17, op: "Resize",
                   ["mode": .string("linear"), "coordinate_transformation_mode": .string("asymmetric")],
                   scales: [1, 1, 0.6, 1.7], sizes: nil, roi: nil,
                   shape: [1, 1, 1, 6],
                   expected: [-6, -3.058823585510254, -0.11764740943908691, 2.82352876663208, 1.5294127464294434,
                              -2.5882349014282227]),
        ResizeCase("cubic half_pixel exclude_outside", opset: 17, op: "Resize",
                   ["mode": .string("cubic"), "cubic_coeff_a": .float(-0.5), "exclude_outside": .int(1)],
                   scales: nil, sizes: [1, 1, 4, 6], roi: nil,
                   shape: [1, 1, 4, 6],
                   expected: [-6.788097381591797, -4.064091682434082, 0.2247086763381958, 4.113600730895996, 0.46532052755355835,
                              -3.919677972793579, -0.48408567905426025, -2.6315414905548096, -3.565742254257202,
                              1.001350998878479, 2.393110752105713, 2.3289473056793213, 1.289534568786621, -0.5449292659759521,
                              -2.4941797256469727, -2.213336229324341, 1.3498046398162842, 4.4526238441467285,
                              -2.5791423320770264, 0.887620747089386, 2.7676198482513428, -3.5151326656341553, -2.010535717010498,
                              1.1199922561645508]),
        ResizeCase("cubic align_corners", opset: 17, op: "Resize",
                   ["mode": .string("cubic"), "coordinate_transformation_mode": .string("align_corners")],
                   scales: nil, sizes: [1, 1, 5, 5], roi: nil,
                   shape: [1, 1, 5, 5],
                   expected: [-6, -2.66015625, 2.625, 2.94140625, -3, -1.625, -3.91455078125, -0.79296875, 2.79443359375, 1.375,
                              2, -3.94140625, -3.625, 1.66015625, 5, 0.75, -0.7880859375, -2.6484375, -1.0927734375, 3.75, -2,
                              2.60546875, -0.5, -3.60546875, 1]),
        ResizeCase("linear tf_crop_and_resize", opset: 17, op: "Resize",
                   ["mode": .string("linear"), "coordinate_transformation_mode": .string("tf_crop_and_resize"), "extrapolation_value": .float(7)],
                   scales: nil, sizes: [1, 1, 4, 5], roi: [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3],
                   shape: [1, 1, 4, 5],
                   expected: [7, -2.6500000953674316, 1.3999998569488525, 0.5300000905990601, 7, 7, -3.116666555404663,
                              -0.46666696667671204, 3.423333168029785, 7, 7, -1.5833330154418945, -1.533333420753479,
                              2.916666030883789, 7, 7, 0.7499995231628418, -2.2799997329711914, 1.049999713897705, 7]),
        ResizeCase("nearest tf_crop_and_resize", opset: 17, op: "Resize",
                   ["mode": .string("nearest"), "coordinate_transformation_mode": .string("tf_crop_and_resize"), "extrapolation_value": .float(-9)],
                   scales: nil, sizes: [1, 1, 4, 5], roi: [0, 0, -0.2, 0.1, 1, 1, 0.9, 1.2],
                   shape: [1, 1, 4, 5],
                   expected: [-9, -9, -9, -9, -9, -6, -1, 4, -3, -9, 2, -5, 0, 5, -9, -2, 3, -4, 1, -9]),
        ResizeCase("linear half_pixel_symmetric opset 19", opset: 19, op: "Resize",
                   ["mode": .string("linear"), "coordinate_transformation_mode": .string("half_pixel_symmetric")],
                   scales: [1, 1, 1.7, 2.3], sizes: nil, roi: nil,
                   shape: [1, 1, 5, 9],
                   expected: [-6, -5.0217390060424805, -2.847825765609741, -0.6739131212234497, 1.5, 3.67391300201416,
                              1.4130432605743408, -1.6304359436035156, -3, -2.7058820724487305, -2.69437313079834,
                              -2.6687979698181152, -2.320972204208374, -0.14705902338027954, 2.0268540382385254,
                              1.592071533203125, 0.696931004524231, 0.2941180467605591, 2, 0.6304347515106201, -2.41304349899292,
                              -4.67391300201416, -2.5, -0.3260868787765503, 1.8478262424468994, 4.021739959716797, 5,
                              -0.35294151306152344, -0.3414323627948761, -0.3158564567565918, -0.42838791012763977,
                              -1.3235292434692383, -2.21867036819458, -0.5051153302192688, 1.6687984466552734, 2.6470584869384766,
                              -2, -1.02173912525177, 1.1521741151809692, 2.543478488922119, -0.5, -3.543478488922119,
                              -2.1521739959716797, 0.021739959716796875, 1]),
        ResizeCase("nearest axes not_larger opset 18", opset: 18, op: "Resize",
                   ["mode": .string("nearest"), "keep_aspect_ratio_policy": .string("not_larger"), "axes": .ints([2, 3])],
                   scales: nil, sizes: [5, 6], roi: nil,
                   shape: [1, 1, 5, 6],
                   expected: [-6, -6, -1, 4, 4, -3, -6, -6, -1, 4, 4, -3, 2, 2, -5, 0, 0, 5, -2, -2, 3, -4, -4, 1, -2, -2, 3, -4,
                              -4, 1]),
        ResizeCase("linear axes not_smaller opset 18", opset: 18, op: "Resize",
                   ["mode": .string("linear"), "keep_aspect_ratio_policy": .string("not_smaller"), "axes": .ints([2, 3])],
                   scales: nil, sizes: [5, 6], roi: nil,
                   shape: [1, 1, 5, 7],
                   expected: [-6, -4, -1, 2.0000007152557373, 2.5999996662139893, -1.600001335144043, -3, -2.799999713897705,
                              -2.7200000286102295, -2.6000001430511475, 0.4000006318092346, 1.9599997997283936,
                              0.6399998664855957, 0.20000028610229492, 2, -0.8000003099441528, -5, -1.9999992847442627,
                              1.000000238418579, 4.000000953674316, 5, -0.40000057220458984, -0.3199998140335083,
                              -0.1999988555908203, -1.5200002193450928, -1.4000003337860107, 1.6000003814697266, 2.59999942779541,
                              -2, 1.1920928955078125e-07, 3, -1.2000010013580322, -3, 9.5367431640625e-07, 1]),
        ResizeCase("nearest one axis scales opset 18", opset: 18, op: "Resize",
                   ["mode": .string("nearest"), "axes": .ints([3])],
                   scales: [2.5], sizes: nil, roi: nil,
                   shape: [1, 1, 3, 10],
                   expected: [-6, -6, -6, -1, -1, 4, 4, 4, -3, -3, 2, 2, 2, -5, -5, 0, 0, 0, 5, 5, -2, -2, -2, 3, 3, -4, -4, -4,
                              1, 1]),
        ResizeCase("Resize-10 nearest downsampling", opset: 10, op: "Resize",
                   ["mode": .string("nearest")],
                   scales: [1, 1, 0.7, 0.6], sizes: nil, roi: nil,
                   shape: [1, 1, 2, 2],
                   expected: [-6, 4, -2, -4]),
        ResizeCase("Resize-10 linear", opset: 10, op: "Resize",
                   ["mode": .string("linear")],
                   scales: [1, 1, 1.5, 1.5], sizes: nil, roi: nil,
                   shape: [1, 1, 4, 6],
                   expected: [-6, -2.6666665077209473, 0.6666668653488159, 4, -0.6666672229766846, -3, -0.6666665077209473,
                              -2.6666667461395264, -1.999999761581421, 1.3333332538604736, 2, 2.3333334922790527,
                              0.6666665077209473, -1.333333134651184, -1.9999996423721313, -1.3333334922790527, 2.000000238418579,
                              3.6666665077209473, -2, 1.3333333730697632, 0.6666663885116577, -4, -0.6666662693023682, 1]),
        ResizeCase("Upsample-9 nearest", opset: 9, op: "Upsample",
                   ["mode": .string("nearest")],
                   scales: [1, 1, 2, 3], sizes: nil, roi: nil,
                   shape: [1, 1, 6, 12],
                   expected: [-6, -6, -6, -1, -1, -1, 4, 4, 4, -3, -3, -3, -6, -6, -6, -1, -1, -1, 4, 4, 4, -3, -3, -3, 2, 2, 2,
                              -5, -5, -5, 0, 0, 0, 5, 5, 5, 2, 2, 2, -5, -5, -5, 0, 0, 0, 5, 5, 5, -2, -2, -2, 3, 3, 3, -4, -4,
                              -4, 1, 1, 1, -2, -2, -2, 3, 3, 3, -4, -4, -4, 1, 1, 1]),
        ResizeCase("Upsample-9 linear", opset: 9, op: "Upsample",
                   ["mode": .string("linear")],
                   scales: [1, 1, 2, 1.5], sizes: nil, roi: nil,
                   shape: [1, 1, 6, 6],
                   expected: [-6, -2.6666665077209473, 0.6666668653488159, 4, -0.6666672229766846, -3, -2, -2.6666667461395264,
                              -1.3333330154418945, 2, 1.3333332538604736, 1, 2, -2.6666669845581055, -3.3333330154418945, 0,
                              3.333333730697632, 5, 0, -0.6666667461395264, -1.3333332538604736, -2, 1.3333337306976318, 3, -2,
                              1.3333333730697632, 0.6666663885116577, -4, -0.6666662693023682, 1, -2, 1.3333333730697632,
                              0.6666663885116577, -4, -0.6666662693023682, 1]),

    ]

    @Test(arguments: cases)
    func resizeMatchesOnnxruntime(_ c: ResizeCase) throws {
        let network = try builtNetwork([1, 1, 3, 4], opset: c.opset) { c.build(&$0) }
        let y = try network.forward(Self.x).logits
        #expect(y.shape == c.shape, "\(c.label): shape \(y.shape)")
        let worst = zip(y.storage, c.expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
        #expect(y.storage.count == c.expected.count && worst <= 1e-5, "\(c.label): \(y.storage) differs by \(worst)")
    }

    /// Central finite differences against backward, on two channels and two images.
    @Test(arguments: cases)
    func resizeGradient(_ c: ResizeCase) throws {
        try checkGradient("Resize \(c.label)", [1, 2, 3, 4], opset: c.opset) { c.build(&$0, channels: 2) }
        // A larger input, so that shrinking and growing leave some inputs without any output or with several.
        try checkGradient("Resize \(c.label) 5x7", [1, 2, 5, 7], opset: c.opset) { c.build(&$0, channels: 2) }
    }

    /// Resizing the channel axis too (nearest), and linear resizing of the batch-free axes inside a convolution chain in
    /// the engine's default (blocked) layout, as YOLO's neck runs it: upsample, concatenate with a skip, convolve.
    @Test func resizeInsideConvolutionChains() throws {
        try checkGradient("Resize channels", [1, 2, 3, 4]) { b in
            b.addInitializer("scales", Tensor(shape: [4], storage: [1, 2, 1.5, 0.5]))
            b.addNode("Resize", inputs: ["input", "", "scales"], outputs: ["output"], attributes: ["mode": .string("nearest")])
        }
        var rng = SeededGenerator(state: 14)
        for mode in ["nearest", "linear"] {
            try checkGradient("YOLO neck \(mode)", [1, 8, 4, 5]) { b in
                b.addInitializer("w1", rng.tensor([8, 8, 3, 3], -0.3, 0.3))
                b.addInitializer("w2", rng.tensor([8, 16, 1, 1], -0.3, 0.3))
                b.addInitializer("scales", Tensor(shape: [4], storage: [1, 1, 2, 2]))
                b.addNode("Conv", inputs: ["input", "w1"], outputs: ["c1"], attributes: ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])])
                b.addNode("Sigmoid", inputs: ["c1"], outputs: ["s1"])
                b.addNode("Mul", inputs: ["c1", "s1"], outputs: ["a1"])
                b.addNode("Resize", inputs: ["a1", "", "scales"], outputs: ["up"],
                          attributes: ["mode": .string(mode), "coordinate_transformation_mode": .string("asymmetric"),
                                       "nearest_mode": .string("floor")])
                b.addInitializer("starts", Tensor(shape: [2], storage: [0, 0]), integer: true)
                b.addInitializer("ends", Tensor(shape: [2], storage: [4, 5]), integer: true)
                b.addInitializer("axes", Tensor(shape: [2], storage: [2, 3]), integer: true)
                b.addNode("Slice", inputs: ["up", "starts", "ends", "axes"], outputs: ["cropped"])
                b.addNode("Concat", inputs: ["cropped", "input"], outputs: ["joined"], attributes: ["axis": .int(1)])
                b.addNode("Conv", inputs: ["joined", "w2"], outputs: ["output"])
            }
        }
    }

    /// The transposes by hand: nearest 2x sends each output's gradient to the one input it copied (each input gets four),
    /// linear align_corners spreads it by the interpolation weights.
    @Test func resizeGradientsByHand() throws {
        let nearest = try builtNetwork([1, 1, 2, 3]) { b in
            b.addInitializer("scales", Tensor(shape: [4], storage: [1, 1, 2, 2]))
            b.addNode("Resize", inputs: ["input", "", "scales"], outputs: ["output"],
                      attributes: ["mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"),
                                   "nearest_mode": .string("floor")])
        }
        let x = Tensor(shape: [1, 1, 2, 3], storage: [1, 2, 3, 4, 5, 6])
        let pass = try nearest.forward(x)
        let seed = Tensor(shape: [1, 1, 4, 6], storage: (0..<24).map(Float.init))
        let g = try #require(try nearest.backward(pass, seed: seed, to: [nearest.inputName])[nearest.inputName])
        // Input (i, j) collects outputs (2i + a, 2j + b): e.g. (0, 0) <- 0 + 1 + 6 + 7.
        #expect(g.storage == [14, 22, 30, 62, 70, 78])

        let linear = try builtNetwork([1, 1, 1, 2]) { b in
            b.addInitializer("sizes", shape: [4], int64: [1, 1, 1, 3])
            b.addNode("Resize", inputs: ["input", "", "", "sizes"], outputs: ["output"],
                      attributes: ["mode": .string("linear"), "coordinate_transformation_mode": .string("align_corners")])
        }
        let p = try linear.forward(Tensor(shape: [1, 1, 1, 2], storage: [2, 6]))
        #expect(p.logits.storage == [2, 4, 6])
        let gl = try #require(try linear.backward(p, seed: Tensor(shape: [1, 1, 1, 3], storage: [1, 10, 100]),
                                                  to: [linear.inputName])[linear.inputName])
        #expect(gl.storage == [6, 105])
    }

    /// Whatever a model file says, Resize loads or says why, naming the node; it never traps.
    @Test func malformedResizesAreErrorsNamingTheNode() throws {
        func failure(_ attributes: [String: ONNXAttribute] = ["mode": .string("linear")], opset: Int = 17, op: String = "Resize",
                     scales: [Float]? = nil, sizes: [Int64]? = nil, runtimeScales: Bool = false) -> String? {
            let error = #expect(throws: EngineError.self) {
                try builtNetwork([1, 1, 3, 4], opset: opset) { b in
                    var inputs = ["input"]
                    if op == "Resize" && opset >= 11 { inputs.append("") }
                    if runtimeScales {
                        b.addNode("Shape", inputs: ["input"], outputs: ["shape"])
                        b.addNode("Cast", inputs: ["shape"], outputs: ["scales"], attributes: ["to": .int(1)])
                        b.addNode("Sigmoid", inputs: ["input"], outputs: ["s"])
                        b.addNode("ReduceMean", inputs: ["s"], outputs: ["m"], attributes: ["keepdims": .int(0)])
                        b.addNode("Add", inputs: ["scales", "m"], outputs: ["moving"])
                        inputs.append("moving")
                    } else if let scales {
                        b.addInitializer("scales", Tensor(shape: [scales.count], storage: scales))
                        inputs.append("scales")
                    } else {
                        inputs.append("")
                    }
                    if let sizes {
                        b.addInitializer("sizes", shape: [sizes.count], int64: sizes)
                        inputs.append("sizes")
                    }
                    b.addNode(op, inputs: inputs, outputs: ["output"], name: "up", attributes: attributes)
                }
            }
            return error?.description
        }
        #expect(failure(scales: [1, 1, -2, 2]) == "Resize node 'up': scale -2.0 is not positive")
        #expect(failure(scales: [1, 1, .nan, 2]) == "Resize node 'up': scale nan is not positive")
        #expect(failure(scales: [1, 1, 2]) == "Resize node 'up': 3 scales for 4 axes of [1, 1, 3, 4]")
        #expect(failure(sizes: [1, 1, -3, 4]) == "Resize node 'up': sizes [1, 1, -3, 4] do not fit 4 axes of [1, 1, 3, 4]")
        #expect(failure(sizes: [1, 1, 1 << 20, 1 << 20]) == "Resize node 'up': output [1, 1, 1048576, 1048576] is too large")
        #expect(failure(sizes: [1, 1, Int64.max, 4]) == "Resize node 'up': shape [1, 1, 1099511627776, 4] is not a tensor's")
        #expect(failure(scales: [1, 1, 1e30, 1]) == "Resize node 'up': output extent 3.0000002e+30 is out of range")
        #expect(failure(scales: [1, 1, 2, 2], sizes: [1, 1, 6, 8]) == "Resize node 'up': both scales and sizes are given")
        #expect(failure() == "Resize node 'up': neither scales nor sizes is given")
        #expect(failure(runtimeScales: true)
                == "Resize node 'up': input 2 (scales) must be a constant or computable from the input shape")
        #expect(failure(["mode": .string("area")], scales: [1, 1, 2, 2])
                == "Resize node 'up': mode 'area' is not supported (nearest, linear, cubic)")
        #expect(failure(["mode": .string("nearest"), "nearest_mode": .string("simple")], scales: [1, 1, 2, 2])
                == "Resize node 'up': nearest_mode 'simple' is not supported")
        #expect(failure(["coordinate_transformation_mode": .string("half_pixel_symmetric")], scales: [1, 1, 2, 2])
                == "Resize node 'up': coordinate_transformation_mode 'half_pixel_symmetric' is not supported")
        #expect(failure(["antialias": .int(1)], scales: [1, 1, 2, 2]) == "Resize node 'up': unsupported attribute 'antialias'")
        #expect(failure(["mode": .string("linear"), "antialias": .int(1)], opset: 18, scales: [1, 1, 0.5, 0.5])
                == "Resize node 'up': antialiased downsampling is not supported")
        #expect(failure(["mode": .string("cubic")], opset: 9, op: "Upsample", scales: [1, 1, 2, 2])
                == "Upsample node 'up': mode 'cubic' is not supported (nearest, linear)")
        #expect(failure(["mode": .string("cubic")], opset: 10, scales: [1, 1, 2, 2])
                == "Resize node 'up': mode 'cubic' is not supported (nearest, linear, cubic)")
        // Antialiasing does nothing when growing: that loads.
        _ = try builtNetwork([1, 1, 3, 4], opset: 18) { b in
            b.addInitializer("scales", Tensor(shape: [4], storage: [1, 1, 2, 2]))
            b.addNode("Resize", inputs: ["input", "", "scales"], outputs: ["output"], attributes: ["mode": .string("linear"), "antialias": .int(1)])
        }
    }

    /// ConvTranspose against its definition (each input pixel scatters its kernel, scaled, into the output at stride
    /// spacing, minus the begin pads), with groups, dilation, asymmetric pads and output padding; then its gradient.
    @Test(arguments: [
        ("2x2 stride 2 (YOLO's proto upsampling)", 1, [2, 2], [1, 1], [0, 0, 0, 0], [0, 0]),
        ("3x3 stride 2 pads, output padding", 1, [2, 2], [1, 1], [1, 0, 1, 1], [1, 1]),
        ("3x2 dilated, grouped", 2, [1, 2], [2, 1], [0, 1, 1, 0], [0, 1]),
    ] as [(String, Int, [Int], [Int], [Int], [Int])])
    func convTransposeMatchesItsDefinition(_ c: (String, Int, [Int], [Int], [Int], [Int])) throws {
        let (label, groups, strides, dilations, pads, outputPadding) = c
        let kernel = label.hasPrefix("2x2") ? [2, 2] : label.hasPrefix("3x2") ? [3, 2] : [3, 3]
        let (inputChannels, outputChannels, height, width) = (4, 6, 3, 5)
        var rng = SeededGenerator(state: 41)
        let w = rng.tensor([inputChannels, outputChannels / groups] + kernel, -0.5, 0.5)
        let bias = rng.tensor([outputChannels], -0.5, 0.5)
        let build: (inout ONNXModelBuilder) -> Void = { b in
            b.addInitializer("w", w)
            b.addInitializer("b", bias)
            b.addNode("ConvTranspose", inputs: ["input", "w", "b"], outputs: ["output"], name: "up",
                      attributes: ["group": .int(groups), "strides": .ints(strides), "dilations": .ints(dilations),
                                   "pads": .ints(pads), "output_padding": .ints(outputPadding)])
        }
        let network = try builtNetwork([1, inputChannels, height, width], build)
        let x = rng.tensor([2, inputChannels, height, width], -1, 1)
        let y = try network.forward(x).logits
        let outH = strides[0] * (height - 1) + outputPadding[0] + (kernel[0] - 1) * dilations[0] + 1 - pads[0] - pads[2]
        let outW = strides[1] * (width - 1) + outputPadding[1] + (kernel[1] - 1) * dilations[1] + 1 - pads[1] - pads[3]
        #expect(y.shape == [2, outputChannels, outH, outW], "\(label): \(y.shape)")
        var expected = [Float](repeating: 0, count: 2 * outputChannels * outH * outW)
        let perGroupIn = inputChannels / groups, perGroupOut = outputChannels / groups
        for n in 0..<2 {
            for o in 0..<outputChannels {
                for p in 0..<(outH * outW) { expected[(n * outputChannels + o) * outH * outW + p] = bias.storage[o] }
            }
            for c in 0..<inputChannels {
                let group = c / perGroupIn
                for iy in 0..<height {
                    for ix in 0..<width {
                        let v = x.storage[((n * inputChannels + c) * height + iy) * width + ix]
                        for m in 0..<perGroupOut {
                            let o = group * perGroupOut + m
                            for ky in 0..<kernel[0] {
                                for kx in 0..<kernel[1] {
                                    let oy = iy * strides[0] + ky * dilations[0] - pads[0], ox = ix * strides[1] + kx * dilations[1] - pads[1]
                                    guard oy >= 0, oy < outH, ox >= 0, ox < outW else { continue }
                                    let weight = w.storage[((c * perGroupOut + m) * kernel[0] + ky) * kernel[1] + kx]
                                    expected[((n * outputChannels + o) * outH + oy) * outW + ox] += v * weight
                                }
                            }
                        }
                    }
                }
            }
        }
        let worst = zip(y.storage, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(y.storage.count == expected.count && worst <= 1e-5, "\(label): differs from the definition by \(worst)")
        try checkGradient("ConvTranspose \(label)", [1, inputChannels, height, width], build)
    }
}
