/* chain.c - runs stages in order on planar host audio: sanitises input,
 * resamples to the stages' rate, buffers host blocks into fixed hops, and
 * keeps the total latency constant.
 *
 * Per channel ("lane"), with resampling:
 *   host in -> [down] -> hop buffer -> stages -> [up] -> out FIFO -> host out
 * The out FIFO starts with `prefill` zeros: enough that it never runs dry
 * whatever the host's block sizes, so output sample n is always the
 * pipeline's output for input n - prefill. libsoxr keeps sample indices
 * aligned, so with identity stages the latency is exactly prefill.
 * Without resampling the resamplers drop out; with no fixed hop either, the
 * stages run directly on the host's blocks and the chain adds no latency.
 */
#include "oscine.h"

#include "base/denormal.h"
#include "base/error.h"
#include "base/paths.h"
#include "dsp/resample.h"
#include "dsp/ring.h"
#include "engine/chainrt.h"
#include "engine/stage.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define MAX_STAGES 16
#define CHUNK 512 /* host frames handled per inner step */

typedef struct lane {
    void *st[MAX_STAGES];
    resampler *down, *up;
    float *in;     /* (CHUNK) sanitised host input */
    float *hop;    /* (hop) stage-rate frames being gathered */
    int hopfill;
    float *mid;    /* (down max_out) stage-rate samples from down */
    float *back;   /* (up max_out) host-rate samples from up */
    ring out;      /* host-rate output FIFO */
    /* upper band (host rate above the stage rate, see band_* below) */
    resampler *up_id; /* the unprocessed hop back to the host rate */
    float *raw;    /* (hop) the hop before the stages */
    ring idd;      /* stage-rate delay of raw by the stages' latency */
    ring id_out, g_out; /* host-rate FIFOs in step with out: identity, gain */
    float *xd;     /* (xd_len) host input delay line */
    int xd_pos;
    float *tmp_id, *tmp_g; /* (CHUNK) */
    float g_now;   /* smoothed band gain */
} lane;

struct oscine_chain {
    int rate, channels, max_block;
    int irate, hop; /* stage rate and hop (hop 0: host blocks, no adapter) */
    int resampling, low_latency;
    int prefill, latency;
    int band;         /* keep the band above the stage rate's Nyquist */
    int band_delay;   /* host samples: prefill + stage latency at host rate */
    int stage_lat;    /* internal samples */
    float g_coef;     /* band gain smoothing per host sample */
    char models[MAX_STAGES][4096]; /* resolved weights per stage ("" none) */
    int pmeter[MAX_STAGES]; /* first index of each stage's meters */
    int nmeters;
    _Atomic float *meters; /* (nmeters) latest, averaged over channels */
    int nstages;
    const stage_class *cls[MAX_STAGES];
    int pbase[MAX_STAGES]; /* first index of each stage's params */
    int nparams;
    _Atomic float *target; /* (nparams) written by control */
    float *applied;        /* (nparams) audio thread's view */
    int started;           /* audio thread: first block seen */
    _Atomic uint64_t nan_events;
    _Atomic uint64_t glitches; /* FIFO ran dry or over: a bug if ever non-zero */
    lane lanes[OSCINE_MAX_CHANNELS];
    char spec[256];
};

static long gcd(long a, long b)
{
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int parse_stages(oscine_chain *c, const char *spec)
{
    if (!spec || !spec[0])
        spec = "passthrough";
    if (strlen(spec) >= sizeof c->spec)
        return err_set(OSCINE_E_STAGE, "chain '%.40s...': too long", spec);
    strcpy(c->spec, spec);
    char buf[sizeof c->spec];
    strcpy(buf, spec);
    char *save = NULL;
    const char *p = buf;
    /* strtok_r skips empty fields; check for them first. */
    if (spec[0] == ',' || spec[strlen(spec) - 1] == ',' || strstr(spec, ",,"))
        return err_set(OSCINE_E_STAGE, "chain '%s': empty stage name", spec);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && e[-1] == ' ')
            *--e = 0;
        if (!tok[0])
            return err_set(OSCINE_E_STAGE, "chain '%s': empty stage name", spec);
        const stage_class *k = stage_find(tok);
        if (!k) {
            char names[256] = "";
            for (int i = 0; i < stage_class_count(); i++) {
                if (i)
                    strcat(names, ", ");
                strncat(names, stage_class_at(i)->name, sizeof names - strlen(names) - 3);
            }
            return err_set(OSCINE_E_STAGE, "unknown stage '%s' (stages: %s)", tok, names);
        }
        for (int i = 0; i < c->nstages; i++)
            if (c->cls[i] == k)
                return err_set(OSCINE_E_STAGE,
                               "chain '%s': stage '%s' appears twice (its parameters "
                               "would share one address)", spec, tok);
        if (c->nstages == MAX_STAGES)
            return err_set(OSCINE_E_STAGE, "chain '%s': more than %d stages", spec,
                           MAX_STAGES);
        c->cls[c->nstages++] = k;
    }
    (void)p;
    return 0;
}

