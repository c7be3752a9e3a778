/* bench_nn.c - speed of the nn layers at the shapes of the shipped models,
 * read from their weights files (models/denoise-16k.osw, vocoder-16k.osw,
 * ddsp-violin.osw, or the same names in $OSCINE_MODEL_PATH): every layer of
 * each network with its channels, bins, kernels and frame rate as the model
 * code builds it (random weights: speed does not depend on their values).
 * For each shape, in the same run:
 *   naive  plain loops by the definition (scalar sums, no im2col),
 *   own    the layer with our hand-written kernels (NN_KERNEL_OWN),
 *   blas   the layer with im2col + OpenBLAS cblas_sgemm/sgemv, one thread
 *          (NN_KERNEL_BLAS),
 *   auto   the layer as shipped (NN_KERNEL_AUTO: the choice in kernels.c),
 * printing GFLOP/s (2 per multiply-add), the ratios own/naive and own/blas,
 * and the share of one core the layer takes in real time (x the times it
 * runs per frame). Each model ends with the sum of its layers and the whole
 * network as the model code runs it (activations and norms included).
 * `bench_nn quick` runs fewer repetitions. docs/performance.md discusses the
 * numbers. */
#include "blas_rerun.h"
#include "models/ddsp.h"
#include "models/denoise.h"
#include "models/vocoder.h"
#include "nn/kernels.h"
#include "nn/nn.h"
#include "nn/weights.h"
#include "oscine.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CPU time of this thread: the machines this runs on are often shared, and
 * time spent descheduled is not the kernel's. */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double min_time = 0.15; /* seconds per measurement */
static volatile float sink;

