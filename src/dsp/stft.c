/* stft.c - streaming STFT analysis and weighted overlap-add synthesis. */
#include "dsp/stft.h"

#include "base/error.h"
#include "dsp/fftlock.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


struct stft {
    int n_fft, win_len, hop, bins;
    float *wa;      /* (win_len) analysis window */
    float *ws;      /* (win_len) synthesis window, scaled by 1 / n_fft */
    float *hist;    /* (win_len) last win_len input samples */
    float *ola;     /* (win_len) overlap-add accumulator */
    float *frame;   /* (n_fft) FFT time buffer, fftwf_malloc'd */
    fftwf_complex *freq; /* (bins) */
    fftwf_plan fwd, inv;
};

void stft_make_window(stft_window w, int n, float *out)
{
    for (int i = 0; i < n; i++) {
        double c = cos(2.0 * M_PI * i / n);
        double v;
        switch (w) {
        case STFT_WIN_HAMMING: v = 0.54 - 0.46 * c; break;
        case STFT_WIN_SQRT_HANN: v = sqrt(0.5 - 0.5 * c); break;
        default: v = 0.5 - 0.5 * c; break;
        }
        out[i] = (float)v;
    }
}

int stft_create(stft **out, const stft_config *cfg)
{
    *out = NULL;
    if (cfg->n_fft < 16 || cfg->n_fft > 65536 || cfg->n_fft % 2)
        return err_set(OSCINE_E_ARG, "stft: n_fft %d must be even, 16..65536", cfg->n_fft);
    if (cfg->win_len < 1 || cfg->win_len > cfg->n_fft)
        return err_set(OSCINE_E_ARG, "stft: window length %d must be 1..n_fft (%d)",
                       cfg->win_len, cfg->n_fft);
    if (cfg->hop < 1 || cfg->hop > cfg->win_len)
        return err_set(OSCINE_E_ARG, "stft: hop %d must be 1..window length (%d)", cfg->hop,
                       cfg->win_len);
    if ((unsigned)cfg->window >= STFT_WIN_COUNT)
        return err_set(OSCINE_E_ARG, "stft: unknown window type %d", (int)cfg->window);

    stft *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(OSCINE_E_NOMEM, "stft: out of memory");
    s->n_fft = cfg->n_fft;
    s->win_len = cfg->win_len;
    s->hop = cfg->hop;
    s->bins = cfg->n_fft / 2 + 1;
    size_t W = (size_t)s->win_len;
    s->wa = calloc(W, sizeof(float));
    s->ws = calloc(W, sizeof(float));
    s->hist = calloc(W, sizeof(float));
    s->ola = calloc(W, sizeof(float));
    s->frame = fftwf_malloc(sizeof(float) * (size_t)s->n_fft);
    s->freq = fftwf_malloc(sizeof(fftwf_complex) * (size_t)s->bins);
    if (!s->wa || !s->ws || !s->hist || !s->ola || !s->frame || !s->freq) {
        stft_destroy(s);
        return err_set(OSCINE_E_NOMEM, "stft: out of memory");
    }
    stft_make_window(cfg->window, s->win_len, s->wa);

    /* Dual window: every output sample is covered by the frames that overlap
     * it; dividing by the sum of wa^2 over those frames makes the round trip
     * exact for any window and hop <= win_len. */
    for (int n = 0; n < s->win_len; n++) {
        const double d = stft_overlap_power(s->wa, s->win_len, s->hop, n);
        if (d < 1e-9) {
            stft_destroy(s);
            return err_set(OSCINE_E_ARG,
                           "stft: window does not cover every sample at hop %d "
                           "(window length %d)", s->hop, s->win_len);
        }
        s->ws[n] = (float)(s->wa[n] / d / s->n_fft);
    }

    fft_plan_lock();
    s->fwd = fftwf_plan_dft_r2c_1d(s->n_fft, s->frame, s->freq, FFTW_ESTIMATE);
    s->inv = fftwf_plan_dft_c2r_1d(s->n_fft, s->freq, s->frame, FFTW_ESTIMATE);
    fft_plan_unlock();
    if (!s->fwd || !s->inv) {
        stft_destroy(s);
        return err_set(OSCINE_E_NOMEM, "stft: FFTW could not plan size %d", cfg->n_fft);
    }
    *out = s;
    return 0;
}

