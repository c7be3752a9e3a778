/* stage_passthrough.c - copies input to output; the identity the chain,
 * resampler and block adapter are tested against. */
#include "engine/stage.h"

#include <stdlib.h>

static int pt_create(void **state, const stage_env *env)
{
    static int dummy;
    *state = &dummy;
    return 0;
}

static void pt_process(void *state, float *buf, int n) {}
static void pt_reset(void *state) {}
static int pt_latency(const void *state) { return 0; }
static void pt_set(void *state, int index, float value) {}
static void pt_destroy(void *state) {}

const stage_class stage_passthrough = {
    .name = "passthrough",
    .help = "output = input (for tests and latency checks)",
    .create = pt_create,
    .process = pt_process,
    .reset = pt_reset,
    .latency = pt_latency,
    .set_param = pt_set,
    .destroy = pt_destroy,
};
