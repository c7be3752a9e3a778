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
#include "base/paths.h"
#include "nn/weights.h"
#include "oscine.h"

#include <arpa/inet.h>
#include <ctype.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* What one client may hold: osc/table.h, docs/osc.md "Limits". */
#define MAX_SUBS OSC_MAX_SUBS
#define MAX_CONNS OSC_MAX_CONNS
#define MAX_DEFERRED OSC_DEFER_MAX
#define DEFER_PER_CLIENT OSC_DEFER_PER_CLIENT
#define SCHED_PER_CLIENT OSC_SCHED_PER_CLIENT
#define HORIZON_S OSC_HORIZON_S
#define CLIENT_TIMEOUT_S OSC_CLIENT_TIMEOUT_S
#define OUTQ_BYTES OSC_OUTQ_BYTES
_Static_assert(OSC_SCHED_MAX == LIVE_PENDING, "the audio side holds OSC_SCHED_MAX commands");
#define MAX_PACKET 65536
#define METER_HZ 20
#define CONTROL_NICE 5 /* control threads, below the audio thread */
#define MAX_JOBS 16
#define MAX_MODELS 4

/* Weights chosen for stages by /<stage>/model or a preset: the choice as
 * given (a name, or a path in a local preset), what /get and /preset/save
 * show; and the file it was found as and checked (model_check), what the
 * chain is built with ("" until a chain with the stage is built). */
typedef struct stage_models {
    int n;
    char stage[MAX_MODELS][32];
    char model[MAX_MODELS][256];
    char file[MAX_MODELS][1024];
} stage_models;

typedef struct peer {
    long conn; /* TCP connection id (never reused), -1 for UDP, -2 for none */
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
    double due;   /* when > 0: the same time on CLOCK_MONOTONIC */
} osc_request;

typedef struct tcp_conn {
    int fd;
    long id;
    double last;            /* when its last whole frame came (or it connected) */
    int dead;               /* to be closed at the end of the tick */
    size_t have;
    unsigned char buf[MAX_PACKET + 4];
    /* replies, whole frames only: q[qhead .. qhead+qlen) is still to send */
    size_t qhead, qlen;
    unsigned long dropped;  /* meters that did not fit */
    unsigned char q[OUTQ_BYTES];
} tcp_conn;

/* A /notify subscriber; its lease is renewed by every packet it sends. */
typedef struct sub {
    peer p;
    double seen;
} sub;

/* A timetagged setting or event posted to the audio thread and not yet
 * due: counts the audio side's pending slots per client, and holds a
 * setting's value until it takes effect (/get reports the value in effect). */
typedef struct sched {
    peer from;
    int64_t when;           /* sample time */
    double due;             /* CLOCK_MONOTONIC */
    const osc_entry *e;
    int nargs;
    float v[OSC_MAX_ARGS];
} sched;

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
    long next_conn;
    double client_timeout;
    sub subs[MAX_SUBS];
    int nsubs;
    deferred defer[MAX_DEFERRED];
    int ndefer;
    sched sched[LIVE_PENDING];
    int nsched;
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
    uint64_t reported_late;
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
    char line[1024], out[4 * sizeof line];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One event, one line: names and paths from clients or files may hold
     * a newline or an escape sequence; they are written escaped. */
    size_t j = 0;
    for (const unsigned char *c = (const unsigned char *)line; *c; c++) {
        if (*c == '\\' || *c < 0x20 || *c == 0x7f) {
            const char *esc = *c == '\\' ? "\\\\" : *c == '\n' ? "\\n" : *c == '\r' ? "\\r"
                            : *c == '\t' ? "\\t" : NULL;
            if (esc)
                j += (size_t)snprintf(out + j, sizeof out - j, "%s", esc);
            else
                j += (size_t)snprintf(out + j, sizeof out - j, "\\x%02x", *c);
        } else {
            out[j++] = (char)*c;
        }
    }
    out[j] = 0;
    fprintf(stderr, "oscine: %s: %s\n", names[level], out);
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

static int same_peer(const peer *a, const peer *b)
{
    return a->conn == b->conn && a->salen == b->salen && !memcmp(&a->sa, &b->sa, a->salen);
}

static tcp_conn *conn_by_id(oscd *d, long id)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (d->conns[i] && d->conns[i]->id == id && !d->conns[i]->dead)
            return d->conns[i];
    return NULL;
}

