/* midi.c - MIDI channel messages as the synth stage's notes and controls
 * (see midi.h). */
#include "engine/midi.h"

#include <math.h>
#include <string.h>

void midi_reset(midi_state *m)
{
    memset(m, 0, sizeof *m);
    m->cc7 = m->cc11 = 127;
}

int midi_data_bytes(unsigned status)
{
    unsigned k = status & 0xF0;
    return k == 0xC0 || k == 0xD0 ? 1 : 2;
}

/* A volume-type controller as dB: 40 log10(v / 127) puts CC 64 near -12 dB,
 * the usual curve of General MIDI volume. */
static float cc_db(int v) { return v <= 0 ? -60.0f : fmaxf(-60.0f, 40.0f * log10f(v / 127.0f)); }

float midi_volume_db(const midi_state *m) { return cc_db(m->cc7) + cc_db(m->cc11); }

static void emit(midi_sink sink, void *user, midi_kind kind, int note, float value)
{
    midi_action a = {kind, note, value};
    sink(user, &a);
}

static void release(midi_state *m, int note, midi_sink sink, void *user)
{
    if (m->vel[note] <= 0)
        return;
    if (m->pedal) {
        m->held[note] = 1;
        return;
    }
    m->vel[note] = 0;
    emit(sink, user, MIDI_NOTE_OFF, note, 0);
}

void midi_message(midi_state *m, unsigned status, unsigned d1, unsigned d2, midi_sink sink,
                  void *user)
{
    d1 &= 0x7F;
    d2 &= 0x7F;
    switch (status & 0xF0) {
    case 0x90:
        if (!d2) { /* velocity 0 is a note off */
            release(m, (int)d1, sink, user);
            break;
        }
        m->vel[d1] = d2 / 127.0f;
        m->held[d1] = 0;
        emit(sink, user, MIDI_NOTE_ON, (int)d1, m->vel[d1]);
        break;
    case 0x80:
        release(m, (int)d1, sink, user);
        break;
    case 0xE0:
        m->bend = (float)((int)(d2 << 7 | d1) - 8192) / 8192.0f;
        emit(sink, user, MIDI_BEND, 0, m->bend);
        break;
    case 0xB0:
        if (d1 == 1) {
            m->mod = d2 / 127.0f;
            emit(sink, user, MIDI_MOD, 0, m->mod);
        } else if (d1 == 7 || d1 == 11) {
            *(d1 == 7 ? &m->cc7 : &m->cc11) = (int)d2;
            emit(sink, user, MIDI_VOLUME, 0, midi_volume_db(m));
        } else if (d1 == 64) {
            int down = d2 >= 64;
            if (m->pedal && !down) {
                m->pedal = 0;
                for (int n = 0; n < 128; n++)
                    if (m->held[n]) {
                        m->held[n] = 0;
                        release(m, n, sink, user);
                    }
            }
            m->pedal = down;
        } else if (d1 == 120 || d1 == 123) {
            memset(m->vel, 0, sizeof m->vel);
            memset(m->held, 0, sizeof m->held);
            emit(sink, user, MIDI_ALL_OFF, 0, 0);
        }
        break;
    default:
        break;
    }
}
