/* Every backbone with exits against its PyTorch twin (tests/twin/<arch>_twin.py, HuggingFace semantics).
 * Each committed fixture holds a tiny config (the model_config JSON plus "arch"), a padded batch, every weight
 * (by HF state_dict key), and torch's float32 logits of every exit, the weighted loss sum_i w_i CE_i / sum_i w_i
 * and every parameter gradient. The C model is built through the registry from the fixture's config alone,
 * loaded by name, and must reproduce all of them; a second test checks that padded positions are truly masked.
 * An image fixture (ViT) holds inputs/pixels [B, C, H, W] instead of ids / type_ids / mask: every position is
 * real, so the batch gets an all-ones mask [B, N + 1] (N patches + [CLS]) and no padding test. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/ops.h"
#include "infer/model_file.h"

/* ctest runs from the repo root */
static const char *const fixtures[] = {"tests/fixtures/bert_tiny.h5", "tests/fixtures/albert_tiny.h5",
                                       "tests/fixtures/albert_groups.h5", "tests/fixtures/gpt2_tiny.h5",
                                       "tests/fixtures/gpt2_nonorm.h5", "tests/fixtures/vit_tiny.h5",
                                       "tests/fixtures/vit_norm.h5"};
#define N_FIXTURES (int)(sizeof fixtures / sizeof fixtures[0])
#define LOGITS_TOL 1e-5
#define LOSS_TOL 1e-5
#define GRAD_TOL 1e-5

typedef struct {
  const char *path;
  hid_t f;
  const model_arch *arch;
  model_config cfg;
  int B, T;
  int32_t *ids, *type_ids, *labels; /* [B, T], [B, T], [B]; ids, type_ids NULL for images */
  float *mask, *loss_w;             /* [B, T], [L] */
  float *pixels;                    /* [B, C, H, W] for images, else NULL */
} fixture;

/* "arch":"NAME" of the fixture's config, then the arch's fields through the model file's own reader */
static int parse_config(fixture *x, const char *json, epee_err *e) {
  char name[32] = "";
  const char *p = strstr(json, "\"arch\"");
  if (p) p = strchr(p + 6, '"');
  if (!p || sscanf(p + 1, "%31[^\"]", name) != 1 || !(x->arch = model_find_arch(name)))
    return epee_errf(e, "%s: attribute 'config': no known \"arch\" in %s", x->path, json);
  return model_config_from_json(x->arch, json, x->path, &x->cfg, e); /* dropouts 0 */
}

static void fixture_free(fixture *x) {
  if (x->f >= 0) H5Fclose(x->f);
  free(x->ids);
  free(x->type_ids);
  free(x->labels);
  free(x->mask);
  free(x->loss_w);
  free(x->pixels);
  memset(x, 0, sizeof *x);
  x->f = -1;
}

/* inputs/pixels [B, C, H, W] of the config's channels and image_size: T = N + 1, the mask all ones */
static int fixture_open_pixels(fixture *x, epee_err *e) {
  const model_config *k = &x->cfg;
  int nd, sh[4], L = k->layers;
  if (h5_shape(x->f, x->path, "inputs/pixels", &nd, sh, e)) return -1;
  if (nd != 4 || sh[1] != k->channels || sh[2] != k->image_size || sh[3] != k->image_size ||
      k->image_size % k->patch_size)
    return epee_errf(e, "%s: dataset 'inputs/pixels': expected [B, %d, %d, %d] (patch %d)", x->path, k->channels,
                     k->image_size, k->image_size, k->patch_size);
  int g = k->image_size / k->patch_size;
  x->B = sh[0];
  x->T = g * g + 1;
  int64_t bt = (int64_t)x->B * x->T;
  x->labels = epee_malloc(sizeof(int32_t) * (size_t)x->B);
  x->mask = epee_malloc(sizeof(float) * (size_t)bt);
  x->loss_w = epee_malloc(sizeof(float) * (size_t)L);
  x->pixels = epee_malloc(sizeof(float) * (size_t)x->B * sh[1] * sh[2] * sh[3]);
  for (int64_t i = 0; i < bt; i++) x->mask[i] = 1.0f;
  return h5_read_floats(x->f, x->path, "inputs/pixels", x->pixels, 4, sh, e) ||
                 h5_read_ints(x->f, x->path, "inputs/labels", x->labels, 1, &x->B, e) ||
                 h5_read_floats(x->f, x->path, "loss_weights", x->loss_w, 1, &L, e)
             ? -1
             : 0;
}