/* Send what a connection has queued, as far as its socket takes it now:
 * a frame cut by a full socket buffer goes on from where it stopped at the
 * next POLLOUT, so the stream keeps its framing. */
static void conn_flush(tcp_conn *c)
{
    while (c->qlen && !c->dead) {
        ssize_t r = send(c->fd, c->q + c->qhead, c->qlen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                c->dead = 1;
            return;
        }
        c->qhead += (size_t)r;
        c->qlen -= (size_t)r;
    }
    if (!c->qlen)
        c->qhead = 0;
}

/* Queue one whole frame (length, then the packet) for a TCP client. A
 * meter that does not fit is dropped; a reply that does not fit closes the
 * connection: the client has stopped reading, and a lost reply would leave
 * it waiting for good. */
static void conn_send(oscd *d, tcp_conn *c, const void *data, size_t len, int droppable)
{
    if (c->qhead + c->qlen + 4 + len > OUTQ_BYTES && c->qhead) {
        memmove(c->q, c->q + c->qhead, c->qlen);
        c->qhead = 0;
    }
    if (c->qlen + 4 + len > OUTQ_BYTES) {
        if (droppable) {
            c->dropped++;
            return;
        }
        logf_(LOG_WARN, "TCP client %ld is not reading its replies (%zu bytes waiting): "
              "closing the connection", c->id, c->qlen);
        c->dead = 1;
        return;
    }
    uint32_t be = htonl((uint32_t)len);
    memcpy(c->q + c->qhead + c->qlen, &be, 4);
    memcpy(c->q + c->qhead + c->qlen + 4, data, len);
    c->qlen += 4 + len;
    conn_flush(c);
}

static void send_packet(oscd *d, const peer *to, const char *path, lo_message m, int droppable)
{
    size_t len = 0;
    if (to->conn == -2)
        return;
    void *data = lo_message_serialise(m, path, NULL, &len);
    if (!data)
        return;
    if (to->conn >= 0) {
        tcp_conn *c = conn_by_id(d, to->conn);
        if (c && len <= MAX_PACKET)
            conn_send(d, c, data, len, droppable);
    } else {
        ssize_t r = sendto(d->udp, data, len, MSG_DONTWAIT, (const struct sockaddr *)&to->sa,
                           to->salen);
        (void)r;
    }
    free(data);
}

static void send_msg(oscd *d, const peer *to, const char *path, lo_message m)
{
    send_packet(d, to, path, m, 0);
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
int osc_stage_event(oscd *d, const osc_request *r);
int osc_stage_compound(oscd *d, const osc_request *r);

/* The stage name of an address "/stage/...". */
static void addr_stage(const char *addr, char *stage, size_t len)
{
    const char *slash = strchr(addr + 1, '/');
    snprintf(stage, len, "%.*s", slash ? (int)(slash - addr - 1) : 0, addr + 1);
}

/* Set stage's model in sm. 0, or -1 when sm is full. */
static int models_set(stage_models *sm, const char *stage, const char *model, const char *file)
{
    int k = 0;
    while (k < sm->n && strcmp(sm->stage[k], stage))
        k++;
    if (k == MAX_MODELS)
        return -1;
    snprintf(sm->stage[k], sizeof sm->stage[k], "%s", stage);
    snprintf(sm->model[k], sizeof sm->model[k], "%s", model);
    snprintf(sm->file[k], sizeof sm->file[k], "%s", file);
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

/* The weights file of a model choice for stage: an instrument name
 * ("violin": the stage's ddsp-violin.osw) or a file name ("ddsp-violin.osw")
 * looked up in the model folders, or, where allow_path (the local user's
 * presets and command line, never a message), a path. Checked here without
 * blocking: a regular file that starts as a weights file does, so a FIFO
 * cannot hold up a chain build and the message quotes no byte of another
 * file. 0 with the path in out, or -1 with why. Thread: control. */
static int model_check(const char *stage, const char *given, int allow_path, char *out,
                       size_t len, char *why, size_t wlen)
{
    const stage_class *k = stage_find(stage);
    size_t n = strlen(given);
    int plain = n > 0 && n <= 63 && given[0] != '.';
    for (size_t i = 0; plain && i < n; i++)
        plain = isalnum((unsigned char)given[i]) || strchr("_-.", given[i]);
    if (!k || !k->model_name) {
        snprintf(why, wlen, "stage '%s' takes no model", stage);
        return -1;
    }
    if (!plain && !(allow_path && strchr(given, '/') && n < len)) {
        snprintf(why, wlen, "a model name is letters, digits, '-', '_' and '.' (violin, or "
                 "ddsp-violin.osw), looked up in the model folders; not a path");
        return -1;
    }
    if (plain) {
        char file[128];
        if (n > 4 && !strcmp(given + n - 4, ".osw"))
            snprintf(file, sizeof file, "%s", given);
        else
            snprintf(file, sizeof file, k->model_name, given);
        if (paths_find_model(file, out, len)) {
            snprintf(why, wlen, "model '%s': %s not found in %s", given, file, paths_model_dirs());
            return -1;
        }
    } else {
        snprintf(out, len, "%s", given);
    }
    int fd = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, wlen, "model '%s': cannot open '%s': %s", given, out, strerror(errno));
        return -1;
    }
    struct stat st;
    char head[8] = "";
    int reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ssize_t got = reg ? read(fd, head, sizeof head) : 0;
    close(fd);
    if (!reg) {
        snprintf(why, wlen, "model '%s': '%s' is not a regular file", given, out);
        return -1;
    }
    if (got != (ssize_t)sizeof head || memcmp(head, OSW_MAGIC, sizeof head)) {
        snprintf(why, wlen, "model '%s': '%s' is not an oscine weights file", given, out);
        return -1;
    }
    return 0;
}

