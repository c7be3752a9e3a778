/* mel.h - Slaney-style mel filterbank (as librosa's default: htk=False,
 * norm='slaney'): mel scale linear below 1 kHz (3 bands per 200 Hz) and
 * logarithmic above, triangular filters normalised to unit area in Hz. */
#ifndef OSCINE_DSP_MEL_H
#define OSCINE_DSP_MEL_H

typedef struct mel_bank mel_bank;

double mel_from_hz(double hz);
double mel_to_hz(double mel);

/* Thread: control. */
int mel_create(mel_bank **out, int sample_rate, int n_fft, int n_mels, double fmin,
               double fmax);
void mel_destroy(mel_bank *m);

int mel_bands(const mel_bank *m);
int mel_bins(const mel_bank *m);

/* Weight of FFT bin k in band b (0 outside the band's support). */
float mel_weight(const mel_bank *m, int band, int bin);

/* out[b] = sum_k w[b][k] * in[k] for bins values in (e.g. magnitudes).
 * Thread: audio. */
void mel_apply(const mel_bank *m, const float *in, float *out);

#endif
