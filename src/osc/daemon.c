/* daemon.c - the control thread of `oscine run`. It owns the sockets, the
 * settings (what /get and /preset/save report), the subscribers, and talks
 * to the audio thread only through the live engine's queues; a worker
 * thread builds and frees chains so OSC keeps answering meanwhile. */
#include "osc/daemon.h"

#include "base/error.h"
#include "engine/chainrt.h"
#include "engine/live.h"
#include "engine/stage.h"
#include "io/pa.h"
#include "osc/preset.h"
#include "osc/table.h"
#include "oscine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lo/lo.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBS 16
#define MAX_CONNS 16
#define MAX_DEFERRED 256
#define MAX_PACKET 65536
#define METER_HZ 20
#define CONTROL_NICE 5 /* control threads, below the audio thread */
#define MAX_JOBS 16
#define MAX_MODELS 4

/* Weights chosen for stages by /<stage>/model (name or path). */
typedef struct stage_models {
    int n;
    char stage[MAX_MODELS][32];
    char model[MAX_MODELS][256];
} stage_models;

typedef struct peer {
    int fd; /* TCP connection, or -1 for UDP */
    struct sockaddr_storage sa;
    socklen_t salen;
} peer;

typedef struct osc_request {
    const osc_entry *e;
    float f;                 /* the first number */
    float v[OSC_MAX_ARGS];   /* every number, in order */
    int nargs;
    const char *s;
    peer from;
    int64_t when; /* sample time, 0 = now */
} osc_request;

typedef struct tcp_conn {
    int fd;
    size_t have;
    unsigned char buf[MAX_PACKET + 4];
} tcp_conn;

typedef struct deferred {
    double due; /* CLOCK_MONOTONIC */
    peer from;
    size_t len;
    unsigned char *data;
} deferred;

typedef struct job {
    int kind; /* 1 build chain, 2 free chain */
    char spec[256];
    int nvals;
    char addr[64][64];
    float vals[64];
    oscine_chain *chain;
    /* for the reply */
    peer from;
    char path[64];
    /* result */
    int err;
    char why[512];
    /* state to commit on success */
    float state[128];
    char preset[4096];       /* a name, or a file's path when loaded locally */
    stage_models models;     /* to build with, and to commit on success */
} job;

typedef struct oscd {
    daemon_config cfg;
    live *eng;
    pa_live *pa;
    int rate, buffer, channels;
    /* settings: values of settable table entries, and the chain spec */
    char chain[256];
    float val[128];
    char preset[4096]; /* the last preset loaded: a name, or a path from the command line */
    stage_models models;
    /* network */
    int udp, tcp_l;
    tcp_conn *conns[MAX_CONNS];
    peer subs[MAX_SUBS];
    int nsubs;
    deferred defer[MAX_DEFERRED];
    int ndefer;
    /* meters */
    live_meter meter;
    double last_meter_sent, t0;
    /* worker */
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *jobs[MAX_JOBS], *done[MAX_JOBS];
    int njobs, ndone, worker_stop;
    int wake[2];
    int busy_chain; /* a chain build is in flight */
    int quit;
    unsigned long reported_drops;
} oscd;

static int log_lvl = LOG_INFO;
static volatile sig_atomic_t sig_stop, sig_hup;
static int sig_pipe[2] = {-1, -1};

static void logf_(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (level > log_lvl)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "oscine: %s: %s\n", names[level], line);
}

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        sig_hup = 1;
    else
        sig_stop = 1;
    if (sig_pipe[1] >= 0) {
        char c = 1;
        ssize_t r = write(sig_pipe[1], &c, 1);
        (void)r;
    }
}

/* ------------------------------------------------------------ replies */

static void send_msg(oscd *d, const peer *to, const char *path, lo_message m)
{
    size_t len = 0;
    void *data = lo_message_serialise(m, path, NULL, &len);
    if (!data)
        return;
    if (to->fd >= 0) {
        uint32_t be = htonl((uint32_t)len);
        unsigned char frame[MAX_PACKET + 4];
        if (len <= MAX_PACKET) {
            memcpy(frame, &be, 4);
            memcpy(frame + 4, data, len);
            ssize_t r = send(to->fd, frame, len + 4, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)r;
        }
    } else {
        ssize_t r = sendto(d->udp, data, len, MSG_DONTWAIT, (const struct sockaddr *)&to->sa,
                           to->salen);
        (void)r;
    }
    free(data);
}

static void reply_done(oscd *d, const peer *to, const char *addr)
{
    lo_message m = lo_message_new();
    lo_message_add_string(m, addr);
    send_msg(d, to, "/done", m);
    lo_message_free(m);
}

static int reply_fail(oscd *d, const peer *to, const char *addr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reply_fail(oscd *d, const peer *to, const char *addr, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    lo_message m = lo_message_new();
    lo_message_add_string(m, addr);
    lo_message_add_string(m, why);
    send_msg(d, to, "/fail", m);
    lo_message_free(m);
    logf_(LOG_INFO, "%s: rejected: %s", addr, why);
    return -1;
}

/* ------------------------------------------------------------ settings */

static int entry_index(const osc_entry *e)
{
    for (int i = 0; i < osc_table_count(); i++)
        if (osc_table_at(i) == e)
            return i;
    return -1;
}

/* Is the stage named in addr ("/gain/db") part of chain spec? */
static int chain_has_stage(const char *spec, const char *addr)
{
    const char *slash = strchr(addr + 1, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - addr - 1);
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *q = p;
        while (*q && *q != ',')
            q++;
        const char *e = q;
        while (e > p && e[-1] == ' ')
            e--;
        if ((size_t)(e - p) == n && !strncmp(p, addr + 1, n))
            return 1;
        p = q;
    }
    return 0;
}

