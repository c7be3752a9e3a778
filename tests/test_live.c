/* test_live.c - the daemon end to end: a private JACK server with the dummy
 * driver (no sound card), `oscine run` on PortAudio's JACK host API, a JACK
 * client playing into it and recording its output, and OSC over loopback:
 * every address, replies and failures, presets, bundles with timetags,
 * malformed packets and floods, TCP, SIGTERM and SIGHUP. */
#include "util/live.h"
#include "util/util.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

static const char *tmp;
static char logpath[256];

static void msleep(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int setup(void **state)
{
    tmp = tmpdir_make();
    snprintf(logpath, sizeof logpath, "%s/daemon.log", tmp);
    setenv("OSCINE_PRESET_PATH", tmp, 1);
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
    return 0;
}

/* First index where |x| > thr, or -1. */
static long first_above(const float *x, size_t n, float thr)
{
    for (size_t i = 0; i < n; i++)
        if (fabsf(x[i]) > thr)
            return (long)i;
    return -1;
}

/* Play sig through the daemon (client "oscine") and record rec_n frames,
 * both in the same JACK client and cycle, so the delay between them is the
 * round trip through the graph. Returns the xruns the server reported. */
static int play_record(const float *sig, size_t n, int loop, float *rec, size_t rec_n)
{
    jack_io *io = jio_open("oscine:in_0", "oscine:out_0");
    assert_non_null(io);
    jio_start(io, sig, n, loop, rec, rec_n);
    for (int i = 0; i < 500 && jio_recorded(io) < rec_n; i++)
        msleep(10);
    assert_int_equal(jio_recorded(io), rec_n);
    int xruns = jio_xruns(io);
    jio_close(io);
    return xruns;
}

/* y (rn frames) holds x (n frames) times g, within tol, from its first
 * sample above 1e-6 on: the delay, or -1. */
static long find_exact(const float *y, size_t rn, const float *x, size_t n, float g, float tol)
{
    long d = first_above(y, rn, 1e-6f);
    if (d < 0 || (size_t)d + n > rn)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(y[d + i] - x[i] * g) <= tol))
            return -1;
    return d;
}

/* Record x through the daemon until it comes back (times g, within tol), trying
 * again (up to 3 times) only when the server reported an xrun: a cycle lost
 * by the dummy driver on a loaded machine (no realtime scheduling in CI) is
 * not the daemon's fault. A mismatch without an xrun fails at once. */
static long record_exact(const float *x, size_t n, float *y, size_t rn, float g, float tol)
{
    for (int attempt = 1;; attempt++) {
        memset(y, 0, sizeof(float) * rn);
        int xruns = play_record(x, n, 0, y, rn);
        long d = find_exact(y, rn, x, n, g, tol);
        if (d >= 0)
            return d;
        if (!xruns || attempt == 3)
            fail_msg("the recording does not hold the input times %g within %g (attempt %d, "
                     "%d xruns)", g, tol, attempt, xruns);
        print_message("%d xrun(s) in the server during attempt %d: recording again\n", xruns,
                      attempt);
    }
}

static float *noise(size_t n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * urand(&seed);
    x[0] = 0.5f; /* a clear onset */
    return x;
}

static void test_passthrough_exact(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "passthrough", NULL);
    if (pid < 0)
        daemon_show_log(logpath);
    assert_true(pid > 0);
    msleep(100); /* past the fade-in */
    const size_t n = LIVE_RATE / 2, rn = LIVE_RATE;
    float *x = noise(n, 1), *y = calloc(rn, sizeof(float));
    long d = record_exact(x, n, y, rn, 1.0f, 0.0f);
    print_message("passthrough through JACK: output = input delayed by %ld frames "
                  "(%.1f ms at %d Hz, period %d)\n", d, 1000.0 * d / LIVE_RATE, LIVE_RATE,
                  LIVE_PERIOD);
    assert_memory_equal(y + d, x, sizeof(float) * n);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    free(x);
    free(y);
}

