/* Linear, conv1d and batched matmul: the oneDNN wrapper against its naive loops (odd shapes, single rows,
 * accumulation, the primitive cache under eviction and concurrent callers), cases worked by hand, the
 * ops' gradients against finite differences, conv1d against linear on the transposed weight, accumulation
 * across backward passes, and the shape-error messages naming the caller. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dnnl_wrap.h"
#include "core/ops.h"
#include "core/rng.h"
#include "tests/gradcheck.h"

#define TOL 1e-3     /* gradcheck, relative */
#define GEMM_TOL 1e-5 /* float GEMM vs double loops, relative to the largest reference entry */

static float *randn(int64_t n, uint64_t stream) {
  float *x = epee_malloc(sizeof(float) * (size_t)(n ? n : 1));
  rng_fill_normal(x, n, 1.0f, 42, stream);
  return x;
}

static float *copy(const float *x, int64_t n) {
  float *y = epee_malloc(sizeof(float) * (size_t)(n ? n : 1));
  memcpy(y, x, sizeof(float) * (size_t)n);
  return y;
}

/* max |a - b| / max |b| (0 when both are empty or zero) */
static double rel_err(const float *a, const float *b, int64_t n) {
  double d = 0.0, m = 0.0;
  for (int64_t i = 0; i < n; i++) {
    d = fmax(d, fabs((double)a[i] - b[i]));
    m = fmax(m, fabs((double)b[i]));
  }
  return m > 0.0 ? d / m : d;
}

/* ---------------- the wrapper against its naive references ---------------- */

typedef struct {
  int M, N, K;
} mnk;

/* odd sizes, single rows/columns, a K of 1, sizes crossing oneDNN's blocking (16, 64) and the switch
 * between sgemm and the primitive (16 rows), and empty operands (no rows left after early exits) */
static const mnk shapes[] = {{1, 1, 1},     {1, 7, 5},    {5, 1, 3},     {4, 6, 1},  {3, 5, 7},
                             {15, 33, 65},  {16, 33, 65}, {64, 48, 40},  {129, 31, 18}, {2, 100, 3},
                             {33, 16, 256}, {0, 3, 4},    {3, 0, 4},     {3, 4, 0}};
#define NSHAPES (int)(sizeof shapes / sizeof *shapes)