static float *rnd(size_t n, float scale)
{
    static uint64_t s = 12345;
    float *p = nn_falloc(n);
    if (!p) {
        fprintf(stderr, "bench_nn: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = ((float)((s >> 40) * (1.0 / 8388608.0)) - 1.0f) * scale;
    }
    return p;
}

/* Seconds per call of fn(ctx): calls in batches long enough (>= 2 ms) that
 * reading the clock costs nothing, batches until min_time has passed, the
 * best batch of 3 rounds. */
static double timeit(void (*fn)(void *), void *ctx)
{
    long batch = 1;
    for (;;) { /* warm caches and size the batch */
        double t0 = now();
        for (long i = 0; i < batch; i++)
            fn(ctx);
        if (now() - t0 >= 2e-3 || batch >= (1L << 24))
            break;
        batch *= 2;
    }
    double best = INFINITY;
    for (int rep = 0; rep < 3; rep++) {
        double start = now(), t;
        do {
            double t0 = now();
            for (long i = 0; i < batch; i++)
                fn(ctx);
            t = now() - t0;
            if (t / batch < best)
                best = t / batch;
        } while (now() - start < min_time / 3);
    }
    return best;
}

/* ------------------------------------------------------------ cases */

typedef struct bench_case {
    char name[64];
    double flops;        /* per call */
    double frames;       /* time frames per call (for the real-time column) */
    double frame_s;      /* seconds of audio per frame */
    void (*naive)(void *); /* NULL: none (a whole network) */
    void (*layer)(void *); /* runs the layer in whatever mode is set */
    void *ctx;
    int count;           /* times the model runs this layer per frame */
} bench_case;

static bench_case mk_case(const char *name, double flops, double frames, double frame_s,
                          void (*naive)(void *), void (*layer)(void *), void *ctx)
{
    bench_case b = {"", flops, frames, frame_s, naive, layer, ctx, 1};
    snprintf(b.name, sizeof b.name, "%s", name);
    return b;
}

/* -- conv (real or complex), any dims, n frames per call */
typedef struct conv_ctx {
    nn_conv_config c;
    int planes, n, Fout;
    nn_conv *l;
    float *w, *b, *x, *xi, *y, *yi, *xpad, *xpadi;
} conv_ctx;

static void conv_naive(void *p)
{
    conv_ctx *k = p;
    const nn_conv_config *c = &k->c;
    int cig = c->in_ch / c->groups, cog = c->out_ch / c->groups, P = k->planes;
    int Fp = c->freq + c->pf_lo + c->pf_hi, hist = (c->kt - 1) * c->dt;
    size_t wn = (size_t)c->out_ch * cig * c->kf * c->kt;
    /* xpad: [hist + n][P][in_ch][Fp] zero history, zero freq padding */
    for (int j = 0; j < k->n; j++)
        for (int po = 0; po < P; po++)
            for (int o = 0; o < c->out_ch; o++)
                for (int fo = 0; fo < k->Fout; fo++) {
                    int g = o / cog;
                    float s = k->b ? k->b[o] : 0.0f;
                    for (int pi = 0; pi < P; pi++) {
                        const float *w = k->w + (po == pi ? 0 : wn);
                        float sign = (po == 0 && pi == 1) ? -1.0f : 1.0f;
                        for (int ci = 0; ci < cig; ci++)
                            for (int kf = 0; kf < c->kf; kf++)
                                for (int kt = 0; kt < c->kt; kt++) {
                                    size_t row = (size_t)(j + kt * c->dt) * P + pi;
                                    float xv = k->xpad[(row * c->in_ch + g * cig + ci) * Fp +
                                                       fo * c->sf + kf * c->df];
                                    s += sign *
                                         w[(((size_t)o * cig + ci) * c->kf + kf) * c->kt + kt] *
                                         xv;
                                }
                    }
                    k->y[(((size_t)j * P + po) * c->out_ch + o) * k->Fout + fo] = s;
                }
    (void)hist;
    sink = k->y[0];
}

static void conv_layer(void *p)
{
    conv_ctx *k = p;
    if (k->planes == 2)
        nn_conv_process_c(k->l, k->x, k->xi, k->n, k->y, k->yi);
    else
        nn_conv_process(k->l, k->x, k->n, k->y);
    sink = k->y[0];
}

/* The layers read 0 as 1 for these; the naive loops need them spelt out. */
static void ones(int *const *f, int n)
{
    for (int i = 0; i < n; i++)
        if (!*f[i])
            *f[i] = 1;
}

static bench_case conv_case(const char *name, nn_conv_config c, int planes, int n,
                            double frame_s)
{
    int *const f[] = { &c.groups, &c.freq, &c.kf, &c.sf, &c.df, &c.kt, &c.st, &c.dt };
    ones(f, 8);
    conv_ctx *k = calloc(1, sizeof *k);
    c.max_frames = n;
    k->c = c;
    k->planes = planes;
    k->n = n;
    int cig = c.in_ch / c.groups;
    size_t wn = (size_t)c.out_ch * cig * c.kf * c.kt;
    k->w = rnd(2 * wn, 0.05f);
    k->b = rnd(c.out_ch, 0.1f);
    size_t in = (size_t)n * c.in_ch * c.freq;
    k->x = rnd(in, 1);
    k->xi = rnd(in, 1);
    int e = planes == 2 ? nn_cconv_create(&k->l, &c, k->w, k->b, k->w + wn, k->b)
                        : nn_conv_create(&k->l, &c, k->w, k->b);
    if (e) {
        fprintf(stderr, "bench_nn: %s: %d\n", name, e);
        exit(1);
    }
    k->Fout = nn_conv_out_freq(k->l);
    int Fp = c.freq + c.pf_lo + c.pf_hi, hist = (c.kt - 1) * c.dt;
    k->xpad = rnd((size_t)(hist + n) * planes * c.in_ch * Fp, 1);
    size_t out = (size_t)n * planes * c.out_ch * k->Fout;
    k->y = nn_falloc(out);
    k->yi = nn_falloc(out);
    double macs = (double)n * c.out_ch * cig * c.kf * c.kt * k->Fout * planes * planes;
    return mk_case(name, 2 * macs, n, frame_s, conv_naive, conv_layer, k);
}

/* -- transposed conv, per frame */
typedef struct convt_ctx {
    nn_convt_config c;
    int planes, n, Fout;
    nn_convt *l;
    float *w, *b, *x, *xi, *y, *yi, *acc;
} convt_ctx;

static void convt_naive(void *p)
{
    convt_ctx *k = p;
    const nn_convt_config *c = &k->c;
    int cig = c->in_ch / c->groups, cog = c->out_ch / c->groups, P = k->planes;
    size_t wn = (size_t)c->in_ch * cog * c->kf * c->kt;
    size_t plane = (size_t)c->out_ch * k->Fout;
    /* scatter each input frame into kt output frames (acc [kt][P][out][Fout]) */
    for (int j = 0; j < k->n; j++) {
        memset(k->acc, 0, (size_t)c->kt * P * plane * sizeof(float));
        for (int po = 0; po < P; po++)
            for (int pi = 0; pi < P; pi++) {
                const float *w = k->w + (po == pi ? 0 : wn);
                float sign = (po == 0 && pi == 1) ? -1.0f : 1.0f;
                const float *x = (pi ? k->xi : k->x) + (size_t)j * c->in_ch * c->freq;
                for (int i = 0; i < c->in_ch; i++)
                    for (int fi = 0; fi < c->freq; fi++)
                        for (int o = 0; o < cog; o++)
                            for (int kf = 0; kf < c->kf; kf++) {
                                int fo = fi * c->sf + kf * c->df - c->pf;
                                if (fo < 0 || fo >= k->Fout)
                                    continue;
                                for (int kt = 0; kt < c->kt; kt++)
                                    k->acc[((size_t)kt * P + po) * plane +
                                           (size_t)((i / cig) * cog + o) * k->Fout + fo] +=
                                        sign *
                                        w[(((size_t)i * cog + o) * c->kf + kf) * c->kt + kt] *
                                        x[(size_t)i * c->freq + fi];
                            }
            }
    }
    sink = k->acc[0];
}

static void convt_layer(void *p)
{
    convt_ctx *k = p;
    if (k->planes == 2)
        nn_convt_process_c(k->l, k->x, k->xi, k->n, k->y, k->yi);
    else
        nn_convt_process(k->l, k->x, k->n, k->y);
    sink = k->y[0];
}

static bench_case convt_case(const char *name, nn_convt_config c, int planes, int n,
                             double frame_s)
{
    int *const f[] = { &c.groups, &c.freq, &c.kf, &c.sf, &c.df, &c.kt, &c.st, &c.dt };
    ones(f, 8);
    convt_ctx *k = calloc(1, sizeof *k);
    c.max_frames = n;
    k->c = c;
    k->planes = planes;
    k->n = n;
    int cog = c.out_ch / c.groups;
    size_t wn = (size_t)c.in_ch * cog * c.kf * c.kt;
    k->w = rnd(2 * wn, 0.05f);
    k->b = rnd(c.out_ch, 0.1f);
    k->x = rnd((size_t)n * c.in_ch * c.freq, 1);
    k->xi = rnd((size_t)n * c.in_ch * c.freq, 1);
    int e = planes == 2 ? nn_cconvt_create(&k->l, &c, k->w, k->b, k->w + wn, k->b)
                        : nn_convt_create(&k->l, &c, k->w, k->b);
    if (e) {
        fprintf(stderr, "bench_nn: %s: %d\n", name, e);
        exit(1);
    }
    k->Fout = nn_convt_out_freq(k->l);
    size_t out = (size_t)nn_convt_max_out(k->l, n) * c.out_ch * k->Fout;
    k->y = nn_falloc(out);
    k->yi = nn_falloc(out);
    k->acc = nn_falloc((size_t)c.kt * planes * c.out_ch * k->Fout);
    double macs = (double)n * c.in_ch * cog * c.kf * c.kt * c.freq * planes * planes;
    return mk_case(name, 2 * macs, n, frame_s, convt_naive, convt_layer, k);
}

/* -- linear */
typedef struct lin_ctx {
    int in, out, n;
    nn_linear *l;
    float *w, *b, *x, *y;
} lin_ctx;

static void lin_naive(void *p)
{
    lin_ctx *k = p;
    for (int t = 0; t < k->n; t++)
        for (int o = 0; o < k->out; o++) {
            float s = k->b[o];
            for (int i = 0; i < k->in; i++)
                s += k->w[(size_t)o * k->in + i] * k->x[(size_t)t * k->in + i];
            k->y[(size_t)t * k->out + o] = s;
        }
    sink = k->y[0];
}

static void lin_layer(void *p)
{
    lin_ctx *k = p;
    nn_linear_process(k->l, k->x, k->n, k->y);
    sink = k->y[0];
}

static bench_case lin_case(const char *name, int in, int out, int n, double frame_s)
{
    lin_ctx *k = calloc(1, sizeof *k);
    k->in = in;
    k->out = out;
    k->n = n;
    k->w = rnd((size_t)in * out, 0.05f);
    k->b = rnd(out, 0.1f);
    k->x = rnd((size_t)n * in, 1);
    k->y = nn_falloc((size_t)n * out);
    nn_linear_config c = { .in = in, .out = out, .bias = 1, .max_frames = n };
    if (nn_linear_create(&k->l, &c, k->w, k->b))
        exit(1);
    return mk_case(name, 2.0 * n * in * out, n, frame_s, lin_naive, lin_layer, k);
}

/* -- GRU */
typedef struct gru_ctx {
    int in, H, n;
    nn_gru *l;
    float *wih, *whh, *bih, *bhh, *x, *y, *h, *g;
} gru_ctx;

static void gru_naive(void *p)
{
    gru_ctx *k = p;
    int H = k->H, ni = k->in;
    for (int t = 0; t < k->n; t++) {
        for (int j = 0; j < 3 * H; j++) {
            float a = k->bih[j], c = k->bhh[j];
            for (int i = 0; i < ni; i++)
                a += k->wih[(size_t)j * ni + i] * k->x[(size_t)t * ni + i];
            for (int i = 0; i < H; i++)
                c += k->whh[(size_t)j * H + i] * k->h[i];
            k->g[j] = a;
            k->g[3 * H + j] = c;
        }
        for (int j = 0; j < H; j++) {
            float r = 1 / (1 + expf(-(k->g[j] + k->g[3 * H + j])));
            float z = 1 / (1 + expf(-(k->g[H + j] + k->g[4 * H + j])));
            float nv = tanhf(k->g[2 * H + j] + r * k->g[5 * H + j]);
            k->h[j] = (k->h[j] - nv) * z + nv;
        }
        memcpy(k->y + (size_t)t * H, k->h, H * sizeof(float));
    }
    sink = k->y[0];
}

static void gru_layer(void *p)
{
    gru_ctx *k = p;
    nn_gru_process(k->l, k->x, k->n, k->y);
    sink = k->y[0];
}

static bench_case gru_case(const char *name, int in, int H, int n, double frame_s)
{
    gru_ctx *k = calloc(1, sizeof *k);
    k->in = in;
    k->H = H;
    k->n = n;
    k->wih = rnd((size_t)3 * H * in, 0.05f);
    k->whh = rnd((size_t)3 * H * H, 0.05f);
    k->bih = rnd(3 * H, 0.1f);
    k->bhh = rnd(3 * H, 0.1f);
    k->x = rnd((size_t)n * in, 1);
    k->y = nn_falloc((size_t)n * H);
    k->h = nn_falloc(H);
    k->g = nn_falloc(6 * H);
    nn_rnn_config c = { .input = in, .hidden = H, .bias = 1, .max_frames = n };
    if (nn_gru_create(&k->l, &c, k->wih, k->whh, k->bih, k->bhh))
        exit(1);
    return mk_case(name, 2.0 * n * 3 * H * (in + H), n, frame_s, gru_naive, gru_layer, k);
}

/* -- FSMN block (the denoiser's, on [re | im] features), per frame: along
 * frequency (seq bins of one frame) or along time (a window of past
 * projections) */
typedef struct fsmn_ctx {
    nn_fsmn_config c;
    int taps;
    nn_fsmn *l;
    float *w1, *b1, *wp, *wm, *x, *y, *h, *p, *hist; /* hist: [taps][dim] past p */
} fsmn_ctx;

static void fsmn_naive(void *q)
{
    fsmn_ctx *k = q;
    const int D = k->c.dim, Hd = k->c.hidden, S = k->c.seq, T = k->taps, dl = k->c.dilation;
    /* x, y: [dim][seq] along frequency, [dim] along time (seq 1) */
    for (int s = 0; s < S; s++) {
        for (int h = 0; h < Hd; h++) {
            float a = k->b1[h];
            for (int d = 0; d < D; d++)
                a += k->w1[(size_t)h * D + d] * k->x[(size_t)d * S + s];
            k->h[h] = a > 0 ? a : 0;
        }
        for (int d = 0; d < D; d++) {
            float a = 0;
            for (int h = 0; h < Hd; h++)
                a += k->wp[(size_t)d * Hd + h] * k->h[h];
            k->p[(size_t)d * S + s] = a;
        }
    }
    if (k->c.axis == NN_FSMN_FREQ) {
        for (int d = 0; d < D; d++)
            for (int s = 0; s < S; s++) {
                const float *p = k->p + (size_t)d * S;
                float m = k->x[(size_t)d * S + s] + p[s];
                for (int j = 0; j < T; j++) {
                    int at = s + (j - (k->c.lorder - 1)) * dl;
                    if (at >= 0 && at < S)
                        m += k->wm[(size_t)d * T + j] * p[at];
                }
                k->y[(size_t)d * S + s] = m;
            }
    } else {
        memmove(k->hist, k->hist + D, sizeof(float) * (size_t)(T - 1) * D);
        memcpy(k->hist + (size_t)(T - 1) * D, k->p, sizeof(float) * D);
        for (int d = 0; d < D; d++) {
            float m = k->x[d] + k->p[d];
            for (int j = 0; j < T; j++)
                m += k->wm[(size_t)d * T + j] * k->hist[(size_t)j * D + d];
            k->y[d] = m;
        }
    }
    sink = k->y[0];
}

static void fsmn_layer(void *q)
{
    fsmn_ctx *k = q;
    nn_fsmn_process(k->l, k->x, 1, k->y);
    sink = k->y[0];
}

static bench_case fsmn_case(const char *name, nn_fsmn_config c, double frame_s)
{
    fsmn_ctx *k = calloc(1, sizeof *k);
    if (!c.seq)
        c.seq = 1;
    if (!c.dilation)
        c.dilation = 1;
    c.max_frames = 1;
    k->c = c;
    k->taps = c.lorder + c.rorder;
    k->w1 = rnd((size_t)c.hidden * c.dim, 0.05f);
    k->b1 = rnd(c.hidden, 0.1f);
    k->wp = rnd((size_t)c.dim * c.hidden, 0.05f);
    k->wm = rnd((size_t)c.dim * k->taps, 0.1f);
    k->x = rnd((size_t)c.dim * c.seq, 1);
    k->y = nn_falloc((size_t)c.dim * c.seq);
    k->h = nn_falloc(c.hidden);
    k->p = nn_falloc((size_t)c.dim * c.seq);
    k->hist = rnd((size_t)k->taps * c.dim, 1);
    if (nn_fsmn_create(&k->l, &c, k->w1, k->b1, k->wp, k->wm)) {
        fprintf(stderr, "bench_nn: %s: %s\n", name, oscine_last_error());
        exit(1);
    }
    double macs = (double)c.seq * (2.0 * c.dim * c.hidden + (double)c.dim * k->taps);
    return mk_case(name, 2 * macs, 1, frame_s, fsmn_naive, fsmn_layer, k);
}

/* -- raw products: own kernel against OpenBLAS at one size */
typedef struct raw_ctx {
    int kind; /* 0 gemv, 1 gemm_nt */
    int M, N, K, blas;
    float *A, *B, *C;
} raw_ctx;

static void raw_run(void *p)
{
    raw_ctx *k = p;
    switch (k->kind) {
    case 0:
        if (k->blas)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, k->M, k->K, 1.0f, k->A, k->K, k->B, 1,
                        0.0f, k->C, 1);
        else
            nn_own_gemv(k->M, k->K, k->A, k->K, k->B, k->C, 0);
        break;
    default:
        if (k->blas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k->M, k->N, k->K, 1.0f, k->A,
                        k->K, k->B, k->K, 0.0f, k->C, k->N);
        else
            nn_own_gemm_nt(k->M, k->N, k->K, k->A, k->K, k->B, k->K, k->C, k->N, 0);
    }
    sink = k->C[0];
}

