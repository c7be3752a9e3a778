/* midi.h - MIDI channel messages as the synth stage's notes and controls.
 *
 * One translator for both MIDI front ends: the LV2 synth (live MIDI, on the
 * audio thread) and `oscine synth` (Standard MIDI Files). All channels play
 * the one synth. What a message does:
 *
 *   note on (velocity > 0)   MIDI_NOTE_ON, value = velocity / 127
 *   note off, note on vel 0  MIDI_NOTE_OFF for a sounding note; while the
 *                            sustain pedal is down the release waits for it
 *   pitch bend               MIDI_BEND, value -1..1 (of the front end's range)
 *   CC 1 mod wheel           MIDI_MOD, value 0..1
 *   CC 7 volume, 11 expr.    MIDI_VOLUME, value = midi_volume_db()
 *   CC 64 sustain (>= 64)    pedal up: MIDI_NOTE_OFF for each note it held
 *   CC 120, 123              MIDI_ALL_OFF
 *
 * Everything else is ignored. The state also keeps the current bend, mod
 * wheel and volume, for front ends that poll instead of listening.
 * Thread: any (the caller's); no allocation, no I/O, bounded time. */
#ifndef OSCINE_ENGINE_MIDI_H
#define OSCINE_ENGINE_MIDI_H

typedef enum midi_kind {
    MIDI_NOTE_ON,
    MIDI_NOTE_OFF,
    MIDI_ALL_OFF,
    MIDI_BEND,
    MIDI_MOD,
    MIDI_VOLUME,
    MIDI_KIND_COUNT
} midi_kind;

typedef struct midi_action {
    midi_kind kind;
    int note;    /* MIDI_NOTE_ON / MIDI_NOTE_OFF: 0..127 */
    float value; /* see the table above */
} midi_action;

typedef void (*midi_sink)(void *user, const midi_action *a);

typedef struct midi_state {
    float vel[128];          /* > 0: the note sounds (down, or held by the pedal) */
    unsigned char held[128]; /* released while the pedal was down */
    int pedal;
    int cc7, cc11;           /* 0..127 */
    float bend, mod;         /* -1..1, 0..1 */
} midi_state;

/* At rest: no notes, pedal up, volume and expression full, no bend. */
void midi_reset(midi_state *m);

/* One channel message: status byte (0x80..0xEF, channel ignored) and its
 * data bytes (d2 = 0 for one-byte messages). Calls sink for each action. */
void midi_message(midi_state *m, unsigned status, unsigned d1, unsigned d2, midi_sink sink,
                  void *user);

/* Data bytes that follow a channel status byte: 1 (program change, channel
 * pressure) or 2. */
int midi_data_bytes(unsigned status);

/* CC 7 and CC 11 as one gain, dB: 40 log10(v / 127) each, each >= -60. */
float midi_volume_db(const midi_state *m);

#endif
