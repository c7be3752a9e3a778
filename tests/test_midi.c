/* test_midi.c - the MIDI translator (engine/midi.h) shared by the LV2 synth
 * and `oscine synth`: what each message turns into, the sustain pedal, the
 * volume curve, and that any byte sequence stays within bounds. */
#include "util/util.h"

#include "engine/midi.h"

#include <math.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(notes_and_channels),
        cmocka_unit_test(sustain_pedal),
        cmocka_unit_test(controllers),
        cmocka_unit_test(any_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