/* Check the model choices of the stages in spec not checked yet (a preset
 * line may name the model of a stage its chain lacks: checked when a chain
 * has it). Messages give names only (osc_stage_model), so a path here is
 * the local user's. 0, or -1 with why. Thread: control. */
static int models_resolve(stage_models *sm, const char *spec, char *why, size_t wlen)
{
    for (int i = 0; i < sm->n; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "/%s/x", sm->stage[i]);
        if (sm->file[i][0] || !chain_has_stage(spec, addr))
            continue;
        if (model_check(sm->stage[i], sm->model[i], 1, sm->file[i], sizeof sm->file[i], why,
                        wlen)) {
            sm->file[i][0] = 0;
            return -1;
        }
    }
    return 0;
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
            mp[n++] = (oscine_model_path){sm->stage[i], sm->file[i]};
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
        j->from.conn = -2; /* no reply */
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
            if (j->from.conn != -2)
                reply_fail(d, &j->from, j->path, "%s", j->why);
            else
                logf_(LOG_ERROR, "%s", j->why);
            free(j);
            continue;
        }
        live_cmd c = {.kind = LIVE_SWAP, .chain = j->chain};
        if (live_post(d->eng, &c)) {
            oscine_chain_destroy(j->chain);
            if (j->from.conn != -2)
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
        if (j->from.conn != -2)
            reply_done(d, &j->from, j->path);
        free(j);
    }
}

/* ------------------------------------------------------------- handlers */

/* The settings a message changes, in the state (/get, /preset/save): a
 * parameter, or a compound setting's parameters; an event changes none. */
static void apply_setting(oscd *d, const osc_entry *e, int nargs, const float *v)
{
    if (e->handler == osc_stage_compound) {
        const osc_args *a = osc_table_args(e);
        for (int i = 0; i < nargs; i++) {
            const osc_entry *p = osc_table_find(a->params[i]);
            if (p)
                d->val[entry_index(p)] = v[i];
        }
    } else if (e->handler != osc_stage_event) {
        d->val[entry_index(e)] = v[0];
    }
}

static int sched_count(const oscd *d, const peer *from)
{
    int n = 0;
    for (int i = 0; i < d->nsched; i++)
        n += same_peer(&d->sched[i].from, from);
    return n;
}

/* Post the command for r to the audio thread: now, or at its timetag. A
 * timetagged one holds a slot of the audio side's pending list until it is
 * due; the slots are counted here, per client, so one client cannot take
 * them all and the list never overflows. The state changes when the
 * command takes effect (sched_expire). 0, or -1 with the /fail sent. */
