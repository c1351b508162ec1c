/* Embedding, LayerNorm, activations, dropout, gather rows, mean pool, patch embedding, cross-entropy:
 *  - values worked by hand;
 *  - the fast kernel against a naive double reference, and every float input's gradient against central
 *    finite differences of that reference (tests/gradcheck.c, tolerance 1e-3), on edge shapes (single
 *    rows, size-1 dims, odd sizes) and on random shapes (fixed seeds, so every run checks the same);
 *  - accumulation: a second backward over the same tape doubles the input grads (backward adds);
 *  - thread-count independence of outputs and grads (scatter-adds included), inference saving nothing;
 *  - dropout's rate, reproducibility from (seed, step, call) and identity outside training;
 *  - misuse stopping with the op, the operand shapes and the caller's file:line (in a forked child).
 * Linear, bmm, softmax and attention have their own files (test_ops_linear.c, test_ops_attention.c). */
#include <CUnit/CUnit.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fast_exp.h"
#include "core/ops.h"
#include "core/rng.h"
#include "tests/gradcheck.h"

#define TOL 1e-3
#define SAMPLES 64
#define NRAND 3 /* random shapes per op, on top of the fixed edge cases */
#define PI 3.14159265358979323846

/* an int in [lo, hi] fixed by (key, i) */
static int rnd(uint64_t key, uint64_t i, int lo, int hi) {
  return lo + (int)(rng_hash(key, 1, i) % (uint64_t)(hi - lo + 1));
}

/* ---------------- harness additions: one run of a gc_case, accumulation, thread counts ---------------- */

typedef struct {
  float *y, *g[GC_MAX_IN]; /* output and each checked input's grad (malloc'd copies) */
  int64_t ny, n[GC_MAX_IN];
} run_res;

/* Inputs drawn as gc_run draws them, out = fast(in), then `passes` backward passes with one random dout. */
static run_res run_case(const gc_case *k, uint64_t seed, int passes) {
  run_res r = {0};
  epee_ctx c;
  ctx_init(&c, 1 << 20, seed);
  tensor *in[GC_MAX_IN] = {0};
  gc_make_inputs(k, &c, seed, in);
  tensor *out = k->fast(&c, in, k->arg);
  r.ny = out->n;
  r.y = epee_malloc(sizeof(float) * (size_t)out->n);
  memcpy(r.y, out->data, sizeof(float) * (size_t)out->n);
  float *R = arena_alloc(&c.act, sizeof(float) * (size_t)out->n);
  rng_fill_normal(R, out->n, 1.0f, seed, 7);
  for (int p = 0; p < passes; p++) tape_backward(&c, out, R);
  for (int i = 0; i < k->n_in; i++) {
    if (!k->diff[i]) continue;
    r.n[i] = in[i]->n;
    r.g[i] = epee_calloc((size_t)in[i]->n, sizeof(float));
    if (in[i]->grad) memcpy(r.g[i], in[i]->grad, sizeof(float) * (size_t)in[i]->n);
  }
  ctx_free(&c);
  return r;
}

static void free_res(run_res *r) {
  free(r->y);
  for (int i = 0; i < GC_MAX_IN; i++) free(r->g[i]);
}

/* Backward functions must add into input grads, never assign: two passes give twice one pass. */
static void check_accumulates(const gc_case *k, uint64_t seed) {
  run_res one = run_case(k, seed, 1), two = run_case(k, seed, 2);
  for (int i = 0; i < k->n_in; i++) {
    if (!k->diff[i]) continue;
    double scale = 0.0, worst = 0.0;
    for (int64_t j = 0; j < one.n[i]; j++) scale = fmax(scale, fabs(one.g[i][j]));
    for (int64_t j = 0; j < one.n[i]; j++) worst = fmax(worst, fabs(two.g[i][j] - 2.0 * one.g[i][j]));
    if (!(worst <= 1e-5 * scale))
      printf("\n  %s: input %d does not accumulate (%.3e of %.3e)\n", k->name, i, worst, scale);
    CU_ASSERT(worst <= 1e-5 * scale);
  }
  free_res(&one), free_res(&two);
}

/* Same bits for the output and every grad with 1 and 3 threads. */
static void check_thread_independent(const gc_case *k, uint64_t seed) {
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  run_res a = run_case(k, seed, 1);
  omp_set_num_threads(3);
  run_res b = run_case(k, seed, 1);
  omp_set_num_threads(saved);
  int same = memcmp(a.y, b.y, sizeof(float) * (size_t)a.ny) == 0;
  for (int i = 0; i < k->n_in; i++)
    if (k->diff[i]) same &= memcmp(a.g[i], b.g[i], sizeof(float) * (size_t)a.n[i]) == 0;
  if (!same) printf("\n  %s: result depends on the thread count\n", k->name);
  CU_ASSERT(same);
  free_res(&a), free_res(&b);
}

static void check(const gc_case *k, uint64_t seed) {
  gc_assert(k, seed, SAMPLES, TOL);
  check_accumulates(k, seed);
}

/* With grad mode off, f (which must record when it is on) takes no arena beyond its output tensor. */
typedef tensor *(*op_call)(epee_ctx *c, tensor *x);
static void check_inference_saves_nothing(op_call f, int ndim, const int *shape) {
  epee_ctx c;
  ctx_init(&c, 1 << 22, 1);
  float *buf = arena_alloc(&c.act, sizeof(float) * (size_t)shape_numel(ndim, shape));
  rng_fill_normal(buf, shape_numel(ndim, shape), 1.0f, 1, 1);
  tensor *x = tensor_wrap(&c, buf, ndim, shape);
  x->requires_grad = 1;
  c.training = 1;
  tensor *y = f(&c, x);
  CU_ASSERT_EQUAL(c.tape.n, 1);
  c.grad_mode = 0;
  size_t before = c.act.used;
  y = f(&c, x);
  size_t without = c.act.used - before;
  CU_ASSERT_EQUAL(c.tape.n, 1);
  before = c.act.used;
  tensor_new(&c, y->ndim, y->shape);
  size_t output_only = c.act.used - before;
  CU_ASSERT_EQUAL(without, output_only);
  ctx_free(&c);
}


