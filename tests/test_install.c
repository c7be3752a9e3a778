/* test_install.c - an installed copy works wherever it lies. `make install`'s
 * script (tools/install.sh) installs the build into a DESTDIR staging
 * folder; the staged tree is copied to its PREFIX, as a package manager
 * would, and later moved elsewhere. From an unrelated folder (no ./models or
 * ./presets), with no OSCINE_* variable and an empty home, the installed
 * `oscine denoise`, `oscine run --preset` (on a private JACK server), the
 * LADSPA plugin in applyplugin, the LV2 plugins in lv2apply and
 * liboscine.so in a program of one's own must find their models and
 * presets; each output is compared with the same run of the build tree, and
 * a damaged installed model shows which file was read. Also: the systemd
 * unit's command and the PipeWire LADSPA config as installed, make
 * uninstall, the process name after the OpenBLAS re-exec, the plugins'
 * OpenBLAS note, and the Makefile's flag tracking (in a scratch build
 * folder). */
#include "util/live.h"
#include "util/util.h"

#include "oscine.h"
#include "nn/kernels.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define P 320     /* the test's own paths: tmp (a short /tmp/... name) and below */
#define CMD 65536 /* command lines */
static char build_dir[PATH_MAX], repo_dir[PATH_MAX], tmp[256];
static char stage[P], inst[P], moved[P], away[P], home[P];
/* "env -i PATH=... HOME=... [OPENBLAS_CORETYPE=...] [ASan preload] ": what
 * the installed programs run under */
static char clean[3 * PATH_MAX];
static int have_jack;

static void msleep(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* A mono or stereo file's samples; the two files hold the same numbers. */
static void assert_same_audio(const char *a, const char *b)
{
    SF_INFO ia, ib;
    float *x = sound_read(a, &ia), *y = sound_read(b, &ib);
    assert_int_equal(ia.frames, ib.frames);
    assert_int_equal(ia.channels, ib.channels);
    assert_int_equal(ia.samplerate, ib.samplerate);
    size_t n = (size_t)ia.frames * (size_t)ia.channels;
    double e = nmse(x, y, n);
    print_message("%s against %s: %zu samples, NMSE %g\n", b, a, n, e);
    assert_true(e == 0.0);
    free(x);
    free(y);
}

/* The output is not the input: err_db(in, out) well above the -inf of a copy,
 * and not silence. */
static void assert_processed(const char *in, const char *out)
{
    SF_INFO ii, io;
    float *x = sound_read(in, &ii), *y = sound_read(out, &io);
    assert_int_equal(ii.frames, io.frames);
    size_t n = (size_t)ii.frames * (size_t)ii.channels;
    double d = err_db(x, y, n), e = 0;
    for (size_t i = 0; i < n; i++)
        e += (double)y[i] * y[i];
    print_message("%s: %.1f dB from its input, RMS %.4f\n", out, d, sqrt(e / (double)n));
    assert_true(d > -30.0);
    assert_true(e > 1e-6 * (double)n);
    free(x);
    free(y);
}

/* Replace an installed model by a damaged copy (first 64 bytes zeroed), run
 * cmd, and put it back: the error names that very file. */
static void assert_reads_model(const char *model, const char *cmd_fmt, const char *arg)
{
    assert_int_equal(sh("cp %s %s/saved.osw && dd if=/dev/zero of=%s bs=64 count=1 conv=notrunc "
                        "2>/dev/null", model, tmp, model), 0);
    int rc = sh(cmd_fmt, arg);
    char out[4096];
    snprintf(out, sizeof out, "%.4000s", sh_out);
    assert_int_equal(sh("cp %s/saved.osw %s", tmp, model), 0);
    print_message("with %s damaged (exit %d): %s", model, rc, out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, model));
}

