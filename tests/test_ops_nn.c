/* Every op of core/ops.h not covered by test_ops_basic: the fast kernel against a naive double
 * reference and every float input's gradient against central finite differences of that reference
 * (tests/gradcheck.c). Shapes include odd sizes and single rows. Tolerance 1e-3 relative. */
#include <CUnit/CUnit.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "tests/gradcheck.h"

#define TOL 1e-3

/* ---------------- linear ---------------- */
typedef struct { int M, N, K, bias; } lin_arg;
static tensor *lin_fast(epee_ctx *c, tensor **in, const void *a) {
  return op_linear(c, in[0], in[1], ((const lin_arg *)a)->bias ? in[2] : NULL);
}
static void lin_ref(const double *const *in, double *out, const void *a) {
  const lin_arg *p = a;
  for (int i = 0; i < p->M; i++)
    for (int j = 0; j < p->N; j++) {
      double s = p->bias ? in[2][j] : 0;
      for (int k = 0; k < p->K; k++) s += in[0][i * p->K + k] * in[1][j * p->K + k];
      out[i * p->N + j] = s;
    }
}
static void test_linear(void) {
  lin_arg shapes[] = {{1, 1, 1, 1}, {7, 5, 3, 1}, {1, 33, 17, 0}, {64, 48, 40, 1}, {13, 1, 9, 1}};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    lin_arg *a = &shapes[i];
    gc_case k = {.name = "linear", .n_in = 3, .ndim = {2, 2, 1},
                 .shape = {{a->M, a->K}, {a->N, a->K}, {a->N}}, .diff = {1, 1, a->bias},
                 .fast = lin_fast, .ref = lin_ref, .arg = a};
    gc_assert(&k, 10 + i, 48, TOL);
  }
}

/* ---------------- bmm ---------------- */
typedef struct { int Bt, M, N, K, tb; } bmm_arg;
static tensor *bmm_fast(epee_ctx *c, tensor **in, const void *a) { return op_bmm(c, in[0], in[1], ((const bmm_arg *)a)->tb); }
static void bmm_ref(const double *const *in, double *out, const void *a) {
  const bmm_arg *p = a;
  for (int b = 0; b < p->Bt; b++)
    for (int i = 0; i < p->M; i++)
      for (int j = 0; j < p->N; j++) {
        double s = 0;
        for (int k = 0; k < p->K; k++)
          s += in[0][(b * p->M + i) * p->K + k] *
               (p->tb ? in[1][(b * p->N + j) * p->K + k] : in[1][(b * p->K + k) * p->N + j]);
        out[(b * p->M + i) * p->N + j] = s;
      }
}
static void test_bmm(void) {
  bmm_arg shapes[] = {{1, 1, 1, 1, 0}, {3, 5, 4, 7, 0}, {2, 6, 3, 5, 1}, {4, 1, 9, 2, 1}};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    bmm_arg *a = &shapes[i];
    gc_case k = {.name = a->tb ? "bmm (b transposed)" : "bmm", .n_in = 2, .ndim = {3, 3},
                 .shape = {{a->Bt, a->M, a->K}, {a->Bt, a->tb ? a->N : a->K, a->tb ? a->K : a->N}},
                 .diff = {1, 1}, .fast = bmm_fast, .ref = bmm_ref, .arg = a};
    gc_assert(&k, 20 + i, 48, TOL);
  }
}