static tensor *wrap_copy(epee_ctx *c, const float *v, int ndim, const int *shape) {
  int64_t n = shape_numel(ndim, shape);
  float *buf = arena_alloc(&c->act, sizeof(float) * (size_t)n);
  memcpy(buf, v, sizeof(float) * (size_t)n);
  return tensor_wrap(c, buf, ndim, shape);
}

/* ================================ embedding ================================ */

typedef struct { int B, T, V, D; int32_t ids[96]; } emb_arg;

static tensor *emb_fast(epee_ctx *c, tensor **in, const void *a) {
  const emb_arg *p = a;
  return op_embedding(c, p->ids, p->B, p->T, in[0]);
}
static void emb_ref(const double *const *in, double *out, const void *a) {
  const emb_arg *p = a;
  for (int i = 0; i < p->B * p->T; i++)
    for (int d = 0; d < p->D; d++) out[i * p->D + d] = in[0][p->ids[i] * p->D + d];
}
static gc_case emb_case(emb_arg *a) {
  return (gc_case){.name = "embedding", .n_in = 1, .ndim = {2}, .shape = {{a->V, a->D}}, .diff = {1},
                   .fast = emb_fast, .ref = emb_ref, .arg = a};
}

/* W = [[0, 1], [10, 11], [20, 21]], ids [2, 0, 2]: rows 2, 0, 2; dy = [[1, 2], [3, 4], [5, 6]] -> dW row 2
 * gets [1 + 5, 2 + 6] (picked twice), row 0 gets [3, 4], row 1 nothing */
static void test_embedding_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  tensor *W = wrap_copy(&c, (float[]){0, 1, 10, 11, 20, 21}, 2, (int[]){3, 2});
  W->requires_grad = 1;
  const int32_t ids[3] = {2, 0, 2};
  tensor *y = op_embedding(&c, ids, 1, 3, W);
  const float want[6] = {20, 21, 0, 1, 20, 21}, dy[6] = {1, 2, 3, 4, 5, 6}, dW[6] = {3, 4, 0, 0, 6, 8};
  CU_ASSERT(y->ndim == 3 && y->shape[0] == 1 && y->shape[1] == 3 && y->shape[2] == 2);
  CU_ASSERT(memcmp(y->data, want, sizeof want) == 0);
  tape_backward(&c, y, dy);
  CU_ASSERT(memcmp(W->grad, dW, sizeof dW) == 0);
  ctx_free(&c);
}

static void test_embedding(void) {
  emb_arg a[4 + NRAND] = {{1, 1, 1, 1, {0}}, {2, 3, 5, 4, {3, 0, 3, 4, 1, 3}}, {1, 7, 2, 9, {0}}, {3, 5, 11, 1, {0}}};
  for (int i = 2; i < 4 + NRAND; i++) {
    if (i >= 4) a[i] = (emb_arg){rnd(70, i, 1, 4), rnd(71, i, 1, 9), rnd(72, i, 1, 13), rnd(73, i, 1, 40), {0}};
    for (int j = 0; j < a[i].B * a[i].T; j++) a[i].ids[j] = rnd(74 + (uint64_t)i, j, 0, a[i].V - 1);
  }
  for (int i = 0; i < 4 + NRAND; i++) {
    gc_case k = emb_case(&a[i]);
    check(&k, 700 + (uint64_t)i);
  }
  /* many ids on few rows: the scatter-add is race-free and ordered */
  emb_arg big = {4, 24, 3, 97, {0}};
  for (int j = 0; j < 96; j++) big.ids[j] = rnd(75, j, 0, 2);
  gc_case k = emb_case(&big);
  check_thread_independent(&k, 710);
}

/* ================================ layernorm ================================ */

typedef struct { int ndim, shape[3]; float eps, offset; } ln_arg;

static int ln_D(const ln_arg *p) { return p->shape[p->ndim - 1]; }
static tensor *ln_fast(epee_ctx *c, tensor **in, const void *a) {
  return op_layernorm(c, in[0], in[1], in[2], ((const ln_arg *)a)->eps);
}
static void ln_ref(const double *const *in, double *out, const void *a) {
  const ln_arg *p = a;
  int D = ln_D(p), rows = (int)(shape_numel(p->ndim, p->shape) / D);
  for (int r = 0; r < rows; r++) {
    const double *x = in[0] + r * D;
    double m = 0, v = 0;
    for (int d = 0; d < D; d++) m += x[d] / D;
    for (int d = 0; d < D; d++) v += (x[d] - m) * (x[d] - m) / D; /* biased, as PyTorch */
    for (int d = 0; d < D; d++) out[r * D + d] = (x[d] - m) / sqrt(v + p->eps) * in[1][d] + in[2][d];
  }
}
/* x around `offset`: xhat must stay accurate although the float mean resolves only ulp(offset) / 2 */
static void ln_init(int i, float *x, int64_t n, const void *a) {
  rng_fill_normal(x, n, 1.0f, 51, (uint64_t)i);
  if (i == 0)
    for (int64_t j = 0; j < n; j++) x[j] += ((const ln_arg *)a)->offset;
}
static gc_case ln_case(ln_arg *a) {
  int D = ln_D(a);
  gc_case k = {.name = "layernorm", .n_in = 3, .ndim = {a->ndim, 1, 1}, .shape = {{0}, {D}, {D}}, .diff = {1, 1, 1},
               .init = ln_init, .fast = ln_fast, .ref = ln_ref, .arg = a};
  memcpy(k.shape[0], a->shape, sizeof a->shape);
  return k;
}

/* x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25; eps 0.75 inside the root makes rstd = 1/sqrt 2;
 * gamma [1, 1, 2, 2], beta [0, 0, 0, 1] -> [-1.5, -0.5, 2 * 0.5, 2 * 1.5 + sqrt 2] / sqrt 2 */
