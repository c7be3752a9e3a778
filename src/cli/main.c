/* main.c - `oscine`: dispatch to subcommands, help and version. */
#include "cli.h"

#include "io/audiofile.h"
#include "nn/kernels.h"
#include "osc/preset.h"
#include "osc/table.h"
#include "oscine.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_quiet;

static const cli_command commands[] = {
    {"process", "IN OUT [--chain S,...] [--set ADDR VALUE]... [--format wav|flac]\n"
                "        [--rate HZ] [--bits 16|24|32|float] [--no-dither] [--quiet]",
     "run a file through a chain of stages",
     "Reads IN (WAV, FLAC, OGG, AIFF, ...; 8-192 kHz; 1-8 channels), runs each\n"
     "channel through the chain, compensates its latency so OUT lines up with IN\n"
     "sample for sample, and writes OUT (WAV or FLAC, from --format or OUT's\n"
     "extension). OUT keeps IN's rate, channels and sample type unless --rate or\n"
     "--bits say otherwise; TPDF dither is added only when reducing bit depth.\n"
     "OUT is written to a temporary file and renamed when complete.\n"
     "  --chain S,...       stages in order (default passthrough); see `oscine stages`\n"
     "  --set ADDR VALUE    set a parameter, e.g. --set /gain/db -6 (repeatable)\n"
     "  --format wav|flac   output container\n"
     "  --rate HZ           output sample rate (resampled with libsoxr)\n"
     "  --bits B            output samples: 16, 24, 32 (integer) or float\n"
     "  --no-dither         no TPDF dither when reducing bit depth\n"
     "  --model [STAGE=]PATH  weights for a stage that loads a model\n"
     "  --low-latency       run the stages as the daemon and plugins do (short\n"
     "                      resampling filters, resynth's streaming synthesis):\n"
     "                      the same output as them\n"
     "  --quiet, -q         no progress bar (every command but run takes -q: no\n"
     "                      progress bar, summary line or warnings; errors still\n"
     "                      print)\n",
     cmd_process},
    {"denoise", "IN OUT [--mix X] [--limit-db N] [--model PATH] [--format wav|flac]\n"
                "        [--rate HZ] [--bits B] [--no-dither] [--quiet]",
     "remove noise from speech in a file",
     "Runs each channel of IN through the speech denoiser (a causal FRCRN-style\n"
     "network at 16 kHz; other rates are resampled for it, and the band above\n"
     "8 kHz is kept, following the mask) and writes OUT aligned with IN.\n"
     "  --mix X        0..1 wet/dry (default 1: fully denoised)\n"
     "  --limit-db N   0..100 dB: most attenuation any frequency gets (default\n"
     "                 100: no limit; 10-25 keeps some ambience)\n"
     "  --model PATH   weights (default: denoise-16k.osw from $OSCINE_MODEL_PATH,\n"
     "                 ./models or the installed share/oscine/models)\n"
     "Other flags as for 'oscine process'. Same as: oscine process IN OUT --chain denoise\n",
     cmd_denoise},
    {"mel", "IN OUT.npy [--layout frames-first|bands-first] [--quiet]",
     "write the vocoder's log-mel spectrogram of a sound file (NumPy .npy)",
     "Mixes IN to mono, resamples it to 16 kHz and writes the exact mel front end\n"
     "the vocoder was trained on, as a float32 .npy of shape [frames, 80] (or\n"
     "[80, frames] with --layout bands-first). Frame t is the 320 samples (20 ms)\n"
     "ending at sample (t+1)*80, periodic Hann window, zero-padded to 512 points,\n"
     "magnitude, Slaney mel bank (80 bands, 0-8000 Hz), natural log of\n"
     "max(mel, 1e-5); ceil((samples + 240) / 80) frames. docs/mel.md has the\n"
     "definition. OUT is written to a temporary file and renamed when complete.\n",
     cmd_mel},
    {"vocode", "IN.npy OUT [--model PATH] [--layout frames-first|bands-first]\n"
               "        [--mel-scale ln|log10|db] [--bits 16|24|32|float] [--rtisi LA,PASSES|model]\n"
               "        [--refine N] [--quiet]",
     "turn a mel spectrogram (.npy) into speech with the vocoder",
     "Reads a float32 or float64 .npy mel spectrogram as 'oscine mel' writes it\n"
     "(natural-log mel, 80 bands, 5 ms frames, 16 kHz; values below ln 1e-5 are\n"
     "raised to it) and writes frames*80 - 240 samples of 16 kHz mono WAV or FLAC\n"
     "(OUT's extension). The band axis is found by its size 80; when both axes\n"
     "are 80, say which with --layout. NaN, infinity, a missing band axis and an\n"
     "empty array are errors. A mel in another scale (log10, dB, or not\n"
     "logarithmic, as other tools write them; told by its range, docs/mel.md) is\n"
     "refused, naming the scale it looks like; values far outside the usual\n"
     "range get a warning.\n"
     "  --model PATH   weights (default: vocoder-16k.osw from $OSCINE_MODEL_PATH,\n"
     "                 ./models or the installed share/oscine/models); its\n"
     "                 recorded mel configuration must be oscine's (docs/mel.md)\n"
     "  --layout L     frames-first ([frames, 80]) or bands-first ([80, frames])\n"
     "  --mel-scale S  the input's scale: ln (natural log, as 'oscine mel'), log10\n"
     "                 or db (20 log10 of the magnitude, i.e. power dB); log10\n"
     "                 and db are converted to ln. Given, the scale is not guessed\n"
     "  --bits B       16 (default, TPDF-dithered), 24, 32 or float\n"
     "  --rtisi S      the phase refinement (RTISI-LA) of the synthesis: LA,PASSES\n"
     "                 (0..16 frames of look-ahead, 0..16 passes), or 'model' for\n"
     "                 the model's own streaming setting (the shipped model: 3,6,\n"
     "                 as live resynth uses). Default: 8,16 (or the model's, if\n"
     "                 more; a model without RTISI-LA keeps plain overlap-add):\n"
     "                 closer to the original, at about twice the cost\n"
     "  --refine N     passes of the mel refinement after it (0..64, 0: none):\n"
     "                 the waveform pulled onto the input mel as 'oscine mel'\n"
     "                 measures it, and a little back towards the network's\n"
     "                 amplitude, each pass as dear as two Griffin-Lim iterations.\n"
     "                 Default: 40 for a model with the mel fix (the shipped one)\n"
     "                 when --rtisi is not given, else 0. Fewer passes keep more\n"
     "                 of the network's fine structure; more match the mel closer\n",
     cmd_vocode},
    {"resynth", "IN OUT [--warp R] [--tilt DB] [--low DB] [--mid DB] [--high DB] [--mix X]\n"
                "        [--model PATH] [--format wav|flac] [--rate HZ] [--bits B] [--no-dither]\n"
                "        [--low-latency] [--quiet]",
     "resynthesise speech through the vocoder, with mel-domain voice transforms",
     "Runs each channel of IN through the mel front end, the transforms below and\n"
     "the vocoder (16 kHz; other rates are resampled) and writes OUT aligned with\n"
     "IN. Same as: oscine process IN OUT --chain resynth --set /resynth/...\n"
     "Files get the longer refinement of 'oscine vocode' (RTISI-LA 8 x 16, then\n"
     "40 passes pulling the waveform onto the transformed mel; live and\n"
     "--low-latency: the model's RTISI-LA 3 x 6), its latency compensated.\n"
     "  --warp R     0.5..2 frequency warp (default 1): >1 raises formants and pitch\n"
     "  --tilt DB    -12..12 dB per octave around 1 kHz (default 0)\n"
     "  --low DB, --mid DB, --high DB\n"
     "               -24..24 dB gains at 250 Hz and below, 1.5 kHz, 5 kHz and above\n"
     "  --mix X      0..1 wet/dry (default 1: fully resynthesised)\n"
     "  --model PATH weights (default: vocoder-16k.osw, looked up as for vocode)\n"
     "--format, --rate, --bits, --no-dither and --low-latency as for 'oscine process'.\n",
     cmd_resynth},
    {"info", "FILE", "print a sound file's format, rate, channels and duration", NULL,
     cmd_info},
    {"generate", "OUT [--signal sine|sweep|noise|voice-noise|impulse] [--seconds S]\n"
                 "        [--rate HZ] [--channels N] [--freq HZ] [--level DBFS] [--bits B] [--seed N]\n"
                 "        [--quiet]",
     "write a test signal",
     "Writes a deterministic test signal, for demos and tests.\n"
     "  sine         a sine at --freq (default 440 Hz)\n"
     "  sweep        a logarithmic sine sweep 20 Hz .. 0.45 * rate\n"
     "  noise        white noise\n"
     "  voice-noise  a voice-like harmonic tone with syllable envelope plus noise\n"
     "  impulse      one unit impulse at 0.1 s\n"
     "Defaults: voice-noise, 5 s, 16000 Hz, 1 channel, -20 dBFS, PCM_16, seed 1.\n",
     cmd_generate},
    {"spectrogram", "OUT.png IN [IN2 ...] [--max-hz F] [--db-range 80] [--width 1200]\n"
                    "        [--height 240] [--titles A,B,...] [--no-axes]",
     "draw log-magnitude spectrograms of sound files as a PNG",
     "Draws one spectrogram panel per input, stacked top to bottom in the order\n"
     "given, on shared axes: time (the longest input fills the width), frequency\n"
     "(0 Hz at the bottom of each panel) and colour (the loudest pixel of all\n"
     "panels is the top of the scale, --db-range below it is black), so a\n"
     "processed file drawn under its input shows what changed. Channels are\n"
     "averaged; time outside an input and frequencies above its Nyquist are grey.\n"
     "OUT is written to a temporary file and renamed when complete.\n"
     "  --max-hz F      top of the frequency axis (default: the highest Nyquist)\n"
     "  --db-range R    10..200 dB shown below the loudest pixel (default 80)\n"
     "  --width W       16..8192 pixels (default 1200)\n"
     "  --height H      16..2048 pixels per panel (default 240)\n"
     "  --titles A,B    the panels' titles, one per input, separated by commas\n"
     "                  (default: the files' names)\n"
     "  --no-axes       just the panels: no titles, no frequency (kHz) and time (s)\n"
     "                  scales around them (they add 52 pixels to the width, and 20\n"
     "                  per panel + 14 to the height)\n",
     cmd_spectrogram},
    {"stages", "", "list the stages and their parameters (OSC addresses)", NULL,
     cmd_stages},
    {"run", "[--chain S,...|--preset NAME|FILE] [--input DEV|none] [--output DEV] [--host-api API]\n"
            "        [--rate HZ] [--buffer FRAMES] [--channels N] [--osc-port 9000]\n"
            "        [--osc-host 127.0.0.1] [--tcp] [--log-level LEVEL] [--client-name NAME]\n"
            "        [--model PATH] [--client-timeout S]",
     "run the chain live on an audio device, steered over OSC",
     "Opens a PortAudio stream (duplex, or output only with --input none) and runs\n"
     "the chain in its callback. Runs in the foreground; logs one line per event to\n"
     "stderr. SIGINT/SIGTERM fade out and stop; SIGHUP reloads the preset.\n"
     "  --chain S,...      stages (default passthrough)\n"
     "  --preset NAME      load the preset NAME.osc from the preset folders, or a\n"
     "                     file: --preset ./mine.osc (may set the chain)\n"
     "  --input DEV        input device name (substring); 'none' for output only\n"
     "  --output DEV       output device name (substring)\n"
     "  --host-api API     only devices of this host API (e.g. JACK, ALSA)\n"
     "  --rate HZ          sample rate (default: the device's)\n"
     "  --buffer FRAMES    frames per callback (default 256)\n"
     "  --channels N       channels in and out (default 1)\n"
     "  --osc-port P       OSC port (default 9000)\n"
     "  --osc-host ADDR    address to listen on (default 127.0.0.1; another\n"
     "                     interface only when given here)\n"
     "  --tcp              also accept OSC over TCP (length-prefixed) on the port\n"
     "  --log-level L      error, warning, info (default) or debug\n"
     "  --client-name N    JACK client name (default oscine)\n"
     "  --model PATH       weights for the denoise stage (default: denoise-16k.osw\n"
     "                     from $OSCINE_MODEL_PATH, ./models, share/oscine/models)\n"
     "  --client-timeout S  2..86400 s (default 300): a /notify subscriber that sends\n"
     "                     nothing for S is dropped, so is a TCP connection with no\n"
     "                     whole message for S\n"
     "OSC addresses and the limits per client: 'oscine help osc' or docs/osc.md.\n",
     cmd_run},
    {"devices", "", "list audio devices (host API, channels, default rate)", NULL,
     cmd_devices},
    {"send", "[--host H] [--port P] [--tcp] [--timeout S] [--types T] ADDRESS [ARGS...]\n"
             "        oscine send [--host H] [--port P] [--tcp] --watch /notify",
     "send one OSC message to a running daemon and print its reply",
     "Sends ADDRESS with ARGS to 'oscine run' and prints the reply on one line:\n"
     "    /done ADDRESS                 accepted\n"
     "    /fail ADDRESS: REASON         refused (exit 1)\n"
     "    /status.reply rate=48000 buffer=256 ...   a reply with its fields named\n"
     "The argument types come from the daemon's address table ('oscine help osc'),\n"
     "so no type letters are needed: oscine send /denoise/mix 0.8. Numbers are\n"
     "decimal, as in presets and --set. Flags come before ADDRESS (so that -6 is\n"
     "an argument). Exit 0 on a reply, 1 on /fail, 2 on a usage error, 3 when no\n"
     "daemon answers within the timeout.\n"
     "  --host H      the daemon's address (default 127.0.0.1)\n"
     "  --port P      its OSC port (default 9000)\n"
     "  --tcp         over TCP (the daemon runs with --tcp) instead of UDP\n"
     "  --timeout S   seconds to wait for the reply (default 5)\n"
     "  --types T     type letters (f float, i int, s string), one per argument,\n"
     "                for an address the table does not know (or to override it)\n"
     "  --watch       with /notify: subscribe and print the /meter lines (20 a\n"
     "                second) until Ctrl-C, renewing the subscription every second;\n"
     "                unsubscribes on exit (exit 3 when the daemon stays silent for\n"
     "                the timeout)\n"
     "For scripts that need no reply, oscsend (liblo-tools) works as well.\n",
     cmd_send},
    {"model", "PATH", "check a weights file (.osw) and list its metadata and tensors",
     "Checks every field of a weights file (magic, version, sizes, CRC, strings,\n"
     "tensor shapes and offsets) and prints its metadata and tensor table (name,\n"
     "dtype, shape, parameter count) with the total. Exit 0 if the file is valid,\n"
     "1 with the reason if not. The format is described in docs/weights.md.\n",
     cmd_model},
    {"features", "IN OUT.csv [--hop-ms 10]",
     "write the DDSP features (f0, confidence, loudness) of a sound file as CSV",
     "Mixes IN to mono, resamples it to 16 kHz and writes one CSV row per frame:\n"
     "time_s,f0_hz,confidence,loudness_db. f0 is a YIN estimate (40..2000 Hz;\n"
     "0 in silence) with its voicing confidence 0..1; loudness is DDSP's\n"
     "A-weighted power in dB (n_fft 512, floor -80). Frame i is centred at\n"
     "i * hop; the definitions are in docs/ddsp.md. OUT is written to a temporary\n"
     "file and renamed when complete.\n"
     "  --hop-ms MS   frame hop (default 10 ms = 160 samples; 4 ms = DDSP's 250 Hz)\n",
     cmd_features},
    {"synth", "SCORE OUT [--model NAME|PATH] [--rate HZ] [--tail S] [--bits B] [--quiet]",
     "play a score of timed OSC messages, or a MIDI file, on the DDSP synthesizer",
     "Renders SCORE through the 'synth' stage (the daemon's, with the same OSC\n"
     "addresses) and writes OUT (WAV or FLAC by extension, mono). SCORE has one\n"
     "message per line, TIME (seconds) ADDRESS NUMBERS..., '#' for comments:\n"
     "    0.0 /synth/adsr 30 200 0.7 400\n"
     "    0.5 /synth/note_on 69 0.8\n"
     "    1.5 /synth/note_off 69\n"
     "Every message takes effect at its exact sample; the whole score is checked\n"
     "first. Addresses: 'oscine help osc' (/synth/...). Example scores are in\n"
     "tools/examples/.\n"
     "SCORE may also be a Standard MIDI File (format 0 or 1, told by its header):\n"
     "every channel plays the one instrument; notes, pitch bend (+-2 semitones),\n"
     "CC 1 (vibrato, up to 50 cents), CC 7 and 11 (40 log10(v/127) dB each),\n"
     "CC 64 (sustain pedal), CC 120/123 and tempo changes are followed.\n"
     "  --model M    instrument name (violin: ddsp-violin.osw from\n"
     "               $OSCINE_MODEL_PATH, ./models, share/oscine/models) or a path\n"
     "  --rate HZ    output rate (default 48000)\n"
     "  --tail S     seconds rendered after the last message (default 2)\n"
     "  --bits B     16, 24 (default), 32 or float\n",
     cmd_synth},
    {"transfer", "IN OUT [--model NAME|PATH] [--octave N] [--pitch-shift ST] [--gate-db DB]\n"
                 "        [--loudness DB] [--reverb X] [--format wav|flac] [--rate HZ] [--bits B]\n"
                 "        [--no-dither] [--quiet]",
     "timbre transfer: the pitch and loudness of a file play a DDSP instrument",
     "Runs each channel of IN through the 'transfer' stage: its f0 and loudness\n"
     "(as 'oscine features' computes them, at 16 kHz) drive the instrument's\n"
     "decoder and synthesizer; OUT is aligned with IN (the stage's 32 ms are\n"
     "compensated). Same as: oscine process IN OUT --chain transfer --set ...\n"
     "  --model M        instrument name (violin: ddsp-violin.osw from\n"
     "                   $OSCINE_MODEL_PATH, ./models, share/oscine/models) or a path\n"
     "  --octave N       -3..3 octaves added to the pitch (default 0)\n"
     "  --pitch-shift S  -24..24 semitones added to the pitch (default 0)\n"
     "  --gate-db DB     -80..0: input loudness below which the output is silent\n"
     "                   (default -60)\n"
     "  --loudness DB    -40..40 dB added to the input's loudness (default 0)\n"
     "  --reverb X       0..2 reverb level (default 1: as trained)\n"
     "--format, --rate, --bits and --no-dither as for 'oscine process'.\n",
     cmd_transfer},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("oscine: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_fail_lib(int code, int err, const char *context)
{
    const char *d = oscine_last_error();
    if (context && context[0])
        return cli_fail(code, "%s: %s", context, d[0] ? d : oscine_strerror(err));
    return cli_fail(code, "%s", d[0] ? d : oscine_strerror(err));
}

void cli_warn_clipped(const char *out_path, long long n, const char *hint)
{
    if (n && !cli_quiet)
        fprintf(stderr, "oscine: warning: '%s': %lld samples clipped at full scale (%s)\n", out_path,
                n, hint);
}

void cli_warn_cut(const char *in_path, long long missing, long long got)
{
    if (missing > 0 && !cli_quiet)
        fprintf(stderr, "oscine: warning: '%s' is cut short: its header promises %lld more "
                "frames than it holds; the %lld there were used\n", in_path, missing, got);
}

int cli_parse_float(const char *s, float *out)
{
    double v;
    int rc = preset_parse_number(s, &v); /* the grammar presets share */
    if (!rc)
        *out = (float)v;
    return rc;
}

const char *cli_float_why(int rc)
{
    return rc == -2 ? "beyond the range of a float (3.4e38)" : "not a finite decimal number";
}

int cli_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!s[0] || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static const cli_command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: oscine COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-11s %s\n", "help", "help [COMMAND]: this text, or a command's; help osc: OSC reference");
    fprintf(f, "\n  oscine --version    print the version\n");
}

static int help(const char *name)
{
    if (!name) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        printf("usage: oscine help [COMMAND|osc]\n\nthe commands, a command's flags, or the "
               "OSC reference ('help osc')\n");
        return EXIT_OK;
    }
    if (!strcmp(name, "osc")) {
        osc_table_init();
        osc_table_markdown(stdout);
        return EXIT_OK;
    }
    const cli_command *c = find(name);
    if (!c)
        return cli_fail(EXIT_USAGE, "help: unknown command '%s' (try 'oscine help')", name);
    printf("usage: oscine %s %s\n\n%s\n", c->name, c->usage, c->summary);
    if (c->help)
        printf("\n%s", c->help);
    return EXIT_OK;
}

