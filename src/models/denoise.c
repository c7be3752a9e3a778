/* denoise.c - the denoiser network (see denoise.h), built from nn layers. */
#include "models/denoise.h"

#include "base/error.h"
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 8

struct denoise_net {
    int n;                      /* encoder (and decoder) layers */
    int ch[MAX_LAYERS + 1];     /* complex channels: ch[0] = 1 input */
    int fd[MAX_LAYERS + 1];     /* bins: fd[0] = 161, fd[i+1] after encoder i */
    float compress, slope;
    float makeup;               /* linear gain on the mask (metadata makeup_db; 1 when absent) */
    nn_conv *enc[MAX_LAYERS];
    nn_fsmn *enc_fsmn[MAX_LAYERS]; /* after encoders 0..n-2 */
    nn_fsmn *tfsmn[4];
    int ntf;
    nn_convt *dec[MAX_LAYERS];
    nn_fsmn *dec_fsmn[MAX_LAYERS]; /* after decoders 0..n-2 */
    float *skip[MAX_LAYERS];    /* (2 ch[i+1] fd[i+1]) encoder outputs */
    float *a, *b, *cat;         /* scratch, sized for the largest frame */
    long params;
};

/* A complex tensor pair "<name>.wr/.wi" with the given shape, or an error. */
static int get_pair(const osw_file *w, const char *name, int ndim, const int64_t *shape,
                    const float **wr, const float **wi)
{
    char k[128];
    snprintf(k, sizeof k, "%s.wr", name);
    int e = osw_get_f32(w, k, ndim, shape, wr);
    if (e)
        return e;
    snprintf(k, sizeof k, "%s.wi", name);
    return osw_get_f32(w, k, ndim, shape, wi);
}

/* Read dimension `dim` of a tensor's shape (to learn hidden sizes). */
static int shape_of(const osw_file *w, const char *name, int dim, int *out)
{
    int i = osw_tensor_find(w, name);
    const char *nm;
    int nd;
    const int64_t *sh;
    if (i < 0 || osw_tensor_info(w, i, &nm, &nd, &sh) || dim >= nd)
        return err_set(OSCINE_E_W_MISSING, "weights '%s': tensor '%s' missing", osw_path(w), name);
    *out = (int)sh[dim];
    return 0;
}



/* Complex FSMN block as a real nn_fsmn on [real | imag] features. */
static int load_fsmn(nn_fsmn **out, const osw_file *w, const char *name, nn_fsmn_axis axis,
                     int c, int seq, int order, int dilation, long *params)
{
    char k[128];
    int hidden, kk;
    snprintf(k, sizeof k, "%s.l1.wr", name);
    int e = shape_of(w, k, 0, &hidden);
    if (!e) {
        snprintf(k, sizeof k, "%s.mem", name);
        e = shape_of(w, k, 1, &kk);
    }
    if (e)
        return e;
    int K = axis == NN_FSMN_FREQ ? 2 * order + 1 : order;
    if (kk != K)
        return err_set(OSCINE_E_W_SHAPE, "weights '%s': '%s.mem' has %d taps, expected %d",
                       osw_path(w), name, kk, K);
    const float *l1r, *l1i, *l2r, *l2i, *mem, *br, *bi;
    int64_t s_l1[2] = {hidden, c}, s_b[1] = {hidden}, s_l2[2] = {c, hidden}, s_m[2] = {c, K};
    snprintf(k, sizeof k, "%s.l1", name);
    if ((e = get_pair(w, k, 2, s_l1, &l1r, &l1i)))
        return e;
    snprintf(k, sizeof k, "%s.l1.br", name);
    if ((e = osw_get_f32(w, k, 1, s_b, &br)))
        return e;
    snprintf(k, sizeof k, "%s.l1.bi", name);
    if ((e = osw_get_f32(w, k, 1, s_b, &bi)))
        return e;
    snprintf(k, sizeof k, "%s.l2", name);
    if ((e = get_pair(w, k, 2, s_l2, &l2r, &l2i)))
        return e;
    snprintf(k, sizeof k, "%s.mem", name);
    if ((e = osw_get_f32(w, k, 2, s_m, &mem)))
        return e;
    float *w1 = malloc(sizeof(float) * 4 * (size_t)hidden * c);
    float *b1 = malloc(sizeof(float) * 2 * (size_t)hidden);
    float *wp = malloc(sizeof(float) * 4 * (size_t)hidden * c);
    float *wm = malloc(sizeof(float) * 2 * (size_t)c * K);
    if (!w1 || !b1 || !wp || !wm) {
        e = err_set(OSCINE_E_NOMEM, "denoise: out of memory");
    } else {
        nn_complex_block(w1, l1r, l1i, hidden, c, 0);
        memcpy(b1, br, sizeof(float) * (size_t)hidden);
        memcpy(b1 + hidden, bi, sizeof(float) * (size_t)hidden);
        nn_complex_block(wp, l2r, l2i, c, hidden, 0);
        memcpy(wm, mem, sizeof(float) * (size_t)c * K); /* same kernel for re and im */
        memcpy(wm + (size_t)c * K, mem, sizeof(float) * (size_t)c * K);
        nn_fsmn_config fc = {.axis = axis, .dim = 2 * c, .hidden = 2 * hidden,
                             .lorder = axis == NN_FSMN_FREQ ? order + 1 : order,
                             .rorder = axis == NN_FSMN_FREQ ? order : 0,
                             .dilation = dilation, .seq = seq, .max_frames = 1};
        e = nn_fsmn_create(out, &fc, w1, b1, wp, wm);
        *params += 4L * hidden * c + 2L * hidden + (long)c * K;
    }
    free(w1);
    free(b1);
    free(wp);
    free(wm);
    return e ? err_prefix(e, "weights '%s': '%s'", osw_path(w), name) : 0;
}