static void test_layernorm_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  tensor *x = wrap_copy(&c, (float[]){1, 2, 3, 4}, 2, (int[]){1, 4});
  tensor *g = wrap_copy(&c, (float[]){1, 1, 2, 2}, 1, (int[]){4});
  tensor *b = wrap_copy(&c, (float[]){0, 0, 0, 1}, 1, (int[]){4});
  tensor *y = op_layernorm(&c, x, g, b, 0.75f);
  const double want[4] = {-1.0606601717798212, -0.35355339059327373, 0.7071067811865475, 3.1213203435596424};
  for (int i = 0; i < 4; i++) CU_ASSERT_DOUBLE_EQUAL(y->data[i], want[i], 1e-6);
  /* 1000 -+ 1 alternating: mean 1000, variance 1, y = -+1 exactly; a one-pass E[x^2] - mean^2 in float
   * loses the variance entirely (x^2 ~ 1e6 has an ulp of 0.06) */
  enum { D = 64 };
  float xs[D], ones[D], zeros[D];
  for (int d = 0; d < D; d++) xs[d] = d % 2 ? 1001.0f : 999.0f, ones[d] = 1.0f, zeros[d] = 0.0f;
  y = op_layernorm(&c, tensor_wrap(&c, xs, 2, (int[]){1, D}), tensor_wrap(&c, ones, 1, (int[]){D}),
                   tensor_wrap(&c, zeros, 1, (int[]){D}), 1e-12f);
  for (int d = 0; d < D; d++) CU_ASSERT_DOUBLE_EQUAL(y->data[d], d % 2 ? 1.0 : -1.0, 1e-6);
  ctx_free(&c);
}

static void test_layernorm(void) {
  ln_arg a[6 + NRAND] = {{2, {1, 1}, 1e-5f, 0},  {2, {1, 7}, 1e-5f, 0},   {3, {2, 3, 5}, 1e-12f, 0},
                         {2, {33, 64}, 1e-12f, 0}, {2, {5, 48}, 1e-5f, 1000}, {1, {9}, 1e-5f, 0}};
  for (int i = 6; i < 6 + NRAND; i++) a[i] = (ln_arg){2, {rnd(50, i, 1, 9), rnd(51, i, 1, 70)}, 1e-5f, 0};
  for (int i = 0; i < 6 + NRAND; i++) {
    gc_case k = ln_case(&a[i]);
    check(&k, 500 + (uint64_t)i);
  }
  ln_arg big = {2, {37, 131}, 1e-5f, 0};
  gc_case k = ln_case(&big);
  check_thread_independent(&k, 510);
}

static float ln_ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, ln_zeros[16];
static tensor ln_gamma = {.data = ln_ones, .n = 16, .ndim = 1, .shape = {16}, .is_leaf = 1},
              ln_beta = {.data = ln_zeros, .n = 16, .ndim = 1, .shape = {16}, .is_leaf = 1};
static tensor *ln_call(epee_ctx *c, tensor *x) { return op_layernorm(c, x, &ln_gamma, &ln_beta, 1e-5f); }

/* ================================ activations ================================ */

enum { GELU, GELU_TANH, TANH };
typedef struct { int kind, ndim, shape[4], wide; } act_arg;
static const char *act_names[3] = {"gelu (erf)", "gelu (tanh)", "tanh"};

static tensor *act_apply(epee_ctx *c, int kind, tensor *x) {
  return kind == GELU ? op_gelu(c, x) : kind == GELU_TANH ? op_gelu_tanh(c, x) : op_tanh(c, x);
}
static tensor *act_fast(epee_ctx *c, tensor **in, const void *a) {
  return act_apply(c, ((const act_arg *)a)->kind, in[0]);
}

/* PyTorch's formulas, in double */
static double act_ref1(int kind, double x) {
  if (kind == GELU) return 0.5 * x * (1 + erf(x / sqrt(2)));
  if (kind == GELU_TANH) return 0.5 * x * (1 + tanh(sqrt(2 / PI) * (x + 0.044715 * x * x * x)));
  return tanh(x);
}
static void act_ref(const double *const *in, double *out, const void *a) {
  const act_arg *p = a;
  for (int64_t i = 0; i < shape_numel(p->ndim, p->shape); i++) out[i] = act_ref1(p->kind, in[0][i]);
}
static void act_init(int i, float *x, int64_t n, const void *a) { /* wide: both tails and the middle */
  (void)i;
  if (!((const act_arg *)a)->wide) {
    rng_fill_normal(x, n, 1.5f, 61, 0);
    return;
  }
  for (int64_t j = 0; j < n; j++) x[j] = n == 1 ? 0.3f : -6.0f + 12.0f * (float)j / (float)(n - 1) + 0.013f;
}

/* gelu(1) = Phi(1) = 0.841345 (normal table), gelu(-1) = -(1 - Phi(1)); gelu(-3) = -3 Phi(-3) = -3 * 0.0013499;
 * tanh form: 0.5 (1 + tanh(0.797885 * 1.044715)) = 0.841192; tanh(0.5) = 0.462117 */
static void test_activations_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  tensor *x = wrap_copy(&c, (float[]){1, -1, -3, 0.5f}, 1, (int[]){4});
  tensor *g = op_gelu(&c, x), *gt = op_gelu_tanh(&c, x), *t = op_tanh(&c, x);
  CU_ASSERT_DOUBLE_EQUAL(g->data[0], 0.8413447460685429, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(g->data[1], -0.15865525393145707, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(g->data[2], -0.00404969409489031, 1e-8);
  CU_ASSERT_DOUBLE_EQUAL(gt->data[0], 0.8411919906082768, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(t->data[3], 0.46211715726000974, 1e-7);
  ctx_free(&c);
}

/* fast_exp's contract, in a loop GCC vectorises as the kernels do: about 1 ulp on [-87, 88] (checked to
 * 3e-7 relative), exactly 0 below -87 and at -inf, e^88 above 88 and at +inf, NaN in gives NaN out. */
static void fast_exp_loop(const float *x, float *y, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) y[i] = fast_exp(x[i]);
}

static void test_fast_exp(void) {
  enum { N = 350001, NS = 8 };
  float *x = epee_malloc(sizeof(float) * N), *y = epee_malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) x[i] = -87.0f + 175.0f * (float)i / (float)(N - 1);
  fast_exp_loop(x, y, N);
  double worst = 0;
  for (int i = 0; i < N; i++) worst = fmax(worst, fabs(y[i] - exp((double)x[i])) / exp((double)x[i]));
  printf("  fast_exp max rel err on [-87, 88]: %.2e\n", worst);
  CU_ASSERT(worst <= 3e-7);
  float sx[NS] = {-87.5f, -1000.0f, -INFINITY, 88.5f, 1e30f, INFINITY, NAN, -NAN}, sy[NS];
  fast_exp_loop(sx, sy, NS);
  for (int i = 0; i < 3; i++) CU_ASSERT(sy[i] == 0.0f);
  for (int i = 3; i < 6; i++) CU_ASSERT(sy[i] == (float)exp(88.0) || fabs(sy[i] - exp(88.0)) <= 3e-7 * exp(88.0));
  for (int i = 6; i < NS; i++) CU_ASSERT(isnan(sy[i]));
  free(x), free(y);
}

