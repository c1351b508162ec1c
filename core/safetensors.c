#define _DEFAULT_SOURCE /* madvise(MADV_DONTNEED): posix_madvise ignores DONTNEED on Linux */
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as is"
#endif

const char *const st_dtype_names[ST_DTYPE_COUNT] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8",
                                                    "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
static const int dtype_size[ST_DTYPE_COUNT] = {8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1, 1, 1};

int st_is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

/* ---- scalar conversions ---- */

float st_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13); /* inf, NaN (payload kept) */
  else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
  else if (!man) bits = sign;
  else { /* subnormal: man * 2^-24, exact in float32 */
    float v = (float)man * 0x1p-24f;
    return sign ? -v : v;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

float st_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t st_f32_to_f16(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  uint32_t sign = (b >> 16) & 0x8000, exp = (b >> 23) & 0xff, man = b & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
  int e = (int)exp - 112; /* the f16 exponent field */
  if (e >= 0x1f) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) { /* f16 subnormal (or zero): value / 2^-24, rounded to nearest even */
    if (e < -10) return (uint16_t)sign;
    uint32_t m = man | 0x800000, shift = (uint32_t)(14 - e), h = m >> shift, rem = m & ((1u << shift) - 1),
             half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry may step into the exponent: still right */
  return (uint16_t)(sign | h);
}

uint16_t st_f32_to_bf16(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40); /* NaN stays a quiet NaN */
  b += 0x7fffu + ((b >> 16) & 1);
  return (uint16_t)(b >> 16);
}

/* ---- reading ---- */

static void free_parsed(st_file *f) {
  for (int i = 0; i < f->n; i++) free(f->t[i].name);
  for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
  free(f->t), free(f->meta), free(f->path);
  f->t = NULL, f->meta = NULL, f->path = NULL, f->n = f->n_meta = 0;
}

/* A JSON number that is a whole number in [0, max]. */
static int whole(const json_t *j, double max, uint64_t *out) {
  if (!json_is_number(j)) return 0;
  double v = json_number_value(j);
  if (!(v >= 0 && v <= max) || v != floor(v)) return 0;
  *out = (uint64_t)v;
  return 1;
}

