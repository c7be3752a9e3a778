/* stft.h - streaming short-time Fourier transform (FFTW3, single precision).
 *
 * Frame convention (the training scripts in tools/ use the same one): each
 * frame is the LAST win_len input samples ending at the current hop,
 * multiplied by the analysis window and zero-padded at the end to n_fft.
 * Synthesis uses the dual window ws[n] = wa[n] / sum_k wa[n + k*hop]^2, so
 * analysis followed by synthesis with no change reconstructs the input
 * exactly, delayed by stft_latency() = win_len - hop samples.
 *
 * Spectra are interleaved complex (re, im) float arrays of stft_bins() pairs.
 */
#ifndef OSCINE_DSP_STFT_H
#define OSCINE_DSP_STFT_H

#include <stddef.h>

typedef enum stft_window {
    STFT_WIN_HANN,      /* periodic Hann */
    STFT_WIN_SQRT_HANN, /* square root of periodic Hann */
    STFT_WIN_HAMMING,   /* periodic Hamming */
    STFT_WIN_COUNT
} stft_window;

typedef struct stft_config {
    int n_fft;          /* 16..65536, even */
    int win_len;        /* hop..n_fft */
    int hop;            /* 1..win_len */
    stft_window window;
} stft_config;

typedef struct stft stft;

/* Thread: control (FFTW planning is serialised inside). */
int stft_create(stft **out, const stft_config *cfg);
void stft_destroy(stft *s);

int stft_bins(const stft *s);
int stft_hop(const stft *s);
int stft_latency(const stft *s);
const float *stft_analysis_window(const stft *s); /* win_len values */

/* Push hop samples, get the spectrum of the frame ending there
 * (2 * bins floats). Thread: audio. */
void stft_analyze(stft *s, const float *in, float *spec);

/* Overlap-add the frame with spectrum spec, emit hop output samples.
 * Thread: audio. */
void stft_synthesize(stft *s, const float *spec, float *out);

/* Zero the analysis history and the overlap-add buffer. Thread: audio. */
void stft_reset(stft *s);

/* Whole buffers. stft_frames_for(n) frames cover n samples plus the latency,
 * so a round trip returns all n samples aligned. spec holds frames * 2 * bins
 * floats. Both reset the object first. Thread: control. */
size_t stft_frames_for(const stft *s, size_t n);
void stft_analyze_buffer(stft *s, const float *x, size_t n, float *spec);
void stft_synthesize_buffer(stft *s, const float *spec, size_t n, float *y);

/* Window values, periodic, length n. */
void stft_make_window(stft_window w, int n, float *out);

/* sum_k wa[m]^2 over the taps m = n mod hop, n mod hop + hop, ... < win: the
 * power of the analysis windows that overlap sample n of a frame. The dual
 * (synthesis) window is wa[n] / that. Thread: any. */
double stft_overlap_power(const float *wa, int win, int hop, int n);

#endif
