/* stages.c - the table of stages a chain can be built from. */
#include "engine/stage.h"

#include <string.h>

extern const stage_class stage_passthrough;
extern const stage_class stage_gain;
extern const stage_class stage_denoise;
extern const stage_class stage_resynth;

static const stage_class *const table[] = {
    &stage_passthrough,
    &stage_gain,
    &stage_denoise,
    &stage_resynth,
};

const stage_class *stage_find(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i]->name, name))
            return table[i];
    return NULL;
}

int stage_class_count(void) { return (int)(sizeof table / sizeof table[0]); }

const stage_class *stage_class_at(int i)
{
    return i >= 0 && i < stage_class_count() ? table[i] : NULL;
}
