/* melrefine.c - see melrefine.h. */
#include "dsp/melrefine.h"

#include "base/error.h"
#include "dsp/fftlock.h"
#include "dsp/mel.h"
#include "dsp/stft.h"

#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One step of a pass (the mel step, then with pull > 0 the anchor step):
 * its input ring holds the last R = win / hop hops it received, the frame
 * about to be analysed, oldest first; acc the overlap-add of its output over
 * them. */
typedef struct stage {
    float *in, *acc; /* win each */
    long long n;     /* hops received since reset */
} stage;

struct melrefine {
    int win, hop, R, nfft, bins, sbins, mels, K, per, S, depth;
    float momentum, max_nep, log_floor, floor, pull;
    float *wa, *ws;          /* Hann; dual window / n_fft */
    float *ws2;              /* dual window / win, for the anchor step's win-point FFT */
    mel_bank *bank;
    int *band0;              /* per bin: first band weighing it, -1: none */
    float *w0, *w1;          /* its weights, normalised to sum 1 (w1: band0 + 1) */
    stage *st;               /* S = K * per */
    float *zin;              /* [K][ZD * hop]: each pass's previous pass's plain output, ZD hops */
    int zd;
    float *melring;          /* [depth][mels]: frame m at m % depth */
    float *anring;           /* [depth][sbins] (pull > 0) */
    unsigned char *anset;    /* [depth]: an anchor was given */
    float *mag, *mhat, *r;   /* bins, mels, mels */
    float *z, *t, *zi;       /* hop: a step's output, a pass's output with momentum, its plain output */
    float *time;             /* n_fft, fftwf_malloc'd */
    fftwf_complex *freq;     /* bins */
    fftwf_plan fwd, inv, fwd2, inv2; /* n_fft, and win for the anchor step */
    long long pushed, end;
};

