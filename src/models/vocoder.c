/* vocoder.c - the vocoder network and its mel front end (see vocoder.h),
 * built from nn layers. */
#include "models/vocoder.h"

#include "base/error.h"
#include "dsp/mel.h"
#include "dsp/fftlock.h"
#include "dsp/phaseint.h"
#include "dsp/melrefine.h"
#include "dsp/rtisi.h"
#include "dsp/stft.h"
#include "nn/nn.h"

#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- front end */

#define MEL_BINS (VOC_MEL_NFFT / 2 + 1)

struct vocoder_mel {
    stft *st;
    mel_bank *bank;
    float spec[2 * MEL_BINS]; /* interleaved complex */
    float mag[MEL_BINS];
};

int vocoder_mel_create(vocoder_mel **out)
{
    *out = NULL;
    vocoder_mel *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(OSCINE_E_NOMEM, "vocoder: out of memory");
    stft_config sc = {VOC_MEL_NFFT, VOC_WIN, VOC_HOP, STFT_WIN_HANN};
    int e = stft_create(&m->st, &sc);
    if (!e)
        e = mel_create(&m->bank, VOC_RATE, VOC_MEL_NFFT, VOC_MELS, VOC_FMIN, VOC_FMAX);
    if (e) {
        vocoder_mel_destroy(m);
        return e;
    }
    *out = m;
    return 0;
}

void vocoder_mel_destroy(vocoder_mel *m)
{
    if (!m)
        return;
    stft_destroy(m->st);
    mel_destroy(m->bank);
    free(m);
}

void vocoder_mel_reset(vocoder_mel *m) { stft_reset(m->st); }

void vocoder_mel_frame(vocoder_mel *m, const float *hop, float *mel)
{
    stft_analyze(m->st, hop, m->spec);
    for (int k = 0; k < MEL_BINS; k++) {
        float re = m->spec[2 * k], im = m->spec[2 * k + 1];
        m->mag[k] = sqrtf(re * re + im * im);
    }
    mel_apply(m->bank, m->mag, mel);
    for (int b = 0; b < VOC_MELS; b++)
        mel[b] = logf(fmaxf(mel[b], VOC_LOG_FLOOR));
}

size_t vocoder_mel_frames_for(size_t n)
{
    return (n + VOC_STFT_LATENCY + VOC_HOP - 1) / VOC_HOP;
}

void vocoder_mel_buffer(vocoder_mel *m, const float *x, size_t n, float *mel)
{
    size_t frames = vocoder_mel_frames_for(n);
    float hop[VOC_HOP];
    vocoder_mel_reset(m);
    for (size_t f = 0; f < frames; f++) {
        for (size_t i = 0; i < VOC_HOP; i++) {
            size_t s = f * VOC_HOP + i;
            hop[i] = s < n ? x[s] : 0.0f;
        }
        vocoder_mel_frame(m, hop, mel + f * VOC_MELS);
    }
}

double vocoder_mel_centre_hz(int band)
{
    double lo = mel_from_hz(VOC_FMIN), hi = mel_from_hz(VOC_FMAX);
    return mel_to_hz(lo + (hi - lo) * (band + 1) / (VOC_MELS + 1));
}

/* ------------------------------------------------------------- network */

#define MAX_BLOCKS 32

typedef struct block {
    nn_conv *dw;          /* depthwise, causal */
    nn_layernorm *norm;
    nn_linear *pw1, *pw2; /* C -> H (GELU) -> C */
} block;

typedef struct predictor {
    int nblocks, nheads;
    nn_conv *in_conv;
    nn_layernorm *in_norm, *out_norm;
    block blk[MAX_BLOCKS];
    nn_linear *head[4];
} predictor;

/* The mel fix's way back from bands to bins: bin k (k * 50 Hz) between the
 * band centres around it, flat beyond the first and last
 * (tools/vocoder/audio.py, bands_to_synth_grid). */
typedef struct melfix_map {
    float lim;               /* largest correction, nepers */
    int band_lo[VOC_BINS];   /* bin k <- bands band_lo[k], band_lo[k] + 1 */
    float band_w[VOC_BINS];
} melfix_map;

