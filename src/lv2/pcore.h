/* pcore.h - what the plugin front ends (LV2, LADSPA) share: a denoise chain
 * at the host's rate with a latency-matched, crossfaded bypass, host blocks
 * of any size (split into the chain's largest), and the model lookup that
 * also searches a plugin bundle. The wrappers only translate ports. */
#ifndef OSCINE_LV2_PCORE_H
#define OSCINE_LV2_PCORE_H

#include <stddef.h>

#define PCORE_MODEL_FILE "denoise-16k.osw" /* the denoise stage's default */
#define PCORE_PATH_MAX 4096

typedef struct pcore pcore;

/* Control values as a host hands them over; pcore checks them. */
typedef struct pcore_controls {
    float mix;      /* 0..1, default 1 */
    float limit_db; /* 0..100 dB, default 100 (no limit) */
    float enable;   /* > 0.5: denoise; else the dry input, delayed by the latency */
} pcore_controls;

#define PCORE_DEFAULTS ((pcore_controls){1.0f, 100.0f, 1.0f})

/* Find weights file `name` (a plain file name, no '/') in $OSCINE_MODEL_PATH,
 * then `bundle` (a folder, may be NULL). Writes the path into out and
 * returns 1, or returns 0 (the chain then searches ./models and the installed
 * share/oscine/models itself). Thread: control. */
int pcore_find_model(const char *name, const char *bundle, char *out, int outlen);

/* A denoise chain for `channels` (1..2) channels at `rate` Hz, low-latency
 * resampling, weights from `model` (NULL: the chain's default search).
 * On failure *out is NULL, the code is negative and oscine_last_error()
 * says why. Thread: control. */
int pcore_create(pcore **out, int rate, int channels, const char *model);

/* Process n frames (any count; in and out may alias). Thread: audio. */
void pcore_process(pcore *p, const float *const *in, float *const *out, size_t n,
                   const pcore_controls *ctl);

/* Back to silence; the next block starts the bypass ramp where its enable
 * says. Thread: control, not concurrently with process. */
void pcore_reset(pcore *p);

/* Samples at the host rate, constant for p's life. Thread: any. */
int pcore_latency(const pcore *p);

/* The denoiser's voice activity, 0..1. Thread: any. */
float pcore_vad(const pcore *p);

/* Thread: control. NULL is allowed. */
void pcore_destroy(pcore *p);

#endif