static void raw_row(const char *what, int kind, int M, int N, int K)
{
    raw_ctx k = { kind, M, N, K, 0, rnd((size_t)M * K, 1), rnd((size_t)K * N, 1),
                  nn_falloc((size_t)M * N) };
    double t_own = timeit(raw_run, &k);
    k.blas = 1;
    double t_blas = timeit(raw_run, &k);
    double fl = 2.0 * M * N * K;
    int picks = kind == 0 ? nn_kernel_use_blas_gemv(M, K) : nn_kernel_use_blas(M, N, K);
    printf("%-10s %5d %5d %5d %10.3f %8.2f %8.2f %7.2f   %s\n", what, M, N, K, fl * 1e-6,
           fl / t_own * 1e-9, fl / t_blas * 1e-9, t_blas / t_own, picks ? "blas" : "own");
    nn_ffree(k.A);
    nn_ffree(k.B);
    nn_ffree(k.C);
}

static void raw_table(void)
{
    printf("\nraw products: GFLOP/s, own kernel vs OpenBLAS (1 thread), same run\n");
    printf("%-10s %5s %5s %5s %10s %8s %8s %7s   %s\n", "product", "M", "N", "K", "MFLOP",
           "own", "blas", "own/bl", "auto");
    static const int gv[][2] = { { 16, 16 },   { 32, 32 },   { 64, 64 },   { 128, 128 },
                                 { 256, 256 }, { 512, 512 }, { 768, 256 }, { 513, 512 },
                                 { 512, 3584 } };
    for (size_t i = 0; i < sizeof gv / sizeof *gv; i++)
        raw_row("gemv", 0, gv[i][0], 1, gv[i][1]);
    /* rows x weights^T: bins x out channels (2-D convs, FSMN along
     * frequency), frames x out (batched 1-D layers) */
    static const int nt[][3] = { { 2, 16, 16 },     { 4, 16, 16 },     { 4, 64, 64 },
                                 { 16, 64, 64 },    { 10, 8, 40 },     { 20, 16, 80 },
                                 { 32, 40, 640 },   { 64, 40, 1280 },  { 40, 32, 640 },
                                 { 8, 128, 128 },   { 16, 256, 256 },  { 100, 256, 512 },
                                 { 100, 512, 512 }, { 100, 512, 3584 } };
    for (size_t i = 0; i < sizeof nt / sizeof *nt; i++)
        raw_row("gemm_nt", 1, nt[i][0], nt[i][1], nt[i][2]);
}

