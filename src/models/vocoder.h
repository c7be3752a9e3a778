/* vocoder.h - oscine's APNet-style vocoder: log-mel frames in, log-amplitude
 * and phase spectra out, frame by frame, plus the mel front end it was
 * trained on. The waveform is the inverse STFT of exp(log-amplitude) e^{j phase}
 * (dsp/stft.h, stft_synthesize) on the grid below.
 *
 * Grid (16 kHz, tools/vocoder/audio.py, docs/mel.md): frame t is the last 320
 * samples ending at sample (t+1)*80, times a periodic Hann window at the
 * start of the FFT buffer. Synthesis: n_fft 320 (161 bins), hop 80.
 * Mel front end: the same frame zero-padded to 512, |FFT| (magnitude), Slaney
 * mel bank (80 bands, 0-8000 Hz, dsp/mel.h), natural log of max(mel, 1e-5).
 *
 * Network (tools/vocoder/model.py): an amplitude and a phase predictor, each
 * Conv1d over mel frames (the only layer that looks ahead: `lookahead` frames)
 * + LayerNorm, ConvNeXt blocks (causal depthwise conv, LayerNorm, Linear,
 * GELU, Linear, residual), LayerNorm and linear heads: log|X| for the
 * amplitude, R and I for the phase = atan2(I, R). Sizes come from the
 * weights file's metadata; the front end and grid are fixed and checked.
 *
 * Streaming: vocoder_net_process takes mel frames and returns the spectra
 * that became ready: output frame t comes with input frame t + lookahead.
 * vocoder_net_drain ends a stream (the frames after it are taken as zeros,
 * as PyTorch's padding does). Process over a whole sequence then drain gives
 * the whole-sequence (PyTorch) output.
 *
 * Ownership: vocoder_net_create copies what it needs from the weights file
 * (close it afterwards). One object per audio channel (it holds the state).
 */
#ifndef OSCINE_MODELS_VOCODER_H
#define OSCINE_MODELS_VOCODER_H

#include <stddef.h>

#include "nn/weights.h"

#define VOC_RATE 16000
#define VOC_NFFT 320
#define VOC_WIN 320
#define VOC_HOP 80
#define VOC_BINS 161
#define VOC_MELS 80
#define VOC_MEL_NFFT 512
#define VOC_FMIN 0.0
#define VOC_FMAX 8000.0
#define VOC_LOG_FLOOR 1e-5f
#define VOC_MAX_LOOKAHEAD 8 /* frames: 40 ms */
#define VOC_STFT_LATENCY (VOC_WIN - VOC_HOP) /* samples from a frame's start to its hop */
/* floats per frame of vocoder_net_process: log-amplitude, phase, input mel */
#define VOC_FRAME (2 * VOC_BINS + VOC_MELS)

/* ---------------------------------------------------------- mel front end */

typedef struct vocoder_mel vocoder_mel;

/* Thread: control. */
int vocoder_mel_create(vocoder_mel **out);
void vocoder_mel_destroy(vocoder_mel *m);

/* Push VOC_HOP samples; mel gets the VOC_MELS log-mel values of the frame
 * ending there. Thread: audio. */
void vocoder_mel_frame(vocoder_mel *m, const float *hop, float *mel);
/* Silence before the next sample. Thread: audio. */
void vocoder_mel_reset(vocoder_mel *m);

/* A whole signal of n samples: ceil((n + 240) / 80) frames (zeros after the
 * end fill the last ones), written [frames][VOC_MELS]. Resets first.
 * Thread: control. */
size_t vocoder_mel_frames_for(size_t n);
void vocoder_mel_buffer(vocoder_mel *m, const float *x, size_t n, float *mel);

/* Centre frequency of band b (Hz). Thread: any. */
double vocoder_mel_centre_hz(int band);

/* ---------------------------------------------------------------- network */

typedef struct vocoder_net vocoder_net;

/* Checks the metadata (kind, grid, front end, sizes) and every tensor's
 * shape. max_frames: most mel frames per process call (>= 1).
 * Thread: control. */
int vocoder_net_create(vocoder_net **out, const osw_file *w, int max_frames);
void vocoder_net_destroy(vocoder_net *v);

/* mel: n frames [n][VOC_MELS], 1 <= n <= max_frames. out: room for n frames
 * of [VOC_FRAME]: log-amplitude (161), then phase in [-pi, pi] (161):
 * atan2 of the phase heads, or (metadata phase "diff") the integration of
 * the predicted differences (dsp/phaseint.h), which carries state across
 * calls; then a copy of the mel frame it was made from (80), which the
 * synthesis reads. With metadata mel_fix_db > 0 the log-amplitude is pulled
 * onto that mel before the phase is integrated: the predicted amplitude
 * interpolated onto the front end's 512-point grid, its mel bands compared
 * with the input's, each band's error (clamped to +-mel_fix_db) spread over
 * the bins by band centre and added (tools/vocoder/model.py, mel_fix).
 * Returns the frames written (n, fewer while the lookahead fills).
 * Thread: audio. */
