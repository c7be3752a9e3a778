/* cmd_process.c - `oscine process IN OUT [...]`. */
#include "cli.h"

#include "oscine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SETS 64

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct progress {
    int show;
    int64_t total;
    int last_pct;
} progress;

static int on_progress(void *user, int64_t done, int64_t total)
{
    progress *p = user;
    if (stop_requested)
        return 1;
    if (!p->show)
        return 0;
    int pct = (int)(100 * done / (total ? total : 1));
    if (pct != p->last_pct) {
        int bar = pct * 40 / 100;
        fprintf(stderr, "\r[%.*s%*s] %3d%%", bar, "========================================",
                40 - bar, "", pct);
        if (pct == 100)
            fputc('\n', stderr);
        p->last_pct = pct;
    }
    return 0;
}

int cmd_process(int argc, char **argv)
{
    return process_main(argc, argv, NULL);
}

/* `oscine denoise IN OUT [--mix X] [--limit-db N] [--model PATH] ...`:
 * process with the denoise chain, its flags turned into --set. */
int cmd_denoise(int argc, char **argv)
{
    char *args[128];
    int n = 0;
    args[n++] = argv[0];
    static char setbuf[2][32];
    for (int i = 1; i < argc && n < 120; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--mix") || !strcmp(a, "--limit-db")) {
            if (i + 1 >= argc)
                return cli_fail(EXIT_USAGE, "%s needs a value", a);
            float v;
            int pe = cli_parse_float(argv[i + 1], &v);
            if (pe)
                return cli_fail(EXIT_USAGE, "%s '%s': %s", a, argv[i + 1], cli_float_why(pe));
            int k = a[2] == 'm' ? 0 : 1;
            snprintf(setbuf[k], sizeof setbuf[k], "%s", k ? "/denoise/limit_db" : "/denoise/mix");
            args[n++] = "--set";
            args[n++] = setbuf[k];
            args[n++] = argv[++i];
        } else if (!strcmp(a, "--chain") || !strcmp(a, "--set")) {
            return cli_fail(EXIT_USAGE, "denoise: %s belongs to 'oscine process' (e.g. "
                            "oscine process IN OUT --chain denoise,gain)", a);
        } else {
            args[n++] = argv[i];
        }
    }
    args[n] = NULL;
    return process_main(n, args, "denoise");
}

