/* paths.h - where the files oscine bundles (models/, presets/) are looked up:
 * $OSCINE_MODEL_PATH, ./models, the installed share/oscine/models, then the
 * folder given to oscine_set_data_dir (the oscine program passes the source
 * tree an uninstalled build lives in). Below all layers. Thread: control. */
#ifndef OSCINE_BASE_PATHS_H
#define OSCINE_BASE_PATHS_H

#include <stddef.h>

#ifndef OSCINE_DATADIR
#define OSCINE_DATADIR "/usr/local/share/oscine"
#endif

/* The full path of weights file `file` (a plain name) in the folders above,
 * in out; -1 (out empty) when none has it. */
int paths_find_model(const char *file, char *out, size_t len);

/* The folders paths_find_model searches, for error messages:
 * "$OSCINE_MODEL_PATH, ./models, /usr/local/share/oscine/models[ or DIR/models]". */
const char *paths_model_dirs(void);

/* Is path a regular file that can be opened for reading? (Checked without
 * blocking: a FIFO is not one.) */
int paths_file_exists(const char *path);

/* The folder set by oscine_set_data_dir, or NULL. */
const char *paths_data_dir(void);

#endif