static void check_linear_shape(int M, int N, int K, int w_kn, uint64_t s) {
  float *x = randn((int64_t)M * K, s), *w = randn((int64_t)N * K, s + 1), *b = randn(N, s + 2);
  float *dy = randn((int64_t)M * N, s + 3);
  float *y = randn((int64_t)M * N, s + 4), *yr = copy(y, (int64_t)M * N);
  /* accumulating outputs start non-zero, so "+=" is what is checked */
  float *dx = randn((int64_t)M * K, s + 5), *dxr = copy(dx, (int64_t)M * K);
  float *dw = randn((int64_t)N * K, s + 6), *dwr = copy(dw, (int64_t)N * K);
  float *db = randn(N, s + 7), *dbr = copy(db, N);

  for (int bias = 0; bias < 2; bias++) {
    dw_linear_fwd(x, w, w_kn, bias ? b : NULL, DW_ACT_NONE, NULL, y, M, N, K);
    dwref_linear_fwd(x, w, w_kn, bias ? b : NULL, DW_ACT_NONE, NULL, yr, M, N, K);
    double e = rel_err(y, yr, (int64_t)M * N);
    if (e > GEMM_TOL) printf("\n  linear fwd M=%d N=%d K=%d w_kn=%d bias=%d: rel err %.2e", M, N, K, w_kn, bias, e);
    CU_ASSERT(e <= GEMM_TOL);
  }
  dw_linear_bwd_data(dy, w, w_kn, dx, M, N, K);
  dwref_linear_bwd_data(dy, w, w_kn, dxr, M, N, K);
  dw_linear_bwd_weights(dy, x, w_kn, dw, db, M, N, K);
  dwref_linear_bwd_weights(dy, x, w_kn, dwr, dbr, M, N, K);
  double ex = rel_err(dx, dxr, (int64_t)M * K), ew = rel_err(dw, dwr, (int64_t)N * K), eb = rel_err(db, dbr, N);
  if (fmax(ex, fmax(ew, eb)) > GEMM_TOL)
    printf("\n  linear bwd M=%d N=%d K=%d w_kn=%d: dX %.2e dW %.2e db %.2e", M, N, K, w_kn, ex, ew, eb);
  CU_ASSERT(ex <= GEMM_TOL);
  CU_ASSERT(ew <= GEMM_TOL);
  CU_ASSERT(eb <= GEMM_TOL);
  /* either output of the weights pass may be absent */
  dw_linear_bwd_weights(dy, x, w_kn, NULL, db, M, N, K);
  dwref_linear_bwd_weights(dy, x, w_kn, NULL, dbr, M, N, K);
  dw_linear_bwd_weights(dy, x, w_kn, dw, NULL, M, N, K);
  dwref_linear_bwd_weights(dy, x, w_kn, dwr, NULL, M, N, K);
  CU_ASSERT(rel_err(db, dbr, N) <= GEMM_TOL);
  CU_ASSERT(rel_err(dw, dwr, (int64_t)N * K) <= GEMM_TOL);

  float *bufs[] = {x, w, b, dy, y, yr, dx, dxr, dw, dwr, db, dbr};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

static void test_linear_vs_reference(void) {
  for (int w_kn = 0; w_kn < 2; w_kn++) { /* both weight layouts: [N, K] and HF Conv1D's [K, N] */
    for (int i = 0; i < NSHAPES; i++) check_linear_shape(shapes[i].M, shapes[i].N, shapes[i].K, w_kn, 10 * (uint64_t)i);
    for (int i = 0; i < 6; i++) { /* random shapes */
      uint64_t h = rng_hash(7, 0, (uint64_t)i);
      check_linear_shape(1 + (int)(h % 90), 1 + (int)((h >> 16) % 90), 1 + (int)((h >> 32) % 90), w_kn,
                         500 + 10 * (uint64_t)i);
    }
  }
}

static void check_bmm_shape(int batch, int ta, int tb, int M, int N, int K, int acc, uint64_t s) {
  int64_t na = (int64_t)batch * M * K, nb = (int64_t)batch * K * N, nc = (int64_t)batch * M * N;
  float *a = randn(na, s), *b = randn(nb, s + 1), *c = randn(nc, s + 2), *cr = copy(c, nc);
  dw_bmm(batch, ta, tb, M, N, K, a, b, c, acc);
  dwref_bmm(batch, ta, tb, M, N, K, a, b, cr, acc);
  double e = rel_err(c, cr, nc);
  if (e > GEMM_TOL) printf("\n  bmm batch=%d ta=%d tb=%d M=%d N=%d K=%d acc=%d: %.2e", batch, ta, tb, M, N, K, acc, e);
  CU_ASSERT(e <= GEMM_TOL);
  free(a), free(b), free(c), free(cr);
}

static void test_bmm_vs_reference(void) {
  const int batches[] = {1, 3, 12};
  for (int i = 0; i < NSHAPES; i++)
    for (int v = 0; v < 8; v++) /* every transpose and accumulate combination */
      check_bmm_shape(batches[(i + v) % 3], v & 1, (v >> 1) & 1, shapes[i].M, shapes[i].N, shapes[i].K, v >> 2,
                      100 * (uint64_t)i + (uint64_t)v);
}

/* X = [[1, 2], [3, 4]], W = [[1, 0], [0, 1], [1, 1]], b = [0.5, -1, 2]
 *   Y = X W^T + b = [[1.5, 1, 5], [3.5, 3, 9]]
 * with dY = [[1, 0, 1], [0, 1, 1]]:
 *   dX = dY W = [[2, 1], [1, 2]],  dW = dY^T X = [[1, 2], [3, 4], [4, 6]],  db = [1, 1, 2] */
static void test_linear_by_hand(void) {
  const float x[] = {1, 2, 3, 4}, w[] = {1, 0, 0, 1, 1, 1}, b[] = {0.5f, -1, 2}, dy[] = {1, 0, 1, 0, 1, 1};
  const float y_want[] = {1.5f, 1, 5, 3.5f, 3, 9}, dx_want[] = {2, 1, 1, 2}, dw_want[] = {1, 2, 3, 4, 4, 6},
              db_want[] = {1, 1, 2};
  float y[6], dx[4] = {0}, dw[6] = {0}, db[3] = {0};
  dw_linear_fwd(x, w, 0, b, DW_ACT_NONE, NULL, y, 2, 3, 2);
  dw_linear_bwd_data(dy, w, 0, dx, 2, 3, 2);
  dw_linear_bwd_weights(dy, x, 0, dw, db, 2, 3, 2);
  for (int i = 0; i < 6; i++) CU_ASSERT_DOUBLE_EQUAL(y[i], y_want[i], 1e-6);
  for (int i = 0; i < 4; i++) CU_ASSERT_DOUBLE_EQUAL(dx[i], dx_want[i], 1e-6);
  for (int i = 0; i < 6; i++) CU_ASSERT_DOUBLE_EQUAL(dw[i], dw_want[i], 1e-6);
  for (int i = 0; i < 3; i++) CU_ASSERT_DOUBLE_EQUAL(db[i], db_want[i], 1e-6);
}

/* more distinct shapes than the primitive cache holds (dw_bmm's primitives): evicted entries are
 * re-created correctly, twice over, and the wrapper comes back after a shutdown */
static void test_cache_eviction(void) {
  float *a = randn(2 * 300 * 5, 1), *b = randn(2 * 3 * 5, 2), *c = epee_malloc(sizeof(float) * 2 * 300 * 3),
        *cr = epee_malloc(sizeof(float) * 2 * 300 * 3);
  int bad = 0;
  for (int round = 0; round < 2; round++)
    for (int M = 1; M <= 300; M++) {
      dw_bmm(2, 0, 1, M, 3, 5, a, b, c, 0);
      dwref_bmm(2, 0, 1, M, 3, 5, a, b, cr, 0);
      bad += rel_err(c, cr, 2 * (int64_t)M * 3) > GEMM_TOL;
    }
  CU_ASSERT_EQUAL(bad, 0);
  dw_shutdown();
  dw_bmm(2, 0, 1, 7, 3, 5, a, b, c, 0);
  dwref_bmm(2, 0, 1, 7, 3, 5, a, b, cr, 0);
  CU_ASSERT(rel_err(c, cr, 42) <= GEMM_TOL);
  free(a), free(b), free(c), free(cr);
}

/* several threads creating and running primitives at once (an engine serving concurrent requests) */
typedef struct {
  int id, bad;
} worker_arg;

static void *worker(void *p) {
  worker_arg *w = p;
  for (int it = 0; it < 20; it++) {
    int batch = 1 + it % 3, M = 1 + (w->id * 7 + it) % 23, N = 5 + it % 3, K = 9;
    int64_t na = (int64_t)batch * M * K, nb = (int64_t)batch * N * K, nc = (int64_t)batch * M * N;
    float *a = randn(na, (uint64_t)(w->id * 100 + it)), *b = randn(nb, 3), *c = epee_malloc(sizeof(float) * (size_t)nc),
          *cr = epee_malloc(sizeof(float) * (size_t)nc);
    dw_bmm(batch, 0, 1, M, N, K, a, b, c, 0);
    dwref_bmm(batch, 0, 1, M, N, K, a, b, cr, 0);
    w->bad += rel_err(c, cr, nc) > GEMM_TOL;
    dw_linear_fwd(a, b, 0, NULL, DW_ACT_NONE, NULL, c, M, N, K);
    dwref_linear_fwd(a, b, 0, NULL, DW_ACT_NONE, NULL, cr, M, N, K);
    w->bad += rel_err(c, cr, (int64_t)M * N) > GEMM_TOL;
    dw_linear_fwd_frozen(a, b, 0, NULL, DW_ACT_NONE, NULL, c, M, N, K); /* packs under the same lock */
    w->bad += rel_err(c, cr, (int64_t)M * N) > GEMM_TOL;
    dw_forget_weights(b, sizeof(float) * (size_t)N * K);
    free(a), free(b), free(c), free(cr);
  }
  return NULL;
}
static void test_concurrent_callers(void) {
  enum { NT = 4 };
  dw_shutdown(); /* so that the threads also race to create the engine */
  pthread_t th[NT];
  worker_arg args[NT];
  for (int i = 0; i < NT; i++) {
    args[i] = (worker_arg){i, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, worker, &args[i]), 0);
  }
  for (int i = 0; i < NT; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(args[i].bad, 0);
  }
}

