/* test_osc_live.c - the daemon's OSC front against clients that misbehave,
 * end to end: `oscine run` on a private JACK server (dummy driver), real
 * OSC on loopback. No single client locks the others out: /notify leases
 * and their replacement, timetag horizon and per-client slots (the audio
 * side's pending list never overflows), TCP idle connections and whole
 * reply frames, model and preset files that are not what they seem, the
 * empty chain and the save/load property, escaped log lines, /get while a
 * change is scheduled; and `oscine send`. */
#include "util/live.h"
#include "util/util.h"

#include "osc/table.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *tmp;
static char logpath[256];

static void msleep(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static const char *models;

/* The preset folder and a model folder (searched before ./models), each
 * with a symlink to /etc/passwd and a FIFO where a file should be. */
static int setup(void **state)
{
    tmp = tmpdir_make();
    models = tmpdir_make();
    snprintf(logpath, sizeof logpath, "%s/daemon.log", tmp);
    setenv("OSCINE_PRESET_PATH", tmp, 1);
    setenv("OSCINE_MODEL_PATH", models, 1);
    char p[512];
    snprintf(p, sizeof p, "%s/ddsp-evil.osw", models);
    int bad = symlink("/etc/passwd", p);
    snprintf(p, sizeof p, "%s/ddsp-fifo.osw", models);
    bad |= mkfifo(p, 0644);
    snprintf(p, sizeof p, "%s/evil.osc", tmp);
    bad |= symlink("/etc/passwd", p);
    snprintf(p, sizeof p, "%s/x.osc", tmp);
    bad |= mkfifo(p, 0644);
    if (bad)
        return -1;
    if (jack_start()) {
        fprintf(stderr, "cannot start jackd -d dummy\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    jack_stop();
    tmpdir_remove(tmp);
    tmpdir_remove(models);
    return 0;
}

/* `oscine run --chain chain` with up to three more arguments (NULL ends). */
static pid_t start(int *port, const char *chain, const char *a1, const char *a2, const char *a3)
{
    pid_t pid = daemon_start(port, logpath, "--chain", chain, "--log-level", "debug", a1, a2, a3,
                             NULL);
    if (pid < 0)
        daemon_show_log(logpath);
    assert_true(pid > 0);
    return pid;
}

/* Discard what has arrived for ms. */
static void drain(osc_client *c, int ms)
{
    lo_message m;
    while ((m = osc_wait(c, "/nothing", ms)))
        lo_message_free(m);
}

static int meter_within(osc_client *c, int ms)
{
    lo_message m = osc_wait(c, "/meter", ms);
    if (m)
        lo_message_free(m);
    return m != NULL;
}

static char *log_text(void)
{
    static char buf[1 << 20];
    FILE *f = fopen(logpath, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    return buf;
}

/* Does a line of the daemon's log (of any length) hold text? */
static int log_has(const char *text)
{
    FILE *f = fopen(logpath, "r");
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (f && !found && getline(&line, &cap, f) >= 0)
        found = strstr(line, text) != NULL;
    free(line);
    if (f)
        fclose(f);
    return found;
}

/* ------------------------------------------------------------ /notify */

/* 16 senders that subscribe and go away (as oscsend does) do not lock a
 * later subscriber out. */
static void test_notify_dead_subscribers(void **state)
{
    int port;
    pid_t pid = start(&port, "gain", NULL, NULL, NULL);
    char why[256];
    for (int i = 0; i < 16; i++) {
        osc_client g;
        osc_open(&g, port);
        assert_int_equal(osc_call(&g, "/notify", why, sizeof why, "i", 1), 1);
        osc_close(&g);
    }
    /* ... and a later client still subscribes, and gets meters */
    osc_client x;
    osc_open(&x, port);
    int r = osc_call(&x, "/notify", why, sizeof why, "i", 1);
    if (r == 0)
        fail_msg("a 17th subscriber: /fail %s", why);
    assert_int_equal(r, 1);
    assert_true(meter_within(&x, 500));
    osc_close(&x);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* 16 live subscribers; the first renews its lease by any message; a new
 * one replaces the one silent the longest (the second). /notify 0 ends a
 * subscription from its own host and port only. */
static void test_notify_replace_oldest(void **state)
{
    int port;
    pid_t pid = start(&port, "gain", NULL, NULL, NULL);
    char why[256];
    osc_client c[16], n;
    for (int i = 0; i < 16; i++) {
        osc_open(&c[i], port);
        assert_int_equal(osc_call(&c[i], "/notify", why, sizeof why, "i", 1), 1);
    }
    osc_send(&c[0], "/status", NULL);
    lo_message m = osc_wait(&c[0], "/status.reply", 1000);
    assert_non_null(m);
    lo_message_free(m);
    osc_open(&n, port);
    int r = osc_call(&n, "/notify", why, sizeof why, "i", 1);
    if (r == 0)
        fail_msg("a new subscriber when 16 are: /fail %s", why);
    assert_int_equal(r, 1);
    drain(&c[1], 100);
    assert_false(meter_within(&c[1], 300));
    drain(&c[0], 50);
    assert_true(meter_within(&c[0], 300));
    assert_true(meter_within(&c[2], 300));
    assert_true(meter_within(&n, 300));

    /* /notify 0 from another port of the same host leaves c[0] subscribed;
     * from its own port it ends the subscription */
    osc_client o;
    osc_open(&o, port);
    assert_int_equal(osc_call(&o, "/notify", why, sizeof why, "i", 0), 1);
    drain(&c[0], 50);
    assert_true(meter_within(&c[0], 300));
    assert_int_equal(osc_call(&c[0], "/notify", why, sizeof why, "i", 0), 1);
    drain(&c[0], 100);
    assert_false(meter_within(&c[0], 300));

    for (int i = 0; i < 16; i++)
        osc_close(&c[i]);
    osc_close(&n);
    osc_close(&o);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    assert_true(log_has("unsubscribed (the longest silent"));
}

/* The lease runs out: c[3] stays silent, c[2] keeps sending. */
static void test_notify_lease(void **state)
{
    int port;
    pid_t pid = start(&port, "gain", "--client-timeout", "2", NULL);
    char why[256];
    osc_client c[4];
    for (int i = 2; i < 4; i++) {
        osc_open(&c[i], port);
        assert_int_equal(osc_call(&c[i], "/notify", why, sizeof why, "i", 1), 1);
    }
    double t0 = now_s();
    while (now_s() - t0 < 2.6) {
        osc_send(&c[2], "/status", NULL);
        msleep(400);
    }
    drain(&c[3], 100);
    assert_false(meter_within(&c[3], 300));
    drain(&c[2], 50);
    assert_true(meter_within(&c[2], 300));
    assert_true(log_has("unsubscribed (lease ran out)"));
    osc_close(&c[2]);
    osc_close(&c[3]);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* ------------------------------------------------------------ timetags */

static lo_timetag tt_in(double s)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    double t = rt.tv_sec + rt.tv_nsec * 1e-9 + s;
    return (lo_timetag){(uint32_t)(floor(t) + 2208988800.0),
                        (uint32_t)((t - floor(t)) * 4294967296.0)};
}

/* One bundle of n copies of path (with one float, or none when v is NAN)
 * at +s seconds. */
static void send_bundle_n(osc_client *c, double s, int n, const char *path, float v)
{
    lo_bundle b = lo_bundle_new(tt_in(s));
    for (int i = 0; i < n; i++) {
        lo_message m = lo_message_new();
        if (!isnan(v))
            lo_message_add_float(m, v);
        lo_bundle_add_message(b, path, m);
    }
    size_t len;
    void *data = lo_bundle_serialise(b, NULL, &len);
    assert_int_equal(osc_send_raw(c, data, len), 0);
    free(data);
    lo_bundle_free_recursive(b);
}

/* Count the /done and /fail replies for path until none comes for 300 ms;
 * the last /fail reason in why. */
static void count_replies(osc_client *c, const char *path, int *done, int *failed, char *why,
                          size_t wl)
{
    static unsigned char buf[65536];
    *done = *failed = 0;
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 300) <= 0)
            return;
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        const char *got = n > 0 ? lo_get_path(buf, n) : NULL;
        int res;
        lo_message m = got ? lo_message_deserialise(buf, (size_t)n, &res) : NULL;
        if (!m)
            continue;
        if (lo_message_get_argc(m) >= 1 && !strcmp(osc_arg_s(m, 0), path)) {
            if (!strcmp(got, "/done"))
                (*done)++;
            if (!strcmp(got, "/fail")) {
                (*failed)++;
                snprintf(why, wl, "%s", osc_arg_s(m, 1));
            }
        }
        lo_message_free(m);
    }
}

/* A daemon on the gain chain and two clients. */
static pid_t start2(int *port, osc_client *x, osc_client *y)
{
    pid_t pid = start(port, "gain", NULL, NULL, NULL);
    osc_open(x, *port);
    osc_open(y, *port);
    return pid;
}

static void stop2(pid_t pid, osc_client *x, osc_client *y)
{
    osc_close(x);
    osc_close(y);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* A timetag beyond the horizon is refused (it held a slot for good). */
static void test_timetag_horizon(void **state)
{
    int port, done, failed;
    osc_client x, y;
    pid_t pid = start2(&port, &x, &y);
    char why[256] = "";
    send_bundle_n(&x, 120, 1, "/gain/db", -20);
    count_replies(&x, "/gain/db", &done, &failed, why, sizeof why);
    assert_int_equal(done, 0);
    assert_int_equal(failed, 1);
    assert_non_null(strstr(why, "at most 60 s"));
    send_bundle_n(&x, 120, 1, "/status", NAN);
    count_replies(&x, "/status", &done, &failed, why, sizeof why);
    assert_int_equal(failed, 1);
    stop2(pid, &x, &y);
}

/* /get while a change waits: the value in effect, then the one to come. */
static void test_get_while_scheduled(void **state)
{
    int port, done, failed;
    osc_client x, y;
    pid_t pid = start2(&port, &x, &y);
    char why[256] = "";
    send_bundle_n(&y, 0.5, 1, "/gain/db", -6);
    count_replies(&y, "/gain/db", &done, &failed, why, sizeof why);
    assert_int_equal(done, 1);
    lo_message r = osc_get_value(&y, "/gain/db");
    assert_non_null(r);
    print_message("/get with a change scheduled: types '%s'\n", lo_message_get_types(r));
    assert_float_equal(osc_arg_f(r, 1), 0.0f, 0);
    assert_int_equal(lo_message_get_argc(r), 4);
    assert_float_equal(osc_arg_f(r, 2), -6.0f, 0);
    assert_true(osc_arg_f(r, 3) > 0 && osc_arg_f(r, 3) < 0.5f);
    lo_message_free(r);
    msleep(400);
    r = osc_get_value(&y, "/gain/db");
    assert_non_null(r);
    assert_float_equal(osc_arg_f(r, 1), -6.0f, 0);
    assert_int_equal(lo_message_get_argc(r), 2);
    lo_message_free(r);
    stop2(pid, &x, &y);
}

/* One client's bundle of 260 settings far ahead: it gets its share, the
 * rest are refused (they overflowed the audio side's pending list and were
 * applied at once, without a word), and another client still schedules. */
static void test_timetag_slots_per_client(void **state)
{
    int port, done, failed;
    osc_client x, y;
    pid_t pid = start2(&port, &x, &y);
    char why[256] = "";
    assert_int_equal(osc_call(&y, "/gain/db", why, sizeof why, "f", -6.0), 1);
    lo_message r;
    static float dc[LIVE_RATE];
    for (int i = 0; i < LIVE_RATE; i++)
        dc[i] = 0.25f;
    jack_io *player = jio_open("oscine:in_0", NULL);
    assert_non_null(player);
    jio_start(player, dc, LIVE_RATE, 1, NULL, 0);
    send_bundle_n(&x, 30, 260, "/gain/db", -20);
    count_replies(&x, "/gain/db", &done, &failed, why, sizeof why);
    print_message("260 settings at +30 s from one client: %d accepted, %d refused ('%s')\n", done,
                  failed, why);
    assert_int_equal(done, 32);
    assert_int_equal(failed, 228);
    assert_non_null(strstr(why, "too many scheduled messages"));
    const size_t rn = LIVE_RATE / 4;
    float *y_out = calloc(rn, sizeof(float));
    jack_io *rec = jio_open(NULL, "oscine:out_0");
    assert_non_null(rec);
    jio_start(rec, NULL, 0, 0, y_out, rn);
    for (int i = 0; i < 200 && jio_recorded(rec) < rn; i++)
        msleep(10);
    assert_int_equal(jio_recorded(rec), rn);
    const float want = 0.25f * powf(10.0f, -6.0f / 20.0f);
    float lo = 1, hi = 0;
    for (size_t i = rn / 4; i < rn; i++) {
        lo = fminf(lo, y_out[i]);
        hi = fmaxf(hi, y_out[i]);
    }
    print_message("output while they wait: %.5f..%.5f (gain -6 dB: %.5f; -20 dB: %.5f)\n", lo,
                  hi, want, 0.025f);
    assert_true(fabsf(lo - want) < 1e-3f && fabsf(hi - want) < 1e-3f);
    jio_close(rec);
    jio_close(player);
    free(y_out);
    /* another client still schedules */
    send_bundle_n(&y, 0.3, 1, "/gain/db", -3);
    count_replies(&y, "/gain/db", &done, &failed, why, sizeof why);
    assert_int_equal(done, 1);
    msleep(300);
    r = osc_get_value(&y, "/gain/db");
    assert_non_null(r);
    assert_float_equal(osc_arg_f(r, 1), -3.0f, 0);
    lo_message_free(r);
    stop2(pid, &x, &y);
}

/* The same for commands held on the control side. */
static void test_deferred_slots_per_client(void **state)
{
    int port, done, failed;
    osc_client x, y;
    pid_t pid = start2(&port, &x, &y);
    char why[256] = "";
    lo_message r;
    send_bundle_n(&x, 30, 260, "/status", NAN);
    count_replies(&x, "/status", &done, &failed, why, sizeof why);
    assert_int_equal(failed, 260 - 64);
    send_bundle_n(&y, 0.2, 1, "/status", NAN);
    r = osc_wait(&y, "/status.reply", 1000);
    if (!r) {
        count_replies(&y, "/status", &done, &failed, why, sizeof why);
        fail_msg("a timed /status from another client: no reply (%d /fail: %s)", failed, why);
    }
    lo_message_free(r);
    stop2(pid, &x, &y);
}

/* ------------------------------------------------------------ TCP */

static int tcp_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void tcp_send(int fd, const char *path, lo_message m)
{
    lo_message own = m ? NULL : lo_message_new();
    size_t len;
    void *data = lo_message_serialise(m ? m : own, path, NULL, &len);
    static unsigned char frame[65536 + 4];
    uint32_t be = htonl((uint32_t)len);
    memcpy(frame, &be, 4);
    memcpy(frame + 4, data, len);
    ssize_t r = send(fd, frame, len + 4, MSG_NOSIGNAL);
    (void)r;
    free(data);
    if (own)
        lo_message_free(own);
}

/* Read one frame within ms: its length (the packet in buf), 0 at the end
 * of the stream, -1 on timeout. */
static long tcp_frame(int fd, unsigned char *buf, size_t cap, int ms)
{
    size_t have = 0, want = 4;
    double until = now_s() + ms / 1000.0;
    while (have < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)((until - now_s()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t n = recv(fd, buf + have, want - have, 0);
        if (n <= 0)
            return 0;
        have += (size_t)n;
        if (have == 4 && want == 4) {
            uint32_t l;
            memcpy(&l, buf, 4);
            want = 4 + ntohl(l);
            if (want > cap)
                return -2;
        }
    }
    memmove(buf, buf + 4, want - 4);
    return (long)(want - 4);
}

/* 16 idle or trickling connections do not lock a 17th out. */
static void test_tcp_idle_eviction(void **state)
{
    int port;
    pid_t pid = start(&port, "gain", "--tcp", NULL, NULL);
    int idle[16];
    for (int i = 0; i < 16; i++) {
        idle[i] = tcp_open(port);
        assert_true(idle[i] >= 0);
        if (i % 4 == 0) { /* trickling: a frame that never completes */
            ssize_t r = send(idle[i], "\0\0", 2, MSG_NOSIGNAL);
            (void)r;
        }
    }
    msleep(100);
    /* a 17th connection is served: the longest idle made room */
    int fd = tcp_open(port);
    assert_true(fd >= 0);
    tcp_send(fd, "/status", NULL);
    static unsigned char buf[70000];
    long n = tcp_frame(fd, buf, sizeof buf, 2000);
    assert_true(n > 0);
    assert_string_equal(lo_get_path(buf, n), "/status.reply");
    close(fd);
    for (int i = 0; i < 16; i++)
        close(idle[i]);
    osc_client c;
    osc_open(&c, port);
    osc_send(&c, "/status", NULL);
    lo_message r = osc_wait(&c, "/status.reply", 1000);
    assert_non_null(r);
    lo_message_free(r);
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* Parse a TCP byte stream into frames: the count of whole /fail frames
 * naming addr; *bad: frames that are not one (a frame cut and the next
 * glued on); *tail: bytes of an unfinished last frame. */
static int parse_stream(const unsigned char *st, size_t n, const char *addr, int *bad,
                        size_t *tail)
{
    size_t pos = 0;
    int whole = 0;
    *bad = 0;
    while (pos + 4 <= n && !*bad) {
        uint32_t l;
        memcpy(&l, st + pos, 4);
        l = ntohl(l);
        if (l > 65536 || l % 4) {
            (*bad)++;
            break;
        }
        if (pos + 4 + l > n)
            break;
        const char *path = lo_get_path((void *)(st + pos + 4), l);
        int res;
        lo_message f = path ? lo_message_deserialise((void *)(st + pos + 4), l, &res) : NULL;
        if (f && !strcmp(path, "/fail") && !strcmp(osc_arg_s(f, 0), addr))
            whole++;
        else
            (*bad)++;
        if (f)
            lo_message_free(f);
        pos += 4 + l;
    }
    *tail = n - pos;
    return whole;
}

/* A client that sends requests and stops reading: replies of 8 KB, more
 * than a TCP segment holds here, fill the socket; it gets whole frames
 * only (it got a reply cut and the next glued on), and once its queue is
 * full the daemon closes the connection. */
static void test_tcp_whole_frames(void **state)
{
    int port;
    /* info: no log line per message */
    pid_t pid = daemon_start(&port, logpath, "--chain", "gain", "--tcp", NULL);
    assert_true(pid > 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 65536;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    /* an unknown address of 8000 bytes: /fail echoes it */
    static char addr[8001];
    addr[0] = '/';
    memset(addr + 1, 'x', 7999);
    lo_message m = lo_message_new();
    size_t len;
    void *data = lo_message_serialise(m, addr, NULL, &len);
    lo_message_free(m);
    static unsigned char frame[8100];
    uint32_t be = htonl((uint32_t)len);
    memcpy(frame, &be, 4);
    memcpy(frame + 4, data, len);
    free(data);
    int sent = 0, closed = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    double t0 = now_s();
    while (sent < 1000 && now_s() - t0 < 5 && !closed) {
        size_t off = 0;
        while (off < len + 4 && now_s() - t0 < 5) {
            ssize_t w = send(fd, frame + off, len + 4 - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN) {
                closed = 1;
                break;
            } else
                msleep(1);
        }
        sent++;
    }
    msleep(500);
    /* read what came; when it goes quiet, ask for one more reply (a stream
     * that kept a cut frame would glue it on there) */
    fcntl(fd, F_SETFL, 0);
    size_t cap = 64 << 20, got = 0;
    unsigned char *st = malloc(cap);
    int asked = 0;
    closed = 0;
    while (got < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0) {
            if (asked)
                break;
            tcp_send(fd, addr, NULL);
            asked = 1;
            continue;
        }
        ssize_t r = recv(fd, st + got, cap - got, 0);
        if (r <= 0) {
            closed = 1;
            break;
        }
        got += (size_t)r;
    }
    int bad;
    size_t tail;
    int whole = parse_stream(st, got, addr, &bad, &tail);
    print_message("a client that stopped reading: sent %d requests of %zu bytes, read %zu bytes: "
                  "%d whole replies, %d broken, %zu bytes of a last frame; %s\n", sent, len + 4,
                  got, whole, bad, tail,
                  closed ? "then the daemon closed the connection" : "still open");
    assert_int_equal(bad, 0);
    assert_true(whole > 0);
    /* an unfinished last frame only where the close cut it */
    assert_true(closed || tail == 0);
    free(st);
    close(fd);
    assert_true(log_has("is not reading its replies"));
    /* and the daemon serves the next client */
    fd = tcp_open(port);
    tcp_send(fd, "/status", NULL);
    long n = tcp_frame(fd, (unsigned char *)addr, sizeof addr, 2000);
    assert_true(n > 0);
    close(fd);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* An idle connection is closed after the client timeout. */
static void test_tcp_idle_timeout(void **state)
{
    int port;
    pid_t pid = start(&port, "gain", "--tcp", "--client-timeout", "2");
    static unsigned char buf[70000];
    long n;
    double t0;
    int fd = tcp_open(port);
    assert_true(fd >= 0);
    t0 = now_s();
    n = tcp_frame(fd, buf, sizeof buf, 4000);
    print_message("idle TCP connection closed by the daemon after %.2f s (timeout 2 s)\n",
                  now_s() - t0);
    assert_int_equal(n, 0);
    assert_true(now_s() - t0 > 1.5 && now_s() - t0 < 3.5);
    close(fd);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* ------------------------------------------------------------ files */

/* A daemon running chain, and a client. */
static pid_t start1(int *port, osc_client *c, const char *chain)
{
    pid_t pid = start(port, chain, NULL, NULL, NULL);
    osc_open(c, *port);
    return pid;
}

static void stop1(pid_t pid, osc_client *c)
{
    osc_close(c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* Over OSC a model is a name looked up in the model folders, never a path
 * (/etc/passwd was opened and its first bytes echoed in /fail). */
static void test_model_names_only(void **state)
{
    int port;
    osc_client c;
    pid_t pid = start1(&port, &c, "synth");
    char why[512];
    const char *refused[] = {"/etc/passwd", "../../../etc/passwd", ".hidden", "a b"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", refused[i]), 0);
        print_message("/synth/model %s: /fail %s\n", refused[i], why);
        assert_null(strstr(why, "root:"));
        assert_non_null(strstr(why, "not a path"));
    }
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "clarinet"), 1);
    lo_message r = osc_get_value(&c, "/synth/model");
    assert_non_null(r);
    assert_string_equal(osc_arg_s(r, 1), "clarinet");
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "ddsp-violin.osw"), 1);
    stop1(pid, &c);
}

/* A symlink in a model folder to another file: refused, no byte echoed. */
static void test_model_symlink_not_echoed(void **state)
{
    int port;
    osc_client c;
    pid_t pid = start1(&port, &c, "synth");
    char why[512];
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "evil"), 0);
    print_message("/synth/model evil (a symlink to /etc/passwd): /fail %s\n", why);
    assert_null(strstr(why, "root"));
    assert_non_null(strstr(why, "not an oscine weights file"));
    stop1(pid, &c);
}

/* A FIFO in a model folder: refused at once, and no chain build is left
 * waiting on it (every later /engine/chain was "busy"). */
static void test_model_fifo(void **state)
{
    int port;
    osc_client c;
    pid_t pid = start1(&port, &c, "synth");
    char why[512];
    double t0 = now_s();
    int got = osc_call(&c, "/synth/model", why, sizeof why, "s", "fifo");
    print_message("/synth/model fifo: %s %s (%.0f ms)\n", got == 1 ? "/done" : "/fail",
                  got >= 0 ? why : "no answer", 1000 * (now_s() - t0));
    assert_int_equal(got, 0);
    got = osc_call(&c, "/engine/chain", why, sizeof why, "s", "gain,synth");
    if (got == 0)
        fail_msg("/engine/chain after it: /fail %s", why);
    assert_int_equal(got, 1);
    stop1(pid, &c);
}

/* A symlink in a preset folder to another file: its contents are not
 * echoed (it was: "unknown address 'root:x:0:0:...'"). */
static void test_preset_symlink_not_echoed(void **state)
{
    int port;
    osc_client c;
    pid_t pid = start1(&port, &c, "gain");
    char why[512];
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "evil"), 0);
    print_message("/preset/load evil: /fail %s\n", why);
    assert_null(strstr(why, "root"));
    assert_null(strstr(why, "/bin"));
    stop1(pid, &c);
}

/* A FIFO named x.osc: refused at once; the main loop goes on (it froze). */
static void test_preset_fifo(void **state)
{
    int port;
    osc_client c;
    pid_t pid = start1(&port, &c, "gain");
    char why[512];
    double t0 = now_s();
    int got = osc_call(&c, "/preset/load", why, sizeof why, "s", "x");
    print_message("/preset/load x (a FIFO): %s %s (%.0f ms)\n", got == 1 ? "/done" : "/fail",
                  got >= 0 ? why : "no answer", 1000 * (now_s() - t0));
    assert_int_equal(got, 0);
    assert_non_null(strstr(why, "not a regular file"));
    osc_send(&c, "/status", NULL);
    lo_message r = osc_wait(&c, "/status.reply", 1000);
    assert_non_null(r);
    lo_message_free(r);
    stop1(pid, &c);
}

/* A name with control characters is logged escaped, on one line. */
static void test_log_escapes(void **state)
{
    int port;
    osc_client c;
    pid_t pid = start1(&port, &c, "gain");
    char why[512];
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "a\nb\x1b[31m"), 0);
    assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s", "gain\r\nx"), 0);
    msleep(100);
    char *log = log_text();
    assert_non_null(strstr(log, "a\\nb\\x1b[31m"));
    assert_non_null(strstr(log, "gain\\r\\nx"));
    assert_null(strchr(log, '\x1b'));
    assert_null(strchr(log, '\r'));
    assert_null(strstr(log, "\nb"));
    assert_null(strstr(log, "\nx"));
    stop1(pid, &c);
}

