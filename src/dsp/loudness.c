/* loudness.c - DDSP's A-weighted loudness (see loudness.h). */
#include "dsp/loudness.h"

#include "base/error.h"
#include "dsp/fftlock.h"
#include "dsp/stft.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct loudness {
    int n_fft, hop, bins, hist_len;
    float range_db, ref_db;
    double floor_power;
    float *hist;          /* (hist_len) last samples */
    float *win;           /* (n_fft) periodic Hann */
    double *weight;       /* (bins) 10^(A/10) / bins */
    float *frame;         /* (n_fft) fftwf_malloc'd */
    fftwf_complex *spec;  /* (bins) */
    fftwf_plan plan;
};

double loudness_a_weighting_db(double f)
{
    /* IEC 61672 A-curve poles, as librosa writes them */
    const double c0 = 12194.217 * 12194.217, c1 = 20.598997 * 20.598997;
    const double c2 = 107.65265 * 107.65265, c3 = 737.86223 * 737.86223;
    if (!(f > 0))
        return -80.0;
    double f2 = f * f;
    double a = 2.0 + 20.0 * (log10(c0) + 2 * log10(f2) - log10(f2 + c0) - log10(f2 + c1) -
                             0.5 * log10(f2 + c2) - 0.5 * log10(f2 + c3));
    return a > -80.0 ? a : -80.0;
}

int loudness_create(loudness **out, const loudness_config *cfg)
{
    *out = NULL;
    int n_fft = cfg->n_fft ? cfg->n_fft : 512;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 192000)
        return err_set(OSCINE_E_ARG, "loudness: sample rate %d Hz out of range 8000..192000",
                       cfg->sample_rate);
    if (n_fft < 16 || n_fft > 65536 || n_fft % 2)
        return err_set(OSCINE_E_ARG, "loudness: n_fft %d must be even, 16..65536", n_fft);
    if (cfg->hop < 1 || cfg->hop > 65536)
        return err_set(OSCINE_E_ARG, "loudness: hop %d out of range 1..65536", cfg->hop);
    float range = cfg->range_db > 0 ? cfg->range_db : 80.0f;
    if (!isfinite(range) || !isfinite(cfg->ref_db))
        return err_set(OSCINE_E_ARG, "loudness: range and reference must be finite");
    loudness *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(OSCINE_E_NOMEM, "loudness: out of memory");
    l->n_fft = n_fft;
    l->hop = cfg->hop;
    l->bins = n_fft / 2 + 1;
    l->hist_len = n_fft > l->hop ? n_fft : l->hop;
    l->range_db = range;
    l->ref_db = cfg->ref_db;
    l->floor_power = pow(10.0, -range / 10.0);
    l->hist = calloc((size_t)l->hist_len, sizeof(float));
    l->win = malloc(sizeof(float) * (size_t)n_fft);
    l->weight = malloc(sizeof(double) * (size_t)l->bins);
    l->frame = fftwf_malloc(sizeof(float) * (size_t)n_fft);
    l->spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)l->bins);
    if (!l->hist || !l->win || !l->weight || !l->frame || !l->spec) {
        loudness_destroy(l);
        return err_set(OSCINE_E_NOMEM, "loudness: out of memory");
    }
    stft_make_window(STFT_WIN_HANN, n_fft, l->win);
    for (int k = 0; k < l->bins; k++) {
        double a = loudness_a_weighting_db((double)k * cfg->sample_rate / n_fft);
        l->weight[k] = pow(10.0, a / 10.0) / l->bins;
    }
    fft_plan_lock();
    l->plan = fftwf_plan_dft_r2c_1d(n_fft, l->frame, l->spec, FFTW_ESTIMATE);
    fft_plan_unlock();
    if (!l->plan) {
        loudness_destroy(l);
        return err_set(OSCINE_E_NOMEM, "loudness: FFTW could not plan size %d", n_fft);
    }
    *out = l;
    return 0;
}

void loudness_destroy(loudness *l)
{
    if (!l)
        return;
    if (l->plan) {
        fft_plan_lock();
        fftwf_destroy_plan(l->plan);
        fft_plan_unlock();
    }
    fftwf_free(l->frame);
    fftwf_free(l->spec);
    free(l->hist);
    free(l->win);
    free(l->weight);
    free(l);
}

int loudness_latency(const loudness *l) { return l->n_fft / 2; }

void loudness_reset(loudness *l) { memset(l->hist, 0, sizeof(float) * (size_t)l->hist_len); }

float loudness_process(loudness *l, const float *in)
{
    const int H = l->hop, keep = l->hist_len - H;
    memmove(l->hist, l->hist + H, sizeof(float) * (size_t)keep);
    memcpy(l->hist + keep, in, sizeof(float) * (size_t)H);
    const float *x = l->hist + l->hist_len - l->n_fft;
    for (int i = 0; i < l->n_fft; i++)
        l->frame[i] = x[i] * l->win[i];
    fftwf_execute(l->plan);
    double p = 0;
    for (int k = 0; k < l->bins; k++) {
        double re = l->spec[k][0], im = l->spec[k][1];
        p += (re * re + im * im) * l->weight[k];
    }
    if (!(p >= l->floor_power)) /* also catches NaN */
        p = l->floor_power;
    double db = 10.0 * log10(p) - l->ref_db;
    return (float)(db > -l->range_db ? db : -l->range_db);
}