/* Frozen (serving) weights run from a packed copy: the same results as the plain weights for both layouts, every
 * row count (below 16 rows the sgemm route, unpacked) and the post-ops; a forgotten copy is re-made from the
 * weights as they are then, and the ops use the copy exactly for frozen tensors outside a tape. */
static void test_frozen_weights(void) {
  const int rows[] = {1, 15, 16, 40, 129};
  for (int w_kn = 0; w_kn < 2; w_kn++)
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
      for (int post = 0; post < 2; post++) {
        int M = rows[i], N = 48, K = 40;
        float *x = randn((int64_t)M * K, 600 + i), *w = randn((int64_t)N * K, 610), *b = randn(N, 620);
        float *r = randn((int64_t)M * N, 630), *y = randn((int64_t)M * N, 640), *yr = copy(y, (int64_t)M * N);
        dw_act act = post ? DW_ACT_GELU_ERF : DW_ACT_NONE;
        const float *res = post ? r : NULL;
        int all = dw_linear_fwd_frozen(x, w, w_kn, b, act, res, y, M, N, K);
        CU_ASSERT_EQUAL(all, M >= 16 || !post);
        dwref_linear_fwd(x, w, w_kn, b, all ? act : DW_ACT_NONE, all ? res : NULL, yr, M, N, K);
        double e = rel_err(y, yr, (int64_t)M * N);
        if (e > GEMM_TOL) printf("\n  frozen M=%d w_kn=%d post=%d: rel err %.2e", M, w_kn, post, e);
        CU_ASSERT(e <= GEMM_TOL);
        /* rewritten after dw_forget_weights: the next call packs the new values */
        dw_forget_weights(w, sizeof(float) * (size_t)N * K);
        for (int64_t j = 0; j < (int64_t)N * K; j++) w[j] = -w[j];
        dw_linear_fwd_frozen(x, w, w_kn, b, DW_ACT_NONE, NULL, y, M, N, K);
        dwref_linear_fwd(x, w, w_kn, b, DW_ACT_NONE, NULL, yr, M, N, K);
        CU_ASSERT(rel_err(y, yr, (int64_t)M * N) <= GEMM_TOL);
        dw_forget_weights(w, sizeof(float) * (size_t)N * K);
        free(x), free(w), free(b), free(r), free(y), free(yr);
      }
  /* the op: a frozen W gives the unfrozen op's output (no tape) */
  epee_ctx c;
  ctx_init(&c, 1 << 20, 5);
  c.grad_mode = 0;
  tensor *x = tensor_new2(&c, 40, 24), *w = tensor_new2(&c, 33, 24), *r = tensor_new2(&c, 40, 33);
  rng_fill_normal(x->data, x->n, 1.0f, 5, 1), rng_fill_normal(w->data, w->n, 1.0f, 5, 2);
  rng_fill_normal(r->data, r->n, 1.0f, 5, 3);
  linear_epilogue ep = {.act = ACT_GELU, .residual = r};
  tensor *y1 = op_linear_ex(&c, x, w, NULL, ep);
  w->frozen = 1;
  tensor *y2 = op_linear_ex(&c, x, w, NULL, ep);
  CU_ASSERT(rel_err(y2->data, y1->data, y1->n) <= GEMM_TOL);
  dw_forget_weights(w->data, sizeof(float) * (size_t)w->n);
  ctx_free(&c);
}

