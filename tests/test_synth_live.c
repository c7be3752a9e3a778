/* test_synth_live.c - the synth stage in the daemon: `oscine run --chain
 * synth --input none` on a private JACK server (dummy driver), played over
 * real OSC: note-on latency (arrival to first output sample, at most one
 * buffer + 2 ms), multi-argument messages and their failures, compound
 * settings read back with /get, /synth/model switching, presets. The model
 * is the golden-test fixture (random weights), found as ddsp-violin.osw
 * through $OSCINE_MODEL_PATH. */
#include "util/live.h"
#include "util/util.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE "tests/fixtures/ddsp/decoder.osw"

static const char *tmp;
static char logpath[256];

static void msleep(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int setup(void **state)
{
    tmp = tmpdir_make();
    snprintf(logpath, sizeof logpath, "%s/daemon.log", tmp);
    char link[512], target[4096];
    snprintf(link, sizeof link, "%s/ddsp-violin.osw", tmp);
    if (!realpath(FIXTURE, target) || symlink(target, link))
        return -1;
    /* the same weights under another name: over OSC a model is a name */
    snprintf(link, sizeof link, "%s/ddsp-fixture.osw", tmp);
    if (symlink(target, link))
        return -1;
    setenv("OSCINE_MODEL_PATH", tmp, 1);
    setenv("OSCINE_PRESET_PATH", tmp, 1);
    if (jack_start()) {
        fprintf(stderr, "cannot start jackd -d dummy\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    daemons_kill_all();
    jack_stop();
    tmpdir_remove(tmp);
    return 0;
}

static pid_t start(osc_client *c)
{
    int port;
    pid_t pid = daemon_start(&port, logpath, "--chain", "synth", "--input", "none", NULL);
    if (pid < 0)
        daemon_show_log(logpath);
    assert_true(pid > 0);
    assert_int_equal(osc_open(c, port), 0);
    return pid;
}

/* Note on over OSC to its first output sample, five times. */
static void test_note_on_latency(void **state)
{
    osc_client c;
    pid_t pid = start(&c);
    char why[256];
    assert_int_equal(osc_call(&c, "/synth/reverb", why, sizeof why, "f", 0.0), 1);
    assert_int_equal(osc_call(&c, "/synth/release", why, sizeof why, "f", 20.0), 1);
    const size_t rn = 3 * LIVE_RATE;
    float *y = calloc(rn, sizeof(float));
    jack_io *rec = jio_open(NULL, "oscine:out_0");
    assert_non_null(rec);
    jio_start(rec, NULL, 0, 0, y, rn);
    msleep(200);
    double sent[5];
    for (int k = 0; k < 5; k++) {
        lo_message m = lo_message_new();
        lo_message_add_int32(m, 60 + 2 * k);
        lo_message_add_float(m, 1.0f);
        sent[k] = now_us();
        osc_send(&c, "/synth/note_on", m);
        lo_message_free(m);
        msleep(150 + 7 * k); /* not in step with the buffer */
        m = lo_message_new();
        lo_message_add_int32(m, 60 + 2 * k);
        osc_send(&c, "/synth/note_off", m);
        lo_message_free(m);
        msleep(200);
    }
    for (int i = 0; i < 400 && jio_recorded(rec) < rn; i++)
        msleep(10);
    double worst = 0, buf_ms = 1000.0 * LIVE_PERIOD / LIVE_RATE;
    for (int k = 0; k < 5; k++) {
        long from = (long)jio_index_at(rec, sent[k]);
        assert_true(from > 0 && from < (long)rn);
        for (long i = from - 200 > 0 ? from - 200 : 0; i < from; i++)
            if (y[i] != 0.0f) {
                long j = i;
                while (j > 0 && y[j] != 0.0f)
                    j--;
                print_message("note %d: y[%ld] = %g, %ld samples before the send; sound "
                              "since %ld\n", k, i, y[i], from - i, j);
                fail(); /* silence before: the last note has ended */
            }
        long on = -1;
        for (long i = from; i < (long)rn && on < 0; i++)
            if (fabsf(y[i]) > 1e-6f)
                on = i;
        assert_true(on > 0);
        double ms = 1000.0 * (on - from) / LIVE_RATE;
        print_message("note on %d: first output sample %.2f ms after sending (buffer %.2f ms)\n",
                      k, ms, buf_ms);
        worst = ms > worst ? ms : worst;
    }
    print_message("worst note-on latency %.2f ms, limit %.2f ms\n", worst, buf_ms + 2.0);
    assert_true(worst <= buf_ms + 2.0);
    jio_close(rec);
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    free(y);
}

static double rms_range(const float *y, size_t a, size_t b)
{
    double e = 0;
    for (size_t i = a; i < b; i++)
        e += (double)y[i] * y[i];
    return sqrt(e / (double)(b - a));
}

/* /synth/model while a note is held: the note sounds on in the new chain
 * (the engine carries held notes over), no gap, no click. */
static void test_model_switch_keeps_notes(void **state)
{
    osc_client c;
    pid_t pid = start(&c);
    char why[256];
    assert_int_equal(osc_call(&c, "/synth/reverb", why, sizeof why, "f", 0.0), 1);
    const size_t rn = 2 * LIVE_RATE;
    float *y = calloc(rn, sizeof(float));
    jack_io *rec = jio_open(NULL, "oscine:out_0");
    assert_non_null(rec);
    assert_int_equal(osc_call(&c, "/synth/note_on", why, sizeof why, "if", 69, 1.0), 1);
    msleep(300);
    jio_start(rec, NULL, 0, 0, y, rn);
    msleep(300);
    double t_switch = now_us();
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "fixture"), 1);
    for (int i = 0; i < 400 && jio_recorded(rec) < rn; i++)
        msleep(10);
    long sw = (long)jio_index_at(rec, t_switch);
    assert_true(sw > LIVE_RATE / 10 && sw + LIVE_RATE / 2 < (long)rn);
    double before = rms_range(y, (size_t)(sw - LIVE_RATE / 10), (size_t)sw);
    double worst = 1e9, step_before = 0, step_after = 0;
    for (size_t a = (size_t)sw; a + LIVE_RATE / 100 <= rn; a += LIVE_RATE / 100)
        worst = fmin(worst, rms_range(y, a, a + LIVE_RATE / 100) / before);
    for (size_t i = 1; i < (size_t)sw; i++)
        step_before = fmax(step_before, fabs(y[i] - y[i - 1]));
    for (size_t i = (size_t)sw; i < rn; i++)
        step_after = fmax(step_after, fabs(y[i] - y[i - 1]));
    print_message("model switch with a note held: quietest 10 ms after it %.2f of the level "
                  "before; largest step %.4f (before %.4f)\n", worst, step_after, step_before);
    assert_true(worst > 0.2);
    assert_true(step_after < 2 * step_before);
    jio_close(rec);
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
    free(y);
}

static void expect_fail(osc_client *c, const char *path, const char *reason_part,
                        const char *types, lo_message m)
{
    osc_send(c, path, m);
    lo_message r = osc_wait(c, "/fail", 1000);
    assert_non_null(r);
    print_message("%s %s -> /fail %s\n", path, types, osc_arg_s(r, 1));
    assert_string_equal(osc_arg_s(r, 0), path);
    assert_non_null(strstr(osc_arg_s(r, 1), reason_part));
    lo_message_free(r);
}

static void test_synth_messages(void **state)
{
    osc_client c;
    pid_t pid = start(&c);
    char why[256];
    assert_int_equal(osc_call(&c, "/synth/note_on", why, sizeof why, "if", 60, 0.5), 1);
    assert_int_equal(osc_call(&c, "/synth/note_on", why, sizeof why, "ff", 62.0, 0.5), 1);
    assert_int_equal(osc_call(&c, "/synth/note_off", why, sizeof why, "i", 60), 1);
    assert_int_equal(osc_call(&c, "/synth/all_notes_off", why, sizeof why, ""), 1);

    lo_message m = lo_message_new();
    lo_message_add_int32(m, 60);
    expect_fail(&c, "/synth/note_on", "wrong types", "i", m);
    lo_message_free(m);
    m = lo_message_new();
    lo_message_add_int32(m, 60);
    lo_message_add_float(m, 1.5f);
    expect_fail(&c, "/synth/note_on", "argument 2: 1.5 out of range 0..1", "if", m);
    lo_message_free(m);
    m = lo_message_new();
    lo_message_add_float(m, 60.5f);
    lo_message_add_float(m, 1.0f);
    expect_fail(&c, "/synth/note_on", "(integer)", "ff", m);
    lo_message_free(m);
    m = lo_message_new();
    lo_message_add_string(m, "x");
    lo_message_add_float(m, 1.0f);
    expect_fail(&c, "/synth/note_on", "wrong types", "sf", m);
    lo_message_free(m);

    /* a compound setting, read back by its parameters */
    assert_int_equal(osc_call(&c, "/synth/adsr", why, sizeof why, "ffff", 15.0, 120.0, 0.6, 900.0),
                     1);
    lo_message r = osc_get_value(&c, "/synth/release");
    assert_non_null(r);
    assert_float_equal(osc_arg_f(r, 1), 900.0f, 1e-3);
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/synth/voices", why, sizeof why, "i", 4), 1);
    r = osc_get_value(&c, "/synth/voices");
    assert_non_null(r);
    assert_int_equal(osc_arg_i(r, 1), 4);
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/synth/adsr", why, sizeof why, "ffff", 15.0, 120.0, 2.0, 9.0),
                     0);
    assert_non_null(strstr(why, "argument 3"));

    /* presets: settings saved (the compound's parameters), events refused */
    assert_int_equal(osc_call(&c, "/preset/save", why, sizeof why, "s", "mysynth"), 1);
    char path[512], line[256];
    snprintf(path, sizeof path, "%s/mysynth.osc", tmp);
    FILE *f = fopen(path, "r");
    int found = 0;
    int has_model = 0;
    while (f && fgets(line, sizeof line, f)) {
        found |= !strncmp(line, "/synth/release 900", 18);
        has_model |= !strcmp(line, "/synth/model ddsp-violin.osw\n");
    }
    if (f)
        fclose(f);
    assert_true(found);
    /* the default instrument, named by its file: the preset loads back to
     * this state over any other */
    assert_true(has_model);
    snprintf(path, sizeof path, "%s/bad.osc", tmp);
    f = fopen(path, "w");
    fputs("/engine/chain synth\n/synth/note_on 60 1\n", f);
    fclose(f);
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "bad"), 0);
    print_message("preset with an event: /fail %s\n", why);

    /* the model: a name is rebuilt and crossfaded; a missing one fails, so
     * does a path (a message names models, never files) */
    char abs[4096];
    assert_non_null(realpath(FIXTURE, abs));
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", abs), 0);
    assert_non_null(strstr(why, "not a path"));
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "fixture"), 1);
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "tuba"), 0);
    assert_non_null(strstr(why, "ddsp-tuba.osw"));
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "violin"), 1);
    /* the settings survive the rebuilds */
    r = osc_get_value(&c, "/synth/release");
    assert_non_null(r);
    assert_float_equal(osc_arg_f(r, 1), 900.0f, 1e-3);
    lo_message_free(r);
    /* the shipped presets (./presets): the instrument by notes, and the
     * voice turned violin */
    assert_int_equal(osc_call(&c, "/synth/model", why, sizeof why, "s", "fixture"), 1);
    int ok = osc_call(&c, "/preset/load", why, sizeof why, "s", "violin-solo");
    if (!ok)
        print_message("violin-solo: %s\n", why);
    assert_int_equal(ok, 1);
    const struct {
        const char *addr;
        float want;
    } got[] = {{"/synth/vibrato_depth", 12}, {"/synth/attack", 60}, {"/synth/release", 250}};
    for (int i = 0; i < 3; i++) {
        r = osc_get_value(&c, got[i].addr);
        assert_non_null(r);
        assert_float_equal(osc_arg_f(r, 1), got[i].want, 1e-4);
        lo_message_free(r);
    }
    r = osc_get_value(&c, "/synth/model"); /* the preset names its instrument */
    assert_non_null(r);
    assert_string_equal(osc_arg_s(r, 1), "violin");
    lo_message_free(r);
    assert_int_equal(osc_call(&c, "/preset/save", why, sizeof why, "s", "named"), 1);
    snprintf(path, sizeof path, "%s/named.osc", tmp);
    f = fopen(path, "r");
    has_model = 0;
    while (f && fgets(line, sizeof line, f))
        has_model |= !strcmp(line, "/synth/model violin\n");
    if (f)
        fclose(f);
    assert_true(has_model);
    assert_int_equal(osc_call(&c, "/preset/load", why, sizeof why, "s", "voice-to-violin"), 1);
    r = osc_get_value(&c, "/transfer/octave");
    assert_non_null(r);
    assert_int_equal(osc_arg_i(r, 1), 1);
    lo_message_free(r);
    osc_send(&c, "/status", NULL);
    r = osc_wait(&c, "/status.reply", 1000);
    assert_non_null(r);
    assert_string_equal(osc_arg_s(r, 5), "transfer");
    lo_message_free(r);

    /* not in the chain */
    assert_int_equal(osc_call(&c, "/engine/chain", why, sizeof why, "s", "gain"), 1);
    assert_int_equal(osc_call(&c, "/synth/note_on", why, sizeof why, "if", 60, 0.5), 0);
    assert_non_null(strstr(why, "no such stage"));
    osc_close(&c);
    assert_int_equal(daemon_stop(pid, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_note_on_latency, daemons_teardown),
        cmocka_unit_test_teardown(test_synth_messages, daemons_teardown),
        cmocka_unit_test_teardown(test_model_switch_keeps_notes, daemons_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
