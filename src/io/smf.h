/* smf.h - Standard MIDI Files (format 0 and 1): the channel messages of all
 * tracks as one list in time order, the tempo map applied.
 *
 * The reader is strict about structure and names what it refuses: a header
 * shorter than 6 bytes, format 2, SMPTE time division, a track that is not
 * "MTrk" or runs past the end, a bad variable-length quantity, a data byte
 * without a running status, system messages (0xF1-0xFE) inside a track,
 * bad meta or sysex lengths, data bytes with the top bit set, a file over a
 * day long. Meta events other than tempo (0x51) and sysex are skipped.
 */
#ifndef OSCINE_IO_SMF_H
#define OSCINE_IO_SMF_H

#include <stddef.h>
#include <stdint.h>

typedef struct smf_event {
    double t;          /* seconds from the start */
    uint8_t status;    /* 0x80..0xEF */
    uint8_t d1, d2;    /* data bytes (d2 = 0 for one-byte messages) */
} smf_event;

/* Parse the len bytes of a file. On success returns 0 with *out (malloc'd;
 * the caller frees it) holding *n events sorted by time; at equal ticks,
 * tempo changes first, then by track, then in file order. On failure a
 * negative OSCINE_E_* code (OSCINE_E_FORMAT, OSCINE_E_UNSUPPORTED,
 * OSCINE_E_NOMEM) with a message that starts with `what` (e.g. "midi
 * 'song.mid'") and names the track and byte. Thread: control. */
int smf_parse(const uint8_t *b, size_t len, const char *what, smf_event **out, int *n);

#endif
