/* BERT with exits against its PyTorch twin (tests/twin/bert_twin.py, HuggingFace BertModel semantics).
 * The committed fixture holds a tiny config, a padded batch, every weight (by HF state_dict key), and
 * torch's float32 logits of every exit, the weighted loss sum_i w_i CE_i / sum_i w_i and every parameter
 * gradient. The C model is built from the fixture's config alone, loaded by name, and must reproduce
 * all of them; a second test checks that padded positions are truly masked. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5io.h"
#include "core/ops.h"
#include "models/bert.h"

#define FIXTURE "tests/fixtures/bert_tiny.h5" /* ctest runs from the repo root */
#define LOGITS_TOL 1e-5
#define LOSS_TOL 1e-5
#define GRAD_TOL 1e-4

typedef struct {
  hid_t f;
  bert_config cfg;
  int B, T;
  int32_t *ids, *type_ids, *labels; /* [B, T], [B, T], [B] */
  float *mask, *loss_w;             /* [B, T], [L] */
} fixture;

/* the number after "key": in a flat JSON object */
static int json_num(const char *json, const char *key, double *out, epee_err *e) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(json, pat);
  if (p) p = strchr(p + strlen(pat), ':');
  if (!p || sscanf(p + 1, "%lf", out) != 1)
    return epee_errf(e, "%s: attribute 'config': no number for key '%s' in %s", FIXTURE, key, json);
  return 0;
}

static int parse_config(const char *json, bert_config *k, epee_err *e) {
  const char *keys[] = {"vocab", "hidden", "layers", "heads", "intermediate", "max_position", "type_vocab",
                        "num_labels", "layer_norm_eps"};
  double v[9];
  for (int i = 0; i < 9; i++)
    if (json_num(json, keys[i], &v[i], e)) return -1;
  *k = (bert_config){.vocab = (int)v[0], .hidden = (int)v[1], .layers = (int)v[2], .heads = (int)v[3],
                     .intermediate = (int)v[4], .max_position = (int)v[5], .type_vocab = (int)v[6],
                     .num_labels = (int)v[7], .layer_norm_eps = (float)v[8]}; /* all dropouts 0 */
  return 0;
}

static void fixture_free(fixture *x) {
  if (x->f >= 0) H5Fclose(x->f);
  free(x->ids);
  free(x->type_ids);
  free(x->labels);
  free(x->mask);
  free(x->loss_w);
  memset(x, 0, sizeof *x);
  x->f = -1;
}

static int fixture_open(fixture *x, epee_err *e) {
  memset(x, 0, sizeof *x);
  x->f = h5_open_read(FIXTURE, e);
  if (x->f < 0) return -1;
  char *json = h5_read_attr_str(x->f, FIXTURE, "config", e);
  int rc = !json || parse_config(json, &x->cfg, e);
  free(json);
  int nd, sh[4];
  if (rc || h5_shape(x->f, FIXTURE, "inputs/ids", &nd, sh, e)) return -1;
  if (nd != 2) return epee_errf(e, "%s: dataset 'inputs/ids': expected [B, T]", FIXTURE);
  x->B = sh[0];
  x->T = sh[1];
  int bt[2] = {x->B, x->T}, L = x->cfg.layers;
  x->ids = epee_malloc(sizeof(int32_t) * (size_t)x->B * x->T);
  x->type_ids = epee_malloc(sizeof(int32_t) * (size_t)x->B * x->T);
  x->labels = epee_malloc(sizeof(int32_t) * (size_t)x->B);
  x->mask = epee_malloc(sizeof(float) * (size_t)x->B * x->T);
  x->loss_w = epee_malloc(sizeof(float) * (size_t)L);
  return h5_read_ints(x->f, FIXTURE, "inputs/ids", x->ids, 2, bt, e) ||
                 h5_read_ints(x->f, FIXTURE, "inputs/type_ids", x->type_ids, 2, bt, e) ||
                 h5_read_ints(x->f, FIXTURE, "inputs/labels", x->labels, 1, &x->B, e) ||
                 h5_read_floats(x->f, FIXTURE, "inputs/mask", x->mask, 2, bt, e) ||
                 h5_read_floats(x->f, FIXTURE, "loss_weights", x->loss_w, 1, &L, e)
             ? -1
             : 0;
}

/* The C model from the fixture's config, every parameter read from "weights/<HF name>" in its own shape,
 * and the fixture must hold no parameter the C model lacks. */
