/* cmd_send.c - `oscine send`: one OSC message to a running daemon, and its
 * reply printed. The argument types come from the daemon's own address
 * table (osc/table.h), and so do the names of the reply's fields: the
 * reply column of the table ("/status.reply i:rate i:buffer ...") is the
 * one place that names them. */
#include "cli.h"

#include "osc/preset.h"
#include "osc/table.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lo/lo.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_NO_ANSWER = 3 };

#define MAX_NAMES 32
#define RENEW_S 1.0 /* --watch re-sends /notify 1 this often (leases are 2 s or more) */

typedef struct osc_link {
    int fd, tcp;
    const char *host, *port;
    unsigned char in[65536 + 4]; /* TCP: bytes of frames not read yet */
    size_t have;
} osc_link;

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Connect a UDP socket (replies come back to its port; a closed port on
 * the other side shows as ECONNREFUSED) or a TCP one (within timeout_s). */
static int link_open(osc_link *l, double timeout_s)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = l->tcp ? SOCK_STREAM : SOCK_DGRAM,
                             .ai_flags = AI_NUMERICSERV},
                    *res = NULL;
    int g = getaddrinfo(l->host, l->port, &hints, &res);
    if (g)
        return cli_fail(EXIT_USAGE, "send: --host '%s': %s", l->host, gai_strerror(g));
    l->fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        freeaddrinfo(res);
        return cli_fail(EXIT_RUNTIME, "send: socket: %s", strerror(errno));
    }
    int r = connect(l->fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (r && errno == EINPROGRESS) {
        struct pollfd p = {.fd = l->fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, (int)(timeout_s * 1000)) <= 0)
            err = ETIMEDOUT;
        else
            getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        r = err ? -1 : 0;
        errno = err;
    }
    if (r)
        return cli_fail(EXIT_NO_ANSWER, "send: no daemon on %s %s:%s: %s", l->tcp ? "TCP" : "UDP",
                        l->host, l->port, strerror(errno));
    return 0;
}

static int link_send(osc_link *l, const char *path, lo_message m)
{
    size_t len = 0;
    unsigned char *data = lo_message_serialise(m, path, NULL, &len);
    if (!data)
        return cli_fail(EXIT_RUNTIME, "send: %s: cannot build the message", path);
    ssize_t r;
    if (l->tcp) {
        unsigned char *frame = malloc(len + 4);
        uint32_t be = htonl((uint32_t)len);
        size_t off = 0;
        r = frame ? 0 : -1;
        if (frame) {
            memcpy(frame, &be, 4);
            memcpy(frame + 4, data, len);
        }
        while (frame && off < len + 4) { /* whole frames, or the stream loses its framing */
            r = send(l->fd, frame + off, len + 4 - off, MSG_NOSIGNAL);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                struct pollfd p = {.fd = l->fd, .events = POLLOUT};
                poll(&p, 1, 100);
                continue;
            }
            if (r < 0)
                break;
            off += (size_t)r;
        }
        free(frame);
    } else {
        r = send(l->fd, data, len, 0);
    }
    free(data);
    if (r < 0)
        return cli_fail(errno == ECONNREFUSED || errno == EPIPE || errno == ECONNRESET
                            ? EXIT_NO_ANSWER : EXIT_RUNTIME,
                        "send: %s to %s:%s: %s", path, l->host, l->port, strerror(errno));
    return 0;
}

/* A message from the daemon and its path. */
typedef struct reply {
    lo_message m;
    char path[256];
} reply;

static int reply_take(reply *r, const unsigned char *data, size_t n)
{
    int res = 0;
    const char *path = n ? lo_get_path((void *)data, (ssize_t)n) : NULL;
    r->m = path ? lo_message_deserialise((void *)data, n, &res) : NULL;
    if (r->m)
        snprintf(r->path, sizeof r->path, "%s", path);
    return r->m != NULL;
}

/* The next message from the daemon into r, waiting until `until`
 * (CLOCK_MONOTONIC) at most: 1, or 0 with *why set to 0 (time is up, or a
 * signal came) or to an exit code (the daemon went away). */
