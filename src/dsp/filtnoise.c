/* filtnoise.c - filtered noise (see filtnoise.h for the design). */
#include "dsp/filtnoise.h"

#include "base/error.h"
#include "dsp/fftlock.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN 0x9E3779B97F4A7C15ULL

struct filtnoise {
    int sr, nb, L, nfft, max_block;
    double top;
    float gain;
    uint64_t seed, index;
    float *hwin;        /* (L) Hann window, periodic */
    float *bpos;        /* (L/2 + 1) band position of each design bin, < 0: above top */
    float *dbuf;        /* (L) design: c2r output, fftwf_malloc'd */
    fftwf_complex *dspec; /* (L/2 + 1) design input */
    float *tbuf;        /* (nfft) time buffer, fftwf_malloc'd */
    fftwf_complex *xs;  /* (nfft/2 + 1) signal spectrum */
    fftwf_complex *hs;  /* (nfft/2 + 1) filter spectrum */
    float *ola;         /* (nfft) overlap-add accumulator */
    float *noise;       /* (max_block) */
    fftwf_plan design, fwd_x, fwd_h, inv;
};

static uint64_t splitmix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void filtnoise_uniform(uint64_t seed, uint64_t index, float *out, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t z = splitmix64(seed + (index + (uint64_t)i + 1) * GOLDEN);
        out[i] = (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
}

int filtnoise_create(filtnoise **out, const filtnoise_config *cfg)
{
    *out = NULL;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 192000)
        return err_set(OSCINE_E_ARG, "filtnoise: sample rate %d Hz out of range 8000..192000",
                       cfg->sample_rate);
    if (cfg->n_bands < 2 || cfg->n_bands > 1025)
        return err_set(OSCINE_E_ARG, "filtnoise: %d bands, need 2..1025", cfg->n_bands);
    /* bands above the output's Nyquist (a 16 kHz model played at 8 kHz) are
     * simply not reached by the design grid: the render is band-limited */
    if (!(cfg->band_top_hz >= 0 && cfg->band_top_hz <= 96000.0))
        return err_set(OSCINE_E_ARG, "filtnoise: top band %g Hz: need 0..96000 Hz (0: the "
                       "output's Nyquist)", cfg->band_top_hz);
    double top = cfg->band_top_hz > 0 ? cfg->band_top_hz : cfg->sample_rate / 2.0;
    if (cfg->max_block < 1 || cfg->max_block > 16384)
        return err_set(OSCINE_E_ARG, "filtnoise: block %d out of range 1..16384",
                       cfg->max_block);
    long L = 2 * lround((cfg->n_bands - 1) * cfg->sample_rate / (2.0 * top));
    if (L < 2 || L > 65536)
        return err_set(OSCINE_E_ARG, "filtnoise: filter length %ld out of range 2..65536 "
                       "(%d bands up to %g Hz at %d Hz)", L, cfg->n_bands, top, cfg->sample_rate);
    filtnoise *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(OSCINE_E_NOMEM, "filtnoise: out of memory");
    f->sr = cfg->sample_rate;
    f->nb = cfg->n_bands;
    f->top = top;
    f->L = (int)L;
    f->max_block = cfg->max_block;
    f->seed = cfg->seed;
    f->gain = (float)sqrt(f->sr / (2.0 * top));
    f->nfft = 16;
    while (f->nfft < f->max_block + f->L - 1)
        f->nfft *= 2;
    const int half = f->L / 2, bins = f->nfft / 2 + 1;
    f->hwin = malloc(sizeof(float) * (size_t)f->L);
    f->bpos = malloc(sizeof(float) * (size_t)(half + 1));
    f->dbuf = fftwf_malloc(sizeof(float) * (size_t)f->L);
    f->dspec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(half + 1));
    f->tbuf = fftwf_malloc(sizeof(float) * (size_t)f->nfft);
    f->xs = fftwf_malloc(sizeof(fftwf_complex) * (size_t)bins);
    f->hs = fftwf_malloc(sizeof(fftwf_complex) * (size_t)bins);
    f->ola = calloc((size_t)f->nfft, sizeof(float));
    f->noise = malloc(sizeof(float) * (size_t)f->max_block);
    if (!f->hwin || !f->bpos || !f->dbuf || !f->dspec || !f->tbuf || !f->xs || !f->hs ||
        !f->ola || !f->noise) {
        filtnoise_destroy(f);
        return err_set(OSCINE_E_NOMEM, "filtnoise: out of memory");
    }
    for (int m = 0; m < f->L; m++)
        f->hwin[m] = (float)(0.5 - 0.5 * cos(2 * M_PI * m / f->L));
    for (int j = 0; j <= half; j++) {
        double b = (double)j * f->sr / f->L / top * (f->nb - 1);
        f->bpos[j] = b <= f->nb - 1 + 1e-9 ? (float)b : -1.0f;
    }
    fft_plan_lock();
    f->design = fftwf_plan_dft_c2r_1d(f->L, f->dspec, f->dbuf, FFTW_ESTIMATE);
    f->fwd_x = fftwf_plan_dft_r2c_1d(f->nfft, f->tbuf, f->xs, FFTW_ESTIMATE);
    f->fwd_h = fftwf_plan_dft_r2c_1d(f->nfft, f->tbuf, f->hs, FFTW_ESTIMATE);
    f->inv = fftwf_plan_dft_c2r_1d(f->nfft, f->xs, f->tbuf, FFTW_ESTIMATE);
    fft_plan_unlock();
    if (!f->design || !f->fwd_x || !f->fwd_h || !f->inv) {
        filtnoise_destroy(f);
        return err_set(OSCINE_E_NOMEM, "filtnoise: FFTW could not plan");
    }
    filtnoise_reset(f);
    *out = f;
    return 0;
}