int vocoder_net_process(vocoder_net *v, const float *mel, int n, float *out);

/* End of stream: writes the last `lookahead` frames (room for them) and
 * returns their count; reset before the next stream. Thread: audio. */
int vocoder_net_drain(vocoder_net *v, float *out);

/* Silence before the next frame. Thread: audio. */
void vocoder_net_reset(vocoder_net *v);

/* Frame of vocoder_net_process -> interleaved complex spectrum (VOC_BINS
 * pairs) exp(min(logamp, logamp_max)) e^{j phase}. Thread: audio. */
void vocoder_net_spectrum(const vocoder_net *v, const float *frame, float *spec);

/* ------------------------------------------------------------- synthesis */

/* Frames of vocoder_net_process -> waveform: the inverse STFT (dual window,
 * hop 80), with the RTISI-LA phase refinement the model's metadata asks for
 * (rtisi_lookahead frames, rtisi_iters passes; dsp/rtisi.h; none when absent,
 * which is plain overlap-add). With mel_fix_db > 0 and RTISI-LA, the last
 * pass pulls each finished frame's magnitude onto its mel once more, as
 * measured on what the frames overlap-add to (rtisi_set_fix). */
typedef struct vocoder_syn vocoder_syn;

/* Thread: control. */
int vocoder_syn_create(vocoder_syn **out, const vocoder_net *v);
/* The same with the RTISI-LA settings given instead of the metadata's:
 * lookahead 0..16 frames, iters 0..16 passes (-1: the model's), and `refine`
 * passes of the mel refinement after it (0..VOC_MAX_REFINE, 0: none; see
 * VOC_FILE_REFINE_ITERS below). Offline use (`oscine vocode`) affords more of
 * all three than live use. Thread: control. */
int vocoder_syn_create_with(vocoder_syn **out, const vocoder_net *v, int lookahead, int iters, int refine);

/* The synthesis for files (`oscine vocode`, the resynth stage in a chain
 * that is not low-latency): latency costs nothing there, so a model that
 * streams with RTISI-LA gets at least this look-ahead and these passes (the
 * shipped one streams with 3 x 6). On the dev speakers (tools/eval_vocoder,
 * 2026-12-04): MCD 0.284 -> 0.259, LSD 4.21 -> 4.07 dB, F0 RMSE 111 -> 97
 * cents. A model without RTISI-LA
 * (plain overlap-add of consistent phases) is left as it is. */
#define VOC_FILE_RTISI_LOOKAHEAD 8
#define VOC_FILE_RTISI_ITERS 16
/* ... and, for a model with the mel fix, then VOC_FILE_REFINE_ITERS passes of
 * dsp/melrefine.h: the signal pulled onto the input mel as the front end
 * measures it (momentum VOC_REFINE_MOMENTUM, at most VOC_REFINE_MAX_NEP nepers
 * per band and pass), each pass then moving every bin VOC_REFINE_PULL of the
 * way (in the log) back towards the network's amplitude; 6 hops of delay per
 * pass. On the dev speakers (tools/eval_vocoder, 2026-12-05): MCD 0.259 ->
 * 0.19, with F0 RMSE, voicing error and STOI better too and LSD about the
 * same (models/vocoder-16k.md has the numbers). */
#define VOC_FILE_REFINE_ITERS 40
#define VOC_REFINE_MOMENTUM 0.6f
#define VOC_REFINE_MAX_NEP 3.0f
#define VOC_REFINE_PULL 0.075f
#define VOC_MAX_REFINE 64
int vocoder_syn_create_file(vocoder_syn **out, const vocoder_net *v);
/* The file synthesis with `refine` passes of the mel refinement instead
 * (0..VOC_MAX_REFINE; -1: the default above). */
int vocoder_syn_create_file_with(vocoder_syn **out, const vocoder_net *v, int refine);
void vocoder_syn_destroy(vocoder_syn *s);

/* One frame [logamp | phase | mel] (NULL: a silent frame, to flush the look-ahead
 * at the end) -> VOC_HOP samples: those of the frame vocoder_syn_lookahead()
 * frames earlier, so the output lags a plain iSTFT by that many hops.
 * Thread: audio. */
void vocoder_syn_frame(vocoder_syn *s, const float *frame, float *out);
void vocoder_syn_reset(vocoder_syn *s); /* Thread: audio. */
int vocoder_syn_lookahead(const vocoder_syn *s); /* frames, the refinement's included */

int vocoder_net_lookahead(const vocoder_net *v); /* frames */
long vocoder_net_params(const vocoder_net *v);
long vocoder_net_macs(const vocoder_net *v);     /* multiply-adds per frame */

#endif