int chain_spec_check(const char *spec)
{
    oscine_chain *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(OSCINE_E_NOMEM, "chain: out of memory");
    int e = parse_stages(c, spec);
    free(c);
    return e;
}

static int plan(oscine_chain *c, const oscine_chain_config *cfg)
{
    int need = 0;
    const char *who = NULL;
    for (int i = 0; i < c->nstages; i++) {
        int r = c->cls[i]->rate;
        if (!r)
            continue;
        if (need && r != need)
            return err_set(OSCINE_E_STAGE,
                           "chain '%s': stages '%s' (%d Hz) and '%s' (%d Hz) need "
                           "different rates", c->spec, who, need, c->cls[i]->name, r);
        need = r;
        who = c->cls[i]->name;
    }
    if (cfg->internal_rate) {
        if (need && cfg->internal_rate != need)
            return err_set(OSCINE_E_ARG, "chain '%s': stage '%s' runs at %d Hz, not %d",
                           c->spec, who, need, cfg->internal_rate);
        need = cfg->internal_rate;
    }
    c->irate = need ? need : c->rate;
    c->resampling = c->irate != c->rate;

    long hop = 0;
    for (int i = 0; i < c->nstages; i++) {
        long h = c->cls[i]->hop;
        if (h)
            hop = hop ? hop / gcd(hop, h) * h : h;
    }
    if (cfg->hop) {
        for (int i = 0; i < c->nstages; i++)
            if (c->cls[i]->hop && cfg->hop % c->cls[i]->hop)
                return err_set(OSCINE_E_ARG, "chain '%s': hop %d is not a multiple of "
                               "stage '%s' hop %d", c->spec, cfg->hop, c->cls[i]->name,
                               c->cls[i]->hop);
        hop = cfg->hop;
    }
    if (!hop && c->resampling)
        hop = 64;
    if (hop > 65536)
        return err_set(OSCINE_E_STAGE, "chain '%s': stage hops combine to %ld frames",
                       c->spec, hop);
    c->hop = (int)hop;
    return 0;
}

/* Weights for each stage that loads a model: the caller's path (or, for
 * stages with model_name, a name), else the
 * stage's default file in $OSCINE_MODEL_PATH, ./models, the installed
 * share/oscine/models. */
static int resolve_models(oscine_chain *c, const oscine_chain_config *cfg)
{
    /* An entry without a stage name is for the chain's one stage that
     * loads a model. */
    int nmodel_stages = 0, model_stage = -1;
    for (int i = 0; i < c->nstages; i++)
        if (c->cls[i]->model_file) {
            nmodel_stages++;
            model_stage = i;
        }
    for (int m = 0; m < cfg->nmodels; m++) {
        const char *st = cfg->models[m].stage;
        const char *path = cfg->models[m].path ? cfg->models[m].path : "(null)";
        if (!st || !st[0]) {
            if (nmodel_stages != 1)
                return err_set(OSCINE_E_ARG, nmodel_stages
                                   ? "model '%s': chain '%s' has several stages that load "
                                     "a model; say which (STAGE=PATH)"
                                   : "model '%s' given, but no stage in chain '%s' loads one",
                               path, c->spec);
            continue;
        }
        int found = 0;
        for (int i = 0; i < c->nstages; i++)
            found |= !strcmp(c->cls[i]->name, st);
        if (!found)
            return err_set(OSCINE_E_ARG, "model '%s' given for stage '%s', which is not in "
                           "chain '%s'", path, st, c->spec);
    }
    for (int i = 0; i < c->nstages; i++) {
        const stage_class *k = c->cls[i];
        c->models[i][0] = 0;
        const char *given = NULL;
        for (int m = 0; m < cfg->nmodels; m++) {
            const char *st = cfg->models[m].stage;
            if ((st && st[0] && !strcmp(st, k->name)) || ((!st || !st[0]) && i == model_stage))
                given = cfg->models[m].path;
        }
        if (!k->model_file) {
            if (given)
                return err_set(OSCINE_E_ARG, "stage '%s' takes no model", k->name);
            continue;
        }
        const char *file = k->model_file;
        char named[256];
        if (given) {
            /* a path; or (stages with model_name) a file name looked up like
             * model_file when it ends in .osw, else an instrument name */
            size_t len = strlen(given);
            if (!k->model_name || strchr(given, '/') || paths_file_exists(given)) {
                snprintf(c->models[i], sizeof c->models[i], "%s", given);
                continue;
            }
            if (len > 4 && !strcmp(given + len - 4, ".osw"))
                snprintf(named, sizeof named, "%s", given);
            else
                snprintf(named, sizeof named, k->model_name, given);
            file = named;
        }
        if (paths_find_model(file, c->models[i], sizeof c->models[i]))
            return err_set(OSCINE_E_IO, "stage '%s': model '%s' not found in %s", k->name, file,
                           paths_model_dirs());
    }
    return 0;
}

