/* smf.c - Standard MIDI File reader (see smf.h). */
#include "io/smf.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SECONDS 86400.0

typedef struct raw {
    uint32_t tick;
    int track, seq;
    uint8_t st, d1, d2; /* st 0xFF: a tempo change */
    uint32_t tempo;     /* microseconds per quarter note */
} raw;

static int by_tick(const void *a, const void *b)
{
    const raw *x = a, *y = b;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    /* tempo changes first at a tick; then track order, then file order */
    if ((x->st == 0xFF) != (y->st == 0xFF))
        return x->st == 0xFF ? -1 : 1;
    if (x->track != y->track)
        return x->track - y->track;
    return x->seq - y->seq;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A variable-length quantity at b[*i], at most 4 bytes, within len. */
static int vlq(const uint8_t *b, size_t len, size_t *i, uint32_t *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++) {
        if (*i >= len)
            return -1;
        uint8_t c = b[(*i)++];
        *v = *v << 7 | (c & 0x7F);
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

static int push(raw **r, int *n, int *cap, raw e)
{
    if (*n == *cap) {
        raw *g = realloc(*r, sizeof **r * (size_t)(*cap *= 2));
        if (!g)
            return -1;
        *r = g;
    }
    e.seq = *n;
    (*r)[(*n)++] = e;
    return 0;
}

int smf_parse(const uint8_t *b, size_t len, const char *what, smf_event **out, int *n)
{
#define BAD(code, ...) (free(r), err_set(code, __VA_ARGS__))
    *out = NULL;
    *n = 0;
    raw *r = NULL;
    if (len < 14 || memcmp(b, "MThd", 4) || be32(b + 4) < 6 || be32(b + 4) > len - 8)
        return BAD(OSCINE_E_FORMAT, "%s: header missing or too short", what);
    int format = b[8] << 8 | b[9], ntrk = b[10] << 8 | b[11], div = b[12] << 8 | b[13];
    if (format > 1)
        return BAD(OSCINE_E_UNSUPPORTED, "%s: format %d (only 0 and 1 are supported)", what,
                   format);
    if (div & 0x8000 || div == 0)
        return BAD(OSCINE_E_UNSUPPORTED, "%s: SMPTE or zero time division is not supported",
                   what);
    size_t i = 8 + be32(b + 4);
    int nraw = 0, cap = 256;
    r = malloc(sizeof *r * (size_t)cap);
    if (!r)
        return BAD(OSCINE_E_NOMEM, "%s: out of memory", what);
    for (int tr = 0; tr < ntrk; tr++) {
        if (i > len || len - i < 8 || memcmp(b + i, "MTrk", 4))
            return BAD(OSCINE_E_FORMAT, "%s: track %d missing or not 'MTrk' at byte %zu", what,
                       tr + 1, i);
        size_t tlen = be32(b + i + 4);
        if (tlen > len - i - 8)
            return BAD(OSCINE_E_FORMAT, "%s: track %d runs past the end of the file", what,
                       tr + 1);
        size_t end = i + 8 + tlen;
        i += 8;
        uint32_t tick = 0;
        uint8_t run = 0;
        while (i < end) {
            uint32_t dt;
            if (vlq(b, end, &i, &dt) || i >= end)
                return BAD(OSCINE_E_FORMAT, "%s: track %d: bad delta time at byte %zu", what,
                           tr + 1, i);
            if (dt > UINT32_MAX - tick)
                return BAD(OSCINE_E_FORMAT, "%s: track %d: time overflows at byte %zu", what,
                           tr + 1, i);
            tick += dt;
            uint8_t st = b[i];
            if (st & 0x80)
                i++;
            else if (run)
                st = run;
            else
                return BAD(OSCINE_E_FORMAT,
                           "%s: track %d: data byte without a status at byte %zu", what, tr + 1,
                           i);
            uint32_t l;
            if (st == 0xFF) {
                if (i >= end)
                    return BAD(OSCINE_E_FORMAT, "%s: track %d: truncated meta event", what,
                               tr + 1);
                uint8_t type = b[i++];
                if (vlq(b, end, &i, &l) || l > end - i)
                    return BAD(OSCINE_E_FORMAT, "%s: track %d: bad meta event length", what,
                               tr + 1);
                if (type == 0x51 && l == 3 &&
                    push(&r, &nraw, &cap,
                         (raw){tick, tr, 0, 0xFF, 0, 0,
                               (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2]}))
                    return BAD(OSCINE_E_NOMEM, "%s: out of memory", what);
                i += l;
                if (type == 0x2F)
                    break;
                continue;
            }
            if (st == 0xF0 || st == 0xF7) {
                if (vlq(b, end, &i, &l) || l > end - i)
                    return BAD(OSCINE_E_FORMAT, "%s: track %d: bad sysex length", what,
                               tr + 1);
                i += l;
                continue;
            }
            if (st >= 0xF0)
                return BAD(OSCINE_E_FORMAT, "%s: track %d: status 0x%02X in a file", what,
                           tr + 1, st);
            run = st;
            int nd = (st & 0xF0) == 0xC0 || (st & 0xF0) == 0xD0 ? 1 : 2;
            if (end - i < (size_t)nd || (b[i] & 0x80) || (nd == 2 && (b[i + 1] & 0x80)))
                return BAD(OSCINE_E_FORMAT, "%s: track %d: bad data bytes at byte %zu", what,
                           tr + 1, i);
            if (push(&r, &nraw, &cap, (raw){tick, tr, 0, st, b[i], nd == 2 ? b[i + 1] : 0, 0}))
                return BAD(OSCINE_E_NOMEM, "%s: out of memory", what);
            i += (size_t)nd;
        }
        i = end;
    }
    qsort(r, (size_t)nraw, sizeof *r, by_tick);
    smf_event *ev = malloc(sizeof *ev * (size_t)(nraw ? nraw : 1));
    if (!ev)
        return BAD(OSCINE_E_NOMEM, "%s: out of memory", what);
    double t = 0, s_per_tick = 0.5 / div; /* 120 bpm until a tempo says */
    uint32_t last = 0;
    int cnt = 0;
    for (int k = 0; k < nraw; k++) {
        t += (r[k].tick - last) * s_per_tick;
        last = r[k].tick;
        if (t > MAX_SECONDS) {
            free(ev);
            return BAD(OSCINE_E_FORMAT, "%s: longer than a day", what);
        }
        if (r[k].st == 0xFF)
            s_per_tick = (r[k].tempo ? r[k].tempo : 500000) * 1e-6 / div;
        else
            ev[cnt++] = (smf_event){t, r[k].st, r[k].d1, r[k].d2};
    }
    free(r);
    *out = ev;
    *n = cnt;
    return 0;
#undef BAD
}
