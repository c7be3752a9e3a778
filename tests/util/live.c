/* live.c - see live.h. */
#include "live.h"
#include "util.h"

void daemons_kill_all(void);

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <jack/jack.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t jack_pid = -1;
static pid_t daemons[32]; /* started and not yet stopped: killed at the end */
static char server[64];

static void msleep(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

int jack_start(void)
{
    snprintf(server, sizeof server, "oscine-test-%d", (int)getpid());
    setenv("JACK_DEFAULT_SERVER", server, 1);
    setenv("JACK_NO_AUDIO_RESERVATION", "1", 1);
    jack_pid = fork();
    if (jack_pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        char rate[16], period[16];
        snprintf(rate, sizeof rate, "%d", LIVE_RATE);
        snprintf(period, sizeof period, "%d", LIVE_PERIOD);
        /* OSCINE_TEST_JACK_NORT=1: no realtime scheduling, as in CI
         * containers that do not allow it */
        const char *nort = getenv("OSCINE_TEST_JACK_NORT");
        if (nort && *nort == '1')
            execlp("jackd", "jackd", "-r", "-n", server, "-d", "dummy", "-r", rate, "-p",
                   period, (char *)NULL);
        else
            execlp("jackd", "jackd", "-n", server, "-d", "dummy", "-r", rate, "-p", period,
                   (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        msleep(50);
        jack_status_t st;
        jack_client_t *c = jack_client_open("probe", JackNoStartServer, &st);
        if (c) {
            jack_client_close(c);
            return 0;
        }
    }
    return -1;
}

int jack_realtime(void)
{
    jack_status_t st;
    jack_client_t *c = jack_client_open("probe", JackNoStartServer, &st);
    if (!c)
        return 0;
    int rt = jack_is_realtime(c);
    jack_client_close(c);
    return rt;
}

int daemons_teardown(void **state)
{
    (void)state;
    daemons_kill_all();
    return 0;
}

void jack_stop(void)
{
    daemons_kill_all();
    if (jack_pid > 0) {
        kill(jack_pid, SIGTERM);
        waitpid(jack_pid, NULL, 0);
        jack_pid = -1;
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

pid_t daemon_start(int *port, const char *log_path, ...)
{
    const char *bin = getenv("OSCINE_BIN");
    if (!bin)
        bin = "build/oscine";
    *port = free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", *port);
    const char *argv[48] = {bin, "run", "--host-api", "JACK", "--osc-port", ps, "--buffer", "256"};
    int argc = 8;
    va_list ap;
    va_start(ap, log_path);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 46)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    osc_client c;
    osc_open(&c, *port);
    for (int i = 0; i < 60; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            osc_close(&c);
            return -1;
        }
        osc_send(&c, "/status", NULL);
        lo_message m = osc_wait(&c, "/status.reply", 100);
        if (m) {
            lo_message_free(m);
            osc_close(&c);
            for (int k = 0; k < 32; k++)
                if (!daemons[k]) {
                    daemons[k] = pid;
                    break;
                }
            return pid;
        }
    }
    osc_close(&c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

void daemons_kill_all(void)
{
    for (int k = 0; k < 32; k++)
        if (daemons[k] > 0) {
            kill(daemons[k], SIGKILL);
            waitpid(daemons[k], NULL, 0);
            daemons[k] = 0;
        }
}

int daemon_stop(pid_t pid, int sig)
{
    int status;
    for (int k = 0; k < 32; k++)
        if (daemons[k] == pid)
            daemons[k] = 0;
    kill(pid, sig);
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        msleep(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -2;
}

int osc_open(osc_client *c, int port)
{
    c->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(c->fd, (struct sockaddr *)&a, sizeof a);
    int big = 1 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    c->port = port;
    return c->fd >= 0 ? 0 : -1;
}

void osc_close(osc_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int osc_send_raw(osc_client *c, const void *data, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return sendto(c->fd, data, n, 0, (struct sockaddr *)&a, sizeof a) == (ssize_t)n ? 0 : -1;
}

int osc_send(osc_client *c, const char *path, lo_message m)
{
    lo_message own = NULL;
    if (!m)
        m = own = lo_message_new();
    size_t len;
    void *data = lo_message_serialise(m, path, NULL, &len);
    int r = osc_send_raw(c, data, len);
    free(data);
    if (own)
        lo_message_free(own);
    return r;
}

int osc_send_bundle(osc_client *c, lo_timetag tt, const char *path, lo_message m)
{
    lo_bundle b = lo_bundle_new(tt);
    lo_bundle_add_message(b, path, m);
    size_t len;
    void *data = lo_bundle_serialise(b, NULL, &len);
    int r = osc_send_raw(c, data, len);
    free(data);
    lo_bundle_free_recursive(b); /* frees m and the path copy too */
    return r;
}

lo_message osc_wait(osc_client *c, const char *path, int ms)
{
    static unsigned char buf[65536];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return NULL;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            return NULL;
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n <= 0)
            continue;
        const char *got = lo_get_path(buf, n);
        if (!got || strcmp(got, path))
            continue;
        int res;
        lo_message m = lo_message_deserialise(buf, (size_t)n, &res);
        if (m)
            return m;
    }
}

int osc_call(osc_client *c, const char *path, char *reason, size_t rlen, const char *types, ...)
{
    lo_message m = lo_message_new();
    va_list ap;
    va_start(ap, types);
    for (const char *t = types; *t; t++) {
        if (*t == 'f')
            lo_message_add_float(m, (float)va_arg(ap, double));
        else if (*t == 'i')
            lo_message_add_int32(m, va_arg(ap, int));
        else if (*t == 's')
            lo_message_add_string(m, va_arg(ap, const char *));
    }
    va_end(ap);
    osc_send(c, path, m);
    lo_message_free(m);
    /* The reply is /done or /fail; take whichever comes first. */
    static unsigned char buf[65536];
    for (int tries = 0; tries < 400; tries++) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 10) <= 0)
            continue;
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        const char *got = n > 0 ? lo_get_path(buf, n) : NULL;
        if (!got)
            continue;
        int res;
        lo_message r = lo_message_deserialise(buf, (size_t)n, &res);
        if (!r)
            continue;
        int argc = lo_message_get_argc(r);
        int ok = -1;
        if (!strcmp(got, "/done") && argc >= 1 && !strcmp(osc_arg_s(r, 0), path))
            ok = 1;
        if (!strcmp(got, "/fail") && argc >= 2 && !strcmp(osc_arg_s(r, 0), path)) {
            ok = 0;
            if (reason)
                snprintf(reason, rlen, "%s", osc_arg_s(r, 1));
        }
        lo_message_free(r);
        if (ok >= 0)
            return ok;
    }
    return -1;
}

float osc_arg_f(lo_message m, int i)
{
    float f;
    memcpy(&f, lo_message_get_argv(m)[i], sizeof f);
    return f;
}

int osc_arg_i(lo_message m, int i)
{
    int32_t v;
    memcpy(&v, lo_message_get_argv(m)[i], sizeof v);
    return v;
}

const char *osc_arg_s(lo_message m, int i)
{
    return (const char *)lo_message_get_argv(m)[i];
}

struct jack_io {
    jack_client_t *client;
    jack_port_t *out, *in;
    const float *play;
    size_t play_n;
    int loop;
    float *rec;
    size_t cap;
    _Atomic size_t pos_play, pos_rec;
    _Atomic int running;
    _Atomic int xruns;
    /* each recording callback: where its frames went and when it ran */
    size_t cb_pos[JIO_MAX_CB];
    double cb_us[JIO_MAX_CB];
    _Atomic size_t ncb;
};

static int jio_process(jack_nframes_t n, void *arg)
{
    jack_io *j = arg;
    float *o = jack_port_get_buffer(j->out, n);
    const float *in = jack_port_get_buffer(j->in, n);
    if (!atomic_load(&j->running)) {
        memset(o, 0, sizeof(float) * n);
        return 0;
    }
    size_t p = atomic_load(&j->pos_play), r = atomic_load(&j->pos_rec);
    size_t ncb = atomic_load(&j->ncb);
    if (j->rec && r < j->cap && ncb < JIO_MAX_CB) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        j->cb_pos[ncb] = r;
        j->cb_us[ncb] = t.tv_sec * 1e6 + t.tv_nsec / 1e3;
        atomic_store(&j->ncb, ncb + 1);
    }
    for (jack_nframes_t i = 0; i < n; i++) {
        if (p < j->play_n)
            o[i] = j->play[p++];
        else
            o[i] = 0;
        if (j->loop && p == j->play_n)
            p = 0;
        if (r < j->cap)
            j->rec[r++] = in[i];
    }
    atomic_store(&j->pos_play, p);
    atomic_store(&j->pos_rec, r);
    return 0;
}

static int jio_xrun(void *arg)
{
    jack_io *j = arg;
    atomic_fetch_add(&j->xruns, 1);
    return 0;
}

jack_io *jio_open(const char *dest_port, const char *src_port)
{
    jack_io *j = calloc(1, sizeof *j);
    jack_status_t st;
    char name[32];
    snprintf(name, sizeof name, "tester%d", rand() % 100000);
    j->client = jack_client_open(name, JackNoStartServer, &st);
    if (!j->client) {
        free(j);
        return NULL;
    }
    j->out = jack_port_register(j->client, "play", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
    j->in = jack_port_register(j->client, "rec", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
    jack_set_process_callback(j->client, jio_process, j);
    jack_set_xrun_callback(j->client, jio_xrun, j);
    jack_activate(j->client);
    if (dest_port && jack_connect(j->client, jack_port_name(j->out), dest_port)) {
        jio_close(j);
        return NULL;
    }
    if (src_port && jack_connect(j->client, src_port, jack_port_name(j->in))) {
        jio_close(j);
        return NULL;
    }
    return j;
}

void jio_start(jack_io *j, const float *buf, size_t n, int loop, float *rec, size_t cap)
{
    atomic_store(&j->running, 0);
    msleep(20);
    j->play = buf;
    j->play_n = n;
    j->loop = loop;
    j->rec = rec;
    j->cap = cap;
    atomic_store(&j->pos_play, 0);
    atomic_store(&j->pos_rec, 0);
    atomic_store(&j->ncb, 0);
    atomic_store(&j->xruns, 0);
    atomic_store(&j->running, 1);
}

size_t jio_recorded(jack_io *j) { return atomic_load(&j->pos_rec); }

int jio_xruns(jack_io *j) { return atomic_load(&j->xruns); }


/* The callback nearest in time to `us`: its table index. */
static size_t nearest_cb(jack_io *j, double us)
{
    size_t n = atomic_load(&j->ncb), best = 0;
    for (size_t i = 1; i < n; i++)
        if (fabs(j->cb_us[i] - us) < fabs(j->cb_us[best] - us))
            best = i;
    return best;
}

double jio_index_at(jack_io *j, double us)
{
    if (!atomic_load(&j->ncb))
        return -1;
    size_t c = nearest_cb(j, us);
    return (double)j->cb_pos[c] + (us - j->cb_us[c]) * LIVE_RATE / 1e6;
}

double jio_time_at(jack_io *j, double index)
{
    size_t n = atomic_load(&j->ncb), c = 0;
    if (!n)
        return -1;
    while (c + 1 < n && (double)j->cb_pos[c + 1] <= index)
        c++;
    return j->cb_us[c] + (index - (double)j->cb_pos[c]) * 1e6 / LIVE_RATE;
}

void jio_close(jack_io *j)
{
    if (!j)
        return;
    jack_deactivate(j->client);
    jack_client_close(j->client);
    free(j);
}

lo_message osc_get_value(osc_client *c, const char *address)
{
    lo_message m = lo_message_new();
    lo_message_add_string(m, address);
    osc_send(c, "/get", m);
    lo_message_free(m);
    return osc_wait(c, "/value", 1000);
}

void daemon_show_log(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        print_message("daemon: %s", line);
    if (f)
        fclose(f);
}