static int cmp_offset(const void *a, const void *b) {
  const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static int parse_tensor(json_t *j, uint64_t data_len, const char *path, st_tensor *t, epee_err *e) {
  const char *nm = t->name, *key;
  if (!json_is_object(j)) return epee_errf(e, "%s: header entry '%.200s': expected an object", path, nm);
  json_t *c;
  json_object_foreach(j, key, c)
    if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
      return epee_errf(e, "%s: tensor '%.200s': unknown field '%.100s' (expected dtype, shape, data_offsets)", path,
                       nm, key);
  const json_t *dt = json_object_get(j, "dtype"), *shape = json_object_get(j, "shape"),
               *off = json_object_get(j, "data_offsets");
  if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(off))
    return epee_errf(e, "%s: tensor '%.200s': expected \"dtype\" (a string), \"shape\" and \"data_offsets\" "
                        "(arrays)", path, nm);
  int d = 0;
  while (d < ST_DTYPE_COUNT && strcmp(st_dtype_names[d], json_string_value(dt))) d++;
  if (d == ST_DTYPE_COUNT)
    return epee_errf(e, "%s: tensor '%.200s': unknown dtype '%.40s' (expected F64, F32, F16, BF16, I64, I32, I16, "
                        "I8, U64, U32, U16, U8, BOOL, F8_E4M3 or F8_E5M2)", path, nm, json_string_value(dt));
  t->dtype = (st_dtype)d;
  size_t nd = json_array_size(shape);
  if (nd > ST_MAX_DIMS)
    return epee_errf(e, "%s: tensor '%.200s': %zu dimensions; at most %d are read", path, nm, nd, ST_MAX_DIMS);
  t->ndim = (int)nd;
  int zero = 0, k;
  for (k = 0; k < t->ndim; k++) {
    uint64_t v;
    if (!whole(json_array_get(shape, (size_t)k), 9007199254740992.0, &v))
      return epee_errf(e, "%s: tensor '%.200s': shape[%d] is not a whole number >= 0", path, nm, k);
    t->shape[k] = (int64_t)v;
    zero |= v == 0;
  }
  /* numel * size must fit in the data section: checked factor by factor, so nothing overflows */
  uint64_t numel = 1, limit = data_len / (uint64_t)dtype_size[d];
  for (k = 0; !zero && k < t->ndim; k++) {
    if ((uint64_t)t->shape[k] > limit / numel)
      return epee_errf(e, "%s: tensor '%.200s': shape needs more bytes than the file's %llu of data", path, nm,
                       (unsigned long long)data_len);
    numel *= (uint64_t)t->shape[k];
  }
  t->numel = zero ? 0 : (int64_t)numel;
  uint64_t b, en;
  if (json_array_size(off) != 2 || !whole(json_array_get(off, 0), 9007199254740992.0, &b) ||
      !whole(json_array_get(off, 1), 9007199254740992.0, &en) || b > en)
    return epee_errf(e, "%s: tensor '%.200s': data_offsets must be [BEGIN, END], whole numbers, BEGIN <= END", path,
                     nm);
  if (en > data_len)
    return epee_errf(e, "%s: tensor '%.200s': data_offsets [%llu, %llu] pass the end of the data (%llu bytes)", path,
                     nm, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
  if (en - b != (uint64_t)t->numel * (uint64_t)dtype_size[d])
    return epee_errf(e, "%s: tensor '%.200s': data_offsets span %llu bytes but %s x %lld elements need %llu", path,
                     nm, (unsigned long long)(en - b), st_dtype_names[d], (long long)t->numel,
                     (unsigned long long)t->numel * (unsigned long long)dtype_size[d]);
  t->begin = b, t->end = en;
  return 0;
}

static int parse_meta(json_t *j, const char *path, st_file *f, epee_err *e) {
  if (!json_is_object(j)) return epee_errf(e, "%s: __metadata__: expected an object of strings", path);
  f->meta = epee_calloc(json_object_size(j) * 2 + 1, sizeof(char *));
  const char *key;
  json_t *c;
  json_object_foreach(j, key, c) {
    if (!json_is_string(c)) return epee_errf(e, "%s: __metadata__ '%.100s': expected a string value", path, key);
    f->meta[2 * f->n_meta] = strdup(key);
    f->meta[2 * f->n_meta + 1] = strdup(json_string_value(c));
    f->n_meta++;
  }
  return 0;
}

/* The tensors tile the data section exactly (no overlap, no hole, nothing past the end); names are distinct
 * already (the parser refuses a key given twice). */
static int check_layout(st_file *f, uint64_t data_len, epee_err *e) {
  if (!f->n) return data_len ? epee_errf(e, "%s: %llu bytes of data but no tensor", f->path,
                                         (unsigned long long)data_len) : 0;
  const st_tensor **s = epee_malloc(sizeof *s * (size_t)f->n);
  for (int i = 0; i < f->n; i++) s[i] = &f->t[i];
  int rc = 0;
  qsort(s, (size_t)f->n, sizeof *s, cmp_offset);
  uint64_t pos = 0;
  for (int i = 0; i < f->n && !rc; i++) {
    if (s[i]->begin < pos)
      rc = epee_errf(e, "%s: tensor '%.200s' [%llu, %llu] overlaps tensor '%.200s'", f->path, s[i]->name,
                     (unsigned long long)s[i]->begin, (unsigned long long)s[i]->end, s[i - 1]->name);
    else if (s[i]->begin > pos)
      rc = epee_errf(e, "%s: data bytes [%llu, %llu) belong to no tensor (before '%.200s')", f->path,
                     (unsigned long long)pos, (unsigned long long)s[i]->begin, s[i]->name);
    pos = s[i]->end;
  }
  if (!rc && pos != data_len)
    rc = epee_errf(e, "%s: data bytes [%llu, %llu) belong to no tensor", f->path, (unsigned long long)pos,
                   (unsigned long long)data_len);
  free(s);
  return rc;
}

int st_parse(st_file *f, const char *path, const unsigned char *buf, size_t len, epee_err *e) {
  memset(f, 0, sizeof *f);
  if (len < 8) return epee_errf(e, "%s: %zu bytes: too short for a safetensors file (8-byte header length)", path, len);
  uint64_t n = 0;
  memcpy(&n, buf, 8);
  if (n > len - 8 || n > ST_MAX_HEADER)
    return epee_errf(e, "%s: header length %llu passes the end of the file (%zu bytes) or the format's 100 MB limit; "
                        "not a safetensors file?", path, (unsigned long long)n, len);
  if (n < 2 || buf[8] != '{')
    return epee_errf(e, "%s: the header does not start with '{': not a safetensors file", path);
  const char *hdr = (const char *)buf + 8;
  size_t used = (size_t)n; /* the format pads the header with spaces (some writers with NULs) */
  while (used > 0 && (hdr[used - 1] == ' ' || hdr[used - 1] == '\t' || hdr[used - 1] == '\n' ||
                      hdr[used - 1] == '\r' || !hdr[used - 1]))
    used--;
  json_error_t err;
  json_t *root = json_loadb(hdr, used, EPEE_JSON_STRICT, &err);
  if (!root)
    return epee_errf(e, "%s: the header is not one JSON object: %s (header byte %d of %llu)", path, err.text,
                     err.position, (unsigned long long)n);
  f->path = strdup(path);
  f->map = buf, f->size = len, f->data = 8 + (size_t)n;
  uint64_t data_len = len - f->data;
  f->t = epee_calloc(json_object_size(root) + 1, sizeof *f->t);
  int rc = 0;
  const char *key;
  json_t *c;
  json_object_foreach(root, key, c) {
    if (!strcmp(key, "__metadata__")) {
      rc = parse_meta(c, path, f, e);
    } else {
      st_tensor *t = &f->t[f->n++];
      t->name = strdup(key);
      rc = parse_tensor(c, data_len, path, t, e);
    }
    if (rc) break;
  }
  json_decref(root);
  if (!rc) rc = check_layout(f, data_len, e);
  if (rc) free_parsed(f);
  return rc;
}

int st_open(st_file *f, const char *path, epee_err *e) {
  memset(f, 0, sizeof *f);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return epee_errf(e, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
    close(fd);
    return epee_errf(e, "%s: not a regular file", path);
  }
  size_t len = (size_t)sb.st_size;
  void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (len && map == MAP_FAILED) return epee_errf(e, "%s: cannot map: %s", path, strerror(errno));
  if (len) madvise(map, len, MADV_SEQUENTIAL);
  if (st_parse(f, path, map ? map : (const unsigned char *)"", len, e)) {
    if (len) munmap(map, len);
    return -1;
  }
  f->mapped = len > 0;
  return 0;
}

void st_close(st_file *f) {
  if (f->mapped) munmap((void *)f->map, f->size);
  free_parsed(f);
  memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->t[i].name, name)) return &f->t[i];
  return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
  return NULL;
}

