#include "tests/image_write.h"

#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

bytes npy_raw(const char *dict, const void *data, size_t n) {
  size_t d = strlen(dict), hlen = d + 1;
  while ((10 + hlen) % 64) hlen++;
  bytes o = {malloc(10 + hlen + n), 10 + hlen + n};
  memcpy(o.b, "\x93NUMPY\x01\x00", 8);
  o.b[8] = (uint8_t)(hlen & 255);
  o.b[9] = (uint8_t)(hlen >> 8);
  memset(o.b + 10, ' ', hlen - 1);
  memcpy(o.b + 10, dict, d);
  o.b[10 + hlen - 1] = '\n';
  if (n) memcpy(o.b + 10 + hlen, data, n);
  return o;
}

bytes npy(const char *descr, const char *shape, const void *data, size_t n) {
  char dict[256];
  snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  return npy_raw(dict, data, n);
}

int npz_write(const char *path, npz_entry *es, int n, int deflate) {
  int err = 0, ok = 1;
  zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  for (int k = 0; za && ok && k < n; k++) {
    zip_source_t *src = zip_source_buffer(za, es[k].data.b, es[k].data.n, 0);
    zip_int64_t i = src ? zip_file_add(za, es[k].name, src, ZIP_FL_OVERWRITE) : -1;
    ok = i >= 0 && zip_set_file_compression(za, (zip_uint64_t)i, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) == 0;
  }
  ok = za && ok && zip_close(za) == 0; /* the buffers are read here */
  for (int k = 0; k < n; k++) free(es[k].data.b);
  return ok ? 0 : -1;
}

bytes png_encode(int color_type, int depth, int w, int h, const void *px, size_t n) {
  spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(c, SPNG_ENCODE_TO_BUFFER, 1);
  struct spng_ihdr ih = {.width = (uint32_t)w, .height = (uint32_t)h, .bit_depth = (uint8_t)depth,
                         .color_type = (uint8_t)color_type};
  spng_set_ihdr(c, &ih);
  if (color_type == SPNG_COLOR_TYPE_INDEXED) {
    struct spng_plte p = {.n_entries = 2};
    p.entries[0] = (struct spng_plte_entry){10, 20, 30, 255};
    p.entries[1] = (struct spng_plte_entry){200, 100, 50, 255};
    spng_set_plte(c, &p);
  }
  bytes b = {NULL, 0};
  int err;
  if (spng_encode_image(c, px, n, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE) == 0) b.b = spng_get_png_buffer(c, &b.n, &err);
  spng_ctx_free(c);
  return b;
}

static uint64_t mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void halves_image(int S, int i, uint64_t seed, uint8_t *px, int *label) {
  int y = (int)(mix(seed * 1000003u + (uint64_t)i) & 1);
  for (int r = 0; r < S; r++)
    for (int c = 0; c < S; c++) {
      int bright = (r < S / 2) == (y == 0);
      int noise = (int)(mix(seed ^ ((uint64_t)i << 20) ^ (uint64_t)(r * S + c)) % 60);
      px[r * S + c] = (uint8_t)(bright ? 180 + noise : noise);
    }
  *label = y;
}

int write_halves_npz(const char *path, int S, const int n[3], uint64_t seed) {
  static const char *const split[3] = {"train", "val", "test"};
  npz_entry es[6];
  char names[6][32], shape[64];
  for (int s = 0; s < 3; s++) {
    uint8_t *img = malloc((size_t)n[s] * S * S), *lab = malloc((size_t)n[s]);
    for (int i = 0; i < n[s]; i++) {
      int y;
      halves_image(S, i, seed + (uint64_t)s, img + (size_t)i * S * S, &y);
      lab[i] = (uint8_t)y;
    }
    snprintf(names[2 * s], sizeof names[0], "%s_images.npy", split[s]);
    snprintf(names[2 * s + 1], sizeof names[0], "%s_labels.npy", split[s]);
    snprintf(shape, sizeof shape, "(%d, %d, %d)", n[s], S, S);
    es[2 * s] = (npz_entry){names[2 * s], npy("|u1", shape, img, (size_t)n[s] * S * S)};
    snprintf(shape, sizeof shape, "(%d, 1)", n[s]);
    es[2 * s + 1] = (npz_entry){names[2 * s + 1], npy("|u1", shape, lab, (size_t)n[s])};
    free(img), free(lab);
  }
  return npz_write(path, es, 6, 1);
}