static int group_setup(void **state)
{
    if (host_test_setup(build_dir, repo_dir, tmp, sizeof tmp))
        return -1;
    snprintf(stage, sizeof stage, "%s/stage", tmp);
    snprintf(inst, sizeof inst, "%s/prefix", tmp);
    snprintf(moved, sizeof moved, "%s/moved/elsewhere", tmp);
    snprintf(away, sizeof away, "%s/away", tmp);
    snprintf(home, sizeof home, "%s/home", tmp);
    const char *blas = getenv("OPENBLAS_CORETYPE");
    char blas_set[128] = "";
    if (blas)
        snprintf(blas_set, sizeof blas_set, "OPENBLAS_CORETYPE=%.80s ", blas);
    snprintf(clean, sizeof clean, "env -i PATH='%s' HOME=%s %s%s", getenv("PATH"), home,
             blas_set, host_env);
    if (sh("mkdir -p %s %s %s/moved && cd %s && B=%s/oscine && "
           "$B generate in16.wav --signal voice-noise --seconds 2 --rate 16000 --quiet && "
           "$B generate in48.wav --signal voice-noise --seconds 2 --rate 48000 --quiet && "
           "$B generate st48.wav --signal voice-noise --seconds 1 --rate 48000 --channels 2 "
           "--quiet", away, home, tmp, tmp, build_dir)) {
        fprintf(stderr, "setup: %s\n", sh_out);
        return -1;
    }
    /* what `make install DESTDIR=... PREFIX=...` runs, with the build's files */
    if (sh("cd %s && DESTDIR=%s PREFIX=%s BUILD=%s VERSION=%s PC_PRIVATE='sndfile' PC_MVEC='' "
           "LV2_FILES=\"$(ls -d %s/oscine.lv2/*)\" sh tools/install.sh install && "
           "cp -a %s%s %s", repo_dir, stage, inst, build_dir, OSCINE_VERSION_STRING, build_dir,
           stage, inst, inst)) {
        fprintf(stderr, "install: %s\n", sh_out);
        return -1;
    }
    have_jack = have_tool("jackd") && jack_start() == 0;
    return 0;
}

static int group_teardown(void **state)
{
    if (have_jack)
        jack_stop();
    tmpdir_remove(tmp);
    return 0;
}

/* The installed tree, and the files that name PREFIX naming it. */
static void test_installed_files(void **state)
{
    const char *want[] = {"bin/oscine", "lib/liboscine.a", "lib/liboscine.so",
                          "lib/liboscine.so." OSCINE_VERSION_STRING, "include/oscine.h",
                          "lib/pkgconfig/oscine.pc", "share/oscine/models/denoise-16k.osw",
                          "share/oscine/presets/voice-call.osc",
                          "share/oscine/pipewire/oscine-denoise-ladspa.conf",
                          "share/systemd/user/oscine.service",
                          "lib/lv2/oscine.lv2/manifest.ttl", "lib/lv2/oscine.lv2/oscine.so",
                          "lib/ladspa/oscine_denoise_ladspa.so", "share/oscine/installed.txt"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char p[P + 100];
        snprintf(p, sizeof p, "%s/%s", inst, want[i]);
        if (!path_exists(p))
            fail_msg("not installed: %s", p);
    }
    assert_int_equal(sh("grep '^ExecStart=' %s/share/systemd/user/oscine.service", inst), 0);
    char line[P + 64];
    snprintf(line, sizeof line, "ExecStart=%s/bin/oscine run ", inst);
    assert_non_null(strstr(sh_out, line));
    assert_int_equal(sh("grep 'plugin *= ' %s/share/oscine/pipewire/oscine-denoise-ladspa.conf",
                        inst), 0);
    snprintf(line, sizeof line, "\"%s/lib/ladspa/oscine_denoise_ladspa.so\"", inst);
    assert_non_null(strstr(sh_out, line));
    if (have_tool("pkg-config")) {
        assert_int_equal(sh("PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs oscine",
                            inst), 0);
        snprintf(line, sizeof line, "-I%s/include", inst);
        assert_non_null(strstr(sh_out, line));
    }
}

/* ------------------------------------------------------------ the daemon */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

/* Start argv (argv[0] a path) in `away` with only PATH, HOME and the JACK
 * server's name set (and OPENBLAS_CORETYPE unless `blas_unset`, and ASan's
 * options), stderr to log. */
