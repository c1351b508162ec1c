/* Image data: .npy headers, MedMNIST .npz (stored and deflated entries, written here with libzip), PNG decoding
 * and ImageFolder / file-list readers (PNGs encoded here with libspng), bilinear resizing, and the batch fill
 * (normalisation, crop, flip, determinism). Every refused input must give ONE line naming the file (and entry)
 * and what was expected; those lines are compared exactly. Fixtures live in a mkdtemp directory. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/images.h"
#include "tests/image_write.h"

static char dir[64];
#define MAX_MADE 256
static char *made[MAX_MADE]; /* files and folders made, removed in reverse order */
static int n_made;

static int suite_init(void) {
  strcpy(dir, "/tmp/epee_images_XXXXXX");
  return mkdtemp(dir) ? 0 : 1;
}
static int suite_clean(void) {
  while (n_made > 0) {
    remove(made[--n_made]);
    free(made[n_made]);
  }
  return rmdir(dir);
}

/* dir/rel, remembered for removal; valid until the suite ends. */
static const char *path_of(const char *rel) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  for (int k = 0; k < n_made; k++)
    if (!strcmp(made[k], p)) return made[k];
  CU_ASSERT_FATAL(n_made < MAX_MADE);
  return made[n_made++] = strdup(p);
}

static const char *make_dir(const char *rel) {
  const char *p = path_of(rel);
  mkdir(p, 0755);
  return p;
}

static const char *write_file(const char *rel, const void *data, size_t len) {
  const char *p = path_of(rel);
  FILE *f = fopen(p, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fwrite(data, 1, len, f);
  fclose(f);
  return p;
}

/* Expects rc == -1 and exactly the message want (when want ends in '*', only that prefix); the set empty. */
static void expect_err(int rc, const img_set *s, const epee_err *e, const char *want) {
  CU_ASSERT_EQUAL(rc, -1);
  size_t n = strlen(want);
  int ok = want[n - 1] == '*' ? !strncmp(e->msg, want, n - 1) : !strcmp(e->msg, want);
  if (!ok) fprintf(stderr, "\n  got  \"%s\"\n  want \"%s\"\n", e->msg, want);
  CU_ASSERT(ok);
  CU_ASSERT_PTR_NULL(strchr(e->msg, '\n'));
  CU_ASSERT(s->n == 0 && !s->pixels && !s->labels && !s->names && !s->label_names);
}

/* ---- .npy / .npz writers (tests/image_write.h) ------------------------------------------------------ */

typedef npz_entry entry;

/* Writes the entries (deflated when deflate, else stored) to dir/rel with libzip. */
static const char *write_npz(const char *rel, entry *es, int n, int deflate) {
  const char *p = path_of(rel);
  CU_ASSERT_EQUAL_FATAL(npz_write(p, es, n, deflate), 0);
  return p;
}

/* train split: 3 grey 2x2 images, pixel k of image i = 10 i + k + 1, labels [3, 1] u1 {2, 0, 2} */
static const uint8_t GREY3[12] = {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24};
static const char *grey_npz(const char *rel, int deflate) {
  entry es[] = {{"train_images.npy", npy("|u1", "(3, 2, 2)", GREY3, 12)},
                {"train_labels.npy", npy("|u1", "(3, 1)", (uint8_t[]){2, 0, 2}, 3)}};
  return write_npz(rel, es, 2, deflate);
}

static const img_opts ANY = {0, 0, 0};

static void test_npz_grey_roundtrip(void) {
  for (int deflate = 0; deflate < 2; deflate++) {
    const char *p = grey_npz(deflate ? "grey_deflated.npz" : "grey_stored.npz", deflate);
    img_set s;
    epee_err e;
    CU_ASSERT_EQUAL_FATAL(img_read_npz(p, "train", &ANY, &s, &e), 0);
    CU_ASSERT(s.n == 3 && s.H == 2 && s.W == 2 && s.C == 1);
    CU_ASSERT_EQUAL(memcmp(s.pixels, GREY3, 12), 0);
    CU_ASSERT(s.labels[0] == 2 && s.labels[1] == 0 && s.labels[2] == 2);
    CU_ASSERT_EQUAL(s.n_labels, 3); /* "0".."2": max + 1 over this split */
    CU_ASSERT_STRING_EQUAL(s.label_names[0], "0");
    CU_ASSERT_STRING_EQUAL(s.label_names[2], "2");
    char want[300];
    snprintf(want, sizeof want, "%s:train[2]", p);
    CU_ASSERT_STRING_EQUAL(s.names[2], want);
    img_set_free(&s);
    CU_ASSERT(s.n == 0 && s.pixels == NULL);
  }
}

/* [N, H, W, 3] deflated, labels int64 [N] */
static void test_npz_rgb(void) {
  uint8_t px[2 * 2 * 2 * 3];
  for (int k = 0; k < 24; k++) px[k] = (uint8_t)(9 * k + 1);
  int64_t lab[2] = {5, 1};
  entry es[] = {{"test_images.npy", npy("|u1", "(2, 2, 2, 3)", px, 24)}, {"test_labels.npy", npy("<i8", "(2,)", lab, 16)}};
  const char *p = write_npz("rgb.npz", es, 2, 1);
  img_set s;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(img_read_npz(p, "test", &(img_opts){3, 2, 0}, &s, &e), 0);
  CU_ASSERT(s.n == 2 && s.H == 2 && s.W == 2 && s.C == 3);
  CU_ASSERT_EQUAL(memcmp(s.pixels, px, 24), 0);
  CU_ASSERT(s.labels[0] == 5 && s.labels[1] == 1 && s.n_labels == 6);
  img_set_free(&s);
}

/* every integer label dtype numpy can write, [N, 1] */
static void test_npz_label_dtypes(void) {
  const char *descr[] = {"|u1", "<u2", "<u4", "<u8", "|i1", "<i2", "<i4", "<i8"};
  for (int d = 0; d < 8; d++) {
    int w = d % 4 == 0 ? 1 : d % 4 == 1 ? 2 : d % 4 == 2 ? 4 : 8;
    uint8_t lab[24] = {0};
    lab[0] = 7;           /* labels 7, 0, 300 (300 only where it fits) little-endian */
    lab[2 * w] = 44;      /* 300 = 0x12c */
    if (w > 1) lab[2 * w + 1] = 1;
    entry es[] = {{"val_images.npy", npy("|u1", "(3, 2, 2)", GREY3, 12)}, {"val_labels.npy", npy(descr[d], "(3, 1)", lab, 3 * (size_t)w)}};
    char rel[32];
    snprintf(rel, sizeof rel, "lab%d.npz", d);
    const char *p = write_npz(rel, es, 2, d & 1);
    img_set s;
    epee_err e;
    CU_ASSERT_EQUAL_FATAL(img_read_npz(p, "val", &ANY, &s, &e), 0);
    int third = w > 1 ? 300 : 44;
    CU_ASSERT(s.labels[0] == 7 && s.labels[1] == 0 && s.labels[2] == third);
    CU_ASSERT_EQUAL(s.n_labels, third + 1);
    img_set_free(&s);
  }
}

/* ---- .npy header ------------------------------------------------------------------------------------- */

static void expect_npy_err(bytes b, const char *want) {
  npy_header h;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(npy_parse_header(b.b, b.n, &h, &e), -1);
  size_t n = strlen(want);
  int ok = want[n - 1] == '*' ? !strncmp(e.msg, want, n - 1) : !strcmp(e.msg, want);
  if (!ok) fprintf(stderr, "\n  got  \"%s\"\n  want \"%s\"\n", e.msg, want);
  CU_ASSERT(ok);
  free(b.b);
}

static const char *const DICT_FMT = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }";
static bytes npy_f(const char *descr, const char *fortran, const char *shape, size_t n) {
  char dict[256];
  snprintf(dict, sizeof dict, DICT_FMT, descr, fortran, shape);
  uint8_t *zeros = calloc(n ? n : 1, 1);
  bytes b = npy_raw(dict, zeros, n);
  free(zeros);
  return b;
}