static void test_gain_and_bypass(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "gain", NULL);
    assert_true(pid > 0);
    osc_client c;
    osc_open(&c, port);
    char why[256] = "";
    assert_int_equal(osc_call(&c, "/gain/db", why, sizeof why, "f", -6.0), 1);
    msleep(100);
    const size_t n = LIVE_RATE / 2, rn = LIVE_RATE;
    float *x = noise(n, 2), *y = calloc(rn, sizeof(float));
    long d = record_exact(x, n, y, rn, powf(10, -6 / 20.0f), 1e-6f);
    /* Bypass: the input again, at the same delay (the chain has none). */
    assert_int_equal(osc_call(&c, "/engine/bypass", why, sizeof why, "i", 1), 1);
    msleep(150);
    long d2 = record_exact(x, n, y, rn, 1.0f, 1e-6f);
    assert_int_equal(d2, d);
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    free(x);
    free(y);
}

static void test_osc_addresses(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "gain", NULL);
    assert_true(pid > 0);
    osc_client c;
    osc_open(&c, port);
    char why[256];

    /* accepted */
    assert_int_equal(osc_call(&c, "/engine/gain", why, sizeof why, "f", -3.0), 1);
    assert_int_equal(osc_call(&c, "/engine/gain", why, sizeof why, "i", -4), 1); /* int ok */
    assert_int_equal(osc_call(&c, "/engine/bypass", why, sizeof why, "i", 0), 1);
    assert_int_equal(osc_call(&c, "/gain/db", why, sizeof why, "f", -12.5), 1);
    /* rejected, with reasons */
    assert_int_equal(osc_call(&c, "/engine/gain", why, sizeof why, "f", 50.0), 0);
    assert_non_null(strstr(why, "out of range"));
    assert_int_equal(osc_call(&c, "/engine/gain", why, sizeof why, "s", "loud"), 0);
    assert_non_null(strstr(why, "wrong types"));
    assert_int_equal(osc_call(&c, "/engine/gain", why, sizeof why, ""), 0);
    assert_non_null(strstr(why, "wrong types"));
    assert_int_equal(osc_call(&c, "/engine/bypass", why, sizeof why, "f", 0.5), 0);
    assert_int_equal(osc_call(&c, "/no/such", why, sizeof why, "f", 1.0), 0);
    assert_non_null(strstr(why, "unknown address"));
    assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s", "nope"), 0);
    assert_non_null(strstr(why, "unknown stage 'nope'"));

    /* /get */
    lo_message r = osc_get_value(&c, "/gain/db");
    assert_non_null(r);
    assert_string_equal(osc_arg_s(r, 0), "/gain/db");
    assert_float_equal(osc_arg_f(r, 1), -12.5, 1e-6);
    lo_message_free(r);
    r = osc_get_value(&c, "/engine/chain");
    assert_non_null(r);
    assert_string_equal(osc_arg_s(r, 1), "gain");
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/get", why, sizeof why, "s", "/status"), 0);

    /* /status */
    osc_send(&c, "/status", NULL);
    r = osc_wait(&c, "/status.reply", 1000);
    assert_non_null(r);
    assert_string_equal(lo_message_get_types(r), "iiffisfi");
    assert_int_equal(osc_arg_i(r, 0), LIVE_RATE);
    assert_int_equal(osc_arg_i(r, 1), 256);
    assert_true(osc_arg_f(r, 2) > 0 && osc_arg_f(r, 2) < 100);
    assert_string_equal(osc_arg_s(r, 5), "gain");
    assert_true(osc_arg_f(r, 6) > 0);
    print_message("status: latency %.1f ms, cpu %.3f %%, xruns %d\n", osc_arg_f(r, 2), osc_arg_f(r, 3), osc_arg_i(r, 4));
    lo_message_free(r);

    /* /notify: meters arrive, then stop */
    assert_int_equal(osc_call(&c, "/notify", why, sizeof why, "i", 1), 1);
    r = osc_wait(&c, "/meter", 1000);
    assert_non_null(r);
    assert_string_equal(lo_message_get_types(r), "fffffif");
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/notify", why, sizeof why, "i", 0), 1);
    msleep(100);
    while ((r = osc_wait(&c, "/meter", 50)))
        lo_message_free(r);
    assert_null(osc_wait(&c, "/meter", 300));

    /* chain swap: the new chain keeps the settings of stages it has */
    assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s", "passthrough,gain"), 1);
    r = osc_get_value(&c, "/engine/chain");
    assert_string_equal(osc_arg_s(r, 1), "passthrough,gain");
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s", "passthrough"), 1);
    assert_int_equal(osc_call(&c, "/gain/db", why, sizeof why, "f", -1.0), 0);
    assert_non_null(strstr(why, "no such stage"));

    /* presets: save, change, load back; names are never paths */
    assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s", "gain"), 1);
    assert_int_equal(osc_call(&c, "/gain/db", why, sizeof why, "f", -7.0), 1);
    assert_int_equal(osc_call(&c, "/preset/save", why, sizeof why, "s", "mine"), 1);
    char p[300];
    snprintf(p, sizeof p, "%s/mine.osc", tmp);
    assert_true(path_exists(p));
    assert_int_equal(osc_call(&c, "/gain/db", why, sizeof why, "f", 0.0), 1);
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "mine"), 1);
    r = osc_get_value(&c, "/gain/db");
    assert_float_equal(osc_arg_f(r, 1), -7.0, 1e-6);
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "../etc/passwd"), 0);
    assert_non_null(strstr(why, "not a path"));
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "absent"), 0);
    assert_non_null(strstr(why, "not found"));
    /* a bad line fails the whole preset and changes nothing */
    snprintf(p, sizeof p, "%s/broken.osc", tmp);
    FILE *f = fopen(p, "w");
    fputs("# a preset with a typo\n/engine/gain -2\n/gain/db -30\n/gain/dbb 1\n", f);
    fclose(f);
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "broken"), 0);
    assert_non_null(strstr(why, "line 4"));
    assert_non_null(strstr(why, "/gain/dbb"));
    r = osc_get_value(&c, "/gain/db");
    assert_float_equal(osc_arg_f(r, 1), -7.0, 1e-6);
    lo_message_free(r);

    /* /quit */
    assert_int_equal(osc_call(&c, "/quit", why, sizeof why, ""), 1);
    int status = daemon_stop(pid, 0);
    assert_int_equal(status, 0);
    osc_close(&c);
}