static pid_t spawn(const char *const *argv, const char *log, int blas_unset)
{
    const char *keep[] = {"PATH", "JACK_DEFAULT_SERVER", "OPENBLAS_CORETYPE", "ASAN_OPTIONS",
                          "UBSAN_OPTIONS"};
    char *vals[5];
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(keep[i]);
        vals[i] = v ? strdup(v) : NULL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(away))
            _exit(126);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(fd, 2);
        clearenv();
        for (int i = 0; i < 5; i++)
            if (vals[i] && !(blas_unset && i == 2))
                setenv(keep[i], vals[i], 1);
        setenv("HOME", home, 1);
        setenv("JACK_NO_AUDIO_RESERVATION", "1", 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 5; i++)
        free(vals[i]);
    return pid;
}

/* /status of the daemon on port until it answers (the chain, in chain), or
 * -1 after 6 s or when pid exits. */
static int wait_status(pid_t pid, int port, char *chain, size_t len)
{
    osc_client c;
    osc_open(&c, port);
    for (int i = 0; i < 60; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        osc_send(&c, "/status", NULL);
        lo_message m = osc_wait(&c, "/status.reply", 100);
        if (m) {
            snprintf(chain, len, "%s", osc_arg_s(m, 5));
            lo_message_free(m);
            osc_close(&c);
            return 0;
        }
    }
    osc_close(&c);
    return -1;
}

static int stop(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500 && waitpid(pid, &st, WNOHANG) != pid; i++)
        msleep(10);
    if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* What ps, top and pgrep show: /proc/PID/comm. Whether the process ran
 * itself again for OpenBLAS's kernels: OPENBLAS_CORETYPE in its environment
 * (the test started it without). */
static void check_name(pid_t pid)
{
    char p[64], comm[64] = "";
    snprintf(p, sizeof p, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(comm, sizeof comm, f));
    fclose(f);
    int rerun = sh("tr '\\0' '\\n' < /proc/%d/environ | grep -q '^OPENBLAS_CORETYPE='", (int)pid) == 0;
    print_message("process %d is named '%.*s' (%s)\n", (int)pid, (int)strcspn(comm, "\n"), comm,
                  rerun ? "after running itself again with OPENBLAS_CORETYPE set"
                        : "OpenBLAS loaded the best kernels: no re-exec on this CPU");
    assert_string_equal(comm, "oscine\n");
}

/* The systemd unit's ExecStart, from the installed unit, on the JACK server
 * (its other flags as written; --host-api and a free port added, as
 * `systemctl --user edit` would): the preset is found, SIGHUP (ExecReload)
 * re-reads it, SIGTERM stops it with status 0, and it is named oscine. */
static void test_systemd_unit(void **state)
{
    if (!have_jack) {
        print_message("SKIP: no jackd -d dummy (make deps)\n");
        skip();
    }
    assert_int_equal(sh("sed -n 's/^ExecStart=//p' %s/share/systemd/user/oscine.service", inst), 0);
    char cmd[1024], *argv[32];
    snprintf(cmd, sizeof cmd, "%.1000s", sh_out);
    int argc = 0;
    for (char *t = strtok(cmd, " \n"); t && argc < 24; t = strtok(NULL, " \n"))
        argv[argc++] = t;
    char port[16], log[P + 16];
    int p = free_port();
    snprintf(port, sizeof port, "%d", p);
    argv[argc++] = "--host-api";
    argv[argc++] = "JACK";
    argv[argc++] = "--osc-port";
    argv[argc++] = port;
    argv[argc] = NULL;
    snprintf(log, sizeof log, "%s/unit.log", tmp);
    pid_t pid = spawn((const char *const *)argv, log, 1);
    char chain[64] = "";
    int up = wait_status(pid, p, chain, sizeof chain);
    if (up) {
        stop(pid);
        daemon_show_log(log);
        fail_msg("the unit's command did not come up");
    }
    assert_string_equal(chain, "passthrough");
    check_name(pid);
    kill(pid, SIGHUP);
    msleep(300);
    assert_int_equal(wait_status(pid, p, chain, sizeof chain), 0);
    assert_int_equal(stop(pid), 0);
    assert_int_equal(sh("cat %s", log), 0);
    print_message("unit log:\n%s", sh_out);
    assert_null(strstr(sh_out, "not found"));
}

/* The PipeWire "denoised microphone" with the LADSPA config as installed:
 * the plugin instantiates (it finds its model beside it: no
 * OSCINE_MODEL_PATH) and the recording from the virtual source is the
 * denoised sound, not silence. */
