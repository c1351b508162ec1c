/* .npy headers and MedMNIST .npz archives (read with libzip) -> img_set (formats in images.h). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <zip.h>

#include "data/images.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error ".npy data is read as stored: little-endian hosts only"
#endif

/* ---- .npy header ------------------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *s; /* the whole buffer; the dict is s[i..n) */
  size_t i, n;
} cursor;

static int at(const cursor *c, char ch) { return c->i < c->n && c->s[c->i] == (uint8_t)ch; }

static void skip_space(cursor *c) {
  while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r')) c->i++;
}

static int expect(cursor *c, char ch, const char *what, epee_err *e) {
  skip_space(c);
  if (!at(c, ch)) return epee_errf(e, ".npy header: expected '%c' %s at byte %zu", ch, what, c->i);
  c->i++;
  return 0;
}

/* A quoted string without escapes ('...' or "...") into out[cap]. */
static int parse_string(cursor *c, char *out, size_t cap, const char *what, epee_err *e) {
  skip_space(c);
  if (!at(c, '\'') && !at(c, '"')) return epee_errf(e, ".npy header: expected a quoted %s at byte %zu", what, c->i);
  uint8_t q = c->s[c->i++];
  size_t k = 0;
  for (; c->i < c->n && c->s[c->i] != q; c->i++) {
    if (c->s[c->i] == '\\' || k + 1 >= cap)
      return epee_errf(e, ".npy header: %s at byte %zu is not a short plain string", what, c->i);
    out[k++] = (char)c->s[c->i];
  }
  if (c->i == c->n) return epee_errf(e, ".npy header: unterminated %s", what);
  c->i++;
  out[k] = '\0';
  return 0;
}

/* "<u1", "|b1", "<f4", ...: the types a numeric array can have; sets kind, itemsize, byteorder. */
static int parse_descr(npy_header *h, epee_err *e) {
  const char *d = h->descr;
  char order = d[0], kind = order ? d[1] : 0;
  int size = 0, k = 2;
  while (order && kind && d[k] >= '0' && d[k] <= '9' && k < 4) size = 10 * size + (d[k++] - '0');
  int ok = order && strchr("<>|=", order) && d[k] == '\0' &&
           (((kind == 'u' || kind == 'i') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
            (kind == 'b' && size == 1) || (kind == 'f' && (size == 2 || size == 4 || size == 8)));
  if (!ok)
    return epee_errf(e, ".npy header: dtype '%s' is not supported (expected a little-endian integer, bool or float "
                        "type such as '|u1', '<i8', '<f4')", d);
  if (size > 1 && order == '>') return epee_errf(e, ".npy header: dtype '%s' is big-endian (expected '<')", d);
  if (size > 1 && order == '|') return epee_errf(e, ".npy header: dtype '%s' has no byte order (expected '<')", d);
  h->kind = kind;
  h->itemsize = size;
  h->byteorder = size == 1 ? '|' : '<';
  return 0;
}

static int parse_bool(cursor *c, int *v, epee_err *e) {
  skip_space(c);
  size_t rest = c->n - c->i;
  if (rest >= 4 && !memcmp(c->s + c->i, "True", 4)) *v = 1, c->i += 4;
  else if (rest >= 5 && !memcmp(c->s + c->i, "False", 5)) *v = 0, c->i += 5;
  else return epee_errf(e, ".npy header: 'fortran_order' at byte %zu is not True or False", c->i);
  return 0;
}

/* A Python tuple of non-negative ints: (), (3,), (3, 28, 28) with an optional trailing comma. */
static int parse_shape(cursor *c, npy_header *h, epee_err *e) {
  if (expect(c, '(', "opening 'shape'", e)) return -1;
  skip_space(c);
  h->ndim = 0;
  if (at(c, ')')) return c->i++, 0;
  for (;;) {
    skip_space(c);
    size_t start = c->i;
    int64_t v = 0;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
      int dgt = c->s[c->i++] - '0';
      if (v > (INT64_MAX - dgt) / 10) return epee_errf(e, ".npy header: shape dimension at byte %zu overflows", start);
      v = 10 * v + dgt;
    }
    if (c->i == start || (c->s[start] == '0' && c->i - start > 1))
      return epee_errf(e, ".npy header: expected a non-negative integer in 'shape' at byte %zu", start);
    if (h->ndim == NPY_MAX_DIMS) return epee_errf(e, ".npy header: more than %d dimensions", NPY_MAX_DIMS);
    h->shape[h->ndim++] = v;
    skip_space(c);
    if (at(c, ')')) {
      if (h->ndim == 1) return epee_errf(e, ".npy header: 'shape' (%" PRId64 ") is not a tuple (expected (%" PRId64 ",))", v, v);
      return c->i++, 0;
    }
    if (expect(c, ',', "or ')' in 'shape'", e)) return -1;
    skip_space(c);
    if (at(c, ')')) return c->i++, 0;
  }
}

