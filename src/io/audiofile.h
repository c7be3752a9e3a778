/* audiofile.h - sound files in and out, shared by the file jobs and the CLI.
 *
 * In: in_open checks a file before anyone trusts its header: a regular file
 * (opened without blocking, so a FIFO or a terminal is refused rather than
 * waited on), a sample rate and channel count that make sense, and a frame
 * count the file really holds (a cut or lying header is found and the frames
 * it promises beyond the data are counted, for a warning).
 *
 * Out: the container/sample-type choice, quantisation with optional TPDF
 * dither, and writing through a temporary that becomes the output only when
 * complete. The temporary is unnamed (O_TMPFILE) where the filesystem has it,
 * so that no kill, SIGKILL included, can leave it behind; it is linked in
 * under the output's name at the end. Elsewhere (NFS, vfat, or with
 * OSCINE_NO_O_TMPFILE=1 in the environment, which the tests use) it is a
 * hidden file beside the output, ".NAME.oscine-PID-XXXXXX", deleted on any
 * error and on the signals the CLI catches; one left by a SIGKILL is deleted
 * by a later write to the same output once its process is gone.
 * A replaced output keeps its permissions (and its owner and group where
 * the process may set them). */
#ifndef OSCINE_IO_AUDIOFILE_H
#define OSCINE_IO_AUDIOFILE_H

#include "oscine.h"

#include <sndfile.h>
#include <stdint.h>

/* ------------------------------------------------------------------ in */

typedef struct in_file {
    SNDFILE *sf;
    SF_INFO info;      /* info.frames: the frames the file holds, checked */
    int64_t missing;   /* frames its header promises beyond those (a file cut
                          short, or a header that lies), else 0 */
    int fd;
} in_file;

/* Open path for reading and check it (see the top). Failures name the file
 * and what is wrong: OSCINE_E_IO (missing, unreadable, a folder, a pipe or
 * device), OSCINE_E_FORMAT (not a sound file, a sample rate or channel
 * count of 0 or less in the header). Thread: control. */
int in_open(in_file *in, const char *path);

/* Close, after in_open (whether it succeeded or not; again is harmless).
 * Thread: control. */
void in_close(in_file *in);

/* Bits of an input subtype for the "reducing bit depth" rule: PCM types give
 * their width, float/double/lossy give 33 (more than any integer output). */
int subtype_bits(int sf_format);

/* ----------------------------------------------------------------- out */

/* Choose the output SF_FORMAT from the job's wishes, the input's format and
 * the output path's extension; *bits as out_file.bits. Fails (OSCINE_E_ARG:
 * the user's name or flags) with a message naming the path for a container
 * oscine cannot write or a sample type the container cannot hold. */
int choose_output_format(const char *out_path, oscine_file_format fmt,
                         oscine_sample_type samples, int in_format, int *sf_format,
                         int *bits);

/* The data a plain WAV can hold: its sizes are 32-bit (a little is kept for
 * the header's other chunks). */
#define OUT_WAV_MAX_DATA (0xFFFFFFFFull - 65536)

/* The container sf_format needs for `frames` frames of `channels` (frames
 * < 0: not known): a WAV whose data may pass OUT_WAV_MAX_DATA becomes RF64
 * (WAV's 64-bit form), anything else stays. OSCINE_E_UNSUPPORTED, naming
 * path, for more than a container can hold at all (FLAC: 2^36 - 1 frames).
 * Thread: any. */
int out_container_for(const char *path, int sf_format, int channels, int64_t frames,
                      int *out_format);

/* Check an output path before any work is done: not the input file (by
 * device and inode: "./a.wav" and "a.wav" are one file), not a folder, pipe
 * or device (the output replaces the name at the end, which would replace
 * them). A symbolic link is followed so that it stays a link: real gets the
 * path to write (its target, or out_path). in_path may be NULL.
 * OSCINE_E_ARG for the input file, OSCINE_E_IO for the rest.
 * Thread: control. */
int out_target_check(const char *in_path, const char *out_path, char *real, size_t len);

/* A temporary that becomes the file `path` when committed. */
typedef struct out_tmp {
    int live;            /* 1 from out_tmp_create until committed or dropped */
    int fd;              /* this module's own descriptor of it */
    char path[4096];     /* the final name */
    char name[4096];     /* its name while it has one (the fallback), else "" */
} out_tmp;

/* Create the temporary for path (in path's folder; mode 0666 less the umask,
 * or a replaced file's mode, owner and group). Returns a new descriptor open
 * for reading and writing, the caller's to write through and to close (before
 * or after the commit), or a negative OSCINE_E_* code with the detail set.
 * Until out_tmp_commit or out_tmp_discard, a named temporary is remembered so
 * that out_tmp_remove_all() can delete it if the process is killed by a
 * signal. Thread: control. */
int out_tmp_create(out_tmp *t, const char *path);

/* Make the finished temporary the file t->path (flushed to disk first;
 * an existing file is replaced atomically): 0, or errno with the temporary
 * gone. Thread: control. */
int out_tmp_commit(out_tmp *t);

/* Drop the temporary (a failed or cancelled write); t may be zeroed or
 * already finished. Thread: control. */
void out_tmp_discard(out_tmp *t);

/* Delete every named temporary not yet finished; async-signal-safe (for a
 * fatal signal's handler). Thread: any. */
void out_tmp_remove_all(void);

/* The signals a command calls out_tmp_remove_all() on (src/cli/main.c);
 * out_tmp_create holds them back between naming a file and remembering it.
 * An initialiser: const int sigs[] = OUT_TMP_SIGNALS; */
#define OUT_TMP_SIGNALS {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}

typedef struct out_file {
    SNDFILE *sf;
    out_tmp tmp;
    int fd, fd_open;     /* the descriptor libsndfile writes through */
    int io_errno;        /* the first error of a write, for the message */
    char path[4096];     /* final name */
    int format;          /* the SF_FORMAT written (RF64 for a large WAV) */
    int channels;
    int bits;            /* 16, 24, 32 (integer) or 0 for float */
    int dither;          /* add TPDF dither before quantising */
    uint64_t rng;        /* dither noise state */
    int *ibuf;           /* interleaved int32 staging */
    int ibuf_frames;
    int64_t data_bytes;  /* sample bytes written */
    int64_t clipped;     /* samples that hit full scale */
} out_file;

/* Open the temporary for path, to hold `frames` frames (the most the caller
 * will write; < 0 when not known): the container is chosen by
 * out_container_for. Thread: control. */
int out_open(out_file *o, const char *path, int sf_format, int rate, int channels,
             int dither, int64_t frames);

/* Write frames of interleaved float. A failure names the output and the
 * system's reason ("No space left on device", "File too large"). */
int out_write(out_file *o, const float *x, int frames);

/* Close and make the file (commit != 0), or close and drop it. */
int out_close(out_file *o, int commit);

#endif
