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
    const char *types;   /* "" no argument, "f" float, "i" int, "s" string */
    float min, max, def; /* for f and i */
    const char *unit;
    osc_handler handler;
    const char *reply;   /* what the sender gets back */
    const char *help;
    int settable;        /* a value kept in the state (presets, /get) */
} osc_entry;

/* Build the table (static entries + stage parameters). Thread: control. */
int osc_table_init(void);
int osc_table_count(void);
const osc_entry *osc_table_at(int i);
const osc_entry *osc_table_find(const char *path);

/* Markdown reference (docs/osc.md). */
void osc_table_markdown(FILE *f);

#endif
