/* Image models through the public API (epee_classify_images) and epee-infer, end to end on a tiny ViT file
 * written here:
 *  - the API's answers == the model's all-exit logits on pixels normalised here by the formula, run through the
 *    policy simulation (so the normalisation, the batching and the early exit are each checked);
 *  - the CLI on a .npz split, a class folder and PNG files: one line per image with its file name, in order,
 *    equal to the API's;
 *  - text given to the image model, images to a text model, wrong channels or size, a broken PNG: one line and
 *    a non-zero exit. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infer/engine.h"
#include "infer/epee.h"
#include "infer/model_file.h"
#include "tests/image_write.h"

enum { S = 8, L = 3, C = 2, NTEST = 12 };
static const float MEAN = 0.4f, STD = 0.25f;
static char dir[64], vit_path[128], npz_path[128], cli[4200];
static epee_model *em;

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/epee-api-img-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  snprintf(vit_path, sizeof vit_path, "%s/vit.h5", dir);
  snprintf(npz_path, sizeof npz_path, "%s/halves.npz", dir);
  const char *b = getenv("EPEE_BUILD_DIR");
  snprintf(cli, sizeof cli, "%s/infer/epee-infer", b ? b : "build");
  model_config cfg = {.hidden = 16, .layers = L, .heads = 2, .intermediate = 32, .num_labels = C, .image_size = S,
                      .patch_size = 4, .channels = 1, .layer_norm_eps = 1e-12f, .init_std = 0.2f};
  model m;
  epee_err e;
  if (model_create(&m, model_find_arch("vit"), &cfg, PARAMS_TRAIN, 0, &e)) return 1;
  m.arch->init(&m, 3);
  for (int i = 0; i < m.ps.n; i++) /* confident exits, so that early exits happen */
    if (!strncmp(m.ps.t[i]->name, "classifiers.", 12))
      for (int64_t k = 0; k < m.ps.t[i]->n; k++) m.ps.t[i]->data[k] *= 8.0f;
  char *labels[C] = {"0", "1"};
  model_meta meta = {.labels = labels, .n_labels = C, .norm = {{MEAN}, {STD}}, .policy = {EPEE_POLICY_ENTROPY, 0.1f, 0}};
  int rc = model_file_write(vit_path, &m, &meta, &e);
  model_free(&m);
  if (rc || write_halves_npz(npz_path, S, (int[]){4, 4, NTEST}, 9)) return 1;
  char err[256];
  em = epee_model_load(vit_path, err, sizeof err);
  return em == NULL || access(cli, X_OK) != 0;
}

static int teardown(void) {
  epee_model_free(em);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}

/* The test split's images as the npz holds them (write_halves_npz: split s uses seed + s). */
static void test_images(uint8_t *px, int *gold) {
  for (int i = 0; i < NTEST; i++) halves_image(S, i, 9 + 2, px + (size_t)i * S * S, &gold[i]);
}

/* reference: (x / 255 - mean) / std by the formula, all exits through the engine, the policy simulated */
static void reference(const uint8_t *px, int n, const epee_policy *p, int *lab, int *lay) {
  model m;
  model_meta meta;
  epee_err e;
  CU_ASSERT_FATAL(model_file_read(vit_path, &m, &meta, &e) == 0);
  engine g;
  int T = model_max_tokens(&m);
  CU_ASSERT_FATAL(engine_init(&g, &m, 1, T, &e) == 0);
  float pix[S * S], mask[8], logits[L * C];
  for (int t = 0; t < T; t++) mask[t] = 1;
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < S * S; k++) pix[k] = ((float)px[i * S * S + k] / 255.0f - MEAN) / STD;
    model_batch mb = {.B = 1, .T = T, .mask = mask, .pixels = pix};
    engine_all_exits(&g, &mb, logits);
    lay[i] = epee_policy_run(p, logits, L, C, &lab[i]) + 1;
  }
  engine_free(&g);
  model_free(&m);
  model_meta_free(&meta);
}

