/* audiofile.c - see audiofile.h. Quantisation is done here, not by
 * libsndfile, so that unchanged samples come back bit-identical and dither
 * is applied exactly when the output has fewer bits than the input. */
#include "io/audiofile.h"

#include "base/error.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int subtype_bits(int sf_format)
{
    switch (sf_format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8: return 8;
    case SF_FORMAT_PCM_16: return 16;
    case SF_FORMAT_PCM_24: return 24;
    case SF_FORMAT_PCM_32: return 32;
    default: return 33;
    }
}

static const char *ext_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

int choose_output_format(const char *out_path, oscine_file_format fmt,
                         oscine_sample_type samples, int in_format, int *sf_format,
                         int *bits)
{
    int major;
    const char *ext = ext_of(out_path);
    if (fmt == OSCINE_FORMAT_WAV)
        major = SF_FORMAT_WAV;
    else if (fmt == OSCINE_FORMAT_FLAC)
        major = SF_FORMAT_FLAC;
    else if (!strcasecmp(ext, "wav") || !strcasecmp(ext, "wave"))
        major = SF_FORMAT_WAV;
    else if (!strcasecmp(ext, "flac"))
        major = SF_FORMAT_FLAC;
    else
        return err_set(OSCINE_E_ARG, "output '%s': oscine writes WAV or FLAC; name it .wav "
                       "or .flac", out_path);

    int sub;
    switch (samples) {
    case OSCINE_SAMPLES_PCM16: sub = SF_FORMAT_PCM_16; break;
    case OSCINE_SAMPLES_PCM24: sub = SF_FORMAT_PCM_24; break;
    case OSCINE_SAMPLES_PCM32: sub = SF_FORMAT_PCM_32; break;
    case OSCINE_SAMPLES_FLOAT: sub = SF_FORMAT_FLOAT; break;
    default:
        switch (in_format & SF_FORMAT_SUBMASK) {
        case SF_FORMAT_PCM_S8:
        case SF_FORMAT_PCM_U8:
        case SF_FORMAT_PCM_16: sub = SF_FORMAT_PCM_16; break;
        case SF_FORMAT_PCM_24: sub = SF_FORMAT_PCM_24; break;
        case SF_FORMAT_PCM_32: sub = SF_FORMAT_PCM_32; break;
        case SF_FORMAT_FLOAT:
        case SF_FORMAT_DOUBLE: sub = SF_FORMAT_FLOAT; break;
        default: sub = SF_FORMAT_PCM_24; break; /* lossy or exotic input */
        }
    }
    if (major == SF_FORMAT_FLAC && (sub == SF_FORMAT_PCM_32 || sub == SF_FORMAT_FLOAT)) {
        if (samples == OSCINE_SAMPLES_PCM32 || samples == OSCINE_SAMPLES_FLOAT)
            return err_set(OSCINE_E_ARG,
                           "output '%s': FLAC stores 16 or 24 bits, not %s", out_path,
                           samples == OSCINE_SAMPLES_FLOAT ? "float" : "32");
        sub = SF_FORMAT_PCM_24; /* float input kept as closely as FLAC can */
    }
    *sf_format = major | sub;
    *bits = sub == SF_FORMAT_PCM_16 ? 16 : sub == SF_FORMAT_PCM_24 ? 24
          : sub == SF_FORMAT_PCM_32 ? 32 : 0;
    return 0;
}

int out_target_check(const char *in_path, const char *out_path, char *real, size_t len)
{
    if (!strcmp(out_path, "-"))
        return err_set(OSCINE_E_ARG, "output '-': oscine writes files, not standard output; "
                       "give a file name");
    if (strlen(out_path) >= len)
        return err_set(OSCINE_E_ARG, "output '%.60s...': path too long", out_path);
    snprintf(real, len, "%s", out_path);
    struct stat so, si;
    if (lstat(out_path, &so) == 0 && S_ISLNK(so.st_mode)) {
        char *rp = realpath(out_path, NULL);
        if (!rp)
            return err_set(OSCINE_E_IO, "output '%s': a symbolic link to a missing file (%s)",
                           out_path, strerror(errno));
        int too_long = strlen(rp) >= len;
        snprintf(real, len, "%s", rp);
        free(rp);
        if (too_long)
            return err_set(OSCINE_E_ARG, "output '%.60s...': path too long", out_path);
    }
    if (stat(real, &so) != 0)
        return 0; /* a new file: whether the folder takes it shows when it is created */
    if (S_ISDIR(so.st_mode))
        return err_set(OSCINE_E_IO, "output '%s': is a folder; give a file name", out_path);
    if (!S_ISREG(so.st_mode))
        return err_set(OSCINE_E_IO, "output '%s': not a regular file (a pipe or device): "
                       "oscine writes a complete file and renames it into place", out_path);
    if (in_path && stat(in_path, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        return err_set(OSCINE_E_ARG, "output '%s' is the input file '%s'; write elsewhere",
                       out_path, in_path);
    return 0;
}

/* Temporary files in flight, for out_tmp_remove_all() in a signal handler:
 * a slot's name is complete before it is marked used. */
enum { TMP_SLOTS = 8 };
static char tmp_names[TMP_SLOTS][4096];
static volatile sig_atomic_t tmp_used[TMP_SLOTS];

static void tmp_remember(const char *tmp)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (!tmp_used[i]) {
            snprintf(tmp_names[i], sizeof tmp_names[i], "%s", tmp);
            tmp_used[i] = 1;
            return;
        }
}

static void tmp_forget(const char *tmp)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_used[i] && !strcmp(tmp_names[i], tmp))
            tmp_used[i] = 0;
}

