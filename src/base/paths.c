/* paths.c - see paths.h. */
#include "base/paths.h"

#include "oscine.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[2048];
static char model_dirs[PATH_MAX + 2200];
static char install_dir[PATH_MAX];
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

void oscine_set_data_dir(const char *dir)
{
    /* a ':' would split the search list; such a folder is not used */
    int ok = dir && strlen(dir) < sizeof data_dir && !strchr(dir, ':');
    snprintf(data_dir, sizeof data_dir, "%s", ok ? dir : "");
}

const char *paths_data_dir(void)
{
    return data_dir[0] ? data_dir : NULL;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The real path of the file this function's code was loaded from, into
 * out (PATH_MAX bytes); 0, or -1 when it cannot be told. */
static int own_file(char *out)
{
    Dl_info info;
    struct link_map *map = NULL;
    if (dladdr1((void *)own_file, &info, (void **)&map, RTLD_DL_LINKMAP) && map &&
        map->l_name && map->l_name[0]) /* a shared object: a plugin, liboscine.so */
        return realpath(map->l_name, out) ? 0 : -1;
    /* the main program (its link map has no name) */
    ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
    if (n <= 0)
        return -1;
    out[n] = 0;
    return 0;
}

static void find_install_dir(void)
{
    char path[PATH_MAX], cand[PATH_MAX + 16];
    snprintf(install_dir, sizeof install_dir, "%s", OSCINE_DATADIR);
    if (own_file(path))
        return;
    for (int up = 0; up < 4; up++) { /* up 0 is the file itself */
        char *slash = strrchr(path, '/');
        if (!slash)
            return;
        *slash = 0;
        if (up == 0)
            continue;
        snprintf(cand, sizeof cand, "%s/share/oscine", path);
        if (is_dir(cand) && strlen(cand) < sizeof install_dir) {
            memcpy(install_dir, cand, strlen(cand) + 1);
            return;
        }
    }
}

const char *paths_install_dir(void)
{
    pthread_once(&install_once, find_install_dir);
    return install_dir;
}

const char *paths_model_dirs(void)
{
    const char *inst = paths_install_dir();
    if (data_dir[0])
        snprintf(model_dirs, sizeof model_dirs,
                 "$OSCINE_MODEL_PATH, ./models, %s/models or %s/models", inst, data_dir);
    else
        snprintf(model_dirs, sizeof model_dirs, "$OSCINE_MODEL_PATH, ./models or %s/models",
                 inst);
    return model_dirs;
}

int paths_file_exists(const char *path)
{
    /* without blocking: a FIFO in a model folder is not waited on */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    return ok;
}

/* dir/file into out when that can be read. */
static int try_model(const char *dir, const char *file, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, file);
    return paths_file_exists(out);
}

int paths_find_model(const char *file, char *out, size_t len)
{
    const char *env = getenv("OSCINE_MODEL_PATH");
    if (env && env[0]) {
        char dirs[8192];
        snprintf(dirs, sizeof dirs, "%s", env);
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
            if (try_model(d, file, out, len))
                return 0;
    }
    char inst[PATH_MAX + 16];
    snprintf(inst, sizeof inst, "%s/models", paths_install_dir());
    if (try_model("models", file, out, len) || try_model(inst, file, out, len))
        return 0;
    if (data_dir[0]) {
        char bundled[sizeof data_dir + 16];
        snprintf(bundled, sizeof bundled, "%s/models", data_dir);
        if (try_model(bundled, file, out, len))
            return 0;
    }
    out[0] = 0;
    return -1;
}