static void test_npy_header_ok(void) {
  npy_header h;
  epee_err e;
  bytes b = npy_f("<i8", "False", "(2, 3)", 48);
  CU_ASSERT_EQUAL_FATAL(npy_parse_header(b.b, b.n, &h, &e), 0);
  CU_ASSERT(h.kind == 'i' && h.itemsize == 8 && h.byteorder == '<' && h.ndim == 2 && h.shape[0] == 2 &&
            h.shape[1] == 3 && h.count == 6 && h.offset == 128 && !h.fortran_order);
  CU_ASSERT_STRING_EQUAL(h.descr, "<i8");
  free(b.b);
  /* keys in any order, double quotes, no trailing comma, '=' is native (little-endian) */
  b = npy_raw("{\"shape\": (3,), 'fortran_order': False, 'descr': '=f4'}", (float[3]){0}, 12);
  CU_ASSERT_EQUAL_FATAL(npy_parse_header(b.b, b.n, &h, &e), 0);
  CU_ASSERT(h.kind == 'f' && h.itemsize == 4 && h.byteorder == '<' && h.ndim == 1 && h.count == 3);
  free(b.b);
  b = npy_f("|b1", "False", "()", 1); /* a scalar */
  CU_ASSERT_EQUAL_FATAL(npy_parse_header(b.b, b.n, &h, &e), 0);
  CU_ASSERT(h.kind == 'b' && h.ndim == 0 && h.count == 1);
  free(b.b);
  b = npy_f("|u1", "False", "(0, 28, 28)", 0); /* empty arrays parse; readers refuse them */
  CU_ASSERT_EQUAL_FATAL(npy_parse_header(b.b, b.n, &h, &e), 0);
  CU_ASSERT(h.count == 0 && h.ndim == 3);
  free(b.b);
  /* version 2.0: a 4-byte header length */
  const char *dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }\n";
  size_t dl = strlen(dict);
  uint8_t v2[128];
  memcpy(v2, "\x93NUMPY\x02\x00", 8);
  v2[8] = (uint8_t)dl, v2[9] = v2[10] = v2[11] = 0;
  memcpy(v2 + 12, dict, dl);
  v2[12 + dl] = 7, v2[13 + dl] = 9;
  CU_ASSERT_EQUAL_FATAL(npy_parse_header(v2, 14 + dl, &h, &e), 0);
  CU_ASSERT(h.offset == 12 + dl && h.count == 2 && v2[h.offset + 1] == 9);
}

