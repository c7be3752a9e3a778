/* ddsp.c - the DDSP decoder, voice and reverb (see ddsp.h). */
#include "models/ddsp.h"

#include "base/error.h"
#include "dsp/fftconv.h"
#include "dsp/filtnoise.h"
#include "dsp/harmonic.h"
#include "dsp/resample.h"
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 8
#define MAX_WIDTH 4096

typedef struct block {
    nn_linear *lin;
    nn_layernorm *norm;
} block;

struct ddsp_model {
    ddsp_info info;
    int in_hidden, in_layers, gru, out_hidden, out_layers;
    float slope, noise_bias, f0_range, db_range;
    block f0b[MAX_LAYERS], ldb[MAX_LAYERS], outb[MAX_LAYERS];
    nn_linear *dense;
    float *w_ih, *w_hh, *b_ih, *b_hh; /* GRU weights, copied into each decoder */
    float *ir;                        /* (reverb_length) */
};

struct ddsp_decoder {
    const ddsp_model *m;
    nn_gru *gru;
    float *ab;   /* (2 in_hidden) [a | b] */
    float *cat;  /* (gru + 2 in_hidden) [g | a | b] */
    float *t0, *t1; /* (max width) ping-pong scratch */
};

/* ------------------------------------------------------------ model */

static int load_stack(ddsp_model *m, const osw_file *w, const char *name, block *b, int layers,
                      int n_in, int width)
{
    char k[96];
    nn_layernorm_config lc = {.dim = width, .eps = 0, .affine = 1};
    int e = osw_meta_float(w, "layernorm_eps", NULL, &lc.eps);
    if (!e && !(lc.eps > 0))
        e = err_set(OSCINE_E_W_MODEL, "weights '%s': layernorm_eps must be > 0", osw_path(w));
    for (int i = 0; !e && i < layers; i++) {
        nn_linear_config c = {.in = i ? width : n_in, .out = width, .bias = 1, .max_frames = 1};
        snprintf(k, sizeof k, "%s.%d.lin", name, i);
        e = nn_linear_load(&b[i].lin, &c, w, k);
        if (!e) {
            snprintf(k, sizeof k, "%s.%d.norm", name, i);
            e = nn_layernorm_load(&b[i].norm, &lc, w, k);
        }
        m->info.params += (long)c.in * width + 3L * width;
        m->info.macs_per_frame += (long)c.in * width;
    }
    return e;
}

static float *copy_tensor(const osw_file *w, const char *name, int ndim, const int64_t *shape,
                          size_t n, int *e)
{
    const float *src;
    *e = osw_get_f32(w, name, ndim, shape, &src);
    if (*e)
        return NULL;
    float *p = malloc(sizeof(float) * n);
    if (!p) {
        *e = err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
        return NULL;
    }
    memcpy(p, src, sizeof(float) * n);
    return p;
}

