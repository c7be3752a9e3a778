/* live.c - see live.h. Everything the audio thread touches is allocated in
 * live_create; live_process only computes, reads queues and writes queues. */
#include "engine/live.h"

#include "base/denormal.h"
#include "base/error.h"
#include "engine/chainrt.h"
#include "engine/spsc.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XFADE_MS 20.0f   /* chain swap crossfade */
#define SMOOTH_MS 10.0f  /* gain, bypass time constant */
#define FADE_MS 30.0f    /* master fade ramp */
#define DRY_MAX_S 1.0    /* longest chain latency the dry path can match */

/* Hooks a test build can define to catch allocation, locks or I/O on the
 * audio thread (tests/test_live_rt.c): called on entering and leaving. */
void oscine_rt_hook(int entering) __attribute__((weak));

typedef struct ramp {
    float target, dev, decay; /* value = target + dev; dev decays */
} ramp;

static void ramp_init(ramp *r, float v, float ms, int rate)
{
    r->target = v;
    r->dev = 0;
    r->decay = expf(-1.0f / (ms * 0.001f * (float)rate));
}

static void ramp_set(ramp *r, float v)
{
    r->dev += r->target - v;
    r->target = v;
}

static inline float ramp_next(ramp *r)
{
    r->dev *= r->decay;
    return r->target + r->dev;
}

static inline void ramp_settle(ramp *r)
{
    if (fabsf(r->dev) < 1e-7f)
        r->dev = 0;
}

struct live {
    int rate, channels, max_block;
    oscine_chain *cur;      /* audio thread owns */
    oscine_chain *old;      /* fading out, or NULL */
    int xfade_pos, xfade_len;
    spsc cmds, msgs;
    live_cmd pending[LIVE_PENDING];
    int npending;
    ramp gain, bypass;
    float master, master_target, master_step;
    float *dry[OSCINE_MAX_CHANNELS]; /* (dry_cap) delay lines matching latency */
    int dry_cap, dry_pos, dry_delay;
    float *wet[OSCINE_MAX_CHANNELS]; /* (max_block) */
    float *alt[OSCINE_MAX_CHANNELS]; /* (max_block) old chain during a swap */
    float *zero;                     /* (max_block) silence for output-only */
    /* meters, accumulated until posted */
    float in_peak, out_peak, cpu;
    double in_sq, out_sq;
    int acc_frames, meter_period;
    uint64_t xruns, overruns, late;
    int64_t frames;
    _Atomic int64_t clock_frames;
    _Atomic double clock_at;
    _Atomic unsigned clock_seq;
    _Atomic int latency;
    _Atomic float master_now;
};

static double mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int live_create(live **out, const live_config *cfg)
{
    *out = NULL;
    if (!cfg->chain || cfg->channels < 1 || cfg->channels > OSCINE_MAX_CHANNELS ||
        cfg->max_block < 1 || cfg->max_block > OSCINE_MAX_BLOCK || cfg->sample_rate < 8000)
        return err_set(OSCINE_E_ARG, "live engine: bad configuration");
    live *e = calloc(1, sizeof *e);
    if (!e)
        return err_set(OSCINE_E_NOMEM, "live engine: out of memory");
    e->rate = cfg->sample_rate;
    e->channels = cfg->channels;
    e->max_block = cfg->max_block;
    e->dry_cap = (int)(DRY_MAX_S * e->rate) + 1;
    int bad = spsc_init(&e->cmds, sizeof(live_cmd), 1024) ||
              spsc_init(&e->msgs, sizeof(live_msg), 256);
    e->zero = calloc((size_t)e->max_block, sizeof(float));
    bad |= !e->zero;
    for (int c = 0; c < e->channels; c++) {
        e->dry[c] = calloc((size_t)e->dry_cap, sizeof(float));
        e->wet[c] = calloc((size_t)e->max_block, sizeof(float));
        e->alt[c] = calloc((size_t)e->max_block, sizeof(float));
        bad |= !e->dry[c] || !e->wet[c] || !e->alt[c];
    }
    if (bad) {
        e->cur = NULL;
        live_destroy(e);
        return err_set(OSCINE_E_NOMEM, "live engine: out of memory");
    }
    e->cur = cfg->chain;
    int lat = oscine_chain_latency(e->cur);
    e->dry_delay = lat < e->dry_cap ? lat : e->dry_cap - 1;
    atomic_init(&e->latency, lat);
    ramp_init(&e->gain, 1.0f, SMOOTH_MS, e->rate);
    ramp_init(&e->bypass, 0.0f, SMOOTH_MS, e->rate);
    e->master = e->master_target = 1.0f;
    e->master_step = 1.0f / (FADE_MS * 0.001f * e->rate);
    atomic_init(&e->master_now, 1.0f);
    e->meter_period = e->rate / 50;
    e->xfade_len = (int)(XFADE_MS * 0.001f * e->rate);
    *out = e;
    return 0;
}

