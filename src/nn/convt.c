/* convt.c - ConvTranspose1d/ConvTranspose2d, real and complex, streaming
 * along time.
 *
 * Each input frame is multiplied by the transposed weights once, giving its
 * contribution to every (output channel, kf, kt) tap; "col2im" then adds each
 * tap into the output bin it lands on, in a ring of time slots. After input
 * frame t no later input touches uncropped output frames before (t+1)*st, so
 * those st frames are complete and leave the ring. Complex layers use the
 * block weight [[Wr, -Wi], [Wi, Wr]] over the stacked planes as conv.c does.
 *
 * Weights are copied at create, transposed so that each group's product is
 * Z[R][F] = W[R][kin] * XT[F][kin]^T, R = (out_ch/groups)*kf*kt taps in
 * PyTorch's (o, kf, kt) order, kin = planes*(in_ch/groups), XT the frame's
 * stacked planes transposed to one row per bin: layout [group][out
 * plane][R][kin]. Every product has the transposed-B form (kernels.h). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/nn.h"

struct nn_convt {
    nn_convt_config c;
    int planes, G, cin_g, cout_g;
    int F, Fout;
    int R, kin;
    int H;           /* time slots in the ring: (kt-1)*dt + st */
    int head;        /* slot of the next input's first output frame */
    int skip;        /* uncropped frames still to drop at the start (pt) */
    int tail;        /* frames drain writes */
    int batched;     /* one bin in and out: a call's frames form one product */
    float *w;        /* [G][planes][R][kin] */
    float *b;        /* [planes][out_ch] or NULL */
    float *xs;       /* stacked input rows: batched [max][G][kin]; else [F][kin] */
    float *z;        /* taps: batched [max][planes][G][R]; else [R][F] */
    float *acc;      /* ring [H][planes][out_ch][Fout] */
};

static int convt_fill(nn_convt_config *c, const nn_convt_config *in, int planes)
{
    const char *what = planes == 2 ? "complex convt" : "convt";
    *c = *in;
    int *ones[] = { &c->groups, &c->freq, &c->kf, &c->sf, &c->df,
                    &c->kt, &c->st, &c->dt, &c->max_frames };
    for (size_t i = 0; i < sizeof ones / sizeof *ones; i++)
        if (*ones[i] == 0)
            *ones[i] = 1;
    if (c->dims != 1 && c->dims != 2)
        return err_set(OSCINE_E_ARG, "%s: dims %d (need 1 or 2)", what, c->dims);
    if (c->dims == 1 && (c->freq != 1 || c->kf != 1 || c->sf != 1 || c->df != 1 || c->pf ||
                         c->opf))
        return err_set(OSCINE_E_ARG, "%s (1-D): frequency fields must be unset", what);
    int e;
    if ((e = nn_check_dim(what, "in_ch", c->in_ch, 1)) || (e = nn_check_dim(what, "out_ch", c->out_ch, 1)) ||
        (e = nn_check_dim(what, "groups", c->groups, 1)) || (e = nn_check_dim(what, "freq", c->freq, 1)) ||
        (e = nn_check_dim(what, "kf", c->kf, 1)) || (e = nn_check_dim(what, "sf", c->sf, 1)) ||
        (e = nn_check_dim(what, "df", c->df, 1)) || (e = nn_check_dim(what, "pf", c->pf, 0)) ||
        (e = nn_check_dim(what, "opf", c->opf, 0)) || (e = nn_check_dim(what, "kt", c->kt, 1)) ||
        (e = nn_check_dim(what, "st", c->st, 1)) || (e = nn_check_dim(what, "dt", c->dt, 1)) ||
        (e = nn_check_dim(what, "pt", c->pt, 0)) || (e = nn_check_dim(what, "opt", c->opt, 0)) ||
        (e = nn_check_dim(what, "max_frames", c->max_frames, 1)))
        return e;
    if (c->in_ch % c->groups || c->out_ch % c->groups)
        return err_set(OSCINE_E_ARG, "%s: groups %d does not divide in_ch %d and out_ch %d",
                       what, c->groups, c->in_ch, c->out_ch);
    if (c->opf >= (c->sf > c->df ? c->sf : c->df) || c->opt >= (c->st > c->dt ? c->st : c->dt))
        return err_set(OSCINE_E_ARG, "%s: output padding must be smaller than stride or dilation",
                       what);
    long fout = (long)(c->freq - 1) * c->sf - 2L * c->pf + (long)c->df * (c->kf - 1) + c->opf + 1;
    if (fout < 1 || fout > (1 << 24))
        return err_set(OSCINE_E_ARG, "%s: %ld output bins", what, fout);
    long tail = (long)(c->kt - 1) * c->dt + c->opt + 1 - c->st - c->pt;
    if (tail < 0 || (long)(c->kt - 1) * c->dt > (1 << 24))
        return err_set(OSCINE_E_ARG,
                       "%s: time padding pt %d and stride st %d exceed the kernel's tail "
                       "((kt-1)*dt + opt + 1 = %ld)", what, c->pt, c->st,
                       (long)(c->kt - 1) * c->dt + c->opt + 1);
    return 0;
}