static void test_bundle_timetag(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "gain", NULL);
    assert_true(pid > 0);
    osc_client c;
    osc_open(&c, port);
    msleep(100);
    static float dc[LIVE_RATE];
    for (int i = 0; i < LIVE_RATE; i++)
        dc[i] = 0.25f;
    const size_t rn = LIVE_RATE; /* 1 s */
    float *y = calloc(rn, sizeof(float));
    jack_io *player = jio_open("oscine:in_0", NULL);
    jack_io *recorder = jio_open(NULL, "oscine:out_0");
    jio_start(player, dc, LIVE_RATE, 1, NULL, 0);
    msleep(200);
    jio_start(recorder, NULL, 0, 0, y, rn);
    msleep(50);
    /* A bundle for 400 ms from now. */
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    double target_rt = rt.tv_sec + rt.tv_nsec * 1e-9 + 0.4;
    double target_mono_us = (mono.tv_sec + mono.tv_nsec * 1e-9 + 0.4) * 1e6;
    lo_timetag tt = {(uint32_t)(floor(target_rt) + 2208988800.0),
                     (uint32_t)((target_rt - floor(target_rt)) * 4294967296.0)};
    lo_message m = lo_message_new();
    lo_message_add_float(m, -20.0f);
    osc_send_bundle(&c, tt, "/gain/db", m);
    for (int i = 0; i < 300 && jio_recorded(recorder) < rn; i++)
        msleep(10);
    long k = -1;
    for (size_t i = 1000; i < rn; i++)
        if (y[i] < 0.25f - 1e-4f) {
            k = (long)i;
            break;
        }
    assert_true(k > 0);
    /* Not before: the sample before is untouched. */
    assert_float_equal(y[k - 1], 0.25f, 1e-6);
    /* The dummy driver paces cycles by the clock: the recording callback
     * nearest to sample k says when it ran. */
    double at_us = jio_time_at(recorder, k);
    double err_ms = (at_us - target_mono_us) / 1000.0;
    /* Two buffers; three without realtime scheduling (OSCINE_TEST_JACK_NORT,
     * as in CI), where a busy machine starts a callback up to a buffer late
     * and the timetag maps to the block after (seen at 10.7-10.8 ms with
     * both cores training, 5.4 ms idle). */
    const char *nort = getenv("OSCINE_TEST_JACK_NORT");
    const double buffers = nort && nort[0] == '1' ? 3.0 : 2.0;
    print_message("bundle for +400 ms applied %.2f ms from its timetag (one buffer = %.2f ms; "
                  "bound %.0f buffers)\n", err_ms, 1000.0 * LIVE_PERIOD / LIVE_RATE, buffers);
    assert_true(fabs(err_ms) < buffers * 1000.0 * LIVE_PERIOD / LIVE_RATE);
    jio_close(player);
    jio_close(recorder);
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    free(y);
}