/* Complex (transposed) conv "<name>.wr/.wi/.br/.bi" as a real layer. */
static int load_conv(denoise_net *d, const osw_file *w, const char *name, int transposed,
                     int cin, int cout, int kf, int freq, nn_conv **conv, nn_convt **convt)
{
    int64_t sh[4] = {transposed ? cin : cout, transposed ? cout : cin, kf, 2};
    int64_t sb[1] = {cout};
    const float *wr, *wi, *br, *bi;
    char k[128];
    int e = get_pair(w, name, 4, sh, &wr, &wi);
    snprintf(k, sizeof k, "%s.br", name);
    if (!e)
        e = osw_get_f32(w, k, 1, sb, &br);
    snprintf(k, sizeof k, "%s.bi", name);
    if (!e)
        e = osw_get_f32(w, k, 1, sb, &bi);
    if (e)
        return e;
    size_t cols = (size_t)(transposed ? cout : cin) * kf * 2;
    size_t rows = (size_t)(transposed ? cin : cout);
    float *wb = malloc(sizeof(float) * 4 * rows * cols);
    float *bb = malloc(sizeof(float) * 2 * (size_t)cout);
    if (!wb || !bb) {
        free(wb);
        free(bb);
        return err_set(OSCINE_E_NOMEM, "denoise: out of memory");
    }
    nn_complex_block(wb, wr, wi, (int)rows, (int)cols, transposed);
    memcpy(bb, br, sizeof(float) * (size_t)cout);
    memcpy(bb + cout, bi, sizeof(float) * (size_t)cout);
    if (!transposed) {
        nn_conv_config cc = {.dims = 2, .in_ch = 2 * cin, .out_ch = 2 * cout, .freq = freq,
                             .kf = kf, .sf = 2, .pf_lo = kf / 2, .pf_hi = kf / 2, .kt = 2,
                             .pt_left = 1, .bias = 1, .max_frames = 1};
        e = nn_conv_create(conv, &cc, wb, bb);
    } else {
        nn_convt_config tc = {.dims = 2, .in_ch = 2 * cin, .out_ch = 2 * cout, .freq = freq,
                              .kf = kf, .sf = 2, .pf = kf / 2, .kt = 2, .st = 1, .bias = 1,
                              .max_frames = 1};
        e = nn_convt_create(convt, &tc, wb, bb);
    }
    free(wb);
    free(bb);
    d->params += 2L * rows * cols + 2L * cout;
    return e ? err_prefix(e, "weights '%s': '%s'", osw_path(w), name) : 0;
}