static int post_request(oscd *d, const osc_request *r, live_cmd *c)
{
    c->when = r->when;
    if (r->when > 0) {
        int mine = sched_count(d, &r->from);
        if (mine >= SCHED_PER_CLIENT || d->nsched == LIVE_PENDING)
            return reply_fail(d, &r->from, r->e->path,
                              "too many scheduled messages: %d from this client and %d in all "
                              "wait for their time (at most %d per client, %d in all)",
                              mine, d->nsched, SCHED_PER_CLIENT, LIVE_PENDING);
    }
    if (live_post(d->eng, c))
        return reply_fail(d, &r->from, r->e->path, "busy: control queue full");
    if (r->when > 0) {
        sched *q = &d->sched[d->nsched++];
        *q = (sched){.from = r->from, .when = r->when, .due = r->due, .e = r->e,
                     .nargs = r->nargs};
        memcpy(q->v, r->v, sizeof q->v);
    } else {
        apply_setting(d, r->e, r->nargs, r->v);
    }
    reply_done(d, &r->from, r->e->path);
    return 0;
}

/* Timetagged commands the audio thread has reached: their settings are now
 * in effect. In time order, so the later of two changes to one setting
 * wins, as on the audio side. */
static void sched_expire(oscd *d)
{
    if (!d->nsched)
        return;
    int64_t frames;
    double at;
    live_clock(d->eng, &frames, &at);
    for (;;) {
        int first = -1;
        for (int i = 0; i < d->nsched; i++)
            if (d->sched[i].when < frames &&
                (first < 0 || d->sched[i].when < d->sched[first].when))
                first = i;
        if (first < 0)
            return;
        apply_setting(d, d->sched[first].e, d->sched[first].nargs, d->sched[first].v);
        memmove(d->sched + first, d->sched + first + 1,
                sizeof(sched) * (size_t)(d->nsched - first - 1));
        d->nsched--;
    }
}

int osc_engine_gain(oscd *d, const osc_request *r)
{
    live_cmd c = {.kind = LIVE_GAIN, .value = r->f};
    return post_request(d, r, &c);
}

int osc_engine_bypass(oscd *d, const osc_request *r)
{
    live_cmd c = {.kind = LIVE_BYPASS, .value = r->f};
    return post_request(d, r, &c);
}

int osc_stage_param(oscd *d, const osc_request *r)
{
    if (!chain_has_stage(d->chain, r->e->path))
        return reply_fail(d, &r->from, r->e->path, "no such stage in chain '%s'", d->chain);
    live_cmd c = {.kind = LIVE_SET, .value = r->f};
    snprintf(c.addr, sizeof c.addr, "%s", r->e->path);
    return post_request(d, r, &c);
}

/* A stage event (/synth/note_on): to the audio thread at its sample time,
 * nothing stored. A compound setting (/synth/adsr) goes the same way, one
 * command (the chain sets its parameters together, at its sample time);
 * the parameters are what presets and /get see. */
int osc_stage_event(oscd *d, const osc_request *r)
{
    if (!chain_has_stage(d->chain, r->e->path))
        return reply_fail(d, &r->from, r->e->path, "no such stage in chain '%s'", d->chain);
    live_cmd c = {.kind = LIVE_EVENT, .nargs = r->nargs};
    snprintf(c.addr, sizeof c.addr, "%s", r->e->path);
    memcpy(c.args, r->v, sizeof(float) * (size_t)r->nargs);
    return post_request(d, r, &c);
}

int osc_stage_compound(oscd *d, const osc_request *r)
{
    return osc_stage_event(d, r);
}

/* /<stage>/model s: a model name (never a path: model_check), remembered,
 * and the chain rebuilt with it (if the stage is in the chain; otherwise it
 * applies when it is). */
