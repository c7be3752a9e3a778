/* melrefine.h - streaming refinement that pulls a signal onto a given
 * log-mel spectrogram, pass after pass, as the mel front end measures it:
 * Griffin-Lim's alternation with the mel in place of the magnitude.
 *
 * One pass over a signal s: each frame (the `win` samples ending at a hop,
 * periodic Hann, zero-padded to n_fft) has spectrum Y and mel M = |Y| fb^T;
 * per band r = ln(exp(mel) / max(M, floor)), clamped to +-max_nep; each bin
 * j is scaled by exp(sum_b fb[b][j] r_b / sum_b fb[b][j]) (1 where no band
 * weighs it), transformed back, its first `win` samples times the dual window
 * overlap-added. With pull > 0 the pass then anchors the result to given
 * log-amplitudes (the network's, on a win-point grid): each frame's win-point
 * spectrum, every bin of magnitude a > 1e-15 scaled by exp(pull (anchor -
 * ln a)), overlap-added the same way. That is the pass's output z. Passes
 * run one after the other, each on the previous one's output, or with
 * momentum m on z_k + m (z_k - z_{k-1}) (fast Griffin-Lim's acceleration, on
 * the signal; from the second pass). The result is the last pass's z.
 *
 * Streaming: each step (mel, anchor) of each pass runs as a pipeline stage
 * win / hop - 1 hops behind the one before, so the output lags the input by
 * iters * (win / hop - 1) hops, twice that with the anchor (melrefine_delay),
 * and equals the whole-signal computation: the signal is zero before the
 * first hop (after reset) and, once melrefine_end says where it stops, after
 * its end, at every step. tools/vocoder/audio.py (mel_refine) is the
 * reference.
 *
 * Used by the vocoder's file synthesis (models/vocoder.h), after RTISI-LA:
 * the network's amplitude and phase are the starting point, the input mel
 * the target. */
#ifndef OSCINE_DSP_MELREFINE_H
#define OSCINE_DSP_MELREFINE_H

typedef struct melrefine_config {
    int win;           /* frame = Hann window length, even, 16..4096 */
    int hop;           /* divides win, win / hop >= 2 */
    int n_fft;         /* of the mel analysis, >= win, even, <= 8192 */
    int sample_rate;   /* and the mel bank: Slaney (dsp/mel.h) */
    int n_mels;
    double fmin, fmax;
    float floor;       /* the mel's floor (linear), > 0 */
    int iters;         /* passes, 1..MELREFINE_MAX_ITERS */
    float momentum;    /* 0 <= m < 1 */
    float max_nep;     /* largest correction per band and pass, nepers, > 0 */
    float pull;        /* 0 <= pull <= 1: the anchor step's share (0: none) */
} melrefine_config;

#define MELREFINE_MAX_ITERS 64

typedef struct melrefine melrefine;

/* Thread: control (FFTW planning). Every mel bin must lie in at most two
 * bands (true of triangular banks). */
int melrefine_create(melrefine **out, const melrefine_config *cfg);
void melrefine_destroy(melrefine *r);

/* Push one hop of the signal, the n_mels log-mel values of the frame that
 * ends with it (NULL: the floor) and, with pull > 0, that frame's win / 2 + 1
 * anchor log-amplitudes (NULL: none, the frame is left as it is); get the hop
 * melrefine_delay() hops earlier, refined (zeros while the pipeline fills).
 * No allocation. Thread: audio. */
void melrefine_hop(melrefine *r, const float *in, const float *mel, const float *anchor, float *out);

/* The signal ends after `hops` hops of the stream (counted from reset; hops
 * already pushed count): later ones are taken as zeros in every pass, as a
 * whole signal's end is. Thread: audio. */
void melrefine_end(melrefine *r, long long hops);

/* Silence before the next hop; no end. Thread: audio. */
void melrefine_reset(melrefine *r);

int melrefine_delay(const melrefine *r); /* hops */

#endif