int denoise_net_create(denoise_net **out, const osw_file *w)
{
    *out = NULL;
    static const struct { const char *key, *value; } expect[] = {
        {"kind", "denoise"}, {"sample_rate", "16000"}, {"n_fft", "320"}, {"win", "320"},
        {"hop", "160"}, {"window", "sqrt_hann"}, {"kernel_time", "2"}, {"stride_freq", "2"},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        int e = osw_expect_meta(w, expect[i].key, expect[i].value);
        if (e)
            return e;
    }
    denoise_net *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(OSCINE_E_NOMEM, "denoise: out of memory");
    int chans[MAX_LAYERS], n, kf1, kf, ford1, tord1, tord, fo, dil[4], nd, th1;
    float v;
    int e = osw_meta_int_list(w, "channels", 1, 4096, chans, MAX_LAYERS, &n);
    if (!e)
        e = osw_meta_int_list(w, "kernel_freq", 1, 4096, &kf1, 1, &nd);
    if (!e)
        e = osw_meta_int_list(w, "fsmn_freq_order", 1, 4096, &ford1, 1, &nd);
    if (!e)
        e = osw_meta_int_list(w, "time_fsmn_order", 1, 4096, &tord1, 1, &nd);
    if (!e)
        e = osw_meta_int_list(w, "time_fsmn_dilations", 1, 4096, dil, 4, &d->ntf);
    if (!e)
        e = osw_meta_int_list(w, "time_fsmn_hidden", 1, 4096, &th1, 1, &nd);
    if (!e)
        e = osw_meta_float(w, "input_compress", NULL, &d->compress);
    if (!e)
        e = osw_meta_float(w, "leaky_slope", NULL, &d->slope);
    d->makeup = 1.0f;
    if (!e && osw_meta(w, "makeup_db") && !(e = osw_meta_float(w, "makeup_db", NULL, &v))) {
        if (!(v >= 0 && v <= 12))
            e = err_set(OSCINE_E_W_MODEL, "weights '%s': makeup_db %g out of range [0, 12]", osw_path(w),
                        (double)v);
        d->makeup = powf(10.0f, v / 20.0f);
    }
    if (e || n < 2 || kf1 % 2 == 0) {
        denoise_net_destroy(d);
        return e ? e : err_set(OSCINE_E_W_HEADER, "weights '%s': unsupported denoiser "
                                                  "configuration", osw_path(w));
    }
    kf = kf1;
    fo = ford1;
    tord = tord1;
    d->n = n;
    d->ch[0] = 1;
    d->fd[0] = DENOISE_BINS;
    for (int i = 0; i < n; i++) {
        d->ch[i + 1] = chans[i];
        d->fd[i + 1] = (d->fd[i] + 2 * (kf / 2) - kf) / 2 + 1;
    }
    size_t big = 0;
    for (int i = 0; i <= n; i++) {
        size_t s = 2 * (size_t)d->ch[i] * d->fd[i];
        big = s > big ? s : big;
    }
    big *= 2; /* decoder input: path and skip */
    d->a = calloc(big, sizeof(float));
    d->b = calloc(big, sizeof(float));
    d->cat = calloc(big, sizeof(float));
    e = !d->a || !d->b || !d->cat ? err_set(OSCINE_E_NOMEM, "denoise: out of memory") : 0;
    char name[64];
    for (int i = 0; !e && i < n; i++) {
        snprintf(name, sizeof name, "enc%d", i);
        e = load_conv(d, w, name, 0, d->ch[i], d->ch[i + 1], kf, d->fd[i], &d->enc[i], NULL);
        if (!e && i < n - 1) {
            snprintf(name, sizeof name, "enc%d.fsmn", i);
            e = load_fsmn(&d->enc_fsmn[i], w, name, NN_FSMN_FREQ, d->ch[i + 1], d->fd[i + 1],
                          fo, 1, &d->params);
        }
        if (!e && !(d->skip[i] = calloc(2 * (size_t)d->ch[i + 1] * d->fd[i + 1], sizeof(float))))
            e = err_set(OSCINE_E_NOMEM, "denoise: out of memory");
    }
    int D = d->ch[n] * d->fd[n];
    for (int j = 0; !e && j < d->ntf; j++) {
        snprintf(name, sizeof name, "tfsmn%d", j);
        e = load_fsmn(&d->tfsmn[j], w, name, NN_FSMN_TIME, D, 1, tord, dil[j], &d->params);
    }
    (void)th1;
    for (int j = 0; !e && j < n; j++) {
        int i = n - 1 - j; /* decoder j undoes encoder i */
        int cin = 2 * d->ch[i + 1], cout = i > 0 ? d->ch[i] : 1;
        snprintf(name, sizeof name, "dec%d", j);
        e = load_conv(d, w, name, 1, cin, cout, kf, d->fd[i + 1], NULL, &d->dec[j]);
        if (!e && j < n - 1) {
            snprintf(name, sizeof name, "dec%d.fsmn", j);
            e = load_fsmn(&d->dec_fsmn[j], w, name, NN_FSMN_FREQ, cout, d->fd[i], fo, 1,
                          &d->params);
        }
    }
    if (e) {
        denoise_net_destroy(d);
        return e;
    }
    *out = d;
    return 0;
}