/* ------------------------------------------------------------ presets */

/* Every setting /get reports, as text ("f -6", "s gain", "fail ..."). */
static void dump_state(osc_client *c, char *out, size_t cap)
{
    out[0] = 0;
    for (int i = 0; i < osc_table_count(); i++) {
        const osc_entry *e = osc_table_at(i);
        if (!e->settable)
            continue;
        lo_message m = lo_message_new();
        lo_message_add_string(m, e->path);
        osc_send(c, "/get", m);
        lo_message_free(m);
        /* the /value, or the /fail (a stage not in the chain) */
        static unsigned char buf[65536];
        char line[400] = "";
        for (int k = 0; k < 200 && !line[0]; k++) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            if (poll(&p, 1, 10) <= 0)
                continue;
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            const char *path = n > 0 ? lo_get_path(buf, n) : NULL;
            int res;
            lo_message r = path ? lo_message_deserialise(buf, (size_t)n, &res) : NULL;
            if (!r)
                continue;
            const char *t = lo_message_get_types(r);
            if (!strcmp(path, "/value") && !strcmp(osc_arg_s(r, 0), e->path) && t[1] == 's')
                snprintf(line, sizeof line, "%s s '%s'\n", e->path, osc_arg_s(r, 1));
            else if (!strcmp(path, "/value") && !strcmp(osc_arg_s(r, 0), e->path))
                snprintf(line, sizeof line, "%s %c %.9g\n", e->path, t[1],
                         t[1] == 'f' ? osc_arg_f(r, 1) : (double)osc_arg_i(r, 1));
            else if (!strcmp(path, "/fail") && !strcmp(osc_arg_s(r, 0), "/get"))
                snprintf(line, sizeof line, "%s fail\n", e->path);
            lo_message_free(r);
        }
        if (!line[0])
            snprintf(line, sizeof line, "%s timeout\n", e->path);
        snprintf(out + strlen(out), cap - strlen(out), "%s", line);
    }
}