static void settings_defaults(oscd *d)
{
    for (int i = 0; i < osc_table_count(); i++)
        d->val[i] = osc_table_at(i)->def;
}

/* The weights to build chain spec with: --model for denoise (as before),
 * and each /<stage>/model choice whose stage is in the chain. */
int osc_stage_model(oscd *d, const osc_request *r);

/* The stage name of an address "/stage/...". */
static void addr_stage(const char *addr, char *stage, size_t len)
{
    const char *slash = strchr(addr + 1, '/');
    snprintf(stage, len, "%.*s", slash ? (int)(slash - addr - 1) : 0, addr + 1);
}

/* Set stage's model in sm. 0, or -1 when sm is full. */
static int models_set(stage_models *sm, const char *stage, const char *model)
{
    int k = 0;
    while (k < sm->n && strcmp(sm->stage[k], stage))
        k++;
    if (k == MAX_MODELS)
        return -1;
    snprintf(sm->stage[k], sizeof sm->stage[k], "%s", stage);
    snprintf(sm->model[k], sizeof sm->model[k], "%s", model);
    if (k == sm->n)
        sm->n++;
    return 0;
}

/* The model chosen for stage in sm, or NULL (the stage's default). */
static const char *models_get(const stage_models *sm, const char *stage)
{
    for (int k = 0; k < sm->n; k++)
        if (!strcmp(sm->stage[k], stage))
            return sm->model[k];
    return NULL;
}

/* A string setting's value: the chain, or a stage's model (its default
 * weights file when none was chosen). */
static const char *string_setting(const oscd *d, const osc_entry *e)
{
    if (e->handler != osc_stage_model)
        return d->chain;
    char stage[32];
    addr_stage(e->path, stage, sizeof stage);
    const char *m = models_get(&d->models, stage);
    const stage_class *k = stage_find(stage);
    return m ? m : k && k->model_file ? k->model_file : "";
}

static int chain_models(const oscd *d, const char *spec, const stage_models *sm,
                        oscine_model_path *mp)
{
    int n = 0;
    if (d->cfg.model && strstr(spec, "denoise"))
        mp[n++] = (oscine_model_path){"denoise", d->cfg.model};
    for (int i = 0; i < sm->n; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "/%s/x", sm->stage[i]);
        if (chain_has_stage(spec, addr))
            mp[n++] = (oscine_model_path){sm->stage[i], sm->model[i]};
    }
    return n;
}

/* --------------------------------------------------------------- worker */

/* Control work (OSC parsing, loading models) yields to the audio thread:
 * where the audio server cannot give its clients realtime scheduling, the
 * audio callback would otherwise share the CPU evenly with a flood of
 * messages. Applies to the calling thread only (Linux nice is per thread). */
static void lower_priority(void)
{
    errno = 0;
    id_t self = (id_t)syscall(SYS_gettid);
    int now = getpriority(PRIO_PROCESS, self);
    if (errno == 0 && now < CONTROL_NICE)
        setpriority(PRIO_PROCESS, self, CONTROL_NICE);
}

