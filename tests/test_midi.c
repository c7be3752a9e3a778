/* test_midi.c - MIDI: the translator (engine/midi.h) shared by the LV2
 * synth and `oscine synth` (what each message turns into, the sustain
 * pedal, the volume curve, any byte sequence stays within bounds), and the
 * Standard MIDI File reader (io/smf.h): event times through tempo changes,
 * running status, skipped meta and sysex, every truncation and 20000
 * random corruptions refused or read within bounds. */
#include "util/util.h"

#include "engine/midi.h"
#include "io/smf.h"
#include "oscine.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DDSP "tests/fixtures/ddsp/decoder.osw"

typedef struct {
    midi_action a[300];
    int n;
} log_t;

static void sink(void *user, const midi_action *a)
{
    log_t *l = user;
    assert_true(l->n < 300);
    l->a[l->n++] = *a;
}

static log_t feed(midi_state *m, unsigned st, unsigned d1, unsigned d2)
{
    log_t l = {.n = 0};
    midi_message(m, st, d1, d2, sink, &l);
    return l;
}

static void notes_and_channels(void **state)
{
    (void)state;
    midi_state m;
    midi_reset(&m);
    log_t l = feed(&m, 0x93, 69, 127); /* channel 4 plays the same synth */
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].kind, MIDI_NOTE_ON);
    assert_int_equal(l.a[0].note, 69);
    assert_float_equal(l.a[0].value, 1.0f, 1e-7);
    l = feed(&m, 0x90, 60, 64);
    assert_float_equal(l.a[0].value, 64 / 127.0f, 1e-7);
    l = feed(&m, 0x90, 69, 0); /* velocity 0 releases */
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].kind, MIDI_NOTE_OFF);
    assert_int_equal(l.a[0].note, 69);
    l = feed(&m, 0x80, 69, 40); /* not sounding any more: nothing */
    assert_int_equal(l.n, 0);
    l = feed(&m, 0x8F, 60, 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].note, 60);
    l = feed(&m, 0xC0, 5, 0); /* program change: ignored */
    assert_int_equal(l.n, 0);
    assert_int_equal(midi_data_bytes(0xC3), 1);
    assert_int_equal(midi_data_bytes(0xD0), 1);
    assert_int_equal(midi_data_bytes(0x90), 2);
    assert_int_equal(midi_data_bytes(0xE5), 2);
}

static void sustain_pedal(void **state)
{
    (void)state;
    midi_state m;
    midi_reset(&m);
    feed(&m, 0x90, 60, 100);
    feed(&m, 0x90, 64, 100);
    feed(&m, 0x90, 67, 100);
    assert_int_equal(feed(&m, 0xB0, 64, 127).n, 0);
    assert_int_equal(feed(&m, 0x80, 60, 0).n, 0); /* held */
    assert_int_equal(feed(&m, 0x80, 64, 0).n, 0);
    log_t l = feed(&m, 0x90, 64, 90); /* struck again while held: plays, no longer held */
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].kind, MIDI_NOTE_ON);
    assert_true(m.vel[60] > 0); /* a held note still sounds */
    l = feed(&m, 0xB0, 64, 0);  /* pedal up: only 60 is released (64 is down, 67 too) */
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].kind, MIDI_NOTE_OFF);
    assert_int_equal(l.a[0].note, 60);
    assert_int_equal(feed(&m, 0xB0, 64, 63).n, 0); /* < 64 is up */
    assert_int_equal(feed(&m, 0x80, 64, 0).n, 1);
    /* all notes off forgets held notes */
    feed(&m, 0xB0, 64, 64);
    feed(&m, 0x80, 67, 0);
    l = feed(&m, 0xB0, 123, 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].kind, MIDI_ALL_OFF);
    assert_int_equal(feed(&m, 0xB0, 64, 0).n, 0);
    for (int n = 0; n < 128; n++)
        assert_true(m.vel[n] == 0 && !m.held[n]);
    /* 128 held notes: one pedal release sends 128 note offs */
    for (int n = 0; n < 128; n++)
        feed(&m, 0x90, (unsigned)n, 1);
    feed(&m, 0xB0, 64, 127);
    for (int n = 0; n < 128; n++)
        feed(&m, 0x80, (unsigned)n, 0);
    assert_int_equal(feed(&m, 0xB0, 64, 0).n, 128);
}

