/* bench_nn.c - speed of the nn layers' hot kernels at the shapes the models
 * use. For each shape, in the same run:
 *   naive  plain loops by the definition (scalar sums, no im2col),
 *   own    the layer with our hand-written kernels (NN_KERNEL_OWN),
 *   blas   the layer with im2col + OpenBLAS cblas_sgemm/sgemv, one thread
 *          (NN_KERNEL_BLAS),
 *   auto   the layer as shipped (NN_KERNEL_AUTO: the choice in kernels.c),
 * printing GFLOP/s (2 per multiply-add) and the ratios own/naive and
 * own/blas, and the real-time budget each layer takes per frame.
 * `bench_nn quick` runs fewer repetitions. docs/performance.md discusses the
 * numbers. */
#include "blas_rerun.h"
#include "nn/kernels.h"
#include "nn/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    const char *name;
    double flops;        /* per call */
    double frames;       /* time frames per call (for the real-time column) */
    double frame_s;      /* seconds of audio per frame */
    void (*naive)(void *);
    void (*layer)(void *); /* runs the layer in whatever mode is set */
    void *ctx;
} bench_case;

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
    bench_case b = { name, 2 * macs, n, frame_s, conv_naive, conv_layer, k };
    return b;
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
    bench_case b = { name, 2 * macs, n, frame_s, convt_naive, convt_layer, k };
    return b;
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
    bench_case b = { name, 2.0 * n * in * out, n, frame_s, lin_naive, lin_layer, k };
    return b;
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
    bench_case b = { name, 2.0 * n * 3 * H * (in + H), n, frame_s, gru_naive, gru_layer, k };
    return b;
}

/* -- complex FSMN along time (the denoiser's bottleneck), per frame */
typedef struct fsmn_ctx {
    int dim, hid, taps, n;
    nn_fsmn *l;
    float *w, *x, *xi, *y, *yi, *hbuf, *pbuf;
} fsmn_ctx;

static void fsmn_naive(void *p)
{
    fsmn_ctx *k = p;
    int D = k->dim, Hd = k->hid;
    /* four blocks: linear, relu, projection, memory over the last taps
     * projections (here the same p repeated: the cost is what counts) */
    for (int rep = 0; rep < 4; rep++)
        for (int t = 0; t < k->n; t++) {
            const float *x = (rep & 1 ? k->xi : k->x) + (size_t)t * D;
            for (int h = 0; h < Hd; h++) {
                float s = k->w[h];
                for (int d = 0; d < D; d++)
                    s += k->w[(size_t)h * D + d] * x[d];
                k->hbuf[h] = s > 0 ? s : 0;
            }
            for (int d = 0; d < D; d++) {
                float s = 0;
                for (int h = 0; h < Hd; h++)
                    s += k->w[(size_t)d * Hd + h] * k->hbuf[h];
                k->pbuf[d] = s;
            }
            for (int d = 0; d < D; d++) {
                float m = x[d] + k->pbuf[d];
                for (int j = 0; j < k->taps; j++)
                    m += k->w[(size_t)j * D + d] * k->pbuf[d];
                k->y[(size_t)t * D + d] = m;
            }
        }
    sink = k->y[0];
}

static void fsmn_layer(void *p)
{
    fsmn_ctx *k = p;
    nn_fsmn_process_c(k->l, k->x, k->xi, k->n, k->y, k->yi);
    sink = k->y[0];
}