int melrefine_create(melrefine **out, const melrefine_config *c)
{
    *out = NULL;
    if (c->win < 16 || c->win > 4096 || c->win % 2 || c->hop < 1 || c->win % c->hop || c->win / c->hop < 2 ||
        c->n_fft < c->win || c->n_fft > 8192 || c->n_fft % 2)
        return err_set(OSCINE_E_ARG, "melrefine: window %d, hop %d, FFT size %d out of range", c->win, c->hop,
                       c->n_fft);
    if (c->iters < 1 || c->iters > MELREFINE_MAX_ITERS || !(c->momentum >= 0 && c->momentum < 1) ||
        !(c->max_nep > 0 && c->max_nep <= 50) || !(c->floor > 0 && c->floor < 1) ||
        !(c->pull >= 0 && c->pull <= 1))
        return err_set(OSCINE_E_ARG, "melrefine: %d passes (1..%d), momentum %g ([0, 1)), largest step %g "
                       "nepers, floor %g, pull %g ([0, 1]) out of range", c->iters, MELREFINE_MAX_ITERS,
                       (double)c->momentum, (double)c->max_nep, (double)c->floor, (double)c->pull);
    melrefine *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(OSCINE_E_NOMEM, "melrefine: out of memory");
    r->win = c->win;
    r->hop = c->hop;
    r->R = c->win / c->hop;
    r->nfft = c->n_fft;
    r->bins = c->n_fft / 2 + 1;
    r->mels = c->n_mels;
    r->K = c->iters;
    r->per = c->pull > 0 ? 2 : 1;
    r->S = r->K * r->per;
    r->sbins = c->win / 2 + 1;
    r->zd = r->per * (r->R - 1) + 1;
    r->depth = (r->S - 1) * (r->R - 1) + 1;
    r->pull = c->pull;
    r->momentum = c->momentum;
    r->max_nep = c->max_nep;
    r->floor = c->floor;
    r->log_floor = logf(c->floor);
    int e = mel_create(&r->bank, c->sample_rate, c->n_fft, c->n_mels, c->fmin, c->fmax);
    if (e) {
        free(r);
        return e;
    }
    const size_t W = (size_t)r->win, B = (size_t)r->bins, M = (size_t)r->mels;
    r->wa = calloc(W, sizeof(float));
    r->ws = calloc(W, sizeof(float));
    r->ws2 = calloc(W, sizeof(float));
    r->band0 = calloc(B, sizeof(int));
    r->w0 = calloc(B, sizeof(float));
    r->w1 = calloc(B, sizeof(float));
    r->st = calloc((size_t)r->S, sizeof(stage));
    r->zin = calloc((size_t)r->K * (size_t)r->zd * (size_t)r->hop, sizeof(float));
    r->melring = calloc((size_t)r->depth * M, sizeof(float));
    if (r->per == 2) {
        r->anring = calloc((size_t)r->depth * (size_t)r->sbins, sizeof(float));
        r->anset = calloc((size_t)r->depth, 1);
    }
    r->mag = calloc(B, sizeof(float));
    r->mhat = calloc(M, sizeof(float));
    r->r = calloc(M, sizeof(float));
    r->z = calloc((size_t)r->hop, sizeof(float));
    r->t = calloc((size_t)r->hop, sizeof(float));
    r->zi = calloc((size_t)r->hop, sizeof(float));
    r->time = fftwf_malloc(sizeof(float) * (size_t)r->nfft);
    r->freq = fftwf_malloc(sizeof(fftwf_complex) * B);
    int ok = r->wa && r->ws && r->ws2 && r->band0 && r->w0 && r->w1 && r->st && r->zin && r->melring &&
             (r->per == 1 || (r->anring && r->anset)) && r->mag && r->mhat && r->r && r->z && r->t && r->zi &&
             r->time && r->freq;
    for (int k = 0; ok && k < r->S; k++) {
        r->st[k].in = calloc(W, sizeof(float));
        r->st[k].acc = calloc(W, sizeof(float));
        ok = r->st[k].in && r->st[k].acc;
    }
    if (!ok) {
        melrefine_destroy(r);
        return err_set(OSCINE_E_NOMEM, "melrefine: out of memory");
    }
    stft_make_window(STFT_WIN_HANN, r->win, r->wa);
    for (int n = 0; n < r->win; n++) { /* as stft.c: the round trip is exact */
        const double d = stft_overlap_power(r->wa, r->win, r->hop, n);
        r->ws[n] = (float)(r->wa[n] / d / r->nfft);
        r->ws2[n] = (float)(r->wa[n] / d / r->win);
    }
    /* Spreading a band error back over the bins: the bank's weights on each
     * bin, normalised (a triangular bank has at most two bands on a bin, and
     * they are neighbours). */
    for (int j = 0; j < r->bins; j++) {
        int first = -1, count = 0;
        double w[2] = {0, 0};
        for (int b = 0; b < r->mels; b++) {
            const float v = mel_weight(r->bank, b, j);
            if (v <= 0)
                continue;
            if (count == 0)
                first = b;
            if (count >= 2 || b != first + count) {
                melrefine_destroy(r);
                return err_set(OSCINE_E_ARG, "melrefine: bin %d lies in bands other than two neighbours", j);
            }
            w[count++] = v;
        }
        r->band0[j] = first;
        r->w0[j] = count ? (float)(w[0] / (w[0] + w[1])) : 0.0f;
        r->w1[j] = count == 2 ? (float)(w[1] / (w[0] + w[1])) : 0.0f;
        if (count == 1 && first == r->mels - 1) /* w1 would read band mels */
            r->w1[j] = 0.0f;
    }
    fft_plan_lock();
    r->fwd = fftwf_plan_dft_r2c_1d(r->nfft, r->time, r->freq, FFTW_ESTIMATE);
    r->inv = fftwf_plan_dft_c2r_1d(r->nfft, r->freq, r->time, FFTW_ESTIMATE);
    if (r->per == 2) {
        r->fwd2 = fftwf_plan_dft_r2c_1d(r->win, r->time, r->freq, FFTW_ESTIMATE);
        r->inv2 = fftwf_plan_dft_c2r_1d(r->win, r->freq, r->time, FFTW_ESTIMATE);
    }
    fft_plan_unlock();
    if (!r->fwd || !r->inv || (r->per == 2 && (!r->fwd2 || !r->inv2))) {
        melrefine_destroy(r);
        return err_set(OSCINE_E_NOMEM, "melrefine: FFTW could not plan size %d", c->n_fft);
    }
    melrefine_reset(r);
    *out = r;
    return 0;
}

