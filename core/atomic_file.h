/* Whole-file atomic writes of text outputs: write "<path>.tmp.<pid>", then rename onto path, so a reader (or a
 * kill at any point) never sees half a file; a killed writer's temp file is recognisable by its pid
 * (train/run_dir.c removes those of dead writers). HDF5 files have their own (core/h5io.h). */
#ifndef EPEE_ATOMIC_FILE_H
#define EPEE_ATOMIC_FILE_H

#include <stdio.h>

#include "core/error.h"

typedef struct {
  FILE *f;
  char path[4096], tmp[4128];
} atomic_file;

/* Opens the temp file of path for writing; returns a->f, or NULL with e set. */
FILE *atomic_open(atomic_file *a, const char *path, epee_err *e);
/* Closes and renames onto the path; on any write error the temp file is removed, path is untouched, -1. */
int atomic_commit(atomic_file *a, epee_err *e);
/* Closes and removes the temp file; path is untouched. */
void atomic_abort(atomic_file *a);
/* text (and a final newline) into path, atomically. */
int atomic_write_text(const char *path, const char *text, epee_err *e);

#endif
