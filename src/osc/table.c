/* table.c - see table.h. */
#include "osc/table.h"

#include "engine/stage.h"
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
int osc_stage_event(struct oscd *d, const struct osc_request *r);
int osc_stage_compound(struct oscd *d, const struct osc_request *r);
int osc_stage_model(struct oscd *d, const struct osc_request *r);

#define MAX_ENTRIES 128

static const osc_entry fixed[] = {
    {"/engine/gain", "f", -96, 24, 0, "dB", osc_engine_gain, "/done",
     "output gain after the chain, smoothed", 1},
    {"/engine/bypass", "i", 0, 1, 0, "", osc_engine_bypass, "/done",
     "1: crossfade to the input (delayed by the chain's latency), 0: back", 1},
    {"/engine/chain", "s", 0, 0, 0, "", osc_engine_chain, "/done (after the swap)",
     "replace the chain, e.g. \"denoise,gain\" (at least one stage; kept as written without "
     "spaces); built off the audio thread, crossfaded", 1},
    {"/preset/load", "s", 0, 0, 0, "", osc_preset_load, "/done",
     "load a preset by name (presets/NAME.osc); all lines or nothing", 0},
    {"/preset/save", "s", 0, 0, 0, "", osc_preset_save, "/done",
     "save the current settings as a preset in the user preset folder", 0},
    {"/status", "", 0, 0, 0, "", osc_status,
     "/status.reply i:rate i:buffer f:latency_ms f:cpu_% i:xruns s:chain f:uptime_s "
     "i:overruns",
     "engine status; xruns are counted by the audio server (any client can cause one), "
     "overruns are oscine's own callbacks that ran longer than their buffer", 0},
    {"/get", "s", 0, 0, 0, "", osc_get, "/value s:address f|i|s:value f|i:scheduled f:in_s",
     "read a setting back: the value in effect; while a timetagged change to it waits, the "
     "last one scheduled and the seconds until it applies follow (else the reply ends at value)",
     0},
    {"/notify", "i", 0, 1, 0, "", osc_notify, "/done; then /meter f:in_peak f:in_rms "
     "f:out_peak f:out_rms f:cpu_% i:xruns f:vad (-1: no stage estimates it), 20 per second",
     "1: send /meter messages to the sender (its host and port, or its TCP connection), 0: "
     "stop; a subscription lasts while the sender sends anything within the client timeout, "
     "and the oldest of 16 makes room for a new one", 0},
    {"/quit", "", 0, 0, 0, "", osc_quit, "/done", "fade out and stop the daemon", 0},
};

static osc_entry table[MAX_ENTRIES];
static osc_args args[MAX_ENTRIES];
static int count;

static void add_param(void *user, const char *stage, const char *address, const char *unit,
                      float min, float max, float def, const char *help)
{
    if (count >= MAX_ENTRIES)
        return;
    osc_entry *e = &table[count++];
    snprintf(e->path, sizeof e->path, "%s", address);
    const stage_class *k = stage_find(stage);
    int pi = -1;
    if (k)
        stage_find_param(k, address + strlen(stage) + 2, &pi);
    e->types = stage_param_whole(k, pi) ? "i" : "f";
    e->min = min;
    e->max = max;
    e->def = def;
    e->unit = unit;
    e->handler = osc_stage_param;
    e->reply = "/done";
    e->help = help;
    e->settable = 1;
}

/* Stage events and compound settings (engine/stage.h), and the model
 * switch of stages that have one. */
static void add_stage_extras(const stage_class *k)
{
    for (int j = 0; j < k->nevents && count < MAX_ENTRIES; j++) {
        const stage_event *ev = &k->events[j];
        osc_entry *e = &table[count];
        osc_args *a = &args[count++];
        snprintf(e->path, sizeof e->path, "/%s/%s", k->name, ev->name);
        e->types = ev->types;
        e->unit = "";
        e->handler = ev->params ? osc_stage_compound : osc_stage_event;
        e->reply = "/done";
        e->help = ev->help;
        a->names = ev->args;
        for (int i = 0; i < (int)strlen(ev->types) && i < OSC_MAX_ARGS; i++) {
            const stage_param *p = ev->params ? stage_find_param(k, ev->params[i], NULL) : NULL;
            a->min[i] = p ? p->min : ev->min[i];
            a->max[i] = p ? p->max : ev->max[i];
            if (p)
                snprintf(a->params[i], sizeof a->params[i], "/%s/%s", k->name, p->name);
            if (i == 0) {
                e->min = a->min[0];
                e->max = a->max[0];
                e->def = p ? p->def : a->min[0];
            }
        }
    }
    if (k->model_name && count < MAX_ENTRIES) {
        osc_entry *e = &table[count++];
        snprintf(e->path, sizeof e->path, "/%s/model", k->name);
        e->types = "s";
        e->unit = "";
        e->handler = osc_stage_model;
        e->reply = "/done (after the swap)";
        e->help = "weights for this stage: an instrument name (violin: ddsp-violin.osw) or a "
                  "file name, looked up in the model folders (a path only in a preset file); "
                  "the chain is rebuilt with it and crossfaded (held notes play on); kept in "
                  "presets, /get reads it";
        e->settable = 1;
    }
}