void melrefine_destroy(melrefine *r)
{
    if (!r)
        return;
    fft_plan_lock();
    if (r->fwd)
        fftwf_destroy_plan(r->fwd);
    if (r->inv)
        fftwf_destroy_plan(r->inv);
    if (r->fwd2)
        fftwf_destroy_plan(r->fwd2);
    if (r->inv2)
        fftwf_destroy_plan(r->inv2);
    fft_plan_unlock();
    fftwf_free(r->time);
    fftwf_free(r->freq);
    if (r->st)
        for (int k = 0; k < r->S; k++) {
            free(r->st[k].in);
            free(r->st[k].acc);
        }
    free(r->st);
    free(r->zin);
    free(r->anring);
    free(r->anset);
    free(r->ws2);
    mel_destroy(r->bank);
    free(r->wa);
    free(r->ws);
    free(r->band0);
    free(r->w0);
    free(r->w1);
    free(r->melring);
    free(r->mag);
    free(r->mhat);
    free(r->r);
    free(r->z);
    free(r->t);
    free(r->zi);
    free(r);
}

void melrefine_reset(melrefine *r)
{
    const size_t W = (size_t)r->win;
    for (int k = 0; k < r->S; k++) {
        memset(r->st[k].in, 0, sizeof(float) * W);
        memset(r->st[k].acc, 0, sizeof(float) * W);
        r->st[k].n = 0;
    }
    memset(r->zin, 0, sizeof(float) * (size_t)r->K * (size_t)r->zd * (size_t)r->hop);
    for (size_t i = 0; i < (size_t)r->depth * (size_t)r->mels; i++)
        r->melring[i] = r->log_floor;
    if (r->anset)
        memset(r->anset, 0, (size_t)r->depth);
    r->pushed = 0;
    r->end = LLONG_MAX;
}

void melrefine_end(melrefine *r, long long hops) { r->end = hops < 0 ? 0 : hops; }

int melrefine_delay(const melrefine *r) { return r->S * (r->R - 1); }

/* Step s takes hop `in` of its stream, analyses the frame ending there (the
 * mel step against mel; the anchor step against anchor, NULL: none) and
 * overlap-adds it back. Returns 1 when a hop came out, in r->z. */
static int step_hop(melrefine *r, int s, const float *in, const float *mel, const float *anchor)
{
    stage *p = r->st + s;
    const int W = r->win, H = r->hop, M = r->mels;
    const int is_mel = s % r->per == 0;
    const long long i = p->n++;
    memmove(p->in, p->in + H, sizeof(float) * (size_t)(W - H));
    if (i < r->end)
        memcpy(p->in + W - H, in, sizeof(float) * (size_t)H);
    else
        memset(p->in + W - H, 0, sizeof(float) * (size_t)H);
    for (int n = 0; n < W; n++)
        r->time[n] = p->in[n] * r->wa[n];
    if (is_mel) {
        /* the frame's mel, the error per band, the gains */
        const int B = r->bins;
        memset(r->time + W, 0, sizeof(float) * (size_t)(r->nfft - W));
        fftwf_execute(r->fwd);
        for (int j = 0; j < B; j++) {
            const float re = r->freq[j][0], im = r->freq[j][1];
            r->mag[j] = sqrtf(re * re + im * im);
        }
        mel_apply(r->bank, r->mag, r->mhat);
        for (int b = 0; b < M; b++) {
            const float target = mel ? mel[b] : r->log_floor;
            const float d = target - logf(fmaxf(r->mhat[b], r->floor));
            r->r[b] = fminf(fmaxf(d, -r->max_nep), r->max_nep); /* NaN in d -> the clamp */
        }
        for (int j = 0; j < B; j++) {
            const int b = r->band0[j];
            if (b < 0)
                continue;
            const float e = r->w0[j] * r->r[b] + (r->w1[j] > 0 ? r->w1[j] * r->r[b + 1] : 0.0f);
            const float g = expf(e);
            r->freq[j][0] *= g;
            r->freq[j][1] *= g;
        }
        r->freq[0][1] = 0; /* a real signal's DC and Nyquist are real */
        r->freq[B - 1][1] = 0;
        fftwf_execute(r->inv);
        for (int n = 0; n < W; n++)
            p->acc[n] += r->time[n] * r->ws[n];
    } else {
        /* each bin moved `pull` of the way, in the log, towards the anchor */
        const int B = r->sbins;
        fftwf_execute(r->fwd2);
        if (anchor)
            for (int j = 0; j < B; j++) {
                const float re = r->freq[j][0], im = r->freq[j][1];
                const float q = re * re + im * im;
                if (q > 1e-30f) {
                    const float g = expf(r->pull * (anchor[j] - 0.5f * logf(q)));
                    r->freq[j][0] = re * g;
                    r->freq[j][1] = im * g;
                }
            }
        r->freq[0][1] = 0;
        r->freq[B - 1][1] = 0;
        fftwf_execute(r->inv2);
        for (int n = 0; n < W; n++)
            p->acc[n] += r->time[n] * r->ws2[n];
    }
    /* hop i - (R - 1) has all its frames */
    const long long j = i - (r->R - 1);
    int emitted = 0;
    if (j >= 0) {
        emitted = 1;
        if (j < r->end)
            memcpy(r->z, p->acc, sizeof(float) * (size_t)H);
        else
            memset(r->z, 0, sizeof(float) * (size_t)H);
    }
    memmove(p->acc, p->acc + H, sizeof(float) * (size_t)(W - H));
    memset(p->acc + W - H, 0, sizeof(float) * (size_t)H);
    return emitted;
}