int npy_parse_header(const uint8_t *buf, size_t len, npy_header *h, epee_err *e) {
  memset(h, 0, sizeof *h);
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6)) return epee_errf(e, "not a .npy array (no \\x93NUMPY magic)");
  int major = buf[6], minor = buf[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    return epee_errf(e, ".npy format version %d.%d is not supported (expected 1.0, 2.0 or 3.0)", major, minor);
  size_t pre = major == 1 ? 10 : 12;
  if (len < pre) return epee_errf(e, ".npy truncated in its preamble (%zu bytes)", len);
  size_t hlen = major == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
                           : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
  if (hlen > len - pre) return epee_errf(e, ".npy truncated: the header needs %zu bytes, %zu are left", hlen, len - pre);
  cursor c = {buf, pre, pre + hlen};
  enum { DESCR, FORTRAN, SHAPE };
  static const char *const keys[] = {"descr", "fortran_order", "shape"};
  int seen[3] = {0, 0, 0};
  if (expect(&c, '{', "opening the header dict", e)) return -1;
  for (;;) {
    skip_space(&c);
    if (at(&c, '}')) break;
    char key[32];
    if (parse_string(&c, key, sizeof key, "key", e)) return -1;
    int k = 0;
    while (k < 3 && strcmp(key, keys[k])) k++;
    if (k == 3)
      return epee_errf(e, ".npy header: unexpected key '%s' (expected exactly 'descr', 'fortran_order', 'shape')", key);
    if (seen[k]++) return epee_errf(e, ".npy header: key '%s' appears twice", key);
    if (expect(&c, ':', "after a key", e)) return -1;
    skip_space(&c);
    if (k == DESCR && !at(&c, '\'') && !at(&c, '"'))
      return epee_errf(e, ".npy header: 'descr' is not a type string (structured dtypes are not supported)");
    if (k == DESCR ? parse_string(&c, h->descr, sizeof h->descr, "'descr'", e) || parse_descr(h, e)
        : k == FORTRAN ? parse_bool(&c, &h->fortran_order, e)
                       : parse_shape(&c, h, e))
      return -1;
    skip_space(&c);
    if (at(&c, ',')) c.i++;
    else if (!at(&c, '}')) return epee_errf(e, ".npy header: expected ',' or '}' at byte %zu", c.i);
  }
  c.i++;
  skip_space(&c);
  if (c.i != c.n) return epee_errf(e, ".npy header: unexpected text after the dict at byte %zu", c.i);
  for (int k = 0; k < 3; k++)
    if (!seen[k]) return epee_errf(e, ".npy header: no key '%s' (expected 'descr', 'fortran_order', 'shape')", keys[k]);
  if (h->fortran_order) return epee_errf(e, ".npy array in Fortran order (expected C order)");
  int64_t count = 1;
  for (int d = 0; d < h->ndim; d++) {
    if (h->shape[d] && count > INT64_MAX / h->shape[d]) return epee_errf(e, ".npy shape overflows 64 bits");
    count *= h->shape[d];
  }
  if ((uint64_t)count > SIZE_MAX / (uint64_t)h->itemsize) return epee_errf(e, ".npy shape overflows the address space");
  h->count = count;
  h->offset = pre + hlen;
  size_t need = (size_t)count * (size_t)h->itemsize;
  if (len - h->offset != need)
    return epee_errf(e, ".npy data is %zu bytes, the shape and dtype '%s' need %zu", len - h->offset, h->descr, need);
  return 0;
}

/* ---- .npz -------------------------------------------------------------------------------------------- */

static void shape_text(const npy_header *h, char *out, size_t cap) {
  size_t k = (size_t)snprintf(out, cap, "(");
  for (int d = 0; d < h->ndim && k < cap; d++)
    k += (size_t)snprintf(out + k, cap - k, "%s%" PRId64, d ? ", " : "", h->shape[d]);
  if (k < cap) snprintf(out + k, cap - k, h->ndim == 1 ? ",)" : ")");
}

/* Reads entry `entry` of za whole into *buf (malloc'ed) and parses its header into h. The buffer grows with what
 * is actually inflated, so a size the archive merely claims allocates nothing. */