/* The vectorised approximations against double math over a dense grid of [-10, 10]: values to 2e-5
 * relative (tails included: the references use erfc and the logistic form, which do not cancel in
 * double either), derivatives (from backward with dy = 1) to 1e-5 relative to |f'| + 0.05 (they cross
 * zero, and 1 - tanh^2 rounds to 0 in float near saturation, as in PyTorch). */
static void test_activation_accuracy(void) {
  enum { N = 400001 };
  float *buf = epee_malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) buf[i] = -10.0f + 20.0f * (float)i / (float)(N - 1);
  for (int kind = 0; kind < 3; kind++) {
    epee_ctx c;
    ctx_init(&c, 1 << 24, 1);
    tensor *x = tensor_wrap(&c, buf, 1, (int[]){N});
    x->requires_grad = 1;
    tensor *y = act_apply(&c, kind, x);
    tape_backward(&c, y, NULL);
    double worst_f = 0, worst_df = 0;
    for (int i = 0; i < N; i++) {
      double v = buf[i], f, df;
      if (kind == GELU) {
        f = 0.5 * v * erfc(-v / sqrt(2));
        df = 0.5 * erfc(-v / sqrt(2)) + v * exp(-0.5 * v * v) / sqrt(2 * PI);
      } else if (kind == GELU_TANH) {
        double u = sqrt(2 / PI) * (v + 0.044715 * v * v * v), s = 1 / (1 + exp(-2 * u));
        f = v * s; /* = 0.5 v (1 + tanh u) */
        df = s + 2 * v * s * (1 - s) * sqrt(2 / PI) * (1 + 3 * 0.044715 * v * v);
      } else {
        f = tanh(v);
        df = 1 / (cosh(v) * cosh(v));
      }
      worst_f = fmax(worst_f, fabs(y->data[i] - f) / (fabs(f) + 1e-30));
      worst_df = fmax(worst_df, fabs(x->grad[i] - df) / (fabs(df) + 0.05));
    }
    printf("  %-12s max rel err: value %.2e, derivative %.2e\n", act_names[kind], worst_f, worst_df);
    CU_ASSERT(worst_f <= 2e-5);
    CU_ASSERT(worst_df <= 1e-5);
    ctx_free(&c);
  }
  free(buf);
}

static void test_activations(void) {
  for (int kind = 0; kind < 3; kind++) {
    act_arg a[4 + NRAND] = {{kind, 1, {1}, 0}, {kind, 2, {3, 37}, 1}, {kind, 4, {2, 3, 5, 7}, 0},
                            {kind, 2, {1, 301}, 1}};
    for (int i = 4; i < 4 + NRAND; i++) a[i] = (act_arg){kind, 2, {rnd(60, i, 1, 9), rnd(61, i, 1, 99)}, 0};
    for (int i = 0; i < 4 + NRAND; i++) {
      gc_case k = {.name = act_names[kind], .n_in = 1, .ndim = {a[i].ndim}, .diff = {1}, .init = act_init,
                   .fast = act_fast, .ref = act_ref, .arg = &a[i]};
      memcpy(k.shape[0], a[i].shape, sizeof a[i].shape);
      check(&k, 600 + (uint64_t)(10 * kind + i));
    }
    act_arg big = {kind, 2, {33, 1001}, 1};
    gc_case k = {.name = act_names[kind], .n_in = 1, .ndim = {2}, .shape = {{33, 1001}}, .diff = {1},
                 .init = act_init, .fast = act_fast, .ref = act_ref, .arg = &big};
    check_thread_independent(&k, 620);
  }
}

static tensor *gelu_call(epee_ctx *c, tensor *x) { return op_gelu(c, x); }

/* ================================ dropout ================================ */

typedef struct { int ndim, shape[3]; float p; uint64_t step, call; } do_arg;

static tensor *do_fast(epee_ctx *c, tensor **in, const void *a) {
  const do_arg *p = a;
  c->training = 1;
  c->step = p->step;
  c->dropout_calls = p->call;
  return op_dropout(c, in[0], p->p);
}
/* the mask reproduced from the documented stream: call k of step s draws from (seed, (s << 20) + k);
 * gc_run seeds the context with the case's seed, which the reference receives as DO_SEED */
#define DO_SEED 900
static void do_ref(const double *const *in, double *out, const void *a) {
  const do_arg *p = a;
  uint64_t stream = (p->step << 20) + p->call;
  for (int64_t i = 0; i < shape_numel(p->ndim, p->shape); i++)
    out[i] = rng_uniform(DO_SEED, stream, (uint64_t)i) < 1.0f - p->p ? in[0][i] / (1.0 - p->p) : 0.0;
}

static void test_dropout_gradcheck(void) {
  do_arg a[4 + NRAND] = {{1, {1}, 0.5f, 0, 0}, {2, {5, 9}, 0.4f, 0, 0}, {3, {2, 3, 7}, 0.1f, 3, 2},
                         {2, {1, 64}, 0.9f, 7, 5}};
  for (int i = 4; i < 4 + NRAND; i++)
    a[i] = (do_arg){2, {rnd(90, i, 1, 9), rnd(91, i, 1, 50)}, 0.05f * (float)rnd(92, i, 1, 19), (uint64_t)i, 1};
  for (int i = 0; i < 4 + NRAND; i++) {
    gc_case k = {.name = "dropout", .n_in = 1, .ndim = {a[i].ndim}, .diff = {1}, .fast = do_fast, .ref = do_ref,
                 .arg = &a[i]};
    memcpy(k.shape[0], a[i].shape, sizeof a[i].shape);
    check(&k, DO_SEED);
  }
  do_arg big = {2, {64, 999}, 0.3f, 2, 0};
  gc_case k = {.name = "dropout", .n_in = 1, .ndim = {2}, .shape = {{64, 999}}, .diff = {1}, .fast = do_fast,
               .ref = do_ref, .arg = &big};
  check_thread_independent(&k, DO_SEED);
}

