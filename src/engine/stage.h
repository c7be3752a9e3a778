/* stage.h - the interface every processing stage implements, and the table
 * of stages the chain can build by name.
 *
 * A stage processes one channel in place, in blocks of exactly `hop` frames
 * at `rate` Hz (or any count up to max_frames at any rate when those are 0).
 * Parameters are declared in a table; their OSC address is /<stage>/<name>.
 */
#ifndef OSCINE_ENGINE_STAGE_H
#define OSCINE_ENGINE_STAGE_H

typedef struct stage_param {
    const char *name; /* address is "/<stage>/<name>" */
    const char *unit; /* "dB", "", "Hz", ... */
    float min, max, def;
    const char *help;
} stage_param;

typedef struct stage_env {
    int sample_rate; /* the rate process() runs at */
    int max_frames;  /* largest n given to process() */
} stage_env;

typedef struct stage_class {
    const char *name;
    const char *help;
    int rate; /* required sample rate, 0 = any */
    int hop;  /* frames per process() call, 0 = any count up to max_frames */
    const stage_param *params;
    int nparams;
    /* Thread: control. Takes all memory; params start at their defaults. */
    int (*create)(void **state, const stage_env *env);
    /* Thread: audio. In place, n frames. */
    void (*process)(void *state, float *buf, int n);
    /* Thread: audio. Back to the just-created state (parameters kept). */
    void (*reset)(void *state);
    /* Thread: any. Samples at the stage's rate. */
    int (*latency)(const void *state);
    /* Thread: audio. Value already range-checked; the stage smooths it. */
    void (*set_param)(void *state, int index, float value);
    /* Thread: control. */
    void (*destroy)(void *state);
} stage_class;

/* The registry. Thread: any. */
const stage_class *stage_find(const char *name);
int stage_class_count(void);
const stage_class *stage_class_at(int i);

#endif
