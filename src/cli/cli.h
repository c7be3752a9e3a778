/* cli.h - the `oscine` command: one table of subcommands, each in its own
 * file (cmd_<name>.c). Exit codes: 0 success, 1 runtime failure, 2 usage. */
#ifndef OSCINE_CLI_H
#define OSCINE_CLI_H

#include "oscine.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *usage;   /* one line: arguments and flags */
    const char *summary; /* one line: what it does */
    const char *help;    /* longer text for `oscine help NAME` (may be NULL) */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

/* Print "oscine: " + message to stderr; returns code, for `return die(...)`. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the library error detail (or the code's text) with a context. */
int cli_fail_lib(int code, int err, const char *context);

/* Parse a finite float (decimal only) / an int in [lo, hi]; 0 on success.
 * cli_parse_float: -1 when s is not a number, -2 when it is one beyond the
 * float range (about 3.4e38); cli_float_why() words either for a message. */
int cli_parse_float(const char *s, float *out);
const char *cli_float_why(int rc);
int cli_parse_int(const char *s, long lo, long hi, long *out);

/* Global flags shared by commands. */
extern int cli_quiet;

int cmd_process(int argc, char **argv);
int cmd_denoise(int argc, char **argv);
int cmd_mel(int argc, char **argv);
int cmd_vocode(int argc, char **argv);
int cmd_resynth(int argc, char **argv);
/* process with a fixed chain (NULL: --chain decides). */
int process_main(int argc, char **argv, const char *chain);
/* Run a file job (its report is the caller's to leave NULL: set here), map
 * its error to an exit code with the message, and warn (unless --quiet) of
 * clipped output and of NaN/Inf replaced by silence. */
int cli_run_job(oscine_file_job *job);
/* Unless --quiet, warn that n samples of out_path hit full scale, with what
 * to do about it (hint); nothing when n is 0. */
void cli_warn_clipped(const char *out_path, long long n, const char *hint);
int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_spectrogram(int argc, char **argv);
int cmd_stages(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_transfer(int argc, char **argv);
int cmd_send(int argc, char **argv);

#endif