static void test_pipewire_ladspa(void **state)
{
    char conf[P + 64], work[P + 16];
    snprintf(conf, sizeof conf, "%s/share/oscine/pipewire/oscine-denoise-ladspa.conf", inst);
    snprintf(work, sizeof work, "%s/pw", tmp);
    int rc = sh("mkdir -p %s/lv2-none && cd %s && %s sh %s/tools/plugins/pw_session.sh %s "
                "%s/lv2-none %s %s/in48.wav", tmp, away, clean, repo_dir, work, tmp, conf, tmp);
    if (rc == 77) {
        print_message("SKIP: %s", sh_out);
        skip();
    }
    if (rc) {
        char why[1024];
        snprintf(why, sizeof why, "%.1000s", sh_out);
        sh("tail -n 20 %s/pipewire.log", work);
        fail_msg("pw_session.sh: %s\n%s", why, sh_out);
    }
    assert_int_not_equal(sh("grep -i 'oscine.*not found\\|failed to instantiate' %s/pipewire.log",
                            work), 0);
    SF_INFO ri;
    char rec[P + 32];
    snprintf(rec, sizeof rec, "%s/rec.wav", work);
    float *r = sound_read(rec, &ri);
    size_t nin;
    float *x = sound_read_mono(tpath("in48.wav"), 48000, &nin);
    double er = 0, ex = 0, peak = 0;
    for (sf_count_t i = 0; i < ri.frames; i++) {
        er += (double)r[i] * r[i];
        peak = fmax(peak, fabs(r[i]));
    }
    for (size_t i = 0; i < nin; i++)
        ex += (double)x[i] * x[i];
    print_message("recorded %ld frames, energy %.3g (input %.3g), peak %.3f\n", (long)ri.frames,
                  er, ex, peak);
    /* the sound arrived (at least a tenth of the input's energy: the denoiser
     * removes the noise, not the speech), and no more than came in */
    assert_true(er > 0.1 * ex);
    assert_true(er < 1.5 * ex);
    free(r);
    free(x);
}

/* ------------------------------------------------------- the moved copy */

static void move_once(void)
{
    if (!path_exists(moved))
        assert_int_equal(sh("mv %s %s", inst, moved), 0);
    assert_false(path_exists(inst));
}

/* `oscine denoise` from the moved tree: the same samples as the build with
 * the same model, read from the moved share/oscine/models. */
static void test_moved_denoise(void **state)
{
    move_once();
    assert_int_equal(sh("cd %s && %s%s/bin/oscine denoise %s/in48.wav %s/den.wav --quiet", away,
                        clean, moved, tmp, tmp), 0);
    assert_int_equal(sh("%s/oscine denoise %s/in48.wav %s/den-ref.wav --model "
                        "%s/models/denoise-16k.osw --quiet", build_dir, tmp, tmp, repo_dir), 0);
    assert_processed(tpath("in48.wav"), tpath("den.wav"));
    assert_same_audio(tpath("den-ref.wav"), tpath("den.wav"));
    char model[P + 64];
    static char cmd[CMD];
    snprintf(model, sizeof model, "%s/share/oscine/models/denoise-16k.osw", moved);
    snprintf(cmd, sizeof cmd, "cd %s && %s%s/bin/oscine denoise %s/in48.wav %s/x.wav --quiet",
             away, clean, moved, tmp, tmp);
    assert_reads_model(model, "%s", cmd);
}

/* `oscine run --preset voice-call` from the moved tree on the JACK server:
 * the preset (share/oscine/presets) and its model are found, the chain is
 * denoise, the process is named oscine, SIGTERM stops it with status 0. It
 * runs with OPENBLAS_CORETYPE unset, so that on a CPU OpenBLAS does not know
 * it runs itself again as it would for a user. */