int osc_stage_model(oscd *d, const osc_request *r)
{
    char stage[32], file[1024], why[512];
    addr_stage(r->e->path, stage, sizeof stage);
    if (model_check(stage, r->s, 0, file, sizeof file, why, sizeof why))
        return reply_fail(d, &r->from, r->e->path, "%s", why);
    stage_models sm = d->models;
    if (models_set(&sm, stage, r->s, file))
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
    /* Checked here (an empty chain too: it would save as a preset that does
     * not load), kept in its one written form; the worker builds it (a
     * model may take a while to load). */
    char spec[256], why[512];
    if (preset_chain_canon(r->s, spec, sizeof spec))
        return reply_fail(d, &r->from, r->e->path, "%s", oscine_last_error());
    stage_models sm = d->models;
    if (models_resolve(&sm, spec, why, sizeof why))
        return reply_fail(d, &r->from, r->e->path, "%s", why);
    job *j = chain_job(d, spec, d->val, &r->from, r->e->path);
    if (j)
        j->models = sm;
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
            /* checked below where the chain has the stage (a preset is the
             * local user's file: it may give a path) */
            if (models_set(&sm, stage, lines[i].s, "")) {
                if (from)
                    return reply_fail(d, from, path, "too many stage models");
                return -1;
            }
        }
    char why[512];
    if (models_resolve(&sm, spec, why, sizeof why)) {
        if (from)
            return reply_fail(d, from, path, "preset '%s': %s", name, why);
        logf_(LOG_ERROR, "preset '%s': %s", name, why);
        return -1;
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
        /* Every setting /get reports, so the preset loads back to this
         * state whatever the state it is loaded over: the parameters of
         * the chain's stages, and each model choice (the default's file
         * name where none was made). */
        if (e->handler == osc_stage_param && !chain_has_stage(d->chain, e->path))
            continue;
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
    /* The value above is the one in effect; a timetagged change still to
     * come follows it: the last one scheduled, and in how many seconds. */
    int last = -1;
    float next = 0;
    const osc_args *a;
    for (int i = 0; i < d->nsched; i++) {
        const sched *q = &d->sched[i];
        int k = -1;
        if (q->e == e)
            k = 0;
        else if (q->e->handler == osc_stage_compound && (a = osc_table_args(q->e)))
            for (int j = 0; j < q->nargs; j++)
                if (!strcmp(a->params[j], e->path))
                    k = j;
        if (k >= 0 && (last < 0 || q->when >= d->sched[last].when)) {
            last = i;
            next = q->v[k];
        }
    }
    if (last >= 0) {
        if (e->types[0] == 'i')
            lo_message_add_int32(m, (int32_t)next);
        else
            lo_message_add_float(m, next);
        double in_s = d->sched[last].due - now_mono();
        lo_message_add_float(m, (float)(in_s > 0 ? in_s : 0));
    }
    send_msg(d, &r->from, "/value", m);
    lo_message_free(m);
    return 0;
}