static int lane_create(oscine_chain *c, lane *l)
{
    for (int i = 0; i < c->nstages; i++) {
        stage_env env = {.sample_rate = c->irate, .max_frames = c->hop ? c->hop : CHUNK,
                         .host_rate = c->rate, .model = c->models[i][0] ? c->models[i] : NULL,
                         .low_latency = c->low_latency};
        int e = c->cls[i]->create(&l->st[i], &env);
        if (e < 0)
            return err_prefix(e, "stage '%s'", c->cls[i]->name);
    }
    l->in = calloc(CHUNK, sizeof(float));
    if (!l->in)
        return err_set(OSCINE_E_NOMEM, "chain: out of memory");
    if (c->hop) {
        l->hop = calloc((size_t)c->hop, sizeof(float));
        if (!l->hop)
            return err_set(OSCINE_E_NOMEM, "chain: out of memory");
    }
    if (c->resampling) {
        int e = resampler_create(&l->down, c->rate, c->irate, c->low_latency, CHUNK);
        if (!e)
            e = resampler_create(&l->up, c->irate, c->rate, c->low_latency, c->hop);
        if (e)
            return e;
        l->mid = calloc((size_t)resampler_max_out(l->down), sizeof(float));
        l->back = calloc((size_t)resampler_max_out(l->up), sizeof(float));
        if (!l->mid || !l->back)
            return err_set(OSCINE_E_NOMEM, "chain: out of memory");
    }
    if (c->band) {
        int e = resampler_create(&l->up_id, c->irate, c->rate, c->low_latency, c->hop);
        if (e)
            return e;
        l->raw = calloc((size_t)c->hop, sizeof(float));
        l->tmp_id = calloc(CHUNK, sizeof(float));
        l->tmp_g = calloc(CHUNK, sizeof(float));
        if (!l->raw || !l->tmp_id || !l->tmp_g || ring_init(&l->idd, c->stage_lat + c->hop))
            return err_set(OSCINE_E_NOMEM, "chain: out of memory");
        ring_write_zeros(&l->idd, c->stage_lat);
        l->g_now = 1.0f;
    }
    return 0;
}

static void lane_destroy(oscine_chain *c, lane *l)
{
    for (int i = 0; i < c->nstages; i++)
        if (l->st[i])
            c->cls[i]->destroy(l->st[i]);
    resampler_destroy(l->down);
    resampler_destroy(l->up);
    free(l->in);
    free(l->hop);
    free(l->mid);
    free(l->back);
    ring_free(&l->out);
    resampler_destroy(l->up_id);
    free(l->raw);
    free(l->tmp_id);
    free(l->tmp_g);
    free(l->xd);
    ring_free(&l->idd);
    ring_free(&l->id_out);
    ring_free(&l->g_out);
    memset(l, 0, sizeof *l);
}


