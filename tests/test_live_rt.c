/* test_live_rt.c - real-time safety: while the audio callback runs, any
 * malloc/free, mutex lock, blocking wait or file I/O on that thread fails
 * this test. The library calls oscine_rt_hook(1/0) around live_process;
 * this program defines the hook and interposes the C library's functions
 * (an executable's definitions take precedence for every shared library).
 * Two runs: the daemon in this process on a private JACK server, steered
 * over OSC (parameter changes, chain swaps, presets, meters, bundles); and
 * the engine driven directly with a resampling chain (48 kHz <-> 16 kHz). */
#include "util/live.h"
#include "util/util.h"

#include "engine/live.h"
#include "osc/daemon.h"
#include "oscine.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* AddressSanitizer owns malloc in its builds: interposing it there is not
 * possible, so under ASan this program reports its tests as skipped. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static _Thread_local int in_audio;
static _Atomic long hook_calls, violations;
static char first_violation[64];

void oscine_rt_hook(int entering)
{
    in_audio = entering;
    if (entering)
        atomic_fetch_add(&hook_calls, 1);
}

__attribute__((unused)) static void violation(const char *what)
{
    if (atomic_fetch_add(&violations, 1) == 0)
        strncpy(first_violation, what, sizeof first_violation - 1);
}

#define CHECK(name)        \
    do {                   \
        if (in_audio)      \
            violation(name); \
    } while (0)

#if !UNDER_ASAN
/* Exported (the build hides symbols by default) so that every shared
 * library's calls land here too. */
#define EXPORT __attribute__((visibility("default")))

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

EXPORT void *malloc(size_t n) { CHECK("malloc"); return __libc_malloc(n); }
EXPORT void *calloc(size_t a, size_t b) { CHECK("calloc"); return __libc_calloc(a, b); }
EXPORT void *realloc(void *p, size_t n) { CHECK("realloc"); return __libc_realloc(p, n); }
EXPORT void free(void *p) { CHECK("free"); __libc_free(p); }

static int (*real_lock)(pthread_mutex_t *);
static int (*real_cond_wait)(pthread_cond_t *, pthread_mutex_t *);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_read)(int, void *, size_t);
static int (*real_usleep)(useconds_t);
static int (*real_nanosleep)(const struct timespec *, struct timespec *);

/* Resolved on first use: shared libraries' initialisers (libgfortran, via
 * OpenBLAS) call some of these before this program's constructors run. */
static void *resolve(void **slot, const char *name)
{
    if (!*slot)
        *slot = dlsym(RTLD_NEXT, name);
    return *slot;
}
#define REAL(var, name) ((__typeof__(var))resolve((void **)&var, name))

EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    CHECK("pthread_mutex_lock");
    return REAL(real_lock, "pthread_mutex_lock")(m);
}
EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    CHECK("pthread_cond_wait");
    return REAL(real_cond_wait, "pthread_cond_wait")(c, m);
}
EXPORT ssize_t write(int fd, const void *b, size_t n)
{
    CHECK("write");
    return REAL(real_write, "write")(fd, b, n);
}
EXPORT ssize_t read(int fd, void *b, size_t n)
{
    CHECK("read");
    return REAL(real_read, "read")(fd, b, n);
}
EXPORT int usleep(useconds_t u)
{
    CHECK("usleep");
    return REAL(real_usleep, "usleep")(u);
}
EXPORT int nanosleep(const struct timespec *a, struct timespec *b)
{
    CHECK("nanosleep");
    return REAL(real_nanosleep, "nanosleep")(a, b);
}

#endif