/* ------------------------------------------- the shipped models' shapes */

#define MAX_CASES 64
static bench_case cases[MAX_CASES];
static int nc;

static void push(bench_case b, int count)
{
    if (nc == MAX_CASES) {
        fprintf(stderr, "bench_nn: too many layers\n");
        exit(1);
    }
    b.count = count;
    cases[nc++] = b;
}

/* models/NAME (or $OSCINE_MODEL_PATH/NAME) opened, or NULL with a note. */
static osw_file *open_model(const char *name, char *path, size_t cap)
{
    const char *env = getenv("OSCINE_MODEL_PATH");
    const char *dirs[2] = {env, "models"};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i] || !dirs[i][0])
            continue;
        snprintf(path, cap, "%s/%s", dirs[i], name);
        osw_file *w;
        if (access(path, R_OK) == 0 && osw_open(&w, path) == 0)
            return w;
    }
    printf("(%s: not in $OSCINE_MODEL_PATH or ./models, its layers skipped)\n", name);
    return NULL;
}

static int dim_of(const osw_file *w, const char *name, int d)
{
    int i = osw_tensor_find(w, name);
    const char *nm;
    int nd;
    const int64_t *sh;
    if (i < 0 || osw_tensor_info(w, i, &nm, &nd, &sh) || d >= nd) {
        fprintf(stderr, "bench_nn: %s: no tensor '%s'\n", osw_path(w), name);
        exit(1);
    }
    return (int)sh[d];
}

