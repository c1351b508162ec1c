#include "core/h5io.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---- the seal: a checksum of the whole file in its HDF5 user block ------------------------------------ */

#define SEAL_BYTES 512 /* HDF5 user block: the library skips it, h5py reads such files unchanged */
#define SEAL_MAGIC "EPEE-C seal 1: fnv1a64 "

/* FNV-1a over 64-bit little-endian words of bytes [SEAL_BYTES, EOF) (the tail zero-padded), and the size */
static int file_hash(FILE *fp, uint64_t *hash, uint64_t *size) {
  enum { CHUNK = 1 << 16 };
  unsigned char *buf = malloc(CHUNK + 8);
  if (!buf || fseek(fp, SEAL_BYTES, SEEK_SET) != 0) {
    free(buf);
    return -1;
  }
  uint64_t h = 0xcbf29ce484222325ull, n = 0;
  size_t got;
  while ((got = fread(buf, 1, CHUNK, fp)) > 0) {
    memset(buf + got, 0, 8); /* fread fills whole chunks until EOF: only the last word is padded */
    for (size_t i = 0; i < got; i += 8) {
      uint64_t w;
      memcpy(&w, buf + i, 8);
      h = (h ^ w) * 0x100000001b3ull;
    }
    n += got;
  }
  int bad = ferror(fp);
  free(buf);
  *hash = h, *size = n;
  return bad ? -1 : 0;
}

int h5_seal(const char *path, epee_err *e) {
  FILE *fp = fopen(path, "r+b");
  uint64_t h, n;
  char head[SEAL_BYTES] = {0};
  if (!fp) return epee_errf(e, "%s: cannot open to seal", path);
  int rc = file_hash(fp, &h, &n);
  snprintf(head, sizeof head, SEAL_MAGIC "%016" PRIx64 " bytes %" PRIu64 "\n", h, n);
  if (rc == 0 && (fseek(fp, 0, SEEK_SET) != 0 || fwrite(head, 1, SEAL_BYTES, fp) != SEAL_BYTES)) rc = -1;
  if (fclose(fp) != 0) rc = -1;
  return rc ? epee_errf(e, "%s: writing the seal failed (disk full?)", path) : 0;
}

hid_t h5_create_tmp(const char *path, char *tmp_path, size_t tmp_len, epee_err *e) {
  h5_quiet();
  snprintf(tmp_path, tmp_len, "%s.tmp.%ld", path, (long)getpid());
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_userblock(fcpl, SEAL_BYTES);
  hid_t f = H5Fcreate(tmp_path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  H5Pclose(fcpl);
  if (f < 0) epee_errf(e, "%s: cannot create file (directory missing or not writable?)", tmp_path);
  return f;
}

int h5_commit(hid_t f, const char *tmp_path, const char *path, int ok, epee_err *e) {
  if (H5Fclose(f) < 0 && ok) {
    ok = 0;
    epee_errf(e, "%s: closing failed (disk full?)", tmp_path);
  }
  if (ok && h5_seal(tmp_path, e)) ok = 0;
  if (!ok) {
    unlink(tmp_path);
    return -1;
  }
  if (rename(tmp_path, path) != 0) {
    unlink(tmp_path);
    return epee_errf(e, "%s: cannot rename %s onto it", path, tmp_path);
  }
  return 0;
}

hid_t h5_open_read(const char *path, epee_err *e) {
  h5_quiet();
  if (access(path, R_OK) != 0) {
    epee_errf(e, "%s: cannot read file", path);
    return -1;
  }
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) {
    epee_errf(e, "%s: not an HDF5 file (truncated or foreign?)", path);
    return -1;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) epee_errf(e, "%s: HDF5 cannot open it (corrupted?)", path);
  return f;
}

