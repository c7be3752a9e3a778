/* preset.c - see preset.h. */
#include "osc/preset.h"

#include "base/error.h"
#include "base/paths.h"
#include "engine/chainrt.h"
#include "oscine.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int preset_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return 0;
    return 1;
}

static int user_dir(char *out, size_t len)
{
    const char *x = getenv("XDG_CONFIG_HOME");
    const char *h = getenv("HOME");
    if (x && x[0])
        snprintf(out, len, "%s/oscine/presets", x);
    else if (h && h[0])
        snprintf(out, len, "%s/.config/oscine/presets", h);
    else
        return -1;
    return 0;
}

/* Calls fn for each preset folder in search order until it returns non-zero. */
static int each_dir(int (*fn)(const char *dir, void *u), void *u)
{
    char buf[4096];
    const char *env = getenv("OSCINE_PRESET_PATH");
    if (env && env[0]) {
        snprintf(buf, sizeof buf, "%s", env);
        char *save = NULL;
        for (char *t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save))
            if (fn(t, u))
                return 1;
    }
    if (!user_dir(buf, sizeof buf) && fn(buf, u))
        return 1;
    snprintf(buf, sizeof buf, "%s/presets", paths_install_dir()); /* beside the program */
    if (fn(buf, u))
        return 1;
    if (fn("presets", u))
        return 1;
    if (!paths_data_dir())
        return 0;
    snprintf(buf, sizeof buf, "%s/presets", paths_data_dir());
    return fn(buf, u);
}

typedef struct find_ctx {
    const char *name;
    char *path;
    size_t len;
} find_ctx;

static int try_dir(const char *dir, void *u)
{
    find_ctx *f = u;
    snprintf(f->path, f->len, "%s/%s.osc", dir, f->name);
    return access(f->path, R_OK) == 0;
}

int preset_resolve(const char *name, char *path, size_t len)
{
    if (!preset_name_ok(name))
        return err_set(OSCINE_E_ARG, "preset '%s': a preset name is letters, digits, '-' "
                       "and '_' (not a path)", name);
    find_ctx f = {name, path, len};
    if (each_dir(try_dir, &f))
        return 0;
    return err_set(OSCINE_E_IO, "preset '%s': not found in the preset folders", name);
}

int preset_resolve_local(const char *name_or_path, char *path, size_t len)
{
    size_t n = strlen(name_or_path);
    if (!strchr(name_or_path, '/') && !(n > 4 && !strcmp(name_or_path + n - 4, ".osc")))
        return preset_resolve(name_or_path, path, len);
    struct stat st;
    if (stat(name_or_path, &st) != 0)
        return err_set(OSCINE_E_IO, "preset file '%s': %s", name_or_path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return err_set(OSCINE_E_IO, "preset file '%s': is a directory", name_or_path);
    if (access(name_or_path, R_OK) != 0)
        return err_set(OSCINE_E_IO, "preset file '%s': %s", name_or_path, strerror(errno));
    if (n >= len)
        return err_set(OSCINE_E_ARG, "preset file '%s': path too long", name_or_path);
    memcpy(path, name_or_path, n + 1);
    return 0;
}

int preset_parse_number(const char *s, double *out)
{
    char *end;
    /* decimal only: strtod would also read "0x10" as 16 and "inf", "nan" */
    if (strpbrk(s, "xXpPiInN"))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) < 1.0)
        v = 0.0, errno = 0; /* 1e-400: too small to matter, not an error */
    if (!s[0] || *end)
        return -1;
    if (errno || !isfinite(v) || fabs(v) > 3.4e38)
        return -2; /* a number, beyond what a float holds */
    *out = v;
    return 0;
}

int preset_chain_canon(const char *spec, char *out, size_t len)
{
    size_t j = 0;
    int stages = 0;
    const char *p = spec;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *q = p;
        while (*q && *q != ',')
            q++;
        const char *e = q;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == p && (*q == ',' || stages))
            return err_set(OSCINE_E_STAGE, "an empty stage name (stages are separated by single "
                           "commas)");
        if (e > p) {
            size_t n = (size_t)(e - p);
            if (j + n + (stages ? 1 : 0) >= len)
                return err_set(OSCINE_E_STAGE, "longer than %zu characters", len - 1);
            if (stages)
                out[j++] = ',';
            memcpy(out + j, p, n);
            j += n;
            stages++;
        }
        if (!*q)
            break;
        p = q + 1;
    }
    out[j] = 0;
    if (!stages)
        return err_set(OSCINE_E_STAGE, "no stage given (the plainest chain is 'passthrough')");
    return chain_spec_check(out);
}

