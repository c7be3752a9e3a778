/* audiofile.c - see audiofile.h. Quantisation is done here, not by
 * libsndfile, so that unchanged samples come back bit-identical and dither
 * is applied exactly when the output has fewer bits than the input. Output
 * goes through libsndfile's virtual I/O so that a failed write is reported
 * with the system's reason (libsndfile words a full disk under FLAC as
 * "problem with initialization of the flac decoder"). */
#include "io/audiofile.h"

#include "base/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
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

int out_container_for(const char *path, int sf_format, int channels, int64_t frames,
                      int *out_format)
{
    *out_format = sf_format;
    int major = sf_format & SF_FORMAT_TYPEMASK, sub = sf_format & SF_FORMAT_SUBMASK;
    int bytes = sub == SF_FORMAT_PCM_16 ? 2 : sub == SF_FORMAT_PCM_24 ? 3
              : sub == SF_FORMAT_PCM_S8 || sub == SF_FORMAT_PCM_U8 ? 1
              : sub == SF_FORMAT_DOUBLE ? 8 : 4;
    if (major == SF_FORMAT_FLAC && frames > ((int64_t)1 << 36) - 1)
        return err_set(OSCINE_E_UNSUPPORTED, "output '%s': %lld frames; FLAC holds at most "
                       "2^36 - 1 (write WAV, which becomes RF64 when this large)", path,
                       (long long)frames);
    if ((major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX) &&
        (frames < 0 || (double)frames * channels * bytes > (double)OUT_WAV_MAX_DATA))
        *out_format = SF_FORMAT_RF64 | sub;
    return 0;
}

/* ------------------------------------------------------- temporaries */

/* Named temporaries in flight, for out_tmp_remove_all() in a signal
 * handler: a slot's name is complete before it is marked used. */
enum { TMP_SLOTS = 8 };
static char tmp_names[TMP_SLOTS][4096];
static volatile sig_atomic_t tmp_used[TMP_SLOTS];

static void tmp_remember(const char *name)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (!tmp_used[i]) {
            snprintf(tmp_names[i], sizeof tmp_names[i], "%s", name);
            tmp_used[i] = 1;
            return;
        }
}

static void tmp_forget(const char *name)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_used[i] && !strcmp(tmp_names[i], name))
            tmp_used[i] = 0;
}

void out_tmp_remove_all(void)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_used[i]) {
            unlink(tmp_names[i]);
            tmp_used[i] = 0;
        }
}

/* The signals the command cleans up after wait while a name is made and
 * remembered (or linked and renamed): one in between would kill the process
 * with a file that out_tmp_remove_all() does not know of. */
static void block_fatal(sigset_t *old)
{
    sigset_t fatal;
    sigemptyset(&fatal);
    const int sigs[] = OUT_TMP_SIGNALS;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&fatal, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &fatal, old);
}

static void unblock_fatal(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* path split into its folder and its name. */
static void split_path(const char *path, char *dir, char *base)
{
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s", path);
    snprintf(b, sizeof b, "%s", path);
    snprintf(dir, 4096, "%s", dirname(a));
    snprintf(base, 4096, "%s", basename(b));
}

/* The hidden name of a temporary for base in dir: ".BASE.oscine-PID-" then
 * six characters (mkstemp's X's, or ours when linking); at most 200 bytes of
 * the file's name, so that a long but legal name leaves room. */
static void hidden_prefix(char *out, size_t len, const char *dir, const char *base)
{
    if (snprintf(out, len, "%s/.%.200s.oscine-%ld-", dir, base, (long)getpid()) >= (int)len)
        out[0] = 0; /* not reached: out_tmp_create refuses paths this long */
}

/* Temporaries of base that a process killed outright (SIGKILL) left with
 * the named scheme: its process is gone and it has not changed for a
 * minute (a file on a network folder may be another machine's, still
 * being written). */
static void remove_stale(const char *dir, const char *base)
{
    char prefix[300];
    int pl = snprintf(prefix, sizeof prefix, ".%.200s.oscine-", base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, (size_t)pl))
            continue;
        char *end;
        long pid = strtol(e->d_name + pl, &end, 10);
        if (end == e->d_name + pl || *end != '-' || strlen(end + 1) != 6 || pid <= 0)
            continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[4400];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > 60)
            unlink(full);
    }
    closedir(d);
}

