/* rtisi.c - see rtisi.h. */
#include "dsp/rtisi.h"

#include "base/error.h"
#include "dsp/fftlock.h"
#include "dsp/stft.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rtisi {
    int N, H, bins, L, iters, open; /* open = L + 1 frames */
    float *wa, *ws;    /* analysis window; synthesis (dual) window / N */
    float *mag;        /* [open][bins], oldest first */
    float *spec;       /* [open][2 bins] current estimates */
    float *frames;     /* [open][N] their windowed inverse transforms */
    float *done;       /* (N + L H) overlap-add of the finished frames, from the oldest open frame's start */
    float *wdone;      /* (N + L H) their sum of analysis x synthesis windows */
    float *ww;         /* N: analysis x synthesis window (a full overlap sums to 1) */
    float *seg, *wsum; /* N */
    float *time;       /* N, fftwf_malloc'd */
    fftwf_complex *freq;
    fftwf_plan fwd, inv;
    rtisi_fix_fn fix;  /* NULL: none */
    void *fix_ctx;
};

int rtisi_create(rtisi **out, const rtisi_config *c)
{
    *out = NULL;
    if (c->n_fft < 16 || c->n_fft > 4096 || c->n_fft % 2 || c->hop < 1 || c->n_fft % c->hop ||
        c->n_fft / c->hop < 2 || c->lookahead < 0 || c->lookahead > 16 || c->iters < 0 || c->iters > 16)
        return err_set(OSCINE_E_ARG, "rtisi: n_fft %d, hop %d, lookahead %d, iterations %d out of range",
                       c->n_fft, c->hop, c->lookahead, c->iters);
    rtisi *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(OSCINE_E_NOMEM, "rtisi: out of memory");
    r->N = c->n_fft;
    r->H = c->hop;
    r->bins = c->n_fft / 2 + 1;
    r->L = c->lookahead;
    r->iters = c->iters;
    r->open = c->lookahead + 1;
    const size_t N = (size_t)r->N, B = (size_t)r->bins, O = (size_t)r->open;
    r->wa = calloc(N, sizeof(float));
    r->ws = calloc(N, sizeof(float));
    r->mag = calloc(O * B, sizeof(float));
    r->spec = calloc(O * 2 * B, sizeof(float));
    r->frames = calloc(O * N, sizeof(float));
    r->done = calloc(N + (size_t)r->L * r->H, sizeof(float));
    r->wdone = calloc(N + (size_t)r->L * r->H, sizeof(float));
    r->ww = calloc(N, sizeof(float));
    r->seg = calloc(N, sizeof(float));
    r->wsum = calloc(N, sizeof(float));
    r->time = fftwf_malloc(sizeof(float) * N);
    r->freq = fftwf_malloc(sizeof(fftwf_complex) * B);
    if (!r->wa || !r->ws || !r->mag || !r->spec || !r->frames || !r->done || !r->wdone || !r->ww || !r->seg || !r->wsum || !r->time || !r->freq) {
        rtisi_destroy(r);
        return err_set(OSCINE_E_NOMEM, "rtisi: out of memory");
    }
    stft_make_window(STFT_WIN_HANN, r->N, r->wa);
    for (int n = 0; n < r->N; n++) { /* as stft.c: the round trip is exact */
        const double d = stft_overlap_power(r->wa, r->N, r->H, n);
        r->ws[n] = (float)(r->wa[n] / d / r->N);
        r->ww[n] = (float)((double)r->wa[n] * r->wa[n] / d);
    }
    fft_plan_lock();
    r->fwd = fftwf_plan_dft_r2c_1d(r->N, r->time, r->freq, FFTW_ESTIMATE);
    r->inv = fftwf_plan_dft_c2r_1d(r->N, r->freq, r->time, FFTW_ESTIMATE);
    fft_plan_unlock();
    if (!r->fwd || !r->inv) {
        rtisi_destroy(r);
        return err_set(OSCINE_E_NOMEM, "rtisi: FFTW could not plan size %d", c->n_fft);
    }
    rtisi_reset(r);
    *out = r;
    return 0;
}

void rtisi_destroy(rtisi *r)
{
    if (!r)
        return;
    fft_plan_lock();
    if (r->fwd)
        fftwf_destroy_plan(r->fwd);
    if (r->inv)
        fftwf_destroy_plan(r->inv);
    fft_plan_unlock();
    fftwf_free(r->time);
    fftwf_free(r->freq);
    free(r->wa);
    free(r->ws);
    free(r->mag);
    free(r->spec);
    free(r->frames);
    free(r->done);
    free(r->wdone);
    free(r->ww);
    free(r->seg);
    free(r->wsum);
    free(r);
}

void rtisi_reset(rtisi *r)
{
    const size_t N = (size_t)r->N, B = (size_t)r->bins, O = (size_t)r->open;
    memset(r->mag, 0, sizeof(float) * O * B);
    memset(r->spec, 0, sizeof(float) * O * 2 * B);
    memset(r->frames, 0, sizeof(float) * O * N);
    memset(r->done, 0, sizeof(float) * (N + (size_t)r->L * r->H));
    memset(r->wdone, 0, sizeof(float) * (N + (size_t)r->L * r->H));
    /* Silence before the stream: the open frames are silent ones, and so are
     * the finished frames before them, whose windows count. */
    for (int m = 1; m * r->H < r->N; m++)
        for (int n = 0; n + m * r->H < r->N; n++)
            r->wdone[n] += r->ww[n + m * r->H];
}