static bench_case fsmn_case(const char *name, int dim, int hid, int lorder, int n,
                            double frame_s)
{
    fsmn_ctx *k = calloc(1, sizeof *k);
    k->dim = dim;
    k->hid = hid;
    k->taps = lorder;
    k->n = n;
    size_t big = (size_t)dim * hid > (size_t)dim * lorder ? (size_t)dim * hid : (size_t)dim * lorder;
    k->w = rnd(big, 0.05f);
    k->x = rnd((size_t)n * dim, 1);
    k->xi = rnd((size_t)n * dim, 1);
    k->y = nn_falloc((size_t)n * dim);
    k->yi = nn_falloc((size_t)n * dim);
    k->hbuf = nn_falloc(hid);
    k->pbuf = nn_falloc(dim);
    nn_fsmn_config c = { .axis = NN_FSMN_TIME, .dim = dim, .hidden = hid, .lorder = lorder,
                         .max_frames = n };
    const float *t[4] = { k->w, k->w, k->w, k->w };
    if (nn_cfsmn_create(&k->l, &c, t, t))
        exit(1);
    double macs = 4.0 * n * (2.0 * dim * hid + (double)dim * lorder);
    bench_case b = { name, 2 * macs, n, frame_s, fsmn_naive, fsmn_layer, k };
    return b;
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

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    bench_blas_rerun(argv);
    if (argc > 1 && !strcmp(argv[1], "quick"))
        min_time = 0.03;
    nn_blas_init();
    const double frcrn_hop = 0.020, apnet_hop = 0.005, ddsp_hop = 0.020;
    bench_case cases[32];
    int nc = 0;

    /* denoiser encoder / decoder layers (causal narrow FRCRN), per frame */
    nn_conv_config enc32 = { .dims = 2, .in_ch = 32, .out_ch = 32, .freq = 80, .kf = 5,
                             .sf = 2, .pf_lo = 2, .pf_hi = 2, .kt = 2, .pt_left = 1, .bias = 1 };
    nn_conv_config enc64 = enc32;
    enc64.in_ch = enc64.out_ch = 64;
    cases[nc++] = conv_case("cconv2d 32->32 F80 k(5,2) s(2,1)", enc32, 2, 1, frcrn_hop);
    cases[nc++] = conv_case("cconv2d 64->64 F80 k(5,2) s(2,1)", enc64, 2, 1, frcrn_hop);
    nn_conv_config enc1 = enc32;
    enc1.in_ch = 1;
    enc1.freq = 161;
    cases[nc++] = conv_case("cconv2d 1->32 F161 k(5,2) s(2,1)", enc1, 2, 1, frcrn_hop);
    nn_convt_config dec = { .dims = 2, .in_ch = 64, .out_ch = 32, .freq = 40, .kf = 5,
                            .sf = 2, .pf = 2, .opf = 1, .kt = 2, .bias = 1 };
    cases[nc++] = convt_case("cconvt2d 64->32 F40 k(5,2) s(2,1)", dec, 2, 1, frcrn_hop);
    cases[nc++] = fsmn_case("cfsmn time 256 h256 order 20", 256, 256, 20, 1, frcrn_hop);

    /* vocoder (APNet): conv1d over frames, 5 ms hop */
    nn_conv_config v7 = { .dims = 1, .in_ch = 512, .out_ch = 512, .kt = 7, .pt_left = 3,
                          .pt_right = 3, .bias = 1 };
    cases[nc++] = conv_case("conv1d 512->512 k7, 1 frame", v7, 1, 1, apnet_hop);
    cases[nc++] = conv_case("conv1d 512->512 k7, 100 frames", v7, 1, 100, apnet_hop);
    nn_conv_config v3 = v7;
    v3.kt = 3;
    v3.dt = 5;
    v3.pt_left = v3.pt_right = 5;
    cases[nc++] = conv_case("conv1d 512->512 k3 d5, 100 frames", v3, 1, 100, apnet_hop);
    nn_conv_config vin = v7;
    vin.in_ch = 80;
    cases[nc++] = conv_case("conv1d 80->512 k7, 100 frames", vin, 1, 100, apnet_hop);
    nn_conv_config vout = v7;
    vout.out_ch = 513;
    cases[nc++] = conv_case("conv1d 512->513 k7, 100 frames", vout, 1, 100, apnet_hop);

    /* DDSP decoder: GRU 256 and the dense layers, 20 ms frames */
    cases[nc++] = gru_case("gru 512->256, 1 frame", 512, 256, 1, ddsp_hop);
    cases[nc++] = gru_case("gru 512->256, 100 frames", 512, 256, 100, ddsp_hop);
    cases[nc++] = lin_case("linear 512->513, 1 frame", 512, 513, 1, ddsp_hop);
    cases[nc++] = lin_case("linear 512->513, 100 frames", 512, 513, 100, ddsp_hop);

    printf("nn kernels: GFLOP/s (2 per multiply-add), best of 3, OpenBLAS %s\n",
           openblas_get_config());
    printf("%-36s %8s %7s %7s %7s %7s %7s %7s %8s\n", "layer (per call)", "MFLOP", "naive",
           "own", "blas", "auto", "own/nv", "own/bl", "auto %rt");
    for (int i = 0; i < nc; i++) {
        bench_case *b = &cases[i];
        double t[4];
        t[0] = timeit(b->naive, b->ctx);
        nn_kernel_set(NN_KERNEL_OWN);
        t[1] = timeit(b->layer, b->ctx);
        nn_kernel_set(NN_KERNEL_BLAS);
        t[2] = timeit(b->layer, b->ctx);
        nn_kernel_set(NN_KERNEL_AUTO);
        t[3] = timeit(b->layer, b->ctx);
        double g[4];
        for (int k = 0; k < 4; k++)
            g[k] = b->flops / t[k] * 1e-9;
        /* share of one core the layer takes in real time: seconds of CPU
         * per second of audio */
        double rt = t[3] / (b->frames * b->frame_s) * 100;
        printf("%-36s %8.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %8.3f\n", b->name,
               b->flops * 1e-6, g[0], g[1], g[2], g[3], t[0] / t[1], t[2] / t[1], rt);
        fflush(stdout);
    }
    printf("own/nv > 1: our kernel beats the naive loop; own/bl > 1: ours beats OpenBLAS.\n"
           "auto %%rt: percent of one core the layer needs in real time (auto mode).\n");
    raw_table();
    return 0;
}