/* y for x = ones(n) at (seed, step, calls already made), malloc'd */
static float *dropout_ones(uint64_t seed, uint64_t step, uint64_t calls, float p, int n) {
  epee_ctx c;
  ctx_init(&c, 0, seed);
  c.training = 1, c.step = step, c.dropout_calls = calls;
  float *x = epee_malloc(sizeof(float) * (size_t)n), *out = epee_malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) x[i] = 1.0f;
  tensor *y = op_dropout(&c, tensor_wrap(&c, x, 1, &n), p);
  CU_ASSERT_EQUAL(c.dropout_calls, calls + 1);
  memcpy(out, y->data, sizeof(float) * (size_t)n);
  free(x);
  ctx_free(&c);
  return out;
}

/* the drop rate is p within 5 binomial sigmas; kept values are exactly 1 / (1 - p); one (seed, step, call)
 * gives one mask, a change of any of the three another */
static void test_dropout_statistics(void) {
  enum { N = 1 << 20 };
  const float ps[3] = {0.1f, 0.5f, 0.9f};
  for (int k = 0; k < 3; k++) {
    float p = ps[k], *y = dropout_ones(11, 4, 2, p, N);
    int dropped = 0, bad = 0;
    for (int i = 0; i < N; i++) {
      dropped += y[i] == 0.0f;
      bad += y[i] != 0.0f && y[i] != 1.0f / (1.0f - p);
    }
    double rate = dropped / (double)N, sigma = sqrt(p * (1.0 - p) / N);
    printf("  dropout p=%.1f: %.5f dropped (5 sigma = %.5f)\n", p, rate, 5 * sigma);
    CU_ASSERT(fabs(rate - p) <= 5 * sigma);
    CU_ASSERT_EQUAL(bad, 0);
    free(y);
  }
  enum { M = 4096 };
  float *a = dropout_ones(11, 4, 2, 0.5f, M), *same = dropout_ones(11, 4, 2, 0.5f, M);
  float *seed = dropout_ones(12, 4, 2, 0.5f, M), *step = dropout_ones(11, 5, 2, 0.5f, M),
        *call = dropout_ones(11, 4, 3, 0.5f, M);
  CU_ASSERT(memcmp(a, same, sizeof(float) * M) == 0);
  CU_ASSERT(memcmp(a, seed, sizeof(float) * M) != 0);
  CU_ASSERT(memcmp(a, step, sizeof(float) * M) != 0);
  CU_ASSERT(memcmp(a, call, sizeof(float) * M) != 0);
  free(a), free(same), free(seed), free(step), free(call);
}

/* not training, or p = 0: x itself, nothing recorded, the call counter untouched */
static void test_dropout_identity(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  float buf[6] = {1, 2, 3, 4, 5, 6};
  tensor *x = tensor_wrap(&c, buf, 2, (int[]){2, 3});
  x->requires_grad = 1;
  c.training = 0;
  CU_ASSERT_PTR_EQUAL(op_dropout(&c, x, 0.5f), x);
  c.training = 1;
  CU_ASSERT_PTR_EQUAL(op_dropout(&c, x, 0.0f), x);
  CU_ASSERT_EQUAL(c.tape.n, 0);
  CU_ASSERT_EQUAL(c.dropout_calls, 0);
  ctx_free(&c);
}

static tensor *dropout_call(epee_ctx *c, tensor *x) { return op_dropout(c, x, 0.3f); }

/* ================================ gather rows, mean pool ================================ */

typedef struct { int B, T, D, row_len, n, rows[16]; } ga_arg;

static tensor *ga_fast(epee_ctx *c, tensor **in, const void *a) {
  const ga_arg *p = a;
  return op_gather_rows(c, in[0], p->row_len, p->rows, p->n);
}
static void ga_ref(const double *const *in, double *out, const void *a) {
  const ga_arg *p = a;
  for (int i = 0; i < p->n; i++)
    for (int d = 0; d < p->row_len; d++) out[i * p->row_len + d] = in[0][p->rows[i] * p->row_len + d];
}

/* x rows [[1, 2], [3, 4], [5, 6]], rows [1, 1, 0]: dy = [[1, 2], [3, 4], [5, 6]] -> dx row 1 = [4, 6],
 * row 0 = [5, 6], row 2 = 0 */
static void test_gather_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  tensor *x = wrap_copy(&c, (float[]){1, 2, 3, 4, 5, 6}, 2, (int[]){3, 2});
  x->requires_grad = 1;
  tensor *y = op_gather_rows(&c, x, 2, (int[]){1, 1, 0}, 3);
  const float want[6] = {3, 4, 3, 4, 1, 2}, dy[6] = {1, 2, 3, 4, 5, 6}, dx[6] = {5, 6, 4, 6, 0, 0};
  CU_ASSERT(memcmp(y->data, want, sizeof want) == 0);
  tape_backward(&c, y, dy);
  CU_ASSERT(memcmp(x->grad, dx, sizeof dx) == 0);
  ctx_free(&c);
}

static void test_gather(void) {
  /* CLS pooling (row b*T), duplicates, one row, batch compaction (row_len T*D) */
  ga_arg a[4 + NRAND] = {{3, 4, 5, 5, 3, {0, 4, 8}}, {2, 3, 4, 4, 5, {2, 0, 2, 5, 1}}, {1, 1, 1, 1, 1, {0}},
                         {4, 3, 5, 15, 3, {3, 0, 3}}};
  for (int i = 4; i < 4 + NRAND; i++) {
    a[i] = (ga_arg){rnd(80, i, 1, 4), rnd(81, i, 1, 6), rnd(82, i, 1, 9), 0, rnd(83, i, 1, 16), {0}};
    a[i].row_len = a[i].D;
    for (int j = 0; j < a[i].n; j++) a[i].rows[j] = rnd(84, (uint64_t)(16 * i + j), 0, a[i].B * a[i].T - 1);
  }
  for (int i = 0; i < 4 + NRAND; i++) {
    gc_case k = {.name = "gather_rows", .n_in = 1, .ndim = {3}, .shape = {{a[i].B, a[i].T, a[i].D}}, .diff = {1},
                 .fast = ga_fast, .ref = ga_ref, .arg = &a[i]};
    check(&k, 800 + (uint64_t)i);
  }
  ga_arg big = {2, 3, 40, 120, 9, {1, 0, 1, 1, 0, 1, 1, 1, 0}};
  gc_case k = {.name = "gather_rows", .n_in = 1, .ndim = {3}, .shape = {{2, 3, 40}}, .diff = {1}, .fast = ga_fast,
               .ref = ga_ref, .arg = &big};
  check_thread_independent(&k, 810);
}