static void melfix_init(melfix_map *f, float lim)
{
    double c[VOC_MELS];
    for (int b = 0; b < VOC_MELS; b++)
        c[b] = vocoder_mel_centre_hz(b);
    f->lim = lim;
    for (int k = 0; k < VOC_BINS; k++) {
        double hz = (double)k * VOC_RATE / VOC_NFFT;
        int b = 0;
        double w = 0;
        if (hz >= c[VOC_MELS - 1]) {
            b = VOC_MELS - 2;
            w = 1;
        } else if (hz > c[0]) {
            while (c[b + 1] <= hz)
                b++;
            w = (hz - c[b]) / (c[b + 1] - c[b]);
        }
        f->band_lo[k] = b;
        f->band_w[k] = (float)w;
    }
}

/* Per bin, the error of mel bands (band sums mhat against the log mel `mel`),
 * clamped to +-lim per band, in nepers. */
static void melfix_error(const melfix_map *f, const float *mel, const float *mhat, float *err)
{
    float r[VOC_MELS];
    for (int b = 0; b < VOC_MELS; b++)
        r[b] = fminf(fmaxf(mel[b] - logf(fmaxf(mhat[b], VOC_LOG_FLOOR)), -f->lim), f->lim);
    for (int k = 0; k < VOC_BINS; k++) {
        const int b = f->band_lo[k];
        const float w = f->band_w[k];
        err[k] = r[b] * (1.0f - w) + r[b + 1] * w;
    }
}

struct vocoder_net {
    int dim, hidden, k_in, k_dw, lookahead, max_frames, rows;
    float in_offset, in_scale, logamp_max;
    predictor amp, pha;
    float *x;     /* (max_frames, 80) scaled mel */
    float *h;     /* (rows, dim) residual stream */
    float *t;     /* (rows, dim) block branch */
    float *u;     /* (rows, hidden) */
    float *o[5];  /* (rows, bins) log|X|, then R, I or R_t, I_t, R_f, I_f */
    long params, macs;
    int diff;     /* phase "diff": heads predict the phase's differences */
    int syn_lookahead, syn_iters; /* RTISI-LA of the synthesis (0, 0: plain iSTFT) */
    phaseint *pint;
    float dt[VOC_BINS], df[VOC_BINS];
    /* The input mel frames wait in melq until their output frame comes out
     * (at most lookahead + max_frames of them), which carries a copy. With
     * mel_fix_db > 0 each output frame's log-amplitude is first pulled onto
     * that mel (melfix_frame). */
    float *melq;
    int nq;
    melfix_map fix;          /* fix.lim 0: off */
    mel_bank *bank;          /* the front end's 512-point bank */
    float a512[MEL_BINS], mhat[VOC_MELS];
};



/* The log-amplitude la of one frame, pulled onto its input mel frame
 * (tools/vocoder/model.py, Vocoder.mel_fix): the amplitude interpolated onto
 * the front end's 512-point grid (bin j at 5 j / 8 synthesis bins), its log
 * mel, the error per band clamped to +-fix.lim, spread back over the bins
 * by band centre and added. */
static void melfix_frame(vocoder_net *v, const float *mel, float *la)
{
    float a[VOC_BINS], err[VOC_BINS];
    for (int k = 0; k < VOC_BINS; k++)
        a[k] = expf(fminf(la[k], v->logamp_max));
    for (int j = 0; j < MEL_BINS; j++) {
        int k0 = 5 * j / 8;
        float fr = (float)(5 * j % 8) / 8.0f;
        v->a512[j] = fr > 0 ? a[k0] * (1.0f - fr) + a[k0 + 1] * fr : a[k0];
    }
    mel_apply(v->bank, v->a512, v->mhat);
    melfix_error(&v->fix, mel, v->mhat, err);
    for (int k = 0; k < VOC_BINS; k++)
        la[k] += err[k];
}

