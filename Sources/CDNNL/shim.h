// oneDNN 2.6 C API.
#pragma once
#include <dnnl.h>
#if defined(__linux__)
// mallopt: the engine keeps large activation buffers in the heap between frames.
#include <malloc.h>
#endif
