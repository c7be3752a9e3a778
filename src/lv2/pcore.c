/* pcore.c - see pcore.h. All memory is taken in pcore_create; process only
 * computes (oscine_chain_process, a delay line and a ramp). */
#include "lv2/pcore.h"

#include "base/error.h"
#include "engine/chainrt.h"
#include "nn/kernels.h"
#include "oscine.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BYPASS_MS 20.0f /* linear crossfade between processed and dry */

const pcore_kind PCORE_DENOISE = {"denoise", "denoise-16k.osw", 2, {"mix", "limit_db"}};
const pcore_kind PCORE_RESYNTH = {
    "resynth", "vocoder-16k.osw", 7,
    {"warp", "tilt", "freeze", "mix", "low_db", "mid_db", "high_db"}};

struct pcore {
    const pcore_kind *kind;
    char addr[PCORE_MAX_PARAMS][64];
    float min[PCORE_MAX_PARAMS], max[PCORE_MAX_PARAMS], def[PCORE_MAX_PARAMS];
    float last[PCORE_MAX_PARAMS]; /* last values handed to the chain */
    oscine_chain *chain;
    int rate, channels, latency;
    float *wet[2];   /* (OSCINE_MAX_BLOCK) the chain's output */
    float *dry[2];   /* (latency + 1) input delay line */
    int dry_pos;
    float g, step;   /* wet share 0..1 and its change per sample */
    int started;     /* first block: g jumps to its target */
};

const char *pcore_blas_note(void)
{
    static atomic_int said;
    static char msg[256];
    /* It matters where the loaded set lacks AVX2 + FMA (OpenBLAS's fallback
     * for CPUs it does not know) on a CPU that has them: the denoiser then
     * takes 1.6 x the CPU time of the best set, against 1.17 x for AVX2
     * kernels on an AVX-512 CPU, which an OPENBLAS_CORETYPE pinned on
     * purpose gives (20 s at 16 kHz, AMD EPYC, 2026-12-07). */
    const char *core = nn_blas_better_coretype();
    if (!core || !nn_blas_coretype_for(nn_blas_corename(), 3) || atomic_exchange(&said, 1))
        return NULL;
    snprintf(msg, sizeof msg, "OpenBLAS loaded its %s kernels, older than this CPU's; for full speed "
             "set OPENBLAS_CORETYPE=%s in the host's environment", nn_blas_corename(), core);
    return msg;
}

int pcore_find_model(const char *name, const char *bundle, char *out, int outlen)
{
    char dirs[PCORE_PATH_MAX];
    const char *env = getenv("OSCINE_MODEL_PATH");
    snprintf(dirs, sizeof dirs, "%s", env ? env : "");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, (size_t)outlen, "%s/%s", d, name);
        FILE *f = fopen(out, "rb");
        if (f) {
            fclose(f);
            return 1;
        }
    }
    if (bundle && bundle[0]) {
        size_t bl = strlen(bundle);
        snprintf(out, (size_t)outlen, "%s%s%s", bundle, bundle[bl - 1] == '/' ? "" : "/",
                 name);
        FILE *f = fopen(out, "rb");
        if (f) {
            fclose(f);
            return 1;
        }
    }
    out[0] = 0;
    return 0;
}

void pcore_destroy(pcore *p)
{
    if (!p)
        return;
    oscine_chain_destroy(p->chain);
    for (int c = 0; c < 2; c++) {
        free(p->wet[c]);
        free(p->dry[c]);
    }
    free(p);
}

/* oscine_params_list callback: the ranges of p's parameters. */
static void param_range(void *user, const char *stage, const char *address, const char *unit,
                        float min, float max, float def, const char *help)
{
    pcore *p = user;
    for (int i = 0; i < p->kind->nparams; i++)
        if (!strcmp(address, p->addr[i])) {
            p->min[i] = min;
            p->max[i] = max;
            p->def[i] = def;
        }
}

