/* resample.h - streaming sample-rate conversion of one channel: libsoxr, or
 * in low-latency mode a polyphase FIR of oscine's own for any ratio whose
 * terms are at most 1000 (48 kHz -> 16 kHz is 1/3, 44.1 kHz 160/441):
 * linear phase, passband 0.8 of the lower Nyquist, 90 dB stopband from it.
 *
 * Both keep output aligned with input (no group delay in the sample index:
 * output sample j is the input at time j / out_rate) but deliver it late:
 * libsoxr because it filters in blocks, the FIR by half its length (1.8
 * ms). resampler_lag() is the largest number of output samples still owed
 * after any amount of input, measured at create by feeding a scratch
 * converter one sample at a time; a caller that keeps that many samples in
 * hand never runs dry.
 */
#ifndef OSCINE_DSP_RESAMPLE_H
#define OSCINE_DSP_RESAMPLE_H

#include <stddef.h>

typedef struct resampler resampler;

/* low_latency: 0 = high quality (libsoxr HQ), 1 = low latency (the FIR at
 * ratios in terms up to 1000, else libsoxr LQ with a 0.8 passband).
 * max_in: the largest input count per resampler_process call.
 * Thread: control. */
int resampler_create(resampler **out, double in_rate, double out_rate, int low_latency,
                     int max_in);
void resampler_destroy(resampler *r);

/* Largest output count one call can return for max_in inputs. */
int resampler_max_out(const resampler *r);

/* Lag bound in output samples (see above). */
double resampler_lag(const resampler *r);

/* Convert n inputs (n <= max_in); returns the number of outputs written
 * (<= resampler_max_out), or a negative OSCINE_E_RESAMPLE. in == NULL with
 * n == 0 flushes the remaining output at the end of a stream (call until it
 * returns 0). Thread: audio: create warms libsoxr up so that its buffers
 * are at full size and it never allocates here (test_live_rt checks). */
int resampler_process(resampler *r, const float *in, int n, float *out);

/* Diagnostics: the low-latency filters' tables alive now (one per ratio and
 * direction, shared by all resamplers that use it) and their bytes. Thread:
 * control. */
int resampler_fir_tables(size_t *bytes);

/* Forget all history, as if newly created (and warm up again).
 * Thread: control (libsoxr reallocates; the FIR only clears, any thread). */
int resampler_reset(resampler *r);

#endif