static int link_recv(osc_link *l, double until, reply *r, int *why)
{
    static unsigned char buf[65536];
    *why = 0;
    for (;;) {
        if (l->tcp && l->have >= 4) {
            uint32_t n;
            memcpy(&n, l->in, 4);
            n = ntohl(n);
            if (n > 65536) {
                *why = cli_fail(EXIT_RUNTIME, "send: a TCP frame of %u bytes from the daemon", n);
                return 0;
            }
            if (l->have >= 4 + n) {
                int got = reply_take(r, l->in + 4, n);
                memmove(l->in, l->in + 4 + n, l->have - 4 - n);
                l->have -= 4 + n;
                if (got)
                    return 1;
                continue;
            }
        }
        double left = until - now_s();
        if (left <= 0 || stop)
            return 0;
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)ceil(left * 1000));
        if (pr <= 0)
            continue; /* timeout or a signal: checked above */
        ssize_t n;
        if (l->tcp) {
            n = recv(l->fd, l->in + l->have, sizeof l->in - l->have, 0);
            if (n == 0) {
                *why = cli_fail(EXIT_NO_ANSWER, "send: the daemon closed the connection");
                return 0;
            }
            if (n > 0)
                l->have += (size_t)n;
        } else {
            n = recv(l->fd, buf, sizeof buf, 0);
            if (n > 0 && reply_take(r, buf, (size_t)n))
                return 1;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            *why = cli_fail(EXIT_NO_ANSWER, "send: no daemon on %s %s:%s: %s",
                            l->tcp ? "TCP" : "UDP", l->host, l->port, strerror(errno));
            return 0;
        }
    }
}

/* Argument i as a string ("" when it is none). */
static const char *arg_s(lo_message m, int i)
{
    const char *t = lo_message_get_types(m);
    return i < lo_message_get_argc(m) && (t[i] == 's' || t[i] == 'S')
               ? (const char *)lo_message_get_argv(m)[i]
               : "";
}

/* The field names the table gives a reply: in spec, after the word path,
 * the words "t:name" ("i:rate", "f|i|s:value") up to the first that is
 * not one. */
static int reply_names(const char *spec, const char *path, char names[][32], int max)
{
    size_t pl = strlen(path);
    const char *p = spec;
    while ((p = strstr(p, path)) && ((p > spec && p[-1] != ' ') || p[pl] != ' '))
        p += pl;
    if (!p)
        return 0;
    p += pl;
    int n = 0;
    while (n < max) {
        while (*p == ' ')
            p++;
        const char *colon = p;
        while (*colon && strchr("fihsdTF|", *colon))
            colon++;
        if (colon == p || *colon != ':')
            break;
        const char *q = colon + 1, *e = q;
        while (*e && *e != ' ' && *e != ',' && *e != ';' && *e != ')')
            e++;
        if (e == q || (*e && *e != ' '))
            break;
        snprintf(names[n++], 32, "%.*s", (int)(e - q), q);
        p = e;
    }
    return n;
}

/* A string for the terminal: control characters escaped. */
static void put_text(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            printf(c == '\n' ? "\\n" : c == '\\' ? "\\\\" : "\\x%02x", c);
        else
            putchar(c);
    }
}

static void put_arg(lo_message m, int i)
{
    const char *t = lo_message_get_types(m);
    lo_arg *a = lo_message_get_argv(m)[i];
    float f;
    int32_t v;
    double d;
    int64_t h;
    switch (t[i]) {
    case 'f': memcpy(&f, a, 4); printf("%g", (double)f); break;
    case 'i': memcpy(&v, a, 4); printf("%d", (int)v); break;
    case 'd': memcpy(&d, a, 8); printf("%g", d); break;
    case 'h': memcpy(&h, a, 8); printf("%lld", (long long)h); break;
    case 's': case 'S': put_text((const char *)a); break;
    case 'T': printf("true"); break;
    case 'F': printf("false"); break;
    default: printf("(%c)", t[i]); break;
    }
}

/* One line: "/fail ADDRESS: reason", "/done ADDRESS", or the path and each
 * argument, as name=value where the table names it. */