static void test_moved_run_preset(void **state)
{
    move_once();
    if (!have_jack) {
        print_message("SKIP: no jackd -d dummy (make deps)\n");
        skip();
    }
    char bin[P + 16], port[16], log[P + 16];
    snprintf(bin, sizeof bin, "%s/bin/oscine", moved);
    int p = free_port();
    snprintf(port, sizeof port, "%d", p);
    snprintf(log, sizeof log, "%s/run.log", tmp);
    const char *argv[] = {bin, "run", "--preset", "voice-call", "--host-api", "JACK",
                          "--osc-port", port, NULL};
    pid_t pid = spawn(argv, log, 1);
    char chain[64] = "";
    if (wait_status(pid, p, chain, sizeof chain)) {
        stop(pid);
        daemon_show_log(log);
        fail_msg("oscine run --preset voice-call did not come up");
    }
    assert_string_equal(chain, "denoise");
    check_name(pid);
    assert_int_equal(stop(pid), 0);
}

/* The LADSPA plugin from the moved tree in applyplugin: it finds the model
 * beside it and gives the samples the build's plugin gives with
 * OSCINE_MODEL_PATH; two instances in one host say the OpenBLAS note once at
 * most, and not at all where OpenBLAS loaded AVX2 kernels or better. */
static void test_moved_ladspa(void **state)
{
    move_once();
    NEED("applyplugin");
    char so[P + 64];
    snprintf(so, sizeof so, "%s/lib/ladspa/oscine_denoise_ladspa.so", moved);
    assert_int_equal(sh("cd %s && %sapplyplugin %s/in48.wav %s/lad.wav %s oscine_denoise 1 100",
                        away, clean, tmp, tmp, so), 0);
    int noted = strstr(sh_out, "OpenBLAS loaded") != NULL;
    assert_int_equal(sh("%sOSCINE_MODEL_PATH=%s/models applyplugin %s/in48.wav %s/lad-ref.wav "
                        "%s/oscine_denoise_ladspa.so oscine_denoise 1 100", host_env, repo_dir,
                        tmp, tmp, build_dir), 0);
    assert_processed(tpath("in48.wav"), tpath("lad.wav"));
    assert_same_audio(tpath("lad-ref.wav"), tpath("lad.wav"));
    static char cmd[CMD];
    snprintf(cmd, sizeof cmd, "cd %s && %sapplyplugin %s/in48.wav %s/x.wav %s oscine_denoise 1 100",
             away, clean, tmp, tmp, so);
    char model[P + 64];
    snprintf(model, sizeof model, "%s/share/oscine/models/denoise-16k.osw", moved);
    assert_reads_model(model, "%s", cmd);

    /* the note: AVX2 kernels or better loaded here (this process loads the
     * same OpenBLAS with the same environment) -> none */
    const char *core = nn_blas_corename();
    int old = nn_blas_better_coretype() && nn_blas_coretype_for(core, 3);
    print_message("OpenBLAS kernels here: %s; the plugin %s the note\n", core,
                  noted ? "gave" : "did not give");
    assert_int_equal(noted, old);
    /* Prescott kernels forced (OpenBLAS's fallback for CPUs it does not
     * know), two instances in one process: once where the CPU has AVX2 */
    assert_int_equal(sh("cd %s && %sOPENBLAS_CORETYPE=Prescott applyplugin %s/in48.wav %s/x.wav "
                        "%s oscine_denoise 1 100 %s oscine_denoise 1 100", away, clean, tmp, tmp,
                        so, so), 0);
    int count = 0;
    for (const char *s = strstr(sh_out, "OpenBLAS loaded"); s; s = strstr(s + 1, "OpenBLAS loaded"))
        count++;
    print_message("two instances on Prescott kernels: the note %d times\n", count);
    assert_int_equal(count, nn_cpu_level() >= 3 ? 1 : 0);
}

/* The LV2 plugins from the moved tree in lv2apply: denoise (mono and
 * stereo) and resynth give the samples of the build's bundle. */