void filtnoise_destroy(filtnoise *f)
{
    if (!f)
        return;
    fft_plan_lock();
    if (f->design)
        fftwf_destroy_plan(f->design);
    if (f->fwd_x)
        fftwf_destroy_plan(f->fwd_x);
    if (f->fwd_h)
        fftwf_destroy_plan(f->fwd_h);
    if (f->inv)
        fftwf_destroy_plan(f->inv);
    fft_plan_unlock();
    fftwf_free(f->dbuf);
    fftwf_free(f->dspec);
    fftwf_free(f->tbuf);
    fftwf_free(f->xs);
    fftwf_free(f->hs);
    free(f->hwin);
    free(f->bpos);
    free(f->ola);
    free(f->noise);
    free(f);
}

int filtnoise_ir_length(const filtnoise *f) { return f->L; }
int filtnoise_latency(const filtnoise *f) { return f->L / 2; }
float filtnoise_gain(const filtnoise *f) { return f->gain; }

void filtnoise_reset(filtnoise *f)
{
    f->index = 0;
    memset(f->ola, 0, sizeof(float) * (size_t)f->nfft);
}

static float mag(const float *mags, int i)
{
    float m = mags[i];
    return isfinite(m) && m > 0 ? m : 0.0f;
}

void filtnoise_design(filtnoise *f, const float *mags, float *ir)
{
    const int L = f->L, half = L / 2;
    for (int j = 0; j <= half; j++) {
        float b = f->bpos[j], v = 0;
        if (b >= 0) {
            int i = (int)b;
            if (i >= f->nb - 1)
                v = mag(mags, f->nb - 1);
            else
                v = mag(mags, i) + (mag(mags, i + 1) - mag(mags, i)) * (b - (float)i);
        }
        f->dspec[j][0] = v;
        f->dspec[j][1] = 0;
    }
    fftwf_execute(f->design); /* dbuf = unnormalised inverse DFT, zero phase */
    const float scale = 1.0f / (float)L;
    for (int m = 0; m < L; m++)
        ir[m] = f->dbuf[(m + half) % L] * f->hwin[m] * scale;
}

void filtnoise_filter(filtnoise *f, const float *mags, const float *in, float *out, int n)
{
    const int L = f->L, N = f->nfft, bins = N / 2 + 1;
    if (n > f->max_block)
        n = f->max_block;
    /* the FIR goes through tbuf into hs */
    filtnoise_design(f, mags, f->tbuf);
    memset(f->tbuf + L, 0, sizeof(float) * (size_t)(N - L));
    fftwf_execute(f->fwd_h);
    memcpy(f->tbuf, in, sizeof(float) * (size_t)n);
    memset(f->tbuf + n, 0, sizeof(float) * (size_t)(N - n));
    fftwf_execute(f->fwd_x);
    const float s = 1.0f / (float)N;
    for (int j = 0; j < bins; j++) {
        float xr = f->xs[j][0], xi = f->xs[j][1], hr = f->hs[j][0], hi = f->hs[j][1];
        f->xs[j][0] = (xr * hr - xi * hi) * s;
        f->xs[j][1] = (xr * hi + xi * hr) * s;
    }
    fftwf_execute(f->inv);
    const int len = n + L - 1;
    for (int i = 0; i < len; i++)
        f->ola[i] += f->tbuf[i];
    memcpy(out, f->ola, sizeof(float) * (size_t)n);
    memmove(f->ola, f->ola + n, sizeof(float) * (size_t)(N - n));
    memset(f->ola + N - n, 0, sizeof(float) * (size_t)n);
}

void filtnoise_process(filtnoise *f, const float *mags, float *out, int n)
{
    if (n > f->max_block)
        n = f->max_block;
    filtnoise_uniform(f->seed, f->index, f->noise, n);
    f->index += (uint64_t)n;
    for (int i = 0; i < n; i++)
        f->noise[i] *= f->gain;
    filtnoise_filter(f, mags, f->noise, out, n);
}