static int meta_int(const osw_file *w, const char *key)
{
    int v;
    if (osw_meta_int(w, key, 0, 1 << 20, &v)) {
        fprintf(stderr, "bench_nn: %s\n", oscine_last_error());
        exit(1);
    }
    return v;
}

/* -- whole networks, one frame (or chunk) per call, as the models run */
typedef struct net_ctx {
    denoise_net *dn;
    vocoder_net *voc;
    ddsp_decoder *dd;
    int chunk;
    float *in, *out;
} net_ctx;

static void denoise_whole(void *p)
{
    net_ctx *k = p;
    denoise_net_frame(k->dn, k->in, k->out);
    sink = k->out[0];
}

static void vocoder_whole(void *p)
{
    net_ctx *k = p;
    vocoder_net_process(k->voc, k->in, k->chunk, k->out);
    sink = k->out[0];
}

static void ddsp_whole(void *p)
{
    net_ctx *k = p;
    ddsp_decoder_frame(k->dd, 220.0f, -30.0f, k->out);
    sink = k->out[0];
}

/* The denoiser of denoise.c: complex layers as real ones on [re | im]
 * (channels and FSMN widths doubled), encoders down the bins with stride 2,
 * FSMN along frequency after each but the last, FSMN along time in the
 * bottleneck, decoders (path + skip in) back up. */
