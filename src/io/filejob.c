/* filejob.c - a whole file through a chain: read, process per channel,
 * compensate the chain's latency, optionally resample, quantise, write
 * atomically. */
#include "oscine.h"

#include "base/error.h"
#include "io/audiofile.h"

#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096

static const char *major_name(int format)
{
    SF_FORMAT_INFO fi = {.format = format & SF_FORMAT_TYPEMASK};
    if (sf_command(NULL, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.extension)
        return fi.name;
    return "unknown";
}

static const char *sub_name(int format)
{
    switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8: return "PCM_S8";
    case SF_FORMAT_PCM_U8: return "PCM_U8";
    case SF_FORMAT_PCM_16: return "PCM_16";
    case SF_FORMAT_PCM_24: return "PCM_24";
    case SF_FORMAT_PCM_32: return "PCM_32";
    case SF_FORMAT_FLOAT: return "FLOAT";
    case SF_FORMAT_DOUBLE: return "DOUBLE";
    case SF_FORMAT_VORBIS: return "VORBIS";
    case SF_FORMAT_OPUS: return "OPUS";
    case SF_FORMAT_ULAW: return "ULAW";
    case SF_FORMAT_ALAW: return "ALAW";
    default: return "OTHER";
    }
}

OSCINE_API int oscine_file_info_get(const char *path, oscine_file_info *info)
{
    in_file in;
    err_clear();
    memset(info, 0, sizeof *info);
    int e = in_open(&in, path);
    if (e)
        return e;
    const SF_INFO si = in.info;
    info->sample_rate = si.samplerate;
    info->channels = si.channels;
    info->frames = si.frames;
    /* libsndfile names formats "FLAC (Free Lossless Audio Codec)", too long for
     * the field: keep the short name before the parenthesis ("WAV", "FLAC") */
    const char *name = major_name(si.format);
    const char *paren = strstr(name, " (");
    int len = paren ? (int)(paren - name) : (int)strlen(name);
    snprintf(info->container, sizeof info->container, "%.*s", len, name);
    snprintf(info->samples, sizeof info->samples, "%s", sub_name(si.format));
    info->frames_missing = in.missing;
    in_close(&in);
    return 0;
}

/* Everything a job holds, so one cleanup path frees it all. */
typedef struct job_state {
    in_file in;
    int in_open;
    SF_INFO info;         /* in.info */
    oscine_chain *chain;
    soxr_t sx;
    out_file out;
    int out_open;
    float *ibuf;  /* (BLOCK, channels) interleaved input */
    float *plan_in[OSCINE_MAX_CHANNELS], *plan_out[OSCINE_MAX_CHANNELS];
    float *obuf;  /* (BLOCK, channels) interleaved chain output */
    float *rbuf;  /* resampler output */
    size_t rcap;  /* frames */
    int64_t to_skip;      /* chain output frames still to drop (latency) */
    int64_t out_total;    /* frames the output must have */
    int64_t out_written;
} job_state;

/* Write chain-rate frames: through the resampler if any, trimmed to length. */
static int emit(job_state *s, const float *x, size_t frames, int flush)
{
    const int ch = s->info.channels;
    const float *y = x;
    size_t n = frames;
    if (s->sx) {
        size_t idone = 0, odone = 0;
        soxr_error_t e = soxr_process(s->sx, flush ? NULL : x, flush ? 0 : frames, &idone,
                                      s->rbuf, s->rcap, &odone);
        if (e || (!flush && idone != frames))
            return err_set(OSCINE_E_RESAMPLE, "output '%s': resampler: %s", s->out.path,
                           e ? e : "input not consumed");
        y = s->rbuf;
        n = odone;
    }
    int64_t room = s->out_total - s->out_written;
    if ((int64_t)n > room)
        n = (size_t)(room > 0 ? room : 0);
    if (n) {
        int e = out_write(&s->out, y, (int)n);
        if (e)
            return e;
        s->out_written += (int64_t)n;
    }
    (void)ch;
    return 0;
}

/* Run frames (interleaved in s->ibuf) through the chain; emit what remains
 * after the latency is skipped. */
