/* pitch.h - streaming YIN fundamental-frequency tracker with a voicing
 * confidence, the f0 feature of the DDSP synthesizer (in place of CREPE).
 *
 * Every hop samples it analyses the last frame_len samples x[0..L-1] (a
 * power of two, 1024 at 16 kHz with fmin 40 Hz):
 *   T        = ceil(rate / fmin) + 1 lags, W = L - T (integration window)
 *   d(tau)   = sum_{j<W} (x[j] - x[j + tau])^2 + sum_{j>=L-W} (x[j] - x[j - tau])^2
 *              the difference function made symmetric about the frame's
 *              centre for every lag (one-sided YIN analyses [0, W + tau),
 *              which sits up to T/2 samples early for short lags); computed
 *              with FFT cross-correlations
 *   d'(tau)  = d(tau) * tau / sum_{s=1..tau} d(s)      cumulative mean normalised
 *   tau*     = the first local minimum of d' in [rate/fmax, rate/fmin] whose
 *              parabolic minimum (through its 3 lags) is below threshold; else
 *              the dip with the lowest parabolic minimum. (Judging the sampled
 *              d' misses the true dip of high notes, 10-20 lags per period,
 *              and picks the octave below.)
 *   refined  = minimum of d(tau) over fractional tau in (tau* - 1, tau* + 1),
 *              d evaluated exactly between lags (trigonometric interpolation
 *              of the cross-correlation, Newton steps), so the estimate has no
 *              parabolic-interpolation bias (< 1 cent on harmonic tones)
 *   f0       = rate / refined
 *   confidence = 1 - (parabolic minimum of d' at tau*), clamped to [0, 1];
 *              periodic sounds give ~0.9-1, white noise ~0.1-0.2. It measures
 *              periodicity, not level: a decaying tail 60 dB down still reads
 *              voiced (gate with the loudness if that matters).
 * A frame whose RMS is below 1e-5 (-100 dBFS) reports f0 0, confidence 0.
 *
 * The frame describes the signal at its centre: pitch_latency() =
 * frame_len / 2 samples before the last sample pushed.
 */
#ifndef OSCINE_DSP_PITCH_H
#define OSCINE_DSP_PITCH_H

typedef struct pitch_config {
    int sample_rate;  /* 8000..96000 Hz (16000 for DDSP) */
    int hop;          /* samples per frame, 1..16384 */
    float fmin, fmax; /* search range in Hz; 0 picks 40 and 2000 */
    float threshold;  /* YIN absolute threshold on d'; 0 picks 0.15 */
} pitch_config;

typedef struct pitch_frame {
    float f0_hz;
    float confidence; /* 0..1 */
} pitch_frame;

typedef struct pitch pitch;

/* Thread: control. */
int pitch_create(pitch **out, const pitch_config *cfg);
void pitch_destroy(pitch *p);

int pitch_frame_length(const pitch *p);
int pitch_latency(const pitch *p); /* frame_len / 2 */

/* Push hop samples, get the frame that ends with them. Thread: audio. */
void pitch_process(pitch *p, const float *in, pitch_frame *out);

/* Zero the history. Thread: audio. */
void pitch_reset(pitch *p);

#endif