/* A random message the table knows: mostly settable, sometimes out of
 * range, chains and model names among good and bad ones. */
static void random_message(osc_client *c, uint64_t *seed, int *accepted)
{
    static const char *chains[] = {"gain", "passthrough,gain", " gain , passthrough", "",
                                   " ", "synth", "gain,synth", "synth, gain", "nosuch",
                                   "gain,,gain", "passthrough"};
    static const char *names[] = {"violin", "clarinet", "ddsp-violin.osw", "tuba",
                                   "/etc/passwd", "my#model"};
    char why[256], chain[300] = "";
    lo_message cur = osc_get_value(c, "/engine/chain");
    assert_non_null(cur);
    snprintf(chain, sizeof chain, ",%s,", osc_arg_s(cur, 1));
    lo_message_free(cur);
    double pick = (urand(seed) + 1) * 0.5;
    for (;;) {
        const osc_entry *e = osc_table_at((int)((urand(seed) + 1) * 0.5 * osc_table_count()));
        if (!e || (!e->settable && strcmp(e->path, "/synth/adsr")))
            continue;
        /* a chain change one time in five, a model one in ten, else a
         * setting, mostly of a stage the chain has */
        int is_chain = !strcmp(e->path, "/engine/chain"), is_model = e->types[0] == 's' && !is_chain;
        if ((pick < 0.2) != is_chain || (pick >= 0.2 && pick < 0.3) != is_model)
            continue;
        char stage[40];
        snprintf(stage, sizeof stage, ",%.*s,", (int)strcspn(e->path + 1, "/"), e->path + 1);
        if (pick >= 0.3 && pick < 0.9 && strcmp(stage, ",engine,") && !strstr(chain, stage))
            continue;
        int r;
        if (!strcmp(e->path, "/engine/chain")) {
            const char *s = chains[(int)((urand(seed) + 1) * 0.5 * 11) % 11];
            r = osc_call(c, e->path, why, sizeof why, "s", s);
        } else if (e->types[0] == 's') {
            const char *s = names[(int)((urand(seed) + 1) * 0.5 * 6) % 6];
            r = osc_call(c, e->path, why, sizeof why, "s", s);
        } else if (!strcmp(e->path, "/synth/adsr")) {
            r = osc_call(c, e->path, why, sizeof why, "ffff", 10 + 50 * (urand(seed) + 1),
                         100.0, 0.5 + 0.4 * urand(seed), 300.0);
        } else if (strlen(e->types) == 1) {
            double span = e->max - e->min;
            double v = e->min + span * (urand(seed) + 1) * 0.55; /* some beyond max */
            if (e->types[0] == 'i')
                r = osc_call(c, e->path, why, sizeof why, "i", (int)floor(v));
            else
                r = osc_call(c, e->path, why, sizeof why, "f", v);
        } else {
            continue;
        }
        assert_true(r >= 0);
        *accepted += r == 1;
        return;
    }
}

