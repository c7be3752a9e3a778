/* harmonic.h - DDSP's harmonic oscillator bank: up to 100 sinusoids at
 * integer multiples of f0, driven by control frames, rendered at any rate.
 *
 * Timing (the same as ddsp.core.harmonic_synthesis and tools/ddsp/dsp.py):
 * control frame k takes effect exactly at output sample position
 * t_k = k * sample_rate / frame_rate (need not be an integer). For an output
 * sample t with p = t * frame_rate / sample_rate between frames k-1 and k
 * (k - 1 <= p < k, u = p - (k - 1)):
 *
 *   f0(t)     = f0[k-1] + (f0[k] - f0[k-1]) * u                   linear
 *   a_h(t)    = A_h[k-1] + (A_h[k] - A_h[k-1]) * (1 - cos(pi u)) / 2
 *               with A_h[k] = amp[k] * dist[k][h-1]                raised cosine
 *   phase(t)  = phase(t - 1) + f0(t) / sample_rate   (cycles; phase(-1) = 0)
 *   out(t)    = sum_h a_h(t) * sin(2 pi h phase(t)),   only where h f0(t) < sample_rate / 2
 *
 * The raised-cosine amplitude crossfade is DDSP's "window" resampling, the
 * linear f0 its bilinear one, and the phase its inclusive cumulative sum.
 * The phase is one double-precision accumulator in cycles, wrapped to [0, 1)
 * every sample; harmonic h uses h * phase, which is exact modulo 1, so a note
 * held for hours neither drifts nor clicks.
 *
 * Streaming: harmonic_process(frame k) renders the samples from frame k-1 up
 * to (not including) frame k, so the output lags the controls by one frame
 * (the interpolation needs the next frame). The first call after create or
 * reset renders nothing. To render a whole buffer of F frames as DDSP does
 * (F * sample_rate / frame_rate samples, the last frame held), push the F
 * frames and then the last one again.
 */
#ifndef OSCINE_DSP_HARMONIC_H
#define OSCINE_DSP_HARMONIC_H

#define HARMONIC_MAX 100

typedef struct harmonic_config {
    int sample_rate;   /* output rate, 8000..192000 Hz */
    double frame_rate; /* control frames per second, 1..sample_rate */
    int n_harmonics;   /* 1..HARMONIC_MAX */
} harmonic_config;

typedef struct harmonic harmonic;

/* Thread: control. */
int harmonic_create(harmonic **out, const harmonic_config *cfg);
void harmonic_destroy(harmonic *h);

/* Largest count one harmonic_process call returns: ceil(rate / frame_rate).
 * Thread: any. */
int harmonic_max_segment(const harmonic *h);

/* Push the next control frame: f0 in Hz, global amplitude amp, and dist
 * (n_harmonics values; amplitude of harmonic h is amp * dist[h-1]). The values
 * are used as given (see harmonic_controls for DDSP's scaling). Non-finite or
 * negative inputs are taken as 0. Writes the segment's samples to out (room for
 * harmonic_max_segment) and returns how many. Thread: audio. */
int harmonic_process(harmonic *h, float f0_hz, float amp, const float *dist, float *out);

/* Forget the previous frame and zero the phase. Thread: audio. */
void harmonic_reset(harmonic *h);

/* DDSP's control scaling for one frame (ddsp.synths.Harmonic.get_controls):
 *   amp      = exp_sigmoid(amp_logit)
 *   dist[i]  = exp_sigmoid(dist_logits[i]), 0 where (i + 1) * f0 >= model_rate / 2,
 *              then divided by its sum (all 0 if nothing is left)
 * with exp_sigmoid(x) = 2 * sigmoid(x)^ln(10) + 1e-7. model_rate is the rate
 * the decoder was trained at (its Nyquist defines the timbre), not the output
 * rate. Thread: any. */
void harmonic_controls(float amp_logit, const float *dist_logits, int n, float f0_hz,
                       double model_rate, float *amp, float *dist);

/* 2 * sigmoid(x)^ln(10) + 1e-7. Thread: any. */
float ddsp_exp_sigmoid(float x);

#endif