/* ---------------- ops: forward vs double reference, gradients vs finite differences ---------------- */

typedef struct {
  int ndim, shape[4]; /* x's shape; its last dim is K */
  int N, bias;
} lin_arg;

static int lin_K(const lin_arg *a) { return a->shape[a->ndim - 1]; }
static int lin_M(const lin_arg *a) { return (int)shape_numel(a->ndim - 1, a->shape); }

static tensor *lin_fast(epee_ctx *c, tensor **in, const void *arg) {
  return op_linear(c, in[0], in[1], ((const lin_arg *)arg)->bias ? in[2] : NULL);
}

static void lin_ref(const double *const *in, double *out, const void *arg) {
  const lin_arg *a = arg;
  int M = lin_M(a), N = a->N, K = lin_K(a);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = a->bias ? in[2][j] : 0.0;
      for (int k = 0; k < K; k++) s += in[0][(size_t)i * K + k] * in[1][(size_t)j * K + k];
      out[(size_t)i * N + j] = s;
    }
}

static void test_linear_gradcheck(void) {
  const lin_arg cases[] = {
      {1, {5}, 3, 1},           /* a single vector */
      {2, {1, 1}, 1, 1},        /* M = N = K = 1 */
      {2, {7, 1}, 4, 1},        /* K = 1 */
      {2, {1, 9}, 1, 0},        /* one row, one output, no bias */
      {3, {2, 3, 11}, 13, 1},   /* [B, T, D] */
      {4, {2, 1, 3, 6}, 5, 1},  /* 4-D input flattened to 6 rows */
      {2, {33, 40}, 17, 1},     /* odd sizes */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const lin_arg *a = &cases[i];
    char name[80];
    snprintf(name, sizeof name, "linear %dD x, M=%d N=%d K=%d%s", a->ndim, lin_M(a), a->N, lin_K(a),
             a->bias ? " +b" : "");
    gc_case k = {.name = name, .n_in = 3, .ndim = {a->ndim, 2, 1}, .diff = {1, 1, a->bias},
                 .fast = lin_fast, .ref = lin_ref, .arg = a};
    memcpy(k.shape[0], a->shape, sizeof a->shape);
    k.shape[1][0] = a->N, k.shape[1][1] = lin_K(a), k.shape[2][0] = a->N;
    gc_assert(&k, 200 + i, 64, TOL);
  }
}

/* conv1d (HF Conv1D, GPT-2): W is [K, N] (in, out), y = x W + b */
static tensor *conv_fast(epee_ctx *c, tensor **in, const void *arg) {
  return op_conv1d(c, in[0], in[1], ((const lin_arg *)arg)->bias ? in[2] : NULL);
}

static void conv_ref(const double *const *in, double *out, const void *arg) {
  const lin_arg *a = arg;
  int M = lin_M(a), N = a->N, K = lin_K(a);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = a->bias ? in[2][j] : 0.0;
      for (int k = 0; k < K; k++) s += in[0][(size_t)i * K + k] * in[1][(size_t)k * N + j];
      out[(size_t)i * N + j] = s;
    }
}