hid_t h5_open_sealed(const char *path, epee_err *e) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    epee_errf(e, "%s: cannot read file", path);
    return -1;
  }
  char head[SEAL_BYTES + 1] = {0};
  size_t got = fread(head, 1, SEAL_BYTES, fp);
  uint64_t want_h = 0, want_n = 0, h = 0, n = 0;
  int sealed = got == SEAL_BYTES && strncmp(head, SEAL_MAGIC, strlen(SEAL_MAGIC)) == 0 &&
               sscanf(head + strlen(SEAL_MAGIC), "%16" SCNx64 " bytes %" SCNu64, &want_h, &want_n) == 2;
  int hashed = sealed && file_hash(fp, &h, &n) == 0;
  fclose(fp);
  if (!sealed) {
    h5_quiet();
    if (H5Fis_hdf5(path) <= 0) /* only looks for the signature: safe on any bytes */
      epee_errf(e, "%s: not an HDF5 file (truncated or foreign?)", path);
    else
      epee_errf(e, "%s: no EPEE-C seal in its first %d bytes (an HDF5 file not written by EPEE-C, or by a version "
                   "before the seal)", path, SEAL_BYTES);
    return -1;
  }
  if (!hashed || n != want_n || h != want_h) {
    epee_errf(e, "%s: the file does not match its seal (%" PRIu64 " bytes, fnv1a64 %016" PRIx64 "; sealed: %" PRIu64
                 " bytes, %016" PRIx64 "): corrupted, truncated or edited after writing", path, n, h, want_n, want_h);
    return -1;
  }
  return h5_open_read(path, e);
}

/* link creation property that makes intermediate groups ("weights/...") */
static hid_t lcpl(void) {
  hid_t p = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(p, 1);
  return p;
}