static void test_api_equals_reference(void) {
  CU_ASSERT_EQUAL(epee_model_image_size(em), S);
  CU_ASSERT_EQUAL(epee_model_channels(em), 1);
  CU_ASSERT_EQUAL(epee_model_max_length(em), 5); /* 2 x 2 patches + [CLS] */
  uint8_t px[NTEST * S * S];
  int gold[NTEST], want_l[NTEST], want_y[NTEST], lab[NTEST], lay[NTEST];
  test_images(px, gold);
  epee_policy p = {EPEE_POLICY_ENTROPY, 0.1f, 0}; /* the file's */
  reference(px, NTEST, &p, want_y, want_l);
  int early = 0;
  for (int i = 0; i < NTEST; i++) early += want_l[i] < L;
  printf("\n    reference: %d of %d images leave early", early, NTEST);
  CU_ASSERT(early > 0 && early < NTEST); /* both paths of the engine are exercised */
  for (int mb = 1; mb <= 5; mb += 2) { /* chunks of 1, 3 and 5 rows */
    char err[256];
    epee_session *s = epee_session_new(em, mb, err, sizeof err);
    CU_ASSERT_FATAL(s != NULL);
    float probs[NTEST * C], ms[NTEST];
    CU_ASSERT_FATAL(epee_classify_images(s, NTEST, px, NULL, lab, lay, probs, ms) == 0);
    for (int i = 0; i < NTEST; i++) {
      CU_ASSERT(lab[i] == want_y[i] && lay[i] == want_l[i]);
      CU_ASSERT_DOUBLE_EQUAL(probs[i * C] + probs[i * C + 1], 1.0, 1e-5);
      CU_ASSERT(ms[i] >= 0);
    }
    /* text on an image model: refused, nothing written */
    const char *texts[1] = {"the cell"};
    int keep = -7;
    CU_ASSERT_EQUAL(epee_classify_texts(s, 1, texts, NULL, NULL, &keep, NULL, NULL, NULL), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(epee_session_error(s), "reads images"));
    CU_ASSERT_EQUAL(keep, -7);
    CU_ASSERT_EQUAL(epee_classify_images(s, 1, NULL, NULL, &keep, NULL, NULL, NULL), -1);
    epee_session_free(s);
  }
}

/* ---- the CLI ------------------------------------------------------------------------------------------- */