static int convt_make(nn_convt **out, const nn_convt_config *cfg, int planes,
                      const float *w_re, const float *b_re, const float *w_im, const float *b_im)
{
    *out = NULL;
    nn_convt_config c;
    int e = convt_fill(&c, cfg, planes);
    if (e)
        return e;
    if (!w_re || (planes == 2 && !w_im) || (c.bias && (!b_re || (planes == 2 && !b_im))))
        return err_set(OSCINE_E_ARG, "convt: weight or bias array is NULL");
    nn_convt *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(OSCINE_E_NOMEM, "convt layer");
    l->c = c;
    l->planes = planes;
    l->G = c.groups;
    l->cin_g = c.in_ch / c.groups;
    l->cout_g = c.out_ch / c.groups;
    l->F = c.freq;
    l->Fout = (c.freq - 1) * c.sf - 2 * c.pf + c.df * (c.kf - 1) + c.opf + 1;
    l->R = l->cout_g * c.kf * c.kt;
    l->kin = planes * l->cin_g;
    l->H = (c.kt - 1) * c.dt + c.st;
    l->tail = (c.kt - 1) * c.dt + c.opt + 1 - c.st - c.pt;
    l->batched = l->F == 1 && l->Fout == 1 && c.kf == 1 && c.pf == 0;

    size_t wn, xsn, zn, accn, frame_out;
    int ok = !nn_mul_size((size_t)planes * c.out_ch * c.kf * c.kt, (size_t)l->kin, &wn) &&
             !nn_mul_size((size_t)planes * c.out_ch, (size_t)l->Fout, &frame_out) &&
             !nn_mul_size(frame_out, (size_t)l->H, &accn);
    if (ok && l->batched)
        ok = !nn_mul_size((size_t)c.max_frames * l->G, (size_t)l->kin, &xsn) &&
             !nn_mul_size((size_t)c.max_frames * planes * l->G, (size_t)l->R, &zn);
    else if (ok)
        ok = !nn_mul_size((size_t)l->kin, (size_t)l->F, &xsn) &&
             !nn_mul_size((size_t)l->R, (size_t)l->F, &zn);
    if (!ok) {
        free(l);
        return err_set(OSCINE_E_ARG, "convt: sizes overflow");
    }
    l->w = nn_falloc(wn);
    l->xs = nn_falloc(xsn);
    l->z = nn_falloc(zn);
    l->acc = nn_falloc(accn);
    if (c.bias)
        l->b = nn_falloc((size_t)planes * c.out_ch);
    if (!l->w || !l->xs || !l->z || !l->acc || (c.bias && !l->b)) {
        nn_convt_destroy(l);
        return err_set(OSCINE_E_NOMEM, "convt: weights and buffers (%zu floats)",
                       wn + xsn + zn + accn);
    }
    /* PyTorch weight [in_ch][cout_g][kf][kt]: row r of group g's matrix,
     * column (pi, i) is W[g*cin_g + i][r] with the block sign. */
    for (int g = 0; g < l->G; g++)
        for (int po = 0; po < planes; po++)
            for (int r = 0; r < l->R; r++) {
                float *dst = l->w + (((size_t)g * planes + po) * l->R + r) * l->kin;
                for (int pi = 0; pi < planes; pi++) {
                    const float *src = po == pi ? w_re : w_im;
                    float sign = (po == 0 && pi == 1) ? -1.0f : 1.0f;
                    for (int i = 0; i < l->cin_g; i++)
                        dst[pi * l->cin_g + i] =
                            sign * src[((size_t)g * l->cin_g + i) * l->R + r];
                }
            }
    if (c.bias)
        nn_fold_bias(l->b, c.out_ch, planes, b_re, b_im);
    nn_blas_init();
    nn_convt_reset(l);
    *out = l;
    return 0;
}

int nn_convt_create(nn_convt **out, const nn_convt_config *cfg, const float *weight,
                    const float *bias)
{
    return convt_make(out, cfg, 1, weight, bias, NULL, NULL);
}

