/* paths.h - where the files oscine bundles (models/, presets/) are looked up:
 * $OSCINE_MODEL_PATH, ./models, the installed share/oscine/models, then the
 * folder given to oscine_set_data_dir (the oscine program passes the source
 * tree an uninstalled build lives in). "The installed share/oscine" is the
 * one beside the program or plugin this code runs in (paths_install_dir), so
 * an installed tree works wherever it was installed or moved to. Below all
 * layers. Thread: control. */
#ifndef OSCINE_BASE_PATHS_H
#define OSCINE_BASE_PATHS_H

#include <stddef.h>

/* The build's $(PREFIX)/share/oscine: used only where the running file has
 * no share/oscine beside it (say, a program of one's own linked with
 * liboscine.a, installed elsewhere). */
#ifndef OSCINE_DATADIR
#define OSCINE_DATADIR "/usr/local/share/oscine"
#endif

/* The full path of weights file `file` (a plain name) in the folders above,
 * in out; -1 (out empty) when none has it. */
int paths_find_model(const char *file, char *out, size_t len);

/* The folders paths_find_model searches, for error messages:
 * "$OSCINE_MODEL_PATH, ./models or PREFIX/share/oscine/models[ or DIR/models]". */
const char *paths_model_dirs(void);

/* Is path a regular file that can be opened for reading? (Checked without
 * blocking: a FIFO is not one.) */
int paths_file_exists(const char *path);

/* The folder set by oscine_set_data_dir, or NULL. */
const char *paths_data_dir(void);

/* The installed share/oscine of the file this code runs in: the executable
 * (/proc/self/exe) for a program, else the shared object (dladdr: a plugin,
 * liboscine.so). The first of its three parent folders that has a
 * share/oscine folder gives it, so PREFIX/bin/oscine, PREFIX/lib/liboscine.so,
 * PREFIX/lib/ladspa/oscine_denoise_ladspa.so and
 * PREFIX/lib/lv2/oscine.lv2/oscine.so all find PREFIX/share/oscine; symbolic
 * links are followed first. OSCINE_DATADIR when none has one. Found once.
 * Thread: any. */
const char *paths_install_dir(void);

#endif
