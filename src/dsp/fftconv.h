/* fftconv.h - uniformly partitioned FFT convolution (overlap-save with a
 * frequency-domain delay line), for long impulse responses such as DDSP's
 * reverb (ddsp.effects.Reverb: out = dry + input convolved with the IR).
 *
 * The IR is cut into P partitions of B = block samples; each is transformed
 * once (FFT size 2B). Every call takes B input samples, transforms the last
 * 2B, pushes the spectrum into a delay line of P spectra, multiplies and sums
 * them with the partitions and transforms back: the B output samples are the
 * exact linear convolution up to the current sample. No latency beyond the
 * block itself (output sample n contains input sample n times ir[0]).
 *
 *   out[n] = dry * in[n] + wet * sum_m ir[m] in[n - m]
 *
 * A change of dry or wet ramps linearly over the next block.
 * Cost per block: 2 real FFTs of size 2B plus P * (B + 1) complex
 * multiply-adds; a 3 s IR at 48 kHz with B = 256 is 563 partitions.
 */
#ifndef OSCINE_DSP_FFTCONV_H
#define OSCINE_DSP_FFTCONV_H

typedef struct fftconv_config {
    int block;      /* samples per process call, 1..8192 */
    int max_ir;     /* longest IR fftconv_set_ir accepts, 1..4194304 samples */
} fftconv_config;

typedef struct fftconv fftconv;

/* Starts with an IR of one zero (silence), dry 1 and wet 1. Thread: control. */
int fftconv_create(fftconv **out, const fftconv_config *cfg);
void fftconv_destroy(fftconv *c);

int fftconv_block(const fftconv *c);
int fftconv_latency(const fftconv *c); /* 0 */

/* Load an IR of n samples (1..max_ir): transforms its partitions. Keeps the
 * delay line, so the new IR applies to past input too. Non-finite samples are
 * refused (OSCINE_E_RANGE). Thread: control, never concurrently with process
 * (to change the IR of a running voice, load a second object and swap). */
int fftconv_set_ir(fftconv *c, const float *ir, int n);

/* Thread: audio. Takes effect over the next block. */
void fftconv_set_mix(fftconv *c, float dry, float wet);

/* block samples in, block samples out; in and out may be the same buffer.
 * Thread: audio. */
void fftconv_process(fftconv *c, const float *in, float *out);

/* Clear the input history (the IR and mix stay). Thread: audio. */
void fftconv_reset(fftconv *c);

#endif
