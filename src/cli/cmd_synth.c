/* cmd_synth.c - `oscine synth SCORE OUT`: play a score of timed OSC messages
 * through the `synth` stage offline, at any rate, with every event at its
 * exact sample (the same stage, events and parameters as the daemon).
 *
 * Score: one message per line, "TIME ADDRESS [NUMBER]...", TIME in seconds
 * from the start (lines may come in any order; equal times keep their
 * order), '#' starts a comment:
 *     0.000 /synth/adsr 30 200 0.7 400
 *     0.500 /synth/note_on 69 0.8
 *     1.500 /synth/note_off 69
 * ADDRESS is a synth parameter (one number) or event (engine/stage.h). The
 * whole score is checked before anything is rendered; a bad line is a usage
 * error naming the file and line. A Standard MIDI File (told by "MThd") is
 * turned into the same events (read_midi).
 */
#include "cli.h"

#include "engine/chainrt.h"
#include "engine/midi.h"
#include "engine/stage.h"
#include "io/audiofile.h"
#include "io/smf.h"
#include "oscine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BLOCK 512
#define MAX_LINE 1024

typedef struct score_ev {
    double t;
    int line, seq, nargs, is_event;
    char addr[64];
    float args[STAGE_EVENT_MAX_ARGS];
} score_ev;

static volatile sig_atomic_t synth_stop;
static void synth_signal(int sig) { synth_stop = 1; }

static int by_time(const void *a, const void *b)
{
    const score_ev *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->seq - y->seq;
}

/* One line into ev (1), blank/comment (0), or a usage error (-1, printed). */
static int parse_line(const char *path, int lineno, char *text, score_ev *ev)
{
    char *hash = strchr(text, '#');
    if (hash)
        *hash = 0;
    char *save = NULL, *tok = strtok_r(text, " \t\r\n", &save);
    if (!tok)
        return 0;
    float t;
    if (cli_parse_float(tok, &t) || t < 0 || t > 86400)
        return cli_fail(EXIT_USAGE, "score '%s' line %d: time '%s' is not 0..86400 seconds",
                        path, lineno, tok), -1;
    ev->t = t;
    ev->line = lineno;
    char *addr = strtok_r(NULL, " \t\r\n", &save);
    if (!addr)
        return cli_fail(EXIT_USAGE, "score '%s' line %d: no address after the time", path,
                        lineno), -1;
    if (strlen(addr) >= sizeof ev->addr)
        return cli_fail(EXIT_USAGE, "score '%s' line %d: address too long", path, lineno), -1;
    strcpy(ev->addr, addr);
    const char *slash = addr[0] == '/' ? strchr(addr + 1, '/') : NULL;
    char stage[32] = "";
    if (slash && slash - addr - 1 < (long)sizeof stage)
        snprintf(stage, sizeof stage, "%.*s", (int)(slash - addr - 1), addr + 1);
    if (strcmp(stage, "synth"))
        return cli_fail(EXIT_USAGE, "score '%s' line %d: '%s' is not a /synth/ address "
                        "(see 'oscine help osc')", path, lineno, addr), -1;
    const stage_class *k = stage_find(stage);
    int pi = -1, ei = -1;
    const stage_param *p = stage_find_param(k, slash + 1, &pi);
    const stage_event *e = p ? NULL : stage_find_event(k, slash + 1, &ei);
    if (!p && !e && !strcmp(addr, "/synth/model"))
        return cli_fail(EXIT_USAGE, "score '%s' line %d: /synth/model loads weights, which a "
                        "score cannot do mid-way; give the instrument with --model", path,
                        lineno), -1;
    if (!p && !e)
        return cli_fail(EXIT_USAGE, "score '%s' line %d: unknown address '%s' (see 'oscine "
                        "help osc')", path, lineno, addr), -1;
    int want = p ? 1 : (int)strlen(e->types);
    ev->nargs = 0;
    for (char *a; (a = strtok_r(NULL, " \t\r\n", &save));) {
        if (ev->nargs == want)
            return cli_fail(EXIT_USAGE, "score '%s' line %d: %s takes %d number%s", path,
                            lineno, addr, want, want == 1 ? "" : "s"), -1;
        int pe = cli_parse_float(a, &ev->args[ev->nargs]);
        if (pe)
            return cli_fail(EXIT_USAGE, "score '%s' line %d: '%s' is %s", path, lineno, a,
                            cli_float_why(pe)), -1;
        ev->nargs++;
    }
    if (ev->nargs != want)
        return cli_fail(EXIT_USAGE, "score '%s' line %d: %s takes %d number%s, got %d", path,
                        lineno, addr, want, want == 1 ? "" : "s", ev->nargs), -1;
    ev->is_event = e != NULL;
    for (int i = 0; i < want; i++) {
        const stage_param *q = p;
        int qi = pi;
        if (e && e->params)
            q = stage_find_param(k, e->params[i], &qi);
        float lo = q ? q->min : e->min[i], hi = q ? q->max : e->max[i];
        int whole = q ? stage_param_whole(k, qi) : e->types[i] == 'i';
        float v = ev->args[i];
        if (v < lo || v > hi || (whole && v != floorf(v)))
            return cli_fail(EXIT_USAGE, "score '%s' line %d: %s argument %d = %g out of range "
                            "%g..%g%s", path, lineno, addr, i + 1, (double)v, (double)lo,
                            (double)hi, whole ? " (integer)" : ""), -1;
    }
    return 1;
}