static void test_npy_header_errors(void) {
  bytes b = npy_f("<i8", "False", "(2, 3)", 48);
  b.b[5] = 'X';
  expect_npy_err(b, "not a .npy array (no \\x93NUMPY magic)");
  b = npy_f("<i8", "False", "(2, 3)", 48);
  b.b[6] = 4;
  expect_npy_err(b, ".npy format version 4.0 is not supported (expected 1.0, 2.0 or 3.0)");
  b = npy_f("<i8", "False", "(2, 3)", 48);
  b.n = 30;
  expect_npy_err(b, ".npy truncated: the header needs 118 bytes, 20 are left");
  expect_npy_err(npy_raw("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), 'extra': 1}", (int64_t[2]){0}, 16),
                 ".npy header: unexpected key 'extra' (expected exactly 'descr', 'fortran_order', 'shape')");
  expect_npy_err(npy_raw("{'descr': '<i8', 'shape': (2,)}", (int64_t[2]){0}, 16),
                 ".npy header: no key 'fortran_order' (expected 'descr', 'fortran_order', 'shape')");
  expect_npy_err(npy_raw("{'descr': '<i8', 'shape': (2,), 'fortran_order': False, 'shape': (2,)}", (int64_t[2]){0}, 16),
                 ".npy header: key 'shape' appears twice");
  expect_npy_err(npy_f("<i8", "True", "(2, 3)", 48), ".npy array in Fortran order (expected C order)");
  expect_npy_err(npy_f("<i8", "0", "(2, 3)", 48), ".npy header: 'fortran_order' at byte 44 is not True or False");
  expect_npy_err(npy_f(">i8", "False", "(2, 3)", 48), ".npy header: dtype '>i8' is big-endian (expected '<')");
  expect_npy_err(npy_f("|O", "False", "(2, 3)", 48),
                 ".npy header: dtype '|O' is not supported (expected a little-endian integer, bool or float type "
                 "such as '|u1', '<i8', '<f4')");
  expect_npy_err(npy_f("<U8", "False", "(2,)", 64), ".npy header: dtype '<U8' is not supported*");
  expect_npy_err(npy_f("<M8[ns]", "False", "(2,)", 16), ".npy header: dtype '<M8[ns]' is not supported*");
  expect_npy_err(npy_raw("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }", (int32_t[2]){0}, 8),
                 ".npy header: 'descr' is not a type string (structured dtypes are not supported)");
  expect_npy_err(npy_f("<i8", "False", "(2, 3)", 40), ".npy data is 40 bytes, the shape and dtype '<i8' need 48");
  expect_npy_err(npy_f("<i8", "False", "(2, 3)", 56), ".npy data is 56 bytes, the shape and dtype '<i8' need 48");
  expect_npy_err(npy_f("<i8", "False", "(3)", 24), ".npy header: 'shape' (3) is not a tuple (expected (3,))");
  expect_npy_err(npy_f("<i8", "False", "(-1,)", 8), ".npy header: expected a non-negative integer in 'shape' at byte 61");
  expect_npy_err(npy_f("<i8", "False", "(01,)", 8), ".npy header: expected a non-negative integer in 'shape' at byte 61");
  expect_npy_err(npy_f("|u1", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 1)", 1), ".npy header: more than 8 dimensions");
  expect_npy_err(npy_f("|u1", "False", "(4294967296, 4294967296)", 1), ".npy shape overflows 64 bits");
  expect_npy_err(npy_f("<i8", "False", "(4611686018427387904,)", 1), ".npy shape overflows the address space");
  expect_npy_err(npy_f("|u1", "False", "(99999999999999999999,)", 1), ".npy header: shape dimension at byte 61 overflows");
  expect_npy_err(npy_raw("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), } x", "a", 1),
                 ".npy header: unexpected text after the dict at byte 68");
  expect_npy_err(npy_raw("{'descr': '|u1' 'fortran_order': False, 'shape': (1,)}", "a", 1),
                 ".npy header: expected ',' or '}' at byte 26");
}

/* ---- .npz errors -------------------------------------------------------------------------------------- */

static void expect_npz_err(const char *path, const char *split, const img_opts *o, const char *suffix) {
  img_set s;
  epee_err e = {{0}};
  char want[600];
  snprintf(want, sizeof want, "%s%s", path, suffix);
  expect_err(img_read_npz(path, split, o, &s, &e), &s, &e, want);
}

/* an archive with train_images = images and train_labels = labels */
static const char *npz2(const char *rel, bytes images, bytes labels) {
  entry es[] = {{"train_images.npy", images}, {"train_labels.npy", labels}};
  return write_npz(rel, es, 2, 0);
}

static bytes grey_images(void) { return npy("|u1", "(3, 2, 2)", GREY3, 12); }
static bytes good_labels(void) { return npy("|u1", "(3, 1)", (uint8_t[]){2, 0, 2}, 3); }

static void test_npz_errors(void) {
  /* the archive itself */
  const char *good = grey_npz("good.npz", 0);
  FILE *f = fopen(good, "rb");
  static uint8_t buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  expect_npz_err(write_file("truncated.npz", buf, n / 2), "train", &ANY, ": not a readable .npz (zip) archive: *");
  expect_npz_err(write_file("garbage.npz", "this is not a zip archive at all", 32), "train", &ANY,
                 ": not a readable .npz (zip) archive: Not a zip archive");
  expect_npz_err(path_of("absent.npz"), "train", &ANY, ": cannot open: No such file or directory");
  expect_npz_err(good, "dev", &ANY, ": split 'dev', expected train, val or test");
  expect_npz_err(good, "val", &ANY, ": no entry val_images.npy (entries: train_images.npy, train_labels.npy)");
  entry only[] = {{"train_images.npy", grey_images()}};
  expect_npz_err(write_npz("nolabels.npz", only, 1, 0), "train", &ANY,
                 ": no entry train_labels.npy (entries: train_images.npy)");
  /* a deflated entry whose compressed bytes are damaged */
  uint8_t big[4096];
  for (int k = 0; k < 4096; k++) big[k] = (uint8_t)(k * k % 251);
  entry one[] = {{"train_images.npy", npy("|u1", "(1, 64, 64)", big, 4096)}};
  const char *dp = write_npz("damaged.npz", one, 1, 1);
  f = fopen(dp, "rb");
  n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  buf[30 + 16 + 200] ^= 0x55; /* inside the deflate stream: after the local header and name */
  expect_npz_err(write_file("damaged.npz", buf, n), "train", &ANY, ":train_images.npy: cannot inflate the entry: *");

  /* the images entry */
  expect_npz_err(npz2("magic.npz", (bytes){(uint8_t *)strdup("hello, not numpy"), 16}, good_labels()), "train", &ANY,
                 ":train_images.npy: not a .npy array (no \\x93NUMPY magic)");
  expect_npz_err(npz2("f32.npz", npy("<f4", "(3, 2, 2)", (float[12]){0}, 48), good_labels()), "train", &ANY,
                 ":train_images.npy: dtype '<f4', expected uint8 images ('|u1')");
  expect_npz_err(npz2("ndim2.npz", npy("|u1", "(3, 4)", GREY3, 12), good_labels()), "train", &ANY,
                 ":train_images.npy: shape (3, 4), expected [N, H, W] (grey) or [N, H, W, 3] (RGB)");
  expect_npz_err(npz2("rgba.npz", npy("|u1", "(3, 1, 1, 4)", GREY3, 12), good_labels()), "train", &ANY,
                 ":train_images.npy: shape (3, 1, 1, 4), expected [N, H, W] (grey) or [N, H, W, 3] (RGB)");
  expect_npz_err(npz2("fortran.npz", npy_raw("{'descr': '|u1', 'fortran_order': True, 'shape': (3, 2, 2), }", GREY3, 12),
                      good_labels()), "train", &ANY, ":train_images.npy: .npy array in Fortran order (expected C order)");
  expect_npz_err(npz2("extra.npz", npy_raw("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), 'x': 0}", GREY3, 12),
                      good_labels()), "train", &ANY,
                 ":train_images.npy: .npy header: unexpected key 'x' (expected exactly 'descr', 'fortran_order', 'shape')");
  expect_npz_err(npz2("nokey.npz", npy_raw("{'fortran_order': False, 'shape': (3, 2, 2)}", GREY3, 12), good_labels()), "train",
                 &ANY, ":train_images.npy: .npy header: no key 'descr' (expected 'descr', 'fortran_order', 'shape')");
  expect_npz_err(npz2("short.npz", npy("|u1", "(3, 2, 2)", GREY3, 11), good_labels()), "train", &ANY,
                 ":train_images.npy: .npy data is 11 bytes, the shape and dtype '|u1' need 12");
  expect_npz_err(npz2("zero.npz", npy("|u1", "(0, 2, 2)", NULL, 0), npy("|u1", "(0, 1)", NULL, 0)), "train", &ANY,
                 ":train_images.npy: no images (shape (0, 2, 2))");
  expect_npz_err(npz2("nonsquare.npz", npy("|u1", "(2, 2, 3)", GREY3, 12), npy("|u1", "(2,)", "ab", 2)), "train", &ANY,
                 ":train_images.npy: image is 2x3 (height x width), not square; give a size (with resize) to scale it");

  /* the labels entry */
  expect_npz_err(npz2("be.npz", grey_images(), npy(">i8", "(3, 1)", (int64_t[3]){0}, 24)), "train", &ANY,
                 ":train_labels.npy: .npy header: dtype '>i8' is big-endian (expected '<')");
  expect_npz_err(npz2("flab.npz", grey_images(), npy("<f4", "(3, 1)", (float[3]){0}, 12)), "train", &ANY,
                 ":train_labels.npy: dtype '<f4', expected integer labels");
  expect_npz_err(npz2("multi.npz", grey_images(), npy("|u1", "(3, 2)", "abcdef", 6)), "train", &ANY,
                 ":train_labels.npy: shape (3, 2) has 2 labels per image: multi-label tasks are not supported "
                 "(expected [N] or [N, 1])");
  expect_npz_err(npz2("lab3d.npz", grey_images(), npy("|u1", "(3, 1, 1)", "abc", 3)), "train", &ANY,
                 ":train_labels.npy: shape (3, 1, 1), expected [N] or [N, 1]");
  expect_npz_err(npz2("count.npz", grey_images(), npy("|u1", "(2, 1)", "ab", 2)), "train", &ANY,
                 ":train_labels.npy: 2 labels for the 3 images of train_images.npy");
  expect_npz_err(npz2("neg.npz", grey_images(), npy("<i8", "(3,)", (int64_t[3]){1, -1, 0}, 24)), "train", &ANY,
                 ":train_labels.npy[1]: label -1, expected 0..65535");
  expect_npz_err(npz2("neg1.npz", grey_images(), npy("|i1", "(3,)", (int8_t[3]){0, 0, -3}, 3)), "train", &ANY,
                 ":train_labels.npy[2]: label -3, expected 0..65535");
  expect_npz_err(npz2("neg4.npz", grey_images(), npy("<i4", "(3, 1)", (int32_t[3]){-70000, 0, 0}, 12)), "train", &ANY,
                 ":train_labels.npy[0]: label -70000, expected 0..65535");
  expect_npz_err(npz2("big2.npz", grey_images(), npy("<u4", "(3, 1)", (uint32_t[3]){0, 65536, 0}, 12)), "train", &ANY,
                 ":train_labels.npy[1]: label 65536, expected 0..65535");
  expect_npz_err(npz2("huge.npz", grey_images(), npy("<u8", "(3,)", (uint64_t[3]){1, 2, ~0ull}, 24)), "train", &ANY,
                 ":train_labels.npy[2]: label 18446744073709551615, expected 0..65535");
}

/* channel and size rules on .npz */
static void test_npz_opts(void) {
  const char *grey = grey_npz("opts_grey.npz", 1);
  expect_npz_err(grey, "train", &(img_opts){3, 0, 0}, ":train_images.npy: grey (1 channel) image, expected RGB (3 channels)");
  expect_npz_err(grey, "train", &(img_opts){0, 4, 0},
                 ":train_images.npy: image is 2x2 (height x width), expected 4x4 (resizing is off)");
  uint8_t px[12];
  for (int k = 0; k < 12; k++) px[k] = (uint8_t)(20 * k);
  entry es[] = {{"train_images.npy", npy("|u1", "(1, 2, 2, 3)", px, 12)}, {"train_labels.npy", npy("|u1", "(1,)", "\0", 1)}};
  expect_npz_err(write_npz("opts_rgb.npz", es, 2, 0), "train", &(img_opts){1, 0, 0},
                 ":train_images.npy: RGB (3 channels) image, expected grey (1 channel)");
  img_set s;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(img_read_npz(grey, "train", &(img_opts){1, 4, 1}, &s, &e), 0);
  CU_ASSERT(s.n == 3 && s.H == 4 && s.W == 4 && s.C == 1);
  for (int i = 0; i < 3; i++) {
    uint8_t want[16];
    img_resize_bilinear(GREY3 + 4 * i, 2, 2, 1, want, 4, 4);
    CU_ASSERT_EQUAL(memcmp(s.pixels + 16 * i, want, 16), 0);
  }
  img_set_free(&s);
}

/* ---- PNG ------------------------------------------------------------------------------------------------ */

static bytes png(int color_type, int depth, int w, int h, const void *px, size_t n) {
  bytes b = png_encode(color_type, depth, w, h, px, n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b.b);
  return b;
}

static const char *write_png(const char *rel, bytes b) {
  const char *p = write_file(rel, b.b, b.n);
  free(b.b);
  return p;
}

/* decodes b and expects (h, w, c) and the bytes want */
static void expect_decoded(bytes b, int h, int w, int c, const uint8_t *want) {
  uint8_t *px;
  int H, W, C;
  epee_err e;
  int rc = img_decode_png(b.b, b.n, "x.png", &px, &H, &W, &C, &e);
  if (rc) fprintf(stderr, "\n  %s\n", e.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT(H == h && W == w && C == c);
  CU_ASSERT_EQUAL(memcmp(px, want, (size_t)h * w * c), 0);
  free(px);
  free(b.b);
}

static void test_png_decode(void) {
  const uint8_t g8[4] = {0, 50, 200, 255};
  expect_decoded(png(SPNG_COLOR_TYPE_GRAYSCALE, 8, 2, 2, g8, 4), 2, 2, 1, g8);
  /* 16-bit keeps the high byte */
  expect_decoded(png(SPNG_COLOR_TYPE_GRAYSCALE, 16, 2, 1, (uint16_t[]){0x12ff, 0xab80}, 4), 1, 2, 1, (uint8_t[]){0x12, 0xab});
  /* 2-bit grey 01 10 11 00 scales to 8 bits */
  expect_decoded(png(SPNG_COLOR_TYPE_GRAYSCALE, 2, 4, 1, (uint8_t[]){0x6c}, 1), 1, 4, 1, (uint8_t[]){85, 170, 255, 0});
  /* grey + alpha: alpha dropped, C = 1 */
  expect_decoded(png(SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, 2, 1, (uint8_t[]){5, 100, 6, 200}, 4), 1, 2, 1, (uint8_t[]){5, 6});
  expect_decoded(png(SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 16, 1, 1, (uint16_t[]){0x7f01, 0xffff}, 4), 1, 1, 1, (uint8_t[]){0x7f});
  const uint8_t rgb[6] = {1, 2, 3, 250, 251, 252};
  expect_decoded(png(SPNG_COLOR_TYPE_TRUECOLOR, 8, 1, 2, rgb, 6), 2, 1, 3, rgb);
  expect_decoded(png(SPNG_COLOR_TYPE_TRUECOLOR, 16, 1, 1, (uint16_t[]){0x1280, 0x34ff, 0x5601}, 6), 1, 1, 3,
                 (uint8_t[]){0x12, 0x34, 0x56});
  expect_decoded(png(SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, 2, 1, (uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8}, 8), 1, 2, 3,
                 (uint8_t[]){1, 2, 3, 5, 6, 7});
  /* palette, 1 bit: pixels 0 1 1 0 */
  expect_decoded(png(SPNG_COLOR_TYPE_INDEXED, 1, 4, 1, (uint8_t[]){0x60}, 1), 1, 4, 3,
                 (uint8_t[]){10, 20, 30, 200, 100, 50, 200, 100, 50, 10, 20, 30});
}

static uint32_t crc32_png(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

/* A PNG signature and a valid IHDR (w x h, colour type ct, 8 bits), nothing else: what a bomb starts with. */
static bytes ihdr_only(uint32_t w, uint32_t h, int ct) {
  bytes b = {malloc(33), 33};
  memcpy(b.b, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  uint8_t *d = b.b + 16;
  for (int k = 0; k < 4; k++) d[k] = (uint8_t)(w >> (24 - 8 * k)), d[4 + k] = (uint8_t)(h >> (24 - 8 * k));
  d[8] = 8, d[9] = (uint8_t)ct, d[10] = d[11] = d[12] = 0;
  uint32_t crc = crc32_png(b.b + 12, 17);
  for (int k = 0; k < 4; k++) b.b[29 + k] = (uint8_t)(crc >> (24 - 8 * k));
  return b;
}

static void expect_decode_err(bytes b, const char *want) {
  uint8_t *px = (uint8_t *)"not touched";
  int h = 1, w = 1, c = 1;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(img_decode_png(b.b, b.n, "x.png", &px, &h, &w, &c, &e), -1);
  CU_ASSERT(px == NULL && h == 0 && w == 0 && c == 0);
  size_t n = strlen(want);
  int ok = want[n - 1] == '*' ? !strncmp(e.msg, want, n - 1) : !strcmp(e.msg, want);
  if (!ok) fprintf(stderr, "\n  got  \"%s\"\n  want \"%s\"\n", e.msg, want);
  CU_ASSERT(ok);
  free(b.b);
}

static void test_png_decode_errors(void) {
  expect_decode_err((bytes){(uint8_t *)strdup("GIF89a, not a PNG"), 17}, "x.png: not a readable PNG: *");
  bytes b = png(SPNG_COLOR_TYPE_GRAYSCALE, 8, 2, 2, (uint8_t[]){1, 2, 3, 4}, 4);
  b.n -= 20; /* IEND and the end of IDAT gone */
  expect_decode_err(b, "x.png: corrupt PNG: *");
  b = png(SPNG_COLOR_TYPE_GRAYSCALE, 8, 2, 2, (uint8_t[]){1, 2, 3, 4}, 4);
  b.b[b.n - 16] ^= 1; /* a byte of IDAT: its CRC no longer matches */
  expect_decode_err(b, "x.png: corrupt PNG: *");
  expect_decode_err(ihdr_only(16385, 1, SPNG_COLOR_TYPE_GRAYSCALE), "x.png: PNG larger than 16384 x 16384 pixels");
  expect_decode_err(ihdr_only(1, 16385, SPNG_COLOR_TYPE_GRAYSCALE), "x.png: PNG larger than 16384 x 16384 pixels");
  expect_decode_err(ihdr_only(16384, 16384, SPNG_COLOR_TYPE_TRUECOLOR),
                    "x.png: 16384 x 16384 PNG decodes to 805306368 bytes, above the limit of 268435456");
  /* within the limits but no image data: refused without a 256 MB allocation failing anything */
  expect_decode_err(ihdr_only(16384, 16384, SPNG_COLOR_TYPE_GRAYSCALE), "x.png: corrupt PNG: *");
}

/* 2x2 grey image number k: pixels 4k+1 .. 4k+4 */
static bytes grey_png(int k) {
  uint8_t px[4] = {(uint8_t)(4 * k + 1), (uint8_t)(4 * k + 2), (uint8_t)(4 * k + 3), (uint8_t)(4 * k + 4)};
  return png(SPNG_COLOR_TYPE_GRAYSCALE, 8, 2, 2, px, 4);
}

static void expect_folder_err(const char *rel, char *const *known, int n_known, const img_opts *o, const char *suffix) {
  img_set s;
  epee_err e = {{0}};
  char want[700];
  snprintf(want, sizeof want, "%s/%s", dir, suffix);
  expect_err(img_read_png_folder(path_of(rel), known, n_known, o, &s, &e), &s, &e, want);
}

static void test_png_folder(void) {
  make_dir("fold");
  make_dir("fold/dog");
  make_dir("fold/cat");
  make_dir("fold/.cache"); /* hidden: skipped */
  write_file("fold/cat/.DS_Store", "x", 1);
  const char *cb = write_png("fold/cat/b.png", grey_png(1));
  const char *ca = write_png("fold/cat/a.png", grey_png(0));
  const char *dx = write_png("fold/dog/x.PNG", grey_png(2));
  img_set s;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(img_read_png_folder(path_of("fold"), NULL, 0, &ANY, &s, &e), 0);
  CU_ASSERT(s.n == 3 && s.H == 2 && s.W == 2 && s.C == 1 && s.n_labels == 2);
  CU_ASSERT_STRING_EQUAL(s.label_names[0], "cat");
  CU_ASSERT_STRING_EQUAL(s.label_names[1], "dog");
  CU_ASSERT_STRING_EQUAL(s.names[0], ca); /* classes in strcmp order, files by name */
  CU_ASSERT_STRING_EQUAL(s.names[1], cb);
  CU_ASSERT_STRING_EQUAL(s.names[2], dx);
  CU_ASSERT(s.labels[0] == 0 && s.labels[1] == 0 && s.labels[2] == 1);
  for (int k = 0; k < 12; k++) CU_ASSERT_EQUAL(s.pixels[k], k + 1);
  img_set_free(&s);
  /* known labels: the index in that list; label_names is the list */
  char *known[] = {"dog", "bird", "cat"};
  CU_ASSERT_EQUAL_FATAL(img_read_png_folder(path_of("fold"), known, 3, &ANY, &s, &e), 0);
  CU_ASSERT(s.labels[0] == 2 && s.labels[1] == 2 && s.labels[2] == 0 && s.n_labels == 3);
  CU_ASSERT_STRING_EQUAL(s.label_names[1], "bird");
  img_set_free(&s);
  expect_folder_err("fold", (char *[]){"dog"}, 1, &ANY, "fold/cat: class folder 'cat' is not one of the known labels (dog)");
  expect_folder_err("fold", (char *[]){"dog", "cat", "dog"}, 3, &ANY, "fold: the label list given for it names 'dog' twice");
  expect_folder_err("fold", NULL, 0, &(img_opts){3, 0, 0}, "fold/cat/a.png: grey (1 channel) image, expected RGB (3 channels)");
  /* an unlabelled list */
  CU_ASSERT_EQUAL_FATAL(img_read_png_files((char *[]){(char *)dx, (char *)ca}, 2, &ANY, &s, &e), 0);
  CU_ASSERT(s.n == 2 && s.labels[0] == -1 && s.labels[1] == -1 && s.n_labels == 0 && !s.label_names);
  CU_ASSERT_STRING_EQUAL(s.names[0], dx);
  CU_ASSERT(s.pixels[0] == 9 && s.pixels[4] == 1);
  img_set_free(&s);
  expect_err(img_read_png_files(NULL, 0, &ANY, &s, &e), &s, &e, "no image files given");
}

static void test_png_folder_sizes_and_channels(void) {
  make_dir("mixed");
  make_dir("mixed/a");
  write_png("mixed/a/1.png", grey_png(0));
  uint8_t big[16];
  for (int k = 0; k < 16; k++) big[k] = (uint8_t)(16 * k + 3);
  write_png("mixed/a/2.png", png(SPNG_COLOR_TYPE_GRAYSCALE, 8, 4, 4, big, 16));
  expect_folder_err("mixed", NULL, 0, &ANY,
                    "mixed/a/2.png: image is 4x4 (height x width), expected 2x2 like the first image (resizing is off)");
  img_set s;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(img_read_png_folder(path_of("mixed"), NULL, 0, &(img_opts){0, 0, 1}, &s, &e), 0);
  uint8_t want[4];
  img_resize_bilinear(big, 4, 4, 1, want, 2, 2);
  CU_ASSERT(s.n == 2 && s.H == 2 && s.pixels[0] == 1 && s.pixels[3] == 4);
  CU_ASSERT_EQUAL(memcmp(s.pixels + 4, want, 4), 0);
  img_set_free(&s);
  /* with a size asked for, both are resized to it */
  CU_ASSERT_EQUAL_FATAL(img_read_png_folder(path_of("mixed"), NULL, 0, &(img_opts){1, 4, 1}, &s, &e), 0);
  CU_ASSERT(s.n == 2 && s.H == 4 && s.W == 4);
  CU_ASSERT_EQUAL(memcmp(s.pixels + 16, big, 16), 0);
  img_set_free(&s);

  make_dir("rgb");
  make_dir("rgb/a");
  write_png("rgb/a/1.png", png(SPNG_COLOR_TYPE_TRUECOLOR, 8, 1, 1, (uint8_t[]){1, 2, 3}, 3));
  expect_folder_err("rgb", NULL, 0, &(img_opts){1, 0, 0}, "rgb/a/1.png: RGB (3 channels) image, expected grey (1 channel)");
  write_png("rgb/a/2.png", png(SPNG_COLOR_TYPE_GRAYSCALE, 8, 1, 1, (uint8_t[]){1}, 1));
  expect_folder_err("rgb", NULL, 0, &ANY, "rgb/a/2.png: grey (1 channel) image, expected RGB (3 channels) like the first image");
}

static void test_png_folder_errors(void) {
  make_dir("bad1");
  make_dir("bad1/a");
  write_png("bad1/a/1.png", grey_png(0));
  write_file("bad1/a/notes.txt", "hello", 5);
  expect_folder_err("bad1", NULL, 0, &ANY,
                    "bad1/a/notes.txt: not a .png file (a class folder holds only .png images; hidden files are skipped)");
  make_dir("bad2");
  make_dir("bad2/a");
  bytes b = grey_png(0);
  write_file("bad2/a/1.png", b.b, b.n / 2);
  free(b.b);
  expect_folder_err("bad2", NULL, 0, &ANY, "bad2/a/1.png: corrupt PNG: *");
  make_dir("bad3");
  make_dir("bad3/a");
  write_png("bad3/a/1.png", grey_png(0));
  write_file("bad3/readme.txt", "x", 1);
  char want[400];
  snprintf(want, sizeof want, "bad3/readme.txt: not a folder (expected only class folders holding .png images in %s/bad3)", dir);
  expect_folder_err("bad3", NULL, 0, &ANY, want);
  make_dir("bad4");
  make_dir("bad4/a");
  expect_folder_err("bad4", NULL, 0, &ANY, "bad4/a: no .png images in the class folder");
  make_dir("bad5");
  snprintf(want, sizeof want, "bad5: no class folders (expected %s/bad5/<class>/<image>.png)", dir);
  expect_folder_err("bad5", NULL, 0, &ANY, want);
  make_dir("bad6");
  make_dir("bad6/a");
  make_dir("bad6/a/sub");
  snprintf(want, sizeof want, "bad6/a/sub: a folder inside a class folder (expected only .png images in %s/bad6/a)", dir);
  expect_folder_err("bad6", NULL, 0, &ANY, want);
  expect_folder_err("absent", NULL, 0, &ANY, "absent: cannot open the folder: No such file or directory");
  img_set s;
  epee_err e;
  char *missing[] = {(char *)path_of("absent.png")};
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing[0]);
  expect_err(img_read_png_files(missing, 1, &ANY, &s, &e), &s, &e, want);
}

/* ---- resize ---------------------------------------------------------------------------------------------- */

static void test_resize(void) {
  /* 2x2 -> 4x4, half-pixel centres: source rows/cols at 0, 0.25, 0.75, 1 (clamped at both ends) */
  const uint8_t src[4] = {0, 100, 200, 40};
  const uint8_t want[16] = {0, 25, 75, 100, 50, 59, 76, 85, 150, 126, 79, 55, 200, 160, 80, 40};
  uint8_t out[16];
  img_resize_bilinear(src, 2, 2, 1, out, 4, 4);
  CU_ASSERT_EQUAL(memcmp(out, want, 16), 0);
  for (int k = 0; k < 16; k++)
    if (out[k] != want[k]) fprintf(stderr, "\n  resize [%d]: %d, want %d", k, out[k], want[k]);
  /* 4x4 -> 2x2: each output is the mean of a 2x2 block (source centre 0.5 and 2.5) */
  const uint8_t s4[16] = {10, 20, 30, 40, 50, 61, 70, 80, 90, 100, 110, 120, 130, 140, 150, 161};
  uint8_t o2[4];
  img_resize_bilinear(s4, 4, 4, 1, o2, 2, 2);
  CU_ASSERT(o2[0] == 35 && o2[1] == 55 && o2[2] == 115 && o2[3] == 135);
  /* interleaved channels are resized independently; equal sizes copy */
  uint8_t rgb[12], o3[48], same[12];
  for (int k = 0; k < 4; k++) rgb[3 * k] = src[k], rgb[3 * k + 1] = (uint8_t)(255 - src[k]), rgb[3 * k + 2] = 7;
  img_resize_bilinear(rgb, 2, 2, 3, o3, 4, 4);
  for (int k = 0; k < 16; k++) CU_ASSERT(o3[3 * k] == want[k] && o3[3 * k + 1] == 255 - want[k] && o3[3 * k + 2] == 7);
  img_resize_bilinear(rgb, 2, 2, 3, same, 2, 2);
  CU_ASSERT_EQUAL(memcmp(same, rgb, 12), 0);
}

/* ---- batch fill ------------------------------------------------------------------------------------------- */

static float norm1(int v, float mean, float std) { return ((float)v / 255.0f - mean) / std; }

static void test_fill_normalise(void) {
  uint8_t g[4] = {0, 51, 128, 255};
  img_set s = {.pixels = g, .n = 1, .H = 2, .W = 2, .C = 1};
  img_norm nm = {{0.5f}, {0.25f}};
  float out[4];
  img_fill_batch(&s, (int[]){0}, 1, &nm, NULL, 1, 0, out);
  CU_ASSERT(out[0] == -2.0f && out[3] == 2.0f); /* exact: (0 - .5) / .25, (1 - .5) / .25 */
  CU_ASSERT(out[1] == norm1(51, 0.5f, 0.25f) && out[2] == norm1(128, 0.5f, 0.25f));
  CU_ASSERT(fabsf(out[1] - (-1.2f)) < 1e-6f);
  /* RGB: planar [C, H, W] from interleaved [H, W, C], each channel its own mean/std */
  uint8_t rgb[12] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
  img_set t = {.pixels = rgb, .n = 2, .H = 1, .W = 2, .C = 3};
  img_norm n3 = {{0.1f, 0.2f, 0.3f}, {0.5f, 0.6f, 0.7f}};
  float o[12];
  img_fill_batch(&t, (int[]){1, 0}, 2, &n3, NULL, 1, 0, o); /* rows are idx order: image 1 then 0 */
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 3; c++)
      for (int x = 0; x < 2; x++)
        CU_ASSERT(o[(r * 3 + c) * 2 + x] == norm1(rgb[(1 - r) * 6 + x * 3 + c], n3.mean[c], n3.std[c]));
  /* an augmentation that does nothing gives the plain image */
  float p[12];
  img_fill_batch(&t, (int[]){1, 0}, 2, &n3, &(img_aug){0, 0}, 5, 9, p);
  CU_ASSERT_EQUAL(memcmp(o, p, sizeof o), 0);
}

enum { S = 6, PAD = 2, STEPS = 40 };
static uint8_t img6[S * S]; /* 1..36: every pixel distinct and none 0 */
static const img_norm N6 = {{0.5f}, {0.25f}};

/* The (dy, dx, flip) with out(y, x) = src(y + dy, X + dx) (X = x, or S-1-x flipped), padding -2, or 0 if none. */
static int find_transform(const float *out, int *dy, int *dx, int *flip) {
  for (*flip = 0; *flip < 2; ++*flip)
    for (*dy = -PAD; *dy <= PAD; ++*dy)
      for (*dx = -PAD; *dx <= PAD; ++*dx) {
        int ok = 1;
        for (int y = 0; y < S && ok; y++)
          for (int x = 0; x < S && ok; x++) {
            int sy = y + *dy, sx = (*flip ? S - 1 - x : x) + *dx;
            float v = sy < 0 || sy >= S || sx < 0 || sx >= S ? -2.0f : norm1(img6[sy * S + sx], 0.5f, 0.25f);
            ok = out[y * S + x] == v;
          }
        if (ok) return 1;
      }
  return 0;
}

static void test_fill_augment(void) {
  for (int k = 0; k < S * S; k++) img6[k] = (uint8_t)(k + 1);
  img_set s = {.pixels = img6, .n = 1, .H = S, .W = S, .C = 1};
  static float a[STEPS][3][S * S], b[3][S * S];
  int seen_flip[2] = {0, 0}, seen_off[2 * PAD + 1][2 * PAD + 1] = {{0}}, rows_differ = 0;
  for (int st = 0; st < STEPS; st++) {
    img_fill_batch(&s, (int[]){0, 0, 0}, 3, &N6, &(img_aug){PAD, 1}, 42, (uint64_t)st, a[st][0]);
    /* the same (seed, step, r) draws the same, whatever the batch around it */
    img_fill_batch(&s, (int[]){0, 0}, 2, &N6, &(img_aug){PAD, 1}, 42, (uint64_t)st, b[0]);
    CU_ASSERT_EQUAL(memcmp(a[st][0], b[0], sizeof b[0] * 2), 0);
    for (int r = 0; r < 3; r++) {
      int dy, dx, flip;
      CU_ASSERT_FATAL(find_transform(a[st][r], &dy, &dx, &flip)); /* a shift within PAD, maybe mirrored, zero padded */
      seen_flip[flip]++;
      seen_off[dy + PAD][dx + PAD]++;
    }
    rows_differ += memcmp(a[st][0], a[st][1], sizeof b[0]) != 0;
  }
  int offsets = 0, steps_differ = 0;
  for (int i = 0; i < 2 * PAD + 1; i++)
    for (int j = 0; j < 2 * PAD + 1; j++) offsets += seen_off[i][j] > 0;
  for (int st = 1; st < STEPS; st++) steps_differ += memcmp(a[st][0], a[0][0], sizeof b[0]) != 0;
  CU_ASSERT(seen_flip[0] > 0 && seen_flip[1] > 0);
  CU_ASSERT(seen_off[0][0] > 0 && seen_off[2 * PAD][2 * PAD] > 0); /* both extremes occur */
  CU_ASSERT(offsets >= 15);
  CU_ASSERT(steps_differ >= STEPS / 2 && rows_differ >= STEPS / 2);
  /* another seed draws differently */
  img_fill_batch(&s, (int[]){0}, 1, &N6, &(img_aug){PAD, 1}, 43, 0, b[0]);
  int differ = memcmp(b[0], a[0][0], sizeof b[0]) != 0;
  for (int st = 1; st < 4; st++) {
    img_fill_batch(&s, (int[]){0}, 1, &N6, &(img_aug){PAD, 1}, 43, (uint64_t)st, b[0]);
    differ += memcmp(b[0], a[st][0], sizeof b[0]) != 0;
  }
  CU_ASSERT(differ >= 2);
  /* flip only: each output is the image or its mirror */
  float plain[S * S], o[S * S];
  img_fill_batch(&s, (int[]){0}, 1, &N6, NULL, 0, 0, plain);
  int mirrors = 0;
  for (int st = 0; st < 16; st++) {
    img_fill_batch(&s, (int[]){0}, 1, &N6, &(img_aug){0, 1}, 7, (uint64_t)st, o);
    int same = !memcmp(o, plain, sizeof o), mirror = 1;
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) mirror &= o[y * S + x] == plain[y * S + S - 1 - x];
    CU_ASSERT(same != mirror);
    mirrors += mirror;
  }
  CU_ASSERT(mirrors > 0 && mirrors < 16);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("images", suite_init, suite_clean);
  CU_add_test(s, ".npz grey round trip, stored and deflated", test_npz_grey_roundtrip);
  CU_add_test(s, ".npz RGB [N, H, W, 3], int64 [N] labels", test_npz_rgb);
  CU_add_test(s, ".npz every integer label dtype", test_npz_label_dtypes);
  CU_add_test(s, ".npy header accepted forms", test_npy_header_ok);
  CU_add_test(s, ".npy header refusals", test_npy_header_errors);
  CU_add_test(s, ".npz refusals name file and entry", test_npz_errors);
  CU_add_test(s, ".npz channels, size and resize", test_npz_opts);
  CU_add_test(s, "PNG decoding of every colour type", test_png_decode);
  CU_add_test(s, "PNG decoding refusals and bomb limits", test_png_decode_errors);
  CU_add_test(s, "PNG folder and file list", test_png_folder);
  CU_add_test(s, "PNG folder sizes and channels", test_png_folder_sizes_and_channels);
  CU_add_test(s, "PNG folder refusals", test_png_folder_errors);
  CU_add_test(s, "bilinear resize", test_resize);
  CU_add_test(s, "batch fill normalisation", test_fill_normalise);
  CU_add_test(s, "batch fill crop, flip, determinism", test_fill_augment);
}
