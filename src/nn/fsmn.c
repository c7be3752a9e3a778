/* fsmn.c - FSMN memory blocks (FRCRN's UniDeepFsmn and its complex pair),
 * along time (streaming, with a window of past projections) or along
 * frequency inside one frame.
 *
 * A block is linear + ReLU, a bias-free projection p, and a depthwise filter
 * over p's past lorder-1 taps, the present and rorder future taps (taps
 * `dilation` steps apart), added to the input and to p. The complex pair runs each real block on both
 * planes: yr = re(xr) - im(xi), yi = re(xi) + im(xr); along time that is four
 * streams, so four states share two sets of weights.
 * Weights are copied at create; the memory taps are stored [tap][dim] along
 * time (the inner loop runs over features) and [dim][tap] along frequency
 * (the inner loop runs over bins). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/nn.h"

typedef struct fsmn_w {
    float *w1; /* [hidden][dim] */
    float *b1; /* [hidden] */
    float *wp; /* [dim][hidden] */
    float *wm; /* TIME: [taps][dim], FREQ: [dim][taps] */
} fsmn_w;

typedef struct fsmn_s {
    nn_window p;  /* projections, hist (lorder-1+rorder)*dilation */
    nn_window x;  /* inputs, hist rorder*dilation (the residual is delayed too) */
    int wait;     /* new frames to take before the next output */
} fsmn_s;

struct nn_fsmn {
    nn_fsmn_config c;
    int planes;    /* 1 real, 2 complex */
    int taps;      /* lorder + rorder */
    fsmn_w w[2];   /* re, im */
    fsmn_s s[4];   /* TIME: re(xr), im(xi), re(xi), im(xr) */
    float *h;      /* TIME: [max][hidden]; FREQ: [seq][hidden] */
    float *p;      /* FREQ: [dim][seq] */
    float *xt;     /* FREQ: the frame transposed, [seq][dim] */
    float *t[2];   /* complex: two block outputs before they are combined */
};

static int fsmn_check(nn_fsmn_config *c, const nn_fsmn_config *in, const char *what)
{
    *c = *in;
    if (!c->max_frames)
        c->max_frames = 1;
    if (!c->dilation)
        c->dilation = 1;
    if (c->axis == NN_FSMN_TIME && !c->seq)
        c->seq = 1;
    int e;
    if ((e = nn_check_dim(what, "dim", c->dim, 1)) || (e = nn_check_dim(what, "hidden", c->hidden, 1)) ||
        (e = nn_check_dim(what, "lorder", c->lorder, 1)) ||
        (e = nn_check_dim(what, "rorder", c->rorder, 0)) ||
        (e = nn_check_dim(what, "dilation", c->dilation, 1)) ||
        (e = nn_check_dim(what, "seq", c->seq, 1)) ||
        (e = nn_check_dim(what, "max_frames", c->max_frames, 1)))
        return e;
    if ((unsigned)c->axis >= NN_FSMN_AXIS_COUNT)
        return err_set(OSCINE_E_ARG, "%s: unknown axis %d", what, (int)c->axis);
    if (c->axis == NN_FSMN_TIME && c->seq != 1)
        return err_set(OSCINE_E_ARG, "%s: seq is for the frequency axis", what);
    if ((long)(c->lorder - 1 + c->rorder) * c->dilation > (1 << 24))
        return err_set(OSCINE_E_ARG, "%s: memory spans too many steps", what);
    return 0;
}

static int fsmn_w_init(fsmn_w *w, const nn_fsmn_config *c, const float *w1, const float *b1,
                       const float *wp, const float *wm)
{
    int taps = c->lorder + c->rorder;
    size_t n1 = (size_t)c->hidden * c->dim, nm = (size_t)taps * c->dim;
    if (!w1 || !b1 || !wp || !wm)
        return err_set(OSCINE_E_ARG, "fsmn: weight array is NULL");
    if (!(w->w1 = nn_falloc(n1)) || !(w->b1 = nn_falloc((size_t)c->hidden)) ||
        !(w->wp = nn_falloc(n1)) || !(w->wm = nn_falloc(nm)))
        return err_set(OSCINE_E_NOMEM, "fsmn weights");
    memcpy(w->w1, w1, n1 * sizeof(float));
    memcpy(w->b1, b1, (size_t)c->hidden * sizeof(float));
    memcpy(w->wp, wp, n1 * sizeof(float));
    if (c->axis == NN_FSMN_FREQ)
        memcpy(w->wm, wm, nm * sizeof(float));
    else
        for (int d = 0; d < c->dim; d++)
            for (int k = 0; k < taps; k++)
                w->wm[(size_t)k * c->dim + d] = wm[(size_t)d * taps + k];
    return 0;
}