void denoise_net_destroy(denoise_net *d)
{
    if (!d)
        return;
    for (int i = 0; i < MAX_LAYERS; i++) {
        nn_conv_destroy(d->enc[i]);
        nn_fsmn_destroy(d->enc_fsmn[i]);
        nn_convt_destroy(d->dec[i]);
        nn_fsmn_destroy(d->dec_fsmn[i]);
        free(d->skip[i]);
    }
    for (int j = 0; j < 4; j++)
        nn_fsmn_destroy(d->tfsmn[j]);
    free(d->a);
    free(d->b);
    free(d->cat);
    free(d);
}

long denoise_net_params(const denoise_net *d) { return d->params; }

void denoise_net_reset(denoise_net *d)
{
    for (int i = 0; i < d->n; i++) {
        nn_conv_reset(d->enc[i]);
        nn_convt_reset(d->dec[i]);
        if (d->enc_fsmn[i])
            nn_fsmn_reset(d->enc_fsmn[i]);
        if (d->dec_fsmn[i])
            nn_fsmn_reset(d->dec_fsmn[i]);
    }
    for (int j = 0; j < d->ntf; j++)
        nn_fsmn_reset(d->tfsmn[j]);
}

void denoise_net_frame(denoise_net *d, const float *spec, float *mask)
{
    float *x = d->a, *y = d->b;
    /* input features: |X|^c e^{j angle X}, layout [re bins | im bins] */
    const float pw = (d->compress - 1.0f) * 0.5f;
    for (int k = 0; k < DENOISE_BINS; k++) {
        float re = spec[2 * k], im = spec[2 * k + 1];
        float g = powf(re * re + im * im + 1e-12f, pw);
        x[k] = re * g;
        x[DENOISE_BINS + k] = im * g;
    }
    for (int i = 0; i < d->n; i++) {
        nn_conv_process(d->enc[i], x, 1, y);
        size_t sz = 2 * (size_t)d->ch[i + 1] * d->fd[i + 1];
        nn_leaky_relu(y, sz, d->slope);
        if (d->enc_fsmn[i]) {
            nn_fsmn_process(d->enc_fsmn[i], y, 1, x);
            float *t = x;
            x = y;
            y = t;
        }
        memcpy(d->skip[i], y, sizeof(float) * sz);
        float *t = x;
        x = y;
        y = t;
    }
    for (int j = 0; j < d->ntf; j++) {
        nn_fsmn_process(d->tfsmn[j], x, 1, y);
        float *t = x;
        x = y;
        y = t;
    }
    for (int j = 0; j < d->n; j++) {
        int i = d->n - 1 - j;
        /* [path | skip] per half: [path re, skip re, path im, skip im] */
        size_t half = (size_t)d->ch[i + 1] * d->fd[i + 1];
        memcpy(d->cat, x, sizeof(float) * half);
        memcpy(d->cat + half, d->skip[i], sizeof(float) * half);
        memcpy(d->cat + 2 * half, x + half, sizeof(float) * half);
        memcpy(d->cat + 3 * half, d->skip[i] + half, sizeof(float) * half);
        nn_convt_process(d->dec[j], d->cat, 1, y);
        int cout = i > 0 ? d->ch[i] : 1;
        size_t sz = 2 * (size_t)cout * d->fd[i];
        if (d->dec_fsmn[j]) {
            nn_leaky_relu(y, sz, d->slope);
            nn_fsmn_process(d->dec_fsmn[j], y, 1, x);
        } else {
            memcpy(x, y, sizeof(float) * sz);
        }
    }
    /* x: [re bins | im bins] of the last decoder -> tanh mask, interleaved,
     * times the make-up gain */
    const float g = d->makeup;
    for (int k = 0; k < DENOISE_BINS; k++) {
        mask[2 * k] = g * tanhf(x[k]);
        mask[2 * k + 1] = g * tanhf(x[DENOISE_BINS + k]);
    }
}
