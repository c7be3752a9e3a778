/* preset.c - see preset.h. */
#include "osc/preset.h"

#include "base/error.h"
#include "base/paths.h"
#include "oscine.h"

#include <ctype.h>
#include <errno.h>
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

int preset_parse_line(const char *text, preset_line *out)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    char *hash = strchr(buf, '#');
    if (hash)
        *hash = 0;
    char *p = buf;
    while (isspace((unsigned char)*p))
        p++;
    char *end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1]))
        *--end = 0;
    if (!*p)
        return 0;
    char *addr = p;
    while (*p && !isspace((unsigned char)*p))
        p++;
    if (*p)
        *p++ = 0;
    while (isspace((unsigned char)*p))
        p++;
    const osc_entry *e = osc_table_find(addr);
    if (!e)
        return err_set(OSCINE_E_PARAM, "unknown address '%s'", addr);
    if (!e->settable)
        return err_set(OSCINE_E_PARAM, "'%s' is a command, not a setting", addr);
    memset(out, 0, sizeof *out);
    out->e = e;
    if (e->types[0] == 's') {
        size_t n = strlen(p);
        if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
            p[n - 1] = 0;
            p++;
        }
        if (!*p)
            return err_set(OSCINE_E_ARG, "%s needs a string", addr);
        if (strlen(p) >= sizeof out->s)
            return err_set(OSCINE_E_ARG, "%s: string longer than %zu characters", addr,
                           sizeof out->s - 1);
        memcpy(out->s, p, strlen(p) + 1);
        return 1;
    }
    char *num_end;
    errno = 0;
    double v = strtod(p, &num_end);
    if (!*p || *num_end || errno || !isfinite(v))
        return err_set(OSCINE_E_ARG, "%s needs a number, got '%s'", addr, p);
    if (e->types[0] == 'i' && v != floor(v))
        return err_set(OSCINE_E_ARG, "%s needs an integer, got '%s'", addr, p);
    if (v < e->min || v > e->max)
        return err_set(OSCINE_E_RANGE, "%s: %g out of range %g..%g%s%s", addr, v,
                       (double)e->min, (double)e->max, e->unit[0] ? " " : "", e->unit);
    out->f = (float)v;
    return 1;
}

int preset_parse_file(const char *path, preset_line *lines, int max, int *n)
{
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(OSCINE_E_IO, "preset '%s': %s", path, strerror(errno));
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
        if (len > 1023) {
            e = err_set(OSCINE_E_ARG, "preset '%s' line %d: line too long (%zd bytes; at most "
                        "1023)", path, lineno, len);
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
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# oscine preset '%s' (saved by /preset/save)\n", name);
    for (int i = 0; i < n; i++) {
        if (lines[i].e->types[0] == 's')
            fprintf(f, "%s %s\n", lines[i].e->path, lines[i].s);
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
