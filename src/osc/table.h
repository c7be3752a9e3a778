/* table.h - the one table of OSC addresses: path, type tags, range, unit,
 * handler and help. The daemon dispatches from it, presets are checked
 * against it, and docs/osc.md is generated from it (`oscine help osc`,
 * checked by test_osc). Stage parameters are added from the stage registry,
 * so a new stage's parameters appear here without editing this table. */
#ifndef OSCINE_OSC_TABLE_H
#define OSCINE_OSC_TABLE_H

#include <stdio.h>

struct oscd;
struct osc_request;

typedef int (*osc_handler)(struct oscd *d, const struct osc_request *r);

typedef struct osc_entry {
    char path[64];
    const char *types;   /* one letter per argument: "f" float, "i" int, "s" string;
                          * "" none, "if" int then float, ... (osc_args) */
    float min, max, def; /* for f and i */
    const char *unit;
    osc_handler handler;
    const char *reply;   /* what the sender gets back */
    const char *help;
    int settable;        /* a value kept in the state (presets, /get) */
} osc_entry;

#define OSC_MAX_ARGS 4

/* What one client of the daemon may hold (a client: a UDP host and port, or
 * a TCP connection), documented in docs/osc.md from these. */
#define OSC_MAX_SUBS 16          /* /notify subscribers; the longest silent makes room */
#define OSC_MAX_CONNS 16         /* TCP connections; the longest idle makes room */
#define OSC_SCHED_MAX 128        /* timetagged settings and events (LIVE_PENDING) */
#define OSC_SCHED_PER_CLIENT 32
#define OSC_DEFER_MAX 256        /* other timetagged commands, held on the control side */
#define OSC_DEFER_PER_CLIENT 64
#define OSC_HORIZON_S 60         /* furthest a timetag may be ahead */
#define OSC_CLIENT_TIMEOUT_S 300 /* default lease and TCP idle time (--client-timeout) */
#define OSC_OUTQ_BYTES 65536     /* replies queued for one TCP client */

/* Per-argument detail of an entry with numeric arguments (every entry has
 * one; for a single-argument entry it repeats min and max). Entries of more
 * than one argument come from stage events (engine/stage.h, stage_event):
 * an event ("/synth/note_on if") or a compound setting ("/synth/adsr ffff",
 * whose arguments set the parameters named in params). */
typedef struct osc_args {
    float min[OSC_MAX_ARGS], max[OSC_MAX_ARGS];
    const char *names;               /* "i:note f:velocity" for the docs, or NULL */
    char params[OSC_MAX_ARGS][64];   /* compound setting: each argument's address */
} osc_args;

/* Build the table (static entries + stage parameters, events and model
 * switches). Thread: control. */
int osc_table_init(void);
int osc_table_count(void);
const osc_entry *osc_table_at(int i);
const osc_entry *osc_table_find(const char *path);
const osc_args *osc_table_args(const osc_entry *e);

/* Markdown reference (docs/osc.md). */
void osc_table_markdown(FILE *f);

#endif
