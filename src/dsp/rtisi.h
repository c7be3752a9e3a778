/* rtisi.h - streaming inverse STFT that makes the phase consistent:
 * real-time iterative spectrogram inversion with look-ahead (RTISI-LA; Zhu,
 * Beauregard and Wyse, IEEE TASLP 2007), started from a given phase.
 *
 * The grid is stft.h's with the window as long as the FFT: periodic Hann
 * analysis, its dual window for synthesis, hop dividing n_fft. Each frame
 * pushed is a complex spectrum whose magnitude is kept and whose phase is the
 * first estimate. The `lookahead` newest frames and the one being finished
 * stay open: `iters` times, each open frame (oldest first) is replaced by the
 * spectrum of the signal that all frames overlap-add to in its span - the
 * finished ones and the open ones, divided by the sum of the windows present
 * where later frames are still missing (so a consistent spectrogram is left
 * as it is) - with its own magnitude put back. Then the
 * oldest open frame is finished and its hop comes out. With lookahead 0 and
 * iters 0 it is stft_synthesize exactly; each frame of look-ahead delays the
 * output by one hop more.
 *
 * tools/vocoder/audio.py (rtisi_la) is the reference implementation. */
#ifndef OSCINE_DSP_RTISI_H
#define OSCINE_DSP_RTISI_H

typedef struct rtisi_config {
    int n_fft;     /* = window length, 16..4096, even */
    int hop;       /* divides n_fft, n_fft / hop >= 2 */
    int lookahead; /* frames, 0..16 */
    int iters;     /* 0..16 */
} rtisi_config;

typedef struct rtisi rtisi;

/* Thread: control (FFTW planning). */
int rtisi_create(rtisi **out, const rtisi_config *cfg);
void rtisi_destroy(rtisi *r);

/* Push one frame's spectrum (n_fft / 2 + 1 interleaved complex pairs; NULL:
 * a silent frame, to flush the look-ahead at the end of a stream); get hop
 * samples: those stft_synthesize would give `lookahead` frames earlier, after
 * the refinement. No allocation. Thread: audio. */
void rtisi_frame(rtisi *r, const float *spec, float *out);

/* Silence before the next frame. Thread: audio. */
void rtisi_reset(rtisi *r);

/* Optional: in the last pass, before the frame about to be finished takes its
 * magnitude back, fn(ctx, seg, mag) sees what the frames overlap-add to in
 * its span (n_fft samples, analysis-windowed: the signal whose spectrum gives
 * the frame its phase) and may change that magnitude (bins values). Called
 * once per frame on the audio thread, only when iters > 0; it must not
 * allocate or block. NULL turns it off. Thread: control. */
typedef void (*rtisi_fix_fn)(void *ctx, const float *seg, float *mag);
void rtisi_set_fix(rtisi *r, rtisi_fix_fn fn, void *ctx);

int rtisi_lookahead(const rtisi *r); /* frames */

#endif
