/* Writes the fuzzers' seed corpora (a few hundred bytes each, made here rather than committed):
 *   make_seeds NPZ_DIR PNG_DIR
 * NPZ_DIR: .npy arrays, .npz archives (stored and deflated, grey and RGB) and the two-part form fuzz_npy builds
 * archives from (2-byte length, images .npy, labels .npy); PNG_DIR: every colour type and bit depth. */
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

static void put(const char *dir, const char *name, const void *b, size_t n) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  if (!f || fwrite(b, 1, n, f) != n || fclose(f)) {
    perror(p);
    exit(1);
  }
}

/* .npy v1.0 of dict and data into out; returns its length */
static size_t npy(uint8_t *out, const char *descr, const char *shape, const void *data, size_t n) {
  char dict[200];
  int d = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  size_t hlen = (size_t)d + 1;
  while ((10 + hlen) % 16) hlen++; /* 16 keeps the seeds small; numpy pads to 64 */
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  out[8] = (uint8_t)hlen, out[9] = 0;
  memset(out + 10, ' ', hlen - 1);
  memcpy(out + 10, dict, (size_t)d);
  out[9 + hlen] = '\n';
  memcpy(out + 10 + hlen, data, n);
  return 10 + hlen + n;
}

static void npz(const char *dir, const char *name, const uint8_t *im, size_t ni, const uint8_t *lb, size_t nl, int deflate) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int err;
  zip_t *za = zip_open(p, ZIP_CREATE | ZIP_TRUNCATE, &err);
  const char *names[2] = {"train_images.npy", "train_labels.npy"};
  const uint8_t *b[2] = {im, lb};
  size_t n[2] = {ni, nl};
  for (int k = 0; za && k < 2; k++) {
    zip_int64_t i = zip_file_add(za, names[k], zip_source_buffer(za, b[k], n[k], 0), 0);
    if (i < 0 || zip_set_file_compression(za, (zip_uint64_t)i, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0)) exit(1);
  }
  if (!za || zip_close(za)) {
    fprintf(stderr, "%s: cannot write\n", p);
    exit(1);
  }
}

static void two_part(const char *dir, const char *name, const uint8_t *im, size_t ni, const uint8_t *lb, size_t nl) {
  uint8_t b[1024];
  b[0] = (uint8_t)ni, b[1] = (uint8_t)(ni >> 8);
  memcpy(b + 2, im, ni);
  memcpy(b + 2 + ni, lb, nl);
  put(dir, name, b, 2 + ni + nl);
}

static void png(const char *dir, const char *name, int ct, int depth, int interlace, int w, int h, const void *px, size_t n) {
  spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(c, SPNG_ENCODE_TO_BUFFER, 1);
  struct spng_ihdr ih = {.width = (uint32_t)w, .height = (uint32_t)h, .bit_depth = (uint8_t)depth,
                         .color_type = (uint8_t)ct, .interlace_method = (uint8_t)interlace};
  spng_set_ihdr(c, &ih);
  if (ct == SPNG_COLOR_TYPE_INDEXED) {
    struct spng_plte p = {.n_entries = 4};
    for (int k = 0; k < 4; k++) p.entries[k] = (struct spng_plte_entry){(uint8_t)(60 * k), 7, (uint8_t)(250 - 60 * k), 255};
    spng_set_plte(c, &p);
  }
  int err = spng_encode_image(c, px, n, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  size_t len;
  void *b = err ? NULL : spng_get_png_buffer(c, &len, &err);
  if (!b) {
    fprintf(stderr, "%s: %s\n", name, spng_strerror(err));
    exit(1);
  }
  put(dir, name, b, len);
  free(b);
  spng_ctx_free(c);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: make_seeds NPZ_DIR PNG_DIR\n");
    return 2;
  }
  uint8_t px[3 * 4 * 4 * 3], im[256], lb[128];
  for (size_t k = 0; k < sizeof px; k++) px[k] = (uint8_t)(k * 37 + 11);
  size_t ni = npy(im, "|u1", "(3, 4, 4)", px, 48), nl = npy(lb, "|u1", "(3, 1)", "\x02\x00\x01", 3);
  put(argv[1], "grey.npy", im, ni);
  put(argv[1], "labels.npy", lb, nl);
  npz(argv[1], "grey_stored.npz", im, ni, lb, nl, 0);
  npz(argv[1], "grey_deflated.npz", im, ni, lb, nl, 1);
  two_part(argv[1], "grey.two", im, ni, lb, nl);
  int64_t l8[2] = {4, 1};
  ni = npy(im, "|u1", "(2, 2, 2, 3)", px, 24), nl = npy(lb, "<i8", "(2,)", l8, 16);
  npz(argv[1], "rgb_deflated.npz", im, ni, lb, nl, 1);
  two_part(argv[1], "rgb.two", im, ni, lb, nl);
  nl = npy(lb, "<u2", "(2, 1)", "\x05\x00\x00\x01", 4);
  two_part(argv[1], "u2.two", im, ni, lb, nl);

  const char *d = argv[2];
  png(d, "grey8.png", SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, 4, 4, px, 16);
  png(d, "grey8_interlaced.png", SPNG_COLOR_TYPE_GRAYSCALE, 8, 1, 4, 4, px, 16);
  png(d, "grey16.png", SPNG_COLOR_TYPE_GRAYSCALE, 16, 0, 3, 2, px, 12);
  png(d, "grey1.png", SPNG_COLOR_TYPE_GRAYSCALE, 1, 0, 9, 2, px, 4);
  png(d, "grey_alpha8.png", SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, 0, 3, 3, px, 18);
  png(d, "grey_alpha16.png", SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 16, 0, 2, 2, px, 16);
  png(d, "rgb8.png", SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, 4, 3, px, 36);
  png(d, "rgb16_interlaced.png", SPNG_COLOR_TYPE_TRUECOLOR, 16, 1, 3, 3, px, 54);
  png(d, "rgba8.png", SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, 0, 3, 3, px, 36);
  png(d, "palette2.png", SPNG_COLOR_TYPE_INDEXED, 2, 0, 5, 3, (uint8_t[]){0x1b, 0xc0, 0xe4, 0x40, 0x6c, 0x80}, 6);
  return 0;
}