int ddsp_model_create(ddsp_model **out, const osw_file *w)
{
    *out = NULL;
    int e = osw_expect_meta(w, "kind", "ddsp");
    if (!e)
        e = osw_expect_meta(w, "arch", "ddsp_rnn_fc_v1");
    if (e)
        return e;
    ddsp_model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
    ddsp_info *in = &m->info;
    const float zero = 0.0f, lo = 20.0f, hi = 2000.0f;
    e = osw_meta_int(w, "sample_rate", 8000, 48000, &in->sample_rate);
    if (!e)
        e = osw_meta_int(w, "frame_rate", 10, 1000, &in->frame_rate);
    if (!e)
        e = osw_meta_int(w, "n_harmonics", 1, DDSP_MAX_HARMONICS, &in->n_harmonics);
    if (!e)
        e = osw_meta_int(w, "n_bands", 2, DDSP_MAX_BANDS, &in->n_bands);
    if (!e)
        e = osw_meta_int(w, "in_hidden", 1, MAX_WIDTH, &m->in_hidden);
    if (!e)
        e = osw_meta_int(w, "in_layers", 1, MAX_LAYERS, &m->in_layers);
    if (!e)
        e = osw_meta_int(w, "gru", 1, MAX_WIDTH, &m->gru);
    if (!e)
        e = osw_meta_int(w, "out_hidden", 1, MAX_WIDTH, &m->out_hidden);
    if (!e)
        e = osw_meta_int(w, "out_layers", 1, MAX_LAYERS, &m->out_layers);
    if (!e)
        e = osw_meta_int(w, "reverb_length", 1, 1 << 20, &in->reverb_length);
    if (!e)
        e = osw_meta_float(w, "leaky_slope", NULL, &m->slope);
    if (!e)
        e = osw_meta_float(w, "noise_bias", NULL, &m->noise_bias);
    if (!e)
        e = osw_meta_float(w, "f0_range", NULL, &m->f0_range);
    if (!e)
        e = osw_meta_float(w, "db_range", NULL, &m->db_range);
    if (!e && (!(m->f0_range > 0) || !(m->db_range > 0)))
        e = err_set(OSCINE_E_W_MODEL, "weights '%s': f0_range and db_range must be > 0",
                    osw_path(w));
    if (!e)
        e = osw_meta_float(w, "loudness_ref_db", &zero, &in->loudness_ref_db);
    if (!e)
        e = osw_meta_float(w, "f0_min_hz", &lo, &in->f0_min_hz);
    if (!e)
        e = osw_meta_float(w, "f0_max_hz", &hi, &in->f0_max_hz);
    if (!e && in->sample_rate % in->frame_rate)
        e = err_set(OSCINE_E_W_MODEL, "weights '%s': frame rate %d does not divide the rate %d",
                    osw_path(w), in->frame_rate, in->sample_rate);
    if (e) {
        ddsp_model_destroy(m);
        return e;
    }
    const char *inst = osw_meta(w, "instrument");
    snprintf(in->instrument, sizeof in->instrument, "%s", inst ? inst : "");
    in->n_out = 1 + in->n_harmonics + in->n_bands;
    const int IH = m->in_hidden, G = m->gru, OH = m->out_hidden;
    e = load_stack(m, w, "f0_mlp", m->f0b, m->in_layers, 1, IH);
    if (!e)
        e = load_stack(m, w, "ld_mlp", m->ldb, m->in_layers, 1, IH);
    if (!e)
        e = load_stack(m, w, "out_mlp", m->outb, m->out_layers, G + 2 * IH, OH);
    if (!e) {
        nn_linear_config c = {.in = OH, .out = in->n_out, .bias = 1, .max_frames = 1};
        e = nn_linear_load(&m->dense, &c, w, "dense");
        in->params += (long)(OH + 1) * in->n_out;
        in->macs_per_frame += (long)OH * in->n_out;
    }
    if (!e) {
        int64_t s_ih[2] = {3 * G, 2 * IH}, s_hh[2] = {3 * G, G}, s_b[1] = {3 * G};
        int64_t s_ir[1] = {in->reverb_length};
        m->w_ih = copy_tensor(w, "gru.weight_ih_l0", 2, s_ih, (size_t)6 * G * IH, &e);
        if (!e)
            m->w_hh = copy_tensor(w, "gru.weight_hh_l0", 2, s_hh, (size_t)3 * G * G, &e);
        if (!e)
            m->b_ih = copy_tensor(w, "gru.bias_ih_l0", 1, s_b, (size_t)3 * G, &e);
        if (!e)
            m->b_hh = copy_tensor(w, "gru.bias_hh_l0", 1, s_b, (size_t)3 * G, &e);
        if (!e)
            m->ir = copy_tensor(w, "reverb.ir", 1, s_ir, (size_t)in->reverb_length, &e);
        for (int i = 0; !e && i < in->reverb_length; i++)
            if (!isfinite(m->ir[i]))
                e = err_set(OSCINE_E_W_MODEL, "weights '%s': reverb.ir[%d] is not finite",
                            osw_path(w), i);
        in->params += 3L * G * (2 * IH + G + 2) + in->reverb_length;
        in->macs_per_frame += 3L * G * (2 * IH + G);
    }
    if (e) {
        ddsp_model_destroy(m);
        return err_prefix(e, "ddsp");
    }
    *out = m;
    return 0;
}