/* Text from a file, fit to be quoted in a message that may go to an OSC
 * client: only a short token of plain characters (what an address, a number
 * or a name is made of), so a line of some other file reached by a symlink
 * is never echoed. */
static int quotable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("/_.+-", s[i]))
            return 0;
    return 1;
}

int preset_parse_line(const char *text, preset_line *out)
{
    size_t tn = strlen(text);
    while (tn && (text[tn - 1] == '\n' || text[tn - 1] == '\r'))
        tn--;
    if (tn > PRESET_LINE_MAX)
        return err_set(OSCINE_E_ARG, "line too long (%zu bytes; at most %d)", tn,
                       PRESET_LINE_MAX);
    char buf[PRESET_LINE_MAX + 1];
    memcpy(buf, text, tn);
    buf[tn] = 0;
    for (size_t i = 0; i < tn; i++)
        if (((unsigned char)buf[i] < 0x20 && buf[i] != '\t') || buf[i] == 0x7f)
            return err_set(OSCINE_E_ARG, "a control character (byte 0x%02x; not a text line)",
                           (unsigned char)buf[i]);
    char *p = buf;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p || *p == '#')
        return 0;
    char *addr = p;
    while (*p && !isspace((unsigned char)*p) && *p != '#')
        p++;
    int comment = *p == '#';
    if (*p)
        *p++ = 0;
    if (comment)
        *p = 0; /* "/engine/bypass#..." has no value */
    while (isspace((unsigned char)*p))
        p++;
    /* the value: "quoted" (it may hold a '#'), or up to a comment */
    char *val = p;
    if (*p == '"') {
        val = ++p;
        char *close = strchr(p, '"');
        if (!close)
            return err_set(OSCINE_E_ARG, "%s: no closing quote",
                           quotable(addr, 63) ? addr : "the value");
        *close = 0;
        p = close + 1;
        while (isspace((unsigned char)*p))
            p++;
        if (*p && *p != '#')
            return err_set(OSCINE_E_ARG, "%s: text after the closing quote",
                           quotable(addr, 63) ? addr : "the value");
    } else {
        char *hash = strchr(p, '#');
        if (hash)
            *hash = 0;
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = 0;
    }
    if (addr[0] != '/' || !quotable(addr, 63))
        return err_set(OSCINE_E_PARAM, "not a setting: a line is an OSC address ('/...') and "
                       "a value");
    const osc_entry *e = osc_table_find(addr);
    if (!e)
        return err_set(OSCINE_E_PARAM, "unknown address '%s'", addr);
    if (!e->settable)
        return err_set(OSCINE_E_PARAM, "'%s' is a command, not a setting", addr);
    memset(out, 0, sizeof *out);
    out->e = e;
    if (e->types[0] == 's') {
        if (!*val)
            return err_set(OSCINE_E_ARG, "%s needs a string", addr);
        if (strchr(val, '"'))
            return err_set(OSCINE_E_ARG, "%s: a string cannot hold '\"'", addr);
        if (!strcmp(addr, "/engine/chain"))
            return preset_chain_canon(val, out->s, sizeof out->s)
                       ? err_prefix(OSCINE_E_STAGE, "%s", addr)
                       : 1;
        if (strlen(val) >= sizeof out->s)
            return err_set(OSCINE_E_ARG, "%s: string longer than %zu characters", addr,
                           sizeof out->s - 1);
        memcpy(out->s, val, strlen(val) + 1);
        return 1;
    }
    double v;
    int pe = preset_parse_number(val, &v);
    if (pe == -2)
        return err_set(OSCINE_E_RANGE, "%s: %s is beyond the range of a float (3.4e38)", addr,
                       quotable(val, 32) ? val : "the value");
    if (pe)
        return err_set(OSCINE_E_ARG, quotable(val, 32) ? "%s needs a decimal number, got '%s'"
                                                      : "%s needs a decimal number%.0s",
                       addr, val);
    if (e->types[0] == 'i' && v != floor(v))
        return err_set(OSCINE_E_ARG, "%s needs an integer, got '%s'", addr, val);
    if (v < e->min || v > e->max)
        return err_set(OSCINE_E_RANGE, "%s: %g out of range %g..%g%s%s", addr, v,
                       (double)e->min, (double)e->max, e->unit[0] ? " " : "", e->unit);
    out->f = (float)v;
    return 1;
}

