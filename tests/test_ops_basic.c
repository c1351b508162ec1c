/* add, weighted sum, reshape: fast vs double reference, gradients vs finite differences. */
#include <CUnit/CUnit.h>

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
  CU_add_test(s, "reshape used twice", test_reshape_used_twice);
}
