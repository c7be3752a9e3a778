/* preset.h - presets: text files of OSC messages, one per line
 * ("/denoise/mix 0.8"), '#' starts a comment; a string value may be quoted
 * ("/engine/chain \"denoise, gain\"") and then hold a '#'. Numbers are
 * decimal (the command line's grammar: no 0x10, inf or nan). Lines up to
 * PRESET_LINE_MAX bytes, files up to PRESET_FILE_MAX, regular files only. Names are plain names
 * ([A-Za-z0-9_-], at most 63) looked up in the preset folders, never paths:
 *   $OSCINE_PRESET_PATH (colon-separated), $XDG_CONFIG_HOME/oscine/presets
 *   (or ~/.config/oscine/presets), the installed share/oscine/presets, and
 *   ./presets. */
#ifndef OSCINE_OSC_PRESET_H
#define OSCINE_OSC_PRESET_H

#include "osc/table.h"

#define PRESET_MAX_LINES 128
#define PRESET_LINE_MAX 4095   /* bytes in a line, its newline not counted */
#define PRESET_FILE_MAX (1 << 20)

typedef struct preset_line {
    const osc_entry *e;
    float f;       /* for f and i */
    char s[256];   /* for s */
    int lineno;
} preset_line;

/* The one grammar of numbers in presets, `--set`, scores and `oscine send`:
 * a finite decimal (strtod's, without hex, inf or nan). 0, -1 when s is not
 * such a number, -2 when it is one beyond the float range (about 3.4e38).
 * Values too small for a float read as 0. Thread: any. */
int preset_parse_number(const char *s, double *out);

/* A chain spec in its one written form: stage names trimmed of spaces,
 * joined by single commas ("denoise , gain" -> "denoise,gain"), checked as
 * oscine_chain_create would (chain_spec_check). An empty chain, an empty
 * stage name and one too long for out are refused (OSCINE_E_STAGE).
 * Thread: control. */
int preset_chain_canon(const char *spec, char *out, size_t len);

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
 * addresses may appear. The file is opened without blocking (a FIFO is
 * refused, not waited on), and messages quote no text of it but short
 * tokens (an address, a number), so a symlink to another file never has
 * its contents echoed. Thread: control. */
int preset_parse_file(const char *path, preset_line *lines, int max, int *n);

/* Parse one line (exposed for tests and `--set`-style use). Returns 1 for a
 * message, 0 for blank/comment, negative on error (detail set). */
int preset_parse_line(const char *text, preset_line *out);

/* Write lines to the user preset folder as NAME.osc (temporary file, then
 * rename). path receives where it went. */
int preset_save(const char *name, const preset_line *lines, int n, char *path, size_t len);

#endif