int osc_table_init(void)
{
    if (count)
        return 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        table[count++] = fixed[i];
    oscine_params_list(add_param, NULL);
    for (int i = 0; i < stage_class_count(); i++)
        add_stage_extras(stage_class_at(i));
    for (int i = 0; i < count; i++)
        if (strlen(table[i].types) == 1) {
            args[i].min[0] = table[i].min;
            args[i].max[0] = table[i].max;
        }
    return 0;
}

const osc_args *osc_table_args(const osc_entry *e)
{
    return e >= table && e < table + count ? &args[e - table] : NULL;
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
               "`oscine send ADDRESS [ARGS...]` sends one message and prints the reply\n"
               "(`oscine help send`); any OSC program works too, one that listens for the\n"
               "reply on the port it sent from (the daemon answers there).\n\n"
               "## Limits\n\n"
               "No single client can lock the others out. A client is a UDP host and port,\n"
               "or a TCP connection.\n\n"
               "- `/notify`: at most %d subscribers. Every packet from a subscriber renews\n"
               "  its lease; one silent for the client timeout (`oscine run\n"
               "  --client-timeout`, default %d s) is dropped, and when %d are subscribed\n"
               "  a new one replaces the one silent the longest. `/notify i 0` from the\n"
               "  same host and port (or connection) ends it at once.\n"
               "- Timetags: at most %d s ahead (later ones get `/fail`). At most %d\n"
               "  timetagged settings and events wait for their sample, %d of them from one\n"
               "  client; at most %d other timetagged commands wait, %d from one client.\n"
               "  A message beyond these gets `/fail ... too many scheduled messages`.\n"
               "- TCP: at most %d connections; when one more comes, the connection idle the\n"
               "  longest (by its last whole frame) is closed for it, and one with no whole\n"
               "  frame for the client timeout is closed. Replies are queued per connection\n"
               "  as whole frames (%d KiB): a client that stops reading loses its /meter\n"
               "  frames, and is disconnected when a reply does not fit.\n"
               "- Strings from clients and files are written to the log with control\n"
               "  characters escaped (`\\n`, `\\x1b`); `/fail` reasons never quote a file's\n"
               "  contents, and presets and models are opened only as regular files.\n\n",
               OSC_MAX_SUBS, OSC_CLIENT_TIMEOUT_S, OSC_MAX_SUBS, OSC_HORIZON_S, OSC_SCHED_MAX,
               OSC_SCHED_PER_CLIENT, OSC_DEFER_MAX, OSC_DEFER_PER_CLIENT, OSC_MAX_CONNS,
               OSC_OUTQ_BYTES / 1024);
    fprintf(f, "## Addresses\n\n"
               "| address | args | range | unit | default | reply | what |\n"
               "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < count; i++) {
        const osc_entry *e = &table[i];
        char range[128] = "", def[24] = "";
        int na = (int)strlen(e->types);
        for (int j = 0; j < na && (e->types[j] == 'f' || e->types[j] == 'i'); j++)
            snprintf(range + strlen(range), sizeof range - strlen(range), "%s%g..%g",
                     j ? ", " : "", (double)args[i].min[j], (double)args[i].max[j]);
        if (e->settable && na == 1 && range[0])
            snprintf(def, sizeof def, "%g", (double)e->def);
        fprintf(f, "| `%s` | %s | %s | %s | %s | `%s` | %s%s%s%s |\n", e->path,
                e->types[0] ? e->types : "-", range[0] ? range : "-",
                e->unit && e->unit[0] ? e->unit : "-", def[0] ? def : "-", e->reply, e->help,
                args[i].names && args[i].names[0] ? " (" : "",
                args[i].names && args[i].names[0] ? args[i].names : "",
                args[i].names && args[i].names[0] ? ")" : "");
    }
}
