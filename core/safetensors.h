/* safetensors, HuggingFace's weight format: both sides of it.
 *
 *   bytes 0..7       N, unsigned 64-bit little-endian: the header's length
 *   bytes 8..8+N     the header, UTF-8 JSON: {"NAME": {"dtype": "F32", "shape": [768, 768],
 *                    "data_offsets": [BEGIN, END]}, ..., "__metadata__": {"key": "string", ...}}
 *                    (padded with spaces; offsets are relative to the data section)
 *   bytes 8+N..      the data section: every tensor row-major, little-endian, back to back, no holes
 *
 * Reading maps the file (mmap) and checks the whole header before any tensor is touched: lengths inside the
 * file, a JSON object (parsed strictly with jansson: no key twice), known dtypes, integral shapes whose
 * byte size equals the offsets' span, offsets that neither overlap, leave holes nor pass the end. Whatever the
 * file says, nothing is allocated beyond what its size bounds. Tensors are then converted to float32 straight
 * into the caller's memory (F32, F16, BF16, F64), and the mapped pages are dropped as they are consumed, so
 * importing a checkpoint holds one copy of the weights, not two. Writing is float32 only, atomic
 * (temp file + rename). */
#ifndef EPEE_SAFETENSORS_H
#define EPEE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20) /* the format's own limit on N */

typedef enum { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U64, ST_U32, ST_U16, ST_U8,
               ST_BOOL, ST_F8_E4M3, ST_F8_E5M2, ST_DTYPE_COUNT } st_dtype;
extern const char *const st_dtype_names[ST_DTYPE_COUNT]; /* "F64", "F32", ... as in the header */

typedef struct {
  char *name;
  st_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end; /* byte offsets in the data section */
} st_tensor;

typedef struct {
  char *path;
  const unsigned char *map; /* the whole file, read-only */
  size_t size;              /* of the file */
  int mapped;               /* map is st_open's mapping (not a caller's buffer given to st_parse) */
  size_t data;              /* offset of the data section in the file */
  st_tensor *t;             /* in header order */
  int n;
  char **meta;              /* __metadata__ as key, value, key, value, ... */
  int n_meta;
} st_file;

/* Validates the header of buf[0..len) (a whole file's bytes). path names the file in messages. On success
 * f->t, f->meta are set (f->map and f->size too, pointing at buf) and must be released with st_close; on
 * failure -1 with "PATH: what" in e and nothing to release. */
int st_parse(st_file *f, const char *path, const unsigned char *buf, size_t len, epee_err *e);
/* Maps path and st_parse's it. */
int st_open(st_file *f, const char *path, epee_err *e);
void st_close(st_file *f);

const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key); /* NULL if absent */
/* 1 for a dtype st_read_f32 converts (F32, F16, BF16, F64). */
int st_is_float(st_dtype d);
/* Converts t's numel values to float32 into dst, then drops t's mapped pages from memory. -1 with e set for a
 * dtype that is not a float. */
int st_read_f32(const st_file *f, const st_tensor *t, float *dst, epee_err *e);

/* The scalar conversions, exposed for tests. */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float x);  /* round to nearest even, as torch's .half() */
uint16_t st_f32_to_bf16(float x); /* round to nearest even, as torch's .bfloat16() */

typedef struct {
  const char *name;
  const float *data;
  int ndim;
  const int *shape;
} st_out;

/* Writes tensors t[0..n) as F32 (dtype ST_F32), or converted to F16 / BF16, in the order given, with
 * __metadata__ from meta = {key, value, ..., NULL} (may be NULL), to path through "<path>.tmp.<pid>" + rename.
 * Names must be distinct. 0, or -1 with e set. */
int st_write(const char *path, const st_out *t, int n, st_dtype dtype, const char *const *meta, epee_err *e);

#endif
