/* filtnoise.h - DDSP's filtered noise: white noise shaped, block by block, by
 * a linear-phase FIR designed from band magnitudes by frequency sampling.
 *
 * Filter design (ddsp.core.frequency_impulse_response, generalised to any
 * output rate): n_bands magnitudes M[0..B-1] sit at frequencies
 * b * band_top_hz / (B - 1) (band_top_hz is the model's Nyquist, 8 kHz for a
 * 16 kHz model). The FIR has L = 2 * round((B - 1) * rate / (2 * band_top_hz))
 * taps (128 for 65 bands at 16 kHz, 384 at 48 kHz):
 *   H[j]  = M linearly interpolated at j * rate / L, 0 above band_top_hz
 *           (j = 0..L/2; at rate = 2 * band_top_hz, H[j] = M[j] exactly; at
 *           a lower rate the bands above rate / 2 are never reached)
 *   h0    = real inverse DFT of H (zero phase, length L)
 *   ir[m] = h0[(m - L/2) mod L] * (0.5 - 0.5 cos(2 pi m / L)),  m = 0..L-1
 * i.e. DDSP's Hann window applied in zero-phase form, then shifted to causal
 * form. The filter is linear phase with a delay of exactly L/2 samples
 * (filtnoise_latency); the output is not shifted back.
 *
 * Each process call filters its own block of n samples with the IR of the
 * magnitudes given with it, by FFT, and overlap-adds the tails (DDSP's
 * fft_convolve with one IR per frame, 'valid' alignment, no delay crop).
 *
 * Noise: sample i after create/reset (i = 0, 1, ...) is
 *   z   = splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15)
 *   x_i = g * (2 * (z >> 40) / 2^24 - 1)             uniform in [-g, g)
 * with splitmix64(s): s ^= s >> 30; s *= 0xBF58476D1CE4E5B9;
 *   s ^= s >> 27; s *= 0x94D049BB133111EB; s ^= s >> 31.
 * g = sqrt(rate / (2 * band_top_hz)) keeps the in-band noise power the same
 * at every output rate (1 when rate = 2 * band_top_hz). tools/ddsp/dsp.py
 * (noise_uniform) generates the same numbers.
 */
#ifndef OSCINE_DSP_FILTNOISE_H
#define OSCINE_DSP_FILTNOISE_H

#include <stdint.h>

typedef struct filtnoise_config {
    int sample_rate;    /* output rate, 8000..192000 Hz */
    int n_bands;        /* 2..1025 (65 in DDSP) */
    double band_top_hz; /* frequency of the last band, up to 96 kHz (0: rate / 2); bands
                         * above rate / 2 are left out (a band-limited render) */
    int max_block;      /* largest n per process call, 1..16384 */
    uint64_t seed;
} filtnoise_config;

typedef struct filtnoise filtnoise;

/* Thread: control. */
int filtnoise_create(filtnoise **out, const filtnoise_config *cfg);
void filtnoise_destroy(filtnoise *f);

int filtnoise_ir_length(const filtnoise *f); /* L */
int filtnoise_latency(const filtnoise *f);   /* L / 2 samples */
float filtnoise_gain(const filtnoise *f);    /* g */

/* The FIR (L taps) for the magnitudes mags (n_bands, >= 0; negative or
 * non-finite values are taken as 0). Thread: audio (no allocation), but not
 * concurrently with process on the same object. */
void filtnoise_design(filtnoise *f, const float *mags, float *ir);

/* n (1..max_block) samples of noise filtered with the FIR of mags.
 * Thread: audio. */
void filtnoise_process(filtnoise *f, const float *mags, float *out, int n);

/* The same with the caller's signal in place of the noise (in and out may be
 * the same buffer). Thread: audio. */
void filtnoise_filter(filtnoise *f, const float *mags, const float *in, float *out, int n);

/* Noise back to sample 0, overlap-add tail cleared. Thread: audio. */
void filtnoise_reset(filtnoise *f);

/* The generator on its own: n samples (uniform [-1, 1), before g) starting
 * at sample index `index` of the stream for seed. Thread: any. */
void filtnoise_uniform(uint64_t seed, uint64_t index, float *out, int n);

#endif
