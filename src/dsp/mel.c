/* mel.c - Slaney mel filterbank, stored sparsely (each band's first bin and
 * its run of non-zero weights). */
#include "dsp/mel.h"

#include "base/error.h"

#include <math.h>
#include <stdlib.h>

#define F_SP (200.0 / 3.0)
#define MIN_LOG_HZ 1000.0
#define MIN_LOG_MEL (MIN_LOG_HZ / F_SP)
#define LOGSTEP (log(6.4) / 27.0)

struct mel_bank {
    int n_mels, bins;
    int *start, *len; /* (n_mels) */
    float *w;         /* (n_mels, bins) dense copy, for mel_weight */
};

double mel_from_hz(double hz)
{
    if (hz < MIN_LOG_HZ)
        return hz / F_SP;
    return MIN_LOG_MEL + log(hz / MIN_LOG_HZ) / LOGSTEP;
}

double mel_to_hz(double mel)
{
    if (mel < MIN_LOG_MEL)
        return mel * F_SP;
    return MIN_LOG_HZ * exp(LOGSTEP * (mel - MIN_LOG_MEL));
}

int mel_create(mel_bank **out, int sample_rate, int n_fft, int n_mels, double f_lo,
               double f_hi)
{
    *out = NULL;
    if (sample_rate < 1000 || n_fft < 16 || n_mels < 1 || n_mels > 1024 || f_lo < 0 ||
        f_hi <= f_lo || f_hi > sample_rate / 2.0)
        return err_set(OSCINE_E_ARG,
                       "mel: bad configuration (rate %d, n_fft %d, %d bands, %g..%g Hz)",
                       sample_rate, n_fft, n_mels, f_lo, f_hi);
    mel_bank *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(OSCINE_E_NOMEM, "mel: out of memory");
    m->n_mels = n_mels;
    m->bins = n_fft / 2 + 1;
    m->start = calloc((size_t)n_mels, sizeof(int));
    m->len = calloc((size_t)n_mels, sizeof(int));
    m->w = calloc((size_t)n_mels * (size_t)m->bins, sizeof(float));
    double *hz = malloc(sizeof(double) * (size_t)(n_mels + 2));
    if (!m->start || !m->len || !m->w || !hz) {
        free(hz);
        mel_destroy(m);
        return err_set(OSCINE_E_NOMEM, "mel: out of memory");
    }
    double lo = mel_from_hz(f_lo), hi = mel_from_hz(f_hi);
    for (int i = 0; i < n_mels + 2; i++)
        hz[i] = mel_to_hz(lo + (hi - lo) * i / (n_mels + 1));
    for (int b = 0; b < n_mels; b++) {
        double enorm = 2.0 / (hz[b + 2] - hz[b]);
        int first = -1, last = -1;
        for (int k = 0; k < m->bins; k++) {
            double f = (double)k * sample_rate / n_fft;
            double up = (f - hz[b]) / (hz[b + 1] - hz[b]);
            double down = (hz[b + 2] - f) / (hz[b + 2] - hz[b + 1]);
            double v = fmax(0.0, fmin(up, down)) * enorm;
            m->w[(size_t)b * m->bins + k] = (float)v;
            if (v > 0) {
                if (first < 0)
                    first = k;
                last = k;
            }
        }
        m->start[b] = first < 0 ? 0 : first;
        m->len[b] = first < 0 ? 0 : last - first + 1;
    }
    free(hz);
    *out = m;
    return 0;
}

void mel_destroy(mel_bank *m)
{
    if (!m)
        return;
    free(m->start);
    free(m->len);
    free(m->w);
    free(m);
}

int mel_bands(const mel_bank *m) { return m->n_mels; }
int mel_bins(const mel_bank *m) { return m->bins; }

float mel_weight(const mel_bank *m, int band, int bin)
{
    if (band < 0 || band >= m->n_mels || bin < 0 || bin >= m->bins)
        return 0;
    return m->w[(size_t)band * m->bins + bin];
}

void mel_apply(const mel_bank *m, const float *in, float *out)
{
    for (int b = 0; b < m->n_mels; b++) {
        const float *w = m->w + (size_t)b * m->bins + m->start[b];
        const float *x = in + m->start[b];
        float acc = 0;
        for (int k = 0; k < m->len[b]; k++)
            acc += w[k] * x[k];
        out[b] = acc;
    }
}
