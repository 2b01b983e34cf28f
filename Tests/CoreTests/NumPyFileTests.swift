import Foundation
import Testing
import Core
import TestSupport

@Suite struct NumPyFileTests {
    @Test func roundTripKeepsShapeAndValues() throws {
        let tensor = Tensor(shape: [2, 3, 1], storage: [1, -2.5, 3, .greatestFiniteMagnitude, 0, -0.125])
        let decoded = try NumPyFile.decode(NumPyFile.encode(tensor))
        #expect(decoded == tensor)
    }

    @Test func headerIsAlignedTo64Bytes() {
        let data = NumPyFile.encode(Tensor(shape: [5], repeating: 1))
        #expect((data.count - 5 * 4) % 64 == 0)
    }

    @Test func rejectsNonNumPyBytes() {
        #expect(throws: NumPyFile.FormatError.self) { try NumPyFile.decode(Data("hello world".utf8)) }
    }

    @Test func rejectsTruncatedData() {
        let data = NumPyFile.encode(Tensor(shape: [4, 4], repeating: 1))
        #expect(throws: NumPyFile.FormatError.self) { try NumPyFile.decode(data.prefix(data.count - 3)) }
    }

    @Test func readsReferenceInputWhenPresent() throws {
        guard let reference = ReferenceData.referenceOrSkip("readsReferenceInputWhenPresent") else { return }
        let input = try NumPyFile.read(path: reference.appendingPathComponent("inputs/chelsea.npy").path)
        #expect(input.shape == [1, 3, 224, 224])
    }
}
