/* util.c - see util.h. */
#include "util.h"

#include "nn/weights.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void drain(int fd, char *buf, size_t len)
{
    size_t n = 0;
    ssize_t r;
    char sink[4096];
    while (1) {
        if (buf && n + 1 < len)
            r = read(fd, buf + n, len - 1 - n);
        else
            r = read(fd, sink, sizeof sink);
        if (r <= 0)
            break;
        if (buf && n + 1 < len)
            n += (size_t)r;
    }
    if (buf && len)
        buf[n] = 0;
}

int run_oscine(char *out, size_t outlen, char *err, size_t errlen, ...)
{
    const char *bin = getenv("OSCINE_BIN");
    if (!bin)
        bin = "build/oscine";
    const char *argv[64];
    int argc = 0;
    argv[argc++] = bin;
    va_list ap;
    va_start(ap, errlen);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 63)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    /* stdout and stderr go to temporary files, read back after exit, so a
     * chatty child can never block on a full pipe. */
    char po[] = "/tmp/oscine-test-outXXXXXX", pe[] = "/tmp/oscine-test-errXXXXXX";
    int fo = mkstemp(po), fe = mkstemp(pe);
    if (fo < 0 || fe < 0)
        return -2;
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    lseek(fo, 0, SEEK_SET);
    lseek(fe, 0, SEEK_SET);
    drain(fo, out, outlen);
    drain(fe, err, errlen);
    close(fo);
    close(fe);
    unlink(po);
    unlink(pe);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return -1;
}

const char *tmpdir_make(void)
{
    static char dirs[16][64];
    static int next;
    char *d = dirs[next++ % 16];
    snprintf(d, 64, "/tmp/oscine-test-XXXXXX");
    if (!mkdtemp(d))
        return NULL;
    return d;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

void tmpdir_remove(const char *dir)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int dir_count(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* Sum of squared errors and of the squared reference. */
static void err_sums(const float *ref, const float *got, size_t n, double *e, double *r)
{
    *e = *r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        *e += d * d;
        *r += (double)ref[i] * ref[i];
    }
}

double err_db(const float *ref, const float *got, size_t n)
{
    double e, r;
    err_sums(ref, got, n, &e, &r);
    if (r == 0)
        return e == 0 ? -400 : 400;
    if (e == 0)
        return -400;
    return 10 * log10(e / r);
}

double nmse(const float *ref, const float *got, size_t n)
{
    double e, r;
    err_sums(ref, got, n, &e, &r);
    return r > 0 ? e / r : e;
}

float *sound_read(const char *path, SF_INFO *info)
{
    *info = (SF_INFO){0};
    SNDFILE *sf = sf_open(path, SFM_READ, info);
    if (!sf)
        fail_msg("cannot read %s: %s", path, sf_strerror(NULL));
    size_t n = (size_t)(info->frames * info->channels);
    float *x = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(x);
    assert_int_equal(sf_readf_float(sf, x, info->frames), info->frames);
    sf_close(sf);
    return x;
}

float *sound_read_mono(const char *path, int rate, size_t *n)
{
    SF_INFO info;
    float *x = sound_read(path, &info);
    assert_int_equal(info.channels, 1);
    if (rate > 0)
        assert_int_equal(info.samplerate, rate);
    *n = (size_t)info.frames;
    return x;
}

uint8_t *read_file_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open '%s'", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    assert_true(n >= 0);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

const float *fixture_tensor(const struct osw_file *w, const char *name, int64_t *len)
{
    int i = osw_tensor_find(w, name);
    const char *nm;
    int nd;
    const int64_t *sh;
    if (i < 0)
        fail_msg("fixture '%s': no tensor '%s'", osw_path(w), name);
    assert_int_equal(osw_tensor_info(w, i, &nm, &nd, &sh), 0);
    int64_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= sh[k];
    const float *p;
    assert_int_equal(osw_get_f32(w, name, nd, sh, &p), 0);
    *len = n;
    return p;
}

int build_repo_dirs(char *build_dir, char *repo_dir)
{
    const char *bin = getenv("OSCINE_BIN");
    char b[PATH_MAX];
    snprintf(b, sizeof b, "%s", bin ? bin : "build/oscine");
    return realpath(dirname(b), build_dir) && getcwd(repo_dir, PATH_MAX) ? 0 : -1;
}

/* ------------------------------------------------------ shell commands */

static char sh_dir[300] = "/tmp";
char host_env[PATH_MAX + 64];

int host_test_setup(char *build_dir, char *repo_dir, char *tmp, size_t cap)
{
    if (build_repo_dirs(build_dir, repo_dir))
        return -1;
    const char *t = tmpdir_make();
    if (!t)
        return -1;
    snprintf(tmp, cap, "%s", t);
    sh_dir_set(tmp);
    host_env[0] = 0;
#if defined(__SANITIZE_ADDRESS__)
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 128];
    while (f && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, "/libasan.so")) {
            p[strcspn(p, "\n")] = 0;
            snprintf(host_env, sizeof host_env, "LD_PRELOAD=%s ASAN_OPTIONS=detect_leaks=0 ", p);
            break;
        }
    }
    if (f)
        fclose(f);
#endif
    return 0;
}
char sh_out[65536];

void sh_dir_set(const char *dir) { snprintf(sh_dir, sizeof sh_dir, "%s", dir); }

int sh(const char *fmt, ...)
{
    char cmd[8192], log[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/cmd.log", sh_dir);
    char full[8700];
    snprintf(full, sizeof full, "( %s ) > %s 2>&1", cmd, log);
    int st = system(full);
    FILE *f = fopen(log, "rb");
    size_t n = f ? fread(sh_out, 1, sizeof sh_out - 1, f) : 0;
    sh_out[n] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *tpath(const char *name)
{
    static char bufs[4][400];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", sh_dir, name);
    return b;
}

int have_tool(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

uint8_t *patched_osw(const uint8_t *b, size_t len, const char *after, const char *from, const char *to)
{
    assert_int_equal(strlen(from), strlen(to));
    uint8_t *c = malloc(len);
    assert_non_null(c);
    memcpy(c, b, len);
    uint8_t *start = after ? memmem(c, len, after, strlen(after)) : c;
    assert_non_null(start);
    uint8_t *at = memmem(start, len - (size_t)(start - c), from, strlen(from));
    assert_non_null(at);
    memcpy(at, to, strlen(to));
    uint32_t crc = osw_crc32(0, c, len - 4);
    for (int j = 0; j < 4; j++)
        c[len - 4 + j] = (uint8_t)(crc >> (8 * j));
    return c;
}