static void test_conv1d_gradcheck(void) {
  const lin_arg cases[] = {
      {1, {5}, 3, 1},           /* a single vector */
      {2, {1, 1}, 1, 1},        /* M = N = K = 1 */
      {2, {7, 1}, 4, 1},        /* K = 1 */
      {2, {1, 9}, 1, 0},        /* one row, one output, no bias */
      {3, {2, 3, 8}, 24, 1},    /* [B, T, D] -> [B, T, 3D]: GPT-2's c_attn */
      {3, {2, 3, 11}, 13, 0},   /* odd sizes, no bias */
      {4, {2, 1, 3, 6}, 5, 1},  /* 4-D input flattened to 6 rows */
      {2, {33, 40}, 17, 1},     /* more rows than the oneDNN small-M path */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const lin_arg *a = &cases[i];
    char name[80];
    snprintf(name, sizeof name, "conv1d %dD x, M=%d N=%d K=%d%s", a->ndim, lin_M(a), a->N, lin_K(a),
             a->bias ? " +b" : "");
    gc_case k = {.name = name, .n_in = 3, .ndim = {a->ndim, 2, 1}, .diff = {1, 1, a->bias},
                 .fast = conv_fast, .ref = conv_ref, .arg = a};
    memcpy(k.shape[0], a->shape, sizeof a->shape);
    k.shape[1][0] = lin_K(a), k.shape[1][1] = a->N, k.shape[2][0] = a->N;
    gc_assert(&k, 400 + i, 64, TOL);
  }
  /* an input that needs no gradient (x of the first layer): W and b still get theirs */
  lin_arg a = {3, {2, 4, 6}, 9, 1};
  gc_case k = {.name = "conv1d x without grad, M=8 N=9 K=6 +b", .n_in = 3, .ndim = {3, 2, 1},
               .shape = {{2, 4, 6}, {6, 9}, {9}}, .diff = {0, 1, 1}, .fast = conv_fast, .ref = conv_ref, .arg = &a};
  gc_assert(&k, 450, 64, TOL);
}

/* ---- the fused epilogue (op_linear_ex): act -> dropout -> + residual, both weight layouts ---- */
typedef struct {
  lin_arg l;
  int w_kn, resid;
  act_kind act;
  float p;
} ep_arg;

#define EP_SEED 910 /* gc_run seeds the context with the case's seed; the reference redraws the masks from it */
#define EP_STEP 3
#define EP_CALL 1

static tensor *ep_fast(epee_ctx *c, tensor **in, const void *arg) {
  const ep_arg *a = arg;
  c->training = 1, c->step = EP_STEP, c->dropout_calls = EP_CALL;
  linear_epilogue ep = {.w_in_out = a->w_kn, .act = a->act, .dropout = a->p, .residual = a->resid ? in[3] : NULL};
  return op_linear_ex(c, in[0], in[1], a->l.bias ? in[2] : NULL, ep);
}

static double ref_act(act_kind act, double z) {
  if (act == ACT_GELU) return 0.5 * z * (1.0 + erf(z / sqrt(2.0)));
  if (act == ACT_GELU_TANH) return 0.5 * z * (1.0 + tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
  return z;
}

static void ep_ref(const double *const *in, double *out, const void *arg) {
  const ep_arg *a = arg;
  int M = lin_M(&a->l), N = a->l.N, K = lin_K(&a->l);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      size_t o = (size_t)i * N + j;
      double z = a->l.bias ? in[2][j] : 0.0;
      for (int k = 0; k < K; k++)
        z += in[0][(size_t)i * K + k] * in[1][a->w_kn ? (size_t)k * N + j : (size_t)j * K + k];
      z = ref_act(a->act, z);
      if (a->p > 0.0f)
        z = rng_uniform(EP_SEED, ((uint64_t)EP_STEP << 20) + EP_CALL, o) < 1.0f - a->p ? z / (1.0 - a->p) : 0.0;
      out[o] = z + (a->resid ? in[3][o] : 0.0);
    }
}

static gc_case ep_case(const ep_arg *a, char *name, size_t len) {
  static const char *const acts[] = {"", "+gelu", "+gelu_tanh"};
  snprintf(name, len, "%s%s%s%s M=%d N=%d K=%d", a->w_kn ? "conv1d" : "linear", acts[a->act],
           a->p > 0 ? "+dropout" : "", a->resid ? "+residual" : "", lin_M(&a->l), a->l.N, lin_K(&a->l));
  gc_case k = {.name = name, .n_in = 4, .ndim = {a->l.ndim, 2, 1, a->l.ndim}, .diff = {1, 1, a->l.bias, a->resid},
               .fast = ep_fast, .ref = ep_ref, .arg = a};
  memcpy(k.shape[0], a->l.shape, sizeof a->l.shape);
  k.shape[1][0] = a->w_kn ? lin_K(&a->l) : a->l.N, k.shape[1][1] = a->w_kn ? a->l.N : lin_K(&a->l);
  k.shape[2][0] = a->l.N;
  memcpy(k.shape[3], a->l.shape, sizeof a->l.shape);
  k.shape[3][a->l.ndim - 1] = a->l.N;
  return k;
}

/* Every epilogue (3 activations x dropout or not x residual or not x 2 weight layouts), at 10 rows (the sgemm route:
 * our pass applies the epilogue) and 40 rows (the matmul primitive: the residual as its post-op when recording). */