int ddsp_model_load(ddsp_model **out, const char *path)
{
    osw_file *w = NULL;
    *out = NULL;
    int e = osw_open(&w, path);
    if (!e)
        e = ddsp_model_create(out, w);
    osw_close(w);
    return e;
}

static void free_stack(block *b, int n)
{
    for (int i = 0; i < n; i++) {
        nn_linear_destroy(b[i].lin);
        nn_layernorm_destroy(b[i].norm);
    }
}

void ddsp_model_destroy(ddsp_model *m)
{
    if (!m)
        return;
    free_stack(m->f0b, MAX_LAYERS);
    free_stack(m->ldb, MAX_LAYERS);
    free_stack(m->outb, MAX_LAYERS);
    nn_linear_destroy(m->dense);
    free(m->w_ih);
    free(m->w_hh);
    free(m->b_ih);
    free(m->b_hh);
    free(m->ir);
    free(m);
}

const ddsp_info *ddsp_model_info(const ddsp_model *m) { return &m->info; }
const float *ddsp_model_ir(const ddsp_model *m) { return m->ir; }

/* ------------------------------------------------------------ decoder */

int ddsp_decoder_create(ddsp_decoder **out, const ddsp_model *m)
{
    *out = NULL;
    ddsp_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
    d->m = m;
    const int IH = m->in_hidden, G = m->gru;
    int wmax = G + 2 * IH;
    if (m->out_hidden > wmax)
        wmax = m->out_hidden;
    if (m->info.n_out > wmax)
        wmax = m->info.n_out;
    d->ab = calloc((size_t)2 * IH, sizeof(float));
    d->cat = calloc((size_t)(G + 2 * IH), sizeof(float));
    d->t0 = calloc((size_t)wmax, sizeof(float));
    d->t1 = calloc((size_t)wmax, sizeof(float));
    nn_rnn_config rc = {.input = 2 * IH, .hidden = G, .bias = 1, .max_frames = 1};
    int e = !d->ab || !d->cat || !d->t0 || !d->t1 ? err_set(OSCINE_E_NOMEM, "ddsp: out of memory")
                                                   : nn_gru_create(&d->gru, &rc, m->w_ih, m->w_hh,
                                                                   m->b_ih, m->b_hh);
    if (e) {
        ddsp_decoder_destroy(d);
        return e;
    }
    *out = d;
    return 0;
}

void ddsp_decoder_destroy(ddsp_decoder *d)
{
    if (!d)
        return;
    nn_gru_destroy(d->gru);
    free(d->ab);
    free(d->cat);
    free(d->t0);
    free(d->t1);
    free(d);
}

void ddsp_decoder_reset(ddsp_decoder *d) { nn_gru_reset(d->gru); }

/* Blocks of Linear, LayerNorm, LeakyReLU on one frame: x (n_in) -> out (width).
 * t is scratch of the width; x, t and out must not overlap. */
static void stack(const ddsp_model *m, const block *b, int layers, int width, const float *x,
                  float *t, float *out)
{
    for (int i = 0; i < layers; i++) {
        /* the last block writes out; earlier ones alternate between t and out */
        float *y = (layers - 1 - i) % 2 ? t : out;
        nn_linear_process(b[i].lin, x, 1, y);
        nn_layernorm_process(b[i].norm, y, 1, y);
        nn_leaky_relu(y, (size_t)width, m->slope);
        x = y;
    }
}

void ddsp_decoder_frame(ddsp_decoder *d, float f0_hz, float loudness_db, float *y)
{
    const ddsp_model *m = d->m;
    const int IH = m->in_hidden, G = m->gru;
    if (!(f0_hz > 1e-3f))
        f0_hz = 1e-3f; /* also NaN */
    if (!(loudness_db > -1000.0f))
        loudness_db = -1000.0f;
    if (loudness_db > 1000.0f)
        loudness_db = 1000.0f;
    float fs = (float)((12.0 * (log2((double)f0_hz) - log2(440.0)) + 69.0) / m->f0_range);
    float ls = loudness_db / m->db_range + 1.0f;
    float *a = d->cat + G, *b = d->cat + G + IH;
    stack(m, m->f0b, m->in_layers, IH, &fs, d->t0, a);
    stack(m, m->ldb, m->in_layers, IH, &ls, d->t0, b);
    memcpy(d->ab, a, sizeof(float) * 2 * (size_t)IH);
    nn_gru_process(d->gru, d->ab, 1, d->cat);
    stack(m, m->outb, m->out_layers, m->out_hidden, d->cat, d->t0, d->t1);
    nn_linear_process(m->dense, d->t1, 1, y);
}

