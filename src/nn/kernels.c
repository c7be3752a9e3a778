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

/* ----------------------------------------- OpenBLAS's kernel set */

/* OpenBLAS (DYNAMIC_ARCH) picks its kernels from the CPU model when it loads.
 * 0.3.21 (Debian 12) does not know newer CPUs and then falls back to its
 * Prescott kernels (SSE3): on an Emerald Rapids Xeon (family 6, model 207)
 * sgemm ran 3-6 x and sgemv 5 x slower than with its Cooperlake kernels, and
 * the denoiser took 0.052 of real time instead of 0.030. Its kernel sets by
 * the instructions they use: 0 older than AVX, 1 AVX, 3 AVX2 + FMA, 4
 * AVX-512, 5 AVX-512 with BF16. A name not listed is left alone. */
static const struct {
    const char *name;
    int level;
} blas_cores[] = {
    {"Prescott", 0}, {"Core2", 0}, {"Penryn", 0}, {"Dunnington", 0}, {"Nehalem", 0},
    {"Atom", 0}, {"Sandybridge", 1}, {"Haswell", 3}, {"Zen", 3}, {"SkylakeX", 4},
    {"Cooperlake", 5}, {"SapphireRapids", 5},
};

const char *nn_blas_coretype_for(const char *current, int cpu_level)
{
    static const char *const best[] = {NULL, NULL, NULL, "Haswell", "SkylakeX", "Cooperlake"};
    if (!current || cpu_level < 3 || cpu_level > 5)
        return NULL;
    for (size_t i = 0; i < sizeof blas_cores / sizeof blas_cores[0]; i++)
        if (!strcmp(current, blas_cores[i].name))
            return blas_cores[i].level < cpu_level ? best[cpu_level] : NULL;
    return NULL;
}

int nn_cpu_level(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vl");
    if (avx512 && __builtin_cpu_supports("avx512bf16"))
        return 5;
    if (avx512)
        return 4;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 3;
    if (__builtin_cpu_supports("avx"))
        return 1;
#endif
    return 0;
}

const char *nn_blas_corename(void)
{
    return openblas_get_corename();
}

const char *nn_blas_better_coretype(void)
{
    return nn_blas_coretype_for(openblas_get_corename(), nn_cpu_level());
}

/* Set once in blas_init_once, read by the kernel choice (any thread, after a
 * layer's create has published the layer). */