static void test_linear_epilogue_gradcheck(void) {
  const lin_arg shapes_[] = {{3, {2, 5, 7}, 9, 1}, {2, {40, 6}, 11, 1}, {2, {17, 5}, 3, 0}};
  int i = 0;
  for (size_t s = 0; s < sizeof shapes_ / sizeof *shapes_; s++)
    for (int v = 0; v < 24; v++, i++) {
      ep_arg a = {shapes_[s], v & 1, (v >> 1) & 1, (act_kind)((v >> 2) % 3), v >= 12 ? 0.3f : 0.0f};
      char name[96];
      gc_case k = ep_case(&a, name, sizeof name);
      gc_assert(&k, EP_SEED, 48, TOL);
    }
}

/* Without a tape (inference), the activation and the residual run as oneDNN post-ops (40 rows) or as our pass (10
 * rows): both against the double reference, and the post-op GELUs within 2e-6 of ours (relative to the largest). */
static void test_linear_epilogue_inference(void) {
  for (int v = 0; v < 12; v++)
    for (int M = 10; M <= 40; M += 30) {
      ep_arg a = {{2, {M, 24}, 33, v & 1}, (v >> 1) & 1, 1, (act_kind)(v >> 2), 0.0f};
      epee_ctx c;
      ctx_init(&c, 1 << 20, EP_SEED);
      tensor *in[4];
      char name[96];
      gc_case k = ep_case(&a, name, sizeof name);
      gc_make_inputs(&k, &c, EP_SEED, in);
      double *din[4], *ref = epee_malloc(sizeof(double) * (size_t)M * 33);
      for (int i = 0; i < 4; i++) {
        din[i] = epee_malloc(sizeof(double) * (size_t)in[i]->n);
        for (int64_t j = 0; j < in[i]->n; j++) din[i][j] = in[i]->data[j];
      }
      ep_ref((const double *const *)din, ref, &a);
      c.grad_mode = 0;
      tensor *y = op_linear_ex(&c, in[0], in[1], a.l.bias ? in[2] : NULL,
                               (linear_epilogue){.w_in_out = a.w_kn, .act = a.act, .residual = in[3]});
      CU_ASSERT_EQUAL(c.tape.n, 0);
      double d = 0, m = 0;
      for (int64_t j = 0; j < y->n; j++) d = fmax(d, fabs(y->data[j] - ref[j])), m = fmax(m, fabs(ref[j]));
      if (d > 2e-6 * m) printf("\n  %s, no tape: rel err %.2e", name, d / m);
      CU_ASSERT(d <= 2e-6 * m);
      for (int i = 0; i < 4; i++) free(din[i]);
      free(ref);
      ctx_free(&c);
    }
}

/* X = [[1, 2], [3, 4]], W = [[1, 0, 1], [0, 1, 1]] ([in 2, out 3]), b = [0.5, -1, 2]
 *   Y = X W + b = [[1.5, 1, 5], [3.5, 3, 9]]   (the linear case above with W transposed)
 * with dY = [[1, 0, 1], [0, 1, 1]]:
 *   dX = dY W^T = [[2, 1], [1, 2]],  dW = X^T dY = [[1, 3, 4], [2, 4, 6]],  db = [1, 1, 2] */
static void test_conv1d_by_hand(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 12, 1);
  float xd[] = {1, 2, 3, 4}, wd[] = {1, 0, 1, 0, 1, 1}, bd[] = {0.5f, -1, 2}, dy[] = {1, 0, 1, 0, 1, 1};
  const float y_want[] = {1.5f, 1, 5, 3.5f, 3, 9}, dx_want[] = {2, 1, 1, 2}, dw_want[] = {1, 3, 4, 2, 4, 6},
              db_want[] = {1, 1, 2};
  tensor *x = tensor_wrap(&c, xd, 2, (int[]){2, 2}), *w = tensor_wrap(&c, wd, 2, (int[]){2, 3}),
         *b = tensor_wrap(&c, bd, 1, (int[]){3});
  x->requires_grad = w->requires_grad = b->requires_grad = 1;
  tensor *y = op_conv1d(&c, x, w, b);
  CU_ASSERT_FATAL(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 3);
  tape_backward(&c, y, dy);
  for (int i = 0; i < 6; i++) CU_ASSERT_DOUBLE_EQUAL(y->data[i], y_want[i], 1e-6);
  for (int i = 0; i < 4; i++) CU_ASSERT_DOUBLE_EQUAL(x->grad[i], dx_want[i], 1e-6);
  for (int i = 0; i < 6; i++) CU_ASSERT_DOUBLE_EQUAL(w->grad[i], dw_want[i], 1e-6);
  for (int i = 0; i < 3; i++) CU_ASSERT_DOUBLE_EQUAL(b->grad[i], db_want[i], 1e-6);
  ctx_free(&c);
}

/* conv1d(x, W) == linear(x, W^T): forward and every gradient (W's transposed back), on a GPT-2-like shape; each
 * op on its own tape */