static int run(const char *args, char *out, size_t on, char *err, size_t en) {
  char cmd[8192], op[160], ep[160];
  snprintf(op, sizeof op, "%s/out.txt", dir);
  snprintf(ep, sizeof ep, "%s/err.txt", dir);
  snprintf(cmd, sizeof cmd, "%s %s > %s 2> %s < /dev/null", cli, args, op, ep);
  int st = system(cmd);
  FILE *f = fopen(op, "r");
  out[f ? fread(out, 1, on - 1, f) : 0] = '\0';
  if (f) fclose(f);
  f = fopen(ep, "r");
  err[f ? fread(err, 1, en - 1, f) : 0] = '\0';
  if (f) fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* line i of the predictions: its file name, label and exit layer */
static int prediction(const char *jsonl, int i, char *file, int *label, int *layer) {
  for (int k = 0; k < i && jsonl; k++) jsonl = strchr(jsonl, '\n'), jsonl = jsonl ? jsonl + 1 : NULL;
  double conf;
  return jsonl && sscanf(jsonl, "{\"file\":\"%255[^\"]\",\"label\":\"%d\",\"confidence\":%lf,\"exit_layer\":%d", file,
                         label, &conf, layer) == 4 ? 0 : -1;
}

static void write_png(const char *path, int color_type, int w, const uint8_t *px, size_t n) {
  bytes b = png_encode(color_type, 8, w, w, px, n);
  CU_ASSERT_FATAL(b.b != NULL);
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  fwrite(b.b, 1, b.n, f);
  fclose(f);
  free(b.b);
}

static void test_cli(void) {
  static char out[1 << 16], err[1 << 12];
  char args[1024], file[256], want[300];
  uint8_t px[NTEST * S * S];
  int gold[NTEST], lab[NTEST], lay[NTEST], y, l;
  test_images(px, gold);
  epee_session *s = epee_session_new(em, 4, NULL, 0);
  CU_ASSERT_FATAL(epee_classify_images(s, NTEST, px, NULL, lab, lay, NULL, NULL) == 0);
  epee_session_free(s);
  /* a .npz split: every image, in order, named PATH:test[i]; gold labels give accuracy */
  snprintf(args, sizeof args, "%s --input %s --split test --batch 5", vit_path, npz_path);
  CU_ASSERT_EQUAL_FATAL(run(args, out, sizeof out, err, sizeof err), 0);
  for (int i = 0; i < NTEST; i++) {
    CU_ASSERT_FATAL(prediction(out, i, file, &y, &l) == 0);
    snprintf(want, sizeof want, "%s:test[%d]", npz_path, i);
    CU_ASSERT_STRING_EQUAL(file, want);
    CU_ASSERT(y == lab[i] && l == lay[i]);
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "accuracy"));
  /* the same images as a class folder (class = the gold label) and as PNG files */
  char cls[2][200], p0[300], p1[300];
  for (int c = 0; c < 2; c++) {
    snprintf(cls[c], sizeof cls[c], "%s/folder/%d", dir, c);
    snprintf(args, sizeof args, "mkdir -p %s", cls[c]);
    CU_ASSERT_FATAL(system(args) == 0);
  }
  for (int i = 0; i < 3; i++) {
    snprintf(p0, sizeof p0, "%s/img%02d.png", cls[gold[i]], i);
    write_png(p0, SPNG_COLOR_TYPE_GRAYSCALE, S, px + i * S * S, S * S);
  }
  snprintf(args, sizeof args, "%s --input %s/folder", vit_path, dir);
  CU_ASSERT_EQUAL(run(args, out, sizeof out, err, sizeof err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "3 images"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "accuracy"));
  snprintf(p0, sizeof p0, "%s/img00.png", cls[gold[0]]);
  snprintf(p1, sizeof p1, "%s/img01.png", cls[gold[1]]);
  snprintf(args, sizeof args, "%s --input %s --input %s", vit_path, p1, p0);
  CU_ASSERT_EQUAL_FATAL(run(args, out, sizeof out, err, sizeof err), 0);
  CU_ASSERT(prediction(out, 0, file, &y, &l) == 0 && !strcmp(file, p1) && y == lab[1] && l == lay[1]);
  CU_ASSERT(prediction(out, 1, file, &y, &l) == 0 && !strcmp(file, p0) && y == lab[0] && l == lay[0]);

  /* bad input: one line each, exit status 1 */
  uint8_t rgb[S * S * 3] = {0}, big[16 * 16] = {0};
  char rgb_png[200], big_png[200], bad_png[200], tsv[200];
  snprintf(rgb_png, sizeof rgb_png, "%s/rgb.png", dir);
  write_png(rgb_png, SPNG_COLOR_TYPE_TRUECOLOR, S, rgb, sizeof rgb);
  snprintf(big_png, sizeof big_png, "%s/big.png", dir);
  write_png(big_png, SPNG_COLOR_TYPE_GRAYSCALE, 16, big, sizeof big);
  snprintf(bad_png, sizeof bad_png, "%s/bad.png", dir);
  snprintf(args, sizeof args, "head -c 40 %s > %s", p0, bad_png);
  CU_ASSERT_FATAL(system(args) == 0);
  snprintf(tsv, sizeof tsv, "%s/a.tsv", dir);
  FILE *f = fopen(tsv, "w");
  fputs("text\tlabel\nthe cell\t0\n", f);
  fclose(f);
  const struct {
    const char *input, *needle;
  } bad[] = {
      {rgb_png, "rgb.png"}, {big_png, "big.png"}, {bad_png, "bad.png"}, {tsv, "is an image model"},
      {"--tokenize --input x.npz", "is an image model"}, {npz_path, "train, val or test"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (i == 4)
      snprintf(args, sizeof args, "%s %s", vit_path, bad[i].input);
    else if (i == 5)
      snprintf(args, sizeof args, "%s --input %s --split dev", vit_path, bad[i].input);
    else
      snprintf(args, sizeof args, "%s --input %s", vit_path, bad[i].input);
    int st = run(args, out, sizeof out, err, sizeof err);
    printf("\n    -> %d: %s", st, err);
    CU_ASSERT(st == 1 || (i == 5 && st == 2));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].needle));
    CU_ASSERT_PTR_NOT_NULL(strchr(err, '\n') && strchr(err, '\n') == strrchr(err, '\n'));
  }
  printf("\n");
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("image models through the API and the CLI", setup, teardown);
  CU_add_test(s, "epee_classify_images = formula normalisation + engine + policy, every chunk size",
              test_api_equals_reference);
  CU_add_test(s, "epee-infer on .npz, class folder and PNG files; bad images refused in one line", test_cli);
}