void ddsp_controls(const ddsp_model *m, const float *y, float f0_hz, float *amp, float *dist,
                   float *mags)
{
    const int H = m->info.n_harmonics;
    harmonic_controls(y[0], y + 1, H, f0_hz, (double)m->info.sample_rate, amp, dist);
    for (int j = 0; j < m->info.n_bands; j++)
        mags[j] = ddsp_exp_sigmoid(y[1 + H + j] + m->noise_bias);
}

/* ------------------------------------------------------------ voice */

struct ddsp_voice {
    const ddsp_model *m;
    ddsp_decoder *dec;
    harmonic *h;
    filtnoise *fn;
    int max_seg, have_prev;
    float *y;         /* (n_out) last decoder outputs */
    float *dist;      /* (n_harmonics) */
    float *mags;      /* (n_bands) */
    float *prev_mags; /* (n_bands) the previous frame's, for this segment's noise */
    float *noise;     /* (max_seg) */
};

int ddsp_voice_create(ddsp_voice **out, const ddsp_model *m, const ddsp_voice_config *cfg)
{
    *out = NULL;
    const ddsp_info *in = &m->info;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 192000)
        return err_set(OSCINE_E_ARG, "ddsp voice: rate %d out of range 8000..192000",
                       cfg->sample_rate);
    ddsp_voice *v = calloc(1, sizeof *v);
    if (!v)
        return err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
    v->m = m;
    harmonic_config hc = {.sample_rate = cfg->sample_rate, .frame_rate = in->frame_rate,
                          .n_harmonics = in->n_harmonics};
    int e = ddsp_decoder_create(&v->dec, m);
    if (!e)
        e = harmonic_create(&v->h, &hc);
    if (!e) {
        v->max_seg = harmonic_max_segment(v->h);
        filtnoise_config fc = {.sample_rate = cfg->sample_rate, .n_bands = in->n_bands,
                               .band_top_hz = in->sample_rate / 2.0, .max_block = v->max_seg,
                               .seed = cfg->seed};
        e = filtnoise_create(&v->fn, &fc);
    }
    if (!e) {
        v->y = calloc((size_t)in->n_out, sizeof(float));
        v->dist = calloc((size_t)in->n_harmonics, sizeof(float));
        v->mags = calloc((size_t)in->n_bands, sizeof(float));
        v->prev_mags = calloc((size_t)in->n_bands, sizeof(float));
        v->noise = calloc((size_t)v->max_seg, sizeof(float));
        if (!v->y || !v->dist || !v->mags || !v->prev_mags || !v->noise)
            e = err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
    }
    if (e) {
        ddsp_voice_destroy(v);
        return e;
    }
    *out = v;
    return 0;
}

void ddsp_voice_destroy(ddsp_voice *v)
{
    if (!v)
        return;
    ddsp_decoder_destroy(v->dec);
    harmonic_destroy(v->h);
    filtnoise_destroy(v->fn);
    free(v->y);
    free(v->dist);
    free(v->mags);
    free(v->prev_mags);
    free(v->noise);
    free(v);
}

int ddsp_voice_max_segment(const ddsp_voice *v) { return v->max_seg; }
const float *ddsp_voice_last_y(const ddsp_voice *v) { return v->y; }

