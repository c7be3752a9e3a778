/* conv.c - Conv1d/Conv2d, real and complex, streaming along time.
 *
 * One engine for every case: a frame window holds the last (kt-1)*dt input
 * frames, each padded along frequency when it arrives, and each output frame
 * is an im2col gather of its taps, one row per output bin, followed by one
 * product weights x rows^T per group ([out][kc] x [Fout][kc]^T = [out][Fout],
 * the frame's own layout). A complex convolution is the same product with a
 * block weight [[Wr, -Wi], [Wi, Wr]] over the stacked planes (xr, xi), so it
 * costs one product of twice the size instead of four small ones. When each
 * frame has one bin (Conv1d), outputs of a whole call are gathered as rows
 * and computed by one product, rows x weights^T = [frames][out]. Every
 * product has the transposed-B form (see kernels.h: OpenBLAS's untransposed
 * small-matrix path allocates).
 *
 * A real depthwise convolution (one input and one output channel per group)
 * skips both: each output is a dot product of kf * kt taps read straight from
 * the window (the vocoder's ConvNeXt blocks: 160 groups of 7 taps, where 160
 * gathers and products per frame cost more than the arithmetic).
 *
 * Weights are copied at create: [group][out plane][out_ch/groups][kc] with
 * kc = planes * (in_ch/groups) * kf * kt in the order (plane, ci, kf, kt),
 * PyTorch's own order within a plane. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/nn.h"

struct nn_conv {
    nn_conv_config c;  /* with defaults filled in */
    int planes;        /* 1 real, 2 complex */
    int G, cin_g, cout_g;
    int F, Fp, Fout;   /* input bins, padded bins, output bins */
    int kc;            /* columns of one group's weight matrix */
    int hist;          /* (kt-1)*dt frames of past */
    int wait;          /* new frames to take before the next output's last tap */
    int batched;       /* Fout == 1: outputs of a call form one product */
    int depthwise;     /* real, one input and one output channel per group */
    float *wt;         /* depthwise, one bin (Conv1d): weights as [kt][out_ch], or NULL */
    float *w;          /* [G][planes][cout_g][kc] */
    float *b;          /* [planes][out_ch] or NULL */
    float *col;        /* im2col rows: batched [max_out][G][kc]; else [Fout][kc]; depthwise: NULL */
    nn_window win;     /* frames [planes][in_ch][Fp] */
};

static int conv_fill_defaults(nn_conv_config *c, const nn_conv_config *in)
{
    *c = *in;
    int *ones[] = { &c->groups, &c->freq, &c->kf, &c->sf, &c->df,
                    &c->kt, &c->st, &c->dt, &c->max_frames };
    for (size_t i = 0; i < sizeof ones / sizeof *ones; i++)
        if (*ones[i] == 0)
            *ones[i] = 1;
    if (c->dims != 1 && c->dims != 2)
        return err_set(OSCINE_E_ARG, "conv: dims %d (need 1 or 2)", c->dims);
    if (c->dims == 1 && (c->freq != 1 || c->kf != 1 || c->sf != 1 || c->df != 1 ||
                         c->pf_lo || c->pf_hi))
        return err_set(OSCINE_E_ARG, "conv1d: frequency fields must be unset");
    return 0;
}

/* Every size the engine multiplies stays below 2^24 so products of three
 * fit comfortably in size_t and dimensions in int. */
#define DIM_MAX (1 << 24)

int nn_check_dim(const char *what, const char *field, int v, int lo)
{
    if (v < lo || v > DIM_MAX)
        return err_set(OSCINE_E_ARG, "%s: %s = %d out of range %d..%d", what, field, v, lo,
                       DIM_MAX);
    return 0;
}

int nn_pad_index(int i, int n, nn_pad_mode mode)
{
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case NN_PAD_REFLECT:
        return i < 0 ? -i : 2 * (n - 1) - i;
    case NN_PAD_REPLICATE:
        return i < 0 ? 0 : n - 1;
    case NN_PAD_CIRCULAR:
        return i < 0 ? i + n : i - n;
    default:
        return -1;
    }
}

void nn_pad_row(float *restrict dst, const float *restrict src, int n, int lo, int hi,
                nn_pad_mode mode)
{
    for (int i = 0; i < lo; i++) {
        int s = nn_pad_index(i - lo, n, mode);
        dst[i] = s < 0 ? 0.0f : src[s];
    }
    memcpy(dst + lo, src, (size_t)n * sizeof(float));
    for (int i = 0; i < hi; i++) {
        int s = nn_pad_index(n + i, n, mode);
        dst[lo + n + i] = s < 0 ? 0.0f : src[s];
    }
}