static int load_predictor(vocoder_net *v, predictor *p, const osw_file *w, const char *name,
                          int nblocks, int nheads)
{
    char k[96];
    const int C = v->dim, H = v->hidden, R = v->rows;
    p->nblocks = nblocks;
    p->nheads = nheads;
    nn_conv_config ic = {.dims = 1, .in_ch = VOC_MELS, .out_ch = C, .kt = v->k_in,
                         .pt_left = v->k_in - 1 - v->lookahead, .pt_right = v->lookahead,
                         .bias = 1, .max_frames = v->max_frames};
    nn_layernorm_config lc = {.dim = C, .eps = 0, .affine = 1};
    int e = osw_meta_float(w, "ln_eps", NULL, &lc.eps);
    if (e)
        return e;
    if (!(lc.eps > 0 && lc.eps < 1))
        return err_set(OSCINE_E_W_MODEL, "weights '%s': ln_eps %g out of range (0, 1)",
                       osw_path(w), (double)lc.eps);
    snprintf(k, sizeof k, "%s.in_conv", name);
    if ((e = nn_conv_load(&p->in_conv, &ic, w, k)))
        return e;
    snprintf(k, sizeof k, "%s.in_norm", name);
    if ((e = nn_layernorm_load(&p->in_norm, &lc, w, k)))
        return e;
    v->params += (long)VOC_MELS * C * v->k_in + C + 2L * C;
    v->macs += (long)VOC_MELS * C * v->k_in;
    for (int i = 0; i < nblocks; i++) {
        block *b = &p->blk[i];
        nn_conv_config dc = {.dims = 1, .in_ch = C, .out_ch = C, .groups = C, .kt = v->k_dw,
                             .pt_left = v->k_dw - 1, .bias = 1, .max_frames = R};
        nn_linear_config l1 = {.in = C, .out = H, .bias = 1, .max_frames = R};
        nn_linear_config l2 = {.in = H, .out = C, .bias = 1, .max_frames = R};
        snprintf(k, sizeof k, "%s.blocks.%d.dw", name, i);
        if ((e = nn_conv_load(&b->dw, &dc, w, k)))
            return e;
        snprintf(k, sizeof k, "%s.blocks.%d.norm", name, i);
        if ((e = nn_layernorm_load(&b->norm, &lc, w, k)))
            return e;
        snprintf(k, sizeof k, "%s.blocks.%d.pw1", name, i);
        if ((e = nn_linear_load(&b->pw1, &l1, w, k)))
            return e;
        snprintf(k, sizeof k, "%s.blocks.%d.pw2", name, i);
        if ((e = nn_linear_load(&b->pw2, &l2, w, k)))
            return e;
        v->params += (long)C * v->k_dw + C + 2L * C + 2L * C * H + H + C;
        v->macs += (long)C * v->k_dw + 2L * C * H;
    }
    snprintf(k, sizeof k, "%s.out_norm", name);
    if ((e = nn_layernorm_load(&p->out_norm, &lc, w, k)))
        return e;
    v->params += 2L * C;
    for (int j = 0; j < nheads; j++) {
        nn_linear_config hc = {.in = C, .out = VOC_BINS, .bias = 1, .max_frames = R};
        snprintf(k, sizeof k, "%s.heads.%d", name, j);
        if ((e = nn_linear_load(&p->head[j], &hc, w, k)))
            return e;
        v->params += (long)C * VOC_BINS + VOC_BINS;
        v->macs += (long)C * VOC_BINS;
    }
    return 0;
}

static void free_predictor(predictor *p)
{
    nn_conv_destroy(p->in_conv);
    nn_layernorm_destroy(p->in_norm);
    nn_layernorm_destroy(p->out_norm);
    for (int i = 0; i < MAX_BLOCKS; i++) {
        nn_conv_destroy(p->blk[i].dw);
        nn_layernorm_destroy(p->blk[i].norm);
        nn_linear_destroy(p->blk[i].pw1);
        nn_linear_destroy(p->blk[i].pw2);
    }
    for (int j = 0; j < 4; j++)
        nn_linear_destroy(p->head[j]);
}