int ddsp_voice_render(ddsp_voice *v, float f0_hz, float amp, const float *dist,
                      const float *mags, float *out)
{
    const int NB = v->m->info.n_bands;
    int n = harmonic_process(v->h, f0_hz, amp, dist, out);
    if (n > 0 && v->have_prev) {
        filtnoise_process(v->fn, v->prev_mags, v->noise, n);
        for (int i = 0; i < n; i++)
            out[i] += v->noise[i];
    }
    if (mags != v->prev_mags)
        memcpy(v->prev_mags, mags, sizeof(float) * (size_t)NB);
    v->have_prev = 1;
    return n;
}

int ddsp_voice_frame(ddsp_voice *v, float f0_hz, float loudness_db, float harmonic_gain,
                     float noise_gain, float *out)
{
    const ddsp_model *m = v->m;
    float amp;
    ddsp_decoder_frame(v->dec, f0_hz, loudness_db, v->y);
    ddsp_controls(m, v->y, f0_hz, &amp, v->dist, v->mags);
    if (noise_gain != 1.0f)
        for (int j = 0; j < m->info.n_bands; j++)
            v->mags[j] *= noise_gain;
    return ddsp_voice_render(v, f0_hz, amp * harmonic_gain, v->dist, v->mags, out);
}

void ddsp_voice_reset(ddsp_voice *v, int decoder)
{
    harmonic_reset(v->h);
    v->have_prev = 0;
    if (decoder) {
        filtnoise_reset(v->fn);
        ddsp_decoder_reset(v->dec);
    }
}

/* ------------------------------------------------------------ reverb */

struct ddsp_reverb {
    int B, L;         /* head taps (and FFT block), IR length at the output rate */
    float *head;      /* (B) ir[B-1 .. 0]: reversed, for a forward dot product */
    float *hist;      /* (2B) input history, each sample written twice */
    int pos;          /* where the next input goes in hist */
    fftconv *fc;      /* ir[B..L-1], or NULL when L <= B */
    float *blk;       /* (B) input block being gathered for fc */
    float *tail;      /* (B) fc's output for the current block */
    int p;            /* position in blk / tail */
    float wet, wet_to, coef;
};

/* The IR at the output rate, scaled so that the response stays the same. */
static float *resample_ir(const ddsp_model *m, int rate, int *len, int *e)
{
    const int L0 = m->info.reverb_length, r0 = m->info.sample_rate;
    *e = 0;
    if (rate == r0) {
        float *ir = malloc(sizeof(float) * (size_t)L0);
        if (!ir)
            *e = err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
        else
            memcpy(ir, m->ir, sizeof(float) * (size_t)L0);
        *len = L0;
        return ir;
    }
    int L = (int)ceil((double)L0 * rate / r0);
    const int chunk = 4096;
    resampler *rs = NULL;
    *e = resampler_create(&rs, r0, rate, 0, chunk);
    if (*e)
        return NULL;
    int cap = L + resampler_max_out(rs) + 1;
    float *ir = calloc((size_t)cap, sizeof(float));
    float *tmp = malloc(sizeof(float) * (size_t)resampler_max_out(rs));
    int got = 0, k = 0;
    if (!ir || !tmp)
        *e = err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
    /* the IR in chunks (off < L0), then flush (NULL, 0) until nothing is left */
    for (int off = 0; !*e; off += chunk) {
        int n = off < L0 ? (L0 - off < chunk ? L0 - off : chunk) : 0;
        k = resampler_process(rs, n ? m->ir + off : NULL, n, tmp);
        if (k < 0) {
            *e = k;
            break;
        }
        int take = got + k > cap ? cap - got : k;
        memcpy(ir + got, tmp, sizeof(float) * (size_t)take);
        got += take;
        if (!n && !k)
            break;
    }
    resampler_destroy(rs);
    free(tmp);
    if (*e) {
        free(ir);
        return NULL;
    }
    const float g = (float)r0 / (float)rate;
    for (int i = 0; i < L; i++)
        ir[i] *= g;
    *len = L;
    return ir;
}