int preset_parse_file(const char *path, preset_line *lines, int max, int *n)
{
    *n = 0;
    /* Non-blocking open, then only a regular file: a FIFO or a device named
     * x.osc must not hold up the daemon's main loop. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return err_set(OSCINE_E_IO, "preset '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(OSCINE_E_IO, "preset '%s': not a regular file", path);
    }
    if (st.st_size > PRESET_FILE_MAX) {
        close(fd);
        return err_set(OSCINE_E_IO, "preset '%s': %lld bytes, more than a preset holds (at "
                       "most %d)", path, (long long)st.st_size, PRESET_FILE_MAX);
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return err_set(OSCINE_E_IO, "preset '%s': %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, e = 0;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        lineno++;
        if (strlen(buf) != (size_t)len) {
            e = err_set(OSCINE_E_ARG, "preset '%s' line %d: a NUL byte (not a text file)", path,
                        lineno);
            break;
        }
        preset_line l;
        int r = preset_parse_line(buf, &l);
        if (r < 0) {
            e = err_prefix(r, "preset '%s' line %d", path, lineno);
            break;
        }
        if (r == 0)
            continue;
        if (*n == max) {
            e = err_set(OSCINE_E_ARG, "preset '%s': more than %d lines", path, max);
            break;
        }
        l.lineno = lineno;
        lines[(*n)++] = l;
    }
    free(buf);
    fclose(f);
    return e;
}

static int mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

int preset_save(const char *name, const preset_line *lines, int n, char *path, size_t len)
{
    if (!preset_name_ok(name))
        return err_set(OSCINE_E_ARG, "preset '%s': a preset name is letters, digits, '-' "
                       "and '_' (not a path)", name);
    char dir[4096];
    const char *env = getenv("OSCINE_PRESET_PATH");
    if (env && env[0]) {
        snprintf(dir, sizeof dir, "%s", env);
        char *colon = strchr(dir, ':');
        if (colon)
            *colon = 0;
    } else if (user_dir(dir, sizeof dir)) {
        return err_set(OSCINE_E_IO, "preset '%s': no HOME to save presets in", name);
    }
    if (mkdirs(dir))
        return err_set(OSCINE_E_IO, "preset '%s': cannot create folder '%s': %s", name, dir,
                       strerror(errno));
    snprintf(path, len, "%s/%s.osc", dir, name);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.osc.XXXXXX", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return err_set(OSCINE_E_IO, "preset '%s': cannot write in '%s': %s", name, dir,
                       strerror(errno));
    for (int i = 0; i < n; i++)
        if (lines[i].e->types[0] == 's' && strpbrk(lines[i].s, "\"\n\r")) {
            close(fd);
            unlink(tmp);
            return err_set(OSCINE_E_ARG, "preset '%s': %s holds a quote or a line break", name,
                           lines[i].e->path);
        }
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# oscine preset '%s' (saved by /preset/save)\n", name);
    for (int i = 0; i < n; i++) {
        const char *s = lines[i].s;
        size_t sn = strlen(s);
        /* quoted where a plain value would read back otherwise */
        int quote = strchr(s, '#') || !sn || isspace((unsigned char)s[0]) ||
                    isspace((unsigned char)s[sn - 1]);
        if (lines[i].e->types[0] == 's')
            fprintf(f, quote ? "%s \"%s\"\n" : "%s %s\n", lines[i].e->path, s);
        else
            fprintf(f, "%s %.9g\n", lines[i].e->path, (double)lines[i].f);
    }
    int bad = ferror(f);
    bad |= fflush(f) != 0;
    fchmod(fd, 0644);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        return err_set(OSCINE_E_IO, "preset '%s': writing '%s' failed", name, path);
    }
    return 0;
}