OSCINE_API int oscine_chain_create(oscine_chain **out, const oscine_chain_config *cfg)
{
    *out = NULL;
    err_clear();
    if (!cfg)
        return err_set(OSCINE_E_ARG, "chain: no configuration");
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 192000)
        return err_set(OSCINE_E_UNSUPPORTED, "sample rate %d Hz not supported (8000..192000)",
                       cfg->sample_rate);
    if (cfg->channels < 1 || cfg->channels > OSCINE_MAX_CHANNELS)
        return err_set(OSCINE_E_UNSUPPORTED, "%d channels not supported (1..%d)",
                       cfg->channels, OSCINE_MAX_CHANNELS);
    if (cfg->max_block < 0 || cfg->max_block > OSCINE_MAX_BLOCK)
        return err_set(OSCINE_E_ARG, "max block %d out of range 1..%d", cfg->max_block,
                       OSCINE_MAX_BLOCK);
    if (cfg->internal_rate && (cfg->internal_rate < 1000 || cfg->internal_rate > 192000))
        return err_set(OSCINE_E_ARG, "internal rate %d Hz out of range", cfg->internal_rate);
    if (cfg->hop < 0 || cfg->hop > 65536)
        return err_set(OSCINE_E_ARG, "hop %d out of range", cfg->hop);

    oscine_chain *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(OSCINE_E_NOMEM, "chain: out of memory");
    c->rate = cfg->sample_rate;
    c->channels = cfg->channels;
    c->max_block = cfg->max_block ? cfg->max_block : OSCINE_MAX_BLOCK;
    c->low_latency = cfg->low_latency;
    if (cfg->nmodels < 0 || (cfg->nmodels && !cfg->models))
        return free(c), err_set(OSCINE_E_ARG, "chain: bad model list");
    int e = parse_stages(c, cfg->stages);
    if (!e)
        e = plan(c, cfg);
    for (int i = 0; !e && i < c->nstages; i++) {
        c->pbase[i] = c->nparams;
        c->nparams += c->cls[i]->nparams;
    }
    if (!e && c->nparams) {
        c->target = calloc((size_t)c->nparams, sizeof *c->target);
        c->applied = calloc((size_t)c->nparams, sizeof *c->applied);
        if (!c->target || !c->applied)
            e = err_set(OSCINE_E_NOMEM, "chain: out of memory");
        for (int i = 0; !e && i < c->nstages; i++)
            for (int j = 0; j < c->cls[i]->nparams; j++) {
                float d = c->cls[i]->params[j].def;
                atomic_init(&c->target[c->pbase[i] + j], d);
                c->applied[c->pbase[i] + j] = d;
            }
    }
    if (!e)
        e = resolve_models(c, cfg);
    for (int i = 0; !e && i < c->nstages; i++) {
        c->pmeter[i] = c->nmeters;
        c->nmeters += c->cls[i]->nmeters;
    }
    if (!e && c->nmeters && !(c->meters = calloc((size_t)c->nmeters, sizeof *c->meters)))
        e = err_set(OSCINE_E_NOMEM, "chain: out of memory");
    /* The stages' latency is known once one lane exists; the band path
     * (created with the lanes) needs it, so lane 0 is made first. */
    if (!e)
        e = lane_create(c, &c->lanes[0]);
    if (!e) {
        for (int i = 0; i < c->nstages; i++)
            c->stage_lat += c->cls[i]->latency(c->lanes[0].st[i]);
        int wants_band = 0;
        for (int i = 0; i < c->nstages; i++)
            wants_band |= c->cls[i]->band_gain != NULL;
        if (wants_band && c->resampling && c->rate > c->irate) {
            c->band = 1;
            lane_destroy(c, &c->lanes[0]);
            e = lane_create(c, &c->lanes[0]);
        }
    }
    for (int ch = 1; !e && ch < c->channels; ch++)
        e = lane_create(c, &c->lanes[ch]);
    if (!e) {
        int stage_lat = c->stage_lat;
        if (c->resampling) {
            /* Lag of down (stage-rate samples) plus a hop being gathered, in
             * host samples, plus the lag of up: see the top comment. */
            double r = (double)c->irate / c->rate;
            double owed = (resampler_lag(c->lanes[0].down) + c->hop - 1) / r +
                          resampler_lag(c->lanes[0].up);
            c->prefill = (int)ceil(owed) + 2;
            c->latency = c->prefill + (int)lround(stage_lat / r);
        } else if (c->hop) {
            c->prefill = c->hop - 1;
            c->latency = c->prefill + stage_lat;
        } else {
            c->latency = stage_lat;
        }
        if (c->hop) {
            int back_max = c->resampling ? resampler_max_out(c->lanes[0].up) : c->hop;
            int cap = c->prefill + 2 * (CHUNK + back_max + c->hop) + 64;
            for (int ch = 0; !e && ch < c->channels; ch++) {
                lane *l = &c->lanes[ch];
                if (ring_init(&l->out, cap))
                    e = err_set(OSCINE_E_NOMEM, "chain: out of memory");
                else
                    ring_write_zeros(&l->out, c->prefill);
                if (!e && c->band) {
                    c->band_delay = c->latency;
                    if (ring_init(&l->id_out, cap) || ring_init(&l->g_out, cap) ||
                        !(l->xd = calloc((size_t)c->band_delay + 1, sizeof(float))))
                        e = err_set(OSCINE_E_NOMEM, "chain: out of memory");
                    else {
                        ring_write_zeros(&l->id_out, c->prefill);
                        for (int i = 0; i < c->prefill; i++)
                            ring_write(&l->g_out, &l->g_now, 1);
                    }
                }
            }
            c->g_coef = 1.0f - expf(-1.0f / (0.005f * (float)c->rate));
        }
    }
    if (e) {
        oscine_chain_destroy(c);
        return e;
    }
    *out = c;
    return 0;
}

OSCINE_API void oscine_chain_destroy(oscine_chain *c)
{
    if (!c)
        return;
    for (int ch = 0; ch < OSCINE_MAX_CHANNELS; ch++)
        lane_destroy(c, &c->lanes[ch]);
    free(c->target);
    free(c->applied);
    free(c->meters);
    free(c);
}

OSCINE_API int oscine_chain_latency(const oscine_chain *c) { return c->latency; }

OSCINE_API uint64_t oscine_chain_glitches(const oscine_chain *c)
{
    return atomic_load_explicit(&c->glitches, memory_order_relaxed);
}