static void msleep(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int port;

static void *daemon_thread(void *arg)
{
    daemon_config c = {.chain = "gain", .host_api = "JACK", .channels = 1, .buffer = 256,
                       .osc_port = port, .osc_host = "127.0.0.1", .log_level = LOG_WARN,
                       .client_name = "oscine"};
    static int code;
    code = daemon_run(&c);
    return &code;
}

static void test_daemon_callback_is_rt_safe(void **state)
{
    if (UNDER_ASAN)
        skip();
    atomic_store(&hook_calls, 0);
    atomic_store(&violations, 0);
    first_violation[0] = 0;
    const char *tmp = tmpdir_make();
    setenv("OSCINE_PRESET_PATH", tmp, 1);
    assert_int_equal(jack_start(), 0);
    port = 20000 + getpid() % 20000;
    pthread_t th;
    pthread_create(&th, NULL, daemon_thread, NULL);
    osc_client c;
    osc_open(&c, port);
    lo_message r = NULL;
    for (int i = 0; i < 50 && !r; i++) {
        osc_send(&c, "/status", NULL);
        r = osc_wait(&c, "/status.reply", 100);
    }
    assert_non_null(r);
    lo_message_free(r);

    static float sig[LIVE_RATE];
    uint64_t seed = 3;
    for (int i = 0; i < LIVE_RATE; i++)
        sig[i] = 0.3f * urand(&seed);
    jack_io *io = jio_open("oscine:in_0", "oscine:out_0");
    static float rec[LIVE_RATE * 2];
    jio_start(io, sig, LIVE_RATE, 1, rec, LIVE_RATE * 2);

    char why[256];
    assert_int_equal(osc_call(&c, "/notify", why, sizeof why, "i", 1), 1);
    for (int k = 0; k < 40; k++) {
        assert_int_equal(osc_call(&c, "/gain/db", why, sizeof why, "f", -(double)(k % 20)), 1);
        assert_int_equal(osc_call(&c, "/engine/gain", why, sizeof why, "f", -(double)(k % 7)), 1);
        if (k % 10 == 0) {
            assert_int_equal(osc_call(&c, "/engine/bypass", why, sizeof why, "i", k % 20 == 0), 1);
            assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s",
                                      k % 20 ? "gain" : "passthrough,gain"), 1);
        }
        msleep(20);
    }
    assert_int_equal(osc_call(&c, "/preset/save", why, sizeof why, "s", "rt"), 1);
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "rt"), 1);
    lo_timetag now;
    lo_timetag_now(&now);
    now.sec += 1;
    lo_message m = lo_message_new();
    lo_message_add_float(m, -3.0f);
    osc_send_bundle(&c, now, "/gain/db", m);
    msleep(1300);
    jio_close(io);
    assert_int_equal(osc_call(&c, "/quit", why, sizeof why, ""), 1);
    int *code;
    pthread_join(th, (void **)&code);
    assert_int_equal(*code, 0);
    osc_close(&c);
    jack_stop();
    tmpdir_remove(tmp);
    print_message("daemon: %ld callbacks guarded, %ld violations%s%s\n", (long)hook_calls,
                  (long)violations, violations ? ", first: " : "", first_violation);
    assert_true(hook_calls > 100);
    assert_int_equal(violations, 0);
}

/* The engine itself with stages at 16 kHz (libsoxr both ways), parameter
 * changes, scheduled commands and chain swaps, driven block by block. */
static void test_engine_resampling_is_rt_safe(void **state)
{
    if (UNDER_ASAN)
        skip();
    atomic_store(&hook_calls, 0);
    atomic_store(&violations, 0);
    oscine_chain_config cc = {.stages = "gain", .sample_rate = 48000, .channels = 2,
                              .max_block = 512, .internal_rate = 16000, .hop = 160,
                              .low_latency = 1};
    oscine_chain *chain;
    assert_int_equal(oscine_chain_create(&chain, &cc), 0);
    live *e;
    live_config lc = {.sample_rate = 48000, .channels = 2, .max_block = 512, .chain = chain};
    assert_int_equal(live_create(&e, &lc), 0);
    static float a[512], b[512], oa[512], ob[512];
    const float *in[2] = {a, b};
    float *out[2] = {oa, ob};
    uint64_t seed = 9;
    int64_t t = 0;
    for (int blk = 0; blk < 2000; blk++) {
        int n = 1 + (int)((urand(&seed) + 1) * 255.5f);
        for (int i = 0; i < n; i++)
            a[i] = b[i] = 0.2f * urand(&seed);
        if (blk % 50 == 0) {
            live_cmd c = {.kind = LIVE_SET, .when = t + 300, .value = -(float)(blk % 24)};
            strcpy(c.addr, "/gain/db");
            assert_int_equal(live_post(e, &c), 0);
            live_cmd g = {.kind = LIVE_GAIN, .value = -2};
            live_post(e, &g);
        }
        if (blk % 400 == 200) {
            oscine_chain *nc;
            assert_int_equal(oscine_chain_create(&nc, &cc), 0);
            live_cmd s = {.kind = LIVE_SWAP, .chain = nc};
            assert_int_equal(live_post(e, &s), 0);
        }
        live_process(e, in, out, n, 0);
        t += n;
        live_msg msg;
        while (live_poll(e, &msg))
            if (msg.kind == LIVE_MSG_RETIRED)
                oscine_chain_destroy(msg.chain);
    }
    live_destroy(e);
    print_message("engine with resampling: %ld blocks guarded, %ld violations%s%s\n",
                  (long)hook_calls, (long)violations, violations ? ", first: " : "",
                  first_violation);
    assert_int_equal(hook_calls, 2000);
    assert_int_equal(violations, 0);
}

/* The guard itself works: an allocation inside the hook window, made deep
 * in a shared library (strdup in the C library), is caught. */
static void test_guard_catches(void **state)
{
    if (UNDER_ASAN)
        skip();
    long before = atomic_load(&violations);
    oscine_rt_hook(1);
    char *p = strdup("allocates inside libc");
    oscine_rt_hook(0);
    free(p);
    assert_int_equal(atomic_load(&violations), before + 1);
    assert_string_equal(first_violation, "malloc");
    atomic_store(&violations, before);
    first_violation[0] = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_catches),
        cmocka_unit_test(test_engine_resampling_is_rt_safe),
        cmocka_unit_test(test_daemon_callback_is_rt_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