static tensor *gather_call(epee_ctx *c, tensor *x) { return op_gather_rows(c, x, x->shape[1], (int[]){0, 1}, 2); }

typedef struct { int B, T, D; float mask[64]; } mp_arg;

static tensor *mp_fast(epee_ctx *c, tensor **in, const void *a) {
  return op_mean_pool(c, in[0], ((const mp_arg *)a)->mask);
}
static void mp_ref(const double *const *in, double *out, const void *a) {
  const mp_arg *p = a;
  for (int b = 0; b < p->B; b++)
    for (int d = 0; d < p->D; d++) {
      double s = 0, n = 0;
      for (int t = 0; t < p->T; t++)
        if (p->mask[b * p->T + t] != 0) s += in[0][(b * p->T + t) * p->D + d], n++;
      out[b * p->D + d] = n > 0 ? s / n : 0; /* an all-padding row pools to zero (the op's contract) */
    }
}

/* x = [[1, 2], [3, 4], [100, 100]] with the last position padded -> [2, 3]; all padded -> [0, 0] */
static void test_mean_pool_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  tensor *x = wrap_copy(&c, (float[]){1, 2, 3, 4, 100, 100, 1, 2, 3, 4, 100, 100}, 3, (int[]){2, 3, 2});
  tensor *y = op_mean_pool(&c, x, (float[]){1, 1, 0, 0, 0, 0});
  const float want[4] = {2, 3, 0, 0};
  CU_ASSERT(memcmp(y->data, want, sizeof want) == 0);
  ctx_free(&c);
}

static void test_mean_pool(void) {
  mp_arg a[4 + NRAND] = {{2, 4, 3, {1, 1, 1, 0, 1, 0, 0, 0}}, {1, 1, 1, {1}}, {3, 2, 5, {1, 1, 0, 0, 1, 0}},
                         {2, 5, 1, {0, 1, 1, 0, 1, 1, 1, 1, 1, 1}}};
  for (int i = 4; i < 4 + NRAND; i++) {
    a[i] = (mp_arg){rnd(85, i, 1, 4), rnd(86, i, 1, 16), rnd(87, i, 1, 12), {0}};
    for (int j = 0; j < a[i].B * a[i].T; j++) a[i].mask[j] = (float)rnd(88, (uint64_t)(64 * i + j), 0, 1);
  }
  for (int i = 0; i < 4 + NRAND; i++) {
    gc_case k = {.name = "mean_pool", .n_in = 1, .ndim = {3}, .shape = {{a[i].B, a[i].T, a[i].D}}, .diff = {1},
                 .fast = mp_fast, .ref = mp_ref, .arg = &a[i]};
    check(&k, 850 + (uint64_t)i);
  }
}

static tensor *mean_pool_call(epee_ctx *c, tensor *x) {
  static const float mask[64] = {1, 1, 0, 1, 1, 1};
  return op_mean_pool(c, x, mask);
}

/* ================================ patch embedding ================================ */

typedef struct { int B, C, H, W, P, D, bias; } pe_arg;

static tensor *pe_fast(epee_ctx *c, tensor **in, const void *a) {
  const pe_arg *p = a;
  return op_patch_embed(c, in[0], in[1], p->bias ? in[2] : NULL, p->P);
}
static void pe_ref(const double *const *in, double *out, const void *a) { /* Conv2d, stride = kernel = P */
  const pe_arg *p = a;
  int gh = p->H / p->P, gw = p->W / p->P;
  for (int b = 0; b < p->B; b++)
    for (int y = 0; y < gh; y++)
      for (int x = 0; x < gw; x++)
        for (int d = 0; d < p->D; d++) {
          double s = p->bias ? in[2][d] : 0;
          for (int ch = 0; ch < p->C; ch++)
            for (int ky = 0; ky < p->P; ky++)
              for (int kx = 0; kx < p->P; kx++)
                s += in[1][((d * p->C + ch) * p->P + ky) * p->P + kx] *
                     in[0][((b * p->C + ch) * p->H + y * p->P + ky) * p->W + x * p->P + kx];
          out[((b * gh + y) * gw + x) * p->D + d] = s;
        }
}

/* img 4x4 = 1..16 row-major, P = 2, D = 1, b = 0.5:
 *  weight ones -> patches in row-major grid order: 1+2+5+6, 3+4+7+8, 9+10+13+14, 11+12+15+16 (+ 0.5);
 *  weight [[1, 10], [100, 1000]] on patch (0, 0) -> 1 + 2*10 + 5*100 + 6*1000 = 6521 (+ 0.5) */
static void test_patch_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  float img[16];
  for (int i = 0; i < 16; i++) img[i] = (float)(i + 1);
  tensor *x = wrap_copy(&c, img, 4, (int[]){1, 1, 4, 4});
  tensor *b = wrap_copy(&c, (float[]){0.5f}, 1, (int[]){1});
  tensor *y = op_patch_embed(&c, x, wrap_copy(&c, (float[]){1, 1, 1, 1}, 4, (int[]){1, 1, 2, 2}), b, 2);
  CU_ASSERT(y->ndim == 3 && y->shape[0] == 1 && y->shape[1] == 4 && y->shape[2] == 1);
  const float want[4] = {14.5f, 22.5f, 46.5f, 54.5f};
  for (int i = 0; i < 4; i++) CU_ASSERT_DOUBLE_EQUAL(y->data[i], want[i], 1e-4);
  y = op_patch_embed(&c, x, wrap_copy(&c, (float[]){1, 10, 100, 1000}, 4, (int[]){1, 1, 2, 2}), b, 2);
  CU_ASSERT_DOUBLE_EQUAL(y->data[0], 6521.5, 1e-3);
  ctx_free(&c);
}

