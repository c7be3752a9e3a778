/* oscine_ladspa.c - "oscine denoise" as a mono LADSPA plugin
 * (oscine_denoise_ladspa.so, label oscine_denoise), for hosts and PipeWire
 * setups that take only LADSPA. The same core as the LV2 plugin (pcore);
 * LADSPA has no bundle, so the weights come from $OSCINE_MODEL_PATH, ./models
 * or the installed share/oscine/models (beside the plugin's lib/ladspa/). LADSPA cannot report latency, so it
 * is an output control port named "latency" (hosts such as Ardour read a port
 * of that name). The shared object exports ladspa_descriptor only. */
#include "lv2/pcore.h"
#include "oscine.h"

#include <ladspa.h>

#include <stdio.h>
#include <stdlib.h>

#define UNIQUE_ID 5791 /* not registered with ladspa.org */

enum { P_IN, P_OUT, P_MIX, P_LIMIT, P_LATENCY, P_VAD, P_COUNT };

typedef struct plugin {
    pcore *core;
    LADSPA_Data *port[P_COUNT];
} plugin;

/* Thread: control. Loads the model: all memory is taken here. */
static LADSPA_Handle instantiate(const LADSPA_Descriptor *d, unsigned long rate)
{
    if (rate < 8000 || rate > 192000) {
        fprintf(stderr, "oscine_denoise_ladspa: sample rate %lu Hz not supported "
                        "(8000..192000)\n", rate);
        return NULL;
    }
    plugin *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    char path[PCORE_PATH_MAX];
    int found = pcore_find_model(PCORE_MODEL_FILE, NULL, path, sizeof path);
    if (pcore_create(&p->core, &PCORE_DENOISE, (int)rate, 1, found ? path : NULL)) {
        fprintf(stderr, "oscine_denoise_ladspa: %s\n", oscine_last_error());
        free(p);
        return NULL;
    }
    const char *note = pcore_blas_note();
    if (note)
        fprintf(stderr, "oscine_denoise_ladspa: %s\n", note);
    return p;
}

/* Thread: audio. */
static void connect_port(LADSPA_Handle h, unsigned long port, LADSPA_Data *data)
{
    if (port < P_COUNT)
        ((plugin *)h)->port[port] = data;
}

/* Thread: control. */
static void activate(LADSPA_Handle h) { pcore_reset(((plugin *)h)->core); }

/* Thread: audio. Never allocates, locks or waits. */
static void run(LADSPA_Handle h, unsigned long n)
{
    plugin *p = h;
    if (p->port[P_LATENCY])
        *p->port[P_LATENCY] = (LADSPA_Data)pcore_latency(p->core);
    if (n && p->port[P_IN] && p->port[P_OUT]) {
        pcore_controls ctl = pcore_defaults(p->core);
        if (p->port[P_MIX])
            ctl.v[0] = *p->port[P_MIX];
        if (p->port[P_LIMIT])
            ctl.v[1] = *p->port[P_LIMIT];
        const float *in[1] = {p->port[P_IN]};
        float *out[1] = {p->port[P_OUT]};
        pcore_process(p->core, in, out, n, &ctl);
    }
    if (p->port[P_VAD])
        *p->port[P_VAD] = pcore_vad(p->core);
}

/* Thread: control. */
static void cleanup(LADSPA_Handle h)
{
    plugin *p = h;
    pcore_destroy(p->core);
    free(p);
}

static const LADSPA_PortDescriptor port_desc[P_COUNT] = {
    LADSPA_PORT_INPUT | LADSPA_PORT_AUDIO,    LADSPA_PORT_OUTPUT | LADSPA_PORT_AUDIO,
    LADSPA_PORT_INPUT | LADSPA_PORT_CONTROL,  LADSPA_PORT_INPUT | LADSPA_PORT_CONTROL,
    LADSPA_PORT_OUTPUT | LADSPA_PORT_CONTROL, LADSPA_PORT_OUTPUT | LADSPA_PORT_CONTROL,
};

/* The names are the LV2 plugin's port symbols, so PipeWire configurations
 * read the same for both. */
static const char *const port_names[P_COUNT] = {"in", "out", "mix", "limit_db", "latency",
                                                "vad"};

static const LADSPA_PortRangeHint port_hints[P_COUNT] = {
    {0, 0, 0},
    {0, 0, 0},
    {LADSPA_HINT_BOUNDED_BELOW | LADSPA_HINT_BOUNDED_ABOVE | LADSPA_HINT_DEFAULT_MAXIMUM, 0, 1},
    {LADSPA_HINT_BOUNDED_BELOW | LADSPA_HINT_BOUNDED_ABOVE | LADSPA_HINT_DEFAULT_MAXIMUM, 0,
     100},
    {LADSPA_HINT_BOUNDED_BELOW | LADSPA_HINT_INTEGER, 0, 0},
    {LADSPA_HINT_BOUNDED_BELOW | LADSPA_HINT_BOUNDED_ABOVE, 0, 1},
};

static const LADSPA_Descriptor descriptor = {
    .UniqueID = UNIQUE_ID,
    .Label = "oscine_denoise",
    .Properties = LADSPA_PROPERTY_HARD_RT_CAPABLE,
    .Name = "oscine denoise (mono)",
    .Maker = "oscine",
    .Copyright = "see the oscine sources",
    .PortCount = P_COUNT,
    .PortDescriptors = port_desc,
    .PortNames = port_names,
    .PortRangeHints = port_hints,
    .instantiate = instantiate,
    .connect_port = connect_port,
    .activate = activate,
    .run = run,
    .cleanup = cleanup,
};

/* Thread: any (discovery). */
__attribute__((visibility("default"))) const LADSPA_Descriptor *
ladspa_descriptor(unsigned long index)
{
    return index == 0 ? &descriptor : NULL;
}