OSCINE_API uint64_t oscine_chain_nan_events(const oscine_chain *c)
{
    return atomic_load_explicit(&c->nan_events, memory_order_relaxed);
}

/* Run the stages on n frames in place; a stage that produces NaN/Inf is
 * reset and its block silenced, so nothing non-finite goes further. */
static void run_stages(oscine_chain *c, lane *l, float *buf, int n)
{
    for (int i = 0; i < c->nstages; i++) {
        const stage_class *k = c->cls[i];
        if (k->hop)
            for (int off = 0; off < n; off += k->hop)
                k->process(l->st[i], buf + off, k->hop);
        else
            k->process(l->st[i], buf, n);
        int bad = 0;
        for (int j = 0; j < n; j++)
            bad += !isfinite(buf[j]);
        if (bad) {
            k->reset(l->st[i]);
            memset(buf, 0, sizeof(float) * (size_t)n);
            atomic_fetch_add_explicit(&c->nan_events, (uint64_t)bad, memory_order_relaxed);
        }
    }
}

/* The upper band: the unprocessed hop, delayed by the stages' latency,
 * back to the host rate into id_out, and the stages' band gain for each of
 * those samples into g_out, both in step with out. The host input delayed
 * by the whole latency minus that identity path is what lies above the
 * stage rate's Nyquist (lane_process adds it back, scaled). */
static void band_hop(oscine_chain *c, lane *l)
{
    float g = 1.0f;
    for (int i = 0; i < c->nstages; i++)
        if (c->cls[i]->band_gain)
            g *= c->cls[i]->band_gain(l->st[i]);
    if (!(g >= 0.0f && g <= 1.0f))
        g = g > 1.0f ? 1.0f : 0.0f;
    ring_write(&l->idd, l->raw, c->hop);
    ring_read(&l->idd, l->raw, c->hop);
    int k = resampler_process(l->up_id, l->raw, c->hop, l->back);
    if (k <= 0)
        return;
    if (ring_write(&l->id_out, l->back, k) < k)
        atomic_fetch_add_explicit(&c->glitches, 1, memory_order_relaxed);
    for (int i = 0; i < k; i++)
        ring_write(&l->g_out, &g, 1);
}

/* Stage-rate samples into the hop buffer; each full hop goes through the
 * stages and on to the output FIFO (through up when resampling). */
static void gather(oscine_chain *c, lane *l, const float *x, int n)
{
    while (n > 0) {
        int take = c->hop - l->hopfill;
        if (take > n)
            take = n;
        memcpy(l->hop + l->hopfill, x, sizeof(float) * (size_t)take);
        l->hopfill += take;
        x += take;
        n -= take;
        if (l->hopfill < c->hop)
            break;
        l->hopfill = 0;
        if (c->band)
            memcpy(l->raw, l->hop, sizeof(float) * (size_t)c->hop);
        run_stages(c, l, l->hop, c->hop);
        if (c->band)
            band_hop(c, l);
        if (c->resampling) {
            int k = resampler_process(l->up, l->hop, c->hop, l->back);
            if (k > 0 && ring_write(&l->out, l->back, k) < k)
                atomic_fetch_add_explicit(&c->glitches, 1, memory_order_relaxed);
        } else if (ring_write(&l->out, l->hop, c->hop) < c->hop) {
            atomic_fetch_add_explicit(&c->glitches, 1, memory_order_relaxed);
        }
    }
}

static void lane_process(oscine_chain *c, lane *l, const float *in, float *out, int n)
{
    for (int pos = 0; pos < n; pos += CHUNK) {
        int m = n - pos < CHUNK ? n - pos : CHUNK;
        int bad = 0;
        for (int i = 0; i < m; i++) {
            float v = in[pos + i];
            int ok = isfinite(v);
            bad += !ok;
            l->in[i] = ok ? v : 0.0f;
        }
        if (bad)
            atomic_fetch_add_explicit(&c->nan_events, (uint64_t)bad, memory_order_relaxed);
        if (!c->hop) {
            run_stages(c, l, l->in, m);
            memcpy(out + pos, l->in, sizeof(float) * (size_t)m);
            continue;
        }
        if (c->resampling) {
            int k = resampler_process(l->down, l->in, m, l->mid);
            if (k > 0)
                gather(c, l, l->mid, k);
        } else {
            gather(c, l, l->in, m);
        }
        int got = ring_read(&l->out, out + pos, m);
        if (c->band) {
            int gi = ring_read(&l->id_out, l->tmp_id, m);
            int gg = ring_read(&l->g_out, l->tmp_g, m);
            if (gi < m || gg < m)
                atomic_fetch_add_explicit(&c->glitches, 1, memory_order_relaxed);
            float gs = l->g_now;
            const int D = c->band_delay;
            for (int i = 0; i < gi && i < gg; i++) {
                l->xd[l->xd_pos] = l->in[i];
                int rd = l->xd_pos - D;
                if (rd < 0)
                    rd += D + 1;
                float high = l->xd[rd] - l->tmp_id[i];
                if (++l->xd_pos > D)
                    l->xd_pos = 0;
                gs += (l->tmp_g[i] - gs) * c->g_coef;
                out[pos + i] += gs * high;
            }
            if (fabsf(gs) < 1e-20f)
                gs = 0.0f;
            l->g_now = gs;
        }
        if (got < m) {
            /* Cannot happen while prefill bounds the pipeline's lag; if it
             * ever does, count it rather than emit garbage. */
            memset(out + pos + got, 0, sizeof(float) * (size_t)(m - got));
            atomic_fetch_add_explicit(&c->glitches, 1, memory_order_relaxed);
        }
    }
}