static void denoise_cases(const osw_file *w, double *macs_s)
{
    const double fs = (double)meta_int(w, "hop") / meta_int(w, "sample_rate");
    int ch[9] = {1}, n, kf, fo, to, dil[4], nd, one;
    if (osw_meta_int_list(w, "channels", 1, 4096, ch + 1, 8, &n) ||
        osw_meta_int_list(w, "kernel_freq", 1, 99, &kf, 1, &one) ||
        osw_meta_int_list(w, "fsmn_freq_order", 1, 99, &fo, 1, &one) ||
        osw_meta_int_list(w, "time_fsmn_order", 1, 999, &to, 1, &one) ||
        osw_meta_int_list(w, "time_fsmn_dilations", 1, 99, dil, 4, &nd)) {
        fprintf(stderr, "bench_nn: %s\n", oscine_last_error());
        exit(1);
    }
    int fd[9] = {DENOISE_BINS};
    for (int i = 0; i < n; i++)
        fd[i + 1] = (fd[i] + 2 * (kf / 2) - kf) / 2 + 1;
    char nm[64], t[64];
    for (int i = 0; i < n; i++) {
        nn_conv_config c = {.dims = 2, .in_ch = 2 * ch[i], .out_ch = 2 * ch[i + 1], .freq = fd[i],
                            .kf = kf, .sf = 2, .pf_lo = kf / 2, .pf_hi = kf / 2, .kt = 2,
                            .pt_left = 1, .bias = 1};
        snprintf(nm, sizeof nm, "enc%d conv2d %d->%d F%d k(%d,2) s2", i, c.in_ch, c.out_ch,
                 fd[i], kf);
        push(conv_case(nm, c, 1, 1, fs), 1);
        if (i < n - 1) {
            snprintf(t, sizeof t, "enc%d.fsmn.l1.wr", i);
            nn_fsmn_config f = {.axis = NN_FSMN_FREQ, .dim = 2 * ch[i + 1],
                                .hidden = 2 * dim_of(w, t, 0), .lorder = fo + 1, .rorder = fo,
                                .seq = fd[i + 1]};
            snprintf(nm, sizeof nm, "enc%d fsmn freq %d h%d F%d", i, f.dim, f.hidden, fd[i + 1]);
            push(fsmn_case(nm, f, fs), 1);
        }
    }
    for (int j = 0; j < nd; j++) {
        snprintf(t, sizeof t, "tfsmn%d.l1.wr", j);
        nn_fsmn_config f = {.axis = NN_FSMN_TIME, .dim = 2 * ch[n] * fd[n],
                            .hidden = 2 * dim_of(w, t, 0), .lorder = to, .dilation = dil[j]};
        snprintf(nm, sizeof nm, "tfsmn%d time %d h%d order %d d%d", j, f.dim, f.hidden, to, dil[j]);
        push(fsmn_case(nm, f, fs), 1);
    }
    for (int j = 0; j < n; j++) {
        int i = n - 1 - j, cin = 2 * ch[i + 1], cout = i > 0 ? ch[i] : 1;
        nn_convt_config c = {.dims = 2, .in_ch = 2 * cin, .out_ch = 2 * cout, .freq = fd[i + 1],
                             .kf = kf, .sf = 2, .pf = kf / 2, .kt = 2, .st = 1, .bias = 1};
        snprintf(nm, sizeof nm, "dec%d convt2d %d->%d F%d k(%d,2) s2", j, c.in_ch, c.out_ch,
                 fd[i + 1], kf);
        push(convt_case(nm, c, 1, 1, fs), 1);
        if (j < n - 1) {
            snprintf(t, sizeof t, "dec%d.fsmn.l1.wr", j);
            nn_fsmn_config f = {.axis = NN_FSMN_FREQ, .dim = 2 * cout,
                                .hidden = 2 * dim_of(w, t, 0), .lorder = fo + 1, .rorder = fo,
                                .seq = fd[i]};
            snprintf(nm, sizeof nm, "dec%d fsmn freq %d h%d F%d", j, f.dim, f.hidden, fd[i]);
            push(fsmn_case(nm, f, fs), 1);
        }
    }
    const char *m = osw_meta(w, "macs_per_second");
    *macs_s = m ? atof(m) : 0;
}

/* The vocoder of vocoder.c: two ConvNeXt predictors (input conv with the
 * lookahead, blocks of depthwise conv + two pointwise layers, linear heads),
 * chunk frames per call (1 live, 64 in `oscine vocode`). */