int vocoder_net_create(vocoder_net **out, const osw_file *w, int max_frames)
{
    *out = NULL;
    static const struct { const char *key, *value; } expect[] = {
        {"kind", "vocoder"}, {"arch", "apnet_convnext_v1"}, {"sample_rate", "16000"},
        {"n_fft", "320"}, {"win", "320"}, {"hop", "80"}, {"window", "hann"}, {"n_mels", "80"},
        {"mel_n_fft", "512"}, {"fmin", "0"}, {"fmax", "8000"}, {"mel_scale", "slaney"},
        {"mel_norm", "slaney"}, {"magnitude", "amplitude"}, {"log", "ln"},
        {"log_floor", "1e-05"},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        int e = osw_expect_meta(w, expect[i].key, expect[i].value);
        if (e)
            return e;
    }
    if (max_frames < 1 || max_frames > 65536)
        return err_set(OSCINE_E_ARG, "vocoder: max_frames %d out of range", max_frames);
    vocoder_net *v = calloc(1, sizeof *v);
    if (!v)
        return err_set(OSCINE_E_NOMEM, "vocoder: out of memory");
    int nb_amp, nb_pha;
    int e = osw_meta_int(w, "dim", 1, 4096, &v->dim);
    if (!e)
        e = osw_meta_int(w, "hidden", 1, 16384, &v->hidden);
    if (!e)
        e = osw_meta_int(w, "amp_blocks", 0, MAX_BLOCKS, &nb_amp);
    if (!e)
        e = osw_meta_int(w, "pha_blocks", 0, MAX_BLOCKS, &nb_pha);
    if (!e)
        e = osw_meta_int(w, "kernel_in", 1, 64, &v->k_in);
    if (!e)
        e = osw_meta_int(w, "kernel_dw", 1, 64, &v->k_dw);
    if (!e)
        e = osw_meta_int(w, "lookahead", 0, VOC_MAX_LOOKAHEAD, &v->lookahead);
    if (!e)
        e = osw_meta_float(w, "in_offset", NULL, &v->in_offset);
    if (!e)
        e = osw_meta_float(w, "in_scale", NULL, &v->in_scale);
    if (!e)
        e = osw_meta_float(w, "logamp_max", NULL, &v->logamp_max);
    v->syn_lookahead = v->syn_iters = 0;
    if (!e && osw_meta(w, "rtisi_lookahead"))
        e = osw_meta_int(w, "rtisi_lookahead", 0, VOC_MAX_LOOKAHEAD, &v->syn_lookahead);
    if (!e && osw_meta(w, "rtisi_iters"))
        e = osw_meta_int(w, "rtisi_iters", 0, 16, &v->syn_iters);
    if (!e && v->lookahead + v->syn_lookahead > VOC_MAX_LOOKAHEAD)
        e = err_set(OSCINE_E_W_MODEL, "weights '%s': lookahead %d + rtisi_lookahead %d frames exceed %d (40 ms)",
                    osw_path(w), v->lookahead, v->syn_lookahead, VOC_MAX_LOOKAHEAD);
    const char *mode = osw_meta(w, "phase");
    if (!e && mode && strcmp(mode, "atan2") && strcmp(mode, "diff"))
        e = err_set(OSCINE_E_W_MODEL, "weights '%s': phase \"%s\" unknown (atan2 or diff)", osw_path(w),
                    mode);
    v->diff = mode && !strcmp(mode, "diff");
    float tol_db = 0;
    if (!e && v->diff && !(e = osw_meta_float(w, "phase_tol_db", NULL, &tol_db))) {
        if (!(tol_db > 0 && tol_db <= 200))
            e = err_set(OSCINE_E_W_MODEL, "weights '%s': phase_tol_db %g out of range (0, 200]",
                        osw_path(w), (double)tol_db);
        else
            e = phaseint_create(&v->pint, VOC_BINS, tol_db);
    }
    float fix_db = 0;
    if (!e && osw_meta(w, "mel_fix_db") && !(e = osw_meta_float(w, "mel_fix_db", NULL, &fix_db)) &&
        !(fix_db >= 0 && fix_db <= 60))
        e = err_set(OSCINE_E_W_MODEL, "weights '%s': mel_fix_db %g out of range [0, 60]", osw_path(w),
                    (double)fix_db);
    melfix_init(&v->fix, fix_db * (float)(M_LN10 / 20.0));
    if (!e && v->lookahead > v->k_in - 1)
        e = err_set(OSCINE_E_W_MODEL, "weights '%s': lookahead %d needs kernel_in > %d",
                    osw_path(w), v->lookahead, v->lookahead);
    if (e) {
        phaseint_destroy(v->pint);
        free(v);
        return e;
    }
    v->max_frames = max_frames;
    v->rows = max_frames + v->lookahead;
    const size_t R = (size_t)v->rows;
    v->x = calloc((size_t)max_frames * VOC_MELS, sizeof(float));
    v->h = calloc(R * v->dim, sizeof(float));
    v->t = calloc(R * v->dim, sizeof(float));
    v->u = calloc(R * v->hidden, sizeof(float));
    const int nout = v->diff ? 5 : 3;
    for (int j = 0; j < nout; j++)
        v->o[j] = calloc(R * VOC_BINS, sizeof(float));
    if (!v->x || !v->h || !v->t || !v->u || !v->o[0] || !v->o[1] || !v->o[2] || (v->diff && (!v->o[3] || !v->o[4])))
        e = err_set(OSCINE_E_NOMEM, "vocoder: out of memory");
    if (!e && !(v->melq = calloc(R * VOC_MELS, sizeof(float))))
        e = err_set(OSCINE_E_NOMEM, "vocoder: out of memory");
    if (!e && v->fix.lim > 0)
        e = mel_create(&v->bank, VOC_RATE, VOC_MEL_NFFT, VOC_MELS, VOC_FMIN, VOC_FMAX);
    if (!e)
        e = load_predictor(v, &v->amp, w, "amp", nb_amp, 1);
    if (!e)
        e = load_predictor(v, &v->pha, w, "pha", nb_pha, nout - 1);
    if (e) {
        vocoder_net_destroy(v);
        return e;
    }
    *out = v;
    return 0;
}

