/* stage_gain.c - gain in dB, smoothed so changes never click. */
#include "engine/stage.h"

#include "base/error.h"

#include <math.h>
#include <stdlib.h>

typedef struct gain_state {
    float target; /* linear gain being approached */
    float dev;    /* current gain minus target: decays, so the ramp ends exactly */
    float decay;  /* per-sample decay of dev (10 ms time constant) */
} gain_state;

static const stage_param gain_params[] = {
    {"db", "dB", -96.0f, 24.0f, 0.0f, "gain; changes are smoothed over ~10 ms"},
};

static float db_to_lin(float db) { return powf(10.0f, db / 20.0f); }

static int gain_create(void **state, const stage_env *env)
{
    gain_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(OSCINE_E_NOMEM, "gain: out of memory");
    s->target = 1.0f;
    s->decay = expf(-1.0f / (0.010f * (float)env->sample_rate));
    *state = s;
    return 0;
}

static void gain_process(void *state, float *buf, int n)
{
    gain_state *s = state;
    const float t = s->target, k = s->decay;
    float d = s->dev;
    if (d == 0.0f) {
        for (int i = 0; i < n; i++)
            buf[i] *= t;
        return;
    }
    for (int i = 0; i < n; i++) {
        d *= k;
        buf[i] *= t + d;
    }
    /* End the ramp once inaudibly close (and before d turns denormal). */
    if (fabsf(d) < 1e-7f)
        d = 0.0f;
    s->dev = d;
}

static void gain_reset(void *state)
{
    gain_state *s = state;
    s->dev = 0.0f;
}

static int gain_latency(const void *state) { return 0; }

static void gain_set(void *state, int index, float value)
{
    gain_state *s = state;
    float g = s->target + s->dev;
    s->target = db_to_lin(value);
    s->dev = g - s->target;
}

static void gain_destroy(void *state) { free(state); }

const stage_class stage_gain = {
    .name = "gain",
    .help = "gain in dB, smoothed",
    .params = gain_params,
    .nparams = 1,
    .create = gain_create,
    .process = gain_process,
    .reset = gain_reset,
    .latency = gain_latency,
    .set_param = gain_set,
    .destroy = gain_destroy,
};