static void fsmn_w_free(fsmn_w *w)
{
    nn_ffree(w->w1);
    nn_ffree(w->b1);
    nn_ffree(w->wp);
    nn_ffree(w->wm);
}

void nn_fsmn_destroy(nn_fsmn *l)
{
    if (!l)
        return;
    for (int i = 0; i < 2; i++) {
        fsmn_w_free(&l->w[i]);
        nn_ffree(l->t[i]);
    }
    for (int i = 0; i < 4; i++) {
        nn_window_free(&l->s[i].p);
        nn_window_free(&l->s[i].x);
    }
    nn_ffree(l->h);
    nn_ffree(l->p);
    nn_ffree(l->xt);
    free(l);
}

static int fsmn_make(nn_fsmn **out, const nn_fsmn_config *cfg, int planes,
                     const float *const re[4], const float *const im[4])
{
    const char *what = planes == 2 ? "complex fsmn" : "fsmn";
    *out = NULL;
    nn_fsmn_config c;
    int e = fsmn_check(&c, cfg, what);
    if (e)
        return e;
    nn_fsmn *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(OSCINE_E_NOMEM, "%s", what);
    l->c = c;
    l->planes = planes;
    l->taps = c.lorder + c.rorder;
    for (int i = 0; i < planes && !e; i++)
        e = fsmn_w_init(&l->w[i], &c, (i ? im : re)[0], (i ? im : re)[1], (i ? im : re)[2],
                        (i ? im : re)[3]);
    size_t frame = (size_t)c.dim * c.seq, hn, tn;
    if (!e && (nn_mul_size((size_t)c.hidden * c.seq, (size_t)c.max_frames, &hn) ||
               nn_mul_size(frame, (size_t)c.max_frames, &tn)))
        e = err_set(OSCINE_E_ARG, "%s: sizes overflow", what);
    if (!e) {
        if (c.axis == NN_FSMN_TIME) {
            l->h = nn_falloc(hn);
            for (int i = 0; i < 2 * planes && !e; i++)
                if (nn_window_init(&l->s[i].p, c.dim, (l->taps - 1) * c.dilation, c.max_frames) ||
                    nn_window_init(&l->s[i].x, c.dim, c.rorder * c.dilation, c.max_frames))
                    e = OSCINE_E_NOMEM;
        } else {
            l->h = nn_falloc((size_t)c.hidden * c.seq);
            l->p = nn_falloc(frame);
            l->xt = nn_falloc(frame);
        }
        if (planes == 2) {
            l->t[0] = nn_falloc(tn);
            l->t[1] = nn_falloc(tn);
        }
        if (e || !l->h || (c.axis == NN_FSMN_FREQ && (!l->p || !l->xt)) ||
            (planes == 2 && (!l->t[0] || !l->t[1])))
            e = err_set(OSCINE_E_NOMEM, "%s buffers", what);
    }
    if (e) {
        nn_fsmn_destroy(l);
        return e;
    }
    nn_blas_init();
    nn_fsmn_reset(l);
    *out = l;
    return 0;
}

int nn_fsmn_create(nn_fsmn **out, const nn_fsmn_config *cfg, const float *w1, const float *b1,
                   const float *wp, const float *wm)
{
    const float *re[4] = { w1, b1, wp, wm };
    return fsmn_make(out, cfg, 1, re, NULL);
}

int nn_cfsmn_create(nn_fsmn **out, const nn_fsmn_config *cfg, const float *const re[4],
                    const float *const im[4])
{
    if (!re || !im)
        return err_set(OSCINE_E_ARG, "complex fsmn: weight array is NULL");
    return fsmn_make(out, cfg, 2, re, im);
}

static int fsmn_fetch(const nn_fsmn_config *c, const osw_file *w, const char *prefix,
                      const float *t[4])
{
    int64_t s1[2] = { c->hidden, c->dim }, sb[1] = { c->hidden }, sp[2] = { c->dim, c->hidden };
    int64_t sm[4] = { c->dim, 1, c->lorder + c->rorder, 1 };
    int e = nn_fetch(w, prefix, "linear.weight", 2, s1, &t[0]);
    if (!e)
        e = nn_fetch(w, prefix, "linear.bias", 1, sb, &t[1]);
    if (!e)
        e = nn_fetch(w, prefix, "project.weight", 2, sp, &t[2]);
    if (!e)
        e = nn_fetch(w, prefix, "conv1.weight", 4, sm, &t[3]);
    return e;
}