void vocoder_net_destroy(vocoder_net *v)
{
    if (!v)
        return;
    free_predictor(&v->amp);
    free_predictor(&v->pha);
    free(v->x);
    free(v->h);
    free(v->t);
    free(v->u);
    for (int j = 0; j < 5; j++)
        free(v->o[j]);
    phaseint_destroy(v->pint);
    mel_destroy(v->bank);
    free(v->melq);
    free(v);
}

void vocoder_net_reset(vocoder_net *v)
{
    predictor *ps[2] = {&v->amp, &v->pha};
    for (int q = 0; q < 2; q++) {
        nn_conv_reset(ps[q]->in_conv);
        for (int i = 0; i < ps[q]->nblocks; i++)
            nn_conv_reset(ps[q]->blk[i].dw);
    }
    if (v->pint)
        phaseint_reset(v->pint);
    v->nq = 0;
}

int vocoder_net_lookahead(const vocoder_net *v) { return v->lookahead; }
long vocoder_net_params(const vocoder_net *v) { return v->params; }
long vocoder_net_macs(const vocoder_net *v) { return v->macs; }

/* Everything after the input conv, on r frames of h; heads into o[first..]. */
static void run_rest(vocoder_net *v, predictor *p, int r, int first)
{
    const size_t C = (size_t)v->dim;
    float *h = v->h, *t = v->t, *u = v->u;
    nn_layernorm_process(p->in_norm, h, r, h);
    for (int i = 0; i < p->nblocks; i++) {
        block *b = &p->blk[i];
        nn_conv_process(b->dw, h, r, t); /* causal: r frames */
        nn_layernorm_process(b->norm, t, r, t);
        nn_linear_process(b->pw1, t, r, u);
        nn_gelu(u, (size_t)r * v->hidden);
        nn_linear_process(b->pw2, u, r, t);
        for (size_t k = 0; k < (size_t)r * C; k++)
            h[k] += t[k];
    }
    nn_layernorm_process(p->out_norm, h, r, h);
    for (int j = 0; j < p->nheads; j++)
        nn_linear_process(p->head[j], h, r, v->o[first + j]);
}

/* o[] -> out frames [logamp | phase]. In phase "diff" mode the heads give
 * dt = pi (k mod 4) / 2 + atan2(I_t, R_t) and df = pi + atan2(I_f, R_f)
 * (tools/vocoder/model.py, Vocoder.diffs), integrated frame by frame. */