/* A build that is not installed (build/oscine in the source tree) finds the
 * models/ and presets/ it was built with from any folder: the folder above
 * the executable's, when it has models/. */
static void find_bundled_files(void)
{
    char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        return;
    dir[n] = 0;
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        *slash = 0;
    }
    char models[4200];
    snprintf(models, sizeof models, "%s/models", dir);
    struct stat st;
    if (stat(models, &st) == 0 && S_ISDIR(st.st_mode))
        oscine_set_data_dir(dir[0] ? dir : "/");
}

/* A fatal signal for a file command (one that installs no handler of its
 * own, or one it does not handle: HUP, QUIT, PIPE) must not leave a hidden
 * temporary file behind: delete them, then die of the signal as before. */
static void on_fatal_signal(int sig)
{
    out_tmp_remove_all();
    if (sig != SIGPIPE) { /* write(2) is async-signal-safe; stdio is not */
        static const char msg[] = "oscine: stopped by a signal; no output written\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_fatal_signals(void)
{
    const int sigs[] = OUT_TMP_SIGNALS;
    struct sigaction sa = {.sa_handler = on_fatal_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* OpenBLAS picks its kernels when it loads, before main, from the CPU model;
 * 0.3.21 falls back to its Prescott (SSE3) kernels on CPUs it does not know,
 * and OPENBLAS_CORETYPE is read only at load (nn/kernels.h). So where the CPU
 * runs a better set than the one loaded, the command runs itself again with
 * the variable set: once, since it is then set, and never when the user has
 * set it (to anything, empty included). If the exec fails it carries on.
 * Since it runs again anyway, OPENBLAS_NUM_THREADS=1 (unless set) spares the
 * new process the worker threads OpenBLAS would start and never use
 * (docs/performance.md). It runs the executable's real path, not
 * /proc/self/exe: the kernel names a process after the file it executes, and
 * ps, top, pgrep and systemd would show "exe". */
static void blas_rerun(char **argv)
{
    const char *core = nn_blas_better_coretype();
    if (!core || getenv("OPENBLAS_CORETYPE"))
        return;
    char self[4096];
    const char *file = "/proc/self/exe"; /* where the real path is gone: "... (deleted)" */
    ssize_t n = readlink(file, self, sizeof self - 1);
    if (n > 0 && n < (ssize_t)sizeof self - 1) {
        self[n] = 0;
        if (!access(self, X_OK))
            file = self;
    }
    int threads = !getenv("OPENBLAS_NUM_THREADS");
    if (setenv("OPENBLAS_CORETYPE", core, 1) || (threads && setenv("OPENBLAS_NUM_THREADS", "1", 1)))
        return;
    execv(file, argv);
    unsetenv("OPENBLAS_CORETYPE");
    if (threads)
        unsetenv("OPENBLAS_NUM_THREADS");
}

/* What a command printed must have reached its standard output: a full
 * disk or a closed pipe behind `> file` is a failure (exit 1 with the
 * reason), not a success with the output lost. A command that failed keeps
 * its own code and message. */
static int finish(int code)
{
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (fclose(stdout) && !bad)
        bad = 1, e = errno;
    if (bad && code == EXIT_OK)
        return cli_fail(EXIT_RUNTIME, "standard output: %s", strerror(e ? e : EIO));
    return code;
}

static int run_main(int argc, char **argv);

int main(int argc, char **argv)
{
    return finish(run_main(argc, argv));
}

static int run_main(int argc, char **argv)
{
    blas_rerun(argv);
    find_bundled_files();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("oscine %s\n", oscine_version());
        const char *better = nn_blas_better_coretype();
        if (better)
            printf("OpenBLAS kernels: %s (this CPU runs %s: OPENBLAS_CORETYPE=%s)\n", nn_blas_corename(),
                   better, better);
        else
            printf("OpenBLAS kernels: %s\n", nn_blas_corename());
        return EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 3)
            return cli_fail(EXIT_USAGE, "help: too many arguments");
        return help(argc > 2 ? argv[2] : NULL);
    }
    const cli_command *c = find(cmd);
    if (!c)
        return cli_fail(EXIT_USAGE, "unknown command '%s' (try 'oscine help')", cmd);
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return help(cmd);
    /* -q/--quiet means the same to every command but the daemon (which has
     * --log-level): no progress bar, no summary line, no warnings; errors
     * still print. Taken out here so each command's parser never sees it. */
    /* A file over the size limit (ulimit -f) is a write error to report
     * ("File too large"), not a signal that kills without a word. */
    signal(SIGXFSZ, SIG_IGN);
    if (strcmp(cmd, "run")) {
        catch_fatal_signals(); /* commands may override INT and TERM */
        int n = 2;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
                cli_quiet = 1;
            else
                argv[n++] = argv[i];
        }
        argv[n] = NULL;
        argc = n;
    }
    return c->run(argc - 1, argv + 1);
}