/* The score text in f (open, at its start; closed here). */
static int read_score(const char *path, FILE *f, score_ev **out, int *n)
{
    int cap = 64, cnt = 0, lineno = 0, code = EXIT_OK;
    score_ev *ev = malloc(sizeof *ev * (size_t)cap);
    char line[MAX_LINE];
    while (ev && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            code = cli_fail(EXIT_USAGE, "score '%s' line %d: longer than %d bytes", path,
                            lineno, MAX_LINE - 2);
            break;
        }
        if (cnt == cap) {
            score_ev *g = realloc(ev, sizeof *ev * (size_t)(cap *= 2));
            if (!g) {
                free(ev);
                ev = NULL;
                break;
            }
            ev = g;
        }
        int r = parse_line(path, lineno, line, &ev[cnt]);
        if (r < 0) {
            code = EXIT_USAGE;
            break;
        }
        if (r > 0) {
            ev[cnt].seq = cnt;
            cnt++;
        }
    }
    fclose(f);
    if (!ev)
        return cli_fail(EXIT_RUNTIME, "out of memory");
    if (code) {
        free(ev);
        return code;
    }
    qsort(ev, (size_t)cnt, sizeof *ev, by_time);
    *out = ev;
    *n = cnt;
    return EXIT_OK;
}

/* ------------------------------------------------------------ MIDI files */

#define MIDI_MAX_BYTES (16 << 20)

static int midi_add(score_ev **ev, int *n, int *cap, double t, const char *addr, int is_event,
                    int nargs, float a0, float a1)
{
    if (*n == *cap) {
        score_ev *g = realloc(*ev, sizeof **ev * (size_t)(*cap *= 2));
        if (!g)
            return -1;
        *ev = g;
    }
    score_ev *e = &(*ev)[*n];
    memset(e, 0, sizeof *e);
    e->t = t;
    e->seq = *n;
    e->is_event = is_event;
    e->nargs = nargs;
    e->args[0] = a0;
    e->args[1] = a1;
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    (*n)++;
    return 0;
}

/* The MIDI translator's actions as score events at time t. */
typedef struct midi_sink_ctx {
    score_ev **ev;
    int *n, *cap;
    double t;
    int err;
} midi_sink_ctx;

static void midi_to_score(void *user, const midi_action *a)
{
    midi_sink_ctx *c = user;
    static const char *addr[MIDI_KIND_COUNT] = {
        [MIDI_NOTE_ON] = "/synth/note_on",  [MIDI_NOTE_OFF] = "/synth/note_off",
        [MIDI_ALL_OFF] = "/synth/all_notes_off", [MIDI_BEND] = "/synth/bend",
        [MIDI_MOD] = "/synth/vibrato_depth", [MIDI_VOLUME] = "/synth/loudness"};
    int is_event = a->kind <= MIDI_ALL_OFF, nargs = a->kind == MIDI_NOTE_ON ? 2 : 1;
    float a0 = a->value, a1 = 0;
    if (a->kind == MIDI_NOTE_ON || a->kind == MIDI_NOTE_OFF) {
        a0 = (float)a->note;
        a1 = a->value;
    } else if (a->kind == MIDI_ALL_OFF) {
        nargs = 0;
    } else if (a->kind == MIDI_BEND) {
        a0 = 2.0f * a->value; /* +-2 semitones */
    } else if (a->kind == MIDI_MOD) {
        a0 = 50.0f * a->value; /* up to 50 cents */
    } else {
        a0 = fmaxf(-60.0f, a->value);
    }
    if (!c->err)
        c->err = midi_add(c->ev, c->n, c->cap, c->t, addr[a->kind], is_event, nargs, a0, a1);
}