static int write_ds(hid_t f, const char *name, hid_t mem_type, hid_t file_type, const void *x, int ndim,
                    const hsize_t *dims, epee_err *e) {
  hid_t sp = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t lp = lcpl();
  hid_t ds = H5Dcreate2(f, name, file_type, sp, lp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = ds >= 0 && H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0 ? 0 : -1;
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(lp);
  H5Sclose(sp);
  return rc ? epee_errf(e, "writing dataset '%s' failed", name) : 0;
}

static void to_dims(int ndim, const int *shape, hsize_t *d) {
  for (int i = 0; i < ndim; i++) d[i] = (hsize_t)shape[i];
}

int h5_write_floats(hid_t f, const char *name, const float *x, int ndim, const int *shape, epee_err *e) {
  hsize_t d[4];
  to_dims(ndim, shape, d);
  return write_ds(f, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, x, ndim, d, e);
}

int h5_write_ints(hid_t f, const char *name, const int32_t *x, int ndim, const int *shape, epee_err *e) {
  hsize_t d[4];
  to_dims(ndim, shape, d);
  return write_ds(f, name, H5T_NATIVE_INT32, H5T_STD_I32LE, x, ndim, d, e);
}

int h5_write_u64(hid_t f, const char *name, const uint64_t *x, int n, epee_err *e) {
  hsize_t d = (hsize_t)n;
  return write_ds(f, name, H5T_NATIVE_UINT64, H5T_STD_U64LE, x, 1, &d, e);
}

int h5_write_bytes(hid_t f, const char *name, const void *data, size_t n, epee_err *e) {
  if (n == 0) return epee_errf(e, "dataset '%s': nothing to write", name);
  hsize_t dims = (hsize_t)n, chunk = n < ((size_t)1 << 20) ? (hsize_t)n : ((hsize_t)1 << 20);
  hid_t sp = H5Screate_simple(1, &dims, NULL), lp = lcpl(), dp = H5Pcreate(H5P_DATASET_CREATE);
  int ok = H5Pset_chunk(dp, 1, &chunk) >= 0 && H5Pset_fletcher32(dp) >= 0;
  hid_t ds = ok ? H5Dcreate2(f, name, H5T_STD_U8LE, sp, lp, dp, H5P_DEFAULT) : -1;
  ok = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(dp), H5Pclose(lp), H5Sclose(sp);
  return ok ? 0 : epee_errf(e, "writing dataset '%s' failed (disk full?)", name);
}

hid_t h5_vlen_str(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

int h5_write_strings(hid_t f, const char *name, char *const *s, int n, epee_err *e) {
  hid_t t = h5_vlen_str();
  hsize_t d = (hsize_t)n;
  int rc = write_ds(f, name, t, t, s, 1, &d, e);
  H5Tclose(t);
  return rc;
}

int h5_write_attr_str(hid_t obj, const char *name, const char *value, epee_err *e) {
  hid_t t = h5_vlen_str();
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a >= 0 && H5Awrite(a, t, &value) >= 0 ? 0 : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
  return rc ? epee_errf(e, "writing attribute '%s' failed", name) : 0;
}

int h5_exists(hid_t f, const char *name) {
  /* H5Lexists needs every intermediate group to exist: walk the path */
  char buf[512];
  snprintf(buf, sizeof buf, "%s", name);
  for (char *p = buf; (p = strchr(p, '/')) != NULL; p++) {
    *p = 0;
    int ok = H5Lexists(f, buf, H5P_DEFAULT) > 0;
    *p = '/';
    if (!ok) return 0;
  }
  return H5Lexists(f, buf, H5P_DEFAULT) > 0;
}

int h5_shape(hid_t f, const char *file, const char *name, int *ndim_out, int *shape_out, epee_err *e) {
  if (!h5_exists(f, name)) return epee_errf(e, "%s: dataset '%s' is missing", file, name);
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  if (ds < 0) return epee_errf(e, "%s: '%s' is not a readable dataset", file, name);
  hid_t sp = H5Dget_space(ds);
  int nd = H5Sget_simple_extent_ndims(sp);
  hsize_t d[8] = {0};
  int rc = 0;
  if (nd < 0 || nd > 4)
    rc = epee_errf(e, "%s: dataset '%s' has %d dims (at most 4 expected)", file, name, nd);
  else {
    H5Sget_simple_extent_dims(sp, d, NULL);
    *ndim_out = nd;
    for (int i = 0; i < nd && rc == 0; i++) {
      if (d[i] > (hsize_t)INT_MAX) /* crafted sizes must not wrap into small ones */
        rc = epee_errf(e, "%s: dataset '%s': dimension %d is %llu, above %d", file, name, i, (unsigned long long)d[i],
                       INT_MAX);
      shape_out[i] = (int)d[i];
    }
  }
  H5Sclose(sp);
  H5Dclose(ds);
  return rc;
}

static void fmt_shape(char *buf, size_t len, int ndim, const int *shape) {
  int k = snprintf(buf, len, "[");
  for (int i = 0; i < ndim && (size_t)k < len; i++) k += snprintf(buf + k, len - (size_t)k, i ? ", %d" : "%d", shape[i]);
  if ((size_t)k < len) snprintf(buf + k, len - (size_t)k, "]");
}

static int read_ds(hid_t f, const char *file, const char *name, hid_t mem_type, H5T_class_t cls, void *x, int ndim,
                   const int *shape, epee_err *e) {
  int nd, sh[4];
  if (h5_shape(f, file, name, &nd, sh, e)) return -1;
  int same = nd == ndim;
  for (int i = 0; same && i < nd; i++) same = sh[i] == shape[i];
  if (!same) {
    char want[96], got[96];
    fmt_shape(want, sizeof want, ndim, shape);
    fmt_shape(got, sizeof got, nd, sh);
    return epee_errf(e, "%s: dataset '%s': expected shape %s, found %s", file, name, want, got);
  }
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t t = H5Dget_type(ds);
  int rc = 0;
  if (H5Tget_class(t) != cls)
    rc = epee_errf(e, "%s: dataset '%s': expected %s data", file, name, cls == H5T_FLOAT ? "float" : "integer");
  else if (H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
    rc = epee_errf(e, "%s: dataset '%s': read failed (file truncated or corrupted?)", file, name);
  H5Tclose(t);
  H5Dclose(ds);
  return rc;
}

int h5_read_floats(hid_t f, const char *file, const char *name, float *x, int ndim, const int *shape, epee_err *e) {
  return read_ds(f, file, name, H5T_NATIVE_FLOAT, H5T_FLOAT, x, ndim, shape, e);
}

int h5_read_ints(hid_t f, const char *file, const char *name, int32_t *x, int ndim, const int *shape, epee_err *e) {
  return read_ds(f, file, name, H5T_NATIVE_INT32, H5T_INTEGER, x, ndim, shape, e);
}

int h5_read_u64(hid_t f, const char *file, const char *name, uint64_t *x, int n, epee_err *e) {
  return read_ds(f, file, name, H5T_NATIVE_UINT64, H5T_INTEGER, x, 1, &n, e);
}

int h5_read_bytes(hid_t f, const char *file, const char *name, size_t max_n, unsigned char **data, size_t *n,
                  epee_err *e) {
  int nd, sh[4];
  *data = NULL;
  *n = 0;
  if (h5_shape(f, file, name, &nd, sh, e)) return -1;
  if (nd != 1 || sh[0] < 1 || (size_t)sh[0] > max_n)
    return epee_errf(e, "%s: dataset '%s': expected 1 to %zu bytes in one dimension", file, name, max_n);
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), t = ds >= 0 ? H5Dget_type(ds) : -1;
  int bytes = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
  if (t >= 0) H5Tclose(t);
  if (ds >= 0) H5Dclose(ds);
  if (!bytes) return epee_errf(e, "%s: dataset '%s': expected unsigned 8-bit integers (a file's bytes)", file, name);
  unsigned char *d = epee_malloc((size_t)sh[0] + 1);
  if (read_ds(f, file, name, H5T_NATIVE_UINT8, H5T_INTEGER, d, 1, sh, e)) {
    free(d);
    return -1;
  }
  d[sh[0]] = 0;
  *data = d;
  *n = (size_t)sh[0];
  return 0;
}

int h5_read_strings(hid_t f, const char *file, const char *name, char ***s, int *n, epee_err *e) {
  int nd, sh[4];
  *s = NULL;
  *n = 0;
  if (h5_shape(f, file, name, &nd, sh, e)) return -1;
  if (nd != 1) return epee_errf(e, "%s: dataset '%s': expected a 1-D list of strings", file, name);
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t ft = H5Dget_type(ds);
  int rc = 0;
  if (H5Tget_class(ft) != H5T_STRING || !H5Tis_variable_str(ft)) {
    rc = epee_errf(e, "%s: dataset '%s': expected variable-length strings", file, name);
  } else {
    hid_t t = h5_vlen_str();
    char **v = epee_calloc((size_t)sh[0] + 1, sizeof(char *));
    if (H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
      free(v);
      rc = epee_errf(e, "%s: dataset '%s': read failed (file truncated or corrupted?)", file, name);
    } else {
      /* copy out of HDF5's allocations so callers free with free() */
      char **out = epee_calloc((size_t)sh[0] + 1, sizeof(char *));
      for (int i = 0; i < sh[0]; i++) {
        out[i] = strdup(v[i] ? v[i] : "");
        EPEE_CHECK(out[i] != NULL, "out of memory");
      }
      hid_t sp = H5Dget_space(ds);
      H5Dvlen_reclaim(t, sp, H5P_DEFAULT, v);
      H5Sclose(sp);
      free(v);
      *s = out;
      *n = sh[0];
    }
    H5Tclose(t);
  }
  H5Tclose(ft);
  H5Dclose(ds);
  return rc;
}

char *h5_read_attr_str(hid_t obj, const char *file, const char *name, epee_err *e) {
  if (H5Aexists(obj, name) <= 0) {
    epee_errf(e, "%s: attribute '%s' is missing", file, name);
    return NULL;
  }
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
  char *out = NULL;
  if (H5Tget_class(ft) != H5T_STRING || !H5Tis_variable_str(ft) || H5Sget_simple_extent_npoints(sp) != 1) {
    epee_errf(e, "%s: attribute '%s': expected one variable-length string", file, name); /* H5Aread fills all */
  } else {
    hid_t t = h5_vlen_str();
    char *v = NULL;
    if (H5Aread(a, t, &v) < 0 || !v) {
      epee_errf(e, "%s: attribute '%s': read failed", file, name);
    } else {
      out = strdup(v);
      H5free_memory(v);
    }
    H5Tclose(t);
  }
  H5Sclose(sp);
  H5Tclose(ft);
  H5Aclose(a);
  return out;
}

void h5_free_strings(char **s, int n) {
  if (!s) return;
  for (int i = 0; i < n; i++) free(s[i]);
  free(s);
}