static void test_patch_embed(void) {
  pe_arg a[5 + NRAND] = {{2, 3, 4, 6, 2, 5, 1}, {1, 1, 5, 5, 5, 3, 1}, {3, 2, 6, 9, 3, 4, 0}, {1, 2, 3, 2, 1, 2, 1},
                         {2, 3, 8, 8, 4, 7, 1}};
  for (int i = 5; i < 5 + NRAND; i++) {
    int P = rnd(95, i, 1, 4);
    a[i] = (pe_arg){rnd(96, i, 1, 3), rnd(97, i, 1, 3), P * rnd(98, i, 1, 3), P * rnd(99, i, 1, 3), P,
                    rnd(94, i, 1, 9), 1};
  }
  for (int i = 0; i < 5 + NRAND; i++) {
    pe_arg *p = &a[i];
    gc_case k = {.name = p->bias ? "patch_embed" : "patch_embed, no bias", .n_in = p->bias ? 3 : 2,
                 .ndim = {4, 4, 1}, .shape = {{p->B, p->C, p->H, p->W}, {p->D, p->C, p->P, p->P}, {p->D}},
                 .diff = {1, 1, 1}, .fast = pe_fast, .ref = pe_ref, .arg = p};
    check(&k, 950 + (uint64_t)i);
  }
}

/* ================================ [CLS] + position embeddings ================================ */

typedef struct { int B, N, D; } cp_arg;

static tensor *cp_fast(epee_ctx *c, tensor **in, const void *a) {
  (void)a;
  return op_cls_pos_embed(c, in[0], in[1], in[2]);
}
static void cp_ref(const double *const *in, double *out, const void *a) {
  const cp_arg *p = a;
  for (int b = 0; b < p->B; b++)
    for (int t = 0; t <= p->N; t++)
      for (int d = 0; d < p->D; d++)
        out[(b * (p->N + 1) + t) * p->D + d] = (t == 0 ? in[1][d] : in[0][(b * p->N + t - 1) * p->D + d]) +
                                               in[2][t * p->D + d];
}

static void test_cls_pos_embed(void) {
  cp_arg a[3 + NRAND] = {{1, 1, 1}, {2, 4, 3}, {3, 9, 5}};
  for (int i = 3; i < 3 + NRAND; i++) a[i] = (cp_arg){rnd(91, i, 1, 4), rnd(92, i, 1, 10), rnd(93, i, 1, 8)};
  for (int i = 0; i < 3 + NRAND; i++) {
    cp_arg *p = &a[i];
    gc_case k = {.name = "cls_pos_embed", .n_in = 3, .ndim = {3, 3, 3},
                 .shape = {{p->B, p->N, p->D}, {1, 1, p->D}, {1, p->N + 1, p->D}}, .diff = {1, 1, 1},
                 .fast = cp_fast, .ref = cp_ref, .arg = p};
    check(&k, 980 + (uint64_t)i);
  }
}

/* ================================ cross-entropy ================================ */

typedef struct { int B, C; int32_t y[64]; const float *w; float scale; } ce_arg;

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
static void ce_init(int i, float *x, int64_t n, const void *a) { /* scale 300: exp overflows without the max shift */
  rng_fill_normal(x, n, ((const ce_arg *)a)->scale, 101, (uint64_t)i);
}

/* row 0: logits [0, 0], label 1 -> nll ln 2; row 1: [ln 3, 0], label 0 -> softmax 3/4, nll ln(4/3).
 * Mean: (ln 2 + ln(4/3)) / 2; class weights [2, 1] (w[y] = 1, 2): (ln 2 + 2 ln(4/3)) / 3 (PyTorch's
 * weighted mean, not the sum over B). Gradient of the mean, row 0: (softmax - onehot) / 2 = [0.25, -0.25]. */
static void test_cross_entropy_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  tensor *z = wrap_copy(&c, (float[]){0, 0, logf(3.0f), 0}, 2, (int[]){2, 2});
  z->requires_grad = 1;
  const int32_t y[2] = {1, 0};
  tensor *l = op_cross_entropy(&c, z, y, NULL);
  CU_ASSERT_DOUBLE_EQUAL(l->data[0], 0.4904146265058631, 1e-6);
  tape_backward(&c, l, NULL);
  CU_ASSERT_DOUBLE_EQUAL(z->grad[0], 0.25, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(z->grad[1], -0.25, 1e-6);
  l = op_cross_entropy(&c, z, y, (const float[]){2, 1});
  CU_ASSERT_DOUBLE_EQUAL(l->data[0], 0.4228371084878357, 1e-6);
  ctx_free(&c);
}

static void test_cross_entropy(void) {
  static const float w2[2] = {0.3f, 2.0f};
  static float w22[22];
  for (int k = 0; k < 22; k++) w22[k] = 0.1f + 0.2f * (float)k;
  ce_arg a[7 + NRAND] = {{4, 2, {0, 1, 1, 0}, NULL, 1}, {4, 2, {0, 1, 1, 0}, w2, 1}, {3, 22, {21, 0, 7}, NULL, 1},
                         {5, 22, {21, 0, 7, 7, 3}, w22, 2}, {1, 22, {5}, NULL, 1}, {1, 2, {1}, w2, 1},
                         {6, 5, {0, 1, 2, 3, 4, 0}, NULL, 300}};
  for (int i = 7; i < 7 + NRAND; i++) {
    a[i] = (ce_arg){rnd(110, i, 1, 64), rnd(111, i, 2, 30), {0}, i % 2 ? w22 : NULL, 3};
    if (a[i].w) a[i].C = a[i].C > 22 ? 22 : a[i].C;
    for (int b = 0; b < a[i].B; b++) a[i].y[b] = rnd(112, (uint64_t)(64 * i + b), 0, a[i].C - 1);
  }
  for (int i = 0; i < 7 + NRAND; i++) {
    gc_case k = {.name = a[i].w ? "cross_entropy, class weights" : "cross_entropy", .n_in = 1, .ndim = {2},
                 .shape = {{a[i].B, a[i].C}}, .diff = {1}, .init = ce_init, .fast = ce_fast, .ref = ce_ref,
                 .arg = &a[i]};
    check(&k, 1100 + (uint64_t)i);
  }
}

static tensor *ce_call(epee_ctx *c, tensor *x) { return op_cross_entropy(c, x, (const int32_t[]){1, 0, 2}, NULL); }

/* ================================ inference saves nothing ================================ */