static void emit(vocoder_net *v, int r, float *out)
{
    for (int f = 0; f < r; f++) {
        const size_t o = (size_t)f * VOC_BINS;
        const float *la = v->o[0] + o;
        const float *re = v->o[1] + o, *im = v->o[2] + o;
        float *y = out + (size_t)f * VOC_FRAME;
        const float *mel = v->melq + (size_t)f * VOC_MELS;
        if (v->fix.lim > 0)
            melfix_frame(v, mel, v->o[0] + o);
        memcpy(y, la, sizeof(float) * VOC_BINS);
        memcpy(y + 2 * VOC_BINS, mel, sizeof(float) * VOC_MELS);
        if (!v->diff) {
            for (int k = 0; k < VOC_BINS; k++)
                y[VOC_BINS + k] = atan2f(im[k], re[k]);
            continue;
        }
        const float *rf = v->o[3] + o, *imf = v->o[4] + o;
        for (int k = 0; k < VOC_BINS; k++) {
            v->dt[k] = (float)(0.5 * M_PI * (k % 4)) + atan2f(im[k], re[k]); /* pi k / 2, mod 2 pi */
            v->df[k] = (float)M_PI + atan2f(imf[k], rf[k]);
        }
        phaseint_frame(v->pint, la, v->dt, v->df, y + VOC_BINS);
    }
    if (r > 0) { /* the frames just emitted leave the queue */
        v->nq -= r;
        memmove(v->melq, v->melq + (size_t)r * VOC_MELS, sizeof(float) * (size_t)v->nq * VOC_MELS);
    }
}

int vocoder_net_process(vocoder_net *v, const float *mel, int n, float *out)
{
    const float off = v->in_offset, sc = v->in_scale;
    for (size_t k = 0; k < (size_t)n * VOC_MELS; k++)
        v->x[k] = (mel[k] + off) * sc;
    memcpy(v->melq + (size_t)v->nq * VOC_MELS, mel, sizeof(float) * (size_t)n * VOC_MELS);
    v->nq += n;
    int r = nn_conv_process(v->amp.in_conv, v->x, n, v->h);
    if (r > 0)
        run_rest(v, &v->amp, r, 0);
    int r2 = nn_conv_process(v->pha.in_conv, v->x, n, v->h);
    if (r2 > 0)
        run_rest(v, &v->pha, r2, 1);
    if (r > 0)
        emit(v, r, out);
    return r;
}

int vocoder_net_drain(vocoder_net *v, float *out)
{
    int r = nn_conv_drain(v->amp.in_conv, v->h);
    if (r > 0)
        run_rest(v, &v->amp, r, 0);
    int r2 = nn_conv_drain(v->pha.in_conv, v->h);
    if (r2 > 0)
        run_rest(v, &v->pha, r2, 1);
    if (r > 0)
        emit(v, r, out);
    return r;
}

static void frame_spectrum(float logamp_max, const float *frame, float *spec)
{
    for (int k = 0; k < VOC_BINS; k++) {
        float a = expf(fminf(frame[k], logamp_max));
        float ph = frame[VOC_BINS + k];
        spec[2 * k] = a * cosf(ph);
        spec[2 * k + 1] = a * sinf(ph);
    }
}

void vocoder_net_spectrum(const vocoder_net *v, const float *frame, float *spec)
{
    frame_spectrum(v->logamp_max, frame, spec);
}

/* ------------------------------------------------------------- synthesis */

struct vocoder_syn {
    rtisi *r;
    float logamp_max;
    float spec[2 * VOC_BINS];
    /* the mel fix in RTISI-LA's last pass (syn_fix; fix.lim 0: off) */
    melfix_map fix;
    mel_bank *bank;
    float *time;             /* VOC_MEL_NFFT, fftwf_malloc'd */
    fftwf_complex *freq;     /* MEL_BINS */
    fftwf_plan plan;
    float (*melq)[VOC_MELS]; /* the open frames' mel, oldest first */
    int open;
    float mag[MEL_BINS], mhat[VOC_MELS];
    /* the file synthesis' last step (NULL: none): RTISI-LA's hops pulled onto
     * the input mel, anchored to the network's log-amplitude; both wait in
     * refq until their frame's last hop comes out of RTISI-LA (refq_n =
     * RTISI-LA look-ahead + 4 frames) */
    melrefine *ref;
    struct refq_frame {
        float mel[VOC_MELS];
        float la[VOC_BINS];  /* min(log-amplitude, logamp_max) */
        int has;             /* a real frame (not a flush) */
    } *refq;
    int refq_n;
    long long pushed;        /* frames since reset */
    int ended;               /* a NULL frame ended the stream */
    float hop[VOC_HOP];
};

