/* table.c - see table.h. */
#include "osc/table.h"

#include "oscine.h"

#include <stdio.h>
#include <string.h>

int osc_engine_gain(struct oscd *d, const struct osc_request *r);
int osc_engine_bypass(struct oscd *d, const struct osc_request *r);
int osc_engine_chain(struct oscd *d, const struct osc_request *r);
int osc_stage_param(struct oscd *d, const struct osc_request *r);
int osc_preset_load(struct oscd *d, const struct osc_request *r);
int osc_preset_save(struct oscd *d, const struct osc_request *r);
int osc_status(struct oscd *d, const struct osc_request *r);
int osc_get(struct oscd *d, const struct osc_request *r);
int osc_notify(struct oscd *d, const struct osc_request *r);
int osc_quit(struct oscd *d, const struct osc_request *r);

#define MAX_ENTRIES 128

static const osc_entry fixed[] = {
    {"/engine/gain", "f", -96, 24, 0, "dB", osc_engine_gain, "/done",
     "output gain after the chain, smoothed", 1},
    {"/engine/bypass", "i", 0, 1, 0, "", osc_engine_bypass, "/done",
     "1: crossfade to the input (delayed by the chain's latency), 0: back", 1},
    {"/engine/chain", "s", 0, 0, 0, "", osc_engine_chain, "/done (after the swap)",
     "replace the chain, e.g. \"denoise,gain\"; built off the audio thread, crossfaded", 1},
    {"/preset/load", "s", 0, 0, 0, "", osc_preset_load, "/done",
     "load a preset by name (presets/NAME.osc); all lines or nothing", 0},
    {"/preset/save", "s", 0, 0, 0, "", osc_preset_save, "/done",
     "save the current settings as a preset in the user preset folder", 0},
    {"/status", "", 0, 0, 0, "", osc_status,
     "/status.reply i:rate i:buffer f:latency_ms f:cpu_% i:xruns s:chain f:uptime_s", "engine status", 0},
    {"/get", "s", 0, 0, 0, "", osc_get, "/value s:address f|i|s:value",
     "read a setting back", 0},
    {"/notify", "i", 0, 1, 0, "", osc_notify, "/done; then /meter f:in_peak f:in_rms "
     "f:out_peak f:out_rms f:cpu_% i:xruns f:vad (-1: no stage estimates it), 20 per second",
     "1: send /meter messages to the sender, 0: stop", 0},
    {"/quit", "", 0, 0, 0, "", osc_quit, "/done", "fade out and stop the daemon", 0},
};

static osc_entry table[MAX_ENTRIES];
static int count;

static void add_param(void *user, const char *stage, const char *address, const char *unit,
                      float min, float max, float def, const char *help)
{
    if (count >= MAX_ENTRIES)
        return;
    osc_entry *e = &table[count++];
    snprintf(e->path, sizeof e->path, "%s", address);
    e->types = "f";
    e->min = min;
    e->max = max;
    e->def = def;
    e->unit = unit;
    e->handler = osc_stage_param;
    e->reply = "/done";
    e->help = help;
    e->settable = 1;
}

int osc_table_init(void)
{
    if (count)
        return 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        table[count++] = fixed[i];
    oscine_params_list(add_param, NULL);
    return 0;
}

int osc_table_count(void) { return count; }
const osc_entry *osc_table_at(int i) { return i >= 0 && i < count ? &table[i] : NULL; }

const osc_entry *osc_table_find(const char *path)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(table[i].path, path))
            return &table[i];
    return NULL;
}

void osc_table_markdown(FILE *f)
{
    fprintf(f, "# OSC reference\n\n"
               "Generated from the address table in `src/osc/table.c` by `oscine help osc`;\n"
               "`test_osc` fails if this file and the table differ.\n\n"
               "The daemon (`oscine run`) listens on UDP 127.0.0.1:9000 by default\n"
               "(`--osc-port`, `--osc-host`, `--tcp`). Every accepted message gets the reply\n"
               "below; every rejected one gets `/fail s:address s:reason`. Numbers may be\n"
               "sent as int or float. Messages in a bundle with a future timetag take\n"
               "effect at that time: parameters at the exact sample (the audio block is\n"
               "split there), other commands within the 10 ms control tick.\n\n"
               "| address | args | range | unit | default | reply | what |\n"
               "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < count; i++) {
        const osc_entry *e = &table[i];
        char range[48] = "", def[24] = "";
        if (e->types[0] == 'f' || e->types[0] == 'i') {
            snprintf(range, sizeof range, "%g..%g", (double)e->min, (double)e->max);
            if (e->settable)
                snprintf(def, sizeof def, "%g", (double)e->def);
        }
        fprintf(f, "| `%s` | %s | %s | %s | %s | `%s` | %s |\n", e->path,
                e->types[0] ? e->types : "-", range[0] ? range : "-",
                e->unit && e->unit[0] ? e->unit : "-", def[0] ? def : "-", e->reply, e->help);
    }
}