static void vocoder_cases(const osw_file *w, int chunk)
{
    const double fs = (double)meta_int(w, "hop") / meta_int(w, "sample_rate");
    const int C = meta_int(w, "dim"), H = meta_int(w, "hidden"), ki = meta_int(w, "kernel_in");
    const int kd = meta_int(w, "kernel_dw"), la = meta_int(w, "lookahead");
    const int nb = meta_int(w, "amp_blocks") + meta_int(w, "pha_blocks");
    int heads = 0;
    char t[64], nm[64];
    for (int p = 0; p < 2; p++)
        for (int j = 0;; j++) {
            snprintf(t, sizeof t, "%s.heads.%d.weight", p ? "pha" : "amp", j);
            if (osw_tensor_find(w, t) < 0)
                break;
            heads++;
        }
    const int bins = dim_of(w, "amp.heads.0.weight", 0);
    nn_conv_config ic = {.dims = 1, .in_ch = VOC_MELS, .out_ch = C, .kt = ki,
                         .pt_left = ki - 1 - la, .pt_right = la, .bias = 1};
    snprintf(nm, sizeof nm, "in conv1d %d->%d k%d, %d fr", VOC_MELS, C, ki, chunk);
    push(conv_case(nm, ic, 1, chunk, fs), 2);
    nn_conv_config dc = {.dims = 1, .in_ch = C, .out_ch = C, .groups = C, .kt = kd,
                         .pt_left = kd - 1, .bias = 1};
    snprintf(nm, sizeof nm, "dw conv1d %d k%d, %d fr", C, kd, chunk);
    push(conv_case(nm, dc, 1, chunk, fs), nb);
    snprintf(nm, sizeof nm, "pw1 linear %d->%d, %d fr", C, H, chunk);
    push(lin_case(nm, C, H, chunk, fs), nb);
    snprintf(nm, sizeof nm, "pw2 linear %d->%d, %d fr", H, C, chunk);
    push(lin_case(nm, H, C, chunk, fs), nb);
    snprintf(nm, sizeof nm, "head linear %d->%d, %d fr", C, bins, chunk);
    push(lin_case(nm, C, bins, chunk, fs), heads);
}

/* The DDSP decoder of ddsp.c, one frame per call: its linear layers and
 * the GRU, each with its shape from the file. */
static void ddsp_cases(const osw_file *w)
{
    const double fs = 1.0 / meta_int(w, "frame_rate");
    const int from = nc;
    char nm[64];
    for (int i = 0; i < osw_tensor_count(w); i++) {
        const char *name;
        int nd;
        const int64_t *sh;
        if (osw_tensor_info(w, i, &name, &nd, &sh) || nd != 2)
            continue;
        size_t len = strlen(name);
        if (len > 7 && !strcmp(name + len - 7, ".weight") && strncmp(name, "gru.", 4)) {
            int j = from; /* a shape already there (f0 and loudness MLPs): count it again */
            while (j < nc && !(cases[j].layer == lin_layer &&
                               ((lin_ctx *)cases[j].ctx)->in == (int)sh[1] &&
                               ((lin_ctx *)cases[j].ctx)->out == (int)sh[0]))
                j++;
            if (j < nc) {
                cases[j].count++;
                continue;
            }
            snprintf(nm, sizeof nm, "%.*s %d->%d", (int)(len - 7), name, (int)sh[1], (int)sh[0]);
            push(lin_case(nm, (int)sh[1], (int)sh[0], 1, fs), 1);
        }
    }
    const int G = dim_of(w, "gru.weight_hh_l0", 1), in = dim_of(w, "gru.weight_ih_l0", 1);
    snprintf(nm, sizeof nm, "gru %d->%d", in, G);
    push(gru_case(nm, in, G, 1, fs), 1);
}

/* ---------------------------------------------------------------- main */

static void header(void)
{
    printf("%-40s %3s %8s %7s %7s %7s %7s %7s %7s %8s\n", "layer (per call)", "x", "MFLOP",
           "naive", "own", "blas", "auto", "own/nv", "own/bl", "auto %rt");
}

/* Times cases[from..nc) and prints their rows; returns the sum of their
 * share of real time (auto mode, count included). */
static double run_rows(int from)
{
    double sum = 0;
    for (int i = from; i < nc; i++) {
        bench_case *b = &cases[i];
        double t[4];
        t[0] = b->naive ? timeit(b->naive, b->ctx) : NAN;
        nn_kernel_set(NN_KERNEL_OWN);
        t[1] = timeit(b->layer, b->ctx);
        nn_kernel_set(NN_KERNEL_BLAS);
        t[2] = timeit(b->layer, b->ctx);
        nn_kernel_set(NN_KERNEL_AUTO);
        t[3] = timeit(b->layer, b->ctx);
        /* share of one core the layer takes in real time: seconds of CPU
         * per second of audio, times the layer runs per frame */
        double rt = b->count * t[3] / (b->frames * b->frame_s) * 100;
        sum += rt;
        if (b->flops > 0) {
            double g[4];
            for (int k = 0; k < 4; k++)
                g[k] = b->flops / t[k] * 1e-9;
            printf("%-40s %3d %8.3f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %8.3f\n", b->name,
                   b->count, b->flops * 1e-6, g[0], g[1], g[2], g[3], t[0] / t[1], t[2] / t[1], rt);
        } else { /* a whole network: ratios of its times, no naive loop */
            printf("%-40s %3d %8s %7s %7s %7s %7s %7s %7.2f %8.3f\n", b->name, b->count, "",
                   "", "", "", "", "", t[2] / t[1], rt);
        }
        fflush(stdout);
    }
    return sum;
}