static void test_moved_lv2(void **state)
{
    move_once();
    NEED("lv2apply");
    struct {
        const char *uri, *in;
    } runs[] = {{"urn:oscine:denoise", "in48.wav"},
                {"urn:oscine:denoise-stereo", "st48.wav"},
                {"urn:oscine:resynth", "in16.wav"}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char got[P + 32], ref[P + 32];
        snprintf(got, sizeof got, "%s/lv2-%zu.wav", tmp, i);
        snprintf(ref, sizeof ref, "%s/lv2-%zu-ref.wav", tmp, i);
        int rc = sh("cd %s && %sLV2_PATH=%s/lib/lv2 lv2apply -i %s/%s -o %s %s", away, clean,
                    moved, tmp, runs[i].in, got, runs[i].uri);
        if (rc)
            fail_msg("lv2apply %s: %s", runs[i].uri, sh_out);
        assert_int_equal(sh("%sLV2_PATH=%s lv2apply -i %s/%s -o %s %s", host_env, build_dir,
                            tmp, runs[i].in, ref, runs[i].uri), 0);
        char in[P + 32];
        snprintf(in, sizeof in, "%s/%s", tmp, runs[i].in);
        assert_processed(in, got);
        assert_same_audio(ref, got);
    }
}

/* liboscine.so from the moved tree in a program of one's own (built
 * against the moved include/ and lib/): a denoise chain finds the model
 * beside the library, in the moved share/oscine/models. */
static void test_moved_library(void **state)
{
    move_once();
    NEED("cc");
    FILE *f = fopen(tpath("own.c"), "w");
    assert_non_null(f);
    fputs("#include <oscine.h>\n#include <stdio.h>\n"
          "int main(void)\n{\n"
          "    oscine_chain *c;\n"
          "    oscine_chain_config cc = {.stages = \"denoise\", .sample_rate = 48000,\n"
          "                              .channels = 1, .max_block = 256};\n"
          "    if (oscine_chain_create(&c, &cc)) {\n"
          "        printf(\"error: %s\\n\", oscine_last_error());\n"
          "        return 1;\n"
          "    }\n"
          "    printf(\"denoise chain, latency %d\\n\", oscine_chain_latency(c));\n"
          "    oscine_chain_destroy(c);\n"
          "    return 0;\n}\n", f);
    fclose(f);
    assert_int_equal(sh("cc -o %s/own %s/own.c -I%s/include -L%s/lib -Wl,-rpath,%s/lib -loscine "
                        "-Wl,--allow-shlib-undefined", away, tmp, moved, moved, moved), 0);
    assert_int_equal(sh("cd %s && %s./own", away, clean), 0);
    print_message("own program: %s", sh_out);
    assert_non_null(strstr(sh_out, "denoise chain, latency "));
    char model[P + 64];
    static char cmd[CMD];
    snprintf(model, sizeof model, "%s/share/oscine/models/denoise-16k.osw", moved);
    snprintf(cmd, sizeof cmd, "cd %s && %s./own", away, clean);
    assert_reads_model(model, "%s", cmd);
}

/* ---------------------------------------------------------- uninstall */

/* `make uninstall` on the staged tree removes every file it installed and
 * every folder it made (inside DESTDIR); a second install with a file of
 * someone else's in lib/ keeps that file and its folders, nothing more. */
static void test_uninstall(void **state)
{
    static char env[CMD];
    snprintf(env, sizeof env, "cd %s && DESTDIR=%s PREFIX=%s BUILD=%s VERSION=%s "
             "LV2_FILES=\"$(ls -d %s/oscine.lv2/*)\"", repo_dir, stage, inst, build_dir,
             OSCINE_VERSION_STRING, build_dir);
    assert_int_equal(sh("%s sh tools/install.sh uninstall", env), 0);
    print_message("%s", sh_out);
    assert_int_equal(sh("find %s -mindepth 1", stage), 0);
    assert_string_equal(sh_out, ""); /* nothing left, the folders above PREFIX included */
    assert_int_equal(sh("%s PC_PRIVATE= PC_MVEC= sh tools/install.sh install && "
                        "touch %s%s/lib/someone-else.so && %s sh tools/install.sh uninstall",
                        env, stage, inst, env), 0);
    print_message("%s", sh_out);
    assert_int_equal(sh("cd %s && find . -mindepth 1 | sort", stage), 0);
    char want[8 * P] = "", acc[P] = ".";
    for (char *p = inst + 1, *q; (q = strchr(p, '/')) || *p; p = q + 1) { /* the folders to lib/ */
        size_t n = q ? (size_t)(q - p) : strlen(p);
        size_t l = strlen(acc);
        snprintf(acc + l, sizeof acc - l, "/%.*s", (int)n, p);
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s\n", acc);
        if (!q)
            break;
    }
    snprintf(want + strlen(want), sizeof want - strlen(want), "%s/lib\n%s/lib/someone-else.so\n",
             acc, acc);
    assert_string_equal(sh_out, want);
}

