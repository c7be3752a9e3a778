/* cmd_run.c - `oscine run` (the live daemon) and `oscine devices`. */
#include "cli.h"

#include "engine/chainrt.h"
#include "io/pa.h"
#include "osc/daemon.h"
#include "oscine.h"

#include <ctype.h>
#include <netdb.h>
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

/* An address to listen on as the daemon takes it: a numeric IPv4 or IPv6
 * address, or a host name (letters, digits, '-' in dot-separated labels,
 * resolved by the daemon). Checked here without any lookup. */
static int host_ok(const char *h)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST}, *res = NULL;
    if (getaddrinfo(h, NULL, &hints, &res) == 0) {
        freeaddrinfo(res);
        return 1;
    }
    size_t n = strlen(h), label = 0;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
        } else if (isalnum(c) || (c == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return h[n - 1] != '-';
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
    /* The flags' values are checked before any device or socket is opened:
     * a bad one is a usage error (2), as for the file commands. */
    if (c.chain && !c.chain[0])
        return cli_fail(EXIT_USAGE, "--chain '': give at least one stage, e.g. --chain "
                        "passthrough (see 'oscine stages')");
    if (c.chain && chain_spec_check(c.chain))
        return cli_fail(EXIT_USAGE, "--chain: %s", oscine_last_error());
    if (c.preset && !c.preset[0])
        return cli_fail(EXIT_USAGE, "--preset '': give a preset name or a file");
    if (c.model && !c.model[0])
        return cli_fail(EXIT_USAGE, "--model '': give the weights' path");
    if (!host_ok(c.osc_host))
        return cli_fail(EXIT_USAGE, "--osc-host '%s': not an IP address or a host name",
                        c.osc_host);
    return daemon_run(&c);
}