/* ---------------- masked softmax and attention ---------------- */
typedef struct { int B, H, T, hd, causal; const float *mask; float p; uint64_t seed; } att_arg;
static const float mask_b3t5[15] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0};
static int vis(const att_arg *p, int b, int i, int j) {
  return (!p->mask || p->mask[b * p->T + j] != 0) && (!p->causal || j <= i);
}
static tensor *sm_fast(epee_ctx *c, tensor **in, const void *a) {
  const att_arg *p = a;
  return op_softmax(c, in[0], p->mask, p->causal);
}
static void sm_ref(const double *const *in, double *out, const void *a) {
  const att_arg *p = a;
  int T = p->T;
  for (int b = 0; b < p->B; b++)
    for (int h = 0; h < p->H; h++)
      for (int i = 0; i < T; i++) {
        const double *x = in[0] + ((b * p->H + h) * T + i) * T;
        double *y = out + ((b * p->H + h) * T + i) * T, mx = -INFINITY, s = 0;
        for (int j = 0; j < T; j++) y[j] = vis(p, b, i, j) ? x[j] : -FLT_MAX, mx = fmax(mx, y[j]);
        for (int j = 0; j < T; j++) s += (y[j] = exp(y[j] - mx));
        for (int j = 0; j < T; j++) y[j] /= s;
      }
}
static void test_softmax(void) {
  att_arg args[] = {{3, 2, 5, 0, 0, mask_b3t5, 0, 0}, {2, 1, 4, 0, 1, NULL, 0, 0}, {1, 1, 1, 0, 0, NULL, 0, 0}};
  const char *names[] = {"softmax, padding mask", "softmax, causal", "softmax, one element"};
  for (int i = 0; i < 3; i++) {
    att_arg *a = &args[i];
    gc_case k = {.name = names[i], .n_in = 1, .ndim = {4}, .shape = {{a->B, a->H, a->T, a->T}}, .diff = {1},
                 .fast = sm_fast, .ref = sm_ref, .arg = a};
    gc_assert(&k, 30 + i, 64, TOL);
  }
}

static tensor *att_fast(epee_ctx *c, tensor **in, const void *a) {
  const att_arg *p = a;
  c->training = p->p > 0;
  return op_attention(c, in[0], in[1], in[2], p->H, p->mask, p->causal, p->p);
}
static void att_ref(const double *const *in, double *out, const void *a) {
  const att_arg *p = a;
  int T = p->T, H = p->H, hd = p->hd, D = H * hd;
  double s[16];
  for (int b = 0; b < p->B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < T; j++) {
          double d = 0;
          for (int k = 0; k < hd; k++) d += in[0][(b * T + i) * D + h * hd + k] * in[1][(b * T + j) * D + h * hd + k];
          s[j] = vis(p, b, i, j) ? d / sqrt(hd) : -FLT_MAX;
          mx = fmax(mx, s[j]);
        }
        for (int j = 0; j < T; j++) sum += (s[j] = exp(s[j] - mx));
        for (int j = 0; j < T; j++) {
          s[j] /= sum;
          if (p->p > 0) /* the op's stream for the first dropout call at step 0 is 0 */
            s[j] = rng_uniform(p->seed, 0, (uint64_t)(((b * H + h) * T + i) * T + j)) < 1 - p->p ? s[j] / (1 - p->p) : 0;
        }
        for (int k = 0; k < hd; k++) {
          double y = 0;
          for (int j = 0; j < T; j++) y += s[j] * in[2][(b * T + j) * D + h * hd + k];
          out[(b * T + i) * D + h * hd + k] = y;
        }
      }
}
static void test_attention(void) {
  att_arg args[] = {{3, 2, 5, 4, 0, mask_b3t5, 0, 0}, {2, 3, 6, 2, 1, NULL, 0, 0}, {1, 1, 1, 3, 0, NULL, 0, 0},
                    {3, 2, 5, 3, 1, mask_b3t5, 0, 0}, {2, 2, 7, 4, 0, NULL, 0.3f, 41}};
  const char *names[] = {"attention, padding", "attention, causal", "attention, T = 1", "attention, padding + causal",
                         "attention, dropout 0.3"};
  for (int i = 0; i < 5; i++) {
    att_arg *a = &args[i];
    int D = a->H * a->hd;
    gc_case k = {.name = names[i], .n_in = 3, .ndim = {3, 3, 3},
                 .shape = {{a->B, a->T, D}, {a->B, a->T, D}, {a->B, a->T, D}}, .diff = {1, 1, 1},
                 .fast = att_fast, .ref = att_ref, .arg = a};
    gc_assert(&k, a->seed ? a->seed : 40 + (uint64_t)i, 64, TOL);
  }
}