static void print_reply(const reply *r, const char *spec)
{
    lo_message m = r->m;
    int argc = lo_message_get_argc(m);
    const char *path = r->path;
    if (!strcmp(path, "/fail") && argc >= 2) {
        printf("/fail ");
        put_text(arg_s(m, 0));
        printf(": ");
        put_text(arg_s(m, 1));
        printf("\n");
        return;
    }
    char names[MAX_NAMES][32];
    int nn = strcmp(path, "/done") && spec ? reply_names(spec, path, names, MAX_NAMES) : 0;
    put_text(path);
    for (int i = 0; i < argc; i++) {
        printf(" ");
        if (i < nn)
            printf("%s=", names[i]);
        put_arg(m, i);
    }
    printf("\n");
}

/* The arguments from text, by types: a message, or NULL with *code set. */
static lo_message build(const char *addr, const char *types, char **args, int nargs, int *code)
{
    size_t nt = strlen(types);
    if ((size_t)nargs != nt) {
        *code = cli_fail(EXIT_USAGE, "send: %s takes %zu argument%s (types '%s'), got %d", addr,
                         nt, nt == 1 ? "" : "s", types, nargs);
        return NULL;
    }
    lo_message m = lo_message_new();
    for (int i = 0; i < nargs; i++) {
        double v = 0;
        if (types[i] == 's') {
            lo_message_add_string(m, args[i]);
            continue;
        }
        if (types[i] != 'f' && types[i] != 'i') {
            lo_message_free(m);
            *code = cli_fail(EXIT_USAGE, "send: type '%c': give f (float), i (int) or s "
                             "(string)", types[i]);
            return NULL;
        }
        int pe = preset_parse_number(args[i], &v);
        if (pe || (types[i] == 'i' && (v != floor(v) || fabs(v) > 2147483647.0))) {
            lo_message_free(m);
            *code = cli_fail(EXIT_USAGE, "send: %s argument %d '%s': %s", addr, i + 1, args[i],
                             pe ? cli_float_why(pe) : "not an integer (type i)");
            return NULL;
        }
        if (types[i] == 'i')
            lo_message_add_int32(m, (int32_t)v);
        else
            lo_message_add_float(m, (float)v);
    }
    return m;
}

/* Subscribe, print /meter lines until SIGINT or SIGTERM, unsubscribe. */
static int watch(osc_link *l, double timeout_s)
{
    const osc_entry *e = osc_table_find("/notify");
    lo_message on = lo_message_new(), off = lo_message_new();
    lo_message_add_int32(on, 1);
    lo_message_add_int32(off, 0);
    int code = link_send(l, "/notify", on);
    double renewed = now_s(), heard = renewed;
    int subscribed = 0;
    while (!code && !stop) {
        int why;
        reply r;
        int got = link_recv(l, fmin(renewed + RENEW_S, heard + timeout_s), &r, &why);
        if (why) {
            code = why;
            break;
        }
        double t = now_s();
        if (got) {
            heard = t;
            if (!strcmp(r.path, "/meter")) {
                print_reply(&r, e->reply);
                fflush(stdout);
            } else if (!strcmp(r.path, "/fail") && !strcmp(arg_s(r.m, 0), "/notify")) {
                print_reply(&r, NULL);
                code = EXIT_RUNTIME;
            } else if (!strcmp(r.path, "/done")) {
                subscribed = 1;
            }
            lo_message_free(r.m);
        } else if (!stop && t - heard >= timeout_s) {
            code = cli_fail(EXIT_NO_ANSWER, "send: nothing from %s:%s for %g s", l->host,
                            l->port, timeout_s);
        }
        /* the lease: renewed by every message, here once a second */
        if (!code && !stop && t - renewed >= RENEW_S) {
            code = link_send(l, "/notify", on);
            renewed = t;
        }
    }
    if (stop && subscribed) {
        /* Unsubscribe, and wait a little for the daemon to say so. */
        if (!link_send(l, "/notify", off)) {
            double until = now_s() + fmin(timeout_s, 1.0);
            stop = 0;
            for (;;) {
                int why;
                reply r;
                if (!link_recv(l, until, &r, &why))
                    break;
                int done = !strcmp(r.path, "/done") && !strcmp(arg_s(r.m, 0), "/notify");
                lo_message_free(r.m);
                if (done)
                    break;
            }
        }
    }
    lo_message_free(on);
    lo_message_free(off);
    return code;
}

