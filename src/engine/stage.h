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

#define STAGE_EVENT_MAX_ARGS 4

/* A message to a stage that is not a setting: /<stage>/<name> with up to
 * STAGE_EVENT_MAX_ARGS numbers (a note on, a note off). Events reach the
 * audio thread through the live engine's command queue, in order and at
 * their sample time, and are never stored (presets, /get). When `params`
 * is set the entry is instead a compound setting: its arguments are the
 * values of those parameters of the same stage, set together (e.g.
 * /synth/adsr = attack, decay, sustain, release); the ranges then come from
 * the parameters and event() is not called. */
typedef struct stage_event {
    const char *name;   /* address is "/<stage>/<name>" */
    const char *types;  /* one letter per argument: 'f' (number) or 'i' (whole) */
    float min[STAGE_EVENT_MAX_ARGS], max[STAGE_EVENT_MAX_ARGS]; /* per argument */
    const char *args;   /* argument names and units for the docs, "note velocity" */
    const char *help;
    const char *const *params; /* compound setting: parameter names, one per argument */
} stage_event;

typedef struct stage_env {
    int sample_rate; /* the rate process() runs at */
    int max_frames;  /* largest n given to process() */
    int host_rate;   /* the chain's outside rate (may be higher than sample_rate) */
    const char *model; /* weights file for stages with model_file, resolved */
    int low_latency;   /* the chain's: 1 live (keep latency down), 0 files */
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
    /* Optional. Default weights file name (looked up in the model folders),
     * for stages that load a model; NULL for none. */
    const char *model_file;
    /* Optional. Read-only per-hop values (e.g. "vad"), addressed
     * /<stage>/<name>; meter() gives the latest. Thread: audio. */
    const char *const *meters;
    int nmeters;
    float (*meter)(const void *state, int index);
    /* Optional. When the host rate is above the stage's rate, the band the
     * stage cannot see (above its Nyquist) bypasses it, delayed to stay
     * aligned, scaled by this gain (latest hop, 0..1). NULL: gain 1.
     * Thread: audio. */
    float (*band_gain)(const void *state);
    /* Optional. Events (see stage_event): event() gets the index into
     * events[] and the arguments, already range-checked, between two
     * process() calls at the event's sample. Thread: audio. */
    const stage_event *events;
    int nevents;
    void (*event)(void *state, int index, const float *args, int nargs);
    /* Optional. When set, the stage's weights file can be chosen while
     * running (/<stage>/model s: a name or a path; the chain is rebuilt with
     * it and crossfaded), and this is how a name becomes a file name looked
     * up like model_file: "ddsp-%s.osw" makes "violin" ddsp-violin.osw. */
    const char *model_name;
    /* Optional. When a chain replaces one that has the same stage (a model
     * switch, a preset), the new instance takes over what the old one has
     * going on (the synth: its held notes), channel by channel, before the
     * new chain's first block. Thread: audio. */
    void (*carry)(const void *from, void *to);
    /* Optional. Bit i set: params[i] takes whole numbers (OSC type i). */
    unsigned long long int_params;
} stage_class;

/* The stage's event or compound setting called name, or NULL. Thread: any. */
const stage_event *stage_find_event(const stage_class *k, const char *name, int *index);
/* The stage's parameter called name, or NULL. Thread: any. */
const stage_param *stage_find_param(const stage_class *k, const char *name, int *index);

/* Does params[index] take whole numbers only (int_params, OSC type i)?
 * Thread: any. */
static inline int stage_param_whole(const stage_class *k, int index)
{
    return index >= 0 && (int)((k->int_params >> index) & 1);
}

/* The registry. Thread: any. */
const stage_class *stage_find(const char *name);
int stage_class_count(void);
const stage_class *stage_class_at(int i);

#endif