/* ------------------------------------------------------------ Makefile */

/* The Makefile in a scratch build folder (one object each): without
 * pkg-config (a stand-in that fails, as on a stock Debian) it stops with a
 * message naming the fix and leaves no object or stamp; with it, the
 * objects carry the probed flags; a second run rebuilds nothing; a new
 * CFLAGS rebuilds them; a new PREFIX rebuilds paths.o alone. */
static void test_make_flags(void **state)
{
    NEED("make");
    char b[P + 16];
    static char make[CMD];
    snprintf(b, sizeof b, "%s/scratch-build", tmp);
    assert_int_equal(sh("mkdir -p %s/nopc && printf '#!/bin/sh\\nexit 1\\n' > %s/nopc/pkg-config "
                        "&& chmod +x %s/nopc/pkg-config", tmp, tmp, tmp), 0);
    /* the make of the test's parent (make test) passes nothing down */
    snprintf(make, sizeof make, "cd %s && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS -u CFLAGS "
             "-u LDFLAGS -u CC make BUILD=%s %s/obj/src/base/error.o %s/obj/src/base/paths.o",
             repo_dir, b, b, b);
    assert_int_not_equal(sh("export PATH=%s/nopc:$PATH; %s", tmp, make), 0);
    print_message("without pkg-config: %s", sh_out);
    assert_non_null(strstr(sh_out, "pkg-config or a library is missing"));
    assert_non_null(strstr(sh_out, "tools/deps.sh"));
    assert_false(path_exists(tpath("scratch-build/obj/src/base/error.o")));
    assert_false(path_exists(tpath("scratch-build/flags")));

    assert_int_equal(sh("%s", make), 0);
    assert_true(path_exists(tpath("scratch-build/obj/src/base/error.o")));
    assert_int_equal(sh("cat %s/flags", b), 0);
    char flags[4096];
    snprintf(flags, sizeof flags, "%.4000s", sh_out);
    print_message("%s/flags: %s", b, flags);
    const char *ask[] = {"--cflags libpng", "--libs sndfile"};
    for (int i = 0; i < 2; i++) { /* pkg-config's flags, */
        assert_int_equal(sh("pkg-config %s", ask[i]), 0);
        sh_out[strcspn(sh_out, " \n")] = 0;
        assert_non_null(strstr(flags, sh_out));
    }
    assert_int_equal(sh("cat %s/flags", build_dir), 0); /* the probe's as in the build */
    assert_int_equal(strstr(flags, "-DOSCINE_HAVE_MVEC") != NULL,
                     strstr(sh_out, "-DOSCINE_HAVE_MVEC") != NULL);

    assert_int_equal(sh("%s", make), 0);
    assert_null(strstr(sh_out, "-c src/base/")); /* nothing rebuilt */
    assert_int_equal(sh("%s CFLAGS=-O1", make), 0);
    assert_non_null(strstr(sh_out, "-O1  -MMD -MP -c src/base/error.c"));
    assert_non_null(strstr(sh_out, "-c src/base/paths.c"));
    assert_int_equal(sh("%s CFLAGS=-O1 PREFIX=/opt/elsewhere", make), 0);
    assert_null(strstr(sh_out, "-c src/base/error.c"));
    assert_non_null(strstr(sh_out, "-c src/base/paths.c"));
    assert_non_null(strstr(sh_out, "/opt/elsewhere/share/oscine"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_installed_files),
        cmocka_unit_test_teardown(test_systemd_unit, daemons_teardown),
        cmocka_unit_test(test_pipewire_ladspa),
        cmocka_unit_test(test_moved_denoise),
        cmocka_unit_test(test_moved_run_preset),
        cmocka_unit_test(test_moved_ladspa),
        cmocka_unit_test(test_moved_lv2),
        cmocka_unit_test(test_moved_library),
        cmocka_unit_test(test_uninstall),
        cmocka_unit_test(test_make_flags),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