static void apply_params(oscine_chain *c)
{
    for (int i = 0; i < c->nstages; i++)
        for (int j = 0; j < c->cls[i]->nparams; j++) {
            int p = c->pbase[i] + j;
            float v = atomic_load_explicit(&c->target[p], memory_order_relaxed);
            if (v == c->applied[p] && c->started)
                continue;
            c->applied[p] = v;
            for (int ch = 0; ch < c->channels; ch++)
                c->cls[i]->set_param(c->lanes[ch].st[i], j, v);
        }
    if (!c->started) {
        /* Values set before the first block apply from its first sample. */
        for (int i = 0; i < c->nstages; i++)
            for (int ch = 0; ch < c->channels; ch++)
                c->cls[i]->reset(c->lanes[ch].st[i]);
        c->started = 1;
    }
}

OSCINE_API int oscine_chain_process(oscine_chain *c, const float *const *in,
                                    float *const *out, int nframes)
{
    if (nframes < 1 || nframes > c->max_block)
        return OSCINE_E_ARG;
    fp_mode fp = denormals_off();
    apply_params(c);
    for (int ch = 0; ch < c->channels; ch++)
        lane_process(c, &c->lanes[ch], in[ch], out[ch], nframes);
    for (int i = 0; i < c->nstages; i++)
        for (int j = 0; j < c->cls[i]->nmeters; j++) {
            float sum = 0;
            for (int ch = 0; ch < c->channels; ch++)
                sum += c->cls[i]->meter(c->lanes[ch].st[i], j);
            atomic_store_explicit(&c->meters[c->pmeter[i] + j], sum / c->channels,
                                  memory_order_relaxed);
        }
    denormals_restore(fp);
    return 0;
}

OSCINE_API void oscine_chain_reset(oscine_chain *c)
{
    for (int ch = 0; ch < c->channels; ch++) {
        lane *l = &c->lanes[ch];
        for (int i = 0; i < c->nstages; i++)
            c->cls[i]->reset(l->st[i]);
        if (l->down)
            resampler_reset(l->down);
        if (l->up)
            resampler_reset(l->up);
        l->hopfill = 0;
        if (c->hop) {
            ring_clear(&l->out);
            ring_write_zeros(&l->out, c->prefill);
        }
        if (c->band) {
            resampler_reset(l->up_id);
            ring_clear(&l->idd);
            ring_write_zeros(&l->idd, c->stage_lat);
            ring_clear(&l->id_out);
            ring_write_zeros(&l->id_out, c->prefill);
            ring_clear(&l->g_out);
            l->g_now = 1.0f;
            for (int i = 0; i < c->prefill; i++)
                ring_write(&l->g_out, &l->g_now, 1);
            memset(l->xd, 0, sizeof(float) * ((size_t)c->band_delay + 1));
            l->xd_pos = 0;
        }
    }
}

/* "/stage/param" -> stage index and parameter index, without error text. */
static int lookup_param(const oscine_chain *c, const char *addr, int *si, int *pi)
{
    if (!addr || addr[0] != '/')
        return OSCINE_E_PARAM;
    const char *slash = strchr(addr + 1, '/');
    if (!slash)
        return OSCINE_E_PARAM;
    size_t sl = (size_t)(slash - addr - 1);
    for (int i = 0; i < c->nstages; i++) {
        const stage_class *k = c->cls[i];
        if (strlen(k->name) != sl || strncmp(k->name, addr + 1, sl))
            continue;
        for (int j = 0; j < k->nparams; j++)
            if (!strcmp(k->params[j].name, slash + 1)) {
                *si = i;
                *pi = j;
                return 0;
            }
    }
    return OSCINE_E_PARAM;
}