static void sum_row(double sum)
{
    printf("%-40s %3s %8s %7s %7s %7s %7s %7s %7s %8.3f\n", "  sum of the layers above", "",
           "", "", "", "", "", "", "", sum);
}

int main(int argc, char **argv)
{
    bench_blas_rerun(argv);
    if (argc > 1 && !strcmp(argv[1], "quick"))
        min_time = 0.03;
    nn_blas_init();
    printf("nn layers at the shipped models' shapes (from their .osw files): GFLOP/s (2 per "
           "multiply-add), best of 3 for every row, OpenBLAS %s\n", openblas_get_config());
    char path[4096];
    osw_file *w;

    if ((w = open_model("denoise-16k.osw", path, sizeof path))) {
        double macs_s;
        printf("\ndenoiser %s: %d frames/s\n", path,
               meta_int(w, "sample_rate") / meta_int(w, "hop"));
        header();
        int from = nc;
        denoise_cases(w, &macs_s);
        double sum = run_rows(from);
        sum_row(sum);
        net_ctx *k = calloc(1, sizeof *k);
        if (denoise_net_create(&k->dn, w)) {
            fprintf(stderr, "bench_nn: %s\n", oscine_last_error());
            return 1;
        }
        k->in = rnd(2 * DENOISE_BINS, 0.1f);
        k->out = nn_falloc(2 * DENOISE_BINS);
        from = nc;
        push(mk_case("whole network (denoise_net_frame)", 0, 1,
                     (double)meta_int(w, "hop") / meta_int(w, "sample_rate"), NULL,
                     denoise_whole, k), 1);
        run_rows(from);
        printf("(the file's macs_per_second: %.0f M multiply-adds per second of audio)\n",
               macs_s * 1e-6);
        osw_close(w);
    }
    if ((w = open_model("vocoder-16k.osw", path, sizeof path))) {
        const int chunks[2] = {1, 64};
        for (int c = 0; c < 2; c++) {
            printf("\nvocoder %s: %d frames/s, %d frame%s per call (%s)\n", path,
                   meta_int(w, "sample_rate") / meta_int(w, "hop"), chunks[c], chunks[c] > 1 ? "s" : "",
                   chunks[c] > 1 ? "oscine vocode" : "live");
            header();
            int from = nc;
            vocoder_cases(w, chunks[c]);
            sum_row(run_rows(from));
            net_ctx *k = calloc(1, sizeof *k);
            if (vocoder_net_create(&k->voc, w, chunks[c])) {
                fprintf(stderr, "bench_nn: %s\n", oscine_last_error());
                return 1;
            }
            k->chunk = chunks[c];
            k->in = rnd((size_t)chunks[c] * VOC_MELS, 1);
            for (int i = 0; i < chunks[c] * VOC_MELS; i++)
                k->in[i] -= 5; /* log mel around e^-5 */
            k->out = nn_falloc((size_t)(chunks[c] + VOC_MAX_LOOKAHEAD) * VOC_FRAME);
            from = nc;
            push(mk_case("whole network (vocoder_net_process)", 0, chunks[c],
                         (double)meta_int(w, "hop") / meta_int(w, "sample_rate"), NULL,
                         vocoder_whole, k), 1);
            run_rows(from);
        }
        osw_close(w);
    }
    if ((w = open_model("ddsp-violin.osw", path, sizeof path))) {
        printf("\nDDSP decoder %s: %d frames/s\n", path, meta_int(w, "frame_rate"));
        header();
        int from = nc;
        ddsp_cases(w);
        sum_row(run_rows(from));
        ddsp_model *m;
        net_ctx *k = calloc(1, sizeof *k);
        if (ddsp_model_load(&m, path) || ddsp_decoder_create(&k->dd, m)) {
            fprintf(stderr, "bench_nn: %s\n", oscine_last_error());
            return 1;
        }
        k->out = nn_falloc(DDSP_MAX_OUT);
        from = nc;
        push(mk_case("whole network (ddsp_decoder_frame)", 0, 1, 1.0 / meta_int(w, "frame_rate"),
                     NULL, ddsp_whole, k), 1);
        run_rows(from);
        osw_close(w);
    }
    printf("\nx: times the model runs the layer per frame. own/nv > 1: our kernel beats the "
           "naive loop; own/bl > 1: ours beats OpenBLAS.\nauto %%rt: percent of one core the "
           "layer (x its count) needs in real time, auto mode.\n");
    raw_table();
    return 0;
}