int ddsp_reverb_create(ddsp_reverb **out, const ddsp_model *m, const ddsp_reverb_config *cfg)
{
    *out = NULL;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 192000 || cfg->max_block < 1)
        return err_set(OSCINE_E_ARG, "ddsp reverb: bad configuration");
    ddsp_reverb *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
    int e;
    float *ir = resample_ir(m, cfg->sample_rate, &r->L, &e);
    if (!e) {
        /* head taps ~ 2 sqrt(L): balances the direct FIR against the partitions */
        int B = 32;
        while (B < 1024 && B * B < 4 * r->L)
            B *= 2;
        r->B = B;
        r->head = calloc((size_t)B, sizeof(float));
        r->hist = calloc((size_t)2 * B, sizeof(float));
        r->blk = calloc((size_t)B, sizeof(float));
        r->tail = calloc((size_t)B, sizeof(float));
        if (!r->head || !r->hist || !r->blk || !r->tail)
            e = err_set(OSCINE_E_NOMEM, "ddsp: out of memory");
        for (int k = 0; !e && k < B && k < r->L; k++)
            r->head[B - 1 - k] = ir[k];
        if (!e && r->L > B) {
            fftconv_config fc = {.block = B, .max_ir = r->L - B};
            e = fftconv_create(&r->fc, &fc);
            if (!e)
                e = fftconv_set_ir(r->fc, ir + B, r->L - B);
            if (!e)
                fftconv_set_mix(r->fc, 0.0f, 1.0f);
        }
    }
    free(ir);
    if (e) {
        ddsp_reverb_destroy(r);
        return err_prefix(e, "ddsp reverb");
    }
    r->wet = r->wet_to = 1.0f;
    r->coef = 1.0f - expf(-1.0f / (0.010f * (float)cfg->sample_rate));
    if (r->fc)
        ddsp_reverb_reset(r); /* the mix ramps from its defaults over one block */
    *out = r;
    return 0;
}

void ddsp_reverb_destroy(ddsp_reverb *r)
{
    if (!r)
        return;
    fftconv_destroy(r->fc);
    free(r->head);
    free(r->hist);
    free(r->blk);
    free(r->tail);
    free(r);
}

int ddsp_reverb_length(const ddsp_reverb *r) { return r->L; }
int ddsp_reverb_block(const ddsp_reverb *r) { return r->B; }
void ddsp_reverb_set_wet(ddsp_reverb *r, float wet) { r->wet_to = isfinite(wet) ? wet : 0.0f; }

void ddsp_reverb_reset(ddsp_reverb *r)
{
    memset(r->hist, 0, sizeof(float) * 2 * (size_t)r->B);
    memset(r->blk, 0, sizeof(float) * (size_t)r->B);
    memset(r->tail, 0, sizeof(float) * (size_t)r->B);
    r->pos = r->p = 0;
    if (r->fc) {
        /* run one block of silence so the dry/wet ramp fftconv starts with is over */
        fftconv_reset(r->fc);
        fftconv_process(r->fc, r->blk, r->tail);
        fftconv_reset(r->fc);
        memset(r->tail, 0, sizeof(float) * (size_t)r->B);
    }
    r->wet = r->wet_to;
}

static float dot(const float *a, const float *b, int n)
{
    float s[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++)
            s[j] += a[k + j] * b[k + j];
    for (; k < n; k++)
        s[0] += a[k] * b[k];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void ddsp_reverb_process(ddsp_reverb *r, const float *in, float *out, int n)
{
    const int B = r->B;
    float wet = r->wet;
    for (int i = 0; i < n; i++) {
        float x = in[i];
        r->hist[r->pos] = r->hist[r->pos + B] = x;
        /* hist[pos+1 .. pos+B] = x[t-B+1 .. t], head = ir[B-1 .. 0] */
        float y = dot(r->head, r->hist + r->pos + 1, B) + r->tail[r->p];
        if (++r->pos == B)
            r->pos = 0;
        r->blk[r->p] = x;
        if (++r->p == B) {
            r->p = 0;
            if (r->fc)
                fftconv_process(r->fc, r->blk, r->tail);
        }
        wet += (r->wet_to - wet) * r->coef;
        out[i] = x + wet * y;
    }
    if (fabsf(wet - r->wet_to) < 1e-6f)
        wet = r->wet_to;
    r->wet = wet;
}
