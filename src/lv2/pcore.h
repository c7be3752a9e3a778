/* pcore.h - what the effect plugins (LV2 denoise and resynth, LADSPA
 * denoise) share: one stage's chain at the host's rate with a latency-
 * matched, crossfaded bypass, host blocks of any size (split into the
 * chain's largest), control values checked against the stage's parameter
 * table, and the model lookup that also searches a plugin bundle. The
 * wrappers only translate ports. */
#ifndef OSCINE_LV2_PCORE_H
#define OSCINE_LV2_PCORE_H

#include <stddef.h>

#define PCORE_PATH_MAX 4096
#define PCORE_MAX_PARAMS 8

/* What a plugin wraps: one stage, its default weights file, and the stage
 * parameters its control ports stand for, in port order. */
typedef struct pcore_kind {
    const char *stage;
    const char *model_file;
    int nparams;
    const char *params[PCORE_MAX_PARAMS];
} pcore_kind;

extern const pcore_kind PCORE_DENOISE; /* mix, limit_db */
extern const pcore_kind PCORE_RESYNTH; /* warp, tilt, freeze, mix, low_db, mid_db, high_db */
#define PCORE_MODEL_FILE "denoise-16k.osw" /* the denoise stage's default */

typedef struct pcore pcore;

/* Control values as a host hands them over (v[i]: kind->params[i]); pcore
 * checks them: NaN or infinite gives the parameter's default, others are
 * clamped to its range. enable > 0.5: processed; else the dry input,
 * delayed by the latency. */
typedef struct pcore_controls {
    float v[PCORE_MAX_PARAMS];
    float enable;
} pcore_controls;

/* Every parameter at its default, enable 1. Thread: any. */
pcore_controls pcore_defaults(const pcore *p);

/* Where it matters, once: a note naming the OPENBLAS_CORETYPE to set in the
 * host's environment, when OpenBLAS loaded kernels without AVX2 on a CPU
 * that has it (nn/kernels.h; a plugin cannot reload them). NULL otherwise
 * and on every later call in the process (per plugin binary: the LV2 bundle
 * and the LADSPA plugin each keep their own). The wrappers call it once an
 * instance is made, so a plugin that fails to load says only why.
 * Thread: instantiation. */
const char *pcore_blas_note(void);

/* Find weights file `name` (a plain file name, no '/') in $OSCINE_MODEL_PATH,
 * then `bundle` (a folder, may be NULL). Writes the path into out and
 * returns 1, or returns 0 (the chain then searches ./models and the installed
 * share/oscine/models itself). Thread: control. */
int pcore_find_model(const char *name, const char *bundle, char *out, int outlen);

/* A chain of kind's stage for `channels` (1..2) channels at `rate` Hz,
 * low-latency resampling, weights from `model` (NULL: the chain's default
 * search). On failure *out is NULL, the code is negative and
 * oscine_last_error() says why. Thread: control. */
int pcore_create(pcore **out, const pcore_kind *kind, int rate, int channels,
                 const char *model);

/* Process n frames (any count; in and out may alias). Thread: audio. */
void pcore_process(pcore *p, const float *const *in, float *const *out, size_t n,
                   const pcore_controls *ctl);

/* Back to silence; the next block starts the bypass ramp where its enable
 * says. Thread: control, not concurrently with process. */
void pcore_reset(pcore *p);

/* Samples at the host rate, constant for p's life. Thread: any. */
int pcore_latency(const pcore *p);

/* The chain's voice activity, 0..1 (0 for a stage without one). Thread: any. */
float pcore_vad(const pcore *p);

/* Thread: control. NULL is allowed. */
void pcore_destroy(pcore *p);

#endif
