/* stages.c - the table of stages a chain can be built from. */
#include "engine/stage.h"

#include <string.h>

extern const stage_class stage_passthrough;
extern const stage_class stage_gain;
extern const stage_class stage_denoise;
extern const stage_class stage_resynth;
extern const stage_class stage_synth;
extern const stage_class stage_transfer;

static const stage_class *const table[] = {
    &stage_passthrough,
    &stage_gain,
    &stage_denoise,
    &stage_resynth,
    &stage_synth,
    &stage_transfer,
};

const stage_class *stage_find(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i]->name, name))
            return table[i];
    return NULL;
}

int stage_class_count(void) { return (int)(sizeof table / sizeof table[0]); }

const stage_event *stage_find_event(const stage_class *k, const char *name, int *index)
{
    for (int i = 0; i < k->nevents; i++)
        if (!strcmp(k->events[i].name, name)) {
            if (index)
                *index = i;
            return &k->events[i];
        }
    return NULL;
}

const stage_param *stage_find_param(const stage_class *k, const char *name, int *index)
{
    for (int i = 0; i < k->nparams; i++)
        if (!strcmp(k->params[i].name, name)) {
            if (index)
                *index = i;
            return &k->params[i];
        }
    return NULL;
}

const stage_class *stage_class_at(int i)
{
    return i >= 0 && i < stage_class_count() ? table[i] : NULL;
}
