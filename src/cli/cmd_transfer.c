/* cmd_transfer.c - `oscine transfer IN OUT [--model violin] [--octave N]
 * [--pitch-shift ST] [--gate-db DB] [--loudness DB] [--reverb X] ...`: a file
 * job with the chain "transfer" (the input's pitch and loudness play a DDSP
 * instrument), the flags becoming /transfer/... settings. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_transfer(int argc, char **argv)
{
    static const char *const flags[][2] = {
        {"--octave", "/transfer/octave"},        {"--pitch-shift", "/transfer/pitch_shift"},
        {"--gate-db", "/transfer/gate_db"},      {"--loudness", "/transfer/loudness"},
        {"--reverb", "/transfer/reverb"},
    };
    char *args[128];
    static char model[4200];
    int n = 0;
    args[n++] = argv[0];
    for (int i = 1; i < argc && n < 120; i++) {
        const char *a = argv[i];
        int f = -1;
        for (int k = 0; k < (int)(sizeof flags / sizeof flags[0]); k++)
            if (!strcmp(a, flags[k][0]))
                f = k;
        if (f >= 0) {
            if (i + 1 >= argc)
                return cli_fail(EXIT_USAGE, "%s needs a value", a);
            args[n++] = "--set";
            args[n++] = (char *)flags[f][1];
            args[n++] = argv[++i];
        } else if (!strcmp(a, "--model")) {
            if (i + 1 >= argc || !argv[i + 1][0])
                return cli_fail(EXIT_USAGE, "--model needs a name (violin) or a path");
            snprintf(model, sizeof model, "transfer=%s", argv[++i]);
            args[n++] = "--model";
            args[n++] = model;
        } else if (!strcmp(a, "--chain") || !strcmp(a, "--set")) {
            return cli_fail(EXIT_USAGE, "transfer: %s belongs to 'oscine process' (e.g. "
                            "oscine process IN OUT --chain transfer,gain)", a);
        } else {
            args[n++] = argv[i];
        }
    }
    args[n] = NULL;
    return process_main(n, args, "transfer");
}