int pcore_create(pcore **out, const pcore_kind *kind, int rate, int channels,
                 const char *model)
{
    *out = NULL;
    if (channels < 1 || channels > 2)
        return err_set(OSCINE_E_ARG, "plugin: %d channels (1 or 2)", channels);
    pcore *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(OSCINE_E_NOMEM, "plugin: out of memory");
    p->kind = kind;
    for (int i = 0; i < kind->nparams; i++) {
        snprintf(p->addr[i], sizeof p->addr[i], "/%s/%s", kind->stage, kind->params[i]);
        p->min[i] = NAN;
    }
    oscine_params_list(param_range, p);
    for (int i = 0; i < kind->nparams; i++)
        if (isnan(p->min[i])) {
            int e = err_set(OSCINE_E_PARAM, "plugin: no parameter %s", p->addr[i]);
            pcore_destroy(p);
            return e;
        }
    oscine_model_path mp = {kind->stage, model};
    oscine_chain_config cc = {.stages = kind->stage, .sample_rate = rate,
                              .channels = channels, .max_block = OSCINE_MAX_BLOCK,
                              .low_latency = 1, .models = model ? &mp : NULL,
                              .nmodels = model ? 1 : 0};
    int e = oscine_chain_create(&p->chain, &cc);
    if (e) {
        pcore_destroy(p);
        return e;
    }
    p->rate = rate;
    p->channels = channels;
    p->latency = oscine_chain_latency(p->chain);
    for (int c = 0; c < channels; c++) {
        p->wet[c] = calloc(OSCINE_MAX_BLOCK, sizeof(float));
        p->dry[c] = calloc((size_t)p->latency + 1, sizeof(float));
        if (!p->wet[c] || !p->dry[c]) {
            pcore_destroy(p);
            return err_set(OSCINE_E_NOMEM, "plugin: out of memory");
        }
    }
    p->step = 1.0f / (BYPASS_MS * 0.001f * (float)rate);
    for (int i = 0; i < kind->nparams; i++)
        p->last[i] = p->def[i]; /* a new chain starts at the defaults */
    *out = p;
    return 0;
}

pcore_controls pcore_defaults(const pcore *p)
{
    pcore_controls c = {.enable = 1.0f};
    for (int i = 0; i < p->kind->nparams; i++)
        c.v[i] = p->def[i];
    return c;
}

void pcore_reset(pcore *p)
{
    oscine_chain_reset(p->chain);
    for (int c = 0; c < p->channels; c++)
        memset(p->dry[c], 0, sizeof(float) * ((size_t)p->latency + 1));
    p->dry_pos = 0;
    p->started = 0;
}

int pcore_latency(const pcore *p) { return p->latency; }

float pcore_vad(const pcore *p)
{
    float v = chain_vad(p->chain);
    return v < 0.0f ? 0.0f : v;
}

/* A host's control value: finite and within lo..hi, else def or clamped. */
static float control(float v, float lo, float hi, float def)
{
    if (!isfinite(v))
        return def;
    return v < lo ? lo : v > hi ? hi : v;
}

void pcore_process(pcore *p, const float *const *in, float *const *out, size_t n,
                   const pcore_controls *ctl)
{
    for (int i = 0; i < p->kind->nparams; i++) {
        float v = control(ctl->v[i], p->min[i], p->max[i], p->def[i]);
        if (v != p->last[i] && !chain_set_rt(p->chain, p->addr[i], v))
            p->last[i] = v;
    }
    float target = control(ctl->enable, 0.0f, 1.0f, 1.0f) > 0.5f ? 1.0f : 0.0f;
    if (!p->started) {
        p->g = target;
        p->started = 1;
    }
    const int D = p->latency;
    for (size_t off = 0; off < n;) {
        int m = n - off > OSCINE_MAX_BLOCK ? OSCINE_MAX_BLOCK : (int)(n - off);
        const float *src[2];
        for (int c = 0; c < p->channels; c++)
            src[c] = in[c] + off;
        oscine_chain_process(p->chain, src, p->wet, m);
        float g = p->g;
        int pos = p->dry_pos;
        for (int c = 0; c < p->channels; c++) {
            const float *x = src[c], *w = p->wet[c];
            float *y = out[c] + off, *dl = p->dry[c];
            g = p->g;
            pos = p->dry_pos;
            for (int i = 0; i < m; i++) {
                float v = x[i];
                dl[pos] = isfinite(v) ? v : 0.0f; /* the chain sanitises its own */
                if (++pos > D)
                    pos = 0;
                float dry = dl[pos]; /* written D samples ago */
                if (g != target)
                    g = fabsf(target - g) <= p->step ? target : g + (target > g ? p->step : -p->step);
                y[i] = g == 1.0f ? w[i] : g == 0.0f ? dry : w[i] * g + dry * (1.0f - g);
            }
        }
        p->g = g;
        p->dry_pos = pos;
        off += (size_t)m;
    }
}