/* "127.0.0.1:5000" or "TCP connection 3", for the log. */
static const char *peer_name(const peer *p, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (p->conn >= 0) {
        snprintf(buf, len, "TCP connection %ld", p->conn);
        return buf;
    }
    int port = 0;
    if (p->sa.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&p->sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (p->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&p->sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(buf, len, "%s:%d", host, port);
    return buf;
}

/* Any packet from a subscriber renews its lease. */
static void client_seen(oscd *d, const peer *p)
{
    for (int i = 0; i < d->nsubs; i++)
        if (same_peer(&d->subs[i].p, p))
            d->subs[i].seen = now_mono();
}

static void sub_remove(oscd *d, int i, const char *why)
{
    char name[96];
    logf_(LOG_INFO, "meters: %s unsubscribed (%s)", peer_name(&d->subs[i].p, name, sizeof name),
          why);
    memmove(d->subs + i, d->subs + i + 1, sizeof(sub) * (size_t)(d->nsubs - i - 1));
    d->nsubs--;
}

/* Leases run out after the client timeout without a packet. */
static void subs_expire(oscd *d)
{
    double t = now_mono();
    for (int i = 0; i < d->nsubs;)
        if (t - d->subs[i].seen > d->client_timeout)
            sub_remove(d, i, "lease ran out");
        else
            i++;
}

int osc_notify(oscd *d, const osc_request *r)
{
    int found = -1;
    for (int i = 0; i < d->nsubs; i++)
        if (same_peer(&d->subs[i].p, &r->from))
            found = i;
    if (r->f != 0 && found < 0) {
        if (d->nsubs == MAX_SUBS) {
            int oldest = 0;
            for (int i = 1; i < d->nsubs; i++)
                if (d->subs[i].seen < d->subs[oldest].seen)
                    oldest = i;
            sub_remove(d, oldest, "the longest silent of the subscribers, for a new one");
        }
        d->subs[d->nsubs++] = (sub){.p = r->from, .seen = now_mono()};
        char name[96];
        logf_(LOG_INFO, "meters: %s subscribed (%d of %d)", peer_name(&r->from, name, sizeof name),
              d->nsubs, MAX_SUBS);
    } else if (r->f != 0) {
        d->subs[found].seen = now_mono();
    } else if (found >= 0) {
        sub_remove(d, found, "/notify 0");
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

/* Timetag to sample time (0: now); *ahead: seconds from now (0: now). */
static int64_t tt_to_samples(oscd *d, lo_timetag tt, double *due, double *ahead_s)
{
    *due = *ahead_s = 0;
    if (tt.sec == 0 && tt.frac <= 1)
        return 0; /* "immediately" */
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    double t_osc = (double)tt.sec - 2208988800.0 + tt.frac / 4294967296.0;
    double ahead = t_osc - ((double)rt.tv_sec + rt.tv_nsec * 1e-9);
    if (ahead <= 0)
        return 0;
    *ahead_s = ahead;
    if (ahead > HORIZON_S)
        return 0; /* refused by the caller */
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
    int mine = 0;
    for (int i = 0; i < d->ndefer; i++)
        mine += same_peer(&d->defer[i].from, from);
    if (d->ndefer == MAX_DEFERRED || mine >= DEFER_PER_CLIENT) {
        reply_fail(d, from, path ? path : "?", "too many scheduled messages: %d from this client "
                   "and %d in all wait for their time (at most %d per client, %d in all)", mine,
                   d->ndefer, DEFER_PER_CLIENT, MAX_DEFERRED);
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
    double due, ahead;
    r.when = tt_to_samples(d, tt, &due, &ahead);
    r.due = due;
    if (ahead > HORIZON_S) {
        reply_fail(d, from, path, "timetag %.0f s ahead: at most %d s", ahead, HORIZON_S);
        lo_message_free(m);
        return;
    }
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
        peer p = {.conn = -1, .salen = sizeof p.sa};
        ssize_t n = recvfrom(d->udp, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&p.sa,
                             &p.salen);
        if (n < 0)
            return;
        client_seen(d, &p);
        if ((size_t)n > sizeof buf) {
            logf_(LOG_WARN, "OSC packet of %zd bytes ignored (limit %d)", n, MAX_PACKET);
            continue;
        }
        lo_timetag now = {0, 1};
        dispatch_packet(d, buf, (size_t)n, &p, now, 0);
    }
}

static void close_conn(oscd *d, int i, const char *why)
{
    tcp_conn *c = d->conns[i];
    for (int s = 0; s < d->nsubs;)
        if (d->subs[s].p.conn == c->id)
            sub_remove(d, s, why);
        else
            s++;
    if (c->dropped)
        logf_(LOG_INFO, "TCP connection %ld: %lu meters dropped (not read in time)", c->id,
              c->dropped);
    logf_(LOG_DEBUG, "TCP connection %ld closed (%s)", c->id, why);
    close(c->fd);
    free(c);
    d->conns[i] = NULL;
}

static void read_tcp(oscd *d, int i)
{
    tcp_conn *c = d->conns[i];
    ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c->dead = 1;
        return;
    }
    if (n < 0)
        return;
    c->have += (size_t)n;
    while (c->have >= 4 && !c->dead) {
        uint32_t len = be32(c->buf);
        if (len > MAX_PACKET) {
            logf_(LOG_WARN, "TCP OSC frame of %u bytes: closing the connection", len);
            c->dead = 1;
            return;
        }
        if (c->have < 4 + len)
            break;
        /* only whole frames count as activity: a trickle of bytes that
         * never completes one leaves the connection idle */
        c->last = now_mono();
        peer p = {.conn = c->id};
        client_seen(d, &p);
        lo_timetag now = {0, 1};
        dispatch_packet(d, c->buf + 4, len, &p, now, 0);
        memmove(c->buf, c->buf + 4 + len, c->have - 4 - len);
        c->have -= 4 + len;
    }
}

/* A new TCP connection. When all slots are taken, the connection idle the
 * longest (the oldest last whole frame) makes room: a client that holds
 * connections open without using them cannot lock others out. */
static void accept_conn(oscd *d)
{
    int fd = accept4(d->tcp_l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int slot = -1;
    for (int i = 0; i < MAX_CONNS && slot < 0; i++)
        if (!d->conns[i])
            slot = i;
    if (slot < 0) {
        slot = 0;
        for (int i = 1; i < MAX_CONNS; i++)
            if (d->conns[i]->last < d->conns[slot]->last)
                slot = i;
        logf_(LOG_INFO, "TCP: %d connections open: closing connection %ld, idle %.1f s, for a "
              "new one", MAX_CONNS, d->conns[slot]->id, now_mono() - d->conns[slot]->last);
        close_conn(d, slot, "the longest idle, for a new connection");
    }
    tcp_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        logf_(LOG_WARN, "TCP connection refused: out of memory");
        return;
    }
    c->fd = fd;
    c->id = ++d->next_conn;
    c->last = now_mono();
    d->conns[slot] = c;
}

/* Close what is dead or idle past the client timeout; expire leases. */
static void conns_tick(oscd *d)
{
    double t = now_mono();
    for (int i = 0; i < MAX_CONNS; i++) {
        tcp_conn *c = d->conns[i];
        if (!c)
            continue;
        if (c->dead)
            close_conn(d, i, "closed");
        else if (t - c->last > d->client_timeout)
            close_conn(d, i, "idle past the client timeout");
    }
    subs_expire(d);
}

/* The main loop's network descriptors, from fds[nf] on: UDP, the TCP
 * listener, each connection (POLLOUT too while it has replies queued).
 * Returns the new count. */
static int net_fds(oscd *d, struct pollfd *fds, int nf)
{
    fds[nf++] = (struct pollfd){.fd = d->udp, .events = POLLIN};
    if (d->tcp_l >= 0)
        fds[nf++] = (struct pollfd){.fd = d->tcp_l, .events = POLLIN};
    for (int i = 0; i < MAX_CONNS; i++)
        if (d->conns[i])
            fds[nf++] = (struct pollfd){.fd = d->conns[i]->fd,
                                        .events = POLLIN | (d->conns[i]->qlen ? POLLOUT : 0)};
    return nf;
}

/* Handle what poll reported on the descriptors net_fds added at first..nf. */
static void net_events(oscd *d, const struct pollfd *fds, int first, int nf)
{
    for (int k = first; k < nf; k++) {
        if (!fds[k].revents)
            continue;
        if (fds[k].fd == d->udp) {
            read_udp(d);
            continue;
        }
        if (fds[k].fd == d->tcp_l) {
            accept_conn(d);
            continue;
        }
        for (int i = 0; i < MAX_CONNS; i++) {
            tcp_conn *c = d->conns[i];
            if (!c || c->fd != fds[k].fd || c->dead)
                continue;
            if (fds[k].revents & POLLOUT)
                conn_flush(c);
            if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
                read_tcp(d, i);
            break;
        }
    }
    conns_tick(d);
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
        send_packet(d, &d->subs[i].p, "/meter", m, 1);
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
            if (m.meter.late > d->reported_late) {
                /* cannot happen from OSC (post_request keeps within the
                 * pending list), said if it ever does */
                logf_(LOG_WARN, "audio thread: %llu timetagged commands found its pending list "
                      "full and were applied early, at once (total %llu)",
                      (unsigned long long)(m.meter.late - d->reported_late),
                      (unsigned long long)m.meter.late);
                d->reported_late = m.meter.late;
            }
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
    d->client_timeout = cfg->client_timeout > 0 ? cfg->client_timeout : CLIENT_TIMEOUT_S;
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
            if (!strcmp(lines[i].e->path, "/engine/chain")) {
                snprintf(d->chain, sizeof d->chain, "%s", lines[i].s);
            } else if (lines[i].e->handler == osc_stage_model) {
                char stage[32];
                addr_stage(lines[i].e->path, stage, sizeof stage);
                if (models_set(&d->models, stage, lines[i].s, "")) {
                    logf_(LOG_ERROR, "preset '%s' line %d: too many stage models", cfg->preset,
                          lines[i].lineno);
                    goto out;
                }
            } else {
                d->val[entry_index(lines[i].e)] = lines[i].f;
            }
        }
        snprintf(d->preset, sizeof d->preset, "%s", cfg->preset);
    }
    /* so is a bad chain, from the preset or --chain; kept in its written form */
    char spec[sizeof d->chain];
    if (preset_chain_canon(d->chain, spec, sizeof spec)) {
        logf_(LOG_ERROR, "%s", oscine_last_error());
        goto out;
    }
    memcpy(d->chain, spec, sizeof spec);
    char why[512];
    if (models_resolve(&d->models, d->chain, why, sizeof why)) {
        logf_(LOG_ERROR, "preset '%s': %s", cfg->preset, why);
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
        fds[nf++] = (struct pollfd){.fd = d->wake[0], .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
        int first_net = nf;
        nf = net_fds(d, fds, nf);
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
        net_events(d, fds, first_net, nf);
        sched_expire(d);
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
            close_conn(d, i, "stopping");
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