int nn_fsmn_load(nn_fsmn **out, const nn_fsmn_config *cfg, const osw_file *w,
                 const char *prefix)
{
    const float *t[4];
    *out = NULL;
    int e = fsmn_fetch(cfg, w, prefix, t);
    return e ? e : fsmn_make(out, cfg, 1, t, NULL);
}

int nn_cfsmn_load(nn_fsmn **out, const nn_fsmn_config *cfg, const osw_file *w,
                  const char *prefix_re, const char *prefix_im)
{
    const float *re[4], *im[4];
    *out = NULL;
    int e = fsmn_fetch(cfg, w, prefix_re, re);
    if (!e)
        e = fsmn_fetch(cfg, w, prefix_im, im);
    return e ? e : fsmn_make(out, cfg, 2, re, im);
}

void nn_fsmn_reset(nn_fsmn *l)
{
    if (l->c.axis != NN_FSMN_TIME)
        return;
    for (int i = 0; i < 2 * l->planes; i++) {
        nn_window_reset(&l->s[i].p);
        nn_window_reset(&l->s[i].x);
        l->s[i].wait = l->c.rorder * l->c.dilation;
    }
}

int nn_fsmn_latency(const nn_fsmn *l)
{
    return l->c.axis == NN_FSMN_TIME ? l->c.rorder * l->c.dilation : 0;
}

/* One block along time on n frames (x NULL: the zero projections that end
 * the sequence). Returns frames written to y. */
static int run_time(nn_fsmn *l, const fsmn_w *w, fsmn_s *s, const float *x, int n, float *y)
{
    const nn_fsmn_config *c = &l->c;
    int D = c->dim, Hd = c->hidden, L = c->lorder, dl = c->dilation;
    float *pd = nn_window_append(&s->p, n);
    float *xd = nn_window_append(&s->x, n);
    if (x) {
        if (n == 1)
            nn_gemv(Hd, D, w->w1, D, x, l->h, 0);
        else
            nn_gemm_nt(n, Hd, D, x, D, w->w1, D, l->h, Hd, 0);
        for (int t = 0; t < n; t++) {
            float *restrict hv = l->h + (size_t)t * Hd;
            for (int k = 0; k < Hd; k++) {
                float v = hv[k] + w->b1[k];
                hv[k] = v > 0.0f ? v : 0.0f;
            }
        }
        if (n == 1)
            nn_gemv(D, Hd, w->wp, Hd, l->h, pd, 0);
        else
            nn_gemm_nt(n, D, Hd, l->h, Hd, w->wp, Hd, pd, D, 0);
        memcpy(xd, x, (size_t)n * D * sizeof(float));
    } else {
        memset(pd, 0, (size_t)n * D * sizeof(float));
        memset(xd, 0, (size_t)n * D * sizeof(float));
    }
    const float *pb = nn_window_base(&s->p), *xb = nn_window_base(&s->x);
    int nout = 0, r = s->wait;
    /* The output whose newest tap is new frame r: taps at p rows r + k*dl,
     * its own step at p row r + (L-1)*dl and x row r. */
    for (; r < n; r++, nout++) {
        float *restrict o = y + (size_t)nout * D;
        const float *restrict xv = xb + (size_t)r * D;
        const float *restrict pv = pb + (size_t)(r + (L - 1) * dl) * D;
        for (int d = 0; d < D; d++)
            o[d] = xv[d] + pv[d];
        for (int k = 0; k < l->taps; k++) {
            const float *restrict wk = w->wm + (size_t)k * D;
            const float *restrict pk = pb + (size_t)(r + k * dl) * D;
            for (int d = 0; d < D; d++)
                o[d] += wk[d] * pk[d];
        }
    }
    s->wait = r - n;
    nn_window_advance(&s->p, n);
    nn_window_advance(&s->x, n);
    return nout;
}

/* One block along frequency on one frame x [dim][seq]: the products run on
 * the frame's bins as rows (transposed-B form, see kernels.h):
 * h[seq][hidden] = x^T W1^T, p[dim][seq] = Wp h^T. */
