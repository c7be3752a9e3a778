/* paths.c - see paths.h. */
#include "base/paths.h"

#include "oscine.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[2048];
static char model_dirs[2200];

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

const char *paths_model_dirs(void)
{
    if (data_dir[0])
        snprintf(model_dirs, sizeof model_dirs,
                 "$OSCINE_MODEL_PATH, ./models, " OSCINE_DATADIR "/models or %s/models", data_dir);
    else
        snprintf(model_dirs, sizeof model_dirs,
                 "$OSCINE_MODEL_PATH, ./models or " OSCINE_DATADIR "/models");
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

int paths_find_model(const char *file, char *out, size_t len)
{
    char dirs[8192];
    const char *env = getenv("OSCINE_MODEL_PATH");
    snprintf(dirs, sizeof dirs, "%s%smodels:" OSCINE_DATADIR "/models%s%s%s", env ? env : "",
             env && env[0] ? ":" : "", data_dir[0] ? ":" : "", data_dir,
             data_dir[0] ? "/models" : "");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/%s", d, file);
        if (paths_file_exists(out))
            return 0;
    }
    out[0] = 0;
    return -1;
}