static int conv_validate(const nn_conv_config *c, int planes)
{
    const char *what = planes == 2 ? "complex conv" : "conv";
    int e;
    if ((e = nn_check_dim(what, "in_ch", c->in_ch, 1)) || (e = nn_check_dim(what, "out_ch", c->out_ch, 1)) ||
        (e = nn_check_dim(what, "groups", c->groups, 1)) || (e = nn_check_dim(what, "freq", c->freq, 1)) ||
        (e = nn_check_dim(what, "kf", c->kf, 1)) || (e = nn_check_dim(what, "sf", c->sf, 1)) ||
        (e = nn_check_dim(what, "df", c->df, 1)) || (e = nn_check_dim(what, "kt", c->kt, 1)) ||
        (e = nn_check_dim(what, "st", c->st, 1)) || (e = nn_check_dim(what, "dt", c->dt, 1)) ||
        (e = nn_check_dim(what, "pf_lo", c->pf_lo, 0)) || (e = nn_check_dim(what, "pf_hi", c->pf_hi, 0)) ||
        (e = nn_check_dim(what, "pt_left", c->pt_left, 0)) ||
        (e = nn_check_dim(what, "pt_right", c->pt_right, 0)) ||
        (e = nn_check_dim(what, "max_frames", c->max_frames, 1)))
        return e;
    if (c->in_ch % c->groups || c->out_ch % c->groups)
        return err_set(OSCINE_E_ARG, "%s: groups %d does not divide in_ch %d and out_ch %d",
                       what, c->groups, c->in_ch, c->out_ch);
    if ((unsigned)c->pad_mode >= NN_PAD_MODE_COUNT)
        return err_set(OSCINE_E_ARG, "%s: unknown pad_mode %d", what, (int)c->pad_mode);
    if (c->pad_mode == NN_PAD_REFLECT && (c->pf_lo >= c->freq || c->pf_hi >= c->freq))
        return err_set(OSCINE_E_ARG, "%s: reflect padding %d/%d needs more than that many bins (%d)",
                       what, c->pf_lo, c->pf_hi, c->freq);
    if (c->pad_mode == NN_PAD_CIRCULAR && (c->pf_lo > c->freq || c->pf_hi > c->freq))
        return err_set(OSCINE_E_ARG, "%s: circular padding %d/%d exceeds the %d bins", what,
                       c->pf_lo, c->pf_hi, c->freq);
    long span_f = (long)c->df * (c->kf - 1) + 1;
    if (c->freq + c->pf_lo + c->pf_hi < span_f)
        return err_set(OSCINE_E_ARG, "%s: kernel spans %ld bins, padded input has %d", what,
                       span_f, c->freq + c->pf_lo + c->pf_hi);
    long hist = (long)c->dt * (c->kt - 1);
    if (hist > DIM_MAX || c->pt_left > hist)
        return err_set(OSCINE_E_ARG, "%s: pt_left %d must be 0..(kt-1)*dt = %ld", what,
                       c->pt_left, hist);
    return 0;
}