void stft_destroy(stft *s)
{
    if (!s)
        return;
    fft_plan_lock();
    if (s->fwd)
        fftwf_destroy_plan(s->fwd);
    if (s->inv)
        fftwf_destroy_plan(s->inv);
    fft_plan_unlock();
    fftwf_free(s->frame);
    fftwf_free(s->freq);
    free(s->wa);
    free(s->ws);
    free(s->hist);
    free(s->ola);
    free(s);
}

int stft_bins(const stft *s) { return s->bins; }
int stft_hop(const stft *s) { return s->hop; }
int stft_latency(const stft *s) { return s->win_len - s->hop; }
const float *stft_analysis_window(const stft *s) { return s->wa; }

void stft_reset(stft *s)
{
    memset(s->hist, 0, sizeof(float) * (size_t)s->win_len);
    memset(s->ola, 0, sizeof(float) * (size_t)s->win_len);
}

void stft_analyze(stft *s, const float *in, float *spec)
{
    const int W = s->win_len, H = s->hop;
    memmove(s->hist, s->hist + H, sizeof(float) * (size_t)(W - H));
    memcpy(s->hist + W - H, in, sizeof(float) * (size_t)H);
    for (int i = 0; i < W; i++)
        s->frame[i] = s->hist[i] * s->wa[i];
    for (int i = W; i < s->n_fft; i++)
        s->frame[i] = 0;
    fftwf_execute(s->fwd);
    memcpy(spec, s->freq, sizeof(float) * 2 * (size_t)s->bins);
}

void stft_synthesize(stft *s, const float *spec, float *out)
{
    const int W = s->win_len, H = s->hop;
    memcpy(s->freq, spec, sizeof(float) * 2 * (size_t)s->bins);
    /* A real signal's DC and Nyquist bins are real; c2r assumes so. */
    s->freq[0][1] = 0;
    s->freq[s->bins - 1][1] = 0;
    fftwf_execute(s->inv);
    for (int i = 0; i < W; i++)
        s->ola[i] += s->frame[i] * s->ws[i];
    memcpy(out, s->ola, sizeof(float) * (size_t)H);
    memmove(s->ola, s->ola + H, sizeof(float) * (size_t)(W - H));
    memset(s->ola + W - H, 0, sizeof(float) * (size_t)H);
}

double stft_overlap_power(const float *wa, int win, int hop, int n)
{
    double d = 0;
    for (int m = n % hop; m < win; m += hop)
        d += (double)wa[m] * wa[m];
    return d;
}

size_t stft_frames_for(const stft *s, size_t n)
{
    size_t total = n + (size_t)stft_latency(s);
    return (total + (size_t)s->hop - 1) / (size_t)s->hop;
}

void stft_analyze_buffer(stft *s, const float *x, size_t n, float *spec)
{
    const size_t H = (size_t)s->hop, frames = stft_frames_for(s, n);
    float tmp[H];
    stft_reset(s);
    for (size_t f = 0; f < frames; f++) {
        size_t start = f * H;
        for (size_t i = 0; i < H; i++)
            tmp[i] = start + i < n ? x[start + i] : 0.0f;
        stft_analyze(s, tmp, spec + f * 2 * (size_t)s->bins);
    }
}

void stft_synthesize_buffer(stft *s, const float *spec, size_t n, float *y)
{
    const size_t H = (size_t)s->hop, L = (size_t)stft_latency(s);
    const size_t frames = stft_frames_for(s, n);
    float tmp[H];
    stft_reset(s);
    for (size_t f = 0; f < frames; f++) {
        stft_synthesize(s, spec + f * 2 * (size_t)s->bins, tmp);
        for (size_t i = 0; i < H; i++) {
            size_t t = f * H + i; /* output time; input time t - L */
            if (t >= L && t - L < n)
                y[t - L] = tmp[i];
        }
    }
}
