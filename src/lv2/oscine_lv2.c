/* oscine_lv2.c - the effect plugins of the oscine.lv2 bundle: "oscine
 * denoise" mono (urn:oscine:denoise) and stereo (urn:oscine:denoise-stereo)
 * and "oscine resynth" (urn:oscine:resynth), and the entry point that also
 * lists "oscine synth" (synth_lv2.c). Each is a pcore (one stage's chain
 * with a crossfaded bypass) behind the ports described in oscine.ttl: the
 * audio ports, the stage's parameters (pcore_kind), enable, the voice
 * activity (denoise only), the latency.
 *
 * The weights file is looked up in $OSCINE_MODEL_PATH, the bundle, ./models
 * and the installed share/oscine/models. The state extension saves the
 * model's file name and restore loads another by name from the same places.
 * The shared object exports lv2_descriptor only (src/lv2/exports.map).
 */
#include "lv2/pcore.h"
#include "lv2/synth_lv2.h"
#include "oscine.h"

#include <lv2/atom/atom.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/log/logger.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URI_MODEL "urn:oscine:model" /* state key: the weights file's name */
#define MODEL_NAME_MAX 256

typedef struct variant {
    const char *uri;
    const pcore_kind *kind;
    int channels, has_vad;
} variant;

static const variant VARIANTS[] = {
    {"urn:oscine:denoise", &PCORE_DENOISE, 1, 1},
    {"urn:oscine:denoise-stereo", &PCORE_DENOISE, 2, 1},
    {"urn:oscine:resynth", &PCORE_RESYNTH, 1, 0},
};
#define NVARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

typedef struct plugin {
    const variant *var;
    pcore *core;
    int rate, channels;
    const float *in[2];
    float *out[2];
    const float *param[PCORE_MAX_PARAMS], *enable;
    float *vad, *latency;
    char bundle[PCORE_PATH_MAX];
    char model[MODEL_NAME_MAX]; /* file name of the weights in use */
    LV2_URID_Map *map;
    LV2_URID urid_model, urid_string;
    LV2_Log_Logger log;
} plugin;

/* Build a core for `name`, or return NULL with the reason logged.
 * Thread: instantiation. */
static pcore *load(plugin *p, const char *name)
{
    char path[PCORE_PATH_MAX];
    int found = pcore_find_model(name, p->bundle, path, sizeof path);
    pcore *core = NULL;
    if (!found && strcmp(name, p->var->kind->model_file)) {
        lv2_log_error(&p->log, "oscine: model '%s' not found in $OSCINE_MODEL_PATH or %s\n",
                      name, p->bundle);
        return NULL;
    }
    /* Not found: the chain searches ./models and share/oscine/models. */
    if (pcore_create(&core, p->var->kind, p->rate, p->channels, found ? path : NULL)) {
        lv2_log_error(&p->log, "oscine: %s%s%s\n", oscine_last_error(),
                      found ? "" : ", nor in the bundle ", found ? "" : p->bundle);
        return NULL;
    }
    return core;
}

/* Thread: instantiation. */
static void cleanup(LV2_Handle h)
{
    plugin *p = h;
    pcore_destroy(p->core);
    free(p);
}

/* Thread: instantiation. Loads the model: all memory is taken here. */
static LV2_Handle instantiate(const LV2_Descriptor *d, double rate, const char *bundle,
                              const LV2_Feature *const *features)
{
    plugin *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    LV2_Log_Log *log = NULL;
    for (int i = 0; features && features[i]; i++) {
        if (!strcmp(features[i]->URI, LV2_URID__map))
            p->map = features[i]->data;
        else if (!strcmp(features[i]->URI, LV2_LOG__log))
            log = features[i]->data;
    }
    lv2_log_logger_init(&p->log, p->map, log);
    if (p->map) {
        p->urid_model = p->map->map(p->map->handle, URI_MODEL);
        p->urid_string = p->map->map(p->map->handle, LV2_ATOM__String);
    }
    for (size_t i = 0; i < NVARIANTS; i++)
        if (!strcmp(d->URI, VARIANTS[i].uri))
            p->var = &VARIANTS[i];
    if (!p->var) {
        free(p);
        return NULL;
    }
    p->channels = p->var->channels;
    p->rate = (int)(rate + 0.5);
    snprintf(p->bundle, sizeof p->bundle, "%s", bundle ? bundle : "");
    snprintf(p->model, sizeof p->model, "%s", p->var->kind->model_file);
    if (p->rate < 8000 || p->rate > 192000) {
        lv2_log_error(&p->log, "oscine: sample rate %g Hz not supported (8000..192000)\n",
                      rate);
        free(p);
        return NULL;
    }
    p->core = load(p, p->model);
    if (!p->core) {
        free(p);
        return NULL;
    }
    const char *note = pcore_blas_note();
    if (note)
        lv2_log_note(&p->log, "oscine: %s\n", note);
    return p;
}