static int fixture_open(fixture *x, const char *path, epee_err *e) {
  memset(x, 0, sizeof *x);
  x->path = path;
  x->f = h5_open_read(path, e);
  if (x->f < 0) return -1;
  char *json = h5_read_attr_str(x->f, path, "config", e);
  int rc = !json || parse_config(x, json, e);
  free(json);
  if (rc) return -1;
  if (h5_exists(x->f, "inputs/pixels")) return fixture_open_pixels(x, e);
  int nd, sh[4];
  if (h5_shape(x->f, x->path, "inputs/ids", &nd, sh, e)) return -1;
  if (nd != 2) return epee_errf(e, "%s: dataset 'inputs/ids': expected [B, T]", x->path);
  x->B = sh[0];
  x->T = sh[1];
  int bt[2] = {x->B, x->T}, L = x->cfg.layers;
  x->ids = epee_malloc(sizeof(int32_t) * (size_t)x->B * x->T);
  x->type_ids = epee_malloc(sizeof(int32_t) * (size_t)x->B * x->T);
  x->labels = epee_malloc(sizeof(int32_t) * (size_t)x->B);
  x->mask = epee_malloc(sizeof(float) * (size_t)x->B * x->T);
  x->loss_w = epee_malloc(sizeof(float) * (size_t)L);
  return h5_read_ints(x->f, x->path, "inputs/ids", x->ids, 2, bt, e) ||
                 h5_read_ints(x->f, x->path, "inputs/type_ids", x->type_ids, 2, bt, e) ||
                 h5_read_ints(x->f, x->path, "inputs/labels", x->labels, 1, &x->B, e) ||
                 h5_read_floats(x->f, x->path, "inputs/mask", x->mask, 2, bt, e) ||
                 h5_read_floats(x->f, x->path, "loss_weights", x->loss_w, 1, &L, e)
             ? -1
             : 0;
}

/* The C model from the fixture's config, every parameter read from "weights/<HF name>" in its own shape,
 * and the fixture must hold no parameter the C model lacks. */
static int model_load(model *m, const fixture *x, epee_err *e) {
  if (model_create(m, x->arch, &x->cfg, PARAMS_TRAIN, 0, e)) return -1;
  char path[256];
  for (int i = 0; i < m->ps.n; i++) {
    tensor *t = m->ps.t[i];
    snprintf(path, sizeof path, "weights/%s", t->name);
    if (h5_read_floats(x->f, x->path, path, t->data, t->ndim, t->shape, e)) return -1;
  }
  H5G_info_t info;
  hid_t g = H5Gopen2(x->f, "weights", H5P_DEFAULT);
  int rc = g >= 0 && H5Gget_info(g, &info) >= 0 ? 0 : -1;
  if (g >= 0) H5Gclose(g);
  if (rc || info.nlinks != (hsize_t)m->ps.n)
    return epee_errf(e, "%s: group 'weights' has %llu tensors, the C model %d", x->path,
                     rc ? 0ULL : (unsigned long long)info.nlinks, m->ps.n);
  return 0;
}

static int fixture_load(fixture *x, const char *path, model *m) {
  epee_err e = {0};
  memset(m, 0, sizeof *m); /* model_free-able even if loading stops before model_create */
  if (fixture_open(x, path, &e) || model_load(m, x, &e)) {
    printf("\n  %s\n", e.msg);
    return -1;
  }
  return 0;
}

/* fixture_load, or a CUnit failure (nothing left to free) */
static int fixture_load_or_fail(fixture *x, const char *path, model *m) {
  if (!fixture_load(x, path, m)) return 0;
  CU_FAIL("fixture unreadable or does not match the C model (regenerate: tests/twin/<arch>_twin.py)");
  fixture_free(x);
  model_free(m);
  return -1;
}

/* sum_i w_i CE(logits_i, y) / sum_i w_i, recorded on the tape */
static tensor *weighted_loss(epee_ctx *c, tensor **logits, const fixture *x) {
  int L = x->cfg.layers;
  tensor *ce[L];
  float w[L], sum = 0.0f;
  for (int l = 0; l < L; l++) sum += x->loss_w[l];
  for (int l = 0; l < L; l++) {
    ce[l] = op_cross_entropy(c, logits[l], x->labels, NULL);
    w[l] = x->loss_w[l] / sum;
  }
  return op_weighted_sum(c, L, ce, w);
}

/* worst |a - b| / max(1, |b|): relative for large values, absolute for small ones */
static double max_err(const float *a, const float *b, int64_t n) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
    if (isnan(d)) return INFINITY;
    if (d > worst) worst = d;
  }
  return worst;
}