/* A Standard MIDI File (io/smf.h) as score events, every channel into the
 * one synth, through the MIDI translator (engine/midi.h): notes, pitch bend
 * (+-2 semitones), CC 1 (vibrato depth 0..50 cents), CC 7 and 11
 * (loudness), CC 64 (sustain pedal), CC 120/123 (all notes off); tempo
 * changes from any track. */
static int read_midi(const char *path, const uint8_t *b, size_t len, score_ev **out, int *n)
{
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "midi '%s'", path);
    smf_event *in = NULL;
    int nin = 0, e = smf_parse(b, len, what, &in, &nin);
    if (e) /* a corrupt file, like any unreadable input: a runtime failure */
        return cli_fail(EXIT_RUNTIME, "%s", oscine_last_error());
    int cap = 64, cnt = 0;
    score_ev *ev = malloc(sizeof *ev * (size_t)cap);
    midi_state mid;
    midi_reset(&mid);
    midi_sink_ctx sink = {&ev, &cnt, &cap, 0, !ev};
    for (int k = 0; k < nin && !sink.err; k++) {
        sink.t = in[k].t;
        midi_message(&mid, in[k].status, in[k].d1, in[k].d2, midi_to_score, &sink);
    }
    free(in);
    if (sink.err) {
        free(ev);
        return cli_fail(EXIT_RUNTIME, "out of memory");
    }
    *out = ev;
    *n = cnt;
    return EXIT_OK;
}

/* A score file or a MIDI file (by its first bytes, "MThd"). */
static int read_input(const char *path, score_ev **out, int *n)
{
    /* without blocking: a FIFO would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(EXIT_RUNTIME, "score '%s': cannot open: %s", path, strerror(errno));
    struct stat st = {0};
    FILE *f = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) || !(f = fdopen(fd, "rb"))) {
        int dir = S_ISDIR(st.st_mode);
        close(fd);
        return cli_fail(EXIT_RUNTIME, "score '%s': %s", path,
                        dir ? "is a directory" : "not a regular file (a pipe or device)");
    }
    char head[512];
    size_t got = fread(head, 1, sizeof head, f);
    if (got < 4 || memcmp(head, "MThd", 4)) {
        if (memchr(head, 0, got)) { /* a WAV, an image...: neither text nor MIDI */
            fclose(f);
            return cli_fail(EXIT_RUNTIME, "score '%s': a binary file that is not MIDI (a "
                            "score is text: 'TIME ADDRESS ARGS' per line)", path);
        }
        rewind(f);
        return read_score(path, f, out, n);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0 || len > MIDI_MAX_BYTES) {
        fclose(f);
        return cli_fail(EXIT_RUNTIME, "midi '%s': larger than %d MB", path, MIDI_MAX_BYTES >> 20);
    }
    uint8_t *b = malloc((size_t)len);
    if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        fclose(f);
        return cli_fail(EXIT_RUNTIME, "midi '%s': cannot read", path);
    }
    fclose(f);
    int code = read_midi(path, b, (size_t)len, out, n);
    free(b);
    if (!code)
        qsort(*out, (size_t)*n, sizeof **out, by_time);
    return code;
}

