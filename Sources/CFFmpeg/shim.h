// FFmpeg 5.1 headers, plus inline wrappers for the macros Swift cannot import.
#pragma once
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libswscale/swscale.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/display.h>
#include <libavutil/error.h>

/// AVERROR_EOF as a value.
static inline int camvid_averror_eof(void) { return AVERROR_EOF; }
/// AVERROR(EAGAIN) as a value.
static inline int camvid_averror_eagain(void) { return AVERROR(EAGAIN); }
/// AVERROR(e) for a POSIX errno.
static inline int camvid_averror(int e) { return AVERROR(e); }
/// AV_NOPTS_VALUE as a value.
static inline int64_t camvid_nopts_value(void) { return AV_NOPTS_VALUE; }
/// AV_TIME_BASE_Q as a value.
static inline AVRational camvid_time_base_q(void) { return AV_TIME_BASE_Q; }
/// av_err2str into a caller buffer (the macro uses a compound literal).
static inline const char *camvid_err2str(int err, char *buf, size_t size) {
    av_strerror(err, buf, size);
    return buf;
}
/// AVERROR_INVALIDDATA as a value (FFERRTAG is a macro).
static inline int camvid_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
/// Whether a demuxer is a capture device (AV_IS_INPUT_DEVICE is a macro over the class category).
static inline int camvid_is_input_device(const AVInputFormat *format) {
    if (!format || !format->priv_class) return 0;
    return AV_IS_INPUT_DEVICE(format->priv_class->category) ? 1 : 0;
}
/// The first plane pointer and stride array of a frame, as flat pointers for sws_scale.
static inline const uint8_t *const *camvid_frame_data(const AVFrame *frame) { return (const uint8_t *const *)frame->data; }
/// The stride array of a frame.
static inline const int *camvid_frame_linesize(const AVFrame *frame) { return frame->linesize; }
/// The writable plane pointers of a frame, for sws_scale's destination.
static inline uint8_t *const *camvid_frame_data_mut(AVFrame *frame) { return frame->data; }

/// AVERROR_EXIT as a value (what an interrupted read returns).
static inline int camvid_averror_exit(void) { return AVERROR_EXIT; }