static int conv_make(nn_conv **out, const nn_conv_config *cfg, int planes, const float *w_re,
                     const float *b_re, const float *w_im, const float *b_im)
{
    *out = NULL;
    nn_conv_config c;
    int e = conv_fill_defaults(&c, cfg);
    if (e || (e = conv_validate(&c, planes)))
        return e;
    if (!w_re || (planes == 2 && !w_im) || (c.bias && (!b_re || (planes == 2 && !b_im))))
        return err_set(OSCINE_E_ARG, "conv: weight or bias array is NULL");
    nn_conv *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(OSCINE_E_NOMEM, "conv layer");
    l->c = c;
    l->planes = planes;
    l->G = c.groups;
    l->cin_g = c.in_ch / c.groups;
    l->cout_g = c.out_ch / c.groups;
    l->F = c.freq;
    l->Fp = c.freq + c.pf_lo + c.pf_hi;
    l->Fout = (l->Fp - c.df * (c.kf - 1) - 1) / c.sf + 1;
    l->kc = planes * l->cin_g * c.kf * c.kt;
    l->hist = c.dt * (c.kt - 1);
    l->batched = l->Fout == 1 && l->F == 1;
    l->depthwise = planes == 1 && l->cin_g == 1 && l->cout_g == 1;

    size_t wn, coln, width;
    int max_out = nn_conv_max_out(l, c.max_frames);
    if (nn_mul_size((size_t)c.out_ch * planes, (size_t)l->kc, &wn) ||
        nn_mul_size((size_t)planes * c.in_ch, (size_t)l->Fp, &width) || width > INT32_MAX ||
        nn_mul_size(l->batched ? (size_t)max_out * l->G : (size_t)l->Fout, (size_t)l->kc, &coln)) {
        free(l);
        return err_set(OSCINE_E_ARG, "conv: sizes overflow");
    }
    const int by_tap = l->depthwise && l->Fp == 1; /* depthwise_frame's Conv1d loop */
    l->w = nn_falloc(wn);
    if (!l->depthwise)
        l->col = nn_falloc(coln);
    if (by_tap)
        l->wt = nn_falloc(wn);
    if (c.bias)
        l->b = nn_falloc((size_t)planes * c.out_ch);
    if (!l->w || (!l->depthwise && !l->col) || (c.bias && !l->b) || (by_tap && !l->wt) ||
        nn_window_init(&l->win, (int)width, l->hist, c.max_frames)) {
        nn_conv_destroy(l);
        return err_set(OSCINE_E_NOMEM, "conv: weights and buffers (%zu floats)", wn + coln);
    }

    /* Block weights: plane (po, pi) takes +Wr, -Wi, +Wi, +Wr. */
    size_t kin = (size_t)l->cin_g * c.kf * c.kt; /* one plane's columns */
    for (int g = 0; g < l->G; g++)
        for (int po = 0; po < planes; po++)
            for (int o = 0; o < l->cout_g; o++) {
                float *dst = l->w + (((size_t)g * planes + po) * l->cout_g + o) * l->kc;
                size_t oc = (size_t)g * l->cout_g + o;
                for (int pi = 0; pi < planes; pi++) {
                    const float *src = (po == pi ? w_re : w_im) + oc * kin;
                    float sign = (po == 0 && pi == 1) ? -1.0f : 1.0f;
                    for (size_t k = 0; k < kin; k++)
                        dst[pi * kin + k] = sign * src[k];
                }
            }
    if (l->wt)
        for (int o = 0; o < c.out_ch; o++)
            for (int k = 0; k < c.kt; k++)
                l->wt[(size_t)k * c.out_ch + o] = l->w[(size_t)o * c.kt + k];
    if (c.bias)
        nn_fold_bias(l->b, c.out_ch, planes, b_re, b_im);
    nn_blas_init();
    nn_conv_reset(l);
    *out = l;
    return 0;
}

void nn_fold_bias(float *b, int out_ch, int planes, const float *b_re, const float *b_im)
{
    for (int o = 0; o < out_ch; o++) {
        if (planes == 1) {
            b[o] = b_re[o];
        } else {
            b[o] = b_re[o] - b_im[o];
            b[out_ch + o] = b_re[o] + b_im[o];
        }
    }
}

int nn_conv_create(nn_conv **out, const nn_conv_config *cfg, const float *weight,
                   const float *bias)
{
    return conv_make(out, cfg, 1, weight, bias, NULL, NULL);
}

int nn_cconv_create(nn_conv **out, const nn_conv_config *cfg, const float *w_re,
                    const float *b_re, const float *w_im, const float *b_im)
{
    return conv_make(out, cfg, 2, w_re, b_re, w_im, b_im);
}

/* Fetch "<prefix>.weight" (and ".bias") with the conv's PyTorch shape. */
int nn_conv_fetch(const nn_conv_config *cfg, int transposed, const osw_file *w,
                  const char *prefix, const float **weight, const float **bias)
{
    nn_conv_config c;
    int e = conv_fill_defaults(&c, cfg);
    if (e)
        return e;
    int64_t shape[4];
    int nd = 0;
    if (transposed) {
        shape[nd++] = c.in_ch;
        shape[nd++] = c.out_ch / c.groups;
    } else {
        shape[nd++] = c.out_ch;
        shape[nd++] = c.in_ch / c.groups;
    }
    if (c.dims == 2)
        shape[nd++] = c.kf;
    shape[nd++] = c.kt;
    if ((e = nn_fetch(w, prefix, "weight", nd, shape, weight)))
        return e;
    *bias = NULL;
    if (c.bias) {
        int64_t bs[1] = { c.out_ch };
        if ((e = nn_fetch(w, prefix, "bias", 1, bs, bias)))
            return e;
    }
    return 0;
}