/* rtisi_fix_fn: the frame about to be finished, pulled onto its mel (the
 * oldest in melq) as measured on what the frames overlap-add to: the
 * windowed segment zero-padded to 512, |FFT|, mel bank (tools/vocoder/audio.py,
 * rtisi_la with mel). */
static void syn_fix(void *ctx, const float *seg, float *mag)
{
    vocoder_syn *s = ctx;
    float err[VOC_BINS];
    memcpy(s->time, seg, sizeof(float) * VOC_WIN);
    memset(s->time + VOC_WIN, 0, sizeof(float) * (VOC_MEL_NFFT - VOC_WIN));
    fftwf_execute(s->plan);
    for (int k = 0; k < MEL_BINS; k++)
        s->mag[k] = hypotf(s->freq[k][0], s->freq[k][1]);
    mel_apply(s->bank, s->mag, s->mhat);
    melfix_error(&s->fix, s->melq[0], s->mhat, err);
    for (int k = 0; k < VOC_BINS; k++)
        mag[k] *= expf(err[k]);
}

int vocoder_syn_create(vocoder_syn **out, const vocoder_net *v)
{
    return vocoder_syn_create_with(out, v, -1, -1, 0);
}

int vocoder_syn_create_file(vocoder_syn **out, const vocoder_net *v)
{
    return vocoder_syn_create_file_with(out, v, -1);
}

int vocoder_syn_create_file_with(vocoder_syn **out, const vocoder_net *v, int refine)
{
    if (refine == -1)
        refine = v->fix.lim > 0 ? VOC_FILE_REFINE_ITERS : 0;
    if (v->syn_iters <= 0)
        return vocoder_syn_create_with(out, v, -1, -1, refine);
    return vocoder_syn_create_with(
        out, v, v->syn_lookahead > VOC_FILE_RTISI_LOOKAHEAD ? v->syn_lookahead : VOC_FILE_RTISI_LOOKAHEAD,
        v->syn_iters > VOC_FILE_RTISI_ITERS ? v->syn_iters : VOC_FILE_RTISI_ITERS, refine);
}

int vocoder_syn_create_with(vocoder_syn **out, const vocoder_net *v, int lookahead, int iters, int refine)
{
    *out = NULL;
    if (refine < 0 || refine > VOC_MAX_REFINE)
        return err_set(OSCINE_E_ARG, "vocoder: %d mel refinement passes out of range (0..%d)", refine,
                       VOC_MAX_REFINE);
    if (lookahead == -1) /* other values out of range: rtisi_create says so */
        lookahead = v->syn_lookahead;
    if (iters == -1)
        iters = v->syn_iters;
    vocoder_syn *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(OSCINE_E_NOMEM, "vocoder: out of memory");
    rtisi_config rc = {VOC_NFFT, VOC_HOP, lookahead, iters};
    int e = rtisi_create(&s->r, &rc);
    if (e) {
        free(s);
        return e;
    }
    s->logamp_max = v->logamp_max;
    s->fix = v->fix;
    if (v->fix.lim > 0 && iters > 0) {
        s->open = lookahead + 1;
        s->melq = calloc((size_t)s->open, sizeof *s->melq);
        s->time = fftwf_malloc(sizeof(float) * VOC_MEL_NFFT);
        s->freq = fftwf_malloc(sizeof(fftwf_complex) * MEL_BINS);
        e = s->melq && s->time && s->freq ? 0 : err_set(OSCINE_E_NOMEM, "vocoder: out of memory");
        if (!e) {
            fft_plan_lock();
            s->plan = fftwf_plan_dft_r2c_1d(VOC_MEL_NFFT, s->time, s->freq, FFTW_ESTIMATE);
            fft_plan_unlock();
            if (!s->plan)
                e = err_set(OSCINE_E_NOMEM, "vocoder: FFTW could not plan size %d", VOC_MEL_NFFT);
        }
        if (!e)
            e = mel_create(&s->bank, VOC_RATE, VOC_MEL_NFFT, VOC_MELS, VOC_FMIN, VOC_FMAX);
        if (e) {
            vocoder_syn_destroy(s);
            return e;
        }
        rtisi_set_fix(s->r, syn_fix, s);
    }
    if (refine > 0) {
        melrefine_config mc = {.win = VOC_WIN, .hop = VOC_HOP, .n_fft = VOC_MEL_NFFT, .sample_rate = VOC_RATE,
                               .n_mels = VOC_MELS, .fmin = VOC_FMIN, .fmax = VOC_FMAX,
                               .floor = VOC_LOG_FLOOR, .iters = refine, .momentum = VOC_REFINE_MOMENTUM,
                               .max_nep = VOC_REFINE_MAX_NEP, .pull = VOC_REFINE_PULL};
        s->refq_n = lookahead + VOC_WIN / VOC_HOP;
        s->refq = calloc((size_t)s->refq_n, sizeof *s->refq);
        e = s->refq ? melrefine_create(&s->ref, &mc) : err_set(OSCINE_E_NOMEM, "vocoder: out of memory");
        if (e) {
            vocoder_syn_destroy(s);
            return e;
        }
    }
    vocoder_syn_reset(s);
    *out = s;
    return 0;
}

