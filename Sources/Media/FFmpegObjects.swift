import CFFmpeg

// FFmpeg's free functions take the address of the pointer they free (and set to nil); these
// free what a pointer points to, for owners that hold the pointer itself.

extension UnsafeMutablePointer where Pointee == AVFrame {
    /// `av_frame_free`.
    func free() {
        var pointer: UnsafeMutablePointer<AVFrame>? = self
        av_frame_free(&pointer)
    }
}

extension UnsafeMutablePointer where Pointee == AVPacket {
    /// `av_packet_free`.
    func free() {
        var pointer: UnsafeMutablePointer<AVPacket>? = self
        av_packet_free(&pointer)
    }
}

extension UnsafeMutablePointer where Pointee == AVCodecContext {
    /// `avcodec_free_context`.
    func free() {
        var pointer: UnsafeMutablePointer<AVCodecContext>? = self
        avcodec_free_context(&pointer)
    }
}