static void matches_torch(const char *path) {
  fixture x;
  model m;
  if (fixture_load_or_fail(&x, path, &m)) return;
  int L = x.cfg.layers, B = x.B, C = x.cfg.num_labels;
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.training = 0; /* dropout off, as in the twin; grad mode stays on */
  model_batch mb = {.B = B, .T = x.T, .ids = x.ids, .type_ids = x.type_ids, .mask = x.mask, .pixels = x.pixels};
  tensor *logits[L];
  model_forward_all(&c, &m, &mb, logits);
  tensor *loss = weighted_loss(&c, logits, &x);
  params_zero_grad(&m.ps);
  tape_backward(&c, loss, NULL);

  epee_err e = {0};
  float *ref = epee_malloc(sizeof(float) * (size_t)(L * B * C + 1));
  int lbc[3] = {L, B, C}, one = 1;
  CU_ASSERT_FATAL(h5_read_floats(x.f, path, "logits", ref, 3, lbc, &e) == 0);
  double e_logits = 0.0;
  for (int l = 0; l < L; l++) e_logits = fmax(e_logits, max_err(logits[l]->data, ref + l * B * C, B * C));
  CU_ASSERT_FATAL(h5_read_floats(x.f, path, "loss", ref, 1, &one, &e) == 0);
  double e_loss = max_err(loss->data, ref, 1);
  free(ref);

  double e_grad = 0.0;
  const char *worst = m.ps.t[0]->name;
  char name[256];
  for (int i = 0; i < m.ps.n; i++) {
    tensor *t = m.ps.t[i];
    float *g = epee_malloc(sizeof(float) * (size_t)t->n);
    snprintf(name, sizeof name, "grads/%s", t->name);
    int rc = h5_read_floats(x.f, x.path, name, g, t->ndim, t->shape, &e);
    CU_ASSERT(rc == 0);
    double err = rc ? INFINITY : max_err(t->grad, g, t->n);
    if (rc) printf("\n  %s", e.msg);
    if (err > e_grad) {
      e_grad = err;
      worst = t->name;
    }
    free(g);
  }
  printf("\n  %s (%s): worst error |c - torch| / max(1, |torch|): logits %.2e (tol %.0e), loss %.2e (tol %.0e), "
         "grads %.2e at %s (tol %.0e)\n",
         path, x.arch->name, e_logits, LOGITS_TOL, e_loss, LOSS_TOL, e_grad, worst, GRAD_TOL);
  CU_ASSERT(e_logits <= LOGITS_TOL);
  CU_ASSERT(e_loss <= LOSS_TOL);
  CU_ASSERT(e_grad <= GRAD_TOL);
  ctx_free(&c);
  model_free(&m);
  fixture_free(&x);
}

/* every exit's logits for ids, flattened [L * B * C] into out */
static void forward_logits(model *m, const fixture *x, const int32_t *ids, float *out) {
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.grad_mode = 0;
  c.training = 0;
  model_batch mb = {.B = x->B, .T = x->T, .ids = ids, .type_ids = x->type_ids, .mask = x->mask};
  tensor *logits[x->cfg.layers];
  model_forward_all(&c, m, &mb, logits);
  int n = x->B * x->cfg.num_labels;
  for (int l = 0; l < x->cfg.layers; l++) memcpy(out + l * n, logits[l]->data, sizeof(float) * (size_t)n);
  ctx_free(&c);
}

/* every exit's logits for the first B images of pixels (all positions real), flattened [L * B * C] into out */
static void forward_pixels(model *m, const fixture *x, int B, const float *pixels, float *out) {
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.grad_mode = 0;
  c.training = 0;
  model_batch mb = {.B = B, .T = x->T, .mask = x->mask, .pixels = pixels};
  tensor *logits[x->cfg.layers];
  model_forward_all(&c, m, &mb, logits);
  int n = B * x->cfg.num_labels;
  for (int l = 0; l < x->cfg.layers; l++) memcpy(out + l * n, logits[l]->data, sizeof(float) * (size_t)n);
  ctx_free(&c);
}

/* The images' stand-in for the padding test (they have none; the engine still compacts rows): each image run
 * alone gives the logits it has in the batch, and one changed pixel (the control) changes them. */
