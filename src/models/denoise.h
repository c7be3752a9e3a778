/* denoise.h - oscine's causal FRCRN-style denoiser network, frame by frame.
 *
 * In: one STFT frame of noisy 16 kHz speech (n_fft 320, periodic sqrt-Hann
 * window 320, hop 160, 161 bins, the frame convention of dsp/stft.h).
 * Out: a complex ratio mask for that frame (|re|, |im| < 1, tanh-bounded,
 * times the make-up gain of metadata makeup_db when the file has it: the
 * gain that gives clean speech back at its level, measured at export,
 * tools/denoise/export.py); the enhanced frame is mask * input. The network
 * sees no future frame.
 *
 * Architecture (tools/denoise/model.py; tensors in tools/denoise/export.py):
 * power-law compressed complex input |X|^0.3 e^{j angle X}; complex conv
 * encoders (kernel (kf, 2), frequency stride 2, causal in time) with
 * LeakyReLU and complex FSMN along frequency; two complex FSMN layers along
 * time (past only) in the bottleneck; complex transposed-conv decoders fed
 * [path, skip]; tanh mask. Complex layers run as real layers on stacked
 * [real | imaginary] channels with block weights [[Wr, -Wi], [Wi, Wr]].
 *
 * Ownership: denoise_net_create reads the weights file and copies what it
 * needs; the file may be closed afterwards. One object per audio channel
 * (it holds that channel's state).
 */
#ifndef OSCINE_MODELS_DENOISE_H
#define OSCINE_MODELS_DENOISE_H

#include "nn/weights.h"

#define DENOISE_RATE 16000
#define DENOISE_NFFT 320
#define DENOISE_WIN 320
#define DENOISE_HOP 160
#define DENOISE_BINS 161

typedef struct denoise_net denoise_net;

/* Checks the file's metadata (kind, rate, STFT) and every tensor's shape.
 * Thread: control. */
int denoise_net_create(denoise_net **out, const osw_file *w);
void denoise_net_destroy(denoise_net *d);

/* spec: 161 complex bins interleaved (re, im); mask: the same layout.
 * Thread: audio. */
void denoise_net_frame(denoise_net *d, const float *spec, float *mask);

/* Zero the state (past frames). Thread: audio. */
void denoise_net_reset(denoise_net *d);

/* Parameters and multiply-adds per frame, for reports. */
long denoise_net_params(const denoise_net *d);

#endif