/* An unnamed temporary can be given a name later: with AT_EMPTY_PATH (which
 * needs CAP_DAC_READ_SEARCH) or through /proc/self/fd. Without /proc, or
 * when the environment says OSCINE_NO_O_TMPFILE (to test the fallback), the
 * named scheme is used. */
static int unnamed_wanted(void)
{
    const char *no = getenv("OSCINE_NO_O_TMPFILE");
    if (no && no[0] && strcmp(no, "0"))
        return 0;
    return access("/proc/self/fd", X_OK) == 0;
}

static int link_fd(int fd, const char *path)
{
    if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno == EEXIST)
        return -1;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

/* Give the temporary the replaced file's owner and group where permitted,
 * then its mode (the set-id bits only with its owner). */
static void keep_owner_mode(int fd, const struct stat *old)
{
    struct stat now;
    if (fstat(fd, &now))
        return;
    int owner = now.st_uid == old->st_uid;
    if (!owner || now.st_gid != old->st_gid) {
        if (fchown(fd, old->st_uid, old->st_gid) == 0)
            owner = 1;
        else if (now.st_gid != old->st_gid && fchown(fd, (uid_t)-1, old->st_gid)) {
            /* neither: the file becomes this user's, as any new file */
        }
    }
    fchmod(fd, old->st_mode & (owner ? 07777 : 0777));
}

static int create_failed(out_tmp *t, int e)
{
    t->live = 0;
    t->name[0] = 0;
    return err_set(OSCINE_E_IO, "output '%s': cannot create a file there: %s", t->path,
                   strerror(e));
}

int out_tmp_create(out_tmp *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    if (strlen(path) + 48 >= sizeof t->path)
        return err_set(OSCINE_E_ARG, "output '%.60s...': path too long", path);
    snprintf(t->path, sizeof t->path, "%s", path);
    char dir[4096], base[4096];
    split_path(path, dir, base);
    struct stat old;
    int replacing = stat(path, &old) == 0 && S_ISREG(old.st_mode);
    int fd = -1;
    if (unnamed_wanted()) {
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666); /* less the umask */
        if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL &&
            errno != ENOSYS)
            return create_failed(t, errno);
    }
    if (fd < 0) { /* the filesystem has no O_TMPFILE: a hidden name */
        remove_stale(dir, base);
        hidden_prefix(t->name, sizeof t->name, dir, base);
        strcat(t->name, "XXXXXX");
        sigset_t old_mask;
        block_fatal(&old_mask);
        fd = mkostemp(t->name, O_CLOEXEC);
        if (fd >= 0)
            tmp_remember(t->name);
        unblock_fatal(&old_mask);
        if (fd < 0)
            return create_failed(t, errno);
        /* mkstemp makes the file private; give it the usual permissions. */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    t->fd = fd;
    t->live = 1;
    if (replacing)
        keep_owner_mode(fd, &old);
    int user = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (user < 0) {
        int e = errno;
        out_tmp_discard(t);
        return err_set(OSCINE_E_IO, "output '%s': %s", path, strerror(e));
    }
    return user;
}

void out_tmp_discard(out_tmp *t)
{
    if (!t->live)
        return;
    if (t->name[0]) {
        unlink(t->name);
        tmp_forget(t->name);
        t->name[0] = 0;
    }
    close(t->fd);
    t->fd = -1;
    t->live = 0;
}

/* Link the unnamed temporary in place of an existing file: under a hidden
 * name first (link cannot replace), then renamed over it. The two calls run
 * with the caught signals held back, the name remembered; a SIGKILL between
 * them is the one way this scheme leaves a (complete) hidden file. */
static int replace_unnamed(out_tmp *t)
{
    char dir[4096], base[4096], name[4096];
    split_path(t->path, dir, base);
    hidden_prefix(name, sizeof name, dir, base);
    size_t n = strlen(name);
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t r = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    for (int tries = 0; tries < 64; tries++) {
        for (int i = 0; i < 6; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            name[n + i] = abc[(r >> 33) % (sizeof abc - 1)];
        }
        name[n + 6] = 0;
        sigset_t old;
        block_fatal(&old);
        if (link_fd(t->fd, name)) {
            int e = errno;
            unblock_fatal(&old);
            if (e == EEXIST)
                continue;
            return e;
        }
        tmp_remember(name);
        int e = rename(name, t->path) ? errno : 0;
        if (e)
            unlink(name);
        tmp_forget(name);
        unblock_fatal(&old);
        return e;
    }
    return EEXIST;
}