/* Converts n values of dtype d at src into dst. */
static void convert(st_dtype d, const unsigned char *src, float *dst, size_t n) {
  switch (d) {
  case ST_F32: memcpy(dst, src, n * sizeof(float)); break;
  case ST_F16:
  case ST_BF16: {
    float (*widen)(uint16_t) = d == ST_F16 ? st_f16_to_f32 : st_bf16_to_f32;
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, src + 2 * i, 2);
      dst[i] = widen(h);
    }
    break;
  }
  default: /* ST_F64 */
    for (size_t i = 0; i < n; i++) {
      double v;
      memcpy(&v, src + 8 * i, 8);
      dst[i] = (float)v;
    }
  }
}

int st_read_f32(const st_file *f, const st_tensor *t, float *dst, epee_err *e) {
  if (!st_is_float(t->dtype))
    return epee_errf(e, "%s: tensor '%.200s' is %s; expected a float dtype (F32, F16, BF16, F64)", f->path, t->name,
                     st_dtype_names[t->dtype]);
  /* In chunks, each dropped from the mapping once converted (a file mapping's pages stay in the page cache;
   * only this process's copy of them goes), so the mapped file never adds a second copy of the weights. */
  const size_t chunk = (size_t)16 << 20, esz = (size_t)dtype_size[t->dtype];
  const unsigned char *src = f->map + f->data + t->begin;
  long page = sysconf(_SC_PAGESIZE);
  for (size_t done = 0, n = (size_t)t->numel; done < n;) {
    size_t k = n - done < chunk / esz ? n - done : chunk / esz;
    convert(t->dtype, src + done * esz, dst + done, k);
    if (f->mapped && page > 0) { /* never on a caller's buffer given to st_parse */
      uintptr_t lo = (uintptr_t)(src + done * esz) & ~(uintptr_t)(page - 1), hi = (uintptr_t)(src + (done + k) * esz);
      madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    done += k;
  }
  return 0;
}

/* ---- writing ---- */

int st_write(const char *path, const st_out *t, int n, st_dtype dtype, const char *const *meta, epee_err *e) {
  EPEE_CHECK(dtype == ST_F32 || dtype == ST_F16 || dtype == ST_BF16, "st_write writes F32, F16 or BF16");
  const size_t esz = (size_t)dtype_size[dtype];
  json_t *root = json_object();
  if (meta && meta[0]) {
    json_t *m = json_object();
    for (int i = 0; meta[i]; i += 2) json_object_set_new(m, meta[i], json_string(meta[i + 1]));
    json_object_set_new(root, "__metadata__", m);
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    EPEE_CHECK(!json_object_get(root, t[i].name), "st_write: tensor names must be distinct");
    json_t *s = json_array();
    uint64_t numel = 1;
    for (int d = 0; d < t[i].ndim; d++) {
      json_array_append_new(s, json_integer(t[i].shape[d]));
      numel *= (uint64_t)t[i].shape[d];
    }
    json_t *a = json_array();
    json_array_append_new(a, json_integer((json_int_t)off));
    off += numel * esz;
    json_array_append_new(a, json_integer((json_int_t)off));
    EPEE_CHECK(!json_object_set_new(root, t[i].name, json_pack("{s:s, s:o, s:o}", "dtype", st_dtype_names[dtype],
                                                                "shape", s, "data_offsets", a)),
               "st_write: tensor names must be valid UTF-8");
  }
  char *hdr = json_text(root, 0);
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8; /* the data section starts 8-byte aligned */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    free(hdr);
    return epee_errf(e, "%s: cannot write: %s", tmp, strerror(errno));
  }
  uint64_t n_hdr = padded;
  int ok = fwrite(&n_hdr, 8, 1, fp) == 1 && fwrite(hdr, 1, hl, fp) == hl;
  for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
  free(hdr);
  uint16_t buf[4096];
  for (int i = 0; ok && i < n; i++) {
    size_t numel = 1;
    for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
    if (dtype == ST_F32) {
      ok = fwrite(t[i].data, sizeof(float), numel, fp) == numel;
      continue;
    }
    for (size_t done = 0; ok && done < numel;) {
      size_t k = numel - done < 4096 ? numel - done : 4096;
      for (size_t j = 0; j < k; j++)
        buf[j] = dtype == ST_F16 ? st_f32_to_f16(t[i].data[done + j]) : st_f32_to_bf16(t[i].data[done + j]);
      ok = fwrite(buf, 2, k, fp) == k;
      done += k;
    }
  }
  if (fclose(fp)) ok = 0;
  if (!ok || rename(tmp, path)) {
    int err = errno;
    remove(tmp);
    return epee_errf(e, "%s: cannot write: %s", path, strerror(err));
  }
  return 0;
}