static int run_block(job_state *s, int frames)
{
    const int ch = s->info.channels;
    for (int c = 0; c < ch; c++)
        for (int i = 0; i < frames; i++)
            s->plan_in[c][i] = s->ibuf[(size_t)i * ch + c];
    oscine_chain_process(s->chain, (const float *const *)s->plan_in, s->plan_out, frames);
    int start = 0;
    if (s->to_skip > 0) {
        start = s->to_skip < frames ? (int)s->to_skip : frames;
        s->to_skip -= start;
    }
    int n = frames - start;
    for (int c = 0; c < ch; c++)
        for (int i = 0; i < n; i++)
            s->obuf[(size_t)i * ch + c] = s->plan_out[c][start + i];
    return n ? emit(s, s->obuf, (size_t)n, 0) : 0;
}

static void job_free(job_state *s, int commit_failed)
{
    if (s->out_open)
        out_close(&s->out, 0);
    if (s->in_open)
        in_close(&s->in);
    if (s->sx)
        soxr_delete(s->sx);
    oscine_chain_destroy(s->chain);
    free(s->ibuf);
    free(s->obuf);
    free(s->rbuf);
    for (int c = 0; c < OSCINE_MAX_CHANNELS; c++) {
        free(s->plan_in[c]);
        free(s->plan_out[c]);
    }
    (void)commit_failed;
}