int cmd_synth(int argc, char **argv)
{
    const char *pos[2], *model = NULL;
    int npos = 0;
    long rate = 48000;
    float tail = 2.0f;
    oscine_sample_type samples = OSCINE_SAMPLES_PCM24;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model")) {
            if (!v || !v[0])
                return cli_fail(EXIT_USAGE, "--model needs a name (violin) or a path");
            model = argv[++i];
        } else if (!strcmp(a, "--rate")) {
            if (!v || cli_parse_int(v, 8000, 192000, &rate))
                return cli_fail(EXIT_USAGE, "--rate '%s': use 8000..192000 Hz", v ? v : "");
            i++;
        } else if (!strcmp(a, "--tail")) {
            if (!v || cli_parse_float(v, &tail) || tail < 0 || tail > 60)
                return cli_fail(EXIT_USAGE, "--tail '%s': use 0..60 seconds", v ? v : "");
            i++;
        } else if (!strcmp(a, "--bits")) {
            if (v && !strcmp(v, "16"))
                samples = OSCINE_SAMPLES_PCM16;
            else if (v && !strcmp(v, "24"))
                samples = OSCINE_SAMPLES_PCM24;
            else if (v && !strcmp(v, "32"))
                samples = OSCINE_SAMPLES_PCM32;
            else if (v && !strcmp(v, "float"))
                samples = OSCINE_SAMPLES_FLOAT;
            else
                return cli_fail(EXIT_USAGE, "--bits '%s': use 16, 24, 32 or float", v ? v : "");
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "synth: unknown flag '%s' (see 'oscine help synth')", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_fail(EXIT_USAGE, "synth: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_fail(EXIT_USAGE, "synth: need SCORE and OUT (see 'oscine help synth')");
    const char *score = pos[0], *out_path = pos[1];
    char out_real[4096];
    int te = out_target_check(score, out_path, out_real, sizeof out_real);
    if (te)
        return cli_fail_lib(te == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, te, NULL);
    int sf_format, bits;
    int e = choose_output_format(out_path, OSCINE_FORMAT_SAME, samples,
                                 SF_FORMAT_WAV | SF_FORMAT_FLOAT, &sf_format, &bits);
    if (e)
        return cli_fail_lib(EXIT_USAGE, e, NULL);
    score_ev *ev = NULL;
    int nev = 0;
    int code = read_input(score, &ev, &nev);
    if (code)
        return code;
    if (nev == 0) {
        free(ev);
        return cli_fail(EXIT_RUNTIME, "synth: '%s' holds no messages (a score: 'TIME ADDRESS ARGS' "
                        "per line; or a MIDI file); '%s' not written", score, out_path);
    }

    oscine_model_path mp = {"synth", model};
    oscine_chain_config cc = {.stages = "synth", .sample_rate = (int)rate, .channels = 1,
                              .max_block = BLOCK, .models = &mp, .nmodels = model != NULL};
    oscine_chain *c = NULL;
    out_file of = {0};
    int opened = 0;
    float *zero = calloc(BLOCK, sizeof(float)), *buf = calloc(BLOCK, sizeof(float));
    code = EXIT_RUNTIME;
    if (!zero || !buf) {
        cli_fail(EXIT_RUNTIME, "out of memory");
        goto done;
    }
    if ((e = oscine_chain_create(&c, &cc))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto done;
    }
    int64_t end = (int64_t)llround(((nev ? ev[nev - 1].t : 0.0) + tail) * rate), t = 0;
    struct sigaction sa = {.sa_handler = synth_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* A short file can ask for hours (a MIDI file's last event a day in):
     * say so before spending them, so the user can stop it. */
    if (end > 3600 * rate && !cli_quiet) {
        long long sec = (long long)(end / rate);
        fprintf(stderr, "oscine: %s: %lld:%02lld:%02lld (%lld s) to render, its last message "
                "at %.1f s; Ctrl-C stops it\n", score, sec / 3600, sec / 60 % 60, sec % 60,
                sec, nev ? ev[nev - 1].t : 0.0);
    }
    if ((e = out_open(&of, out_real, sf_format, (int)rate, 1, 1, end))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto restore;
    }
    opened = 1;
    float peak = 0;
    for (int k = 0; t < end || k < nev;) {
        int64_t next = k < nev ? llround(ev[k].t * rate) : end;
        if (next <= t && k < nev) {
            e = ev[k].is_event ? chain_event(c, ev[k].addr, ev[k].args, ev[k].nargs)
                               : oscine_chain_set(c, ev[k].addr, ev[k].args[0]);
            if (e) {
                cli_fail_lib(EXIT_RUNTIME, e, "score line");
                goto restore;
            }
            k++;
            continue;
        }
        int n = next - t < BLOCK ? (int)(next - t) : BLOCK;
        const float *in[1] = {zero};
        float *outp[1] = {buf};
        oscine_chain_process(c, in, outp, n);
        for (int i = 0; i < n; i++)
            peak = fabsf(buf[i]) > peak ? fabsf(buf[i]) : peak;
        if ((e = out_write(&of, buf, n))) {
            cli_fail_lib(EXIT_RUNTIME, e, NULL);
            goto restore;
        }
        t += n;
        if (synth_stop) {
            cli_fail(EXIT_RUNTIME, "synth: interrupted; '%s' not written", out_path);
            goto restore;
        }
    }
    int64_t clipped = of.clipped;
    opened = 0;
    if ((e = out_close(&of, 1))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto restore;
    }
    if (!cli_quiet) {
        if (peak > 0.0)
            fprintf(stderr, "oscine: %s: %d messages, %.2f s at %ld Hz, peak %.1f dBFS\n",
                    out_path, nev, (double)end / rate, rate, 20.0 * log10(peak));
        else
            fprintf(stderr, "oscine: %s: %d messages, %.2f s at %ld Hz, silent (no note sounds)\n",
                    out_path, nev, (double)end / rate, rate);
    }
    cli_warn_clipped(out_path, clipped, "lower /synth/loudness");
    code = EXIT_OK;
restore:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
done:
    if (opened)
        out_close(&of, 0);
    oscine_chain_destroy(c);
    free(ev);
    free(zero);
    free(buf);
    return code;
}