/* "/stage/name" -> stage index and event index, without error text. */
static int lookup_event(const oscine_chain *c, const char *addr, int *si, int *ei)
{
    const char *slash = addr && addr[0] == '/' ? strchr(addr + 1, '/') : NULL;
    if (!slash)
        return OSCINE_E_PARAM;
    size_t sl = (size_t)(slash - addr - 1);
    for (int i = 0; i < c->nstages; i++) {
        const stage_class *k = c->cls[i];
        if (strlen(k->name) == sl && !strncmp(k->name, addr + 1, sl) &&
            stage_find_event(k, slash + 1, ei)) {
            *si = i;
            return 0;
        }
    }
    return OSCINE_E_PARAM;
}

/* Argument i of event ev in range? (compound settings: the parameter's) */
static int event_arg_ok(const stage_class *k, const stage_event *ev, int i, float v,
                        float *lo, float *hi)
{
    int pi;
    const stage_param *p = ev->params ? stage_find_param(k, ev->params[i], &pi) : NULL;
    *lo = p ? p->min : ev->min[i];
    *hi = p ? p->max : ev->max[i];
    int whole = p ? stage_param_whole(k, pi) : ev->types[i] == 'i';
    return isfinite(v) && v >= *lo && v <= *hi && (!whole || v == floorf(v));
}

static void deliver_event(oscine_chain *c, int si, int ei, const float *args, int nargs)
{
    const stage_class *k = c->cls[si];
    const stage_event *ev = &k->events[ei];
    if (ev->params) {
        for (int i = 0; i < nargs; i++) {
            int pi;
            if (stage_find_param(k, ev->params[i], &pi))
                atomic_store_explicit(&c->target[c->pbase[si] + pi], args[i],
                                      memory_order_relaxed);
        }
        return;
    }
    if (!c->started)
        apply_params(c); /* the first block's reset must not undo the event */
    for (int ch = 0; ch < c->channels; ch++)
        k->event(c->lanes[ch].st[si], ei, args, nargs);
}

void chain_carry(const oscine_chain *from, oscine_chain *to)
{
    if (!from || !to)
        return;
    for (int si = 0; si < to->nstages; si++) {
        const stage_class *k = to->cls[si];
        if (!k->carry)
            continue;
        for (int sj = 0; sj < from->nstages; sj++)
            if (from->cls[sj] == k) {
                if (!to->started)
                    apply_params(to); /* the first block's reset must not undo it */
                int nch = from->channels < to->channels ? from->channels : to->channels;
                for (int ch = 0; ch < nch; ch++)
                    k->carry(from->lanes[ch].st[sj], to->lanes[ch].st[si]);
                break;
            }
    }
}

int chain_event_rt(oscine_chain *c, const char *address, const float *args, int nargs)
{
    int si, ei;
    if (lookup_event(c, address, &si, &ei))
        return OSCINE_E_PARAM;
    const stage_class *k = c->cls[si];
    const stage_event *ev = &k->events[ei];
    if (nargs != (int)strlen(ev->types))
        return OSCINE_E_RANGE;
    for (int i = 0; i < nargs; i++) {
        float lo, hi;
        if (!event_arg_ok(k, ev, i, args[i], &lo, &hi))
            return OSCINE_E_RANGE;
    }
    deliver_event(c, si, ei, args, nargs);
    return 0;
}

int chain_event(oscine_chain *c, const char *address, const float *args, int nargs)
{
    int si, ei;
    if (lookup_event(c, address, &si, &ei))
        return err_set(OSCINE_E_PARAM, "unknown event '%s' in chain '%s'",
                       address ? address : "(null)", c->spec);
    const stage_class *k = c->cls[si];
    const stage_event *ev = &k->events[ei];
    if (nargs != (int)strlen(ev->types))
        return err_set(OSCINE_E_RANGE, "%s: %d argument%s, expected %d (%s)", address, nargs,
                       nargs == 1 ? "" : "s", (int)strlen(ev->types), ev->args);
    for (int i = 0; i < nargs; i++) {
        float lo, hi;
        if (!event_arg_ok(k, ev, i, args[i], &lo, &hi))
            return err_set(OSCINE_E_RANGE, "%s: argument %d = %g out of range %g..%g", address,
                           i + 1, (double)args[i], (double)lo, (double)hi);
    }
    deliver_event(c, si, ei, args, nargs);
    return 0;
}

int chain_set_rt(oscine_chain *c, const char *address, float value)
{
    int si, pi;
    if (lookup_param(c, address, &si, &pi))
        return OSCINE_E_PARAM;
    const stage_param *p = &c->cls[si]->params[pi];
    if (!(value >= p->min && value <= p->max))
        return OSCINE_E_RANGE;
    if (stage_param_whole(c->cls[si], pi)) /* a plugin host's 1.9999 means 2 */
        value = roundf(value);
    atomic_store_explicit(&c->target[c->pbase[si] + pi], value, memory_order_relaxed);
    return 0;
}