void out_tmp_discard(const char *tmp)
{
    unlink(tmp);
    tmp_forget(tmp);
}

int out_tmp_commit(const char *tmp, const char *path)
{
    if (rename(tmp, path)) {
        int e = errno;
        out_tmp_discard(tmp);
        return e;
    }
    tmp_forget(tmp);
    return 0;
}

void out_tmp_remove_all(void)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_used[i]) {
            unlink(tmp_names[i]);
            tmp_used[i] = 0;
        }
}

int out_tmp_create(char *tmp, size_t len, const char *path)
{
    if (strlen(path) + 32 >= len)
        return err_set(OSCINE_E_ARG, "output '%.60s...': path too long", path);
    /* The temporary lives in the same folder so rename() is atomic; its name
     * keeps at most 200 bytes of the file's, so that a long but legal name
     * still leaves room for the prefix and suffix. */
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(base, sizeof base, "%s", path);
    snprintf(tmp, len, "%s/.%.200s.oscine-XXXXXX", dirname(dir), basename(base));
    /* The signals the command cleans up after wait while the file is created
     * and remembered: one in between would kill the process with a temporary
     * that out_tmp_remove_all() does not know of. */
    sigset_t fatal, old;
    sigemptyset(&fatal);
    const int sigs[] = OUT_TMP_SIGNALS;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&fatal, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &fatal, &old);
    int fd = mkstemp(tmp);
    if (fd >= 0)
        tmp_remember(tmp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        int e = errno;
        tmp[0] = 0;
        return err_set(OSCINE_E_IO, "output '%s': cannot create a file there: %s", path,
                       strerror(e));
    }
    /* mkstemp makes the file private; give it the usual permissions. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    return fd;
}

int out_open(out_file *o, const char *path, int sf_format, int rate, int channels,
             int dither)
{
    memset(o, 0, sizeof *o);
    int fd = out_tmp_create(o->tmp, sizeof o->tmp, path);
    if (fd < 0)
        return fd;
    snprintf(o->path, sizeof o->path, "%s", path);
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = sf_format};
    if (!sf_format_check(&info)) {
        close(fd);
        out_tmp_discard(o->tmp);
        o->tmp[0] = 0;
        return err_set(OSCINE_E_UNSUPPORTED,
                       "output '%s': this container cannot hold %d channels at %d Hz "
                       "in that sample type", path, channels, rate);
    }
    o->sf = sf_open_fd(fd, SFM_WRITE, &info, 1);
    if (!o->sf) {
        close(fd);
        out_tmp_discard(o->tmp);
        o->tmp[0] = 0;
        return err_set(OSCINE_E_IO, "output '%s': %s", path, sf_strerror(NULL));
    }
    o->channels = channels;
    int sub = sf_format & SF_FORMAT_SUBMASK;
    o->bits = sub == SF_FORMAT_PCM_16 ? 16 : sub == SF_FORMAT_PCM_24 ? 24
            : sub == SF_FORMAT_PCM_32 ? 32 : 0;
    o->dither = dither && o->bits;
    o->rng = 0x9E3779B97F4A7C15ULL;
    return 0;
}

static double uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
}

int out_write(out_file *o, const float *x, int frames)
{
    if (frames <= 0)
        return 0;
    sf_count_t want = frames, done;
    if (!o->bits) {
        done = sf_writef_float(o->sf, x, want);
    } else {
        size_t n = (size_t)frames * (size_t)o->channels;
        if (o->ibuf_frames < frames) {
            int *nb = realloc(o->ibuf, n * sizeof(int));
            if (!nb)
                return err_set(OSCINE_E_NOMEM, "output '%s': out of memory", o->path);
            o->ibuf = nb;
            o->ibuf_frames = frames;
        }
        /* Quantise to `bits`, then place in the top bits of an int32 as
         * libsndfile's int interface expects. */
        const double scale = ldexp(1.0, o->bits - 1);
        const double hi = scale - 1, lo = -scale;
        const int shift = 32 - o->bits;
        for (size_t i = 0; i < n; i++) {
            double v = (double)x[i] * scale;
            if (o->dither)
                v += uniform(&o->rng) - uniform(&o->rng); /* TPDF, +-1 LSB */
            v = nearbyint(v);
            if (v > hi) {
                v = hi;
                o->clipped++;
            } else if (v < lo) {
                v = lo;
                o->clipped++;
            }
            o->ibuf[i] = (int)((int64_t)v * ((int64_t)1 << shift));
        }
        done = sf_writef_int(o->sf, o->ibuf, want);
    }
    if (done != want)
        return err_set(OSCINE_E_IO, "output '%s': write failed: %s", o->path,
                       sf_strerror(o->sf));
    return 0;
}

int out_close(out_file *o, int commit)
{
    int e = 0;
    if (o->sf) {
        if (commit)
            sf_write_sync(o->sf);
        if (sf_close(o->sf) && commit)
            e = err_set(OSCINE_E_IO, "output '%s': closing failed", o->path);
        o->sf = NULL;
    }
    if (o->tmp[0]) {
        int re;
        if (!commit || e)
            out_tmp_discard(o->tmp);
        else if ((re = out_tmp_commit(o->tmp, o->path)))
            e = err_set(OSCINE_E_IO, "output '%s': cannot rename the finished file into "
                        "place: %s", o->path, strerror(re));
        o->tmp[0] = 0;
    }
    free(o->ibuf);
    o->ibuf = NULL;
    return e;
}