static void *worker_main(void *arg)
{
    oscd *d = arg;
    lower_priority();
    pthread_mutex_lock(&d->mu);
    while (!d->worker_stop) {
        if (!d->njobs) {
            pthread_cond_wait(&d->cv, &d->mu);
            continue;
        }
        job *j = d->jobs[0];
        memmove(d->jobs, d->jobs + 1, sizeof(job *) * (size_t)--d->njobs);
        pthread_mutex_unlock(&d->mu);
        if (j->kind == 2) {
            oscine_chain_destroy(j->chain);
            free(j);
        } else {
            oscine_model_path mp[1 + MAX_MODELS];
            oscine_chain_config cc = {.stages = j->spec, .sample_rate = d->rate,
                                      .channels = d->channels, .max_block = d->buffer,
                                      .low_latency = 1, .models = mp,
                                      .nmodels = chain_models(d, j->spec, &j->models, mp)};
            j->err = oscine_chain_create(&j->chain, &cc);
            for (int i = 0; !j->err && i < j->nvals; i++)
                oscine_chain_set(j->chain, j->addr[i], j->vals[i]);
            if (j->err)
                snprintf(j->why, sizeof j->why, "%s", oscine_last_error());
            pthread_mutex_lock(&d->mu);
            if (d->ndone < MAX_JOBS)
                d->done[d->ndone++] = j;
            pthread_mutex_unlock(&d->mu);
            char c = 1;
            ssize_t r = write(d->wake[1], &c, 1);
            (void)r;
        }
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static int submit(oscd *d, job *j)
{
    pthread_mutex_lock(&d->mu);
    int ok = d->njobs < MAX_JOBS;
    if (ok) {
        d->jobs[d->njobs++] = j;
        pthread_cond_signal(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return ok ? 0 : -1;
}

/* A chain build job carrying every stage setting of `state` that the new
 * chain has. */
static job *chain_job(oscd *d, const char *spec, const float *state, const peer *from,
                      const char *path)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->kind = 1;
    snprintf(j->spec, sizeof j->spec, "%s", spec);
    memcpy(j->state, state, sizeof j->state);
    j->models = d->models;
    for (int i = 0; i < osc_table_count() && j->nvals < 64; i++) {
        const osc_entry *e = osc_table_at(i);
        if (e->handler == NULL || strncmp(e->path, "/engine/", 8) == 0 || !e->settable ||
            e->types[0] == 's')
            continue;
        if (!chain_has_stage(spec, e->path))
            continue;
        snprintf(j->addr[j->nvals], 64, "%s", e->path);
        j->vals[j->nvals++] = state[i];
    }
    if (from)
        j->from = *from;
    else
        j->from.fd = -2; /* no reply */
    snprintf(j->path, sizeof j->path, "%s", path);
    return j;
}

static void post_or_warn(oscd *d, const live_cmd *c)
{
    if (live_post(d->eng, c))
        logf_(LOG_WARN, "control queue full: a command was dropped");
}

/* Apply engine-level settings from a state (gain, bypass). */
static void post_engine_settings(oscd *d, const float *state, int64_t when)
{
    const osc_entry *g = osc_table_find("/engine/gain"), *b = osc_table_find("/engine/bypass");
    live_cmd c = {.kind = LIVE_GAIN, .when = when, .value = state[entry_index(g)]};
    post_or_warn(d, &c);
    c.kind = LIVE_BYPASS;
    c.value = state[entry_index(b)];
    post_or_warn(d, &c);
}

static void finish_jobs(oscd *d)
{
    for (;;) {
        pthread_mutex_lock(&d->mu);
        job *j = NULL;
        if (d->ndone) {
            j = d->done[0];
            memmove(d->done, d->done + 1, sizeof(job *) * (size_t)--d->ndone);
        }
        pthread_mutex_unlock(&d->mu);
        if (!j)
            return;
        d->busy_chain = 0;
        if (j->err) {
            if (j->from.fd != -2)
                reply_fail(d, &j->from, j->path, "%s", j->why);
            else
                logf_(LOG_ERROR, "%s", j->why);
            free(j);
            continue;
        }
        live_cmd c = {.kind = LIVE_SWAP, .chain = j->chain};
        if (live_post(d->eng, &c)) {
            oscine_chain_destroy(j->chain);
            if (j->from.fd != -2)
                reply_fail(d, &j->from, j->path, "busy: control queue full");
            free(j);
            continue;
        }
        snprintf(d->chain, sizeof d->chain, "%s", j->spec);
        memcpy(d->val, j->state, sizeof d->val);
        d->models = j->models;
        post_engine_settings(d, d->val, 0);
        if (j->preset[0])
            snprintf(d->preset, sizeof d->preset, "%s", j->preset);
        logf_(LOG_INFO, "chain is now '%s'%s%s", d->chain, j->preset[0] ? " (preset " : "",
              j->preset[0] ? j->preset : "");
        if (j->preset[0])
            logf_(LOG_INFO, "preset '%s' loaded", j->preset);
        if (j->from.fd != -2)
            reply_done(d, &j->from, j->path);
        free(j);
    }
}

/* ------------------------------------------------------------- handlers */

int osc_engine_gain(oscd *d, const osc_request *r)
{
    live_cmd c = {.kind = LIVE_GAIN, .when = r->when, .value = r->f};
    if (live_post(d->eng, &c))
        return reply_fail(d, &r->from, r->e->path, "busy: control queue full");
    d->val[entry_index(r->e)] = r->f;
    reply_done(d, &r->from, r->e->path);
    return 0;
}

int osc_engine_bypass(oscd *d, const osc_request *r)
{
    live_cmd c = {.kind = LIVE_BYPASS, .when = r->when, .value = r->f};
    if (live_post(d->eng, &c))
        return reply_fail(d, &r->from, r->e->path, "busy: control queue full");
    d->val[entry_index(r->e)] = r->f;
    reply_done(d, &r->from, r->e->path);
    return 0;
}

int osc_stage_param(oscd *d, const osc_request *r)
{
    if (!chain_has_stage(d->chain, r->e->path))
        return reply_fail(d, &r->from, r->e->path, "no such stage in chain '%s'", d->chain);
    live_cmd c = {.kind = LIVE_SET, .when = r->when, .value = r->f};
    snprintf(c.addr, sizeof c.addr, "%s", r->e->path);
    if (live_post(d->eng, &c))
        return reply_fail(d, &r->from, r->e->path, "busy: control queue full");
    d->val[entry_index(r->e)] = r->f;
    reply_done(d, &r->from, r->e->path);
    return 0;
}

/* A stage event (/synth/note_on): to the audio thread at its sample time,
 * nothing stored. */
int osc_stage_event(oscd *d, const osc_request *r)
{
    if (!chain_has_stage(d->chain, r->e->path))
        return reply_fail(d, &r->from, r->e->path, "no such stage in chain '%s'", d->chain);
    live_cmd c = {.kind = LIVE_EVENT, .when = r->when, .nargs = r->nargs};
    snprintf(c.addr, sizeof c.addr, "%s", r->e->path);
    memcpy(c.args, r->v, sizeof(float) * (size_t)r->nargs);
    if (live_post(d->eng, &c))
        return reply_fail(d, &r->from, r->e->path, "busy: control queue full");
    reply_done(d, &r->from, r->e->path);
    return 0;
}

/* A compound setting (/synth/adsr): one command to the audio thread (the
 * chain sets the parameters together, at its sample time); the parameters
 * are what presets and /get see. */
int osc_stage_compound(oscd *d, const osc_request *r)
{
    if (osc_stage_event(d, r))
        return -1;
    const osc_args *a = osc_table_args(r->e);
    for (int i = 0; i < r->nargs; i++) {
        const osc_entry *p = osc_table_find(a->params[i]);
        if (p)
            d->val[entry_index(p)] = r->v[i];
    }
    return 0;
}

/* /<stage>/model s: remember the choice and rebuild the chain with it (if
 * the stage is in the chain; otherwise it applies when it is). */
int osc_stage_model(oscd *d, const osc_request *r)
{
    char stage[32];
    addr_stage(r->e->path, stage, sizeof stage);
    if (!r->s[0] || strlen(r->s) >= sizeof d->models.model[0])
        return reply_fail(d, &r->from, r->e->path, "a model name or path, up to %zu bytes",
                          sizeof d->models.model[0] - 1);
    stage_models sm = d->models;
    if (models_set(&sm, stage, r->s))
        return reply_fail(d, &r->from, r->e->path, "too many stage models");
    if (!chain_has_stage(d->chain, r->e->path)) {
        d->models = sm;
        reply_done(d, &r->from, r->e->path);
        return 0;
    }
    if (d->busy_chain)
        return reply_fail(d, &r->from, r->e->path, "busy: a chain is being built");
    job *j = chain_job(d, d->chain, d->val, &r->from, r->e->path);
    if (!j)
        return reply_fail(d, &r->from, r->e->path, "out of memory");
    j->models = sm;
    if (submit(d, j)) {
        free(j);
        return reply_fail(d, &r->from, r->e->path, "busy: worker queue full");
    }
    d->busy_chain = 1;
    return 0;
}

int osc_engine_chain(oscd *d, const osc_request *r)
{
    if (d->busy_chain)
        return reply_fail(d, &r->from, r->e->path, "busy: a chain is being built");
    /* The worker builds it (a model may take a while to load); a bad spec
     * comes back from there as /fail with the reason. */
    job *j = chain_job(d, r->s, d->val, &r->from, r->e->path);
    if (!j || submit(d, j)) {
        free(j);
        return reply_fail(d, &r->from, r->e->path, "busy: worker queue full");
    }
    d->busy_chain = 1;
    return 0;
}

/* Load a preset: every line valid, or nothing changes. from is the OSC peer
 * that asked (a name only), or NULL for the local user (SIGHUP: a name or
 * the path given on the command line). */
static int load_preset(oscd *d, const char *name, const peer *from, const char *path)
{
    char file[4096];
    preset_line lines[PRESET_MAX_LINES];
    int n = 0;
    int e = from ? preset_resolve(name, file, sizeof file)
                 : preset_resolve_local(name, file, sizeof file);
    if (!e)
        e = preset_parse_file(file, lines, PRESET_MAX_LINES, &n);
    if (e) {
        if (from)
            return reply_fail(d, from, path, "%s", oscine_last_error());
        logf_(LOG_ERROR, "%s", oscine_last_error());
        return -1;
    }
    float state[128];
    memcpy(state, d->val, sizeof state);
    char spec[256];
    snprintf(spec, sizeof spec, "%s", d->chain);
    for (int i = 0; i < n; i++)
        if (!strcmp(lines[i].e->path, "/engine/chain"))
            snprintf(spec, sizeof spec, "%s", lines[i].s);
    for (int i = 0; i < n; i++) {
        const osc_entry *en = lines[i].e;
        if (en->handler == osc_stage_param && !chain_has_stage(spec, en->path)) {
            const char *why = "preset '%s' line %d: %s: no such stage in chain '%s'";
            if (from)
                return reply_fail(d, from, path, why, name, lines[i].lineno, en->path, spec);
            logf_(LOG_ERROR, why, name, lines[i].lineno, en->path, spec);
            return -1;
        }
        if (en->types[0] != 's')
            state[entry_index(en)] = lines[i].f;
    }
    stage_models sm = d->models;
    for (int i = 0; i < n; i++)
        if (lines[i].e->handler == osc_stage_model) {
            char stage[32];
            addr_stage(lines[i].e->path, stage, sizeof stage);
            if (models_set(&sm, stage, lines[i].s)) {
                if (from)
                    return reply_fail(d, from, path, "too many stage models");
                return -1;
            }
        }
    if (d->busy_chain) {
        if (from)
            return reply_fail(d, from, path, "busy: a chain is being built");
        return -1;
    }
    /* Always through a fresh chain: the preset's settings take effect
     * together, crossfaded, and nothing changes if the build fails. */
    job *j = chain_job(d, spec, state, from, path);
    if (!j) {
        if (from)
            return reply_fail(d, from, path, "out of memory");
        return -1;
    }
    snprintf(j->preset, sizeof j->preset, "%s", name);
    j->models = sm;
    if (submit(d, j)) {
        free(j);
        if (from)
            return reply_fail(d, from, path, "busy: worker queue full");
        return -1;
    }
    d->busy_chain = 1;
    return 0;
}

int osc_preset_load(oscd *d, const osc_request *r)
{
    return load_preset(d, r->s, &r->from, r->e->path);
}

int osc_preset_save(oscd *d, const osc_request *r)
{
    preset_line lines[PRESET_MAX_LINES];
    int n = 0;
    for (int i = 0; i < osc_table_count() && n < PRESET_MAX_LINES; i++) {
        const osc_entry *e = osc_table_at(i);
        if (!e->settable)
            continue;
        if ((e->handler == osc_stage_param || e->handler == osc_stage_model) &&
            !chain_has_stage(d->chain, e->path))
            continue;
        char stage[32];
        addr_stage(e->path, stage, sizeof stage);
        if (e->handler == osc_stage_model && !models_get(&d->models, stage))
            continue; /* the default model: the preset need not name it */
        memset(&lines[n], 0, sizeof lines[n]);
        lines[n].e = e;
        if (e->types[0] == 's')
            snprintf(lines[n].s, sizeof lines[n].s, "%s", string_setting(d, e));
        else
            lines[n].f = d->val[i];
        n++;
    }
    char file[4096];
    if (preset_save(r->s, lines, n, file, sizeof file))
        return reply_fail(d, &r->from, r->e->path, "%s", oscine_last_error());
    logf_(LOG_INFO, "preset '%s' saved to %s", r->s, file);
    reply_done(d, &r->from, r->e->path);
    return 0;
}

int osc_status(oscd *d, const osc_request *r)
{
    double in_s, out_s;
    pa_live_latency(d->pa, &in_s, &out_s);
    double lat_ms = 1000.0 * (live_latency(d->eng) / (double)d->rate + in_s + out_s);
    lo_message m = lo_message_new();
    lo_message_add_int32(m, d->rate);
    lo_message_add_int32(m, d->buffer);
    lo_message_add_float(m, (float)lat_ms);
    lo_message_add_float(m, d->meter.cpu * 100.0f);
    lo_message_add_int32(m, (int32_t)d->meter.xruns);
    lo_message_add_string(m, d->chain);
    lo_message_add_float(m, (float)(now_mono() - d->t0));
    lo_message_add_int32(m, (int32_t)d->meter.overruns);
    send_msg(d, &r->from, "/status.reply", m);
    lo_message_free(m);
    return 0;
}

int osc_get(oscd *d, const osc_request *r)
{
    const osc_entry *e = osc_table_find(r->s);
    if (!e || !e->settable)
        return reply_fail(d, &r->from, r->e->path, "'%s' is not a setting", r->s);
    if (e->handler == osc_stage_param && !chain_has_stage(d->chain, e->path))
        return reply_fail(d, &r->from, r->e->path, "%s: no such stage in chain '%s'", r->s,
                          d->chain);
    lo_message m = lo_message_new();
    lo_message_add_string(m, e->path);
    if (e->types[0] == 's')
        lo_message_add_string(m, string_setting(d, e));
    else if (e->types[0] == 'i')
        lo_message_add_int32(m, (int32_t)d->val[entry_index(e)]);
    else
        lo_message_add_float(m, d->val[entry_index(e)]);
    send_msg(d, &r->from, "/value", m);
    lo_message_free(m);
    return 0;
}

static int same_peer(const peer *a, const peer *b)
{
    return a->fd == b->fd && a->salen == b->salen && !memcmp(&a->sa, &b->sa, a->salen);
}

int osc_notify(oscd *d, const osc_request *r)
{
    int found = -1;
    for (int i = 0; i < d->nsubs; i++)
        if (same_peer(&d->subs[i], &r->from))
            found = i;
    if (r->f != 0 && found < 0) {
        if (d->nsubs == MAX_SUBS)
            return reply_fail(d, &r->from, r->e->path, "too many subscribers (%d)", MAX_SUBS);
        d->subs[d->nsubs++] = r->from;
    } else if (r->f == 0 && found >= 0) {
        d->subs[found] = d->subs[--d->nsubs];
    }
    reply_done(d, &r->from, r->e->path);
    return 0;
}

int osc_quit(oscd *d, const osc_request *r)
{
    reply_done(d, &r->from, r->e->path);
    logf_(LOG_INFO, "/quit received");
    d->quit = 1;
    return 0;
}

/* ------------------------------------------------------------- dispatch */

/* Timetag to sample time (0: now). */
static int64_t tt_to_samples(oscd *d, lo_timetag tt, double *due)
{
    *due = 0;
    if (tt.sec == 0 && tt.frac <= 1)
        return 0; /* "immediately" */
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    double t_osc = (double)tt.sec - 2208988800.0 + tt.frac / 4294967296.0;
    double ahead = t_osc - ((double)rt.tv_sec + rt.tv_nsec * 1e-9);
    if (ahead <= 0)
        return 0;
    int64_t frames;
    double at;
    live_clock(d->eng, &frames, &at);
    double mono = now_mono();
    *due = mono + ahead;
    if (at == 0)
        at = mono; /* audio not running yet */
    return frames + (int64_t)llround((mono + ahead - at) * d->rate);
}

/* liblo's argument pointers are only 4-byte aligned, while union lo_arg
 * asks for 8: read through memcpy, never through the union. */
static double arg_number(char type, const lo_arg *a, int *ok)
{
    float f;
    int32_t i;
    double d;
    int64_t h;
    *ok = 1;
    switch (type) {
    case 'f': memcpy(&f, a, sizeof f); return f;
    case 'i': memcpy(&i, a, sizeof i); return i;
    case 'd': memcpy(&d, a, sizeof d); return d;
    case 'h': memcpy(&h, a, sizeof h); return (double)h;
    case 'T': return 1;
    case 'F': return 0;
    default: *ok = 0; return 0;
    }
}

static void dispatch_message(oscd *d, void *data, size_t size, const peer *from,
                             lo_timetag tt);

static void defer_message(oscd *d, void *data, size_t size, const peer *from, double due)
{
    const char *path = lo_get_path(data, (ssize_t)size);
    if (d->ndefer == MAX_DEFERRED) {
        reply_fail(d, from, path ? path : "?", "too many scheduled messages (%d)", MAX_DEFERRED);
        return;
    }
    deferred *q = &d->defer[d->ndefer++];
    q->due = due;
    q->from = *from;
    q->len = size;
    q->data = malloc(size);
    if (!q->data) {
        d->ndefer--;
        return;
    }
    memcpy(q->data, data, size);
}

static void dispatch_message(oscd *d, void *data, size_t size, const peer *from,
                             lo_timetag tt)
{
    int result = 0;
    const char *path = lo_get_path(data, (ssize_t)size);
    lo_message m = lo_message_deserialise(data, size, &result);
    if (!m || !path) {
        logf_(LOG_DEBUG, "malformed OSC message ignored (liblo error %d)", result);
        if (m)
            lo_message_free(m);
        return;
    }
    const osc_entry *e = osc_table_find(path);
    if (!e) {
        reply_fail(d, from, path, "unknown address");
        lo_message_free(m);
        return;
    }
    const char *types = lo_message_get_types(m);
    lo_arg **argv = lo_message_get_argv(m);
    int argc = lo_message_get_argc(m);
    osc_request r = {.e = e, .from = *from};
    int want = (int)strlen(e->types);
    if (argc != want) {
        reply_fail(d, from, path, "wrong types: expected '%s', got '%s'", e->types, types);
        lo_message_free(m);
        return;
    }
    const osc_args *ga = osc_table_args(e);
    for (int i = 0; i < want; i++) {
        char t = types[i], w = e->types[i];
        char which[24] = "";
        if (want > 1)
            snprintf(which, sizeof which, "argument %d: ", i + 1);
        if (w == 's') {
            if (t != 's' && t != 'S') {
                reply_fail(d, from, path, "wrong types: expected '%s', got '%s'", e->types, types);
                lo_message_free(m);
                return;
            }
            r.s = (const char *)argv[i];
        } else {
            int ok;
            double v = arg_number(t, argv[i], &ok);
            if (!ok) {
                if (want > 1)
                    reply_fail(d, from, path, "wrong types: expected '%s', got '%s'", e->types,
                               types);
                else
                    reply_fail(d, from, path, "wrong types: expected '%c', got '%c'", w, t);
                lo_message_free(m);
                return;
            }
            float lo = ga->min[i], hi = ga->max[i];
            if (!isfinite(v) || v < lo || v > hi || (w == 'i' && v != floor(v))) {
                reply_fail(d, from, path, "%s%g out of range %g..%g%s%s%s", which, v, (double)lo,
                           (double)hi, e->unit[0] && want == 1 ? " " : "",
                           want == 1 ? e->unit : "", w == 'i' ? " (integer)" : "");
                lo_message_free(m);
                return;
            }
            r.v[i] = (float)v;
        }
    }
    r.f = r.v[0];
    r.nargs = want;
    double due;
    r.when = tt_to_samples(d, tt, &due);
    int sample_exact = e->handler == osc_stage_param || e->handler == osc_engine_gain ||
                       e->handler == osc_engine_bypass || e->handler == osc_stage_event ||
                       e->handler == osc_stage_compound;
    if (due > 0 && !sample_exact) {
        lo_message_free(m);
        defer_message(d, data, size, from, due);
        return;
    }
    logf_(LOG_DEBUG, "%s", path);
    e->handler(d, &r);
    lo_message_free(m);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A packet: a message, or a bundle of messages and bundles. */
static void dispatch_packet(oscd *d, unsigned char *data, size_t size, const peer *from,
                            lo_timetag outer, int depth)
{
    if (size < 4 || size % 4)
        return;
    if (size >= 16 && !memcmp(data, "#bundle", 8)) {
        if (depth > 8)
            return;
        lo_timetag tt = {be32(data + 8), be32(data + 12)};
        size_t pos = 16;
        while (pos + 4 <= size) {
            uint32_t n = be32(data + pos);
            pos += 4;
            if (n > size - pos || n % 4)
                return; /* malformed: stop */
            dispatch_packet(d, data + pos, n, from, tt, depth + 1);
            pos += n;
        }
        return;
    }
    if (data[0] != '/')
        return;
    dispatch_message(d, data, size, from, outer);
}

/* ------------------------------------------------------------- network */

static int open_sockets(oscd *d)
{
    char port[16];
    snprintf(port, sizeof port, "%d", d->cfg.osc_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICSERV}, *res = NULL;
    int g = getaddrinfo(d->cfg.osc_host, port, &hints, &res);
    if (g)
        return err_set(OSCINE_E_ARG, "--osc-host '%s': %s", d->cfg.osc_host, gai_strerror(g));
    d->udp = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (d->udp < 0 || bind(d->udp, res->ai_addr, res->ai_addrlen)) {
        int e = errno;
        freeaddrinfo(res);
        return err_set(OSCINE_E_IO, "cannot listen on UDP %s:%d: %s", d->cfg.osc_host,
                       d->cfg.osc_port, strerror(e));
    }
    d->tcp_l = -1;
    if (d->cfg.tcp) {
        d->tcp_l = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(d->tcp_l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (d->tcp_l < 0 || bind(d->tcp_l, res->ai_addr, res->ai_addrlen) ||
            listen(d->tcp_l, 8)) {
            int e = errno;
            freeaddrinfo(res);
            return err_set(OSCINE_E_IO, "cannot listen on TCP %s:%d: %s", d->cfg.osc_host,
                           d->cfg.osc_port, strerror(e));
        }
    }
    freeaddrinfo(res);
    return 0;
}

static void read_udp(oscd *d)
{
    static unsigned char buf[MAX_PACKET];
    /* Bounded per tick, so a flood cannot starve the rest of the loop. */
    for (int k = 0; k < 512; k++) {
        peer p = {.fd = -1, .salen = sizeof p.sa};
        ssize_t n = recvfrom(d->udp, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&p.sa,
                             &p.salen);
        if (n < 0)
            return;
        if ((size_t)n > sizeof buf) {
            logf_(LOG_WARN, "OSC packet of %zd bytes ignored (limit %d)", n, MAX_PACKET);
            continue;
        }
        lo_timetag now = {0, 1};
        dispatch_packet(d, buf, (size_t)n, &p, now, 0);
    }
}

static void close_conn(oscd *d, int i)
{
    for (int s = 0; s < d->nsubs; s++)
        if (d->subs[s].fd == d->conns[i]->fd)
            d->subs[s--] = d->subs[--d->nsubs];
    close(d->conns[i]->fd);
    free(d->conns[i]);
    d->conns[i] = NULL;
}

static void read_tcp(oscd *d, int i)
{
    tcp_conn *c = d->conns[i];
    ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close_conn(d, i);
        return;
    }
    if (n < 0)
        return;
    c->have += (size_t)n;
    while (c->have >= 4) {
        uint32_t len = be32(c->buf);
        if (len > MAX_PACKET) {
            logf_(LOG_WARN, "TCP OSC frame of %u bytes: closing the connection", len);
            close_conn(d, i);
            return;
        }
        if (c->have < 4 + len)
            break;
        peer p = {.fd = c->fd};
        lo_timetag now = {0, 1};
        dispatch_packet(d, c->buf + 4, len, &p, now, 0);
        if (!d->conns[i])
            return;
        memmove(c->buf, c->buf + 4 + len, c->have - 4 - len);
        c->have -= 4 + len;
    }
}

static void send_meters(oscd *d)
{
    double t = now_mono();
    if (!d->nsubs || t - d->last_meter_sent < 1.0 / METER_HZ)
        return;
    d->last_meter_sent = t;
    lo_message m = lo_message_new();
    lo_message_add_float(m, d->meter.in_peak);
    lo_message_add_float(m, d->meter.in_rms);
    lo_message_add_float(m, d->meter.out_peak);
    lo_message_add_float(m, d->meter.out_rms);
    lo_message_add_float(m, d->meter.cpu * 100.0f);
    lo_message_add_int32(m, (int32_t)d->meter.xruns);
    lo_message_add_float(m, d->meter.vad);
    for (int i = 0; i < d->nsubs; i++)
        send_msg(d, &d->subs[i], "/meter", m);
    lo_message_free(m);
}

static void drain_engine(oscd *d)
{
    live_msg m;
    while (live_poll(d->eng, &m)) {
        if (m.kind == LIVE_MSG_METER) {
            if (m.meter.xruns > d->meter.xruns)
                logf_(LOG_WARN, "audio xrun (total %llu)", (unsigned long long)m.meter.xruns);
            if (m.meter.overruns > d->meter.overruns)
                logf_(LOG_WARN, "audio callback ran longer than its buffer (total %llu)",
                      (unsigned long long)m.meter.overruns);
            if (m.meter.nan_events > d->meter.nan_events)
                logf_(LOG_WARN, "NaN/Inf caught in the chain (%llu samples in all): silenced",
                      (unsigned long long)m.meter.nan_events);
            d->meter = m.meter;
        } else if (m.kind == LIVE_MSG_RETIRED) {
            job *j = calloc(1, sizeof *j);
            if (j) {
                j->kind = 2;
                j->chain = m.chain;
                if (submit(d, j)) {
                    free(j);
                    oscine_chain_destroy(m.chain); /* control thread: allowed */
                }
            }
        }
    }
    unsigned long drops = live_dropped(d->eng);
    if (drops != d->reported_drops) {
        logf_(LOG_WARN, "control queue overflow: %lu commands dropped in total", drops);
        d->reported_drops = drops;
    }
}

static void run_deferred(oscd *d)
{
    double t = now_mono();
    for (int i = 0; i < d->ndefer;) {
        if (d->defer[i].due <= t) {
            deferred q = d->defer[i];
            d->defer[i] = d->defer[--d->ndefer];
            lo_timetag now = {0, 1};
            dispatch_message(d, q.data, q.len, &q.from, now);
            free(q.data);
        } else {
            i++;
        }
    }
}

/* ----------------------------------------------------------------- run */

int daemon_run(const daemon_config *cfg)
{
    oscd *d = calloc(1, sizeof *d);
    if (!d) {
        fprintf(stderr, "oscine: out of memory\n");
        return 1;
    }
    d->cfg = *cfg;
    if (!d->cfg.osc_host)
        d->cfg.osc_host = "127.0.0.1";
    if (!d->cfg.chain)
        d->cfg.chain = "passthrough";
    log_lvl = cfg->log_level;
    d->udp = d->tcp_l = -1;
    d->wake[0] = d->wake[1] = -1;
    osc_table_init();
    settings_defaults(d);
    snprintf(d->chain, sizeof d->chain, "%s", d->cfg.chain);
    int code = 1, worker_up = 0;

    /* The preset (if any) is read first, so a bad one fails before audio. */
    preset_line lines[PRESET_MAX_LINES];
    int nlines = 0;
    if (cfg->preset) {
        char file[4096];
        if (preset_resolve_local(cfg->preset, file, sizeof file) ||
            preset_parse_file(file, lines, PRESET_MAX_LINES, &nlines)) {
            logf_(LOG_ERROR, "%s", oscine_last_error());
            goto out;
        }
        for (int i = 0; i < nlines; i++) {
            if (!strcmp(lines[i].e->path, "/engine/chain"))
                snprintf(d->chain, sizeof d->chain, "%s", lines[i].s);
            else
                d->val[entry_index(lines[i].e)] = lines[i].f;
        }
        snprintf(d->preset, sizeof d->preset, "%s", cfg->preset);
    }
    /* so is a bad chain, from the preset or --chain */
    if (chain_spec_check(d->chain)) {
        logf_(LOG_ERROR, "%s", oscine_last_error());
        goto out;
    }

    if (open_sockets(d)) {
        logf_(LOG_ERROR, "%s", oscine_last_error());
        goto out;
    }
    pa_stream_config pc = {.input = cfg->input, .output = cfg->output,
                           .host_api = cfg->host_api, .sample_rate = cfg->rate,
                           .buffer = cfg->buffer, .channels = cfg->channels,
                           .client_name = cfg->client_name};
    if (pa_live_prepare(&d->pa, &pc, &d->rate, &d->buffer)) {
        logf_(LOG_ERROR, "%s", oscine_last_error());
        goto out;
    }
    d->channels = cfg->channels;
    oscine_model_path mp[1 + MAX_MODELS];
    oscine_chain_config cc = {.stages = d->chain, .sample_rate = d->rate,
                              .channels = d->channels, .max_block = d->buffer,
                              .low_latency = 1, .models = mp,
                              .nmodels = chain_models(d, d->chain, &d->models, mp)};
    oscine_chain *chain;
    if (oscine_chain_create(&chain, &cc)) {
        logf_(LOG_ERROR, "%s", oscine_last_error());
        goto out;
    }
    for (int i = 0; i < osc_table_count(); i++) {
        const osc_entry *e = osc_table_at(i);
        if (e->handler == osc_stage_param && chain_has_stage(d->chain, e->path) &&
            oscine_chain_set(chain, e->path, d->val[i])) {
            logf_(LOG_ERROR, "%s", oscine_last_error());
            oscine_chain_destroy(chain);
            goto out;
        }
    }
    live_config lc = {.sample_rate = d->rate, .channels = d->channels, .max_block = d->buffer,
                      .chain = chain};
    if (live_create(&d->eng, &lc)) {
        oscine_chain_destroy(chain);
        logf_(LOG_ERROR, "%s", oscine_last_error());
        goto out;
    }
    post_engine_settings(d, d->val, 0);
    /* Start silent and fade in: no click at start either. */
    live_cmd fade = {.kind = LIVE_FADE, .value = 0};
    live_post(d->eng, &fade);
    fade.value = 1;

    if (pipe(d->wake) || pipe(sig_pipe)) {
        logf_(LOG_ERROR, "pipe: %s", strerror(errno));
        goto out;
    }
    fcntl(d->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(sig_pipe[0], F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->worker, NULL, worker_main, d)) {
        logf_(LOG_ERROR, "cannot start the worker thread");
        goto out;
    }
    worker_up = 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (pa_live_start(d->pa, d->eng)) {
        logf_(LOG_ERROR, "%s", oscine_last_error());
        goto out;
    }
    lower_priority(); /* after the start: the audio thread inherits no nice */
    live_post(d->eng, &fade);
    d->t0 = now_mono();
    double in_s, out_s;
    pa_live_latency(d->pa, &in_s, &out_s);
    logf_(LOG_INFO, "running: chain '%s', %d Hz, buffer %d, %d channel%s, latency %.1f ms "
          "(chain %.1f + device %.1f)", d->chain, d->rate, d->buffer, d->channels,
          d->channels > 1 ? "s" : "",
          1000.0 * (live_latency(d->eng) / (double)d->rate + in_s + out_s),
          1000.0 * live_latency(d->eng) / d->rate, 1000.0 * (in_s + out_s));
    logf_(LOG_INFO, "listening for OSC on udp%s %s:%d", d->cfg.tcp ? "+tcp" : "",
          d->cfg.osc_host, d->cfg.osc_port);

    while (!d->quit && !sig_stop) {
        struct pollfd fds[4 + MAX_CONNS];
        int nf = 0;
        fds[nf++] = (struct pollfd){.fd = d->udp, .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = d->wake[0], .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
        if (d->tcp_l >= 0)
            fds[nf++] = (struct pollfd){.fd = d->tcp_l, .events = POLLIN};
        int first_conn = nf;
        for (int i = 0; i < MAX_CONNS; i++)
            if (d->conns[i])
                fds[nf++] = (struct pollfd){.fd = d->conns[i]->fd, .events = POLLIN};
        poll(fds, (nfds_t)nf, 10);
        char junk[64];
        while (read(d->wake[0], junk, sizeof junk) > 0)
            ;
        while (read(sig_pipe[0], junk, sizeof junk) > 0)
            ;
        if (sig_hup) {
            sig_hup = 0;
            if (d->preset[0]) {
                logf_(LOG_INFO, "SIGHUP: reloading preset '%s'", d->preset);
                load_preset(d, d->preset, NULL, "/preset/load");
            } else {
                logf_(LOG_INFO, "SIGHUP: no preset to reload");
            }
        }
        if (fds[0].revents & POLLIN)
            read_udp(d);
        if (d->tcp_l >= 0 && (fds[3].revents & POLLIN)) {
            int fd = accept4(d->tcp_l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_CONNS; i++)
                    if (!d->conns[i]) {
                        slot = i;
                        break;
                    }
                tcp_conn *c = slot >= 0 ? calloc(1, sizeof *c) : NULL;
                if (!c) {
                    close(fd);
                    logf_(LOG_WARN, "TCP connection refused: %d already open", MAX_CONNS);
                } else {
                    c->fd = fd;
                    d->conns[slot] = c;
                }
            }
        }
        for (int k = first_conn; k < nf; k++)
            if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
                for (int i = 0; i < MAX_CONNS; i++)
                    if (d->conns[i] && d->conns[i]->fd == fds[k].fd) {
                        read_tcp(d, i);
                        break;
                    }
        finish_jobs(d);
        drain_engine(d);
        run_deferred(d);
        send_meters(d);
        if (pa_live_failed(d->pa)) {
            logf_(LOG_ERROR, "the audio stream stopped (device lost?)");
            goto out;
        }
    }
    logf_(LOG_INFO, "stopping: fading out");
    fade.value = 0;
    live_post(d->eng, &fade);
    for (int i = 0; i < 50 && live_master(d->eng) > 0; i++)
        usleep(5000);
    code = 0;
out:
    pa_live_close(d->pa); /* stops the audio thread first */
    if (worker_up) {
        pthread_mutex_lock(&d->mu);
        d->worker_stop = 1;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->worker, NULL);
        for (int i = 0; i < d->njobs; i++) {
            oscine_chain_destroy(d->jobs[i]->chain);
            free(d->jobs[i]);
        }
        for (int i = 0; i < d->ndone; i++) {
            oscine_chain_destroy(d->done[i]->chain);
            free(d->done[i]);
        }
    }
    live_destroy(d->eng);
    for (int i = 0; i < MAX_CONNS; i++)
        if (d->conns[i])
            close_conn(d, i);
    for (int i = 0; i < d->ndefer; i++)
        free(d->defer[i].data);
    if (d->udp >= 0)
        close(d->udp);
    if (d->tcp_l >= 0)
        close(d->tcp_l);
    for (int i = 0; i < 2; i++) {
        if (d->wake[i] >= 0)
            close(d->wake[i]);
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
    free(d);
    if (code == 0)
        logf_(LOG_INFO, "stopped");
    return code;
}
