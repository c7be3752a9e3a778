/* cmd_run.c - `oscine run` (the live daemon) and `oscine devices`. */
#include "cli.h"

#include "io/pa.h"
#include "osc/daemon.h"
#include "oscine.h"

#include <stdio.h>
#include <string.h>

int cmd_devices(int argc, char **argv)
{
    if (argc != 1)
        return cli_fail(EXIT_USAGE, "devices: takes no arguments");
    int e = pa_list_devices(stdout);
    return e ? cli_fail_lib(EXIT_RUNTIME, e, NULL) : EXIT_OK;
}

/* The flags of `run` that take a value (the parser below handles each). */
static int valued_flag(const char *a)
{
    static const char *const flags[] = {"--chain",    "--preset",      "--input",    "--output",
                                        "--host-api", "--model",       "--client-name", "--osc-host",
                                        "--rate",     "--buffer",      "--channels", "--osc-port",
                                        "--log-level", "--client-timeout"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(a, flags[i]))
            return 1;
    return 0;
}

int cmd_run(int argc, char **argv)
{
    daemon_config c = {.channels = 1, .osc_port = 9000, .osc_host = "127.0.0.1",
                       .buffer = 256, .log_level = LOG_INFO, .client_name = "oscine"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--tcp")) {
            c.tcp = 1;
            continue;
        }
        if (a[0] != '-')
            return cli_fail(EXIT_USAGE, "run: unexpected argument '%s'", a);
        if (!valued_flag(a))
            return cli_fail(EXIT_USAGE, "run: unknown flag '%s' (see 'oscine help run')", a);
        if (!v)
            return cli_fail(EXIT_USAGE, "run: %s needs a value", a);
        i++;
        if (!strcmp(a, "--chain"))
            c.chain = v;
        else if (!strcmp(a, "--preset"))
            c.preset = v;
        else if (!strcmp(a, "--input"))
            c.input = v;
        else if (!strcmp(a, "--output"))
            c.output = v;
        else if (!strcmp(a, "--host-api"))
            c.host_api = v;
        else if (!strcmp(a, "--model"))
            c.model = v;
        else if (!strcmp(a, "--client-name"))
            c.client_name = v;
        else if (!strcmp(a, "--osc-host"))
            c.osc_host = v;
        else if (!strcmp(a, "--rate")) {
            if (cli_parse_int(v, 8000, 192000, &n))
                return cli_fail(EXIT_USAGE, "--rate '%s': give 8000..192000 Hz", v);
            c.rate = (int)n;
        } else if (!strcmp(a, "--buffer")) {
            if (cli_parse_int(v, 16, OSCINE_MAX_BLOCK, &n))
                return cli_fail(EXIT_USAGE, "--buffer '%s': give 16..%d frames", v,
                                OSCINE_MAX_BLOCK);
            c.buffer = (int)n;
        } else if (!strcmp(a, "--channels")) {
            if (cli_parse_int(v, 1, OSCINE_MAX_CHANNELS, &n))
                return cli_fail(EXIT_USAGE, "--channels '%s': give 1..%d", v,
                                OSCINE_MAX_CHANNELS);
            c.channels = (int)n;
        } else if (!strcmp(a, "--osc-port")) {
            if (cli_parse_int(v, 1, 65535, &n))
                return cli_fail(EXIT_USAGE, "--osc-port '%s': give 1..65535", v);
            c.osc_port = (int)n;
        } else if (!strcmp(a, "--client-timeout")) {
            if (cli_parse_int(v, 2, 86400, &n))
                return cli_fail(EXIT_USAGE, "--client-timeout '%s': give 2..86400 seconds", v);
            c.client_timeout = (int)n;
        } else if (!strcmp(a, "--log-level")) {
            static const char *names[] = {"error", "warning", "info", "debug"};
            int found = -1;
            for (int k = 0; k < LOG_COUNT; k++)
                if (!strcmp(v, names[k]))
                    found = k;
            if (found < 0)
                return cli_fail(EXIT_USAGE, "--log-level '%s': use error, warning, info or debug", v);
            c.log_level = found;
        } else {
            return cli_fail(EXIT_USAGE, "run: unknown flag '%s' (see 'oscine help run')", a);
        }
    }
    if (c.chain && c.preset)
        return cli_fail(EXIT_USAGE, "run: give --chain or --preset, not both (a preset "
                        "may set /engine/chain)");
    return daemon_run(&c);
}