static int read_entry(zip_t *za, const char *name, const char *entry, uint8_t **buf, npy_header *h, epee_err *e) {
  *buf = NULL;
  zip_int64_t idx = zip_name_locate(za, entry, 0);
  if (idx < 0) {
    char have[400] = "";
    zip_int64_t n = zip_get_num_entries(za, 0);
    size_t k = 0;
    for (zip_int64_t i = 0; i < n && k + 4 < sizeof have; i++) {
      const char *s = zip_get_name(za, (zip_uint64_t)i, 0);
      int w = snprintf(have + k, sizeof have - k, "%s%s", i ? ", " : "", s ? s : "?");
      k = w < 0 || (size_t)w >= sizeof have - k ? sizeof have - 4 : k + (size_t)w;
    }
    if (k == sizeof have - 4) strcpy(have + k, "...");
    return epee_errf(e, "%s: no entry %s (entries: %s)", name, entry, n ? have : "none");
  }
  zip_stat_t st;
  if (zip_stat_index(za, (zip_uint64_t)idx, 0, &st) || !(st.valid & ZIP_STAT_SIZE))
    return epee_errf(e, "%s:%s: cannot stat the entry: %s", name, entry, zip_strerror(za));
  if (st.size > (1ull << 62)) return epee_errf(e, "%s:%s: entry claims %" PRIu64 " bytes", name, entry, (uint64_t)st.size);
  zip_file_t *f = zip_fopen_index(za, (zip_uint64_t)idx, 0);
  if (!f) return epee_errf(e, "%s:%s: cannot open the entry: %s", name, entry, zip_strerror(za));
  size_t want = (size_t)st.size, cap = (want < (1u << 20) ? want : (1u << 20)) + 1, n = 0;
  uint8_t *b = epee_malloc(cap);
  int rc = 0;
  for (;;) {
    if (n == cap) {
      if (cap > want) break; /* more than the archive says: refused below */
      cap = cap > want / 2 ? want + 1 : 2 * cap;
      b = epee_realloc(b, cap);
    }
    zip_int64_t got = zip_fread(f, b + n, cap - n);
    if (got < 0) {
      rc = epee_errf(e, "%s:%s: cannot inflate the entry: %s", name, entry, zip_file_strerror(f));
      break;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  zip_fclose(f);
  if (!rc && n != want) rc = epee_errf(e, "%s:%s: entry holds %s bytes than the archive says (%zu)", name, entry,
                                       n < want ? "fewer" : "more", want);
  epee_err pe;
  if (!rc && npy_parse_header(b, n, h, &pe)) rc = epee_errf(e, "%s:%s: %s", name, entry, pe.msg);
  if (rc) free(b);
  else *buf = b;
  return rc;
}

/* The label at p as a magnitude, *neg set when a signed one is negative. */
static uint64_t label_at(const uint8_t *p, const npy_header *h, int *neg) {
  uint64_t u = 0;
  memcpy(&u, p, (size_t)h->itemsize); /* little-endian: the low bytes */
  *neg = 0;
  if (h->kind == 'u') return u;
  int bits = 8 * h->itemsize;
  if (bits < 64 && (u >> (bits - 1) & 1)) u |= ~0ull << bits; /* sign-extend */
  *neg = (int64_t)u < 0;
  return *neg ? 0 - u : u;
}

/* The two entries of split -> out; frees everything it made on error. */
static int read_split(zip_t *za, const char *name, const char *split, const img_opts *o, img_set *out, epee_err *e) {
  char ie[32], le[32], shape[200]; /* 8 dimensions of 19 digits fit */
  snprintf(ie, sizeof ie, "%s_images.npy", split);
  snprintf(le, sizeof le, "%s_labels.npy", split);
  uint8_t *ib = NULL, *lb = NULL;
  npy_header ih, lh;
  int rc = -1;
  if (read_entry(za, name, ie, &ib, &ih, e)) goto done;
  shape_text(&ih, shape, sizeof shape);
  if (ih.kind != 'u' || ih.itemsize != 1) {
    epee_errf(e, "%s:%s: dtype '%s', expected uint8 images ('|u1')", name, ie, ih.descr);
    goto done;
  }
  if (!(ih.ndim == 3 || (ih.ndim == 4 && ih.shape[3] == 3))) {
    epee_errf(e, "%s:%s: shape %s, expected [N, H, W] (grey) or [N, H, W, 3] (RGB)", name, ie, shape);
    goto done;
  }
  if (ih.shape[0] == 0) {
    epee_errf(e, "%s:%s: no images (shape %s)", name, ie, shape);
    goto done;
  }
  if (ih.shape[0] > INT32_MAX || ih.shape[1] < 1 || ih.shape[1] > IMG_MAX_SIDE || ih.shape[2] < 1 ||
      ih.shape[2] > IMG_MAX_SIDE) {
    epee_errf(e, "%s:%s: shape %s, expected at most 2^31-1 images of 1..%d pixels a side", name, ie, shape, IMG_MAX_SIDE);
    goto done;
  }
  int n = (int)ih.shape[0], h = (int)ih.shape[1], w = (int)ih.shape[2], c = ih.ndim == 4 ? 3 : 1;
  if (read_entry(za, name, le, &lb, &lh, e)) goto done;
  shape_text(&lh, shape, sizeof shape);
  if (lh.kind != 'u' && lh.kind != 'i') {
    epee_errf(e, "%s:%s: dtype '%s', expected integer labels", name, le, lh.descr);
    goto done;
  }
  if (lh.ndim == 2 && lh.shape[1] > 1) {
    epee_errf(e, "%s:%s: shape %s has %" PRId64 " labels per image: multi-label tasks are not supported (expected [N] "
                 "or [N, 1])", name, le, shape, lh.shape[1]);
    goto done;
  }
  if (!(lh.ndim == 1 || (lh.ndim == 2 && lh.shape[1] == 1))) {
    epee_errf(e, "%s:%s: shape %s, expected [N] or [N, 1]", name, le, shape);
    goto done;
  }
  if (lh.shape[0] != n) {
    epee_errf(e, "%s:%s: %" PRId64 " labels for the %d images of %s", name, le, lh.shape[0], n, ie);
    goto done;
  }
  int *labels = out->labels = epee_malloc((size_t)n * sizeof *out->labels), top = -1;
  for (int i = 0; i < n; i++) {
    int neg;
    uint64_t v = label_at(lb + lh.offset + (size_t)i * (size_t)lh.itemsize, &lh, &neg);
    if (neg || v >= IMG_MAX_CLASSES) {
      epee_errf(e, "%s:%s[%d]: label %s%" PRIu64 ", expected 0..%d", name, le, i, neg ? "-" : "", v, IMG_MAX_CLASSES - 1);
      goto done;
    }
    labels[i] = (int)v;
    if (labels[i] > top) top = labels[i];
  }
  epee_err fe; /* img_fit names the entry; the file goes in front */
  int size = o->size, C = o->channels, fit = img_fit(ie, h, w, c, o, &size, &C, &fe);
  if (fit < 0) {
    epee_errf(e, "%s:%s", name, fe.msg);
    goto done;
  }
  size_t img = (size_t)size * (size_t)size * (size_t)C;
  if (fit == 0) { /* the entry's buffer becomes the pixels */
    memmove(ib, ib + ih.offset, (size_t)n * img);
    out->pixels = epee_realloc(ib, (size_t)n * img);
    ib = NULL;
  } else {
    out->pixels = epee_malloc((size_t)n * img);
    for (int i = 0; i < n; i++)
      img_resize_bilinear(ib + ih.offset + (size_t)i * h * w * c, h, w, c, out->pixels + (size_t)i * img, size, size);
  }
  out->names = epee_malloc((size_t)n * sizeof *out->names);
  size_t nl = strlen(name) + strlen(split) + 16;
  for (int i = 0; i < n; i++) snprintf(out->names[i] = epee_malloc(nl), nl, "%s:%s[%d]", name, split, i);
  out->n = n;
  out->H = out->W = size;
  out->C = C;
  out->label_names = epee_malloc((size_t)(top + 1) * sizeof *out->label_names);
  for (out->n_labels = 0; out->n_labels <= top; out->n_labels++)
    snprintf(out->label_names[out->n_labels] = epee_malloc(12), 12, "%d", out->n_labels);
  rc = 0;
done:
  free(ib);
  free(lb);
  if (rc) img_set_free(out);
  return rc;
}

static int check_split(const char *name, const char *split, epee_err *e) {
  if (!strcmp(split, "train") || !strcmp(split, "val") || !strcmp(split, "test")) return 0;
  return epee_errf(e, "%s: split '%s', expected train, val or test", name, split);
}

static int zip_failed(const char *name, zip_error_t *ze, epee_err *e) {
  epee_errf(e, "%s: not a readable .npz (zip) archive: %s", name, zip_error_strerror(ze));
  zip_error_fini(ze);
  return -1;
}

int img_read_npz(const char *path, const char *split, const img_opts *o, img_set *out, epee_err *e) {
  memset(out, 0, sizeof *out);
  if (check_split(path, split, e)) return -1;
  int code = 0;
  zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!za) {
    if (code == ZIP_ER_NOENT || code == ZIP_ER_OPEN) return epee_errf(e, "%s: cannot open: %s", path, strerror(errno));
    zip_error_t ze;
    zip_error_init_with_code(&ze, code);
    return zip_failed(path, &ze, e);
  }
  int rc = read_split(za, path, split, o, out, e);
  zip_discard(za);
  return rc;
}

int img_read_npz_buffer(const uint8_t *buf, size_t len, const char *name, const char *split, const img_opts *o,
                        img_set *out, epee_err *e) {
  memset(out, 0, sizeof *out);
  if (check_split(name, split, e)) return -1;
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
  zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
  if (!za) {
    zip_source_free(src);
    return zip_failed(name, &ze, e);
  }
  zip_error_fini(&ze);
  int rc = read_split(za, name, split, o, out, e);
  zip_discard(za);
  return rc;
}