static void test_malformed_and_flood(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "gain", NULL);
    assert_true(pid > 0);
    osc_client c;
    osc_open(&c, port);
    osc_send(&c, "/status", NULL);
    lo_message r = osc_wait(&c, "/status.reply", 1000);
    assert_non_null(r);
    int xruns0 = osc_arg_i(r, 4), over0 = osc_arg_i(r, 7);
    lo_message_free(r);

    uint64_t seed = 77;
    static unsigned char junk[65000];
    for (int i = 0; i < 300; i++) {
        size_t n = 1 + (size_t)((urand(&seed) + 1) * 1000);
        for (size_t k = 0; k < n; k++)
            junk[k] = (unsigned char)(urand(&seed) * 127 + 128);
        if (i % 3 == 0)
            junk[0] = '/'; /* looks like a message */
        if (i % 5 == 0)
            memcpy(junk, "#bundle\0", 8); /* looks like a bundle */
        osc_send_raw(&c, junk, n);
    }
    /* a truncated message, a bad type string, a bundle with a lying size,
     * and one huge message */
    osc_send_raw(&c, "/engine/gain\0\0\0\0,f\0\0", 20);
    osc_send_raw(&c, "/engine/gain\0\0\0\0,q\0\0\0\0\0\0", 24);
    unsigned char bad[32] = "#bundle";
    bad[19] = 200;
    osc_send_raw(&c, bad, sizeof bad);
    memset(junk, 0, sizeof junk);
    memcpy(junk, "/engine/gain\0\0\0\0,b\0\0", 20);
    junk[20] = 0; junk[21] = 0; junk[22] = 0xfd; junk[23] = 0xe0;
    osc_send_raw(&c, junk, 65000);

    /* flood: 20000 valid messages as fast as the socket takes them */
    lo_message m = lo_message_new();
    lo_message_add_float(m, -1.0f);
    size_t len;
    void *data = lo_message_serialise(m, "/engine/gain", NULL, &len);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20000; i++)
        osc_send_raw(&c, data, len);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(data);
    lo_message_free(m);
    msleep(500);
    /* drain the replies, then the daemon must still answer */
    while ((r = osc_wait(&c, "/nothing", 100)))
        lo_message_free(r);
    osc_send(&c, "/status", NULL);
    r = osc_wait(&c, "/status.reply", 2000);
    assert_non_null(r);
    int xruns1 = osc_arg_i(r, 4), over1 = osc_arg_i(r, 7);
    lo_message_free(r);
    int rt = jack_realtime();
    print_message("flood of 20000 messages in %.0f ms: xruns %d -> %d, overruns %d -> %d "
                  "(%srealtime server)\n",
                  (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, xruns0,
                  xruns1, over0, over1, rt ? "" : "no ");
    /* The daemon's own callbacks never ran past their buffer. Server xruns
     * are any client's (this test's player too): they must stay at zero
     * only where the server schedules its clients in realtime. */
    assert_int_equal(over1, over0);
    if (rt)
        assert_int_equal(xruns1, xruns0);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    osc_close(&c);
}