/* Thread: audio. */
static void connect_port(LV2_Handle h, uint32_t port, void *data)
{
    plugin *p = h;
    uint32_t na = 2 * (uint32_t)p->channels;
    if (port < na) {
        if (port < (uint32_t)p->channels)
            p->in[port] = data;
        else
            p->out[port - (uint32_t)p->channels] = data;
        return;
    }
    uint32_t c = port - na, np = (uint32_t)p->var->kind->nparams;
    if (c < np)
        p->param[c] = data;
    else if (c == np)
        p->enable = data;
    else if (c == np + 1 && p->var->has_vad)
        p->vad = data;
    else if (c == np + 1 + (uint32_t)p->var->has_vad)
        p->latency = data;
}

/* Thread: instantiation. */
static void activate(LV2_Handle h) { pcore_reset(((plugin *)h)->core); }

/* Thread: audio. Never allocates, locks or waits. n == 0 only updates the
 * output controls (hosts do that to read the latency). */
static void run(LV2_Handle h, uint32_t n)
{
    plugin *p = h;
    if (p->latency)
        *p->latency = (float)pcore_latency(p->core);
    int ok = n > 0;
    for (int c = 0; c < p->channels; c++)
        ok &= p->in[c] && p->out[c];
    if (ok) {
        pcore_controls ctl = pcore_defaults(p->core);
        for (int i = 0; i < p->var->kind->nparams; i++)
            if (p->param[i])
                ctl.v[i] = *p->param[i];
        if (p->enable)
            ctl.enable = *p->enable;
        pcore_process(p->core, p->in, p->out, n, &ctl);
    }
    if (p->vad)
        *p->vad = pcore_vad(p->core);
}

/* Thread: instantiation. */
static void deactivate(LV2_Handle h) { (void)h; }

/* Thread: may run beside run() (LV2 state), so it reads only p->model, which
 * only restore changes (never concurrently with save). */
static LV2_State_Status save(LV2_Handle h, LV2_State_Store_Function store,
                             LV2_State_Handle sh, uint32_t flags,
                             const LV2_Feature *const *features)
{
    plugin *p = h;
    if (!p->map)
        return LV2_STATE_ERR_NO_FEATURE;
    return store(sh, p->urid_model, p->model, strlen(p->model) + 1, p->urid_string,
                 LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
}

/* Thread: instantiation (never beside run(): no threadSafeRestore), so it
 * may load the model itself and swap the core. A missing or bad model
 * leaves the current one in place. */
static LV2_State_Status restore(LV2_Handle h, LV2_State_Retrieve_Function retrieve,
                                LV2_State_Handle sh, uint32_t flags,
                                const LV2_Feature *const *features)
{
    plugin *p = h;
    if (!p->map)
        return LV2_STATE_ERR_NO_FEATURE;
    size_t size = 0;
    uint32_t type = 0, vflags = 0;
    const char *v = retrieve(sh, p->urid_model, &size, &type, &vflags);
    if (!v)
        return LV2_STATE_SUCCESS; /* older state without a model: keep this one */
    if (type != p->urid_string)
        return LV2_STATE_ERR_BAD_TYPE;
    if (size < 2 || size > MODEL_NAME_MAX || v[size - 1] || strlen(v) != size - 1 ||
        strchr(v, '/') || !strcmp(v, "..")) {
        lv2_log_error(&p->log, "oscine: state: bad model name\n");
        return LV2_STATE_ERR_UNKNOWN;
    }
    if (!strcmp(v, p->model))
        return LV2_STATE_SUCCESS;
    pcore *core = load(p, v);
    if (!core)
        return LV2_STATE_ERR_UNKNOWN;
    pcore_destroy(p->core);
    p->core = core;
    snprintf(p->model, sizeof p->model, "%s", v);
    return LV2_STATE_SUCCESS;
}

static const void *extension_data(const char *uri)
{
    static const LV2_State_Interface state = {save, restore};
    if (!strcmp(uri, LV2_STATE__interface))
        return &state;
    return NULL;
}

static const LV2_Descriptor descriptors[] = {
    {"urn:oscine:denoise", instantiate, connect_port, activate, run, deactivate, cleanup,
     extension_data},
    {"urn:oscine:denoise-stereo", instantiate, connect_port, activate, run, deactivate, cleanup,
     extension_data},
    {"urn:oscine:resynth", instantiate, connect_port, activate, run, deactivate, cleanup,
     extension_data},
};

#define NEFFECTS (sizeof descriptors / sizeof descriptors[0])

/* Thread: discovery. */
LV2_SYMBOL_EXPORT const LV2_Descriptor *lv2_descriptor(uint32_t index)
{
    if (index < NEFFECTS)
        return &descriptors[index];
    return index == NEFFECTS ? oscine_synth_descriptor() : NULL;
}