static void images_are_independent(model *m, const fixture *x) {
  int L = x->cfg.layers, B = x->B, C = x->cfg.num_labels, s = x->cfg.image_size;
  int64_t img = (int64_t)x->cfg.channels * s * s;
  float *base = epee_malloc(sizeof(float) * (size_t)(L * B * C)), *one = epee_malloc(sizeof(float) * (size_t)(L * C));
  float *px = epee_malloc(sizeof(float) * (size_t)(B * img));
  forward_pixels(m, x, B, x->pixels, base);
  double e_alone = 0.0;
  for (int b = 0; b < B; b++) {
    forward_pixels(m, x, 1, x->pixels + b * img, one);
    for (int l = 0; l < L; l++) e_alone = fmax(e_alone, max_err(one + l * C, base + (l * B + b) * C, C));
  }
  memcpy(px, x->pixels, sizeof(float) * (size_t)(B * img));
  px[img - 1] += 1.0f; /* the last pixel of image 0: in its last patch */
  float *other = epee_malloc(sizeof(float) * (size_t)(L * B * C));
  forward_pixels(m, x, B, px, other);
  double e_pixel = max_err(other, base, L * B * C);
  printf("\n  logits change: each image alone %.2e (must be <= 1e-5), one pixel changed %.2e (must be > 1e-4)\n",
         e_alone, e_pixel);
  CU_ASSERT(e_alone <= 1e-5);
  CU_ASSERT(e_pixel > 1e-4);
  free(base);
  free(one);
  free(px);
  free(other);
}

/* Padded tokens must not reach any real position: new ids at padded positions leave every exit's logits
 * unchanged, while a new id at one real position (the control) changes them. Images have no padding: for
 * them, images_are_independent. */
static void padding_is_masked(const char *path) {
  fixture x;
  model m;
  if (fixture_load_or_fail(&x, path, &m)) return;
  if (x.pixels) {
    images_are_independent(&m, &x);
    model_free(&m);
    fixture_free(&x);
    return;
  }
  int BT = x.B * x.T, n = x.cfg.layers * x.B * x.cfg.num_labels, V = x.cfg.vocab, pads = 0, real = -1;
  float *base = epee_malloc(sizeof(float) * (size_t)n), *other = epee_malloc(sizeof(float) * (size_t)n);
  int32_t *ids = epee_malloc(sizeof(int32_t) * (size_t)BT);
  forward_logits(&m, &x, x.ids, base);

  memcpy(ids, x.ids, sizeof(int32_t) * (size_t)BT);
  for (int i = 0; i < BT; i++)
    if (x.mask[i] == 0.0f) {
      ids[i] = (ids[i] + 1 + i % (V - 1)) % V; /* always a different id */
      pads++;
    } else if (i % x.T != 0 && i / x.T == 0) {
      real = i; /* a real position of row 0 other than [CLS] (for GPT-2: seen by its last token), the control */
    }
  CU_ASSERT_FATAL(pads > 0 && real >= 0); /* the fixture must contain padding */
  forward_logits(&m, &x, ids, other);
  double e_pad = max_err(other, base, n);

  memcpy(ids, x.ids, sizeof(int32_t) * (size_t)BT);
  ids[real] = (ids[real] + 1) % V;
  forward_logits(&m, &x, ids, other);
  double e_real = max_err(other, base, n);
  printf("\n  logits change: %d padded ids changed %.2e (must be <= 1e-6), one real id changed %.2e (must be > 1e-4)\n",
         pads, e_pad, e_real);
  CU_ASSERT(e_pad <= 1e-6);
  CU_ASSERT(e_real > 1e-4);
  free(base);
  free(other);
  free(ids);
  model_free(&m);
  fixture_free(&x);
}

static void test_matches_torch(void) {
  for (int i = 0; i < N_FIXTURES; i++) matches_torch(fixtures[i]);
}

static void test_padding_is_masked(void) {
  for (int i = 0; i < N_FIXTURES; i++) padding_is_masked(fixtures[i]);
}

/* the names the config accepts are exactly the registry's rows */
static void test_registry(void) {
  for (int i = 0; model_arch_names[i]; i++) {
    const model_arch *a = model_find_arch(model_arch_names[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a->name, model_arch_names[i]);
    if (a->input == MODEL_INPUT_TEXT) {
      CU_ASSERT(a->tokenizers && a->tokenizers[0]); /* a text arch has a default tokenizer */
    } else {
      CU_ASSERT_PTR_NULL(a->tokenizers); /* an image arch takes none */
    }
  }
  const model_arch *vit = model_find_arch("vit");
  CU_ASSERT(vit && vit->input == MODEL_INPUT_IMAGE);
  CU_ASSERT_PTR_NULL(model_find_arch("t5"));
  CU_ASSERT_PTR_NULL(model_find_arch(NULL));
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("twins", NULL, NULL);
  CU_add_test(s, "C model = PyTorch twin for every backbone: logits of every exit, weighted loss, every gradient",
              test_matches_torch);
  CU_add_test(s, "padded positions are masked: their ids change no logits (images: each alone = in the batch)",
              test_padding_is_masked);
  CU_add_test(s, "the registry's names and rows agree", test_registry);
}