OSCINE_API int oscine_file_process(const oscine_file_job *job)
{
    job_state st, *s = &st;
    memset(s, 0, sizeof *s);
    err_clear();
    if (!job || !job->in_path || !job->out_path)
        return err_set(OSCINE_E_ARG, "file job: input and output paths are required");
    char out_path[4096]; /* where to write: job->out_path, or the file it links to */
    int e = out_target_check(job->in_path, job->out_path, out_path, sizeof out_path);
    /* the container and sample type asked for, before any work (the input's
     * own type matters only when none is asked for: any stands in here) */
    int fmt_probe, bits_probe;
    if (!e)
        e = choose_output_format(job->out_path, job->format, job->samples,
                                 SF_FORMAT_WAV | SF_FORMAT_PCM_16, &fmt_probe, &bits_probe);
    if (e)
        return e;

    e = in_open(&s->in, job->in_path);
    s->in_open = 1;
    if (e)
        goto fail;
    s->info = s->in.info;
    const int ch = s->info.channels, rate = s->info.samplerate;
    if (s->info.frames <= 0) {
        e = err_set(OSCINE_E_EMPTY, "input '%s': contains no audio", job->in_path);
        goto fail;
    }
    if (ch < 1 || ch > OSCINE_MAX_CHANNELS) {
        e = err_set(OSCINE_E_UNSUPPORTED, "input '%s': %d channels; oscine handles 1..%d",
                    job->in_path, ch, OSCINE_MAX_CHANNELS);
        goto fail;
    }
    if (rate < 8000 || rate > 192000) {
        e = err_set(OSCINE_E_UNSUPPORTED, "input '%s': sample rate %d Hz; oscine handles "
                    "8000..192000", job->in_path, rate);
        goto fail;
    }
    int out_rate = job->out_rate ? job->out_rate : rate;
    if (out_rate < 8000 || out_rate > 192000) {
        e = err_set(OSCINE_E_RANGE, "output rate %d Hz out of range 8000..192000", out_rate);
        goto fail;
    }

    oscine_chain_config cc = {.stages = job->stages, .sample_rate = rate, .channels = ch,
                              .max_block = BLOCK, .internal_rate = job->internal_rate,
                              .hop = job->hop, .models = job->models, .nmodels = job->nmodels,
                              .low_latency = job->low_latency};
    e = oscine_chain_create(&s->chain, &cc);
    if (e)
        goto fail;
    for (int i = 0; i < job->nset; i++) {
        e = oscine_chain_set(s->chain, job->set_addr[i], job->set_value[i]);
        if (e)
            goto fail;
    }

    int sf_format, bits;
    e = choose_output_format(job->out_path, job->format, job->samples, s->info.format,
                             &sf_format, &bits);
    if (e)
        goto fail;
    int in_bits = subtype_bits(s->info.format);
    int reduce = bits ? bits < in_bits : 0;

    s->ibuf = malloc(sizeof(float) * BLOCK * (size_t)ch);
    s->obuf = malloc(sizeof(float) * BLOCK * (size_t)ch);
    for (int c = 0; c < ch; c++) {
        s->plan_in[c] = malloc(sizeof(float) * BLOCK);
        s->plan_out[c] = malloc(sizeof(float) * BLOCK);
        if (!s->plan_in[c] || !s->plan_out[c])
            s->ibuf = NULL;
    }
    if (!s->ibuf || !s->obuf) {
        e = err_set(OSCINE_E_NOMEM, "out of memory");
        goto fail;
    }
    if (out_rate != rate) {
        soxr_error_t se = NULL;
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        s->sx = soxr_create(rate, out_rate, (unsigned)ch, &se, &io, &q, NULL);
        s->rcap = (size_t)ceil(BLOCK * (double)out_rate / rate) + 4096;
        s->rbuf = malloc(sizeof(float) * s->rcap * (size_t)ch);
        if (se || !s->rbuf) {
            e = err_set(OSCINE_E_RESAMPLE, "resampler %d -> %d Hz: %s", rate, out_rate,
                        se ? se : "out of memory");
            goto fail;
        }
    }

    s->to_skip = oscine_chain_latency(s->chain);
    s->out_total = (int64_t)llround((double)s->info.frames * out_rate / rate);
    e = out_open(&s->out, out_path, sf_format, out_rate, ch, job->dither && reduce,
                 s->out_total);
    if (e)
        goto fail;
    s->out_open = 1;

    int64_t done = 0;
    while (done < s->info.frames) {
        sf_count_t got = sf_readf_float(s->in.sf, s->ibuf, BLOCK);
        if (got <= 0)
            break;
        done += got;
        e = run_block(s, (int)got);
        if (e)
            goto fail;
        if (job->progress && job->progress(job->progress_user, done, s->info.frames)) {
            e = err_set(OSCINE_E_INTERRUPTED, "output '%s' not written: interrupted",
                        job->out_path);
            goto fail;
        }
    }
    /* A file that stops decoding early (a corrupt FLAC frame): what came is
     * processed, the rest counted as missing for the warning. */
    int64_t missing = s->in.missing;
    if (done < s->info.frames) {
        if (done == 0) {
            e = err_set(OSCINE_E_FORMAT, "input '%s': no frame of the %lld its header "
                        "promises can be read (%s)", job->in_path, (long long)s->info.frames,
                        sf_strerror(s->in.sf));
            goto fail;
        }
        missing += s->info.frames - done;
        s->out_total = (int64_t)llround((double)done * out_rate / rate);
    }
    /* Flush the chain's latency with silence, then the resampler. */
    memset(s->ibuf, 0, sizeof(float) * BLOCK * (size_t)ch);
    for (int64_t left = oscine_chain_latency(s->chain); left > 0; left -= BLOCK) {
        e = run_block(s, left < BLOCK ? (int)left : BLOCK);
        if (e)
            goto fail;
    }
    if (s->sx) {
        for (int guard = 0; guard < 1000 && s->out_written < s->out_total; guard++) {
            int64_t before = s->out_written;
            e = emit(s, NULL, 0, 1);
            if (e)
                goto fail;
            if (s->out_written == before)
                break;
        }
    }
    /* Rounding of the resampled length can leave a frame or two: pad. */
    while (s->out_written < s->out_total) {
        int64_t n = s->out_total - s->out_written;
        if (n > BLOCK)
            n = BLOCK;
        memset(s->obuf, 0, sizeof(float) * (size_t)n * ch);
        e = out_write(&s->out, s->obuf, (int)n);
        if (e)
            goto fail;
        s->out_written += n;
    }
    oscine_file_report rep = {.frames_in = done, .frames_out = s->out_written,
                              .clipped = s->out.clipped,
                              .nonfinite = oscine_chain_nan_events(s->chain),
                              .latency = oscine_chain_latency(s->chain),
                              .frames_missing = missing};
    s->out_open = 0;
    e = out_close(&s->out, 1);
    if (e)
        goto fail;
    if (job->report)
        *job->report = rep;
    job_free(s, 0);
    return 0;
fail:
    job_free(s, 1);
    return e;
}