static void controllers(void **state)
{
    (void)state;
    midi_state m;
    midi_reset(&m);
    assert_float_equal(midi_volume_db(&m), 0.0f, 1e-6);
    log_t l = feed(&m, 0xE0, 0x00, 0x40); /* centre */
    assert_int_equal(l.a[0].kind, MIDI_BEND);
    assert_float_equal(l.a[0].value, 0.0f, 1e-7);
    l = feed(&m, 0xE0, 0x7F, 0x7F);
    assert_float_equal(l.a[0].value, 8191 / 8192.0f, 1e-7);
    l = feed(&m, 0xE0, 0, 0);
    assert_float_equal(m.bend, -1.0f, 1e-7);
    l = feed(&m, 0xB0, 1, 127);
    assert_int_equal(l.a[0].kind, MIDI_MOD);
    assert_float_equal(m.mod, 1.0f, 1e-7);
    l = feed(&m, 0xB0, 7, 64);
    assert_int_equal(l.a[0].kind, MIDI_VOLUME);
    assert_float_equal(l.a[0].value, 40.0f * log10f(64 / 127.0f), 1e-4); /* -11.9 dB */
    l = feed(&m, 0xB0, 11, 0);
    assert_float_equal(l.a[0].value, 40.0f * log10f(64 / 127.0f) - 60.0f, 1e-4);
    feed(&m, 0xB0, 7, 0);
    assert_float_equal(midi_volume_db(&m), -120.0f, 1e-4);
    midi_reset(&m);
    assert_float_equal(midi_volume_db(&m), 0.0f, 1e-6);
    assert_float_equal(m.bend, 0.0f, 0);
}

/* Any bytes, including data bytes with the top bit set and system
 * messages: no action outside 0..127, state within its ranges. */
static void any_bytes(void **state)
{
    (void)state;
    midi_state m;
    midi_reset(&m);
    uint64_t r = 7;
    for (int i = 0; i < 200000; i++) {
        unsigned st = (unsigned)((urand(&r) + 1.0f) * 128.0f) | 0x80;
        unsigned d1 = (unsigned)((urand(&r) + 1.0f) * 128.0f);
        unsigned d2 = (unsigned)((urand(&r) + 1.0f) * 128.0f);
        log_t l = feed(&m, st, d1, d2);
        for (int k = 0; k < l.n; k++) {
            assert_true(l.a[k].note >= 0 && l.a[k].note < 128);
            assert_true(isfinite(l.a[k].value));
        }
        assert_true(m.bend >= -1.0f && m.bend < 1.0f && m.mod >= 0.0f && m.mod <= 1.0f);
        assert_true(m.cc7 >= 0 && m.cc7 < 128 && m.cc11 >= 0 && m.cc11 < 128);
    }
}

/* ------------------------------------------------------------ SMF reader */

/* Format 1, division 480. Track 1: tempo 500000 us (120 bpm) at 0, 250000
 * at tick 480, a text meta event. Track 2: program change and note on 60 at
 * 0, a sysex, note off 60 at tick 240, note on 64 at 480, and by running
 * status note on 64 velocity 0 (an off) at 960. */