void live_destroy(live *e)
{
    if (!e)
        return;
    oscine_chain_destroy(e->cur);
    oscine_chain_destroy(e->old);
    live_cmd c;
    while (spsc_pop(&e->cmds, &c))
        if (c.kind == LIVE_SWAP)
            oscine_chain_destroy(c.chain);
    for (int i = 0; i < e->npending; i++)
        if (e->pending[i].kind == LIVE_SWAP)
            oscine_chain_destroy(e->pending[i].chain);
    live_msg m;
    while (spsc_pop(&e->msgs, &m))
        if (m.kind == LIVE_MSG_RETIRED)
            oscine_chain_destroy(m.chain);
    spsc_free(&e->cmds);
    spsc_free(&e->msgs);
    for (int c2 = 0; c2 < OSCINE_MAX_CHANNELS; c2++) {
        free(e->dry[c2]);
        free(e->wet[c2]);
        free(e->alt[c2]);
    }
    free(e->zero);
    free(e);
}

int live_post(live *e, const live_cmd *cmd) { return spsc_push(&e->cmds, cmd); }
int live_poll(live *e, live_msg *msg) { return spsc_pop(&e->msgs, msg); }
int live_latency(live *e) { return atomic_load(&e->latency); }
float live_master(live *e) { return atomic_load(&e->master_now); }
unsigned long live_dropped(live *e) { return atomic_load(&e->cmds.dropped); }

void live_clock(live *e, int64_t *sample_time, double *at)
{
    unsigned s1, s2;
    do {
        s1 = atomic_load_explicit(&e->clock_seq, memory_order_acquire);
        *sample_time = atomic_load_explicit(&e->clock_frames, memory_order_relaxed);
        *at = atomic_load_explicit(&e->clock_at, memory_order_relaxed);
        s2 = atomic_load_explicit(&e->clock_seq, memory_order_acquire);
    } while (s1 != s2 || (s1 & 1));
}

static void retire(live *e, oscine_chain *c)
{
    live_msg m = {.kind = LIVE_MSG_RETIRED, .chain = c};
    /* If the queue is full the chain leaks rather than being freed here:
     * freeing on the audio thread is worse. 256 slots make it moot. */
    spsc_push(&e->msgs, &m);
}

static void apply(live *e, const live_cmd *c)
{
    switch (c->kind) {
    case LIVE_SET:
        chain_set_rt(e->cur, c->addr, c->value);
        if (e->old)
            chain_set_rt(e->old, c->addr, c->value);
        break;
    case LIVE_EVENT:
        chain_event_rt(e->cur, c->addr, c->args, c->nargs);
        if (e->old)
            chain_event_rt(e->old, c->addr, c->args, c->nargs);
        break;
    case LIVE_GAIN:
        ramp_set(&e->gain, powf(10.0f, c->value / 20.0f));
        break;
    case LIVE_BYPASS:
        ramp_set(&e->bypass, c->value != 0 ? 1.0f : 0.0f);
        break;
    case LIVE_FADE:
        e->master_target = c->value > 0.5f ? 1.0f : 0.0f;
        break;
    case LIVE_SWAP:
        if (e->old) /* a swap during a swap: drop the oldest at once */
            retire(e, e->old);
        e->old = e->cur;
        e->cur = c->chain;
        chain_carry(e->old, e->cur); /* held notes sound on in the new chain */
        e->xfade_pos = 0;
        {
            int lat = oscine_chain_latency(e->cur);
            e->dry_delay = lat < e->dry_cap ? lat : e->dry_cap - 1;
            atomic_store(&e->latency, lat);
        }
        break;
    }
}

/* Process frames [off, off + n) of the block. */
static void run(live *e, const float *const *in, float *const *out, int off, int n)
{
    const float *src[OSCINE_MAX_CHANNELS];
    float *alt[OSCINE_MAX_CHANNELS];
    for (int c = 0; c < e->channels; c++) {
        src[c] = in ? in[c] + off : e->zero;
        alt[c] = e->alt[c];
    }
    float *wet[OSCINE_MAX_CHANNELS];
    for (int c = 0; c < e->channels; c++)
        wet[c] = e->wet[c];
    oscine_chain_process(e->cur, src, wet, n);
    int xf0 = e->xfade_pos;
    if (e->old)
        oscine_chain_process(e->old, src, alt, n);

    for (int c = 0; c < e->channels; c++) {
        ramp g = e->gain, b = e->bypass;
        float m = e->master;
        int pos = e->dry_pos, xf = xf0;
        float *dl = e->dry[c], *y = out[c] + off;
        const float *x = src[c];
        for (int i = 0; i < n; i++) {
            /* dry delayed by the chain's latency, so bypass keeps timing;
             * the chain cleans its own copy of the input, this one is
             * cleaned here (NaN * a bypass of 0 is still NaN) */
            dl[pos] = isfinite(x[i]) ? x[i] : 0.0f;
            int rd = pos - e->dry_delay;
            if (rd < 0)
                rd += e->dry_cap;
            float dry = dl[rd];
            if (++pos == e->dry_cap)
                pos = 0;
            float w = wet[c][i];
            if (e->old) {
                float t = xf < e->xfade_len ? (float)xf / e->xfade_len : 1.0f;
                w = t * w + (1.0f - t) * alt[c][i];
                xf++;
            }
            float bv = ramp_next(&b);
            float v = (w + (dry - w) * bv) * ramp_next(&g);
            if (m != e->master_target) {
                m += m < e->master_target ? e->master_step : -e->master_step;
                if (fabsf(m - e->master_target) < e->master_step)
                    m = e->master_target;
            }
            y[i] = v * m;
        }
        if (c == e->channels - 1) {
            e->gain = g;
            e->bypass = b;
            e->master = m;
            e->dry_pos = pos;
            e->xfade_pos = xf;
        }
    }
    ramp_settle(&e->gain);
    ramp_settle(&e->bypass);
    if (e->old && e->xfade_pos >= e->xfade_len) {
        retire(e, e->old);
        e->old = NULL;
    }
}