void vocoder_syn_destroy(vocoder_syn *s)
{
    if (!s)
        return;
    rtisi_destroy(s->r);
    if (s->plan) {
        fft_plan_lock();
        fftwf_destroy_plan(s->plan);
        fft_plan_unlock();
    }
    fftwf_free(s->time);
    fftwf_free(s->freq);
    mel_destroy(s->bank);
    free(s->melq);
    melrefine_destroy(s->ref);
    free(s->refq);
    free(s);
}

void vocoder_syn_reset(vocoder_syn *s)
{
    rtisi_reset(s->r);
    for (int j = 0; j < s->open; j++) /* the silence before the stream */
        for (int b = 0; b < VOC_MELS; b++)
            s->melq[j][b] = logf(VOC_LOG_FLOOR);
    if (s->ref) {
        melrefine_reset(s->ref);
        memset(s->refq, 0, sizeof *s->refq * (size_t)s->refq_n);
    }
    s->pushed = 0;
    s->ended = 0;
}

int vocoder_syn_lookahead(const vocoder_syn *s)
{
    return rtisi_lookahead(s->r) + (s->ref ? melrefine_delay(s->ref) : 0);
}

void vocoder_syn_frame(vocoder_syn *s, const float *frame, float *out)
{
    if (frame)
        frame_spectrum(s->logamp_max, frame, s->spec);
    if (s->melq) {
        const int O = s->open;
        if (frame)
            memcpy(s->melq[O - 1], frame + 2 * VOC_BINS, sizeof s->melq[0]);
        else
            for (int b = 0; b < VOC_MELS; b++)
                s->melq[O - 1][b] = logf(VOC_LOG_FLOOR);
    }
    if (!s->ref) {
        rtisi_frame(s->r, frame ? s->spec : NULL, out);
    } else {
        /* Frame p's push brings RTISI-LA's hop p - L of the frame grid, the
         * signal's hop p - L - 3 (the first 3 come before the signal's first
         * sample), whose frame's mel and log-amplitude are refq[0]; the first
         * NULL frame ends the signal after the last real frame's hop. */
        const int Q = s->refq_n;
        struct refq_frame *q = s->refq + Q - 1;
        q->has = frame != NULL;
        if (frame) {
            memcpy(q->mel, frame + 2 * VOC_BINS, sizeof q->mel);
            for (int k = 0; k < VOC_BINS; k++)
                q->la[k] = fminf(frame[k], s->logamp_max);
        } else {
            for (int b = 0; b < VOC_MELS; b++)
                q->mel[b] = logf(VOC_LOG_FLOOR);
        }
        if (!frame && !s->ended) {
            melrefine_end(s->ref, s->pushed - (VOC_WIN / VOC_HOP - 1));
            s->ended = 1;
        }
        rtisi_frame(s->r, frame ? s->spec : NULL, s->hop);
        if (s->pushed - (Q - 1) >= 0)
            melrefine_hop(s->ref, s->hop, s->refq[0].mel, s->refq[0].has ? s->refq[0].la : NULL, out);
        else
            memset(out, 0, sizeof(float) * VOC_HOP);
        memmove(s->refq, s->refq + 1, sizeof s->refq[0] * (size_t)(Q - 1));
        s->pushed++;
    }
    if (s->melq)
        memmove(s->melq, s->melq + 1, sizeof s->melq[0] * (size_t)(s->open - 1));
}
