/* cmd_info.c - `oscine info FILE`: format, rate, channels, duration;
 * `oscine stages`: what a chain can hold. */
#include "cli.h"

#include "osc/table.h"
#include "oscine.h"

#include <stdio.h>
#include <string.h>

int cmd_info(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-"))
            return cli_fail(EXIT_USAGE, "info: '-': give a file (standard input is not read)");
        if (argv[i][0] == '-')
            return cli_fail(EXIT_USAGE, "info: unknown flag '%s'", argv[i]);
    }
    if (argc != 2)
        return cli_fail(EXIT_USAGE, "info: need exactly one FILE");
    oscine_file_info fi;
    int e = oscine_file_info_get(argv[1], &fi);
    if (e)
        return cli_fail_lib(EXIT_RUNTIME, e, NULL);
    printf("file:     %s\n", argv[1]);
    printf("format:   %s, %s\n", fi.container, fi.samples);
    printf("rate:     %d Hz\n", fi.sample_rate);
    printf("channels: %d\n", fi.channels);
    printf("frames:   %lld\n", (long long)fi.frames);
    printf("duration: %.3f s\n", fi.sample_rate ? (double)fi.frames / fi.sample_rate : 0.0);
    cli_warn_cut(argv[1], fi.frames_missing, fi.frames);
    return EXIT_OK;
}

static void print_stage(void *user, const char *name, const char *help)
{
    printf("%-12s %s\n", name, help);
}

static void print_param(void *user, const char *stage, const char *address, const char *unit,
                        float min, float max, float def, const char *help)
{
    const osc_entry *e = osc_table_find(address); /* 'i' for whole-number parameters */
    printf("  %-18s %s  %g..%g %-3s (default %g)  %s\n", address, e ? e->types : "f",
           (double)min, (double)max, unit, (double)def, help);
}

int cmd_stages(int argc, char **argv)
{
    if (argc != 1)
        return cli_fail(EXIT_USAGE, "stages: takes no arguments");
    osc_table_init();
    oscine_stages_list(print_stage, NULL);
    printf("\nparameters (OSC address, type, range, unit):\n");
    oscine_params_list(print_param, NULL);
    return EXIT_OK;
}