/* ---------------- layernorm ---------------- */
typedef struct { int rows, D; } ln_arg;
static tensor *ln_fast(epee_ctx *c, tensor **in, const void *a) {
  (void)a;
  return op_layernorm(c, in[0], in[1], in[2], 1e-5f);
}
static void ln_ref(const double *const *in, double *out, const void *a) {
  const ln_arg *p = a;
  for (int r = 0; r < p->rows; r++) {
    const double *x = in[0] + r * p->D;
    double m = 0, v = 0;
    for (int d = 0; d < p->D; d++) m += x[d] / p->D;
    for (int d = 0; d < p->D; d++) v += (x[d] - m) * (x[d] - m) / p->D;
    for (int d = 0; d < p->D; d++) out[r * p->D + d] = (x[d] - m) / sqrt(v + 1e-5) * in[1][d] + in[2][d];
  }
}
static void test_layernorm(void) {
  ln_arg args[] = {{1, 2}, {6, 7}, {33, 64}};
  for (int i = 0; i < 3; i++) {
    gc_case k = {.name = "layernorm", .n_in = 3, .ndim = {2, 1, 1},
                 .shape = {{args[i].rows, args[i].D}, {args[i].D}, {args[i].D}}, .diff = {1, 1, 1},
                 .fast = ln_fast, .ref = ln_ref, .arg = &args[i]};
    gc_assert(&k, 50 + i, 64, TOL);
  }
}

/* ---------------- activations ---------------- */
typedef struct { int kind, n; } act_arg;
static tensor *act_fast(epee_ctx *c, tensor **in, const void *a) {
  int k = ((const act_arg *)a)->kind;
  return k == 0 ? op_gelu(c, in[0]) : k == 1 ? op_gelu_tanh(c, in[0]) : op_tanh(c, in[0]);
}
static void act_ref(const double *const *in, double *out, const void *a) {
  const act_arg *p = a;
  for (int i = 0; i < p->n; i++) {
    double x = in[0][i];
    out[i] = p->kind == 0 ? 0.5 * x * (1 + erf(x / sqrt(2)))
             : p->kind == 1 ? 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)))
                            : tanh(x);
  }
}
static void act_init(int i, float *x, int64_t n, const void *a) { /* wide range: both tails and the middle */
  (void)i, (void)a;
  for (int64_t j = 0; j < n; j++) x[j] = -5.0f + 10.0f * (float)j / (float)(n - 1) + 0.01f;
}
static void test_activations(void) {
  const char *names[] = {"gelu (erf)", "gelu (tanh)", "tanh"};
  for (int kind = 0; kind < 3; kind++) {
    act_arg a = {kind, 3 * 37};
    gc_case k = {.name = names[kind], .n_in = 1, .ndim = {2}, .shape = {{3, 37}}, .diff = {1}, .init = act_init,
                 .fast = act_fast, .ref = act_ref, .arg = &a};
    gc_assert(&k, 60 + kind, 111, TOL);
  }
}

/* ---------------- embedding ---------------- */
static const int32_t emb_ids[6] = {3, 0, 3, 4, 1, 3}; /* repeated ids: their grads must add */
static tensor *emb_fast(epee_ctx *c, tensor **in, const void *a) {
  (void)a;
  return op_embedding(c, emb_ids, 2, 3, in[0]);
}
static void emb_ref(const double *const *in, double *out, const void *a) {
  (void)a;
  for (int i = 0; i < 6; i++)
    for (int d = 0; d < 5; d++) out[i * 5 + d] = in[0][emb_ids[i] * 5 + d];
}
static void test_embedding(void) {
  gc_case k = {.name = "embedding, repeated ids", .n_in = 1, .ndim = {2}, .shape = {{6, 5}}, .diff = {1},
               .fast = emb_fast, .ref = emb_ref};
  gc_assert(&k, 70, 64, TOL);
}