static const uint8_t SMF[] = {
    'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 1, 0, 2, 0x01, 0xE0,
    'M', 'T', 'r', 'k', 0, 0, 0, 25,
    0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,       /* tempo 500000 */
    0x83, 0x60, 0xFF, 0x51, 0x03, 0x03, 0xD0, 0x90, /* +480: tempo 250000 */
    0x00, 0xFF, 0x01, 0x02, 'h', 'i',               /* text */
    0x00, 0xFF, 0x2F, 0x00,                         /* end of track */
    'M', 'T', 'r', 'k', 0, 0, 0, 30,
    0x00, 0xC0, 0x28,                               /* program change (1 data byte) */
    0x00, 0x90, 60, 100,                            /* note on 60 */
    0x00, 0xF0, 0x02, 0x11, 0xF7,                   /* sysex, skipped */
    0x81, 0x70, 0x80, 60, 0,                        /* +240: note off 60 */
    0x81, 0x70, 0x90, 64, 90,                       /* +240 (tick 480): note on 64 */
    0x83, 0x60, 64, 0,                              /* +480 (960), running status: off */
    0x00, 0xFF, 0x2F, 0x00,
};

static void smf_events(void **state)
{
    (void)state;
    smf_event *ev;
    int n;
    assert_int_equal(smf_parse(SMF, sizeof SMF, "midi 't'", &ev, &n), 0);
    assert_int_equal(n, 5);
    const double t[5] = {0, 0, 0.25, 0.5, 0.75}; /* 480 ticks at 120 bpm = 0.5 s, then 0.25 s */
    const uint8_t st[5] = {0xC0, 0x90, 0x80, 0x90, 0x90};
    const uint8_t d1[5] = {0x28, 60, 60, 64, 64}, d2[5] = {0, 100, 0, 90, 0};
    for (int i = 0; i < n; i++) {
        assert_float_equal(ev[i].t, t[i], 1e-12);
        assert_int_equal(ev[i].status, st[i]);
        assert_int_equal(ev[i].d1, d1[i]);
        assert_int_equal(ev[i].d2, d2[i]);
    }
    free(ev);
}

static void smf_refusals(void **state)
{
    (void)state;
    uint8_t b[sizeof SMF];
    smf_event *ev = (smf_event *)1;
    int n = -1;
    struct {
        size_t at;
        uint8_t v;
        int code;
        const char *says;
    } cases[] = {
        {9, 2, OSCINE_E_UNSUPPORTED, "format 2"},
        {12, 0xE7, OSCINE_E_UNSUPPORTED, "SMPTE"},
        {56, 0x3C, OSCINE_E_FORMAT, "data byte without a status"}, /* first status of track 2 */
        {56, 0xF3, OSCINE_E_FORMAT, "status 0xF3"},
        {14, 'X', OSCINE_E_FORMAT, "track 1 missing"},
        {21, 200, OSCINE_E_FORMAT, "track 1 runs past the end"},
        {7, 5, OSCINE_E_FORMAT, "header"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(b, SMF, sizeof b);
        b[cases[k].at] = cases[k].v;
        int e = smf_parse(b, sizeof b, "midi 'x.mid'", &ev, &n);
        if (e != cases[k].code || !strstr(oscine_last_error(), cases[k].says) ||
            strncmp(oscine_last_error(), "midi 'x.mid'", 12))
            fail_msg("case %zu: %d '%s'", k, e, oscine_last_error());
        assert_null(ev);
        assert_int_equal(n, 0);
    }
    /* every truncation is refused (the lengths no longer add up) */
    for (size_t len = 0; len < sizeof SMF; len++) {
        assert_true(smf_parse(SMF, len, "m", &ev, &n) < 0);
        assert_null(ev);
    }
}

/* Random corruption: refused, or read within bounds (under ASan: no
 * out-of-bounds access anywhere). */
static void smf_corruption(void **state)
{
    (void)state;
    uint64_t r = 12345;
    uint8_t b[sizeof SMF];
    int ok = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(b, SMF, sizeof b);
        int flips = 1 + (int)((urand(&r) + 1.0f) * 2.0f);
        for (int f = 0; f < flips; f++) {
            size_t at = (size_t)((urand(&r) + 1.0f) * 0.5f * (float)(sizeof b - 1));
            b[at] = (uint8_t)((urand(&r) + 1.0f) * 128.0f);
        }
        size_t len = it % 5 ? sizeof b : (size_t)((urand(&r) + 1.0f) * 0.5f * sizeof b);
        smf_event *ev;
        int n;
        if (smf_parse(b, len, "m", &ev, &n) < 0)
            continue;
        ok++;
        for (int i = 0; i < n; i++) {
            assert_true(ev[i].t >= 0 && ev[i].t <= 86400 && (i == 0 || ev[i].t >= ev[i - 1].t));
            assert_true(ev[i].status >= 0x80 && ev[i].status < 0xF0);
            assert_true(ev[i].d1 < 0x80 && ev[i].d2 < 0x80);
        }
        free(ev);
    }
    print_message("%d of 20000 corrupted files still read\n", ok);
    assert_true(ok > 100); /* the corruption is not all caught by one check */
}