static void test_conv1d_is_linear_transposed(void) {
  epee_ctx c1, c2;
  ctx_init(&c1, 1 << 20, 5);
  ctx_init(&c2, 1 << 20, 5);
  int B = 3, T = 5, K = 16, N = 48, M = B * T;
  float *xd = randn((int64_t)M * K, 61), *wd = randn((int64_t)K * N, 62), *bd = randn(N, 63),
        *dy = randn((int64_t)M * N, 64), *wt = epee_malloc(sizeof(float) * (size_t)K * N);
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) wt[(size_t)j * K + k] = wd[(size_t)k * N + j];
  tensor *x1 = tensor_wrap(&c1, xd, 3, (int[]){B, T, K}), *x2 = tensor_wrap(&c2, xd, 3, (int[]){B, T, K});
  tensor *w1 = tensor_wrap(&c1, wd, 2, (int[]){K, N}), *w2 = tensor_wrap(&c2, wt, 2, (int[]){N, K});
  tensor *b1 = tensor_wrap(&c1, bd, 1, (int[]){N}), *b2 = tensor_wrap(&c2, bd, 1, (int[]){N});
  x1->requires_grad = x2->requires_grad = w1->requires_grad = w2->requires_grad = b1->requires_grad =
      b2->requires_grad = 1;
  tensor *y1 = op_conv1d(&c1, x1, w1, b1), *y2 = op_linear(&c2, x2, w2, b2);
  CU_ASSERT_FATAL(y1->ndim == 3 && y1->shape[0] == B && y1->shape[1] == T && y1->shape[2] == N);
  CU_ASSERT(rel_err(y1->data, y2->data, (int64_t)M * N) <= GEMM_TOL);
  tape_backward(&c1, y1, dy);
  tape_backward(&c2, y2, dy);
  float *gw2 = epee_malloc(sizeof(float) * (size_t)K * N);
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) gw2[(size_t)k * N + j] = w2->grad[(size_t)j * K + k];
  CU_ASSERT(rel_err(x1->grad, x2->grad, (int64_t)M * K) <= GEMM_TOL);
  CU_ASSERT(rel_err(w1->grad, gw2, (int64_t)K * N) <= GEMM_TOL);
  CU_ASSERT(rel_err(b1->grad, b2->grad, N) <= GEMM_TOL);
  free(xd), free(wd), free(bd), free(dy), free(wt), free(gw2);
  ctx_free(&c1);
  ctx_free(&c2);
}

typedef struct {
  int Bt, M, N, K, tb;
} bmm_arg;

static tensor *bmm_fast(epee_ctx *c, tensor **in, const void *arg) {
  return op_bmm(c, in[0], in[1], ((const bmm_arg *)arg)->tb);
}

static void bmm_ref(const double *const *in, double *out, const void *arg) {
  const bmm_arg *p = arg;
  for (int b = 0; b < p->Bt; b++)
    for (int i = 0; i < p->M; i++)
      for (int j = 0; j < p->N; j++) {
        double s = 0.0;
        for (int k = 0; k < p->K; k++)
          s += in[0][((size_t)b * p->M + i) * p->K + k] *
               (p->tb ? in[1][((size_t)b * p->N + j) * p->K + k] : in[1][((size_t)b * p->K + k) * p->N + j]);
        out[((size_t)b * p->M + i) * p->N + j] = s;
      }
}

static void test_bmm_gradcheck(void) {
  const bmm_arg cases[] = {{1, 1, 1, 1, 0}, {1, 1, 1, 1, 1}, {3, 5, 4, 7, 0}, {2, 6, 3, 5, 1},
                           {4, 1, 9, 2, 1}, {2, 7, 1, 3, 0}, {5, 3, 2, 1, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const bmm_arg *a = &cases[i];
    char name[80];
    snprintf(name, sizeof name, "bmm Bt=%d M=%d N=%d K=%d%s", a->Bt, a->M, a->N, a->K, a->tb ? " b^T" : "");
    gc_case k = {.name = name, .n_in = 2, .ndim = {3, 3},
                 .shape = {{a->Bt, a->M, a->K}, {a->Bt, a->tb ? a->N : a->K, a->tb ? a->K : a->N}},
                 .diff = {1, 1}, .fast = bmm_fast, .ref = bmm_ref, .arg = a};
    gc_assert(&k, 300 + i, 64, TOL);
  }
}

/* two backward passes over one tape: leaf grads (W, b, x) double */
static void test_backward_twice_doubles(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 16, 3);
  int M = 6, N = 4, K = 5;
  tensor *x = tensor_wrap(&c, randn((int64_t)M * K, 1), 2, (int[]){M, K});
  tensor *w = tensor_wrap(&c, randn((int64_t)N * K, 2), 2, (int[]){N, K});
  tensor *b = tensor_wrap(&c, randn(N, 3), 1, (int[]){N});
  x->requires_grad = w->requires_grad = b->requires_grad = 1;
  tensor *y = op_linear(&c, x, w, b);
  float *dy = randn((int64_t)M * N, 4);
  tape_backward(&c, y, dy);
  float *gx = copy(x->grad, x->n), *gw = copy(w->grad, w->n), *gb = copy(b->grad, b->n);
  tape_backward(&c, y, dy);
  int ok = 1;
  for (int64_t i = 0; i < w->n; i++) ok &= fabsf(w->grad[i] - 2 * gw[i]) <= 1e-5f * (1 + fabsf(gw[i]));
  for (int64_t i = 0; i < x->n; i++) ok &= fabsf(x->grad[i] - 2 * gx[i]) <= 1e-5f * (1 + fabsf(gx[i]));
  for (int64_t i = 0; i < b->n; i++) ok &= fabsf(b->grad[i] - 2 * gb[i]) <= 1e-5f * (1 + fabsf(gb[i]));
  CU_ASSERT(ok);
  free(x->data), free(w->data), free(b->data), free(dy), free(gx), free(gw), free(gb);
  ctx_free(&c);
}