void melrefine_hop(melrefine *r, const float *in, const float *mel, const float *anchor, float *out)
{
    const int H = r->hop, M = r->mels, step = r->R - 1, SB = r->sbins;
    const size_t ZH = (size_t)r->zd * (size_t)H;
    const long long m = r->pushed++;
    const size_t slot = (size_t)(m % r->depth);
    if (mel)
        memcpy(r->melring + slot * (size_t)M, mel, sizeof(float) * (size_t)M);
    else
        for (int b = 0; b < M; b++)
            r->melring[slot * (size_t)M + (size_t)b] = r->log_floor;
    if (r->anset) {
        r->anset[slot] = anchor != NULL;
        if (anchor)
            memcpy(r->anring + slot * (size_t)SB, anchor, sizeof(float) * (size_t)SB);
    }
    /* step s takes hop m - s (R - 1) of the stream, with that frame's mel or
     * anchor; a pass's first step also takes the previous pass's plain output
     * at that hop (for the momentum, zeros in the first pass) */
    const float *src = in;
    for (int s = 0; s < r->S; s++) {
        const int k = s / r->per;
        const long long f = m - (long long)s * step;
        const size_t fs = (size_t)(f % r->depth);
        if (s % r->per == 0) {
            float *zr = r->zin + (size_t)k * ZH;
            memmove(zr, zr + H, sizeof(float) * (ZH - (size_t)H));
            if (k > 0 && f < r->end)
                memcpy(zr + ZH - (size_t)H, r->zi, sizeof(float) * (size_t)H);
            else
                memset(zr + ZH - (size_t)H, 0, sizeof(float) * (size_t)H);
        }
        const float *an = r->anset && r->anset[fs] ? r->anring + fs * (size_t)SB : NULL;
        if (!step_hop(r, s, src, r->melring + fs * (size_t)M, an)) {
            memset(out, 0, sizeof(float) * (size_t)H);
            return;
        }
        if (s % r->per == r->per - 1) {
            /* the pass's last step gave hop f - (R - 1), per (R - 1) hops
             * behind its first step's input: the pass's plain output z there,
             * and what it hands on, with the momentum against the previous
             * pass's z at that hop (the oldest in zin) */
            const float *zp = r->zin + (size_t)k * ZH;
            memcpy(r->zi, r->z, sizeof(float) * (size_t)H);
            src = r->zi;
            if (k > 0 && r->momentum > 0) {
                for (int n = 0; n < H; n++)
                    r->t[n] = r->z[n] + r->momentum * (r->z[n] - zp[n]);
                src = r->t;
            }
        } else {
            src = r->z; /* step_hop copies its input before it writes z */
        }
    }
    if (m < (long long)r->S * step) {
        memset(out, 0, sizeof(float) * (size_t)H);
        return;
    }
    memcpy(out, r->zi, sizeof(float) * (size_t)H);
}