int nn_conv_load(nn_conv **out, const nn_conv_config *cfg, const osw_file *w,
                 const char *prefix)
{
    const float *wt, *b;
    *out = NULL;
    int e = nn_conv_fetch(cfg, 0, w, prefix, &wt, &b);
    return e ? e : nn_conv_create(out, cfg, wt, b);
}

int nn_cconv_load(nn_conv **out, const nn_conv_config *cfg, const osw_file *w,
                  const char *prefix_re, const char *prefix_im)
{
    const float *wr, *br, *wi, *bi;
    *out = NULL;
    int e = nn_conv_fetch(cfg, 0, w, prefix_re, &wr, &br);
    if (!e)
        e = nn_conv_fetch(cfg, 0, w, prefix_im, &wi, &bi);
    return e ? e : nn_cconv_create(out, cfg, wr, br, wi, bi);
}

void nn_conv_destroy(nn_conv *l)
{
    if (!l)
        return;
    nn_ffree(l->w);
    nn_ffree(l->wt);
    nn_ffree(l->b);
    nn_ffree(l->col);
    nn_window_free(&l->win);
    free(l);
}

void nn_conv_reset(nn_conv *l)
{
    nn_window_reset(&l->win);
    l->wait = l->hist - l->c.pt_left;
}

int nn_conv_out_freq(const nn_conv *l)
{
    return l->Fout;
}

int nn_conv_latency(const nn_conv *l)
{
    return l->hist - l->c.pt_left;
}

int nn_conv_max_out(const nn_conv *l, int n)
{
    return (n + l->c.st - 1) / l->c.st;
}

/* Gather the taps of the output frame whose first tap is window row r,
 * group g: one row of kc values (weight-column order) per output bin, rows
 * `ld` floats apart. */
static void gather_frame(const nn_conv *l, const float *base, int r, int g, float *col,
                         size_t ld)
{
    const nn_conv_config *c = &l->c;
    size_t width = (size_t)l->win.width;
    int k = 0;
    for (int p = 0; p < l->planes; p++)
        for (int ci = 0; ci < l->cin_g; ci++) {
            size_t chan = ((size_t)p * c->in_ch + (size_t)g * l->cin_g + ci) * l->Fp;
            for (int kf = 0; kf < c->kf; kf++)
                for (int kt = 0; kt < c->kt; kt++, k++) {
                    const float *src = base + (size_t)(r + kt * c->dt) * width + chan +
                                       (size_t)kf * c->df;
                    for (int fo = 0; fo < l->Fout; fo++)
                        col[fo * ld + k] = src[(size_t)fo * c->sf];
                }
        }
}

/* Depthwise: output frame whose first tap is window row r, into y
 * ([out_ch][Fout]); taps summed in the weights' (kf, kt) order. */
static void depthwise_frame(const nn_conv *l, const float *base, int r, float *y)
{
    const nn_conv_config *c = &l->c;
    const size_t width = (size_t)l->win.width, K = (size_t)l->kc;
    if (l->wt) { /* Conv1d: a row holds one value per channel; tap by tap, across channels */
        for (int ch = 0; ch < c->out_ch; ch++)
            y[ch] = 0.0f;
        for (int kt = 0; kt < c->kt; kt++) {
            const float *restrict s = base + (size_t)(r + kt * c->dt) * width;
            const float *restrict w = l->wt + (size_t)kt * c->out_ch;
            for (int ch = 0; ch < c->out_ch; ch++)
                y[ch] += w[ch] * s[ch];
        }
        return;
    }
    for (int ch = 0; ch < c->out_ch; ch++) {
        const float *w = l->w + (size_t)ch * K;
        const float *src = base + (size_t)r * width + (size_t)ch * l->Fp;
        for (int fo = 0; fo < l->Fout; fo++) {
            const float *s = src + (size_t)fo * c->sf;
            float acc = 0.0f;
            for (int kf = 0, k = 0; kf < c->kf; kf++)
                for (int kt = 0; kt < c->kt; kt++, k++)
                    acc += w[k] * s[(size_t)kt * c->dt * width + (size_t)kf * c->df];
            y[(size_t)ch * l->Fout + fo] = acc;
        }
    }
}