static void run_freq(nn_fsmn *l, const fsmn_w *w, const float *x, float *y)
{
    const nn_fsmn_config *c = &l->c;
    int D = c->dim, Hd = c->hidden, S = c->seq, L = c->lorder, dl = c->dilation;
    for (int d = 0; d < D; d++)
        for (int i = 0; i < S; i++)
            l->xt[(size_t)i * D + d] = x[(size_t)d * S + i];
    nn_gemm_nt(S, Hd, D, l->xt, D, w->w1, D, l->h, Hd, 0);
    for (int i = 0; i < S; i++) {
        float *restrict hv = l->h + (size_t)i * Hd;
        for (int k = 0; k < Hd; k++) {
            float v = hv[k] + w->b1[k];
            hv[k] = v > 0.0f ? v : 0.0f;
        }
    }
    nn_gemm_nt(D, S, Hd, w->wp, Hd, l->h, Hd, l->p, S, 0);
    for (int d = 0; d < D; d++) {
        const float *restrict pv = l->p + (size_t)d * S;
        const float *restrict xv = x + (size_t)d * S;
        float *restrict o = y + (size_t)d * S;
        for (int i = 0; i < S; i++)
            o[i] = xv[i] + pv[i];
        for (int k = 0; k < l->taps; k++) {
            /* o[i] += w * p[i + (k - L + 1)*dl] for bins inside 0..S-1 */
            int sh = (k - L + 1) * dl;
            int lo = sh < 0 ? -sh : 0, hi = sh > 0 ? S - sh : S;
            float wk = w->wm[(size_t)d * l->taps + k];
            for (int i = lo; i < hi; i++)
                o[i] += wk * pv[i + sh];
        }
    }
}

static int fsmn_block(nn_fsmn *l, int wi, int si, const float *x, int n, float *y)
{
    if (l->c.axis == NN_FSMN_TIME)
        return run_time(l, &l->w[wi], &l->s[si], x, n, y);
    size_t frame = (size_t)l->c.dim * l->c.seq;
    for (int t = 0; t < n; t++)
        run_freq(l, &l->w[wi], x + t * frame, y + t * frame);
    return n;
}

int nn_fsmn_process(nn_fsmn *l, const float *x, int n, float *y)
{
    if (l->planes != 1)
        return err_set(OSCINE_E_ARG, "fsmn: complex layer run with real data");
    if (n < 1 || n > l->c.max_frames)
        return err_set(OSCINE_E_ARG, "fsmn: %d frames (1..%d)", n, l->c.max_frames);
    return fsmn_block(l, 0, 0, x, n, y);
}

/* yr = re(xr) - im(xi), yi = re(xi) + im(xr); x NULL drains. */
static int cfsmn_run(nn_fsmn *l, const float *xr, const float *xi, int n, float *yr, float *yi)
{
    size_t frame = (size_t)l->c.dim * l->c.seq;
    int m = fsmn_block(l, 0, 0, xr, n, l->t[0]);
    fsmn_block(l, 1, 1, xi, n, l->t[1]);
    for (size_t i = 0; i < (size_t)m * frame; i++)
        yr[i] = l->t[0][i] - l->t[1][i];
    fsmn_block(l, 0, 2, xi, n, l->t[0]);
    fsmn_block(l, 1, 3, xr, n, l->t[1]);
    for (size_t i = 0; i < (size_t)m * frame; i++)
        yi[i] = l->t[0][i] + l->t[1][i];
    return m;
}

int nn_fsmn_process_c(nn_fsmn *l, const float *xr, const float *xi, int n, float *yr,
                      float *yi)
{
    if (l->planes != 2)
        return err_set(OSCINE_E_ARG, "fsmn: real layer run with complex data");
    if (n < 1 || n > l->c.max_frames)
        return err_set(OSCINE_E_ARG, "fsmn: %d frames (1..%d)", n, l->c.max_frames);
    return cfsmn_run(l, xr, xi, n, yr, yi);
}

int nn_fsmn_drain(nn_fsmn *l, float *y)
{
    if (l->planes != 1)
        return err_set(OSCINE_E_ARG, "fsmn: complex layer drained as real");
    if (l->c.axis != NN_FSMN_TIME)
        return 0;
    int total = 0;
    for (int left = l->c.rorder * l->c.dilation; left > 0;) {
        int n = left < l->c.max_frames ? left : l->c.max_frames;
        total += run_time(l, &l->w[0], &l->s[0], NULL, n, y + (size_t)total * l->c.dim);
        left -= n;
    }
    return total;
}

int nn_fsmn_drain_c(nn_fsmn *l, float *yr, float *yi)
{
    if (l->planes != 2)
        return err_set(OSCINE_E_ARG, "fsmn: real layer drained as complex");
    if (l->c.axis != NN_FSMN_TIME)
        return 0;
    int total = 0;
    for (int left = l->c.rorder * l->c.dilation; left > 0;) {
        int n = left < l->c.max_frames ? left : l->c.max_frames;
        size_t off = (size_t)total * l->c.dim;
        total += cfsmn_run(l, NULL, NULL, n, yr + off, yi + off);
        left -= n;
    }
    return total;
}