static int model_load(model *m, const fixture *x, epee_err *e) {
  if (bert_create(m, &x->cfg, PARAMS_TRAIN, e)) return -1;
  char path[256];
  for (int i = 0; i < m->ps.n; i++) {
    tensor *t = m->ps.t[i];
    snprintf(path, sizeof path, "weights/%s", t->name);
    if (h5_read_floats(x->f, FIXTURE, path, t->data, t->ndim, t->shape, e)) return -1;
  }
  H5G_info_t info;
  hid_t g = H5Gopen2(x->f, "weights", H5P_DEFAULT);
  int rc = g >= 0 && H5Gget_info(g, &info) >= 0 ? 0 : -1;
  if (g >= 0) H5Gclose(g);
  if (rc || info.nlinks != (hsize_t)m->ps.n)
    return epee_errf(e, "%s: group 'weights' has %llu tensors, the C model %d", FIXTURE,
                     rc ? 0ULL : (unsigned long long)info.nlinks, m->ps.n);
  return 0;
}

static int fixture_load(fixture *x, model *m) {
  epee_err e = {0};
  memset(m, 0, sizeof *m); /* model_free-able even if loading stops before bert_create */
  if (fixture_open(x, &e) || model_load(m, x, &e)) {
    printf("\n  %s\n", e.msg);
    return -1;
  }
  return 0;
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

static void test_matches_torch(void) {
  fixture x;
  model m;
  if (fixture_load(&x, &m)) {
    CU_FAIL("fixture " FIXTURE " unreadable or does not match the C model (regenerate: tests/twin/bert_twin.py)");
    fixture_free(&x);
    model_free(&m);
    return;
  }
  int L = x.cfg.layers, B = x.B, C = x.cfg.num_labels;
  epee_ctx c;
  ctx_init(&c, 0, 1);
  c.training = 0; /* dropout off, as in the twin; grad mode stays on */
  model_batch mb = {.B = B, .T = x.T, .ids = x.ids, .type_ids = x.type_ids, .mask = x.mask};
  tensor *logits[L];
  model_forward_all(&c, &m, &mb, logits);
  tensor *loss = weighted_loss(&c, logits, &x);
  params_zero_grad(&m.ps);
  tape_backward(&c, loss, NULL);

  epee_err e = {0};
  float *ref = epee_malloc(sizeof(float) * (size_t)(L * B * C + 1));
  int lbc[3] = {L, B, C}, one = 1;
  CU_ASSERT_FATAL(h5_read_floats(x.f, FIXTURE, "logits", ref, 3, lbc, &e) == 0);
  double e_logits = 0.0;
  for (int l = 0; l < L; l++) e_logits = fmax(e_logits, max_err(logits[l]->data, ref + l * B * C, B * C));
  CU_ASSERT_FATAL(h5_read_floats(x.f, FIXTURE, "loss", ref, 1, &one, &e) == 0);
  double e_loss = max_err(loss->data, ref, 1);
  free(ref);

  double e_grad = 0.0;
  const char *worst = m.ps.t[0]->name;
  char path[256];
  for (int i = 0; i < m.ps.n; i++) {
    tensor *t = m.ps.t[i];
    float *g = epee_malloc(sizeof(float) * (size_t)t->n);
    snprintf(path, sizeof path, "grads/%s", t->name);
    int rc = h5_read_floats(x.f, FIXTURE, path, g, t->ndim, t->shape, &e);
    CU_ASSERT(rc == 0);
    double err = rc ? INFINITY : max_err(t->grad, g, t->n);
    if (rc) printf("\n  %s", e.msg);
    if (err > e_grad) {
      e_grad = err;
      worst = t->name;
    }
    free(g);
  }
  printf("\n  worst error |c - torch| / max(1, |torch|): logits %.2e (tol %.0e), loss %.2e (tol %.0e), "
         "grads %.2e at %s (tol %.0e)\n",
         e_logits, LOGITS_TOL, e_loss, LOSS_TOL, e_grad, worst, GRAD_TOL);
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

/* Padded tokens must not reach any real position: new ids at padded positions leave every exit's logits
 * unchanged, while a new id at one real position (the control) changes them. */
static void test_padding_is_masked(void) {
  fixture x;
  model m;
  if (fixture_load(&x, &m)) {
    CU_FAIL("fixture " FIXTURE " unreadable or does not match the C model (regenerate: tests/twin/bert_twin.py)");
    fixture_free(&x);
    model_free(&m);
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
    } else if (i % x.T != 0) {
      real = i; /* some non-[CLS] real position, for the control */
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

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("bert_twin", NULL, NULL);
  CU_add_test(s, "C BERT = PyTorch twin: logits of every exit, weighted loss, every gradient", test_matches_torch);
  CU_add_test(s, "padded positions are masked: their ids change no logits", test_padding_is_masked);
}