/* Append n frames (x NULL: zeros) and compute every output they complete. */
static int conv_run(nn_conv *l, const float *const *x, int n, float *const *y)
{
    const nn_conv_config *c = &l->c;
    int P = l->planes, Fout = l->Fout;
    float *dst = nn_window_append(&l->win, n);
    for (int t = 0; t < n; t++)
        for (int p = 0; p < P; p++)
            for (int ci = 0; ci < c->in_ch; ci++) {
                float *row = dst + (((size_t)t * P + p) * c->in_ch + ci) * l->Fp;
                if (x)
                    nn_pad_row(row, x[p] + ((size_t)t * c->in_ch + ci) * l->F, l->F, c->pf_lo,
                               c->pf_hi, c->pad_mode);
                else
                    memset(row, 0, (size_t)l->Fp * sizeof(float));
            }
    const float *base = nn_window_base(&l->win);
    size_t out_frame = (size_t)c->out_ch * Fout;
    int nout = 0, r = l->wait;
    if (l->depthwise) {
        for (; r < n; r += c->st, nout++)
            depthwise_frame(l, base, r, y[0] + nout * out_frame);
    } else if (l->batched) {
        /* Rows: one per output frame, [G][kc] each. */
        size_t ld = (size_t)l->G * l->kc;
        for (; r < n; r += c->st, nout++)
            for (int g = 0; g < l->G; g++)
                gather_frame(l, base, r, g, l->col + nout * ld + (size_t)g * l->kc, ld);
        for (int g = 0; g < l->G; g++)
            for (int p = 0; p < P; p++)
                nn_gemm_nt(nout, l->cout_g, l->kc, l->col + (size_t)g * l->kc, (int)ld,
                           l->w + ((size_t)g * P + p) * l->cout_g * l->kc, l->kc,
                           y[p] + (size_t)g * l->cout_g, c->out_ch, 0);
    } else {
        for (; r < n; r += c->st, nout++)
            for (int g = 0; g < l->G; g++) {
                gather_frame(l, base, r, g, l->col, (size_t)l->kc);
                for (int p = 0; p < P; p++)
                    nn_gemm_nt(l->cout_g, Fout, l->kc,
                               l->w + ((size_t)g * P + p) * l->cout_g * l->kc, l->kc, l->col,
                               l->kc, y[p] + nout * out_frame + (size_t)g * l->cout_g * Fout,
                               Fout, 0);
            }
    }
    l->wait = r - n;
    nn_window_advance(&l->win, n);
    if (l->b)
        for (int p = 0; p < P; p++)
            for (int j = 0; j < nout; j++)
                for (int o = 0; o < c->out_ch; o++) {
                    float *v = y[p] + j * out_frame + (size_t)o * Fout;
                    float bv = l->b[p * c->out_ch + o];
                    for (int f = 0; f < Fout; f++)
                        v[f] += bv;
                }
    return nout;
}

static int conv_stream(nn_conv *l, const float *const *x, int n, float *const *y)
{
    if (n < 1 || n > l->c.max_frames)
        return err_set(OSCINE_E_ARG, "conv: %d frames (1..%d)", n, l->c.max_frames);
    return conv_run(l, x, n, y);
}

static int conv_drain(nn_conv *l, float *const *y)
{
    size_t out_frame = (size_t)l->c.out_ch * l->Fout;
    int total = 0;
    for (int left = l->c.pt_right; left > 0;) {
        int n = left < l->c.max_frames ? left : l->c.max_frames;
        float *yy[2] = { y[0] + total * out_frame, l->planes == 2 ? y[1] + total * out_frame : NULL };
        total += conv_run(l, NULL, n, yy);
        left -= n;
    }
    return total;
}

int nn_conv_process(nn_conv *l, const float *x, int n, float *y)
{
    if (l->planes != 1)
        return err_set(OSCINE_E_ARG, "conv: complex layer run with real data");
    return conv_stream(l, &x, n, &y);
}

int nn_conv_process_c(nn_conv *l, const float *xr, const float *xi, int n, float *yr, float *yi)
{
    if (l->planes != 2)
        return err_set(OSCINE_E_ARG, "conv: real layer run with complex data");
    const float *x[2] = { xr, xi };
    float *y[2] = { yr, yi };
    return conv_stream(l, x, n, y);
}

int nn_conv_drain(nn_conv *l, float *y)
{
    if (l->planes != 1)
        return err_set(OSCINE_E_ARG, "conv: complex layer drained as real");
    return conv_drain(l, &y);
}

int nn_conv_drain_c(nn_conv *l, float *yr, float *yi)
{
    if (l->planes != 2)
        return err_set(OSCINE_E_ARG, "conv: real layer drained as complex");
    float *y[2] = { yr, yi };
    return conv_drain(l, y);
}