static void meter(live *e, const float *const *in, float *const *out, int n, double load)
{
    for (int c = 0; c < e->channels; c++) {
        const float *x = in ? in[c] : e->zero;
        for (int i = 0; i < n; i++) {
            float xi = isfinite(x[i]) ? x[i] : 0.0f; /* counted as NaN events, not level */
            float a = fabsf(xi), b = fabsf(out[c][i]);
            e->in_peak = a > e->in_peak ? a : e->in_peak;
            e->out_peak = b > e->out_peak ? b : e->out_peak;
            e->in_sq += (double)xi * xi;
            e->out_sq += (double)out[c][i] * out[c][i];
        }
    }
    e->cpu = load > e->cpu ? (float)load : e->cpu;
    e->acc_frames += n;
    if (e->acc_frames < e->meter_period)
        return;
    double cnt = (double)e->acc_frames * e->channels;
    live_msg m = {.kind = LIVE_MSG_METER};
    m.meter.in_peak = e->in_peak;
    m.meter.out_peak = e->out_peak;
    m.meter.in_rms = (float)sqrt(e->in_sq / cnt);
    m.meter.out_rms = (float)sqrt(e->out_sq / cnt);
    m.meter.cpu = e->cpu;
    m.meter.xruns = e->xruns;
    m.meter.overruns = e->overruns;
    m.meter.nan_events = oscine_chain_nan_events(e->cur);
    m.meter.late = e->late;
    m.meter.vad = chain_vad(e->cur);
    m.meter.sample_time = e->frames;
    spsc_push(&e->msgs, &m); /* a full queue drops a meter, nothing else */
    e->in_peak = e->out_peak = e->cpu = 0;
    e->in_sq = e->out_sq = 0;
    e->acc_frames = 0;
}

void live_process(live *e, const float *const *in, float *const *out, int n, int xrun)
{
    if (oscine_rt_hook)
        oscine_rt_hook(1);
    fp_mode fp = denormals_off();
    double t0 = mono_now();
    unsigned seq = atomic_load_explicit(&e->clock_seq, memory_order_relaxed);
    atomic_store_explicit(&e->clock_seq, seq + 1, memory_order_release);
    atomic_store_explicit(&e->clock_frames, e->frames, memory_order_relaxed);
    atomic_store_explicit(&e->clock_at, t0, memory_order_relaxed);
    atomic_store_explicit(&e->clock_seq, seq + 2, memory_order_release);
    if (xrun)
        e->xruns++;

    /* Drain the queue: due commands apply now, later ones wait in order. */
    live_cmd c;
    while (spsc_pop(&e->cmds, &c)) {
        if (c.when <= e->frames) {
            apply(e, &c);
        } else if (e->npending < LIVE_PENDING) {
            int i = e->npending++;
            while (i > 0 && e->pending[i - 1].when > c.when) {
                e->pending[i] = e->pending[i - 1];
                i--;
            }
            e->pending[i] = c;
        } else {
            apply(e, &c);
            e->late++;
        }
    }
    /* Split the block at each scheduled command's sample. */
    int off = 0;
    while (off < n) {
        int end = n;
        if (e->npending) {
            int64_t at = e->pending[0].when - e->frames;
            if (at <= off) {
                apply(e, &e->pending[0]);
                memmove(e->pending, e->pending + 1, sizeof(live_cmd) * (size_t)--e->npending);
                continue;
            }
            if (at < n)
                end = (int)at;
        }
        run(e, in, out, off, end - off);
        off = end;
    }
    e->frames += n;
    atomic_store_explicit(&e->master_now, e->master, memory_order_relaxed);
    double load = (mono_now() - t0) * e->rate / n;
    if (load > 1.0)
        e->overruns++;
    meter(e, in, out, n, load);
    denormals_restore(fp);
    if (oscine_rt_hook)
        oscine_rt_hook(0);
}