int cmd_send(int argc, char **argv)
{
    osc_link l = {.fd = -1, .host = "127.0.0.1", .port = "9000"};
    double timeout_s = 5;
    const char *types = NULL;
    int watching = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        float f;
        if (!strcmp(a, "--tcp")) {
            l.tcp = 1;
            continue;
        }
        if (!strcmp(a, "--watch")) {
            watching = 1;
            continue;
        }
        if (strcmp(a, "--host") && strcmp(a, "--port") && strcmp(a, "--timeout") &&
            strcmp(a, "--types"))
            return cli_fail(EXIT_USAGE, "send: unknown flag '%s' (see 'oscine help send'; flags "
                            "come before the address)", a);
        if (!v)
            return cli_fail(EXIT_USAGE, "send: %s needs a value", a);
        i++;
        if (!strcmp(a, "--host")) {
            l.host = v;
        } else if (!strcmp(a, "--port")) {
            if (cli_parse_int(v, 1, 65535, &n))
                return cli_fail(EXIT_USAGE, "send: --port '%s': give 1..65535", v);
            l.port = v;
        } else if (!strcmp(a, "--timeout")) {
            if (cli_parse_float(v, &f) || !(f > 0) || f > 3600)
                return cli_fail(EXIT_USAGE, "send: --timeout '%s': give seconds, more than 0 "
                                "and at most 3600", v);
            timeout_s = f;
        } else {
            if (!v[0] || strspn(v, "fis") != strlen(v))
                return cli_fail(EXIT_USAGE, "send: --types '%s': one letter per argument, f "
                                "(float), i (int) or s (string)", v);
            types = v;
        }
    }
    if (i == argc)
        return cli_fail(EXIT_USAGE, "send: give an OSC address, e.g. oscine send /status");
    const char *addr = argv[i++];
    if (addr[0] != '/')
        return cli_fail(EXIT_USAGE, "send: '%s' is not an OSC address (they start with '/')",
                        addr);
    osc_table_init();
    const osc_entry *e = osc_table_find(addr);
    if (watching) {
        if (strcmp(addr, "/notify") || i != argc || types)
            return cli_fail(EXIT_USAGE, "send: --watch goes with /notify alone: oscine send "
                            "--watch /notify");
    } else if (!types && !e) {
        return cli_fail(EXIT_USAGE, "send: unknown address '%s' (see 'oscine help osc'; for "
                        "an address of another program give its types: --types f ...)", addr);
    }
    int code = 0;
    lo_message m = NULL;
    if (!watching && !(m = build(addr, types ? types : e->types, argv + i, argc - i, &code)))
        return code;
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if ((code = link_open(&l, timeout_s))) {
        lo_message_free(m);
        return code;
    }
    if (watching) {
        code = watch(&l, timeout_s);
    } else {
        /* The reply the table promises ("/status.reply", "/value"; else
         * /done naming the address), or /fail naming it. */
        char expect[64] = "/done";
        if (e && e->reply[0] == '/')
            snprintf(expect, sizeof expect, "%.*s", (int)strcspn(e->reply, " ;("), e->reply);
        code = link_send(&l, addr, m);
        double until = now_s() + timeout_s;
        while (!code) {
            int why;
            reply r;
            if (!link_recv(&l, until, &r, &why)) {
                code = why ? why : cli_fail(EXIT_NO_ANSWER, "send: no answer from %s:%s "
                                            "within %g s", l.host, l.port, timeout_s);
                break;
            }
            int failed = !strcmp(r.path, "/fail") && !strcmp(arg_s(r.m, 0), addr);
            int ok = !strcmp(r.path, expect) &&
                     (strcmp(expect, "/done") || !strcmp(arg_s(r.m, 0), addr));
            if (failed || ok) {
                print_reply(&r, e ? e->reply : NULL);
                code = failed ? EXIT_RUNTIME : EXIT_OK;
                lo_message_free(r.m);
                break;
            }
            lo_message_free(r.m);
        }
    }
    lo_message_free(m);
    close(l.fd);
    if (fflush(stdout) || ferror(stdout))
        return cli_fail(EXIT_RUNTIME, "send: cannot write the reply: %s", strerror(errno));
    return code;
}
