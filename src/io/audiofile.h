/* audiofile.h - sound file output shared by the file jobs and the CLI:
 * container/sample-type choice, quantisation with optional TPDF dither, and
 * writing through a temporary file that is renamed only when complete. */
#ifndef OSCINE_IO_AUDIOFILE_H
#define OSCINE_IO_AUDIOFILE_H

#include "oscine.h"

#include <sndfile.h>
#include <stdint.h>

typedef struct out_file {
    SNDFILE *sf;
    char path[4096];     /* final name */
    char tmp[4096];      /* temporary name beside it */
    int channels;
    int bits;            /* 16, 24, 32 (integer) or 0 for float */
    int dither;          /* add TPDF dither before quantising */
    uint64_t rng;        /* dither noise state */
    int *ibuf;           /* interleaved int32 staging */
    int ibuf_frames;
    int64_t clipped;     /* samples that hit full scale */
} out_file;

/* Bits of an input subtype for the "reducing bit depth" rule: PCM types give
 * their width, float/double/lossy give 33 (more than any integer output). */
int subtype_bits(int sf_format);

/* Choose the output SF_FORMAT from the job's wishes, the input's format and
 * the output path's extension; *bits as out_file.bits. Fails (OSCINE_E_ARG:
 * the user's name or flags) with a message naming the path for a container
 * oscine cannot write or a sample type the container cannot hold. */
int choose_output_format(const char *out_path, oscine_file_format fmt,
                         oscine_sample_type samples, int in_format, int *sf_format,
                         int *bits);

/* Check an output path before any work is done: not the input file (by
 * device and inode: "./a.wav" and "a.wav" are one file), not a folder, pipe
 * or device (the output is a temporary file renamed into place, which would
 * replace them). A symbolic link is followed so that it stays a link: real
 * gets the path to write (its target, or out_path). in_path may be NULL.
 * OSCINE_E_ARG for the input file, OSCINE_E_IO for the rest.
 * Thread: control. */
int out_target_check(const char *in_path, const char *out_path, char *real, size_t len);

/* Create a temporary file beside path (same folder, so rename() is atomic;
 * mode 0666 less the umask): its name goes to tmp, the open descriptor is
 * returned, or a negative OSCINE_E_* code with the detail set. The name is
 * remembered until out_tmp_commit or out_tmp_discard, so that
 * out_tmp_remove_all() can delete it if the process is killed by a signal.
 * Thread: control. */
int out_tmp_create(char *tmp, size_t len, const char *path);

/* Rename the finished tmp to path: 0, or errno with tmp deleted.
 * Thread: control. */
int out_tmp_commit(const char *tmp, const char *path);

/* Delete tmp (a failed or cancelled write). Thread: control. */
void out_tmp_discard(const char *tmp);

/* Delete every temporary file not yet forgotten; async-signal-safe (for a
 * fatal signal's handler). Thread: any. */
void out_tmp_remove_all(void);

/* The signals a command calls out_tmp_remove_all() on (src/cli/main.c);
 * out_tmp_create holds them back between creating a file and remembering it.
 * An initialiser: const int sigs[] = OUT_TMP_SIGNALS; */
#define OUT_TMP_SIGNALS {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}

/* Open a temporary file beside path for writing. Thread: control. */
int out_open(out_file *o, const char *path, int sf_format, int rate, int channels,
             int dither);

/* Write frames of interleaved float. */
int out_write(out_file *o, const float *x, int frames);

/* Close and rename into place (commit != 0), or close and remove. */
int out_close(out_file *o, int commit);

#endif