static atomic_int blas_generic;

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_init_once(void)
{
    /* One thread: the audio thread must not wait on OpenBLAS workers.
     * Then one product large enough to take OpenBLAS's normal (buffered)
     * path, so its buffer pool is mapped here and not on the audio thread. */
    enum { W = 192 };
    openblas_set_num_threads(1);
    atomic_store_explicit(&blas_generic, nn_blas_better_coretype() != NULL, memory_order_relaxed);
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

int nn_blas_is_generic(void)
{
    nn_blas_init();
    return atomic_load_explicit(&blas_generic, memory_order_relaxed);
}

/* Products of at least these many multiply-adds run on OpenBLAS in AUTO
 * mode, smaller ones on our loops. bench_nn's raw table decides them: on the
 * machines measured so far (docs/performance.md) OpenBLAS's sgemm (B
 * transposed) and sgemv were faster at every size down to 16 x 16, so both
 * are 0. Raise them where a CPU or BLAS says otherwise. */
#define BLAS_MIN_MACS 0.0
#define BLAS_GEMV_MIN_MACS 0.0

/* With OpenBLAS on a kernel set older than the CPU (nn_blas_better_coretype:
 * a process that could not set OPENBLAS_CORETYPE before the library loaded,
 * such as a plugin host), our AVX2/AVX-512 loops beat its Prescott kernels on
 * every sgemv from 64 x 64 up (1.2-3.8 x) and on sgemm with an inner
 * dimension of 128 or more (1.4-2.1 x), and lose below (bench_nn, Emerald
 * Rapids Xeon). The choice depends on the layer's shape only, so a run is
 * repeatable. */
#define GENERIC_OWN_MIN_K 128
#define GENERIC_OWN_GEMV_MIN_MACS 4096.0

int nn_kernel_use_blas(int M, int N, int K)
{
    nn_kernel_mode m = nn_kernel_get();
    if (m == NN_KERNEL_BLAS)
        return 1;
    if (m == NN_KERNEL_OWN)
        return 0;
    if (atomic_load_explicit(&blas_generic, memory_order_relaxed))
        return K < GENERIC_OWN_MIN_K;
    return (double)M * N * K >= BLAS_MIN_MACS;
}

int nn_kernel_use_blas_gemv(int M, int K)
{
    nn_kernel_mode m = nn_kernel_get();
    if (m == NN_KERNEL_BLAS)
        return 1;
    if (m == NN_KERNEL_OWN)
        return 0;
    if (atomic_load_explicit(&blas_generic, memory_order_relaxed))
        return (double)M * K < GENERIC_OWN_GEMV_MIN_MACS;
    return (double)M * K >= BLAS_GEMV_MIN_MACS;
}

/* ------------------------------------------------------- own kernels */

/* The two entry points below are compiled once per x86-64 level and the
 * best for the CPU is picked when the library is loaded (an ifunc resolved
 * by the dynamic loader, never on the audio thread): a baseline build then
 * runs AVX2+FMA or AVX-512 loops where the CPU has them. The helpers they
 * call are forced inline so that each clone has its own copy of them.
 * NN_NO_CLONES turns this off. */
#define NN_INLINE static inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NN_NO_CLONES)
#define NN_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define NN_CLONES
#endif

/* Lanes of partial sums in a dot product: independent accumulators the
 * compiler maps onto vector registers (without -ffast-math it may not
 * reorder one running sum). Every dot product in the OWN path goes through
 * the same lane order, so results do not depend on batching. */
#define LANES 16

NN_INLINE float lanes_sum(float *acc)
{
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

NN_INLINE float dot(const float *restrict a, const float *restrict b, int n)
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

NN_CLONES void nn_own_gemv(int M, int K, const float *A, int lda, const float *x, float *y,
                           int acc)
{
    for (int m = 0; m < M; m++) {
        float d = dot(A + (size_t)m * lda, x, K);
        y[m] = acc ? y[m] + d : d;
    }
}

/* Two rows of A against four rows of B: eight dot products sharing their
 * loads (2 + 4 loads per 8 vector multiply-adds), lane for lane the same
 * arithmetic as dot(). */
NN_INLINE void dot_2x4(const float *restrict a0, const float *restrict a1,
                       const float *restrict b0, const float *restrict b1,
                       const float *restrict b2, const float *restrict b3, int n,
                       float *restrict out0, float *restrict out1)
{
    float c[2][4][LANES] = { { { 0 } } };
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float x0 = a0[i + l], x1 = a1[i + l];
            float y0 = b0[i + l], y1 = b1[i + l], y2 = b2[i + l], y3 = b3[i + l];
            c[0][0][l] += x0 * y0;
            c[0][1][l] += x0 * y1;
            c[0][2][l] += x0 * y2;
            c[0][3][l] += x0 * y3;
            c[1][0][l] += x1 * y0;
            c[1][1][l] += x1 * y1;
            c[1][2][l] += x1 * y2;
            c[1][3][l] += x1 * y3;
        }
    for (int l = 0; i + l < n; l++) {
        float x0 = a0[i + l], x1 = a1[i + l];
        float y0 = b0[i + l], y1 = b1[i + l], y2 = b2[i + l], y3 = b3[i + l];
        c[0][0][l] += x0 * y0;
        c[0][1][l] += x0 * y1;
        c[0][2][l] += x0 * y2;
        c[0][3][l] += x0 * y3;
        c[1][0][l] += x1 * y0;
        c[1][1][l] += x1 * y1;
        c[1][2][l] += x1 * y2;
        c[1][3][l] += x1 * y3;
    }
    for (int j = 0; j < 4; j++) {
        out0[j] = lanes_sum(c[0][j]);
        out1[j] = lanes_sum(c[1][j]);
    }
}

NN_CLONES void nn_own_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B,
                              int ldb, float *C, int ldc, int acc)
{
    /* Weight rows (B) in blocks that stay in L2 while every frame (row of A)
     * passes over them, two frames by four weight rows at a time. */
    size_t rowbytes = (size_t)K * sizeof(float);
    int jb = rowbytes ? (int)((256 * 1024) / rowbytes) & ~3 : N;
    if (jb < 4)
        jb = 4;
    for (int j0 = 0; j0 < N; j0 += jb) {
        int j1 = j0 + jb < N ? j0 + jb : N;
        int i = 0;
        for (; i + 2 <= M; i += 2) {
            const float *a0 = A + (size_t)i * lda, *a1 = a0 + lda;
            float *c0 = C + (size_t)i * ldc, *c1 = c0 + ldc;
            int j = j0;
            for (; j + 4 <= j1; j += 4) {
                const float *b = B + (size_t)j * ldb;
                float d0[4], d1[4];
                dot_2x4(a0, a1, b, b + ldb, b + 2 * (size_t)ldb, b + 3 * (size_t)ldb, K, d0, d1);
                for (int r = 0; r < 4; r++) {
                    c0[j + r] = acc ? c0[j + r] + d0[r] : d0[r];
                    c1[j + r] = acc ? c1[j + r] + d1[r] : d1[r];
                }
            }
            for (; j < j1; j++) {
                float e0 = dot(a0, B + (size_t)j * ldb, K), e1 = dot(a1, B + (size_t)j * ldb, K);
                c0[j] = acc ? c0[j] + e0 : e0;
                c1[j] = acc ? c1[j] + e1 : e1;
            }
        }
        for (; i < M; i++)
            for (int j = j0; j < j1; j++) {
                float d = dot(A + (size_t)i * lda, B + (size_t)j * ldb, K);
                float *c = C + (size_t)i * ldc + j;
                *c = acc ? *c + d : d;
            }
    }
}

/* --------------------------------------------------------- dispatch */

void nn_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, int acc)
{
    if (M <= 0 || N <= 0)
        return;
    if (M == 1) {
        nn_gemv(N, K, B, ldb, A, C, acc);
        return;
    }
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
    if (nn_kernel_use_blas_gemv(M, K))
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