/* The empty chain is refused: it saved as a preset that does not load. */
static void test_empty_chain(void **state)
{
    int port;
    osc_client c;
    pid_t pid = start1(&port, &c, "gain");
    char why[256];
    const char *empty[] = {"", " ", ",", " , "};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s", empty[i]), 0);
        print_message("/engine/chain \"%s\": /fail %s\n", empty[i], why);
    }
    lo_message r = osc_get_value(&c, "/engine/chain");
    assert_non_null(r);
    assert_string_equal(osc_arg_s(r, 1), "gain");
    lo_message_free(r);
    stop1(pid, &c);
}

/* The property: any state the daemon accepts saves to a preset that
 * loads back to the same state, whatever state it is loaded over. */
static void test_save_load_property(void **state)
{
    osc_table_init();
    int port;
    pid_t pid = start(&port, "gain", NULL, NULL, NULL);
    osc_client c;
    osc_open(&c, port);
    char why[256];
    static char before[16384], after[16384];
    uint64_t seed = 2026;
    for (int round = 0; round < 4; round++) {
        int accepted = 0;
        for (int k = 0; k < 50; k++)
            random_message(&c, &seed, &accepted);
        dump_state(&c, before, sizeof before);
        char name[32];
        snprintf(name, sizeof name, "prop%d", round);
        int ok = osc_call(&c, "/preset/save", why, sizeof why, "s", name);
        if (ok != 1)
            fail_msg("round %d: /preset/save: %s", round, why);
        for (int k = 0; k < 15; k++)
            random_message(&c, &seed, &accepted);
        ok = osc_call(&c, "/preset/load", why, sizeof why, "s", name);
        if (ok != 1)
            fail_msg("round %d: the saved preset does not load: %s", round, why);
        dump_state(&c, after, sizeof after);
        print_message("round %d: %d messages accepted; state of %zu bytes %s\n", round, accepted,
                      strlen(before), strcmp(before, after) ? "DIFFERS" : "restored");
        if (strcmp(before, after))
            fail_msg("state before saving:\n%s\nafter loading:\n%s", before, after);
    }
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* ------------------------------------------------------------ oscine send */

/* Run `oscine send ARGS...` in the background, stdout to a file. */
static pid_t send_spawn(const char *out_path, const char *const *args)
{
    const char *bin = getenv("OSCINE_BIN");
    if (!bin)
        bin = "build/oscine";
    const char *argv[32] = {bin, "send"};
    int n = 2;
    while (*args && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void test_oscine_send(void **state)
{
    osc_table_init();
    int port;
    pid_t pid = start(&port, "gain", "--tcp", NULL, NULL);
    char ps[16], out[8192], err[4096];
    snprintf(ps, sizeof ps, "%d", port);
#define SEND(...) run_oscine(out, sizeof out, err, sizeof err, "send", "--port", ps, __VA_ARGS__, NULL)
    /* types from the table: no type letters, negative numbers are values */
    assert_int_equal(SEND("/gain/db", "-6"), 0);
    assert_string_equal(out, "/done /gain/db\n");
    assert_int_equal(SEND("/get", "/gain/db"), 0);
    assert_string_equal(out, "/value address=/gain/db value=-6\n");
    assert_int_equal(SEND("--tcp", "/engine/bypass", "1"), 0);
    assert_string_equal(out, "/done /engine/bypass\n");
    assert_int_equal(SEND("/engine/chain", " passthrough , gain"), 0);
    assert_int_equal(SEND("/get", "/engine/chain"), 0);
    assert_string_equal(out, "/value address=/engine/chain value=passthrough,gain\n");
    /* /fail: its reason, exit 1 */
    assert_int_equal(SEND("/gain/db", "100"), 1);
    assert_string_equal(out, "/fail /gain/db: 100 out of range -96..24 dB\n");
    assert_int_equal(SEND("/engine/chain", ""), 1);
    assert_non_null(strstr(out, "/fail /engine/chain: "));
    /* /status.reply: every field named as the table names it */
    assert_int_equal(SEND("/status"), 0);
    print_message("oscine send /status: %s", out);
    const char *spec = osc_table_find("/status")->reply;
    int fields = 0;
    for (const char *p = strchr(spec, ' '); p; p = strchr(p + 1, ' ')) {
        const char *colon = strchr(p, ':');
        if (!colon)
            break;
        const char *end = colon + strcspn(colon, " ");
        char name[40];
        snprintf(name, sizeof name, " %.*s=", (int)(end - colon - 1), colon + 1);
        if (!strstr(out, name))
            fail_msg("'%s' missing from: %s", name, out);
        fields++;
    }
    assert_true(fields >= 8);
    assert_non_null(strstr(out, " rate=48000 buffer=256 "));
    assert_non_null(strstr(out, " chain=passthrough,gain "));
    assert_int_equal(SEND("--tcp", "/status"), 0);
    assert_non_null(strstr(out, "/status.reply rate=48000"));
    /* usage errors: exit 2 */
    assert_int_equal(SEND("/gain/db", "loud"), 2);
    assert_non_null(strstr(err, "'loud'"));
    assert_int_equal(SEND("/gain/db", "0x10"), 2);
    assert_int_equal(SEND("/gain/db"), 2);
    assert_int_equal(SEND("/engine/bypass", "0.5"), 2);
    assert_int_equal(SEND("gain"), 2);
    assert_int_equal(SEND("/x/y", "1"), 2);
    assert_non_null(strstr(err, "--types"));
    assert_int_equal(SEND("--bogus", "/status"), 2);
    /* an address of another program, with explicit types */
    assert_int_equal(SEND("--types", "fs", "/x/y", "1", "a"), 1);
    assert_string_equal(out, "/fail /x/y: unknown address\n");
#undef SEND
    /* no answer: exit 3 (nothing on the port; a port that never answers) */
    char none[16];
    snprintf(none, sizeof none, "%d", port == 65535 ? port - 1 : port + 1);
    int silent = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(silent, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(silent, (struct sockaddr *)&a, &al);
    char sp[16];
    snprintf(sp, sizeof sp, "%d", ntohs(a.sin_port));
    double t0 = now_s();
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "send", "--timeout", "0.5",
                                "--port", sp, "/status", NULL), 3);
    assert_true(now_s() - t0 < 2.0);
    assert_non_null(strstr(err, "no answer"));
    close(silent);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "send", "--tcp", "--timeout",
                                "0.5", "--port", none, "/status", NULL), 3);

    /* --watch: /meter lines until SIGINT, then it unsubscribes */
    char outp[300];
    snprintf(outp, sizeof outp, "%s/watch.txt", tmp);
    const char *args[] = {"--port", ps, "--watch", "/notify", NULL};
    pid_t w = send_spawn(outp, args);
    msleep(1500);
    kill(w, SIGINT);
    int status;
    waitpid(w, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    FILE *f = fopen(outp, "r");
    char line[512];
    int meters = 0;
    while (f && fgets(line, sizeof line, f))
        meters += !strncmp(line, "/meter in_peak=", 15) && strstr(line, " xruns=") &&
                  strstr(line, " vad=");
    if (f)
        fclose(f);
    print_message("oscine send --watch /notify: %d /meter lines in 1.5 s\n", meters);
    assert_true(meters >= 10);
    msleep(100);
    char *log = log_text();
    const char *sub = strstr(log, "subscribed (1 of 16)");
    assert_non_null(sub);
    assert_non_null(strstr(sub, "unsubscribed (/notify 0)"));
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_notify_dead_subscribers, daemons_teardown),
        cmocka_unit_test_teardown(test_notify_replace_oldest, daemons_teardown),
        cmocka_unit_test_teardown(test_notify_lease, daemons_teardown),
        cmocka_unit_test_teardown(test_timetag_horizon, daemons_teardown),
        cmocka_unit_test_teardown(test_get_while_scheduled, daemons_teardown),
        cmocka_unit_test_teardown(test_timetag_slots_per_client, daemons_teardown),
        cmocka_unit_test_teardown(test_deferred_slots_per_client, daemons_teardown),
        cmocka_unit_test_teardown(test_tcp_idle_eviction, daemons_teardown),
        cmocka_unit_test_teardown(test_tcp_whole_frames, daemons_teardown),
        cmocka_unit_test_teardown(test_tcp_idle_timeout, daemons_teardown),
        cmocka_unit_test_teardown(test_model_names_only, daemons_teardown),
        cmocka_unit_test_teardown(test_model_symlink_not_echoed, daemons_teardown),
        cmocka_unit_test_teardown(test_model_fifo, daemons_teardown),
        cmocka_unit_test_teardown(test_preset_symlink_not_echoed, daemons_teardown),
        cmocka_unit_test_teardown(test_preset_fifo, daemons_teardown),
        cmocka_unit_test_teardown(test_log_escapes, daemons_teardown),
        cmocka_unit_test_teardown(test_empty_chain, daemons_teardown),
        cmocka_unit_test_teardown(test_save_load_property, daemons_teardown),
        cmocka_unit_test_teardown(test_oscine_send, daemons_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
