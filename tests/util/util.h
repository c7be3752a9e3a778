/* util.h - shared helpers for the C test programs (cmocka). */
#ifndef OSCINE_TEST_UTIL_H
#define OSCINE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sndfile.h>

/* Run build/oscine (path from $OSCINE_BIN, default build/oscine) with a NULL-
 * terminated argument list (without argv[0]). Captures stderr and stdout into
 * the given buffers (may be NULL) and returns the exit status, or -1 if the
 * program died from a signal. */
int run_oscine(char *out, size_t outlen, char *err, size_t errlen, ...);

/* Make a fresh temporary directory; the path lives until the test ends. */
const char *tmpdir_make(void);

/* The absolute folder of the oscine binary under test ($OSCINE_BIN, default
 * build/oscine: build/ or build-asan/) and of the repository (the current
 * folder); both buffers hold PATH_MAX bytes. 0, or -1 if either is missing. */
int build_repo_dirs(char *build_dir, char *repo_dir);

/* Remove a directory made by tmpdir_make and everything in it. */
void tmpdir_remove(const char *dir);

/* Does a path exist? */
int path_exists(const char *path);

/* Number of entries in a directory (excluding . and ..). */
int dir_count(const char *dir);

/* Deterministic uniform random in [-1, 1). */
float urand(uint64_t *state);

/* 10*log10(sum err^2 / sum ref^2) over n samples. */
double err_db(const float *ref, const float *got, size_t n);

/* Normalised mean squared error sum err^2 / sum ref^2 (sum err^2 when the
 * reference is all zeros): the golden tests' measure. */
double nmse(const float *ref, const float *got, size_t n);

/* A float32 tensor of a golden fixture (.osw) by name, any shape: fails the
 * test when absent; *len receives its element count. */
struct osw_file;
const float *fixture_tensor(const struct osw_file *w, const char *name, int64_t *len);

/* A sound file's samples as float, interleaved (malloc'd; the caller frees);
 * *info receives its frames, channels, rate and format. Fails the test, naming
 * the file, when it cannot be read. */
float *sound_read(const char *path, SF_INFO *info);

/* A mono file's samples (sound_read), their count in *n; fails the test when
 * the file has more channels or (rate > 0) another sample rate. */
float *sound_read_mono(const char *path, int rate, size_t *n);

/* A whole file's bytes (malloc'd; the caller frees), its size in *len; fails
 * the test when it cannot be read. */
uint8_t *read_file_bytes(const char *path, size_t *len);

/* A copy (malloc'd) of a weights file's bytes b with the first `from` after
 * `after` (NULL: from the start) replaced by `to`, as long, and its checksum
 * made right again: a consistent file with one value changed. Fails the test
 * when either string is missing. */
uint8_t *patched_osw(const uint8_t *b, size_t len, const char *after, const char *from, const char *to);

/* ---- shell commands, for the tests that drive outside programs (hosts) */

/* Setup of a test that drives outside programs: the build and repository
 * folders (build_repo_dirs, PATH_MAX bytes each), a fresh tmpdir_make()
 * folder copied into tmp (cap bytes) and made sh_dir_set()'s, and
 * host_env. 0, or -1 if a folder is missing. */
int host_test_setup(char *build_dir, char *repo_dir, char *tmp, size_t cap);

/* Prefix for outside hosts' commands: under AddressSanitizer,
 * "LD_PRELOAD=<this process's libasan> ASAN_OPTIONS=detect_leaks=0 " (a host
 * that loads an instrumented plugin needs the runtime first); else "". Set
 * by host_test_setup. */
extern char host_env[];

/* The folder that holds sh()'s log and tpath()'s files: call it in setup
 * with the test's tmpdir_make() folder. */
void sh_dir_set(const char *dir);

/* Run a shell command (printf-style) with its stdout and stderr captured
 * into sh_out; the exit status, or -1 if it died from a signal. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern char sh_out[65536];

/* dir/name in the sh_dir_set() folder (four results live at once). */
const char *tpath(const char *name);

/* Is a program on PATH? NEED() skips the test when it is not. */
int have_tool(const char *tool);
#define NEED(tool)                                                                 \
    do {                                                                           \
        if (!have_tool(tool)) {                                                    \
            print_message("SKIP: %s is not installed (make deps)\n", tool);        \
            skip();                                                                \
        }                                                                          \
    } while (0)

#endif
