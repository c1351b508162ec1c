/* Whole-file reading for the data layer (vocabularies, datasets). */
#ifndef EPEE_DATA_READFILE_H
#define EPEE_DATA_READFILE_H

#include <stddef.h>

#include "core/error.h"

/* Returns the contents of path, NUL-terminated (malloc'ed, caller frees), its size in *len; NULL with
 * "path: reason" in e when it cannot be read. */
char *data_read_file(const char *path, size_t *len, epee_err *e);

#endif