int nn_cconvt_create(nn_convt **out, const nn_convt_config *cfg, const float *w_re,
                     const float *b_re, const float *w_im, const float *b_im)
{
    return convt_make(out, cfg, 2, w_re, b_re, w_im, b_im);
}

/* The weight shape rule is conv's with in/out swapped; reuse its fetch. */
static int convt_fetch(const nn_convt_config *cfg, const osw_file *w, const char *prefix,
                       const float **weight, const float **bias)
{
    nn_conv_config cc = { .dims = cfg->dims, .in_ch = cfg->in_ch, .out_ch = cfg->out_ch,
                          .groups = cfg->groups, .kf = cfg->kf, .kt = cfg->kt,
                          .bias = cfg->bias };
    if (cfg->dims != 2)
        cc.kf = 0;
    return nn_conv_fetch(&cc, 1, w, prefix, weight, bias);
}

int nn_convt_load(nn_convt **out, const nn_convt_config *cfg, const osw_file *w,
                  const char *prefix)
{
    const float *wt, *b;
    *out = NULL;
    int e = convt_fetch(cfg, w, prefix, &wt, &b);
    return e ? e : nn_convt_create(out, cfg, wt, b);
}

int nn_cconvt_load(nn_convt **out, const nn_convt_config *cfg, const osw_file *w,
                   const char *prefix_re, const char *prefix_im)
{
    const float *wr, *br, *wi, *bi;
    *out = NULL;
    int e = convt_fetch(cfg, w, prefix_re, &wr, &br);
    if (!e)
        e = convt_fetch(cfg, w, prefix_im, &wi, &bi);
    return e ? e : nn_cconvt_create(out, cfg, wr, br, wi, bi);
}

void nn_convt_destroy(nn_convt *l)
{
    if (!l)
        return;
    nn_ffree(l->w);
    nn_ffree(l->b);
    nn_ffree(l->xs);
    nn_ffree(l->z);
    nn_ffree(l->acc);
    free(l);
}

void nn_convt_reset(nn_convt *l)
{
    memset(l->acc, 0, (size_t)l->H * l->planes * l->c.out_ch * l->Fout * sizeof(float));
    l->head = 0;
    l->skip = l->c.pt;
}

int nn_convt_out_freq(const nn_convt *l)
{
    return l->Fout;
}

int nn_convt_max_out(const nn_convt *l, int n)
{
    return n * l->c.st;
}

static float *slot(const nn_convt *l, int off)
{
    size_t frame = (size_t)l->planes * l->c.out_ch * l->Fout;
    return l->acc + (size_t)((l->head + off) % l->H) * frame;
}

/* Move the frame in the head slot to y (or drop it while cropping the
 * start), clear the slot and step on. Returns frames written (0 or 1). */
static int emit(nn_convt *l, float *const *y, int at)
{
    size_t plane = (size_t)l->c.out_ch * l->Fout;
    float *s = slot(l, 0);
    int wrote = 0;
    if (l->skip > 0) {
        l->skip--;
    } else {
        for (int p = 0; p < l->planes; p++) {
            float *dst = y[p] + (size_t)at * plane;
            const float *src = s + p * plane;
            if (l->b) {
                for (int o = 0; o < l->c.out_ch; o++) {
                    float bv = l->b[p * l->c.out_ch + o];
                    for (int f = 0; f < l->Fout; f++)
                        dst[(size_t)o * l->Fout + f] = src[(size_t)o * l->Fout + f] + bv;
                }
            } else {
                memcpy(dst, src, plane * sizeof(float));
            }
        }
        wrote = 1;
    }
    memset(s, 0, l->planes * plane * sizeof(float));
    l->head = (l->head + 1) % l->H;
    return wrote;
}

/* Add taps z ([R][F] of group g, output plane po; zstride between taps'
 * rows, F == 1 when batched) into the ring. */
static void col2im(nn_convt *l, int g, int po, const float *z, size_t zrow)
{
    const nn_convt_config *c = &l->c;
    size_t plane = (size_t)c->out_ch * l->Fout;
    int r = 0;
    for (int o = 0; o < l->cout_g; o++)
        for (int kf = 0; kf < c->kf; kf++)
            for (int kt = 0; kt < c->kt; kt++, r++) {
                float *dst = slot(l, kt * c->dt) + po * plane +
                             ((size_t)g * l->cout_g + o) * l->Fout;
                const float *src = z + (size_t)r * zrow;
                /* bins fi with 0 <= fi*sf + kf*df - pf < Fout */
                int off = kf * c->df - c->pf;
                int lo = off >= 0 ? 0 : (-off + c->sf - 1) / c->sf;
                int hi = (l->Fout - 1 - off) / c->sf; /* off < Fout always here */
                if (l->Fout - 1 - off < 0)
                    continue;
                if (hi > l->F - 1)
                    hi = l->F - 1;
                if (c->sf == 1) {
                    float *restrict d = dst + off;
                    for (int fi = lo; fi <= hi; fi++)
                        d[fi] += src[fi];
                } else {
                    for (int fi = lo; fi <= hi; fi++)
                        dst[fi * c->sf + off] += src[fi];
                }
            }
}

