/* add, weighted sum, narrow, reshape: fast vs double reference, gradients vs finite differences; narrow's misuse
 * stops naming the op, the shape and the caller. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "tests/gradcheck.h"

static tensor *add_fast(epee_ctx *c, tensor **in, const void *arg) {
  (void)arg;
  return op_add(c, in[0], in[1]);
}
static void add_ref(const double *const *in, double *out, const void *arg) {
  int n = *(const int *)arg;
  for (int i = 0; i < n; i++) out[i] = in[0][i] + in[1][i];
}

static void test_add(void) {
  int n = 3 * 5 * 7;
  gc_case k = {.name = "add [3,5,7]", .n_in = 2, .ndim = {3, 3}, .shape = {{3, 5, 7}, {3, 5, 7}},
               .diff = {1, 1}, .fast = add_fast, .ref = add_ref, .arg = &n};
  gc_assert(&k, 1, 64, 1e-4);
}

static const float ws_w[3] = {1.0f, 2.0f, 3.0f};
static tensor *ws_fast(epee_ctx *c, tensor **in, const void *arg) {
  (void)arg;
  return op_weighted_sum(c, 3, in, ws_w);
}
static void ws_ref(const double *const *in, double *out, const void *arg) {
  int n = *(const int *)arg;
  for (int i = 0; i < n; i++) out[i] = ws_w[0] * in[0][i] + ws_w[1] * in[1][i] + ws_w[2] * in[2][i];
}

static void test_weighted_sum(void) {
  int n = 4;
  gc_case k = {.name = "weighted_sum 3 x [4]", .n_in = 3, .ndim = {1, 1, 1}, .shape = {{4}, {4}, {4}},
               .diff = {1, 0, 1}, .fast = ws_fast, .ref = ws_ref, .arg = &n};
  gc_assert(&k, 2, 64, 1e-4);
}

/* ---- narrow: columns [start, start + len) of the last dim ---- */
typedef struct {
  int ndim, shape[4]; /* x's shape; its last dim is N */
  int start, len;
} narrow_arg;

static tensor *narrow_fast(epee_ctx *c, tensor **in, const void *arg) {
  const narrow_arg *a = arg;
  return op_narrow(c, in[0], a->start, a->len);
}
/* the naive loop: every row of x, its columns start .. start + len - 1 */
static void narrow_ref(const double *const *in, double *out, const void *arg) {
  const narrow_arg *a = arg;
  int N = a->shape[a->ndim - 1];
  int64_t rows = shape_numel(a->ndim - 1, a->shape);
  for (int64_t r = 0; r < rows; r++)
    for (int j = 0; j < a->len; j++) out[r * a->len + j] = in[0][r * N + a->start + j];
}

static void test_narrow(void) {
  const narrow_arg cases[] = {
      {1, {7}, 2, 3},          /* a single vector */
      {2, {4, 9}, 0, 3},       /* the first third (GPT-2's q) */
      {2, {4, 9}, 3, 3},       /* the middle (k) */
      {2, {4, 9}, 6, 3},       /* the last (v) */
      {3, {2, 3, 5}, 0, 5},    /* all columns */
      {3, {2, 3, 5}, 4, 1},    /* one column, the last */
      {4, {2, 1, 3, 6}, 1, 4}, /* 4-D */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const narrow_arg *a = &cases[i];
    char name[80];
    snprintf(name, sizeof name, "narrow %dD, N=%d [%d, %d)", a->ndim, a->shape[a->ndim - 1], a->start,
             a->start + a->len);
    gc_case k = {.name = name, .n_in = 1, .ndim = {a->ndim}, .diff = {1}, .fast = narrow_fast, .ref = narrow_ref,
                 .arg = a};
    memcpy(k.shape[0], a->shape, sizeof a->shape);
    gc_assert(&k, 10 + i, 64, 1e-4);
  }
}

/* q, k, v narrowed out of one [B, T, 3D] tensor and combined (q * 1 + k * 2 + v * 3): each narrow's gradient
 * lands in its own columns of the one input, and all three accumulate */
static const float qkv_w[3] = {1.0f, 2.0f, 3.0f};
static tensor *qkv_fast(epee_ctx *c, tensor **in, const void *arg) {
  int D = *(const int *)arg;
  tensor *parts[3] = {op_narrow(c, in[0], 0, D), op_narrow(c, in[0], D, D), op_narrow(c, in[0], 2 * D, D)};
  return op_weighted_sum(c, 3, parts, qkv_w);
}
static void qkv_ref(const double *const *in, double *out, const void *arg) {
  int D = *(const int *)arg;
  for (int r = 0; r < 2 * 3; r++)
    for (int j = 0; j < D; j++)
      out[r * D + j] = qkv_w[0] * in[0][r * 3 * D + j] + qkv_w[1] * in[0][r * 3 * D + D + j] +
                       qkv_w[2] * in[0][r * 3 * D + 2 * D + j];
}

static void test_narrow_three_ways(void) {
  int D = 4;
  gc_case k = {.name = "narrow q|k|v of [2,3,12], weighted sum", .n_in = 1, .ndim = {3}, .shape = {{2, 3, 3 * D}},
               .diff = {1}, .fast = qkv_fast, .ref = qkv_ref, .arg = &D};
  gc_assert(&k, 20, 72, 1e-4); /* 72 = every coordinate */
}

/* the bad call sits on the line just above its line constant */
static void bad_narrow_call(epee_ctx *c, tensor *x) { op_narrow(c, x, 3, 3); }
static const int bad_narrow_line = __LINE__ - 1;

static void bad_narrow(void) {
  epee_ctx c;
  ctx_init(&c, 1 << 12, 1);
  bad_narrow_call(&c, tensor_new2(&c, 2, 5));
}

static void test_narrow_misuse(void) {
  char where[64];
  snprintf(where, sizeof where, "test_ops_basic.c:%d:", bad_narrow_line);
  CU_ASSERT(gc_aborts_saying(bad_narrow, 3, (const char *[]){where, "narrow", "[2, 5]"}));
}

static tensor *reshape_fast(epee_ctx *c, tensor **in, const void *arg) {
  (void)arg;
  tensor *y = op_reshape(c, in[0], 2, ((int[]){6, 4}));
  return op_add(c, y, y); /* used twice downstream: its grad must be the sum */
}
static void reshape_ref(const double *const *in, double *out, const void *arg) {
  (void)arg;
  for (int i = 0; i < 24; i++) out[i] = 2 * in[0][i];
}

static void test_reshape_used_twice(void) {
  gc_case k = {.name = "reshape [2,3,4]->[6,4], used twice", .n_in = 1, .ndim = {3}, .shape = {{2, 3, 4}},
               .diff = {1}, .fast = reshape_fast, .ref = reshape_ref};
  gc_assert(&k, 3, 64, 1e-4);
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("ops_basic", NULL, NULL);
  CU_add_test(s, "add", test_add);
  CU_add_test(s, "weighted_sum", test_weighted_sum);
  CU_add_test(s, "narrow (ranks 1-4, first/middle/last/all columns)", test_narrow);
  CU_add_test(s, "narrow three ways out of one tensor: gradients accumulate", test_narrow_three_ways);
  CU_add_test(s, "narrow outside the last dim names the op, shape and caller", test_narrow_misuse);
  CU_add_test(s, "reshape used twice", test_reshape_used_twice);
}