static void test_tcp(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "gain", "--tcp", NULL);
    assert_true(pid > 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    lo_message m = lo_message_new();
    lo_message_add_float(m, -2.0f);
    size_t len;
    void *data = lo_message_serialise(m, "/gain/db", NULL, &len);
    uint32_t be = htonl((uint32_t)len);
    assert_int_equal(write(fd, &be, 4), 4);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    free(data);
    lo_message_free(m);
    unsigned char buf[1024];
    size_t have = 0;
    for (int i = 0; i < 100 && have < 4; i++) {
        ssize_t n = recv(fd, buf + have, sizeof buf - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        else
            msleep(10);
    }
    assert_true(have >= 4);
    uint32_t rl = ntohl(*(uint32_t *)buf);
    for (int i = 0; i < 100 && have < 4 + rl; i++) {
        ssize_t n = recv(fd, buf + have, sizeof buf - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        else
            msleep(10);
    }
    assert_true(have >= 4 + rl);
    assert_string_equal(lo_get_path(buf + 4, rl), "/done");
    close(fd);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

static void test_sigterm_fades(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "passthrough", NULL);
    assert_true(pid > 0);
    static float dc[LIVE_RATE];
    for (int i = 0; i < LIVE_RATE; i++)
        dc[i] = 0.25f;
    const size_t rn = LIVE_RATE;
    float *y = calloc(rn, sizeof(float));
    jack_io *player = jio_open("oscine:in_0", NULL);
    jack_io *recorder = jio_open(NULL, "oscine:out_0");
    jio_start(player, dc, LIVE_RATE, 1, NULL, 0);
    msleep(100);
    jio_start(recorder, NULL, 0, 0, y, rn);
    msleep(200);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    msleep(300);
    size_t got = jio_recorded(recorder);
    float maxstep = 0, last = 0;
    for (size_t i = 1; i < got; i++) {
        maxstep = fmaxf(maxstep, fabsf(y[i] - y[i - 1]));
        if (y[i] != 0)
            last = y[i];
    }
    print_message("stop: largest step between samples %.5f (signal 0.25), got %zu, y[0]=%g y[5000]=%g\n", maxstep, got, y[0], y[5000]);
    assert_true(y[100] == 0.25f);     /* it was playing */
    assert_true(fabsf(last) < 0.01f); /* faded before it went */
    assert_true(maxstep < 0.005f);    /* no click */
    jio_close(player);
    jio_close(recorder);
    free(y);
    FILE *f = fopen(logpath, "r");
    char buf[4096] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    assert_non_null(strstr(buf, "stopped"));
}

static void test_sighup_reload(void **state)
{
    char p[300];
    snprintf(p, sizeof p, "%s/hup.osc", tmp);
    FILE *f = fopen(p, "w");
    fputs("/engine/chain gain\n/gain/db -6\n", f);
    fclose(f);
    int port;
    /* started from the file's path (the command line may give one), which
     * SIGHUP re-reads */
    pid_t pid = daemon_start(&port, logpath, "--preset", p, NULL);
    assert_true(pid > 0);
    osc_client c;
    osc_open(&c, port);
    lo_message r = osc_get_value(&c, "/gain/db");
    assert_non_null(r);
    assert_float_equal(osc_arg_f(r, 1), -6, 1e-6);
    lo_message_free(r);
    f = fopen(p, "w");
    fputs("/engine/chain gain\n/gain/db -12\n", f);
    fclose(f);
    kill(pid, SIGHUP);
    msleep(300);
    r = osc_get_value(&c, "/gain/db");
    assert_non_null(r);
    assert_float_equal(osc_arg_f(r, 1), -12, 1e-6);
    lo_message_free(r);
    /* a broken preset on SIGHUP changes nothing and the daemon carries on */
    f = fopen(p, "w");
    fputs("/engine/chain gain\n/gain/db -99999\n", f);
    fclose(f);
    kill(pid, SIGHUP);
    msleep(300);
    r = osc_get_value(&c, "/gain/db");
    assert_non_null(r);
    assert_float_equal(osc_arg_f(r, 1), -12, 1e-6);
    lo_message_free(r);
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

/* The shipped denoiser, live at 48 kHz through JACK: white noise alone is
 * turned down by at least 10 dB, and /meter reports its voice activity as
 * low. */
static void test_denoise_live(void **state)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "denoise", NULL);
    if (pid < 0)
        daemon_show_log(logpath);
    assert_true(pid > 0);
    osc_client c;
    osc_open(&c, port);
    char why[256];
    assert_int_equal(osc_call(&c, "/notify", why, sizeof why, "i", 1), 1);
    const size_t n = LIVE_RATE * 2, rn = LIVE_RATE * 2;
    float *x = malloc(sizeof(float) * n), *y = calloc(rn, sizeof(float));
    uint64_t seed = 12;
    for (size_t i = 0; i < n; i++)
        x[i] = 0.03f * urand(&seed);
    play_record(x, n, 1, y, rn);
    /* second half: past the start-up, the resampler and model warm-up */
    double ex = 0, ey = 0;
    for (size_t i = rn / 2; i < rn; i++) {
        ex += (double)x[i % n] * x[i % n];
        ey += (double)y[i] * y[i];
    }
    double red = 10 * log10(ex / (ey + 1e-20));
    /* The meters queued while the noise played, oldest first: the first ones
     * cover the model's warm-up on the noise's onset, the last ones (after the
     * playback) silence. Keep the latest taken while the noise still played. */
    float vad = -2, rms = 0;
    int nmeter = 0, quiet = 0;
    for (int k = 0; k < 400 && quiet < 5; k++) {
        lo_message m = osc_wait(&c, "/meter", 200);
        if (!m)
            break;
        nmeter++;
        if (osc_arg_f(m, 1) > 0.005f) {
            rms = osc_arg_f(m, 1);
            vad = osc_arg_f(m, 6);
            quiet = 0;
        } else if (rms > 0) { /* the noise has ended */
            quiet++;
        }
        lo_message_free(m);
    }
    print_message("denoise live: noise alone reduced by %.1f dB, vad %.2f (the latest meter with "
                  "input, rms %.3f, of %d read)\n", red, vad, rms, nmeter);
    assert_true(red > 10.0);
    assert_true(vad >= 0.0f && vad < 0.5f);
    osc_send(&c, "/status", NULL);
    lo_message r = osc_wait(&c, "/status.reply", 1000);
    assert_non_null(r);
    print_message("denoise live: latency %.1f ms, callback cpu %.1f %%\n", osc_arg_f(r, 2),
                  osc_arg_f(r, 3));
    lo_message_free(r);
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    free(x);
    free(y);
}

static void test_run_errors(void **state)
{
    char out[4096], err[4096];
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "--preset", "nope",
                                "--host-api", "JACK", NULL), 1);
    assert_non_null(strstr(err, "preset 'nope'"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "--buffer", "5", NULL), 2);
    assert_non_null(strstr(err, "--buffer"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "--osc-port", "0", NULL), 2);
    /* a bad flag value is a usage error (2), as the README says */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "--chain", "nope",
                                "--host-api", "JACK", "--osc-port", "9377", NULL), 2);
    assert_non_null(strstr(err, "unknown stage 'nope'"));
    /* the chain is checked before any device is opened */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "--chain", "gain,nope",
                                "--output", "no such card", "--osc-port", "9377", NULL), 2);
    assert_non_null(strstr(err, "unknown stage 'nope'"));
    assert_null(strstr(err, "no such card"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "--output", "no such card",
                                "--host-api", "JACK", "--osc-port", "9377", NULL), 1);
    assert_non_null(strstr(err, "no output device matching 'no such card'"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "devices", NULL), 0);
    assert_non_null(strstr(out, "JACK"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_passthrough_exact, daemons_teardown),
        cmocka_unit_test_teardown(test_gain_and_bypass, daemons_teardown),
        cmocka_unit_test_teardown(test_osc_addresses, daemons_teardown),
        cmocka_unit_test_teardown(test_bundle_timetag, daemons_teardown),
        cmocka_unit_test_teardown(test_malformed_and_flood, daemons_teardown),
        cmocka_unit_test_teardown(test_tcp, daemons_teardown),
        cmocka_unit_test_teardown(test_sigterm_fades, daemons_teardown),
        cmocka_unit_test_teardown(test_sighup_reload, daemons_teardown),
        cmocka_unit_test_teardown(test_denoise_live, daemons_teardown),
        cmocka_unit_test_teardown(test_run_errors, daemons_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