static int convt_run(nn_convt *l, const float *const *x, int n, float *const *y)
{
    const nn_convt_config *c = &l->c;
    int P = l->planes, G = l->G, nout = 0;
    if (n < 1 || n > c->max_frames)
        return err_set(OSCINE_E_ARG, "convt: %d frames (1..%d)", n, c->max_frames);
    if (l->batched) {
        size_t ldx = (size_t)G * l->kin, ldz = (size_t)P * G * l->R;
        for (int j = 0; j < n; j++)
            for (int g = 0; g < G; g++)
                for (int pi = 0; pi < P; pi++)
                    memcpy(l->xs + j * ldx + (size_t)g * l->kin + (size_t)pi * l->cin_g,
                           x[pi] + (size_t)j * c->in_ch + (size_t)g * l->cin_g,
                           (size_t)l->cin_g * sizeof(float));
        for (int g = 0; g < G; g++)
            for (int po = 0; po < P; po++)
                nn_gemm_nt(n, l->R, l->kin, l->xs + (size_t)g * l->kin, (int)ldx,
                           l->w + ((size_t)g * P + po) * l->R * l->kin, l->kin,
                           l->z + ((size_t)po * G + g) * l->R, (int)ldz, 0);
        for (int j = 0; j < n; j++) {
            for (int g = 0; g < G; g++)
                for (int po = 0; po < P; po++)
                    col2im(l, g, po, l->z + j * ldz + ((size_t)po * G + g) * l->R, 1);
            for (int s = 0; s < c->st; s++)
                nout += emit(l, y, nout);
        }
        return nout;
    }
    size_t in_frame = (size_t)c->in_ch * l->F;
    for (int j = 0; j < n; j++) {
        for (int g = 0; g < G; g++) {
            for (int pi = 0; pi < P; pi++)
                for (int i = 0; i < l->cin_g; i++) {
                    const float *src = x[pi] + j * in_frame + ((size_t)g * l->cin_g + i) * l->F;
                    float *dst = l->xs + (size_t)pi * l->cin_g + i;
                    for (int fi = 0; fi < l->F; fi++)
                        dst[(size_t)fi * l->kin] = src[fi];
                }
            for (int po = 0; po < P; po++) {
                nn_gemm_nt(l->R, l->F, l->kin, l->w + ((size_t)g * P + po) * l->R * l->kin,
                           l->kin, l->xs, l->kin, l->z, l->F, 0);
                col2im(l, g, po, l->z, (size_t)l->F);
            }
        }
        for (int s = 0; s < c->st; s++)
            nout += emit(l, y, nout);
    }
    return nout;
}

int nn_convt_process(nn_convt *l, const float *x, int n, float *y)
{
    if (l->planes != 1)
        return err_set(OSCINE_E_ARG, "convt: complex layer run with real data");
    return convt_run(l, &x, n, &y);
}

int nn_convt_process_c(nn_convt *l, const float *xr, const float *xi, int n, float *yr,
                       float *yi)
{
    if (l->planes != 2)
        return err_set(OSCINE_E_ARG, "convt: real layer run with complex data");
    const float *x[2] = { xr, xi };
    float *y[2] = { yr, yi };
    return convt_run(l, x, n, y);
}

static int convt_drain(nn_convt *l, float *const *y)
{
    int nout = 0;
    for (int i = 0; i < l->tail; i++)
        nout += emit(l, y, nout);
    return nout;
}

int nn_convt_drain(nn_convt *l, float *y)
{
    if (l->planes != 1)
        return err_set(OSCINE_E_ARG, "convt: complex layer drained as real");
    return convt_drain(l, &y);
}

int nn_convt_drain_c(nn_convt *l, float *yr, float *yi)
{
    if (l->planes != 2)
        return err_set(OSCINE_E_ARG, "convt: real layer drained as complex");
    float *y[2] = { yr, yi };
    return convt_drain(l, y);
}
