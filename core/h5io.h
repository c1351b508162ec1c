/* HDF5 helpers: float/int datasets by path (groups created on the way), string attributes and string
 * lists, and whole-file atomic writes (write to "<path>.tmp.<pid>", rename on success). Every read
 * checks the dataset's type and shape and reports "FILE: dataset 'NAME': expected ..., found ..." so a
 * truncated, corrupted or foreign file gives one clear line. HDF5's own error stack printing is off. */
#ifndef EPEE_H5IO_H
#define EPEE_H5IO_H

#include <hdf5.h>
#include <stdint.h>

#include "core/error.h"

void h5_quiet(void); /* turn off HDF5's automatic error printing (idempotent) */

/* Create "<path>.tmp.<pid>" for writing; h5_commit closes it, seals it and renames it onto path (or removes
 * it on failure when ok == 0). Returns a file id or a negative value with e set.
 *
 * The seal: HDF5 keeps no checksum on its metadata or on variable-length strings, and libhdf5 1.10 can crash
 * or loop forever on a file with one corrupted byte there (fuzzing found both). So every file EPEE-C writes
 * starts with a 512-byte HDF5 user block (skipped by HDF5 and h5py) holding a checksum and the size of the
 * rest, and h5_open_sealed checks it before HDF5 parses a single byte. */
hid_t h5_create_tmp(const char *path, char *tmp_path, size_t tmp_len, epee_err *e);
int h5_commit(hid_t f, const char *tmp_path, const char *path, int ok, epee_err *e);
/* (Re)writes the seal of a closed file written with h5_create_tmp (tests use it after editing a file). */
int h5_seal(const char *path, epee_err *e);
/* Opens read-only after checking the seal: one line naming the file if it is missing or does not match. */
hid_t h5_open_sealed(const char *path, epee_err *e);
/* Opens read-only without a seal (files written by other tools, e.g. the PyTorch twin's fixture). */
hid_t h5_open_read(const char *path, epee_err *e);

int h5_write_floats(hid_t f, const char *name, const float *x, int ndim, const int *shape, epee_err *e);
int h5_write_ints(hid_t f, const char *name, const int32_t *x, int ndim, const int *shape, epee_err *e);
int h5_write_u64(hid_t f, const char *name, const uint64_t *x, int n, epee_err *e);
int h5_write_strings(hid_t f, const char *name, char *const *s, int n, epee_err *e);
/* n > 0 bytes as a 1-D uint8 dataset with HDF5's Fletcher-32 checksum (files embedded in a model file) */
int h5_write_bytes(hid_t f, const char *name, const void *data, size_t n, epee_err *e);
int h5_write_attr_str(hid_t obj, const char *name, const char *value, epee_err *e);

/* The UTF-8 variable-length string type every string of these files uses (close it with H5Tclose). */
hid_t h5_vlen_str(void);
int h5_exists(hid_t f, const char *name);
/* Reads a dataset that must have exactly the given shape (checked, reported with both shapes). */
int h5_read_floats(hid_t f, const char *file, const char *name, float *x, int ndim, const int *shape, epee_err *e);
int h5_read_ints(hid_t f, const char *file, const char *name, int32_t *x, int ndim, const int *shape, epee_err *e);
int h5_read_u64(hid_t f, const char *file, const char *name, uint64_t *x, int n, epee_err *e);
/* numel and dims of a dataset (ndim_out <= 4) */
int h5_shape(hid_t f, const char *file, const char *name, int *ndim_out, int *shape_out, epee_err *e);
/* malloc'd array of n malloc'd strings */
/* A 1-D integer dataset of 1 to max_n bytes into *data (malloc'ed, +1 NUL byte not counted in *n). */
int h5_read_bytes(hid_t f, const char *file, const char *name, size_t max_n, unsigned char **data, size_t *n,
                  epee_err *e);
int h5_read_strings(hid_t f, const char *file, const char *name, char ***s, int *n, epee_err *e);
char *h5_read_attr_str(hid_t obj, const char *file, const char *name, epee_err *e);
void h5_free_strings(char **s, int n);

#endif
