/* preset.h - presets: text files of OSC messages, one per line
 * ("/denoise/mix 0.8"), '#' starts a comment. Names are plain names
 * ([A-Za-z0-9_-], at most 63) looked up in the preset folders, never paths:
 *   $OSCINE_PRESET_PATH (colon-separated), $XDG_CONFIG_HOME/oscine/presets
 *   (or ~/.config/oscine/presets), the installed share/oscine/presets, and
 *   ./presets. */
#ifndef OSCINE_OSC_PRESET_H
#define OSCINE_OSC_PRESET_H

#include "osc/table.h"

#define PRESET_MAX_LINES 128

typedef struct preset_line {
    const osc_entry *e;
    float f;       /* for f and i */
    char s[256];   /* for s */
    int lineno;
} preset_line;

/* Is this a valid preset name? */
int preset_name_ok(const char *name);

/* Find NAME.osc in the preset folders. */
int preset_resolve(const char *name, char *path, size_t len);

/* A preset given by the local user (command line, SIGHUP): a name as for
 * preset_resolve, or the path of a file when it has a '/' or ends in
 * ".osc". Never for what arrives over OSC, which names presets only.
 * Thread: control. */
int preset_resolve_local(const char *name_or_path, char *path, size_t len);

/* Parse and validate a whole file against the OSC table; the first bad line
 * fails it all with a message naming file and line. Only settable
 * addresses may appear. Thread: control. */
int preset_parse_file(const char *path, preset_line *lines, int max, int *n);

/* Parse one line (exposed for tests and `--set`-style use). Returns 1 for a
 * message, 0 for blank/comment, negative on error (detail set). */
int preset_parse_line(const char *text, preset_line *out);

/* Write lines to the user preset folder as NAME.osc (temporary file, then
 * rename). path receives where it went. */
int preset_save(const char *name, const preset_line *lines, int n, char *path, size_t len);

#endif