/* ---------------- gather rows, mean pool ---------------- */
static const int g_rows[5] = {2, 0, 2, 5, 1}; /* duplicates */
static tensor *gather_fast(epee_ctx *c, tensor **in, const void *a) {
  (void)a;
  return op_gather_rows(c, in[0], 4, g_rows, 5);
}
static void gather_ref(const double *const *in, double *out, const void *a) {
  (void)a;
  for (int i = 0; i < 5; i++)
    for (int d = 0; d < 4; d++) out[i * 4 + d] = in[0][g_rows[i] * 4 + d];
}
static const float mp_mask[8] = {1, 1, 1, 0, 1, 0, 0, 0};
static tensor *mp_fast(epee_ctx *c, tensor **in, const void *a) {
  (void)a;
  return op_mean_pool(c, in[0], mp_mask);
}
static void mp_ref(const double *const *in, double *out, const void *a) {
  (void)a;
  for (int b = 0; b < 2; b++)
    for (int d = 0; d < 3; d++) {
      double s = 0, n = 0;
      for (int t = 0; t < 4; t++)
        if (mp_mask[b * 4 + t] != 0) s += in[0][(b * 4 + t) * 3 + d], n++;
      out[b * 3 + d] = s / n;
    }
}
static void test_pooling(void) {
  gc_case k = {.name = "gather_rows, duplicates", .n_in = 1, .ndim = {3}, .shape = {{2, 3, 4}}, .diff = {1},
               .fast = gather_fast, .ref = gather_ref};
  gc_assert(&k, 80, 64, TOL);
  gc_case k2 = {.name = "mean_pool, padding", .n_in = 1, .ndim = {3}, .shape = {{2, 4, 3}}, .diff = {1},
                .fast = mp_fast, .ref = mp_ref};
  gc_assert(&k2, 81, 64, TOL);
}

/* ---------------- patch embedding ---------------- */
typedef struct { int B, C, H, W, P, D; } pe_arg;
static tensor *pe_fast(epee_ctx *c, tensor **in, const void *a) {
  return op_patch_embed(c, in[0], in[1], in[2], ((const pe_arg *)a)->P);
}
static void pe_ref(const double *const *in, double *out, const void *a) { /* Conv2d, stride = kernel = P */
  const pe_arg *p = a;
  int gh = p->H / p->P, gw = p->W / p->P;
  for (int b = 0; b < p->B; b++)
    for (int y = 0; y < gh; y++)
      for (int x = 0; x < gw; x++)
        for (int d = 0; d < p->D; d++) {
          double s = in[2][d];
          for (int ch = 0; ch < p->C; ch++)
            for (int ky = 0; ky < p->P; ky++)
              for (int kx = 0; kx < p->P; kx++)
                s += in[1][((d * p->C + ch) * p->P + ky) * p->P + kx] *
                     in[0][((b * p->C + ch) * p->H + y * p->P + ky) * p->W + x * p->P + kx];
          out[((b * gh + y) * gw + x) * p->D + d] = s;
        }
}
static void test_patch_embed(void) {
  pe_arg a = {2, 3, 4, 6, 2, 5};
  gc_case k = {.name = "patch_embed 2x3x4x6, P 2", .n_in = 3, .ndim = {4, 4, 1},
               .shape = {{a.B, a.C, a.H, a.W}, {a.D, a.C, a.P, a.P}, {a.D}}, .diff = {1, 1, 1},
               .fast = pe_fast, .ref = pe_ref, .arg = &a};
  gc_assert(&k, 90, 64, TOL);
}