/* ---------------- shape errors stop with the op, the shapes and the caller's file:line ---------------- */

/* each bad call sits on the line just above its line constant */
static void bad_linear_call(epee_ctx *c, tensor *x, tensor *w) { op_linear(c, x, w, NULL); }
static const int bad_linear_line = __LINE__ - 1;
static void bad_bmm_call(epee_ctx *c, tensor *a, tensor *b) { op_bmm(c, a, b, 0); }
static const int bad_bmm_line = __LINE__ - 1;
static void bad_conv1d_call(epee_ctx *c, tensor *x, tensor *w) { op_conv1d(c, x, w, NULL); }
static const int bad_conv1d_line = __LINE__ - 1;

static void bad_linear(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 12, 1);
  bad_linear_call(&c, tensor_new2(&c, 2, 3), tensor_new2(&c, 4, 5));
}

static void bad_bmm(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 12, 1);
  bad_bmm_call(&c, tensor_new3(&c, 2, 3, 4), tensor_new3(&c, 2, 5, 6));
}

/* a [out, in] (nn.Linear) weight given to conv1d: x's 3 features against the weight's 4 in-features */
static void bad_conv1d(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 12, 1);
  bad_conv1d_call(&c, tensor_new2(&c, 2, 3), tensor_new2(&c, 4, 3));
}


static void test_shape_errors(void) {
  char where[64];
  snprintf(where, sizeof where, "test_ops_linear.c:%d:", bad_linear_line);
  CU_ASSERT(gc_aborts_saying(bad_linear, 4, (const char *[]){where, "linear", "[2, 3]", "[4, 5]"}));
  snprintf(where, sizeof where, "test_ops_linear.c:%d:", bad_bmm_line);
  CU_ASSERT(gc_aborts_saying(bad_bmm, 4, (const char *[]){where, "bmm", "[2, 3, 4]", "[2, 5, 6]"}));
  snprintf(where, sizeof where, "test_ops_linear.c:%d:", bad_conv1d_line);
  CU_ASSERT(gc_aborts_saying(bad_conv1d, 4, (const char *[]){where, "conv1d", "[2, 3]", "[4, 3]"}));
}

static int shutdown_wrapper(void) {
  dw_shutdown();
  return 0;
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("dnnl_wrap", NULL, shutdown_wrapper);
  CU_add_test(s, "linear fwd/bwd vs naive loops, odd shapes, accumulation", test_linear_vs_reference);
  CU_add_test(s, "batched matmul vs naive loops, transposes x accumulate", test_bmm_vs_reference);
  CU_add_test(s, "linear worked by hand", test_linear_by_hand);
  CU_add_test(s, "primitive cache eviction and shutdown", test_cache_eviction);
  CU_add_test(s, "concurrent callers", test_concurrent_callers);
  CU_add_test(s, "frozen weights: packed copy, forget and re-pack, the op", test_frozen_weights);
  CU_pSuite o = CU_add_suite("ops_linear", NULL, shutdown_wrapper);
  CU_add_test(o, "linear gradcheck (ranks 1-4, M/N/K = 1)", test_linear_gradcheck);
  CU_add_test(o, "conv1d gradcheck (ranks 1-4, M/N/K = 1, x without grad)", test_conv1d_gradcheck);
  CU_add_test(o, "conv1d worked by hand", test_conv1d_by_hand);
  CU_add_test(o, "conv1d = linear on the transposed weight, forward and gradients", test_conv1d_is_linear_transposed);
  CU_add_test(o, "fused epilogue gradcheck (GELU forms x dropout x residual x layouts)",
              test_linear_epilogue_gradcheck);
  CU_add_test(o, "fused epilogue without a tape: post-ops vs reference", test_linear_epilogue_inference);
  CU_add_test(o, "bmm gradcheck (b transposed or not)", test_bmm_gradcheck);
  CU_add_test(o, "backward twice doubles leaf grads", test_backward_twice_doubles);
  CU_add_test(o, "shape errors name the op, shapes and caller", test_shape_errors);
}
