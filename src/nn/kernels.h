/* kernels.h - the arithmetic under every nn layer: matrix products (our own
 * vectorisable loops or OpenBLAS), aligned buffers, and the frame window that
 * gives streaming layers a contiguous view of their past. Private to src/nn.
 *
 * Every product the layers need is written in one of two forms, rows x
 * weights^T (C = A B^T, "nt") or weights x vector (gemv), because those are
 * the forms OpenBLAS 0.3.21 runs without allocating: its untransposed
 * small-matrix sgemm path (C = A B, M*N*K <= 1e6) calls malloc on every call,
 * which the audio thread must never do. docs/performance.md has the numbers
 * behind the choice of kernel. */
#ifndef OSCINE_NN_KERNELS_H
#define OSCINE_NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ memory */

/* 64-byte aligned, zeroed allocation of n floats (n may be 0: returns a
 * valid minimal block). NULL when out of memory. Thread: control. */
float *nn_falloc(size_t n);
void nn_ffree(float *p);

/* Size arithmetic that refuses overflow: a*b into *out, 0 or -1. */
int nn_mul_size(size_t a, size_t b, size_t *out);

/* ------------------------------------------------------ matrix products */

/* Which code runs the products: AUTO is what ships (OpenBLAS, where the
 * benchmark shows it faster: everywhere measured so far), OWN and BLAS force
 * one for tests and benchmarks. Process-wide; set it before running layers.
 * Thread: control. */
typedef enum nn_kernel_mode {
    NN_KERNEL_AUTO = 0,
    NN_KERNEL_OWN,
    NN_KERNEL_BLAS,
    NN_KERNEL_MODE_COUNT
} nn_kernel_mode;

void nn_kernel_set(nn_kernel_mode mode);
nn_kernel_mode nn_kernel_get(void);

/* Make OpenBLAS safe for the audio thread: one thread, and its buffer pool
 * mapped now (its first sgemm maps its work buffers; later calls, from any
 * thread, do not). Idempotent. Called by every layer's create.
 * Thread: control. */
void nn_blas_init(void);

/* OpenBLAS's kernel set. nn_blas_corename: the one it loaded (e.g.
 * "Cooperlake"); nn_cpu_level: what this CPU runs (0 older than AVX, 1 AVX,
 * 3 AVX2 + FMA, 4 AVX-512, 5 AVX-512 with BF16); nn_blas_coretype_for: the
 * OPENBLAS_CORETYPE that would give a CPU of that level better kernels than
 * `current`, or NULL (also for names it does not know); nn_blas_better_coretype:
 * that for this process. OpenBLAS reads OPENBLAS_CORETYPE only when it loads,
 * so a program that gets a name here can only run itself again with it set
 * (the oscine command does). nn_blas_is_generic: nonzero when the loaded set is
 * older than the CPU; AUTO then sends the products our loops win to them.
 * Thread: any (nn_blas_is_generic: control). */
const char *nn_blas_corename(void);
int nn_cpu_level(void);
const char *nn_blas_coretype_for(const char *current, int cpu_level);
const char *nn_blas_better_coretype(void);
int nn_blas_is_generic(void);

/* Would the current mode send an M x N x K product (a matrix-vector
 * product M x K) to OpenBLAS? */
int nn_kernel_use_blas(int M, int N, int K);
int nn_kernel_use_blas_gemv(int M, int K);

/* All matrices row-major with leading dimensions in floats.
 * acc = 0: C = the product;  acc = 1: C += the product. */

/* C[M][N] = A[M][K] * B[N][K]^T  (rows of A against rows of B: frames x
 * weights). M == 1 is a matrix-vector product and runs as one. */
void nn_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, int acc);

/* y[M] = A[M][K] * x[K] */
void nn_gemv(int M, int K, const float *A, int lda, const float *x, float *y, int acc);

/* The hand-written kernels behind the OWN mode, exported for the benchmark.
 * Both sum every dot product in the same 16-lane order, so a frame computed
 * alone (gemv) or inside a batch (gemm_nt) gives the same bits. */
void nn_own_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc, int acc);
void nn_own_gemv(int M, int K, const float *A, int lda, const float *x, float *y, int acc);

/* --------------------------------------------------------- frame window */

/* A sliding window over a stream of frames of `width` floats: the last
 * `hist` frames stay contiguous in front of the frames being appended, so a
 * layer reads its past and present as one array. Appending memmoves the
 * history to the front only when the buffer is full (every `cap - hist -
 * max_n` frames, at least every call when that is zero). */
typedef struct nn_window {
    float *buf;   /* [cap][width] */
    int width;    /* floats per frame */
    int hist;     /* frames of past kept */
    int max_n;    /* most frames appended at once */
    int cap;      /* frames in buf */
    int pos;      /* frame index in buf of the oldest history frame */
} nn_window;

/* Thread: control. Returns 0 or OSCINE_E_NOMEM. */
int nn_window_init(nn_window *w, int width, int hist, int max_n);
void nn_window_free(nn_window *w);
/* History back to zeros. Thread: audio. */
void nn_window_reset(nn_window *w);
/* Where to write the next n (<= max_n) frames; the history then sits just
 * before it: the window is nn_window_base(w) .. + (hist + n) frames. */
float *nn_window_append(nn_window *w, int n);
float *nn_window_base(const nn_window *w);
/* Drop the n oldest frames after the caller has used the window. */
void nn_window_advance(nn_window *w, int n);

#endif