int process_main(int argc, char **argv, const char *chain)
{
    const char *pos[2];
    int npos = 0;
    const char *addr[MAX_SETS];
    float vals[MAX_SETS];
    int nset = 0;
    oscine_file_job job = {.stages = chain ? chain : "passthrough", .dither = 1};
    oscine_model_path models[8];
    int nmodels = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--chain")) {
            if (!v)
                return cli_fail(EXIT_USAGE, "--chain needs a value, e.g. --chain passthrough,gain");
            if (!v[0]) /* the library's default, but never what a user means */
                return cli_fail(EXIT_USAGE, "--chain '': give at least one stage, e.g. "
                                "--chain passthrough (see 'oscine stages')");
            job.stages = v;
            i++;
        } else if (!strcmp(a, "--set")) {
            if (i + 2 >= argc)
                return cli_fail(EXIT_USAGE, "--set needs an address and a value, e.g. "
                                "--set /gain/db -6");
            if (nset == MAX_SETS)
                return cli_fail(EXIT_USAGE, "--set: at most %d", MAX_SETS);
            int pe = cli_parse_float(argv[i + 2], &vals[nset]);
            if (pe)
                return cli_fail(EXIT_USAGE, "--set %s: '%s' is %s", v, argv[i + 2],
                                cli_float_why(pe));
            addr[nset++] = v;
            i += 2;
        } else if (!strcmp(a, "--format")) {
            if (!v)
                return cli_fail(EXIT_USAGE, "--format needs wav or flac");
            if (!strcmp(v, "wav"))
                job.format = OSCINE_FORMAT_WAV;
            else if (!strcmp(v, "flac"))
                job.format = OSCINE_FORMAT_FLAC;
            else
                return cli_fail(EXIT_USAGE, "--format '%s': use wav or flac", v);
            i++;
        } else if (!strcmp(a, "--rate")) {
            long r;
            if (!v || cli_parse_int(v, 8000, 192000, &r))
                return cli_fail(EXIT_USAGE, "--rate '%s': give a sample rate 8000..192000 Hz",
                                v ? v : "");
            job.out_rate = (int)r;
            i++;
        } else if (!strcmp(a, "--bits")) {
            if (!v)
                return cli_fail(EXIT_USAGE, "--bits needs 16, 24, 32 or float");
            if (!strcmp(v, "16"))
                job.samples = OSCINE_SAMPLES_PCM16;
            else if (!strcmp(v, "24"))
                job.samples = OSCINE_SAMPLES_PCM24;
            else if (!strcmp(v, "32"))
                job.samples = OSCINE_SAMPLES_PCM32;
            else if (!strcmp(v, "float"))
                job.samples = OSCINE_SAMPLES_FLOAT;
            else
                return cli_fail(EXIT_USAGE, "--bits '%s': use 16, 24, 32 or float", v);
            i++;
        } else if (!strcmp(a, "--model")) {
            if (!v || !v[0] || (strchr(v, '=') && !strchr(v, '=')[1]))
                return cli_fail(EXIT_USAGE, "--model needs a path (or STAGE=PATH)");
            if (nmodels == 8)
                return cli_fail(EXIT_USAGE, "--model: at most 8");
            const char *eq = strchr(v, '=');
            static char stage_names[8][32];
            if (eq && eq - v < 32 && !memchr(v, '/', (size_t)(eq - v))) {
                memcpy(stage_names[nmodels], v, (size_t)(eq - v));
                stage_names[nmodels][eq - v] = 0;
                models[nmodels].stage = stage_names[nmodels];
                models[nmodels].path = eq + 1;
            } else {
                models[nmodels].stage = NULL; /* the chain's neural stage */
                models[nmodels].path = v;
            }
            nmodels++;
            i++;
        } else if (!strcmp(a, "--low-latency")) {
            job.low_latency = 1;
        } else if (!strcmp(a, "--no-dither")) {
            job.dither = 0;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "%s: unknown flag '%s' (see 'oscine help %s')",
                            argv[0], a, argv[0]);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_fail(EXIT_USAGE, "process: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_fail(EXIT_USAGE, "%s: need IN and OUT (see 'oscine help %s')", argv[0],
                        argv[0]);
    job.in_path = pos[0];
    job.out_path = pos[1];
    job.set_addr = addr;
    job.set_value = vals;
    job.nset = nset;
    /* A bare --model PATH (stage NULL) goes to the chain's stage that loads
     * a model; the chain says so if there is none or more than one. */
    job.models = models;
    job.nmodels = nmodels;

    oscine_file_info info;
    progress p = {.last_pct = -1};
    if (!cli_quiet && isatty(2) && oscine_file_info_get(job.in_path, &info) == 0)
        p.show = info.frames > 5LL * info.sample_rate;
    job.progress = on_progress;
    job.progress_user = &p;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return cli_run_job(&job);
}

int cli_run_job(oscine_file_job *job)
{
    oscine_file_report rep;
    job->report = &rep;
    int e = oscine_file_process(job);
    if (e == OSCINE_E_STAGE || e == OSCINE_E_PARAM || e == OSCINE_E_RANGE || e == OSCINE_E_ARG)
        return cli_fail_lib(EXIT_USAGE, e, NULL);
    if (e)
        return cli_fail_lib(EXIT_RUNTIME, e, NULL);
    /* The file is written: what it is (as generate, mel and vocode say), */
    oscine_file_info fo;
    if (!cli_quiet && oscine_file_info_get(job->out_path, &fo) == 0)
        fprintf(stderr, "oscine: wrote %s (%.2f s, %d Hz, %d ch, %s %s; chain %s, latency "
                "%d samples compensated)\n", job->out_path,
                fo.sample_rate ? (double)fo.frames / fo.sample_rate : 0.0, fo.sample_rate,
                fo.channels, fo.container, fo.samples, job->stages ? job->stages : "passthrough",
                rep.latency);
    /* and what the user would otherwise not hear of. */
    cli_warn_clipped(job->out_path, rep.clipped, "lower the level, or write --bits float");
    cli_warn_cut(job->in_path, rep.frames_missing, rep.frames_in);
    if (!cli_quiet && rep.nonfinite)
        fprintf(stderr, "oscine: warning: '%s': %llu samples of NaN or infinity (in the "
                "input, or made by a stage) replaced by silence\n", job->in_path,
                (unsigned long long)rep.nonfinite);
    return EXIT_OK;
}