int rtisi_lookahead(const rtisi *r) { return r->L; }

void rtisi_set_fix(rtisi *r, rtisi_fix_fn fn, void *ctx)
{
    r->fix = fn;
    r->fix_ctx = ctx;
}

/* Open frame j's spectrum -> its windowed inverse transform. */
static void synth(rtisi *r, int j)
{
    const int N = r->N;
    memcpy(r->freq, r->spec + (size_t)j * 2 * r->bins, sizeof(float) * 2 * (size_t)r->bins);
    r->freq[0][1] = 0; /* a real signal's DC and Nyquist are real */
    r->freq[r->bins - 1][1] = 0;
    fftwf_execute(r->inv);
    float *f = r->frames + (size_t)j * N;
    for (int n = 0; n < N; n++)
        f[n] = r->time[n] * r->ws[n];
}

/* Open frame j <- the spectrum of what everything overlap-adds to in its span,
 * with its magnitude put back (bins without energy keep their phase). Where
 * frames are still missing (the newest frames' tails) the sum is divided by
 * the windows present, so a consistent spectrogram stays as it is. */
static void project(rtisi *r, int j, int last)
{
    const int N = r->N, H = r->H;
    float *seg = r->seg, *wsum = r->wsum;
    memcpy(seg, r->done + (size_t)j * H, sizeof(float) * (size_t)N);
    memcpy(wsum, r->wdone + (size_t)j * H, sizeof(float) * (size_t)N);
    for (int i = 0; i < r->open; i++) {
        const int d = (i - j) * H; /* frame i starts d samples after frame j */
        const float *f = r->frames + (size_t)i * N;
        if (d >= N || d <= -N)
            continue;
        if (d >= 0)
            for (int n = d; n < N; n++) {
                seg[n] += f[n - d];
                wsum[n] += r->ww[n - d];
            }
        else
            for (int n = 0; n < N + d; n++) {
                seg[n] += f[n - d];
                wsum[n] += r->ww[n - d];
            }
    }
    for (int n = 0; n < N; n++)
        r->time[n] = wsum[n] > 1e-3f ? seg[n] / wsum[n] * r->wa[n] : 0.0f;
    float *m = r->mag + (size_t)j * r->bins;
    if (last && j == 0 && r->fix)
        r->fix(r->fix_ctx, r->time, m);
    fftwf_execute(r->fwd);
    float *s = r->spec + (size_t)j * 2 * r->bins;
    /* |X|^2 rather than hypotf, which guards against overflow these values
     * (a frame's FFT, |x| <= 1 in ordinary audio) never reach, at several
     * times the cost of the pass. Below 1e-15 (-300 dB) a bin keeps its phase. */
    for (int k = 0; k < r->bins; k++) {
        const float re = r->freq[k][0], im = r->freq[k][1];
        const float p = re * re + im * im;
        if (p > 1e-30f) {
            const float g = m[k] / sqrtf(p);
            s[2 * k] = g * re;
            s[2 * k + 1] = g * im;
        }
    }
    synth(r, j);
}

void rtisi_frame(rtisi *r, const float *spec, float *out)
{
    const int N = r->N, H = r->H, B = r->bins, O = r->open;
    /* the newest open slot */
    float *m = r->mag + (size_t)(O - 1) * B, *s = r->spec + (size_t)(O - 1) * 2 * B;
    if (spec) {
        memcpy(s, spec, sizeof(float) * 2 * (size_t)B);
        for (int k = 0; k < B; k++)
            m[k] = hypotf(spec[2 * k], spec[2 * k + 1]);
    } else {
        memset(s, 0, sizeof(float) * 2 * (size_t)B);
        memset(m, 0, sizeof(float) * (size_t)B);
    }
    synth(r, O - 1);
    for (int it = 0; it < r->iters; it++)
        for (int j = 0; j < O; j++)
            project(r, j, it == r->iters - 1);
    /* finish the oldest open frame: its first hop is complete */
    const float *f0 = r->frames;
    for (int n = 0; n < N; n++) {
        r->done[n] += f0[n];
        r->wdone[n] += r->ww[n];
    }
    memcpy(out, r->done, sizeof(float) * (size_t)H);
    const size_t D = (size_t)N + (size_t)r->L * H;
    memmove(r->done, r->done + H, sizeof(float) * (D - H));
    memset(r->done + D - H, 0, sizeof(float) * (size_t)H);
    memmove(r->wdone, r->wdone + H, sizeof(float) * (D - H));
    memset(r->wdone + D - H, 0, sizeof(float) * (size_t)H);
    /* slide the open frames by one */
    memmove(r->mag, r->mag + B, sizeof(float) * (size_t)(O - 1) * B);
    memmove(r->spec, r->spec + 2 * B, sizeof(float) * (size_t)(O - 1) * 2 * B);
    memmove(r->frames, r->frames + N, sizeof(float) * (size_t)(O - 1) * N);
}