/* "/stage/param" -> stage index and parameter index in this chain. */
static int find_param(const oscine_chain *c, const char *addr, int *si, int *pi)
{
    if (!lookup_param(c, addr, si, pi))
        return 0;
    if (!addr || addr[0] != '/')
        return err_set(OSCINE_E_PARAM, "parameter '%s': an address looks like /stage/name",
                       addr ? addr : "(null)");
    const char *slash = strchr(addr + 1, '/');
    if (!slash)
        return err_set(OSCINE_E_PARAM, "parameter '%s': an address looks like /stage/name",
                       addr);
    size_t sl = (size_t)(slash - addr - 1);
    for (int i = 0; i < c->nstages; i++) {
        const stage_class *k = c->cls[i];
        if (strlen(k->name) != sl || strncmp(k->name, addr + 1, sl))
            continue;
        for (int j = 0; j < k->nparams; j++)
            if (!strcmp(k->params[j].name, slash + 1)) {
                *si = i;
                *pi = j;
                return 0;
            }
        char names[128] = "";
        for (int j = 0; j < k->nparams; j++) {
            if (j)
                strcat(names, ", ");
            strncat(names, k->params[j].name, sizeof names - strlen(names) - 3);
        }
        return err_set(OSCINE_E_PARAM, "unknown parameter '%s' (stage '%s' has: %s)", addr,
                       k->name, k->nparams ? names : "no parameters");
    }
    return err_set(OSCINE_E_PARAM, "unknown parameter '%s': no stage '%.*s' in chain '%s'",
                   addr, (int)sl, addr + 1, c->spec);
}

OSCINE_API int oscine_chain_set(oscine_chain *c, const char *address, float value)
{
    int si, pi;
    int e = find_param(c, address, &si, &pi);
    if (e)
        return e;
    const stage_param *p = &c->cls[si]->params[pi];
    if (!isfinite(value) || value < p->min || value > p->max)
        return err_set(OSCINE_E_RANGE, "%s: value %g out of range %g..%g%s%s", address,
                       (double)value, (double)p->min, (double)p->max, p->unit[0] ? " " : "",
                       p->unit);
    if (stage_param_whole(c->cls[si], pi) && value != floorf(value))
        return err_set(OSCINE_E_RANGE, "%s: %g is not a whole number (%g..%g)", address,
                       (double)value, (double)p->min, (double)p->max);
    atomic_store_explicit(&c->target[c->pbase[si] + pi], value, memory_order_relaxed);
    return 0;
}

OSCINE_API int oscine_chain_meter(const oscine_chain *c, const char *address, float *value)
{
    const char *slash = address && address[0] == '/' ? strchr(address + 1, '/') : NULL;
    if (slash) {
        size_t sl = (size_t)(slash - address - 1);
        for (int i = 0; i < c->nstages; i++) {
            const stage_class *k = c->cls[i];
            if (strlen(k->name) != sl || strncmp(k->name, address + 1, sl))
                continue;
            for (int j = 0; j < k->nmeters; j++)
                if (!strcmp(k->meters[j], slash + 1)) {
                    *value = atomic_load_explicit(&c->meters[c->pmeter[i] + j],
                                                  memory_order_relaxed);
                    return 0;
                }
        }
    }
    return err_set(OSCINE_E_PARAM, "no meter '%s' in chain '%s'", address ? address : "(null)",
                   c->spec);
}

float chain_vad(const oscine_chain *c)
{
    for (int i = 0; i < c->nstages; i++)
        for (int j = 0; j < c->cls[i]->nmeters; j++)
            if (!strcmp(c->cls[i]->meters[j], "vad"))
                return atomic_load_explicit(&c->meters[c->pmeter[i] + j], memory_order_relaxed);
    return -1.0f;
}

OSCINE_API int oscine_chain_get(const oscine_chain *c, const char *address, float *value)
{
    int si, pi;
    int e = find_param(c, address, &si, &pi);
    if (e)
        return e;
    *value = atomic_load_explicit(&c->target[c->pbase[si] + pi], memory_order_relaxed);
    return 0;
}

OSCINE_API int oscine_params_list(oscine_param_fn fn, void *user)
{
    int n = 0;
    for (int i = 0; i < stage_class_count(); i++) {
        const stage_class *k = stage_class_at(i);
        for (int j = 0; j < k->nparams; j++, n++) {
            char addr[96];
            snprintf(addr, sizeof addr, "/%s/%s", k->name, k->params[j].name);
            if (fn)
                fn(user, k->name, addr, k->params[j].unit, k->params[j].min,
                   k->params[j].max, k->params[j].def, k->params[j].help);
        }
    }
    return n;
}

OSCINE_API int oscine_stages_list(oscine_stage_fn fn, void *user)
{
    for (int i = 0; i < stage_class_count(); i++)
        if (fn)
            fn(user, stage_class_at(i)->name, stage_class_at(i)->help);
    return stage_class_count();
}
