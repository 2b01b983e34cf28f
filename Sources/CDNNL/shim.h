// oneDNN 2.6 C API.
#pragma once
#include <dnnl.h>
#if defined(__linux__)
// mallopt: the engine keeps large activation buffers in the heap between frames.
#include <malloc.h>
#endif
// libgomp, the OpenMP runtime this oneDNN build runs on: our own parallel loops use the same thread team.
// GOMP_parallel is the entry point GCC compiles `#pragma omp parallel` to (num_threads 0: the default team).
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
// The OpenMP thread count of the calling thread, which oneDNN's kernels called from it use.
int omp_get_max_threads(void);
void omp_set_num_threads(int count);
