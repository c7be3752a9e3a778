/* loudness.h - A-weighted loudness per frame, the loudness feature of the
 * DDSP synthesizer, as ddsp.spectral_ops.compute_loudness (ddsp >= 3) defines
 * it:
 *
 *   X[k]  = DFT of the last n_fft samples times a periodic Hann window
 *           (no normalisation), k = 0..n_fft/2
 *   A[k]  = A-weighting in dB at k * rate / n_fft (librosa.A_weighting, with
 *           its +2.0 dB offset and its floor of -80 dB)
 *   P     = mean over k of |X[k]|^2 * 10^(A[k] / 10)
 *   dB    = max(10 log10(max(P, 10^(-range_db / 10))) - ref_db, -range_db)
 *
 * with DDSP's defaults n_fft 512 at 16 kHz, range_db 80, ref_db 0. This is not
 * dBFS: a 1 kHz sine at -20 dBFS reads about -0.2 dB, full-scale white noise
 * about +20 dB. The frame describes the signal at its centre:
 * loudness_latency() = n_fft / 2 samples before the last sample pushed.
 */
#ifndef OSCINE_DSP_LOUDNESS_H
#define OSCINE_DSP_LOUDNESS_H

typedef struct loudness_config {
    int sample_rate; /* 8000..192000 Hz */
    int n_fft;       /* even, 16..65536 (0 picks 512) */
    int hop;         /* samples per frame, 1..65536 */
    float range_db;  /* 0 picks 80 */
    float ref_db;    /* reference, subtracted (DDSP: 0) */
} loudness_config;

typedef struct loudness loudness;

/* Thread: control. */
int loudness_create(loudness **out, const loudness_config *cfg);
void loudness_destroy(loudness *l);

int loudness_latency(const loudness *l); /* n_fft / 2 */

/* Push hop samples, get the loudness in dB of the frame ending there.
 * Thread: audio. */
float loudness_process(loudness *l, const float *in);

/* Zero the history. Thread: audio. */
void loudness_reset(loudness *l);

/* librosa.A_weighting(f) in dB, floored at -80 (f = 0 gives -80).
 * Thread: any. */
double loudness_a_weighting_db(double f);

#endif