/* ---------------- cross-entropy ---------------- */
typedef struct { int B, C; const int32_t *y; const float *w; } ce_arg;
static tensor *ce_fast(epee_ctx *c, tensor **in, const void *a) {
  const ce_arg *p = a;
  return op_cross_entropy(c, in[0], p->y, p->w);
}
static void ce_ref(const double *const *in, double *out, const void *a) {
  const ce_arg *p = a;
  double l = 0, ws = 0;
  for (int b = 0; b < p->B; b++) {
    const double *z = in[0] + b * p->C;
    double mx = z[0], s = 0;
    for (int k = 1; k < p->C; k++) mx = fmax(mx, z[k]);
    for (int k = 0; k < p->C; k++) s += exp(z[k] - mx);
    double w = p->w ? p->w[p->y[b]] : 1;
    l += w * (mx + log(s) - z[p->y[b]]);
    ws += w;
  }
  out[0] = l / ws;
}
static void test_cross_entropy(void) {
  static const int32_t y2[4] = {0, 1, 1, 0}, y22[3] = {21, 0, 7};
  static const float w2[2] = {0.3f, 2.0f};
  ce_arg args[] = {{4, 2, y2, NULL}, {4, 2, y2, w2}, {3, 22, y22, NULL}, {1, 22, y22, NULL}};
  const char *names[] = {"cross_entropy C=2", "cross_entropy C=2, class weights", "cross_entropy C=22",
                         "cross_entropy one row"};
  for (int i = 0; i < 4; i++) {
    gc_case k = {.name = names[i], .n_in = 1, .ndim = {2}, .shape = {{args[i].B, args[i].C}}, .diff = {1},
                 .fast = ce_fast, .ref = ce_ref, .arg = &args[i]};
    gc_assert(&k, 100 + i, 88, TOL);
  }
}

/* ---------------- dropout ---------------- */
typedef struct { int n; float p; uint64_t seed; } do_arg;
static tensor *do_fast(epee_ctx *c, tensor **in, const void *a) {
  c->training = 1;
  return op_dropout(c, in[0], ((const do_arg *)a)->p);
}
static void do_ref(const double *const *in, double *out, const void *a) {
  const do_arg *p = a;
  for (int i = 0; i < p->n; i++)
    out[i] = rng_uniform(p->seed, 0, (uint64_t)i) < 1 - p->p ? in[0][i] / (1 - p->p) : 0;
}
static void test_dropout(void) {
  do_arg a = {5 * 9, 0.4f, 110};
  gc_case k = {.name = "dropout p=0.4", .n_in = 1, .ndim = {2}, .shape = {{5, 9}}, .diff = {1}, .fast = do_fast,
               .ref = do_ref, .arg = &a};
  gc_assert(&k, a.seed, 64, TOL);
  /* rate over a big tensor, determinism, identity when not training */
  epee_ctx c;
  ctx_init(&c, 0, 7);
  static float buf[100000];
  for (int i = 0; i < 100000; i++) buf[i] = 1.0f;
  tensor *x = tensor_wrap(&c, buf, 1, (int[]){100000});
  c.training = 1;
  tensor *y1 = op_dropout(&c, x, 0.25f);
  c.dropout_calls = 0;
  tensor *y2 = op_dropout(&c, x, 0.25f);
  int zeros = 0;
  for (int i = 0; i < 100000; i++) zeros += y1->data[i] == 0.0f;
  printf("  dropout p=0.25: %.4f dropped\n", zeros / 1e5);
  CU_ASSERT(fabs(zeros / 1e5 - 0.25) < 0.01);
  CU_ASSERT(memcmp(y1->data, y2->data, sizeof buf) == 0);
  c.training = 0;
  CU_ASSERT_PTR_EQUAL(op_dropout(&c, x, 0.25f), x);
  ctx_free(&c);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("ops", NULL, NULL);
  CU_add_test(s, "linear", test_linear);
  CU_add_test(s, "bmm", test_bmm);
  CU_add_test(s, "softmax with masks", test_softmax);
  CU_add_test(s, "attention", test_attention);
  CU_add_test(s, "layernorm", test_layernorm);
  CU_add_test(s, "activations", test_activations);
  CU_add_test(s, "embedding", test_embedding);
  CU_add_test(s, "gather rows, mean pool", test_pooling);
  CU_add_test(s, "patch embedding", test_patch_embed);
  CU_add_test(s, "cross-entropy", test_cross_entropy);
  CU_add_test(s, "dropout", test_dropout);
}
