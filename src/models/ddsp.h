/* ddsp.h - the DDSP instrument model (tools/ddsp/model.py), frame by frame:
 * a decoder from f0 and loudness to synthesizer controls, a voice that
 * renders those controls at any output rate, and the model's reverb.
 *
 * Decoder (DDSP's RnnFcDecoder; sizes from the weights file's metadata):
 *   f0_s = (12 log2(max(f0, 1e-3) / 440) + 69) / 127,   ld_s = ld_db / 80 + 1
 *   a = f0_mlp(f0_s), b = ld_mlp(ld_s)     blocks of Linear, LayerNorm, LeakyReLU 0.2
 *   g = GRU([a, b])                         one layer, state carried across frames
 *   y = dense(out_mlp([g, a, b]))           y = [amp_logit | dist_logits (H) | noise (NB)]
 * Controls: amp, dist = harmonic_controls(y[0], y[1..H], f0, model rate) and
 * mags = exp_sigmoid(y[1+H..] + noise_bias) (dsp/harmonic.h).
 *
 * Voice: decoder + harmonic bank + filtered noise at the output rate, one
 * frame per call: frame k renders the samples from frame k-1 up to frame k
 * (dsp/harmonic.h's timing), harmonic bank with frame k's controls and the
 * noise with frame k-1's magnitudes (dsp.filtered_noise's pairing). The first
 * frame after create or reset renders nothing; a whole buffer of F frames is
 * rendered by pushing the last frame once more (ddsp_voice_render).
 *
 * Reverb: the model's IR (trained at the model rate, resampled to the output
 * rate), out = dry + wet * (dry conv ir), with no latency for any block size:
 * the first B taps are a direct FIR and the rest a partitioned FFT
 * convolution (dsp/fftconv.h) whose block of output is needed only B samples
 * later. One per synthesizer, on the mix of its voices.
 *
 * Ownership: ddsp_model holds the weights (the file may be closed after
 * create) and outlives every decoder, voice and reverb made from it. A
 * decoder or voice holds one voice's state. Threads: create/destroy control;
 * frame, render, process, reset audio (they never allocate).
 */
#ifndef OSCINE_MODELS_DDSP_H
#define OSCINE_MODELS_DDSP_H

#include <stdint.h>

#include "nn/weights.h"

#define DDSP_MAX_HARMONICS 100
#define DDSP_MAX_BANDS 257
#define DDSP_MAX_OUT (1 + DDSP_MAX_HARMONICS + DDSP_MAX_BANDS)

typedef struct ddsp_info {
    int sample_rate;       /* model rate (16000) */
    int frame_rate;        /* decoder frames per second (100) */
    int n_harmonics, n_bands;
    int n_out;             /* 1 + n_harmonics + n_bands */
    int reverb_length;     /* IR samples at sample_rate */
    float loudness_ref_db; /* a typical loud frame of the training data (its 95th percentile) */
    float f0_min_hz, f0_max_hz; /* range of the training data (1st..99th percentile) */
    char instrument[64];
    long params, macs_per_frame;
} ddsp_info;

typedef struct ddsp_model ddsp_model;
typedef struct ddsp_decoder ddsp_decoder;
typedef struct ddsp_voice ddsp_voice;
typedef struct ddsp_reverb ddsp_reverb;

/* Checks kind/arch metadata and every tensor's shape. Thread: control. */
int ddsp_model_create(ddsp_model **out, const osw_file *w);
int ddsp_model_load(ddsp_model **out, const char *path);
void ddsp_model_destroy(ddsp_model *m);
const ddsp_info *ddsp_model_info(const ddsp_model *m);
/* The IR (reverb_length samples at the model rate, ir[0] = 0). */
const float *ddsp_model_ir(const ddsp_model *m);

/* One decoder state (the GRU's). Thread: control. */
int ddsp_decoder_create(ddsp_decoder **out, const ddsp_model *m);
void ddsp_decoder_destroy(ddsp_decoder *d);
/* Next frame: y gets n_out raw outputs. Thread: audio. */
void ddsp_decoder_frame(ddsp_decoder *d, float f0_hz, float loudness_db, float *y);
/* State back to zeros (as PyTorch starts a sequence). Thread: audio. */
void ddsp_decoder_reset(ddsp_decoder *d);

/* The synthesizer controls of one frame from the decoder outputs y:
 * amp, dist (n_harmonics), mags (n_bands). Thread: any. */
void ddsp_controls(const ddsp_model *m, const float *y, float f0_hz, float *amp, float *dist,
                   float *mags);

typedef struct ddsp_voice_config {
    int sample_rate;       /* output rate, 8000..192000 */
    uint64_t seed;         /* the noise generator's (dsp/filtnoise.h) */
} ddsp_voice_config;

int ddsp_voice_create(ddsp_voice **out, const ddsp_model *m, const ddsp_voice_config *cfg);
void ddsp_voice_destroy(ddsp_voice *v);
/* Most samples one frame renders: ceil(rate / frame_rate). */
int ddsp_voice_max_segment(const ddsp_voice *v);
/* Decoder then render: returns the samples written to out. The gains scale
 * the harmonic amplitude and the noise magnitudes. Thread: audio. */
int ddsp_voice_frame(ddsp_voice *v, float f0_hz, float loudness_db, float harmonic_gain,
                     float noise_gain, float *out);
/* Render one frame of given controls (no decoder). Thread: audio. */
int ddsp_voice_render(ddsp_voice *v, float f0_hz, float amp, const float *dist,
                      const float *mags, float *out);
/* The decoder's raw outputs and the controls of the last ddsp_voice_frame
 * (n_out, and amp + dist + mags as given to the bank). Thread: audio. */
const float *ddsp_voice_last_y(const ddsp_voice *v);
/* Oscillators and noise back to the start (nothing rendered yet); the
 * decoder keeps its state unless `decoder` is 1. Thread: audio. */
void ddsp_voice_reset(ddsp_voice *v, int decoder);

typedef struct ddsp_reverb_config {
    int sample_rate;       /* output rate */
    int max_block;         /* largest n per process call */
} ddsp_reverb_config;

/* Resamples the IR to the output rate (scaled so the response stays the
 * same). Thread: control. */
int ddsp_reverb_create(ddsp_reverb **out, const ddsp_model *m, const ddsp_reverb_config *cfg);
void ddsp_reverb_destroy(ddsp_reverb *r);
/* Wet level (1: as trained; starts at 1), approached over ~10 ms.
 * Thread: audio. */
void ddsp_reverb_set_wet(ddsp_reverb *r, float wet);
/* out = in + wet * (in conv ir), n <= max_block; in and out may be the same
 * buffer. Thread: audio. */
void ddsp_reverb_process(ddsp_reverb *r, const float *in, float *out, int n);
/* Silence the reverb's tail; no allocation. Thread: audio (a stage reset
 * after NaN) or control. */
void ddsp_reverb_reset(ddsp_reverb *r);
int ddsp_reverb_length(const ddsp_reverb *r); /* IR samples at the output rate */
int ddsp_reverb_block(const ddsp_reverb *r);  /* B */

#endif