/* `oscine synth` on MIDI files: a corrupt one is a runtime failure (exit
 * 1, as any unreadable input; it was 2, a usage error), and a 42-byte file
 * whose one note ends 23 hours in is still rendered (the day limit stays)
 * but the length is told before the rendering starts, so it can be
 * stopped: Ctrl-C then leaves no output. */
static void cli_midi_files(void **state)
{
    const char *d = tmpdir_make();
    char mid[256], o[256], err[4096];
    snprintf(mid, sizeof mid, "%s/long.mid", d);
    snprintf(o, sizeof o, "%s/o.wav", d);
    /* one quarter note a tick, 16.777215 s a quarter (the slowest tempo):
     * note on at 0, note off 4936 ticks later (82812.3 s) */
    static const unsigned char song[42] = {
        'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 0, 1,
        'M', 'T', 'r', 'k', 0, 0, 0, 20,
        0, 0xFF, 0x51, 3, 0xFF, 0xFF, 0xFF,
        0, 0x90, 69, 100,
        0xA6, 0x48, 0x80, 69, 0,
        0, 0xFF, 0x2F, 0};
    FILE *f = fopen(mid, "wb");
    fwrite(song, 1, 40, f); /* cut inside the track */
    fclose(f);
    assert_int_equal(run_oscine(NULL, 0, err, sizeof err, "synth", mid, o, "--model", DDSP,
                                NULL), 1);
    assert_non_null(strstr(err, "long.mid"));
    f = fopen(mid, "wb");
    fwrite(song, 1, sizeof song, f);
    fclose(f);

    char log[256];
    snprintf(log, sizeof log, "%s/err.txt", d);
    const char *bin = getenv("OSCINE_BIN") ? getenv("OSCINE_BIN") : "build/oscine";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen(log, "w", stderr);
        execl(bin, bin, "synth", mid, o, "--model", DDSP, (char *)NULL);
        _exit(127);
    }
    const double secs = 4936 * 16.777215 + 2; /* the note, and the 2 s tail */
    char want[64];
    snprintf(want, sizeof want, "%d:%02d:%02d (%d s) to render", (int)secs / 3600,
             (int)secs / 60 % 60, (int)secs % 60, (int)secs);
    char *text = NULL;
    for (int w = 0; w < 500; w++) {
        usleep(20000);
        size_t n;
        free(text);
        text = (char *)read_file_bytes(log, &n);
        text = realloc(text, n + 1);
        text[n] = 0;
        if (strstr(text, "to render"))
            break;
    }
    print_message("%s", text);
    if (!strstr(text, want))
        fail_msg("stderr '%s', want '%s'", text, want);
    free(text);
    kill(pid, SIGINT);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    assert_false(path_exists(o));
    assert_int_equal(dir_count(d), 2); /* the MIDI file and the log */
    tmpdir_remove(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(notes_and_channels),
        cmocka_unit_test(sustain_pedal),
        cmocka_unit_test(controllers),
        cmocka_unit_test(any_bytes),
        cmocka_unit_test(smf_events),
        cmocka_unit_test(smf_refusals),
        cmocka_unit_test(smf_corruption),
        cmocka_unit_test(cli_midi_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