int out_tmp_commit(out_tmp *t)
{
    if (!t->live)
        return EBADF;
    int e = 0;
    if (fsync(t->fd) && errno != EINVAL && errno != EROFS)
        e = errno;
    else if (t->name[0])
        e = rename(t->name, t->path) ? errno : 0;
    else if (link_fd(t->fd, t->path))
        e = errno == EEXIST ? replace_unnamed(t) : errno;
    if (e) {
        out_tmp_discard(t);
        return e;
    }
    if (t->name[0])
        tmp_forget(t->name);
    t->name[0] = 0;
    close(t->fd);
    t->fd = -1;
    t->live = 0;
    return 0;
}

/* ------------------------------------------------------------- output */

/* libsndfile's I/O on o->fd, keeping the system's reason for a failure. */
static sf_count_t vio_len(void *u)
{
    struct stat st;
    return fstat(((out_file *)u)->fd, &st) ? -1 : (sf_count_t)st.st_size;
}

static sf_count_t vio_seek(sf_count_t off, int whence, void *u)
{
    return lseek(((out_file *)u)->fd, off, whence);
}

static sf_count_t vio_read(void *p, sf_count_t n, void *u)
{
    out_file *o = u;
    sf_count_t done = 0;
    while (done < n) {
        ssize_t r = read(o->fd, (char *)p + done, (size_t)(n - done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        done += r;
    }
    return done;
}

static sf_count_t vio_write(const void *p, sf_count_t n, void *u)
{
    out_file *o = u;
    sf_count_t done = 0;
    while (done < n) {
        ssize_t r = write(o->fd, (const char *)p + done, (size_t)(n - done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (!o->io_errno)
                o->io_errno = r < 0 ? errno : ENOSPC;
            break;
        }
        done += r;
    }
    return done;
}

static sf_count_t vio_tell(void *u)
{
    return lseek(((out_file *)u)->fd, 0, SEEK_CUR);
}

static const char *out_why(const out_file *o, SNDFILE *sf)
{
    return o->io_errno ? strerror(o->io_errno) : sf_strerror(sf);
}

int out_open(out_file *o, const char *path, int sf_format, int rate, int channels,
             int dither, int64_t frames)
{
    memset(o, 0, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s", path);
    int fmt;
    int e = out_container_for(path, sf_format, channels, frames, &fmt);
    if (e)
        return e;
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = fmt};
    if (!sf_format_check(&info))
        return err_set(OSCINE_E_UNSUPPORTED,
                       "output '%s': this container cannot hold %d channels at %d Hz "
                       "in that sample type", path, channels, rate);
    int fd = out_tmp_create(&o->tmp, path);
    if (fd < 0)
        return fd;
    o->fd = fd;
    o->fd_open = 1;
    SF_VIRTUAL_IO io = {vio_len, vio_seek, vio_read, vio_write, vio_tell};
    o->sf = sf_open_virtual(&io, SFM_WRITE, &info, o);
    if (!o->sf) {
        e = err_set(OSCINE_E_IO, "output '%s': %s", path, out_why(o, NULL));
        out_close(o, 0);
        return e;
    }
    /* a large WAV is RF64, made a plain WAV again at the end if it came out
     * smaller than the caller said (a cut input) */
    if ((fmt & SF_FORMAT_TYPEMASK) == SF_FORMAT_RF64)
        sf_command(o->sf, SFC_RF64_AUTO_DOWNGRADE, NULL, SF_TRUE);
    o->format = fmt;
    o->channels = channels;
    int sub = fmt & SF_FORMAT_SUBMASK;
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
    int64_t bytes = (int64_t)frames * o->channels * (o->bits ? o->bits / 8 : 4);
    if ((o->format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV &&
        (uint64_t)(o->data_bytes + bytes) > OUT_WAV_MAX_DATA)
        return err_set(OSCINE_E_UNSUPPORTED, "output '%s': more than the 4 GiB a WAV holds "
                       "(a bug: the length was not given to out_open)", o->path);
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
    if (done != want || o->io_errno)
        return err_set(OSCINE_E_IO, "output '%s': write failed: %s", o->path,
                       out_why(o, o->sf));
    o->data_bytes += bytes;
    return 0;
}

int out_close(out_file *o, int commit)
{
    int e = 0;
    if (o->sf) {
        /* sf_close writes the header's final sizes (FLAC: the stream info) */
        int ce = sf_close(o->sf);
        if (commit && (ce || o->io_errno))
            e = err_set(OSCINE_E_IO, "output '%s': closing failed: %s", o->path,
                        o->io_errno ? strerror(o->io_errno) : sf_error_number(ce));
        o->sf = NULL;
    }
    if (o->fd_open) {
        close(o->fd);
        o->fd_open = 0;
    }
    if (commit && !e) {
        int re = out_tmp_commit(&o->tmp);
        if (re)
            e = err_set(OSCINE_E_IO, "output '%s': cannot put the finished file in place: "
                        "%s", o->path, strerror(re));
    } else {
        out_tmp_discard(&o->tmp);
    }
    free(o->ibuf);
    o->ibuf = NULL;
    return e;
}

/* -------------------------------------------------------------- input */

/* Bytes of one sample of a fixed-size subtype; 0 for codecs. */
static int sample_bytes(int format)
{
    switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8:
    case SF_FORMAT_ULAW:
    case SF_FORMAT_ALAW: return 1;
    case SF_FORMAT_PCM_16: return 2;
    case SF_FORMAT_PCM_24: return 3;
    case SF_FORMAT_PCM_32:
    case SF_FORMAT_FLOAT: return 4;
    case SF_FORMAT_DOUBLE: return 8;
    default: return 0;
    }
}

/* A number after `key` in the log, or -1. */
static long long log_number(const char *log, const char *key)
{
    const char *p = strstr(log, key);
    long long v;
    return p && sscanf(p + strlen(key), "%lld", &v) == 1 ? v : -1;
}

/* The frames the header of a PCM container promises, as libsndfile's log
 * words a header that promises more data than the file holds; -1 when it
 * does not (a header left unfinished by a streaming writer, 0 or
 * 0xFFFFFFFF bytes, is not a promise). */
static int64_t header_claim(SNDFILE *sf, const SF_INFO *info)
{
    char log[8192];
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    int major = info->format & SF_FORMAT_TYPEMASK;
    int64_t bpf = (int64_t)sample_bytes(info->format) * info->channels;
    long long n;
    if (major == SF_FORMAT_AIFF &&
        (n = log_number(log, "Frame count read from 'COMM' chunk (")) > 0)
        return n;
    if (major == SF_FORMAT_RF64 && (n = log_number(log, "value from 'ds64' chunk of ")) > 0)
        return n;
    if (!bpf)
        return -1;
    if (major == SF_FORMAT_W64) {
        long long d = log_number(log, "\ndata : ");
        return strstr(log, "\nriff : ") && strstr(log, "(should be ") && d > 24
                   ? (int64_t)((d - 24) / bpf) : -1;
    }
    const char *p = strstr(log, "\ndata : ");
    unsigned long long claimed, actual;
    if ((major != SF_FORMAT_WAV && major != SF_FORMAT_WAVEX && major != SF_FORMAT_CAF) || !p ||
        sscanf(p + 8, "%llu (should be %llu)", &claimed, &actual) != 2)
        return -1;
    if (claimed <= actual || claimed == 0xFFFFFFFFull || claimed == 0x7FFFFFFFull)
        return -1;
    if (major == SF_FORMAT_CAF) /* its data chunk starts with a 4-byte edit count */
        return (int64_t)((claimed - 4) / (unsigned long long)bpf);
    return (int64_t)(claimed / (unsigned long long)bpf);
}

/* Why libsndfile refused a file: a header field it would not take, named,
 * else its own words. */
static int open_refused(const char *path)
{
    const char *why = sf_strerror(NULL);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", why);
    char log[8192] = "";
    sf_command(NULL, SFC_GET_LOG_INFO, log, sizeof log);
    if (log_number(log, "Sample Rate   : ") == 0 || log_number(log, "Sample Rate : ") == 0)
        return err_set(OSCINE_E_FORMAT, "input '%s': its header gives a sample rate of 0 Hz",
                       path);
    if (log_number(log, "Channels      : ") == 0 || log_number(log, "Channels    : ") == 0)
        return err_set(OSCINE_E_FORMAT, "input '%s': its header gives 0 channels", path);
    return err_set(OSCINE_E_FORMAT, "input '%s': %s", path, msg);
}

static int reopen(in_file *in, const char *path)
{
    if (in->sf)
        sf_close(in->sf);
    in->sf = NULL;
    SF_INFO info = {0};
    if (lseek(in->fd, 0, SEEK_SET) != 0 || !(in->sf = sf_open_fd(in->fd, SFM_READ, &info, 0)))
        return err_set(OSCINE_E_IO, "input '%s': cannot read it again: %s", path,
                       sf_strerror(NULL));
    in->info.frames = info.frames;
    return 0;
}

/* Does the file hold the frames its header says? The last one is read to
 * see (cheap, whatever the format); where it is not there, or the header
 * does not say (a FLAC stream written without its length), the frames are
 * counted by decoding them all. */
static int check_frames(in_file *in, const char *path)
{
    const int ch = in->info.channels;
    const int64_t said = in->info.frames;
    int64_t claim = header_claim(in->sf, &in->info);
    int known = said >= 0 && said != SF_COUNT_MAX;
    float *buf = malloc(sizeof(float) * 1024 * (size_t)ch);
    if (!buf)
        return err_set(OSCINE_E_NOMEM, "input '%s': out of memory", path);
    int e = 0, ok = known;
    if (known && said > 0)
        ok = sf_seek(in->sf, said - 1, SEEK_SET) == said - 1 &&
             sf_readf_float(in->sf, buf, 1) == 1 && sf_seek(in->sf, 0, SEEK_SET) == 0;
    if (!ok) {
        int64_t n = 0;
        sf_count_t got;
        if (!(e = reopen(in, path))) {
            while ((got = sf_readf_float(in->sf, buf, 1024)) > 0)
                n += got;
            e = reopen(in, path);
        }
        in->info.frames = n;
        if (known && claim < 0)
            claim = said;
    }
    free(buf);
    if (e)
        return e;
    in->missing = claim > in->info.frames ? claim - in->info.frames : 0;
    if (in->info.frames == 0 && in->missing > 0)
        return err_set(OSCINE_E_FORMAT, "input '%s': its header promises %lld frames and none "
                       "of them can be read (the file is cut short or corrupt)", path,
                       (long long)claim);
    return 0;
}

int in_open(in_file *in, const char *path)
{
    memset(in, 0, sizeof *in);
    in->fd = -1;
    /* without blocking: a FIFO would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return err_set(OSCINE_E_IO, "input '%s': %s", path, strerror(errno));
    struct stat st;
    int e = 0;
    if (fstat(fd, &st))
        e = err_set(OSCINE_E_IO, "input '%s': %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        e = err_set(OSCINE_E_IO, "input '%s': is a directory", path);
    else if (!S_ISREG(st.st_mode))
        e = err_set(OSCINE_E_IO, "input '%s': not a regular file (a pipe or device); oscine "
                    "reads sound files", path);
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
        e = err_set(OSCINE_E_IO, "input '%s': %s", path, strerror(errno));
    if (e) {
        close(fd);
        return e;
    }
    in->fd = fd;
    in->sf = sf_open_fd(fd, SFM_READ, &in->info, 0);
    if (!in->sf)
        e = open_refused(path);
    else if (in->info.samplerate <= 0)
        e = err_set(OSCINE_E_FORMAT, "input '%s': its header gives a sample rate of %d Hz",
                    path, in->info.samplerate);
    else if (in->info.channels <= 0)
        e = err_set(OSCINE_E_FORMAT, "input '%s': its header gives %d channels", path,
                    in->info.channels);
    else
        e = check_frames(in, path);
    if (e)
        in_close(in);
    return e;
}

void in_close(in_file *in)
{
    if (in->sf)
        sf_close(in->sf);
    in->sf = NULL;
    if (in->fd >= 0)
        close(in->fd);
    in->fd = -1;
}
