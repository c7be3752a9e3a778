/* kernels.c - matrix products, aligned buffers and the frame window shared by
 * the nn layers. See kernels.h; the choice between our loops and OpenBLAS is
 * measured by bench/bench_nn.c and written up in docs/performance.md. */
#include "nn/kernels.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* ------------------------------------------------------------ memory */

float *nn_falloc(size_t n)
{
    size_t bytes;
    if (nn_mul_size(n ? n : 1, sizeof(float), &bytes))
        return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void nn_ffree(float *p)
{
    free(p);
}

int nn_mul_size(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

/* ------------------------------------------------------ kernel choice */

static atomic_int kernel_mode = NN_KERNEL_AUTO;

void nn_kernel_set(nn_kernel_mode mode)
{
    atomic_store_explicit(&kernel_mode, (int)mode, memory_order_relaxed);
}

nn_kernel_mode nn_kernel_get(void)
{
    return (nn_kernel_mode)atomic_load_explicit(&kernel_mode, memory_order_relaxed);
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_init_once(void)
{
    /* One thread: the audio thread must not wait on OpenBLAS workers.
     * Then one product large enough to take OpenBLAS's normal (buffered)
     * path, so its buffer pool is mapped here and not on the audio thread. */
    enum { W = 192 };
    openblas_set_num_threads(1);
    float *a = nn_falloc(W * W), *c = nn_falloc(W * W);
    if (a && c)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, W, W, W, 1.0f, a, W, a, W,
                    0.0f, c, W);
    nn_ffree(a);
    nn_ffree(c);
}

void nn_blas_init(void)
{
    pthread_once(&blas_once, blas_init_once);
}

/* Products smaller than this many multiply-adds run on our loops: OpenBLAS's
 * call and packing overhead dominates there. Matrix-vector products always
 * run on ours (OpenBLAS's sgemv is no faster: see docs/performance.md). */
#define BLAS_MIN_MACS (48 * 1024)

int nn_kernel_use_blas(int M, int N, int K)
{
    nn_kernel_mode m = nn_kernel_get();
    if (m == NN_KERNEL_BLAS)
        return 1;
    if (m == NN_KERNEL_OWN)
        return 0;
    if (M < 4 || N < 4)
        return 0;
    return (double)M * N * K >= BLAS_MIN_MACS;
}

/* ------------------------------------------------------- own kernels */

/* Lanes of partial sums in a dot product: independent accumulators the
 * compiler maps onto vector registers (without -ffast-math it may not
 * reorder one running sum). Every dot product in the OWN path goes through
 * the same lane order, so results do not depend on batching. */
#define LANES 16

static inline float lanes_sum(float *acc)
{
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

float nn_dot(const float *restrict a, const float *restrict b, int n)
{
    float acc[LANES] = { 0 };
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++)
            acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i + l < n; l++)
        acc[l] += a[i + l] * b[i + l];
    return lanes_sum(acc);
}

/* Four dot products of a0..a3 against one b: b is loaded once for four
 * rows. Lane for lane the same arithmetic as nn_dot. */
static void dot4(const float *restrict a0, const float *restrict a1, const float *restrict a2,
                 const float *restrict a3, const float *restrict b, int n, float *out)
{
    float c0[LANES] = { 0 }, c1[LANES] = { 0 }, c2[LANES] = { 0 }, c3[LANES] = { 0 };
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float bv = b[i + l];
            c0[l] += a0[i + l] * bv;
            c1[l] += a1[i + l] * bv;
            c2[l] += a2[i + l] * bv;
            c3[l] += a3[i + l] * bv;
        }
    for (int l = 0; i + l < n; l++) {
        float bv = b[i + l];
        c0[l] += a0[i + l] * bv;
        c1[l] += a1[i + l] * bv;
        c2[l] += a2[i + l] * bv;
        c3[l] += a3[i + l] * bv;
    }
    out[0] = lanes_sum(c0);
    out[1] = lanes_sum(c1);
    out[2] = lanes_sum(c2);
    out[3] = lanes_sum(c3);
}

void nn_axpy(int n, float a, const float *restrict x, float *restrict y)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

void nn_own_gemv(int M, int K, const float *A, int lda, const float *x, float *y, int acc)
{
    for (int m = 0; m < M; m++) {
        float d = nn_dot(A + (size_t)m * lda, x, K);
        y[m] = acc ? y[m] + d : d;
    }
}

