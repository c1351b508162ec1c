/* libFuzzer target for the .npy / .npz readers (scripts/fuzz.sh builds and runs it). Each input is read three ways:
 * as a .npy (npy_parse_header), as a whole .npz archive (img_read_npz_buffer), and as the two entries of a .npz
 * built here (first 2 bytes: the length of the train_images.npy bytes that follow, the rest is
 * train_labels.npy), which gets past the zip CRCs that mutations of a whole archive rarely survive. Any
 * refusal must be one line; anything read must be consistent. */
#include <string.h>
#include <zip.h>

#include "data/images.h"

#define CHECK(c) \
  do {           \
    if (!(c)) __builtin_trap(); \
  } while (0)

static void check_set(const img_set *s, const img_opts *o) {
  CHECK(s->n > 0 && s->H == s->W && s->H > 0 && (s->C == 1 || s->C == 3) && s->n_labels > 0);
  CHECK(!o->size || s->H == o->size);
  CHECK(!o->channels || s->C == o->channels);
  volatile uint8_t last = s->pixels[(size_t)s->n * s->H * s->W * s->C - 1]; /* ASan: the buffer is that big */
  (void)last;
  for (int i = 0; i < s->n; i++) CHECK(s->labels[i] >= 0 && s->labels[i] < s->n_labels && s->names[i]);
}

static void read_npz(const uint8_t *buf, size_t len) {
  static const img_opts opts[] = {{0, 0, 0}, {1, 5, 1}, {3, 0, 1}};
  for (int k = 0; k < 3; k++) {
    img_set s;
    epee_err e;
    if (img_read_npz_buffer(buf, len, "fuzz.npz", "train", &opts[k], &s, &e)) {
      CHECK(!strchr(e.msg, '\n') && s.n == 0 && !s.pixels);
      if (k == 0) return; /* the others only differ once it reads */
    } else {
      check_set(&s, &opts[k]);
    }
    img_set_free(&s);
  }
}

/* The two entries as a stored .npz in memory, read back. */
static void read_built(const uint8_t *data, size_t size) {
  size_t k = (size_t)(data[0] | data[1] << 8);
  data += 2, size -= 2;
  if (k > size) k = size;
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
  CHECK(src);
  zip_source_keep(src);
  zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
  CHECK(za);
  const char *names[2] = {"train_images.npy", "train_labels.npy"};
  const uint8_t *part[2] = {data, data + k};
  size_t plen[2] = {k, size - k};
  for (int i = 0; i < 2; i++) {
    zip_int64_t idx = zip_file_add(za, names[i], zip_source_buffer(za, part[i], plen[i], 0), 0);
    CHECK(idx >= 0 && zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) == 0);
  }
  CHECK(zip_close(za) == 0);
  zip_stat_t st;
  CHECK(zip_source_open(src) == 0 && zip_source_stat(src, &st) == 0);
  uint8_t *buf = malloc(st.size ? st.size : 1);
  CHECK(zip_source_read(src, buf, st.size) == (zip_int64_t)st.size);
  zip_source_close(src);
  zip_source_free(src);
  zip_error_fini(&ze);
  read_npz(buf, st.size);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  npy_header h;
  epee_err e;
  if (npy_parse_header(data, size, &h, &e) == 0) {
    CHECK(h.ndim >= 0 && h.ndim <= NPY_MAX_DIMS && !h.fortran_order && h.offset <= size);
    CHECK(size - h.offset == (size_t)h.count * (size_t)h.itemsize);
  } else {
    CHECK(!strchr(e.msg, '\n'));
  }
  read_npz(data, size);
  if (size >= 2) read_built(data, size);
  return 0;
}