static void test_inference_saves_nothing(void) {
  check_inference_saves_nothing(ln_call, 2, (int[]){7, 16});
  check_inference_saves_nothing(dropout_call, 2, (int[]){7, 16});
  check_inference_saves_nothing(gelu_call, 2, (int[]){7, 16});
  check_inference_saves_nothing(gather_call, 2, (int[]){7, 16});
  check_inference_saves_nothing(mean_pool_call, 3, (int[]){1, 6, 16});
  check_inference_saves_nothing(ce_call, 2, (int[]){3, 16});
}

/* ================================ misuse ================================ */

/* Each bad call runs in a child that aborts (nothing to free) and sits two lines above its line constant. */
static epee_ctx *bad_ctx(void) {
  static epee_ctx c;
  ctx_init(&c, 1 << 16, 1);
  return &c;
}
static void bad_embedding(void) {
  epee_ctx *c = bad_ctx();
  op_embedding(c, (const int32_t[]){0, 4, 5}, 1, 3, tensor_new2(c, 5, 2));
}
static const int bad_embedding_line = __LINE__ - 2;
static void bad_layernorm(void) {
  epee_ctx *c = bad_ctx();
  op_layernorm(c, tensor_new2(c, 2, 8), tensor_new(c, 1, (int[]){7}), tensor_new(c, 1, (int[]){8}), 1e-5f);
}
static const int bad_layernorm_line = __LINE__ - 2;
static void bad_gather(void) {
  epee_ctx *c = bad_ctx();
  op_gather_rows(c, tensor_new2(c, 3, 4), 4, (int[]){0, 3}, 2);
}
static const int bad_gather_line = __LINE__ - 2;
static void bad_patch(void) {
  epee_ctx *c = bad_ctx();
  const int img[4] = {1, 3, 6, 6}, w[4] = {8, 3, 4, 4};
  op_patch_embed(c, tensor_new(c, 4, img), tensor_new(c, 4, w), NULL, 4);
}
static const int bad_patch_line = __LINE__ - 2;
static void bad_patch_weight(void) {
  epee_ctx *c = bad_ctx();
  const int img[4] = {1, 3, 8, 8}, w[4] = {8, 1, 4, 4};
  op_patch_embed(c, tensor_new(c, 4, img), tensor_new(c, 4, w), NULL, 4);
}
static const int bad_patch_weight_line = __LINE__ - 2;
static void bad_ce(void) {
  epee_ctx *c = bad_ctx();
  op_cross_entropy(c, tensor_new2(c, 2, 2), (const int32_t[]){0, 2}, NULL);
}
static const int bad_ce_line = __LINE__ - 2;
static void bad_dropout(void) {
  epee_ctx *c = bad_ctx();
  c->training = 1;
  op_dropout(c, tensor_new2(c, 2, 2), 1.0f);
}
static const int bad_dropout_line = __LINE__ - 2;
static void bad_mean_pool(void) {
  epee_ctx *c = bad_ctx();
  op_mean_pool(c, tensor_new2(c, 2, 2), (const float[]){1, 1});
}
static const int bad_mean_pool_line = __LINE__ - 2;

static void test_misuse(void) {
  struct { void (*fn)(void); int line; const char *op, *what, *shapes; } cases[] = {
      {bad_embedding, bad_embedding_line, "embedding", "id 5 at position 2 is outside [0, 5)", "[5, 2]"},
      {bad_layernorm, bad_layernorm_line, "layernorm", "gamma and beta must be [D]", "[2, 8], [7], [8]"},
      {bad_gather, bad_gather_line, "gather_rows", "row 3 at position 1 is outside [0, 3)", "[3, 4]"},
      {bad_patch, bad_patch_line, "patch_embed", "P must divide H and W", "[1, 3, 6, 6], [8, 3, 4, 4]"},
      {bad_patch_weight, bad_patch_weight_line, "patch_embed", "weight must be [D, C, P, P]", "[8, 1, 4, 4]"},
      {bad_ce, bad_ce_line, "cross_entropy", "label 2 of row 1 is outside [0, 2)", "[2, 2]"},
      {bad_dropout, bad_dropout_line, "dropout", "p must be in [0, 1)", "[2, 2]"},
      {bad_mean_pool, bad_mean_pool_line, "mean_pool", "x must be [B, T, D]", "[2, 2]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char where[64];
    snprintf(where, sizeof where, "test_ops_nn.c:%d:", cases[i].line);
    CU_ASSERT(gc_aborts_saying(cases[i].fn, 4, (const char *[]){where, cases[i].op, cases[i].what, cases[i].shapes}));
  }
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("ops_nn", NULL, NULL);
  CU_add_test(s, "embedding by hand (repeated ids add)", test_embedding_by_hand);
  CU_add_test(s, "embedding gradcheck", test_embedding);
  CU_add_test(s, "layernorm by hand (biased variance, eps in the root)", test_layernorm_by_hand);
  CU_add_test(s, "layernorm gradcheck", test_layernorm);
  CU_add_test(s, "activations by hand", test_activations_by_hand);
  CU_add_test(s, "fast_exp: accuracy, underflow, saturation, NaN", test_fast_exp);
  CU_add_test(s, "activation accuracy on a dense grid", test_activation_accuracy);
  CU_add_test(s, "activations gradcheck", test_activations);
  CU_add_test(s, "dropout gradcheck (mask reproduced)", test_dropout_gradcheck);
  CU_add_test(s, "dropout rate and reproducibility", test_dropout_statistics);
  CU_add_test(s, "dropout identity outside training", test_dropout_identity);
  CU_add_test(s, "gather rows by hand (duplicates add)", test_gather_by_hand);
  CU_add_test(s, "gather rows gradcheck", test_gather);
  CU_add_test(s, "mean pool by hand (padding, all-padding row)", test_mean_pool_by_hand);
  CU_add_test(s, "mean pool gradcheck", test_mean_pool);
  CU_add_test(s, "patch embedding by hand (grid and weight order)", test_patch_by_hand);
  CU_add_test(s, "patch embedding gradcheck", test_patch_embed);
  CU_add_test(s, "[CLS] + position embeddings gradcheck", test_cls_pos_embed);
  CU_add_test(s, "cross-entropy by hand (weighted mean)", test_cross_entropy_by_hand);
  CU_add_test(s, "cross-entropy gradcheck", test_cross_entropy);
  CU_add_test(s, "inference saves nothing", test_inference_saves_nothing);
  CU_add_test(s, "misuse stops with op, shapes, caller", test_misuse);
}