void nn_own_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc, int acc)
{
    /* Weight rows (B) in blocks that stay in L2 while every frame (row of A)
     * passes over them, four frames at a time. */
    size_t rowbytes = (size_t)K * sizeof(float);
    int jb = rowbytes ? (int)((256 * 1024) / rowbytes) : N;
    if (jb < 4)
        jb = 4;
    for (int j0 = 0; j0 < N; j0 += jb) {
        int j1 = j0 + jb < N ? j0 + jb : N;
        int i = 0;
        for (; i + 4 <= M; i += 4) {
            const float *a0 = A + (size_t)i * lda;
            for (int j = j0; j < j1; j++) {
                float d[4];
                dot4(a0, a0 + lda, a0 + 2 * (size_t)lda, a0 + 3 * (size_t)lda,
                     B + (size_t)j * ldb, K, d);
                for (int r = 0; r < 4; r++) {
                    float *c = C + (size_t)(i + r) * ldc + j;
                    *c = acc ? *c + d[r] : d[r];
                }
            }
        }
        for (; i < M; i++)
            for (int j = j0; j < j1; j++) {
                float d = nn_dot(A + (size_t)i * lda, B + (size_t)j * ldb, K);
                float *c = C + (size_t)i * ldc + j;
                *c = acc ? *c + d : d;
            }
    }
}

/* C[m][:] += A[m][k] * B[k][:], four k at a time so that each pass over the
 * C row does four multiply-adds per load and store. */
static void row_nn(int N, int K, const float *restrict a, const float *restrict B, int ldb,
                   float *restrict c)
{
    int k = 0;
    for (; k + 4 <= K; k += 4) {
        const float *restrict b0 = B + (size_t)k * ldb;
        const float *restrict b1 = b0 + ldb;
        const float *restrict b2 = b1 + ldb;
        const float *restrict b3 = b2 + ldb;
        float a0 = a[k], a1 = a[k + 1], a2 = a[k + 2], a3 = a[k + 3];
        for (int j = 0; j < N; j++)
            c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
    }
    for (; k < K; k++)
        nn_axpy(N, a[k], B + (size_t)k * ldb, c);
}

void nn_own_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc, int acc)
{
    for (int m = 0; m < M; m++) {
        float *c = C + (size_t)m * ldc;
        if (!acc)
            memset(c, 0, (size_t)N * sizeof(float));
        row_nn(N, K, A + (size_t)m * lda, B, ldb, c);
    }
}

/* --------------------------------------------------------- dispatch */

void nn_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, int acc)
{
    if (M <= 0 || N <= 0)
        return;
    if (nn_kernel_use_blas(M, N, K))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb,
                    acc ? 1.0f : 0.0f, C, ldc);
    else
        nn_own_gemm_nn(M, N, K, A, lda, B, ldb, C, ldc, acc);
}

void nn_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, int acc)
{
    if (M <= 0 || N <= 0)
        return;
    if (nn_kernel_use_blas(M, N, K))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb,
                    acc ? 1.0f : 0.0f, C, ldc);
    else
        nn_own_gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, acc);
}

void nn_gemv(int M, int K, const float *A, int lda, const float *x, float *y, int acc)
{
    if (M <= 0)
        return;
    if (nn_kernel_get() == NN_KERNEL_BLAS)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, M, K, 1.0f, A, lda, x, 1, acc ? 1.0f : 0.0f, y,
                    1);
    else
        nn_own_gemv(M, K, A, lda, x, y, acc);
}

/* --------------------------------------------------------- frame window */

int nn_window_init(nn_window *w, int width, int hist, int max_n)
{
    memset(w, 0, sizeof *w);
    w->width = width;
    w->hist = hist;
    w->max_n = max_n;
    /* Room for one extra history's worth (or max_n) of frames, so the
     * history is moved to the front at most every max(hist, max_n) frames. */
    w->cap = hist + max_n + (hist > max_n ? hist : max_n);
    size_t n;
    if (nn_mul_size((size_t)w->cap, (size_t)width, &n) || !(w->buf = nn_falloc(n)))
        return err_set(OSCINE_E_NOMEM, "frame window of %d x %d floats", w->cap, width);
    return 0;
}

void nn_window_free(nn_window *w)
{
    nn_ffree(w->buf);
    w->buf = NULL;
}

void nn_window_reset(nn_window *w)
{
    memset(w->buf, 0, (size_t)w->cap * w->width * sizeof(float));
    w->pos = 0;
}

float *nn_window_append(nn_window *w, int n)
{
    if (w->pos + w->hist + n > w->cap) {
        memmove(w->buf, w->buf + (size_t)w->pos * w->width,
                (size_t)w->hist * w->width * sizeof(float));
        w->pos = 0;
    }
    return w->buf + (size_t)(w->pos + w->hist) * w->width;
}

float *nn_window_base(const nn_window *w)
{
    return w->buf + (size_t)w->pos * w->width;
}

void nn_window_advance(nn_window *w, int n)
{
    w->pos += n;
}
